//! What the server has to send one client: a queue bounded in bytes, shared by everyone who
//! sends to it (its own reader, the registry's broadcasts and relays, tungstenite's replies),
//! and drained by the connection's writer.
//!
//! A client past its budget is not reading what it is sent; queuing more would let one such
//! client hold any amount of the server's memory, so it is disconnected instead. A message is
//! always taken into an empty queue, so one message larger than the budget (a welcome listing
//! many thousands of users) still goes out to a client that reads.
//!
//! The queue is a plain deque behind a lock rather than a channel: a channel allocates a block
//! of slots for every connection up front (2 KiB each, measured), where an idle connection's
//! deque holds nothing at all.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::Notify;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Bytes, Utf8Bytes};

use crate::inbound::Charge;

/// A drained queue keeps room for this many messages; past it, its room is given back.
const KEPT_ROOM: usize = 8;

/// One thing for the writer to send.
#[derive(Debug)]
pub(crate) enum Outbound {
    /// A text message, already encoded once for all its recipients.
    Text(Utf8Bytes),
    /// A signal relayed from another client, holding its share of what others may have
    /// waiting for this one ([`crate::inbound`]) until it is written or dropped.
    Relayed { text: Utf8Bytes, _charge: Charge },
    /// One text message in parts that are written one after the other without being joined,
    /// so a part shared by many messages (the list of users in welcomes) is never copied.
    Parts(Vec<Bytes>),
    /// Frames tungstenite wrote itself, whole: pongs, and the reply to a client's close.
    Raw(Bytes),
    /// The close frame; the writer ends after it.
    Close(CloseFrame),
}

/// Why a message could not be queued.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refused {
    /// The client is over its byte budget: it does not read.
    Full,
    /// The connection is ending.
    Closed,
}

/// The sending end of one client's queue; cheap to clone.
#[derive(Debug)]
pub(crate) struct Sender {
    shared: Arc<Shared>,
    budget: usize,
}

/// The writer's end of the queue.
#[derive(Debug)]
pub(crate) struct Receiver {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    /// Wakes the writer: something was queued, or the last sender went.
    ready: Notify,
    /// Bytes queued and not yet handed to the socket.
    queued: AtomicUsize,
}

#[derive(Debug)]
struct State {
    items: VecDeque<Outbound>,
    senders: usize,
    receiver: bool,
}

/// A queue that holds at most about `budget` bytes.
pub(crate) fn queue(budget: usize) -> (Sender, Receiver) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            items: VecDeque::new(),
            senders: 1,
            receiver: true,
        }),
        ready: Notify::new(),
        queued: AtomicUsize::new(0),
    });
    (
        Sender {
            shared: Arc::clone(&shared),
            budget,
        },
        Receiver { shared },
    )
}

impl Outbound {
    fn len(&self) -> usize {
        match self {
            Self::Text(text) | Self::Relayed { text, .. } => text.len(),
            Self::Parts(parts) => parts.iter().map(Bytes::len).sum(),
            Self::Raw(bytes) => bytes.len(),
            Self::Close(_) => 0,
        }
    }
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        // Nothing panics while holding the lock; a poisoned one is used as it is.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Sender {
    /// Queues `message` without waiting, unless the client is over its budget.
    pub(crate) fn push(&self, message: Outbound) -> Result<(), Refused> {
        let len = message.len();
        let before = self.shared.queued.fetch_add(len, Ordering::AcqRel);
        if before > 0 && before + len > self.budget {
            self.shared.queued.fetch_sub(len, Ordering::AcqRel);
            return Err(Refused::Full);
        }
        self.enqueue(message, len)
    }

    /// Queues the close frame, which always fits; false when the connection is ending.
    pub(crate) fn close(&self, frame: CloseFrame) -> bool {
        self.enqueue(Outbound::Close(frame), 0).is_ok()
    }

