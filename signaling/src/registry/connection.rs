//! The registry's handle on one live WebSocket: its outbound queue, how to end its task, the
//! address it comes from, and what others may have waiting for it ([`Inbound`]).

use std::net::IpAddr;

use ferry_protocol::PeerId;
use tokio::sync::oneshot;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Utf8Bytes;

use crate::inbound::{Busy, Charge, Inbound, SignalLimits};
use crate::outbound::{self, Outbound, Refused};
use crate::throttle::Throttle;

/// Numbers each accepted WebSocket, so a session can tell its current connection from one it
/// was taken over from.
pub(crate) type ConnId = u64;

/// Why the registry ends a connection from outside its task.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kick {
    /// A newer connection reclaimed the session with its token.
    TakenOver,
    /// No sign of life within the time-to-live.
    Expired,
    /// It is over its outbound byte budget: the client does not read what it is sent.
    TooSlow,
}

/// The registry's handle on one live WebSocket.
#[derive(Debug)]
pub(crate) struct Connection {
    pub(super) id: ConnId,
    pub(super) tx: outbound::Sender,
    kick: Option<oneshot::Sender<Kick>>,
    /// Where it comes from; `None` for a connection without an address, as in tests through
    /// the router alone.
    pub(super) from: Option<IpAddr>,
    inbound: Inbound,
}

/// Slow readers can be many at once in a storm; one line a second says so.
static TOO_SLOW: Throttle = Throttle::new();

impl Connection {
    /// The handle for connection `id` from `from`, whose writer drains `tx`, whose task ends
    /// when `kick` fires, and whom others may send signals within `signals`, from `now`.
    pub(crate) fn new(
        id: ConnId,
        tx: outbound::Sender,
        kick: oneshot::Sender<Kick>,
        from: Option<IpAddr>,
        signals: SignalLimits,
        now: Instant,
    ) -> Self {
        Self {
            id,
            tx,
            kick: Some(kick),
            from,
            inbound: Inbound::new(signals, now),
        }
    }

    /// Takes `text`, a signal from `from`, if what others have waiting for this connection
    /// leaves room for it at `now`.
    ///
    /// A signal that would put the connection over its outbound budget is refused too: what
    /// others send never costs a reader its connection, only what the server itself must tell
    /// it (presence, its welcome) does.
    pub(super) fn relay(
        &mut self,
        from: &PeerId,
        text: Utf8Bytes,
        now: Instant,
    ) -> Result<(), Busy> {
        let charge: Charge = self.inbound.admit(from, text.len(), now)?;
        match self.tx.push(Outbound::Relayed {
            text,
            _charge: charge,
        }) {
            Ok(()) | Err(Refused::Closed) => Ok(()),
            Err(Refused::Full) => Err(Busy::Reader),
        }
    }

    /// Queues `message` without waiting. A client over its byte budget is not reading: rather
    /// than let it hold up everyone else or grow without bound, it is disconnected.
    pub(super) fn deliver(&mut self, message: Outbound) {
        match self.tx.push(message) {
            Ok(()) => {}
            Err(Refused::Full) => {
                if let Some(skipped) = TOO_SLOW.allow() {
                    tracing::warn!(
                        conn = self.id,
                        similar_skipped = skipped,
                        "outbound budget spent; disconnecting a client that does not read"
                    );
                }
                self.kick(Kick::TooSlow);
            }
            // The connection's task is already ending and will unregister it.
            Err(Refused::Closed) => {}
        }
    }

    /// Asks the connection's task to end, once.
    pub(super) fn kick(&mut self, why: Kick) {
        if let Some(kick) = self.kick.take() {
            // The task may have ended on its own meanwhile; then there is nobody to tell.
            let _ = kick.send(why);
        }
    }
}
