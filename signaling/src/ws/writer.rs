//! A connection's writer: drains its outbound queue into the socket, each message as one frame
//! written straight from its buffers, several messages to a write, until the queue closes, a
//! close frame has gone out or the socket fails.
//!
//! The frames are written here rather than through tungstenite. Its write buffer copies every
//! byte, and keeps room for the largest frame it ever held for the connection's lifetime: a
//! welcome listing everyone would leave every connection holding a buffer its size, so it
//! had to go out in 4 KiB fragments, one system call each, which was most of the server's work
//! when a crowd joined. Here a frame is a header and the message's own bytes (the list of
//! users in welcomes is one buffer shared by all of them), written with vectored writes.
//!
//! tungstenite still reads the socket, and answers pings and a client's close by itself: what
//! it writes goes into the same queue ([`Duplex`]), so every byte to the client leaves here,
//! in order.

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio_tungstenite::tungstenite::Bytes;

use crate::outbound::{self, Outbound, Receiver};

/// Messages are gathered into one write up to about this many bytes.
const BATCH_BYTES: usize = 256 * 1024;

/// The most buffers handed to one vectored write (Linux takes up to 1,024).
const MAX_SLICES: usize = 64;

/// The WebSocket opcodes the server sends (RFC 6455, section 5.2).
const TEXT: u8 = 0x1;
const CLOSE: u8 = 0x8;

/// Sends what is queued; see the module's summary.
pub(super) async fn write<W>(mut io: W, mut rx: Receiver)
where
    W: AsyncWrite + Unpin,
{
    let mut frames: Vec<Bytes> = Vec::new();
    let mut written: Vec<Outbound> = Vec::new();
    while let Some(first) = rx.recv().await {
        let mut next = Some(first);
        let mut bytes = 0;
        let mut closing = false;
        while let Some(outbound) = next.take() {
            bytes += frame(&outbound, &mut frames);
            closing = is_close(&outbound);
            written.push(outbound);
            if closing || bytes >= BATCH_BYTES {
                break;
            }
            next = rx.try_recv();
        }
        let result = write_all(&mut io, &mut frames).await;
        for message in written.drain(..) {
            rx.sent(&message);
        }
        if let Err(err) = result {
            tracing::debug!(error = %err, "could not write to a WebSocket");
            return;
        }
        if closing {
            return;
        }
    }
}

/// Appends `message` as one frame to `frames` (its header, then its own buffers); returns its
/// length.
fn frame(message: &Outbound, frames: &mut Vec<Bytes>) -> usize {
    let start = frames.len();
    match message {
        Outbound::Text(text) | Outbound::Relayed { text, .. } => {
            frames.push(header(TEXT, text.len()));
            frames.push(Bytes::from(text.clone()));
        }
        Outbound::Parts(parts) => {
            frames.push(header(TEXT, parts.iter().map(Bytes::len).sum()));
            frames.extend(parts.iter().cloned());
        }
        Outbound::Raw(bytes) => frames.push(bytes.clone()),
        Outbound::Close(close) => {
            let mut payload = u16::from(close.code).to_be_bytes().to_vec();
            payload.extend_from_slice(close.reason.as_bytes());
            frames.push(header(CLOSE, payload.len()));
            frames.push(Bytes::from(payload));
        }
    }
    frames[start..].iter().map(Bytes::len).sum()
}

/// Whether `message` closes the connection: after it, nothing more may be sent.
fn is_close(message: &Outbound) -> bool {
    match message {
        Outbound::Close(_) => true,
        Outbound::Raw(bytes) => bytes.first().is_some_and(|first| first & 0x0f == CLOSE),
        _ => false,
    }
}

