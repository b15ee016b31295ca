//! One WebRTC connection with one peer on one lane, as the browsers make them: trickle ICE and
//! perfect negotiation (the lower id is polite), in-band data channels, and a task that applies
//! the peer's signals in order.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use ferry_protocol::{IceServer, PeerId, SignalPayload};
use rtc::ice::mdns::MulticastDnsMode;
use rtc::peer_connection::configuration::setting_engine::SctpMaxMessageSize;
use tokio::sync::{mpsc, watch};
use webrtc::data_channel::{DataChannel, RTCDataChannelInit};
use webrtc::peer_connection::{
    PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler, RTCCertificate,
    RTCConfigurationBuilder, RTCIceCandidateInit, RTCIceServer, RTCIceTransportPolicy,
    RTCPeerConnectionIceEvent, RTCPeerConnectionState, RTCSessionDescription, SettingEngineBuilder,
};

use crate::channel::{Channel, HIGH_WATER};
use crate::signaling::Outbox;
use crate::sockets::Buffered;

/// The largest message either side may send: Chromium's limit, and Ferry's largest chunk.
const MAX_MESSAGE: u32 = 256 * 1024;

/// Why a connection cannot be made.
#[derive(Debug, thiserror::Error)]
#[error("cannot make a WebRTC connection: {0}")]
pub struct LinkError(String);

impl From<webrtc::error::Error> for LinkError {
    fn from(error: webrtc::error::Error) -> Self {
        Self(error.to_string())
    }
}

/// How a link fares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkState {
    /// Not connected yet.
    Connecting,
    /// Bytes can move.
    Connected,
    /// Gone for good (failed or closed).
    Dead,
}

/// What every link is made with.
#[derive(Clone)]
pub struct LinkSettings {
    /// This client's id (which side is polite follows from it).
    pub me: PeerId,
    /// The STUN and TURN servers.
    pub ice_servers: Vec<IceServer>,
    /// Whether only relayed paths may be used.
    pub relay_only: bool,
    /// This device's certificate, the same for every connection.
    pub certificate: RTCCertificate,
    /// Where to bind the UDP sockets (every interface when `None`).
    pub bind: Option<IpAddr>,
    /// The SCTP window to advertise ([`crate::sockets::receive_window`]).
    pub window: u32,
    /// Signals go out here.
    pub outbox: Outbox,
}

impl fmt::Debug for LinkSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LinkSettings")
            .field("me", &self.me)
            .field("relay_only", &self.relay_only)
            .field("bind", &self.bind)
            .finish_non_exhaustive()
    }
}

/// A channel the peer opened.
#[derive(Debug)]
pub struct Incoming {
    /// Who opened it.
    pub peer: PeerId,
    /// The channel.
    pub channel: Channel,
    /// Its label.
    pub label: String,
}

/// One connection with one peer on one lane.
#[derive(Clone)]
pub struct Link {
    /// The peer.
    pub peer: PeerId,
    /// Which of the connections with them.
    pub lane: u32,
    pc: Arc<dyn PeerConnection>,
    signals: mpsc::UnboundedSender<SignalPayload>,
    state: watch::Receiver<LinkState>,
    /// The `o=` session id of the peer's description, to tell a reloaded peer's new connection.
    remote_session: Arc<std::sync::Mutex<Option<String>>>,
}

impl fmt::Debug for Link {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Link")
            .field("peer", &self.peer)
            .field("lane", &self.lane)
            .field("state", &*self.state.borrow())
            .finish_non_exhaustive()
    }
}

/// What the connection's driver reports; its callbacks only forward these.
enum Happening {
    NegotiationNeeded,
    Candidate(RTCPeerConnectionIceEvent),
    State(RTCPeerConnectionState),
    Channel(Arc<dyn DataChannel>),
}

struct Forward(mpsc::UnboundedSender<Happening>);

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Forward {
    async fn on_negotiation_needed(&self) {
        let _ = self.0.send(Happening::NegotiationNeeded);
    }

    async fn on_ice_candidate(&self, event: RTCPeerConnectionIceEvent) {
        let _ = self.0.send(Happening::Candidate(event));
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        let _ = self.0.send(Happening::State(state));
    }

    async fn on_data_channel(&self, data_channel: Arc<dyn DataChannel>) {
        let _ = self.0.send(Happening::Channel(data_channel));
    }
}

