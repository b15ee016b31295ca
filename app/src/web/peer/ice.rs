//! How a link's ICE agent may connect: the STUN and TURN servers, and whether only relayed
//! candidates are allowed.

use ferry_protocol::IceServer;
use wasm_bindgen::JsValue;
use web_sys::{RtcConfiguration, RtcIceTransportPolicy};

/// How a link's ICE agent may connect.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IcePolicy {
    /// STUN and TURN servers.
    pub servers: Vec<IceServer>,
    /// Relayed candidates only (`iceTransportPolicy: "relay"`), so the other side never
    /// learns this browser's address.
    pub relay_only: bool,
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
