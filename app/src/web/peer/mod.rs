//! One `RTCPeerConnection` per pair of users, negotiated over an injected signaling path with
//! trickle ICE and the "perfect negotiation" pattern, and reused for every later transfer.
//!
//! Both users may start a transfer at the same moment, so both may send an offer (glare). The
//! polite side (the one with the smaller peer id) yields: it rolls back its own offer and
//! answers the other; the impolite side ignores the colliding offer. Signals are applied one at
//! a time, in order, by one task per link, so a candidate never overtakes its description.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::rc::Rc;

use ferry_protocol::{
    DATA_CHANNEL_PREFIX, IceServer, PeerId, SignalPayload, TRANSFER_CHANNEL_LABEL,
};
use futures::StreamExt;
use futures::channel::mpsc;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::spawn_local;
use web_sys::{
    RtcDataChannel, RtcDataChannelEvent, RtcDataChannelInit, RtcIceGatheringState,
    RtcPeerConnection, RtcPeerConnectionIceEvent, RtcPeerConnectionState,
};

mod ice;
mod negotiation;

pub use self::ice::IcePolicy;
use self::negotiation::{Negotiation, apply_signal, describe_now, described};
use super::{Context, JsError, Listener, call_method, log, property, wait};
use crate::core::route::{IceError, NoPath, Route, round_trip_ms, route_from_stats};

/// Where a link's outgoing signals go: to the server, or straight to another link in a test.
pub type SignalOut = Rc<dyn Fn(PeerId, SignalPayload)>;

/// What a link tells its owner.
#[derive(Debug)]
pub enum LinkEvent {
    /// The other browser opened a transfer's control channel, or a channel for a transfer's
    /// chunks (see its label).
    Channel(RtcDataChannel),
    /// The connection failed or closed after it had worked; every transfer on it is over.
    Gone,
    /// The two browsers never found a path to each other; this is the likeliest reason.
    NoPath(NoPath),
}

/// What the link's callbacks learn about its path, to say why there is none.
#[derive(Default)]
struct PathWatch {
    /// Local candidates gathered; none at all means no path can exist.
    gathered: Cell<u32>,
    /// Whether the connection has ever been connected.
    connected: Cell<bool>,
    /// Whether a relay was configured, the last time the configuration was set.
    relay_configured: Cell<bool>,
    /// The `icecandidateerror`s so far.
    errors: RefCell<Vec<IceError>>,
    /// Whether the end of this link was reported already.
    ended: Cell<bool>,
}

impl PathWatch {
    /// The event that ends the link: `Gone` after it had connected, `NoPath` before; `None`
    /// when the end was reported already.
    fn end(&self) -> Option<LinkEvent> {
        if self.ended.replace(true) {
            return None;
        }
        Some(if self.connected.get() {
            LinkEvent::Gone
        } else {
            LinkEvent::NoPath(NoPath::from_errors(
                self.relay_configured.get(),
                &self.errors.borrow(),
            ))
        })
    }
}

/// Receives a link's events.
pub type LinkEvents = Rc<dyn Fn(&PeerId, LinkEvent)>;

/// The connection to one other user.
pub struct PeerLink {
    remote: PeerId,
    connection: RtcPeerConnection,
    signals: mpsc::UnboundedSender<SignalPayload>,
    /// Fixed for the link's life: changing it would only apply to later gathering.
    relay_only: bool,
    watch: Rc<PathWatch>,
    _listeners: [Listener; 6],
}

