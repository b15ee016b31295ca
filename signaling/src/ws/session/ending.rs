//! How a connection ends: why its read loop stopped, what the registry does about it (leave
//! at once, or linger for a reconnect), and the last words and close code the client gets.

use std::time::Duration;

use ferry_protocol::{ErrorCode, ServerMessage};
use futures::StreamExt;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use super::{Reader, Socket};
use crate::outbound::Outbound;
use crate::registry::{Kick, Refusal, encode};

/// How long a closing connection gets to flush its last messages and finish the close
/// handshake before it is dropped; short, because shutdown waits for it.
const CLOSE_GRACE: Duration = Duration::from_millis(250);

/// Why a connection's read loop stopped.
#[derive(Debug)]
pub(super) enum Ending {
    /// The client sent a close frame.
    ClientClosed,
    /// The socket failed or ended without a close frame.
    Dropped,
    /// The server is shutting down.
    Shutdown,
    /// The registry ended the connection.
    Kicked(Kick),
    /// The client broke a rule that ends the connection: tell it why (when it is worth a
    /// message), then close with `code`.
    Fatal {
        refusal: Option<Refusal>,
        code: CloseCode,
        reason: &'static str,
    },
    /// The server could not go on with this connection.
    Internal,
}

impl Reader {
    /// The ending for an error reading the socket, with the close code RFC 6455 names for it.
    pub(super) fn on_read_error(&self, err: tungstenite::Error) -> Ending {
        let (code, reason, refusal) = match &err {
            tungstenite::Error::Capacity(_) => (
                CloseCode::Size,
                "message too large",
                Some(Refusal::new(
                    ErrorCode::MessageTooLarge,
                    format!(
                        "messages can have at most {} bytes",
                        self.state.config().limits.max_message_bytes
                    ),
                )),
            ),
            tungstenite::Error::Protocol(_) => (CloseCode::Protocol, "protocol error", None),
            tungstenite::Error::Utf8(_) => (CloseCode::Invalid, "invalid UTF-8", None),
            _ => {
                tracing::debug!(conn = self.conn, error = %err, "connection failed");
                return Ending::Dropped;
            }
        };
        tracing::debug!(conn = self.conn, error = %err, "closing a connection that broke the WebSocket protocol");
        Ending::Fatal {
            refusal,
            code,
            reason,
        }
    }

    /// Unregisters as `ending` demands, says goodbye and closes, within [`CLOSE_GRACE`].
    pub(super) async fn finish(
        self,
        ending: Ending,
        mut stream: Socket,
        mut writer: JoinHandle<()>,
    ) {
        tracing::trace!(conn = self.conn, ?ending, "closing");
        if let Some(id) = &self.joined {
            let mut registry = self.state.registry();
            match &ending {
                Ending::ClientClosed => registry.leave(id, self.conn),
                Ending::Dropped
                | Ending::Fatal { .. }
                | Ending::Internal
                | Ending::Kicked(Kick::TooSlow) => registry.linger(id, self.conn, Instant::now()),
                // On shutdown nobody is left to tell; a taken-over or expired session has
                // already been handed on or announced.
                Ending::Shutdown | Ending::Kicked(Kick::TakenOver | Kick::Expired) => {}
            }
        }
        let deadline = Instant::now() + CLOSE_GRACE;
        // After a client's close, reading once more has tungstenite queue its reply.
        let mut handshake = matches!(ending, Ending::ClientClosed);
        if let Some((refusal, code, reason)) = self.farewell(ending) {
            if let Some(Refusal { code, message }) = refusal {
                // A client over its budget does not read; it gets the close alone.
                let text = encode(&ServerMessage::Error { code, message });
                let _ = self.tx.push(Outbound::Text(text));
            }
            let frame = CloseFrame {
                code,
                reason: reason.into(),
            };
            handshake = self.tx.close(frame);
        }
        drop(self.tx);
        if handshake {
            // Reading on completes the close handshake, so the TCP connection ends cleanly
            // instead of being reset with unread data.
            let _ = tokio::time::timeout_at(deadline, async {
                while let Some(Ok(_)) = stream.next().await {}
            })
            .await;
        }
        // With the socket's reader goes the last sender of the queue: the writer sends what
        // is left and ends.
        drop(stream);
        if tokio::time::timeout_at(deadline, &mut writer)
            .await
            .is_err()
        {
            writer.abort();
        }
    }

    /// The error message, close code and close reason a connection ending this way gets.
    fn farewell(&self, ending: Ending) -> Option<(Option<Refusal>, CloseCode, &'static str)> {
        let ended = |message: String| Some(Refusal::new(ErrorCode::SessionEnded, message));
        match ending {
            Ending::ClientClosed | Ending::Dropped => None,
            Ending::Shutdown => Some((
                ended("the server is shutting down".into()),
                CloseCode::Away,
                "server shutting down",
            )),
            Ending::Kicked(Kick::TakenOver) => Some((
                ended("a newer connection reclaimed this session".into()),
                CloseCode::Normal,
                "session taken over",
            )),
            Ending::Kicked(Kick::Expired) => {
                let ttl = self.state.config().presence_ttl;
                Some((
                    ended(format!("no sign of life for {ttl:?}")),
                    CloseCode::Normal,
                    "no sign of life",
                ))
            }
            Ending::Kicked(Kick::TooSlow) => {
                Some((None, CloseCode::Policy, "not reading its messages"))
            }
            Ending::Fatal {
                refusal,
                code,
                reason,
            } => Some((refusal, code, reason)),
            Ending::Internal => Some((None, CloseCode::Error, "internal error")),
        }
    }
}