    fn enqueue(&self, message: Outbound, len: usize) -> Result<(), Refused> {
        let mut state = self.shared.state();
        if !state.receiver {
            drop(state);
            self.shared.queued.fetch_sub(len, Ordering::AcqRel);
            return Err(Refused::Closed);
        }
        state.items.push_back(message);
        drop(state);
        self.shared.ready.notify_one();
        Ok(())
    }
}

impl Clone for Sender {
    fn clone(&self) -> Self {
        self.shared.state().senders += 1;
        Self {
            shared: Arc::clone(&self.shared),
            budget: self.budget,
        }
    }
}

impl Drop for Sender {
    fn drop(&mut self) {
        let last = {
            let mut state = self.shared.state();
            state.senders -= 1;
            state.senders == 0
        };
        if last {
            self.shared.ready.notify_one();
        }
    }
}

impl Receiver {
    /// The next message to send; `None` once every sender is gone and nothing is left.
    pub(crate) async fn recv(&mut self) -> Option<Outbound> {
        loop {
            // Made before looking, so a message queued after the look still wakes this.
            let ready = self.shared.ready.notified();
            {
                let mut state = self.shared.state();
                if let Some(message) = state.items.pop_front() {
                    if state.items.is_empty() && state.items.capacity() > KEPT_ROOM {
                        state.items.shrink_to(KEPT_ROOM);
                    }
                    return Some(message);
                }
                if state.senders == 0 {
                    return None;
                }
            }
            ready.await;
        }
    }

    /// The next message if one is waiting.
    pub(crate) fn try_recv(&mut self) -> Option<Outbound> {
        self.shared.state().items.pop_front()
    }

    /// Gives back the budget of a message once it has been handed to the socket.
    pub(crate) fn sent(&self, message: &Outbound) {
        self.shared
            .queued
            .fetch_sub(message.len(), Ordering::AcqRel);
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let mut state = self.shared.state();
        state.receiver = false;
        // What was never sent goes now, and with it the allowances it held.
        state.items.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(len: usize) -> Outbound {
        Outbound::Text("x".repeat(len).into())
    }

    #[tokio::test]
    async fn the_budget_bounds_what_waits_and_frees_as_the_writer_sends() {
        let (sender, mut receiver) = queue(100);
        assert_eq!(sender.push(text(60)), Ok(()));
        assert_eq!(sender.push(text(40)), Ok(()));
        assert_eq!(sender.push(text(1)), Err(Refused::Full));
        let first = receiver.recv().await.unwrap();
        receiver.sent(&first);
        assert_eq!(sender.push(text(50)), Ok(()));
        assert_eq!(sender.push(text(20)), Err(Refused::Full));
    }

    #[tokio::test]
    async fn one_message_larger_than_the_budget_goes_into_an_empty_queue() {
        let (sender, mut receiver) = queue(100);
        assert_eq!(sender.push(text(1000)), Ok(()));
        assert_eq!(sender.push(text(1)), Err(Refused::Full));
        let big = receiver.recv().await.unwrap();
        receiver.sent(&big);
        assert_eq!(sender.push(text(1)), Ok(()));
    }

    #[tokio::test]
    async fn a_closed_queue_refuses_and_keeps_no_budget() {
        let (sender, receiver) = queue(100);
        drop(receiver);
        assert_eq!(sender.push(text(10)), Err(Refused::Closed));
        assert_eq!(sender.shared.queued.load(Ordering::Acquire), 0);
    }

    #[tokio::test]
    async fn the_writer_hears_of_what_is_queued_later_and_of_the_last_sender_going() {
        let (sender, mut receiver) = queue(100);
        let later = sender.clone();
        let waiting = tokio::spawn(async move {
            let first = receiver.recv().await;
            let end = receiver.recv().await;
            (first.is_some(), end.is_none())
        });
        tokio::task::yield_now().await;
        later.push(text(5)).unwrap();
        drop(later);
        drop(sender);
        assert_eq!(waiting.await.unwrap(), (true, true));
    }
}