impl Link {
    /// Makes the connection with `peer` on `lane`; channels the peer opens go to `incoming`.
    ///
    /// # Errors
    /// When the WebRTC stack refuses the settings or cannot bind.
    pub async fn new(
        settings: &LinkSettings,
        peer: PeerId,
        lane: u32,
        incoming: mpsc::UnboundedSender<Incoming>,
    ) -> Result<Self, LinkError> {
        let servers = settings
            .ice_servers
            .iter()
            .map(|server| RTCIceServer {
                urls: server.urls.clone(),
                username: server.username.clone().unwrap_or_default(),
                credential: server.credential.clone().unwrap_or_default(),
            })
            .collect();
        let mut configuration = RTCConfigurationBuilder::new()
            .with_ice_servers(servers)
            .with_certificates(vec![settings.certificate.clone()]);
        if settings.relay_only {
            configuration = configuration.with_ice_transport_policy(RTCIceTransportPolicy::Relay);
        }
        let mut engine = SettingEngineBuilder::new()
            .with_sctp_max_message_size(SctpMaxMessageSize::Bounded(MAX_MESSAGE))
            .with_sctp_max_receive_buffer_size(settings.window);
        let bind = match settings.bind {
            // A given address is bound as it is, loopback included; multicast DNS needs the
            // machine's interfaces, which a chosen address says not to use.
            Some(ip) => {
                engine = engine.with_multicast_dns_mode(MulticastDnsMode::Disabled);
                vec![format!("{}", std::net::SocketAddr::new(ip, 0))]
            }
            None => vec!["0.0.0.0:0".to_owned(), "[::]:0".to_owned()],
        };
        let (happenings, happened) = mpsc::unbounded_channel();
        let pc = PeerConnectionBuilder::new()
            .with_configuration(configuration.build())
            .with_setting_engine(engine.build())
            .with_handler(Arc::new(Forward(happenings)))
            .with_runtime(Arc::new(Buffered::default()))
            .with_udp_addrs(bind)
            .with_data_channel_send_buffer_limit(HIGH_WATER)
            .build()
            .await?;
        let pc: Arc<dyn PeerConnection> = Arc::new(pc);
        let (signals, signalled) = mpsc::unbounded_channel();
        let (state_tx, state) = watch::channel(LinkState::Connecting);
        let link = Self {
            peer,
            lane,
            pc,
            signals,
            state,
            remote_session: Arc::default(),
        };
        let driver = Driver {
            link: link.clone(),
            polite: settings.me.as_str() < link.peer.as_str(),
            outbox: settings.outbox.clone(),
            incoming,
            state: state_tx,
            making_offer: false,
            early: Vec::new(),
        };
        tokio::spawn(driver.run(signalled, happened));
        Ok(link)
    }

    /// Hands the peer's signal to this link.
    pub fn signal(&self, payload: SignalPayload) {
        let _ = self.signals.send(payload);
    }

    /// Whether an offer with this SDP comes from another connection than this link's (the
    /// peer reloaded): then this link is to be replaced.
    pub fn is_other_session(&self, sdp: &str) -> bool {
        let known = self
            .remote_session
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        matches!((known.as_deref(), ferry_core::sdp::session_id(sdp)), (Some(old), Some(new)) if old != new)
    }

    /// Opens an in-band, ordered, reliable channel named `label`.
    ///
    /// # Errors
    /// When the connection is closed.
    pub async fn open(&self, label: &str) -> Result<Channel, LinkError> {
        let init = RTCDataChannelInit {
            ordered: true,
            ..Default::default()
        };
        let channel = self.pc.create_data_channel(label, Some(init)).await?;
        Ok(Channel::new(channel, self.clone()))
    }

    /// Whether the connection is gone for good.
    pub fn is_dead(&self) -> bool {
        *self.state.borrow() == LinkState::Dead
    }

    /// The largest message both sides take (once connected).
    pub async fn max_message_size(&self) -> Option<u32> {
        let sctp = self.pc.sctp().await?;
        sctp.max_message_size().await.ok()
    }

    /// Closes the connection.
    pub async fn close(&self) {
        let _ = self.pc.close().await;
    }
}

/// The task that owns a link's negotiation.
struct Driver {
    link: Link,
    polite: bool,
    outbox: Outbox,
    incoming: mpsc::UnboundedSender<Incoming>,
    state: watch::Sender<LinkState>,
    making_offer: bool,
    /// Candidates that came before the peer's description.
    early: Vec<RTCIceCandidateInit>,
}

impl Driver {
    async fn run(
        mut self,
        mut signalled: mpsc::UnboundedReceiver<SignalPayload>,
        mut happened: mpsc::UnboundedReceiver<Happening>,
    ) {
        loop {
            tokio::select! {
                signal = signalled.recv() => match signal {
                    Some(signal) => self.apply(signal).await,
                    None => break,
                },
                happening = happened.recv() => match happening {
                    Some(happening) => {
                        if !self.react(happening).await {
                            break;
                        }
                    }
                    None => break,
                },
            }
        }
        let _ = self.state.send(LinkState::Dead);
        let _ = self.link.pc.close().await;
    }

