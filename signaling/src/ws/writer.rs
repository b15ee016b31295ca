//! A connection's writer: drains its outbound queue into the socket, in fragments where a
//! message is long, until the queue closes, a close frame has gone out or the socket fails.

use futures::{Sink, SinkExt};
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::{self, Bytes, Message};

use crate::outbound::{Outbound, Receiver};

/// Messages longer than this go out in fragments of this size. The write buffer grows to the
/// largest frame it formats and never shrinks, and a welcome lists everyone online: sent
/// whole, every connection would keep a buffer as large as the user list at its join.
const FRAGMENT_BYTES: usize = 4 * 1024;

/// Sends what is queued; see the module's summary.
///
/// Messages are fed into tungstenite's write buffer and flushed once the queue is empty, so a
/// burst costs a few system calls instead of one per message.
pub(super) async fn write<S>(mut sink: S, mut rx: Receiver)
where
    S: Sink<Message, Error = tungstenite::Error> + Unpin,
{
    while let Some(outbound) = rx.recv().await {
        let written = match &outbound {
            Outbound::Text(text) | Outbound::Relayed { text, .. } => {
                feed(&mut sink, &[Bytes::from(text.clone())]).await
            }
            Outbound::Parts(parts) => feed(&mut sink, parts).await,
            Outbound::Close(frame) => {
                if let Err(err) = sink.send(Message::Close(Some(frame.clone()))).await {
                    tracing::debug!(error = %err, "could not send a close frame");
                }
                return;
            }
        };
        let written = match written {
            Ok(()) if rx.is_empty() => sink.flush().await,
            fed => fed,
        };
        rx.sent(&outbound);
        if let Err(err) = written {
            tracing::debug!(error = %err, "could not write to a WebSocket");
            return;
        }
    }
}

/// Feeds one text message, given as consecutive `parts`, to the sink: whole when it is short
/// and in one piece, else in fragments of at most [`FRAGMENT_BYTES`]. A fragment may split a
/// character; only the whole message has to be valid UTF-8.
async fn feed<S>(sink: &mut S, parts: &[Bytes]) -> Result<(), tungstenite::Error>
where
    S: Sink<Message, Error = tungstenite::Error> + Unpin,
{
    if let [whole] = parts
        && whole.len() <= FRAGMENT_BYTES
    {
        // A shared `Bytes` of valid UTF-8 (every part came from a `Utf8Bytes` or JSON).
        let text = tungstenite::Utf8Bytes::try_from(whole.clone())
            .map_err(|err| tungstenite::Error::Utf8(err.to_string()))?;
        return sink.feed(Message::Text(text)).await;
    }
    let pieces: Vec<Bytes> = parts
        .iter()
        .flat_map(|part| {
            (0..part.len())
                .step_by(FRAGMENT_BYTES)
                .map(move |start| part.slice(start..(start + FRAGMENT_BYTES).min(part.len())))
        })
        .collect();
    let last = pieces.len().saturating_sub(1);
    for (index, piece) in pieces.into_iter().enumerate() {
        let opcode = if index == 0 {
            Data::Text
        } else {
            Data::Continue
        };
        let frame = Frame::message(piece, OpCode::Data(opcode), index == last);
        sink.feed(Message::Frame(frame)).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use futures::StreamExt;
    use tokio::io::duplex;
    use tokio_tungstenite::WebSocketStream;
    use tokio_tungstenite::tungstenite::protocol::Role;

    use super::*;

    /// Feeds `parts` through a real WebSocket pair and returns what the other end read.
    async fn round_trip(parts: Vec<Bytes>) -> String {
        let (server, client) = duplex(1 << 20);
        let server = WebSocketStream::from_raw_socket(server, Role::Server, None).await;
        let mut client = WebSocketStream::from_raw_socket(client, Role::Client, None).await;
        let (mut sink, _stream) = server.split();
        feed(&mut sink, &parts).await.unwrap();
        sink.flush().await.unwrap();
        match client.next().await.unwrap().unwrap() {
            Message::Text(text) => text.as_str().to_owned(),
            other => panic!("expected text, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn short_and_long_messages_and_parts_arrive_whole() {
        assert_eq!(round_trip(vec![Bytes::from_static(b"{}")]).await, "{}");
        let long = "é".repeat(3 * FRAGMENT_BYTES);
        assert_eq!(round_trip(vec![Bytes::from(long.clone())]).await, long);
        let parts = vec![
            Bytes::from_static(b"{\"users\":"),
            Bytes::from("[".to_owned() + &"1,".repeat(FRAGMENT_BYTES) + "1]"),
            Bytes::from_static(b"}"),
        ];
        let joined = String::from_utf8(parts.concat()).unwrap();
        assert_eq!(round_trip(parts).await, joined);
    }
}
