//! What the server has to send one client: a queue bounded in bytes, shared by everyone who
//! sends to it (its own reader, the registry's broadcasts and relays), and drained by the
//! connection's writer.
//!
//! A client past its budget is not reading what it is sent; queuing more would let one such
//! client hold any amount of the server's memory, so it is disconnected instead. A message is
//! always taken into an empty queue, so one message larger than the budget (a welcome listing
//! many thousands of users) still goes out to a client that reads.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Bytes, Utf8Bytes};

use crate::inbound::Charge;

/// One thing for the writer to send.
#[derive(Debug)]
pub(crate) enum Outbound {
    /// A text message, already encoded once for all its recipients.
    Text(Utf8Bytes),
    /// A signal relayed from another client, holding its share of what others may have
    /// waiting for this one ([`crate::inbound`]) until it is written or dropped.
    Relayed { text: Utf8Bytes, _charge: Charge },
    /// One text message in parts that are sent as fragments without being joined, so a part
    /// shared by many messages (the list of users in welcomes) is never copied.
    Parts(Vec<Bytes>),
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
#[derive(Clone, Debug)]
pub(crate) struct Sender {
    tx: mpsc::UnboundedSender<Outbound>,
    queued: Arc<AtomicUsize>,
    budget: usize,
}

/// The writer's end of the queue.
#[derive(Debug)]
pub(crate) struct Receiver {
    rx: mpsc::UnboundedReceiver<Outbound>,
    queued: Arc<AtomicUsize>,
}

/// A queue that holds at most about `budget` bytes.
pub(crate) fn queue(budget: usize) -> (Sender, Receiver) {
    let (tx, rx) = mpsc::unbounded_channel();
    let queued = Arc::new(AtomicUsize::new(0));
    (
        Sender {
            tx,
            queued: Arc::clone(&queued),
            budget,
        },
        Receiver { rx, queued },
    )
}

impl Outbound {
    fn len(&self) -> usize {
        match self {
            Self::Text(text) | Self::Relayed { text, .. } => text.len(),
            Self::Parts(parts) => parts.iter().map(Bytes::len).sum(),
            Self::Close(_) => 0,
        }
    }
}

impl Sender {
    /// Queues `message` without waiting, unless the client is over its budget.
    pub(crate) fn push(&self, message: Outbound) -> Result<(), Refused> {
        let len = message.len();
        let before = self.queued.fetch_add(len, Ordering::AcqRel);
        if before > 0 && before + len > self.budget {
            self.queued.fetch_sub(len, Ordering::AcqRel);
            return Err(Refused::Full);
        }
        self.tx.send(message).map_err(|_| {
            self.queued.fetch_sub(len, Ordering::AcqRel);
            Refused::Closed
        })
    }

    /// Queues the close frame, which always fits.
    pub(crate) fn close(&self, frame: CloseFrame) -> bool {
        self.tx.send(Outbound::Close(frame)).is_ok()
    }
}

impl Receiver {
    /// The next message to send; `None` once every sender is gone.
    pub(crate) async fn recv(&mut self) -> Option<Outbound> {
        self.rx.recv().await
    }

    /// Whether nothing is waiting.
    pub(crate) fn is_empty(&self) -> bool {
        self.rx.is_empty()
    }

    /// The next message if one is waiting, for tests that read the queue directly.
    #[cfg(test)]
    pub(crate) fn try_recv(&mut self) -> Result<Outbound, mpsc::error::TryRecvError> {
        self.rx.try_recv()
    }

    /// Gives back the budget of a message once it has been handed to the socket.
    pub(crate) fn sent(&self, message: &Outbound) {
        self.queued.fetch_sub(message.len(), Ordering::AcqRel);
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
        assert_eq!(sender.queued.load(Ordering::Acquire), 0);
    }
}
