//! A data channel as Ferry speaks on it: JSON messages (in pieces when long) and binary
//! chunks, read by a pump that never lets the connection's events back up.

use std::fmt;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use ferry_protocol::TransferMessage;
use ferry_protocol::chunk::{CHUNK_HEADER_BYTES, ChunkHeader};
use ferry_protocol::pieces::{Joiner, texts};
use tokio::sync::mpsc;
use webrtc::data_channel::{DataChannel, DataChannelEvent};

use crate::link::Link;

/// How many bytes a channel may hold unsent before a send waits: enough to keep a fast link
/// busy between two wake-ups, small enough that memory stays flat.
pub const HIGH_WATER: usize = 4 * 1024 * 1024;

/// How long the last messages may take to reach the peer before a connection closes.
pub const FLUSH_LIMIT: std::time::Duration = std::time::Duration::from_secs(5);

/// What happens on a channel, in order.
#[derive(Debug)]
pub enum ChannelEvent {
    /// It opened: messages can go.
    Open,
    /// A whole message.
    Message(TransferMessage),
    /// A chunk of a file.
    Chunk {
        /// Where its bytes belong.
        header: ChunkHeader,
        /// The message, header included (the bytes start at [`CHUNK_HEADER_BYTES`]).
        message: Bytes,
    },
    /// Something that is not Ferry's protocol arrived.
    Garbled,
    /// It closed (or its connection did).
    Closed,
}

/// The channel's side that sends.
#[derive(Clone)]
pub struct Sender {
    channel: Arc<dyn DataChannel>,
    /// Keeps the connection alive while its channel is used.
    _link: Link,
}

impl fmt::Debug for Sender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sender").finish_non_exhaustive()
    }
}

/// Why a send failed: the channel is closed.
#[derive(Debug, thiserror::Error)]
#[error("the data channel closed")]
pub struct Closed;

impl Sender {
    /// Sends a message, in pieces when long.
    ///
    /// # Errors
    /// When the channel is closed.
    pub async fn send(&self, message: &TransferMessage) -> Result<(), Closed> {
        for text in texts(message) {
            self.channel.send_text(&text).await.map_err(|_| Closed)?;
        }
        Ok(())
    }

    /// Sends a chunk of file `file` at `offset`; waits while the channel is full.
    ///
    /// # Errors
    /// When the channel is closed.
    pub async fn send_chunk(&self, file: u32, offset: u64, bytes: &[u8]) -> Result<(), Closed> {
        let mut message = BytesMut::with_capacity(CHUNK_HEADER_BYTES + bytes.len());
        message.extend_from_slice(&ChunkHeader { file, offset }.encode());
        message.extend_from_slice(bytes);
        self.channel.send(message).await.map_err(|_| Closed)
    }

    /// The bytes handed to the channel that the peer has not acknowledged yet.
    pub async fn waiting(&self) -> u64 {
        let waiting = self.channel.outstanding_bytes().await.unwrap_or(0);
        u64::try_from(waiting).unwrap_or(u64::MAX)
    }

    /// Waits (up to `limit`) until the peer acknowledged everything sent: closing the
    /// connection drops what is still queued, a last verdict included.
    pub async fn flushed(&self, limit: std::time::Duration) {
        let deadline = tokio::time::Instant::now() + limit;
        while self.channel.outstanding_bytes().await.unwrap_or(0) > 0
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }

    /// Closes the channel.
    pub async fn close(&self) {
        let _ = self.channel.close().await;
    }
}

/// A channel: its sender, and its events in order.
#[derive(Debug)]
pub struct Channel {
    /// Sends on it.
    pub sender: Sender,
    events: mpsc::UnboundedReceiver<ChannelEvent>,
}

impl Channel {
    /// Wraps `channel` of `link` and starts reading it.
    pub fn new(channel: Arc<dyn DataChannel>, link: Link) -> Self {
        let (tx, events) = mpsc::unbounded_channel();
        tokio::spawn(pump(Arc::clone(&channel), tx));
        Self {
            sender: Sender {
                channel,
                _link: link,
            },
            events,
        }
    }

    /// The next event; [`ChannelEvent::Closed`] for ever after the channel closed.
    pub async fn next(&mut self) -> ChannelEvent {
        self.events.recv().await.unwrap_or(ChannelEvent::Closed)
    }

    /// Waits until the channel opens; false when it closed first.
    pub async fn opened(&mut self) -> bool {
        loop {
            match self.next().await {
                ChannelEvent::Open => return true,
                ChannelEvent::Closed => return false,
                _ => {}
            }
        }
    }
}

/// Reads every event of the channel as it comes: a channel that is not read holds up the
/// whole connection's.
async fn pump(channel: Arc<dyn DataChannel>, events: mpsc::UnboundedSender<ChannelEvent>) {
    let mut joiner = Joiner::default();
    // An incoming channel may be open before its events are read; it says so once.
    let mut open = matches!(
        channel.ready_state().await,
        Ok(webrtc::data_channel::RTCDataChannelState::Open)
    );
    if open {
        let _ = events.send(ChannelEvent::Open);
    }
    while let Some(event) = channel.poll().await {
        let event = match event {
            DataChannelEvent::OnOpen if open => continue,
            DataChannelEvent::OnOpen => {
                open = true;
                ChannelEvent::Open
            }
            // webrtc 0.21 may report the close before the channel's last messages, which
            // still follow: the channel is read until it has nothing more.
            DataChannelEvent::OnClose => continue,
            DataChannelEvent::OnMessage(message) if message.is_string => {
                let read = std::str::from_utf8(&message.data)
                    .ok()
                    .map(|text| joiner.read(text));
                match read {
                    Some(Ok(Some(message))) => ChannelEvent::Message(message),
                    Some(Ok(None)) => continue,
                    Some(Err(_)) | None => ChannelEvent::Garbled,
                }
            }
            DataChannelEvent::OnMessage(message) => {
                let message = message.data.freeze();
                match ChunkHeader::decode(&message) {
                    Ok(header) => ChannelEvent::Chunk { header, message },
                    Err(_) => ChannelEvent::Garbled,
                }
            }
            _ => continue,
        };
        if events.send(event).is_err() {
            // Nobody reads any more; keep draining so the connection's other channels flow.
            continue;
        }
    }
    let _ = events.send(ChannelEvent::Closed);
}
