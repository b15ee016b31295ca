//! One transfer's `RTCDataChannel`: messages in as a queue, sends out with backpressure.
//!
//! The browser buffers whatever `send` is given, without limit, until it is on the wire; a
//! sender that does not wait would copy a whole file into memory. So [`Channel::send_bytes`]
//! waits while more than the high-water mark is queued, until `bufferedamountlow` says the
//! queue drained to half of it (8 MiB / 4 MiB by default: high-water marks from 1 to 16 MiB
//! measured the same between two Chromium processes).

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use futures::StreamExt;
use futures::channel::mpsc;
use js_sys::{ArrayBuffer, Uint8Array};
use wasm_bindgen::JsCast;
use web_sys::{MessageEvent, RtcDataChannel, RtcDataChannelState, RtcDataChannelType};

use super::{Context, JsError, Listener, Notify};

/// The default high-water mark: above this many queued bytes, sending waits.
pub const HIGH_WATER: u32 = 8 * 1024 * 1024;

/// Something that happened on a channel, in order.
#[derive(Debug)]
pub enum ChannelEvent {
    /// The channel can carry messages.
    Open,
    /// A control message (JSON).
    Text(String),
    /// File bytes, still in JavaScript memory so a sink can write them without another copy.
    Binary(Uint8Array),
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
    _listeners: [Listener; 4],
}

/// Tells this side's tasks that the channel is closed: reads end with one
/// [`ChannelEvent::Closed`] and a sender blocked on backpressure wakes. Used by the `close`
/// event and by [`Channel::close`] itself, since a channel closed from this side (or under a
/// peer connection that was closed) may never fire that event.
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
    /// Wraps a channel this browser created or was handed by `datachannel`; sending waits
    /// above `high_water` queued bytes until half of them are gone.
    pub fn new(channel: RtcDataChannel, high_water: u32) -> Self {
        channel.set_binary_type(RtcDataChannelType::Arraybuffer);
        channel.set_buffered_amount_low_threshold(high_water / 2);
        let (sender, events) = mpsc::unbounded();
        if channel.ready_state() == RtcDataChannelState::Open {
            let _ = sender.unbounded_send(ChannelEvent::Open);
        }
        let drained = Notify::default();
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
        let on_message = Listener::new(target, "message", move |event| {
            let data = event.unchecked_into::<MessageEvent>().data();
            let event = if let Some(text) = data.as_string() {
                ChannelEvent::Text(text)
            } else if let Some(buffer) = data.dyn_ref::<ArrayBuffer>() {
                ChannelEvent::Binary(Uint8Array::new(buffer))
            } else {
                // binaryType is "arraybuffer", so nothing else can arrive.
                return;
            };
            let _ = sender.unbounded_send(event);
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
            _listeners: [on_open, on_message, on_close, on_low],
        }
    }

    /// The next event; [`ChannelEvent::Closed`] forever after the channel closed.
    // Only one task at a time reads a transfer's channel, so this borrow is never contended
    // (a second reader would be a bug worth a panic). Holding the borrow, rather than taking
    // the receiver out, keeps the queue intact when a `select!` drops this future mid-wait.
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

    /// Sends a control message.
    pub fn send_text(&self, text: &str) -> Result<(), JsError> {
        self.channel
            .send_with_str(text)
            .context("sending a message to the other browser")
    }

    /// Sends file bytes, first waiting while the browser's send queue is above the
    /// high-water mark. Returns whether it had to wait.
    pub async fn send_bytes(&self, bytes: &Uint8Array) -> Result<bool, JsError> {
        let mut waited = false;
        while self.channel.buffered_amount() > self.high_water && !self.ending.closed.get() {
            waited = true;
            let drained = self.ending.drained.notified();
            let _ = drained.await;
        }
        if self.ending.closed.get() {
            return Err(JsError::plain("sending file bytes", "the channel closed"));
        }
        self.channel
            .send_with_array_buffer_view(bytes)
            .context("sending file bytes")?;
        Ok(waited)
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