    /// Takes what the driver reported; false once the connection is dead.
    async fn react(&mut self, happening: Happening) -> bool {
        match happening {
            Happening::NegotiationNeeded => {
                if let Err(error) = self.offer().await {
                    debug_note(&format!("an offer failed: {error}"));
                }
            }
            Happening::Candidate(event) => {
                if let Ok(init) = event.candidate.to_json() {
                    let mid = self.local_mid().await;
                    self.outbox.signal(
                        &self.link.peer,
                        SignalPayload::IceCandidate {
                            candidate: init.candidate,
                            sdp_mid: mid,
                            sdp_m_line_index: Some(0),
                        },
                        self.link.lane,
                    );
                }
            }
            Happening::State(state) => match state {
                RTCPeerConnectionState::Connected => {
                    let _ = self.state.send(LinkState::Connected);
                }
                RTCPeerConnectionState::Failed | RTCPeerConnectionState::Closed => return false,
                _ => {}
            },
            Happening::Channel(channel) => {
                let label = channel.label().await.unwrap_or_default();
                let _ = self.incoming.send(Incoming {
                    peer: self.link.peer.clone(),
                    channel: Channel::new(channel, self.link.clone()),
                    label,
                });
            }
        }
        true
    }

    async fn offer(&mut self) -> Result<(), LinkError> {
        self.making_offer = true;
        let made = async {
            let offer = self.link.pc.create_offer(None).await?;
            self.link.pc.set_local_description(offer).await?;
            Ok::<_, LinkError>(self.link.pc.local_description().await)
        }
        .await;
        self.making_offer = false;
        if let Some(description) = made? {
            self.outbox.signal(
                &self.link.peer,
                SignalPayload::Offer {
                    sdp: description.sdp,
                },
                self.link.lane,
            );
        }
        Ok(())
    }

    /// Applies the peer's signal, by the rules of perfect negotiation.
    async fn apply(&mut self, signal: SignalPayload) {
        let applied = match signal {
            SignalPayload::Offer { sdp } => self.take_offer(sdp).await,
            SignalPayload::Answer { sdp } => self.take_answer(sdp).await,
            SignalPayload::IceCandidate {
                candidate,
                sdp_mid,
                sdp_m_line_index,
            } => {
                let init = RTCIceCandidateInit {
                    candidate,
                    sdp_mid,
                    sdp_mline_index: sdp_m_line_index,
                    ..Default::default()
                };
                if self.link.pc.remote_description().await.is_none() {
                    self.early.push(init);
                } else {
                    // A candidate this stack cannot use (a TCP one, say) leaves the others.
                    let _ = self.link.pc.add_ice_candidate(init).await;
                }
                Ok(())
            }
        };
        if let Err(error) = applied {
            debug_note(&format!("a signal from the peer failed: {error}"));
        }
    }

    async fn take_offer(&mut self, sdp: String) -> Result<(), LinkError> {
        let stable = self.link.pc.pending_local_description().await.is_none();
        let collision = self.making_offer || !stable;
        if collision && !self.polite {
            return Ok(());
        }
        if collision {
            self.link
                .pc
                .set_local_description(RTCSessionDescription::rollback(None)?)
                .await?;
        }
        self.remember_session(&sdp);
        self.link
            .pc
            .set_remote_description(RTCSessionDescription::offer(sdp)?)
            .await?;
        self.add_early().await;
        let answer = self.link.pc.create_answer(None).await?;
        self.link.pc.set_local_description(answer).await?;
        if let Some(description) = self.link.pc.local_description().await {
            self.outbox.signal(
                &self.link.peer,
                SignalPayload::Answer {
                    sdp: description.sdp,
                },
                self.link.lane,
            );
        }
        Ok(())
    }

    async fn take_answer(&mut self, sdp: String) -> Result<(), LinkError> {
        if self.link.pc.pending_local_description().await.is_none() {
            // An answer to an offer this side rolled back or never made.
            return Ok(());
        }
        self.remember_session(&sdp);
        self.link
            .pc
            .set_remote_description(RTCSessionDescription::answer(sdp)?)
            .await?;
        self.add_early().await;
        Ok(())
    }

    fn remember_session(&self, sdp: &str) {
        let mut known = self
            .link
            .remote_session
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *known = ferry_core::sdp::session_id(sdp).map(str::to_owned);
    }

    async fn add_early(&mut self) {
        for init in std::mem::take(&mut self.early) {
            let _ = self.link.pc.add_ice_candidate(init).await;
        }
    }

    /// The media section's id in the local description, which candidates name (this stack
    /// leaves it empty, and browsers refuse an empty one).
    async fn local_mid(&self) -> Option<String> {
        let description = self.link.pc.local_description().await?;
        description
            .sdp
            .lines()
            .find_map(|line| line.strip_prefix("a=mid:"))
            .map(|mid| mid.trim().to_owned())
    }
}

/// Says what went wrong inside a link, where a person debugging can see it.
pub(crate) fn debug_note(what: &str) {
    if std::env::var_os("FERRY_DEBUG").is_some() {
        eprintln!("ferry: {what}");
    }
}