impl PeerLink {
    /// Creates the connection to `remote`. `me` decides politeness; `out` carries signals to
    /// the other side; `events` hears of incoming channels and of the link's end.
    pub fn new(
        me: &PeerId,
        remote: PeerId,
        ice: &IcePolicy,
        out: SignalOut,
        events: LinkEvents,
    ) -> Result<Self, JsError> {
        let connection = RtcPeerConnection::new_with_configuration(&ice.configuration())
            .context("creating the peer connection")?;
        let watch = Rc::new(PathWatch::default());
        watch.relay_configured.set(ice.has_relay());
        let polite = me < &remote;
        let negotiation = Rc::new(Negotiation::default());
        let target = connection.unchecked_ref();

        let on_negotiation_needed = {
            let connection = connection.clone();
            let negotiation = Rc::clone(&negotiation);
            let out = Rc::clone(&out);
            let remote = remote.clone();
            Listener::new(target, "negotiationneeded", move |_| {
                let connection = connection.clone();
                let negotiation = Rc::clone(&negotiation);
                let out = Rc::clone(&out);
                let remote = remote.clone();
                spawn_local(async move {
                    negotiation.making_offer.set(true);
                    // A remote offer applied since the event makes this an answer, which
                    // `described` sends as what it is.
                    let result = match describe_now(&connection) {
                        Ok(started) => described(&connection, started).await,
                        Err(error) => Err(error),
                    };
                    negotiation.making_offer.set(false);
                    match result {
                        Ok(description) => out(remote, description),
                        Err(error) => log(&format!("offer to {remote} failed: {error}")),
                    }
                });
            })
        };
        let on_candidate = {
            let out = Rc::clone(&out);
            let remote = remote.clone();
            let watch = Rc::clone(&watch);
            Listener::new(target, "icecandidate", move |event| {
                let event = event.unchecked_into::<RtcPeerConnectionIceEvent>();
                // A null candidate marks the end of gathering; trickle ICE needs no message.
                let Some(candidate) = event.candidate() else {
                    return;
                };
                watch.gathered.set(watch.gathered.get() + 1);
                out(
                    remote.clone(),
                    SignalPayload::IceCandidate {
                        candidate: candidate.candidate(),
                        sdp_mid: candidate.sdp_mid(),
                        sdp_m_line_index: candidate.sdp_m_line_index(),
                    },
                );
            })
        };
        let on_channel = {
            let events = Rc::clone(&events);
            let remote = remote.clone();
            Listener::new(target, "datachannel", move |event| {
                let channel = event.unchecked_into::<RtcDataChannelEvent>().channel();
                let label = channel.label();
                if label == TRANSFER_CHANNEL_LABEL || label.starts_with(DATA_CHANNEL_PREFIX) {
                    events(&remote, LinkEvent::Channel(channel));
                } else {
                    channel.close();
                }
            })
        };
        let on_state = {
            let connection = connection.clone();
            let remote = remote.clone();
            let watch = Rc::clone(&watch);
            let events = Rc::clone(&events);
            Listener::new(target, "connectionstatechange", move |_| {
                match connection.connection_state() {
                    RtcPeerConnectionState::Connected => watch.connected.set(true),
                    RtcPeerConnectionState::Failed | RtcPeerConnectionState::Closed => {
                        if let Some(end) = watch.end() {
                            events(&remote, end);
                        }
                    }
                    _ => {}
                }
            })
        };
        let on_error = {
            let watch = Rc::clone(&watch);
            Listener::new(target, "icecandidateerror", move |event| {
                let code = property(&event, "errorCode").as_f64().unwrap_or(0.0);
                let url = property(&event, "url").as_string().unwrap_or_default();
                // Error codes are STUN's (300–699) or the browser's own (700–799).
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                let code = code.clamp(0.0, f64::from(u16::MAX)) as u16;
                watch.errors.borrow_mut().push(IceError { url, code });
            })
        };
        // Gathering that ends with no local candidate at all (a relay-only policy whose relay
        // refused or did not answer) leaves nothing to connect with: say so at once instead
        // of waiting for the connection to time out.
        let on_gathering = {
            let connection = connection.clone();
            let remote = remote.clone();
            let watch = Rc::clone(&watch);
            Listener::new(target, "icegatheringstatechange", move |_| {
                if connection.ice_gathering_state() == RtcIceGatheringState::Complete
                    && watch.gathered.get() == 0
                    && !watch.connected.get()
                    && let Some(end) = watch.end()
                {
                    events(&remote, end);
                }
            })
        };

        let (signals, mut incoming) = mpsc::unbounded::<SignalPayload>();
        {
            let connection = connection.clone();
            let remote = remote.clone();
            spawn_local(async move {
                // Ends when the link (the only sender) is dropped.
                while let Some(payload) = incoming.next().await {
                    let result =
                        apply_signal(&connection, &negotiation, polite, &remote, &out, payload)
                            .await;
                    if let Err(error) = result {
                        log(&format!("signal from {remote} not applied: {error}"));
                    }
                }
            });
        }

        Ok(Self {
            remote,
            connection,
            signals,
            relay_only: ice.relay_only,
            watch,
            _listeners: [
                on_negotiation_needed,
                on_candidate,
                on_channel,
                on_state,
                on_error,
                on_gathering,
            ],
        })
    }

    /// Gives the connection new ICE servers (fresh TURN credentials), keeping its policy.
    pub fn set_ice_servers(&self, servers: &[IceServer]) {
        let ice = IcePolicy {
            servers: servers.to_vec(),
            relay_only: self.relay_only,
            // A connection's certificates cannot change; leaving them out keeps them.
            certificate: None,
        };
        self.watch.relay_configured.set(ice.has_relay());
        // web-sys binds `setConfiguration` without its argument.
        let config = JsValue::from(ice.configuration());
        let renewed = call_method(
            &self.connection,
            "setConfiguration",
            &[&config],
            "renewing the ICE servers",
        );
        if let Err(error) = renewed {
            log(&error.to_string());
        }
    }