/// The header of an unmasked final frame with `opcode` and `len` bytes of payload.
fn header(opcode: u8, len: usize) -> Bytes {
    let mut header = vec![0x80 | opcode];
    match len {
        0..=125 => header.push(len as u8),
        126..=0xffff => {
            header.push(126);
            header.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            header.push(127);
            header.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
    Bytes::from(header)
}

/// Writes all of `frames`, several buffers to a system call, and empties it.
async fn write_all<W>(io: &mut W, frames: &mut Vec<Bytes>) -> io::Result<()>
where
    W: AsyncWrite + Unpin,
{
    let mut first = 0;
    while first < frames.len() {
        let slices: Vec<IoSlice<'_>> = frames[first..]
            .iter()
            .take(MAX_SLICES)
            .map(|bytes| IoSlice::new(bytes))
            .collect();
        let mut wrote = io.write_vectored(&slices).await?;
        if wrote == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        while wrote > 0 {
            let bytes = &mut frames[first];
            if wrote >= bytes.len() {
                wrote -= bytes.len();
                first += 1;
            } else {
                *bytes = bytes.slice(wrote..);
                wrote = 0;
            }
        }
    }
    frames.clear();
    io.flush().await
}

/// The socket as tungstenite sees it: it reads from the connection, and what it writes (pongs,
/// the reply to a close) is queued for the writer. tungstenite hands over all it has buffered
/// in one write, which is taken whole, so each write is whole frames.
#[derive(Debug)]
pub(super) struct Duplex<R> {
    read: R,
    replies: outbound::Sender,
}

impl<R> Duplex<R> {
    /// Reads from `read`, and queues what is written on `replies`.
    pub(super) fn new(read: R, replies: outbound::Sender) -> Self {
        Self { read, replies }
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for Duplex<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.read).poll_read(cx, buf)
    }
}

impl<R: Unpin> AsyncWrite for Duplex<R> {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        // A client over its budget does not read: like any other message, this fails it.
        Poll::Ready(
            self.replies
                .push(Outbound::Raw(Bytes::copy_from_slice(buf)))
                .map(|()| buf.len())
                .map_err(|refused| io::Error::other(format!("{refused:?}"))),
        )
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use futures::StreamExt;
    use tokio::io::duplex;
    use tokio_tungstenite::WebSocketStream;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
    use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role};
    use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

    use super::*;

    /// Writes `messages` through a real socket pair and returns what a WebSocket client read.
    async fn round_trip(messages: Vec<Outbound>) -> Vec<Message> {
        let (server, client) = duplex(1 << 24);
        let (tx, rx) = outbound::queue(usize::MAX);
        for message in messages {
            tx.push(message).unwrap();
        }
        drop(tx);
        write(server, rx).await;
        let client = WebSocketStream::from_raw_socket(client, Role::Client, None).await;
        client
            .take_while(|read| std::future::ready(read.is_ok()))
            .map(Result::unwrap)
            .collect()
            .await
    }

    #[tokio::test]
    async fn short_and_long_messages_and_parts_arrive_whole_and_in_order() {
        let long = "é".repeat(40_000);
        let parts = vec![
            Bytes::from_static(b"{\"users\":"),
            Bytes::from("[".to_owned() + &"1,".repeat(70_000) + "1]"),
            Bytes::from_static(b"}"),
        ];
        let joined = String::from_utf8(parts.concat()).unwrap();
        let read = round_trip(vec![
            Outbound::Text("{}".into()),
            Outbound::Text(Utf8Bytes::from(long.clone())),
            Outbound::Parts(parts),
            Outbound::Close(CloseFrame {
                code: CloseCode::Policy,
                reason: "bye".into(),
            }),
            Outbound::Text("never sent".into()),
        ])
        .await;
        assert_eq!(read.len(), 4, "{read:?}");
        assert_eq!(read[0], Message::text("{}"));
        assert_eq!(read[1], Message::text(long));
        assert_eq!(read[2], Message::text(joined));
        assert!(
            matches!(&read[3], Message::Close(Some(frame)) if frame.code == CloseCode::Policy && frame.reason == "bye")
        );
    }

    #[test]
    fn headers_carry_each_length_in_its_shortest_form() {
        assert_eq!(header(TEXT, 5).as_ref(), [0x81, 5]);
        assert_eq!(header(TEXT, 300).as_ref(), [0x81, 126, 1, 44]);
        assert_eq!(
            header(CLOSE, 70_000).as_ref(),
            [0x88, 127, 0, 0, 0, 0, 0, 1, 0x11, 0x70]
        );
    }
}
