//! One `RTCDataChannel` of a transfer: typed messages and chunks in as a queue, out through the
//! protocol's codec, with backpressure.
//!
//! The browser buffers whatever `send` is given, without limit, until it is on the wire; a
//! sender that does not wait would copy a whole file into memory. So chunks go out only while
//! no more than the high-water mark is queued; `bufferedamountlow` (at half of it) says when a
//! channel has room again. Chromium drains its queue smoothly and fires the event at the
//! threshold; Firefox reports the queue in one step and fires it once the queue is empty —
//! waiting for the event works with both. High-water marks from 1 to 16 MiB measured the
//! same between two Chromium processes on one machine; across a wide-area link every queued
//! byte is latency (a block's digest and the receiver's acknowledgements wait behind it, and
//! a lane carries a few MB/s there), so the default is 2 MiB.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use ferry_protocol::TransferMessage;
use ferry_protocol::chunk::{CHUNK_HEADER_BYTES, ChunkHeader};
use ferry_protocol::pieces::{Joiner, texts};
use futures::StreamExt;
use futures::channel::mpsc;
use js_sys::{ArrayBuffer, Uint8Array};
use wasm_bindgen::JsCast;
use web_sys::{MessageEvent, RtcDataChannel, RtcDataChannelState, RtcDataChannelType};

use super::{Context, JsError, Listener, Notify};

/// The default high-water mark: above this many queued bytes, a channel takes no more chunks.
pub const HIGH_WATER: u32 = 2 * 1024 * 1024;

/// Something that happened on a channel, in order.
#[derive(Debug)]
pub enum ChannelEvent {
    /// The channel can carry messages.
    Open,
    /// A control message.
    Message(TransferMessage),
    /// File bytes and where they belong; the bytes stay in JavaScript memory, so a sink can
    /// write them without another copy.
    Chunk(ChunkHeader, Uint8Array),
    /// Something that is no message of this protocol; the text says what.
    Unreadable(String),
    /// The channel closed (or failed); nothing follows.
    Closed,
}

/// A data channel with its listeners; dropping it closes the channel.
#[derive(Debug)]
pub struct Channel {
    channel: RtcDataChannel,
    events: RefCell<mpsc::UnboundedReceiver<ChannelEvent>>,
    ending: Ending,
    high_water: u32,
    /// Where each outgoing chunk is laid out, header then bytes. `send` copies what it is
    /// given before it returns, so one buffer serves every chunk: a fresh one per chunk cost
    /// the renderer an allocation and its page faults for every 256 KiB sent.
    staging: RefCell<Option<Uint8Array>>,
    _listeners: [Listener; 4],
}

/// Tells this side's tasks that the channel is closed: reads end with one
/// [`ChannelEvent::Closed`] and a sender waiting for room wakes. Used by the `close` event and
/// by [`Channel::close`] itself, since a channel closed from this side (or under a peer
/// connection that was closed) may never fire that event.
#[derive(Clone, Debug)]
struct Ending {
    events: mpsc::UnboundedSender<ChannelEvent>,
    drained: Notify,
    closed: Rc<Cell<bool>>,
}

impl Ending {
    fn end(&self) {
        if self.closed.replace(true) {
            return;
        }
        let _ = self.events.unbounded_send(ChannelEvent::Closed);
        self.drained.notify_all();
    }
}

impl Channel {
    /// Wraps a channel this browser created or was handed by `datachannel`; above
    /// `high_water` queued bytes it takes no chunks until `drained` says it has room, which
    /// several channels of one transfer may share.
    pub fn new(channel: RtcDataChannel, high_water: u32, drained: Notify) -> Self {
        // Both browsers default to "arraybuffer" today, but the default has differed, and a
        // Blob would need another round trip to read.
        channel.set_binary_type(RtcDataChannelType::Arraybuffer);
        channel.set_buffered_amount_low_threshold(high_water / 2);
        let (sender, events) = mpsc::unbounded();
        if channel.ready_state() == RtcDataChannelState::Open {
            let _ = sender.unbounded_send(ChannelEvent::Open);
        }
        let ending = Ending {
            events: sender.clone(),
            drained: drained.clone(),
            closed: Rc::new(Cell::new(false)),
        };
        let target = channel.unchecked_ref();
        let on_open = {
            let sender = sender.clone();
            Listener::new(target, "open", move |_| {
                let _ = sender.unbounded_send(ChannelEvent::Open);
            })
        };
        // A long control message arrives in pieces, joined here.
        let joiner = RefCell::new(Joiner::default());
        let on_message = Listener::new(target, "message", move |event| {
            let data = event.unchecked_into::<MessageEvent>().data();
            if let Some(event) = decode(&data, &mut joiner.borrow_mut()) {
                let _ = sender.unbounded_send(event);
            }
        });
        let on_close = {
            let ending = ending.clone();
            Listener::new(target, "close", move |_| ending.end())
        };
        let on_low = Listener::new(target, "bufferedamountlow", move |_| drained.notify_all());
        Self {
            channel,
            events: RefCell::new(events),
            ending,
            high_water,
            staging: RefCell::new(None),
            _listeners: [on_open, on_message, on_close, on_low],
        }
    }