    /// The likeliest reason there is no path yet, for a caller that gave up waiting.
    pub fn no_path(&self) -> NoPath {
        NoPath::from_errors(
            self.watch.relay_configured.get(),
            &self.watch.errors.borrow(),
        )
    }

    /// How the connection's bytes travel, from the selected candidate pair; `None` while
    /// there is none, or when the statistics cannot be read.
    pub async fn route(&self) -> Option<Route> {
        let stats = self.stats().await?;
        route_from_stats(&stats)
    }

    /// The connection's statistics (the entries of its `RTCStatsReport`) as JSON values.
    async fn stats(&self) -> Option<Vec<serde_json::Value>> {
        let report = wait(self.connection.get_stats(), "reading connection statistics")
            .await
            .ok()?;
        let values = call_method(&report, "values", &[], "reading connection statistics").ok()?;
        let entries = js_sys::Array::from(&values);
        let json = js_sys::JSON::stringify(&entries).ok()?.as_string()?;
        serde_json::from_str(&json).ok()
    }

    /// Hands the link a signal from the other side; it is applied after earlier ones.
    pub fn signal(&self, payload: SignalPayload) {
        let _ = self.signals.unbounded_send(payload);
    }

    /// Opens a channel labelled `label` (ordered and reliable), starting negotiation if
    /// needed.
    pub fn open_channel(&self, label: &str) -> RtcDataChannel {
        let init = RtcDataChannelInit::new();
        init.set_ordered(true);
        self.connection
            .create_data_channel_with_data_channel_dict(label, &init)
    }

    /// The round trip of the selected candidate pair in milliseconds, once there is one.
    pub async fn rtt_ms(&self) -> Option<f64> {
        let stats = self.stats().await?;
        round_trip_ms(&stats)
    }

    /// The SCTP transport's `maxMessageSize`, once the connection has one.
    pub fn max_message_size(&self) -> Option<f64> {
        let sctp = property(&self.connection, "sctp");
        if sctp.is_null() || sctp.is_undefined() {
            return None;
        }
        property(&sctp, "maxMessageSize").as_f64()
    }

    /// The session id of the other browser's description, once it gave one. Read through
    /// `Reflect`, because Firefox throws when a closed connection is asked for it.
    pub fn remote_session(&self) -> Option<String> {
        let remote = property(&self.connection, "remoteDescription");
        let sdp = property(&remote, "sdp").as_string()?;
        crate::core::sdp::session_id(&sdp).map(str::to_owned)
    }

    /// The certificate fingerprints this connection runs with, as its own descriptions show
    /// them: this side's (local) and the other side's (remote); `None` until both are set.
    /// The browser refuses a DTLS handshake with any other certificate than the remote
    /// description names, so whoever answers on this connection holds that key.
    pub fn fingerprints(&self) -> Option<(String, String)> {
        let sdp = |which: &str| {
            let description = property(&self.connection, which);
            property(&description, "sdp").as_string()
        };
        let local = crate::core::sdp::fingerprint(&sdp("localDescription")?)?;
        let remote = crate::core::sdp::fingerprint(&sdp("remoteDescription")?)?;
        Some((local, remote))
    }

    /// The connection's states, in words, for a console line about a link that did not do
    /// what was expected of it: down to its DTLS transport and SCTP association, which tell
    /// a connection that never came up from channels that never opened over one that did.
    pub fn states(&self) -> String {
        let state = |object: &JsValue, name: &str| {
            property(object, name)
                .as_string()
                .unwrap_or_else(|| "none".into())
        };
        let connection: &JsValue = self.connection.as_ref();
        let sctp = property(connection, "sctp");
        let dtls = property(&sctp, "transport");
        format!(
            "connection {}, ICE {}, signaling {}, DTLS {}, SCTP {}",
            state(connection, "connectionState"),
            state(connection, "iceConnectionState"),
            state(connection, "signalingState"),
            state(&dtls, "state"),
            state(&sctp, "state")
        )
    }

    /// Whether the connection's SCTP association is up, so a channel opened on it should
    /// open within a round trip or two.
    pub fn is_associated(&self) -> bool {
        let sctp = property(&self.connection, "sctp");
        property(&sctp, "state").as_string().as_deref() == Some("connected")
    }

    /// Whether the connection is beyond use: failed, closed, or known to have no path.
    pub fn is_dead(&self) -> bool {
        self.watch.ended.get()
            || matches!(
                self.connection.connection_state(),
                RtcPeerConnectionState::Failed | RtcPeerConnectionState::Closed
            )
    }
}

impl Drop for PeerLink {
    fn drop(&mut self) {
        self.connection.close();
    }
}

impl fmt::Debug for PeerLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PeerLink")
            .field("remote", &self.remote)
            .finish_non_exhaustive()
    }
}
