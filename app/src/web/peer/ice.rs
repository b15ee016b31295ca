//! How a link's ICE agent may connect: the STUN and TURN servers, whether only relayed
//! candidates are allowed, and the device key it presents.

use ferry_protocol::IceServer;
use wasm_bindgen::JsValue;
use web_sys::{RtcCertificate, RtcConfiguration, RtcIceTransportPolicy};

/// How a link's ICE agent may connect.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IcePolicy {
    /// STUN and TURN servers.
    pub servers: Vec<IceServer>,
    /// Relayed candidates only (`iceTransportPolicy: "relay"`), so the other side never
    /// learns this browser's address.
    pub relay_only: bool,
    /// This device's certificate ([`crate::web::device`]); without one the browser makes a
    /// new key for each connection.
    pub certificate: Option<RtcCertificate>,
}

impl IcePolicy {
    /// Whether any of the servers is a TURN relay.
    pub fn has_relay(&self) -> bool {
        self.servers.iter().any(|server| {
            server
                .urls
                .iter()
                .any(|url| url.starts_with("turn:") || url.starts_with("turns:"))
        })
    }

    pub(super) fn configuration(&self) -> RtcConfiguration {
        let config = RtcConfiguration::new();
        config.set_ice_servers(&ice_servers_js(&self.servers));
        if self.relay_only {
            config.set_ice_transport_policy(RtcIceTransportPolicy::Relay);
        }
        if let Some(certificate) = &self.certificate {
            config.set_certificates(&js_sys::Array::of1(certificate));
        }
        config
    }
}

/// The `iceServers` array of an `RTCConfiguration`.
fn ice_servers_js(servers: &[IceServer]) -> JsValue {
    servers
        .iter()
        .map(|server| {
            let entry = web_sys::RtcIceServer::new();
            let urls = server
                .urls
                .iter()
                .map(|url| JsValue::from_str(url))
                .collect::<js_sys::Array>();
            entry.set_urls(&urls);
            if let Some(username) = &server.username {
                entry.set_username(username);
            }
            if let Some(credential) = &server.credential {
                entry.set_credential(credential);
            }
            JsValue::from(entry)
        })
        .collect::<js_sys::Array>()
        .into()
}