    /// The next event; [`ChannelEvent::Closed`] forever after the channel closed.
    // Only one task at a time reads a channel, so this borrow is never contended (a second
    // reader would be a bug worth a panic). Holding the borrow, rather than taking the
    // receiver out, keeps the queue intact when a `select!` drops this future mid-wait.
    #[allow(clippy::await_holding_refcell_ref)]
    pub async fn next(&self) -> ChannelEvent {
        if self.ending.closed.get() {
            // Nothing arrives after the close: what is queued, then `Closed` for good.
            return self.try_next().unwrap_or(ChannelEvent::Closed);
        }
        let mut events = self.events.borrow_mut();
        events.next().await.unwrap_or(ChannelEvent::Closed)
    }

    /// The next event if one is already queued, without waiting.
    pub fn try_next(&self) -> Option<ChannelEvent> {
        match self.events.borrow_mut().try_recv() {
            Ok(event) => Some(event),
            Err(mpsc::TryRecvError::Closed) => Some(ChannelEvent::Closed),
            Err(mpsc::TryRecvError::Empty) => None,
        }
    }

    /// Sends a control message (in pieces, when it is too long for one).
    pub fn send(&self, message: &TransferMessage) -> Result<(), JsError> {
        for text in texts(message) {
            self.channel
                .send_with_str(&text)
                .context("sending a message to the other browser")?;
        }
        Ok(())
    }

    /// Sends a chunk, header and bytes in one message, whether or not the queue has room:
    /// the caller checks [`Channel::has_room`] first.
    pub fn send_chunk(&self, header: ChunkHeader, bytes: &Uint8Array) -> Result<(), JsError> {
        // A connection closed from this page (`close()`) closes its channels without an
        // event; their state says so at once.
        if self.ending.closed.get() || self.channel.ready_state() != RtcDataChannelState::Open {
            return Err(JsError::plain("sending file bytes", "the channel closed"));
        }
        let len = CHUNK_HEADER_BYTES as u32 + bytes.length();
        let mut staging = self.staging.borrow_mut();
        let buffer = match &*staging {
            Some(buffer) if buffer.length() >= len => buffer,
            _ => staging.insert(Uint8Array::new_with_length(len)),
        };
        buffer
            .subarray(0, CHUNK_HEADER_BYTES as u32)
            .copy_from(&header.encode());
        buffer.set(bytes, CHUNK_HEADER_BYTES as u32);
        self.channel
            .send_with_array_buffer_view(&buffer.subarray(0, len))
            .context("sending file bytes")
    }

    /// The bytes queued in the browser, not yet on the wire.
    pub fn buffered(&self) -> u64 {
        u64::from(self.channel.buffered_amount())
    }

    /// Whether the channel takes chunks now: open, and below its high-water mark.
    pub fn has_room(&self) -> bool {
        self.is_open() && self.buffered() <= u64::from(self.high_water)
    }

    /// The channel's `readyState`, in words.
    pub fn state(&self) -> String {
        format!("{:?}", self.channel.ready_state()).to_lowercase()
    }

    /// Whether messages can be sent.
    pub fn is_open(&self) -> bool {
        !self.ending.closed.get() && self.channel.ready_state() == RtcDataChannelState::Open
    }

    /// Whether the channel is closed or closing, which it becomes without any event when its
    /// peer connection is closed from this page; this side's tasks then hear of it.
    pub fn ended_quietly(&self) -> bool {
        let ended = matches!(
            self.channel.ready_state(),
            RtcDataChannelState::Closing | RtcDataChannelState::Closed
        );
        if ended {
            self.ending.end();
        }
        ended
    }

    /// The channel's label.
    pub fn label(&self) -> String {
        self.channel.label()
    }

    /// Closes the channel; queued messages are still delivered first. This side's tasks hear
    /// of it at once.
    pub fn close(&self) {
        self.channel.close();
        self.ending.end();
    }
}

impl Drop for Channel {
    fn drop(&mut self) {
        self.channel.close();
    }
}

/// Reads one message event's data: JSON text is a control message (or a piece of one, which
/// makes no event until the last piece), an `ArrayBuffer` a chunk.
fn decode(data: &wasm_bindgen::JsValue, joiner: &mut Joiner) -> Option<ChannelEvent> {
    if let Some(text) = data.as_string() {
        return match joiner.read(&text) {
            Ok(message) => message.map(ChannelEvent::Message),
            Err(error) => Some(ChannelEvent::Unreadable(error.to_string())),
        };
    }
    Some(decode_chunk(data))
}

/// Reads a binary message: a chunk's header and bytes.
fn decode_chunk(data: &wasm_bindgen::JsValue) -> ChannelEvent {
    let Some(buffer) = data.dyn_ref::<ArrayBuffer>() else {
        return ChannelEvent::Unreadable("a message that is neither text nor bytes".into());
    };
    let bytes = Uint8Array::new(buffer);
    let mut header = [0u8; CHUNK_HEADER_BYTES];
    if bytes.length() < CHUNK_HEADER_BYTES as u32 {
        return ChannelEvent::Unreadable(format!("{} bytes are no chunk", bytes.length()));
    }
    bytes
        .subarray(0, CHUNK_HEADER_BYTES as u32)
        .copy_to(&mut header);
    match ChunkHeader::decode(&header) {
        Ok(header) => ChannelEvent::Chunk(
            header,
            bytes.subarray(CHUNK_HEADER_BYTES as u32, bytes.length()),
        ),
        Err(error) => ChannelEvent::Unreadable(error.to_string()),
    }
}
