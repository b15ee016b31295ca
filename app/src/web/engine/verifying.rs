//! Verifications: the commit-reveal exchange of [`crate::core::verify`] on a control channel
//! of its own, then each person's answer to "do the codes match?".
//!
//! One exchange per peer at a time. Each has a number; a task acts (and reports) only while its
//! exchange is the current one, so a stopped or replaced exchange says nothing more. Its
//! channel stays open until both people answered, or either stops it. When both press Verify
//! at once, the exchange opened by the side with the smaller id goes on and the other yields.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

use ferry_protocol::{DigestHex, PeerId, TransferMessage};
use wasm_bindgen_futures::spawn_local;

use super::{Engine, EngineEvent, VerifyStep};
use crate::core::verify::{Answerer, Code, Fingerprints, Opener, VerifyError};
use crate::web::channel::{Channel, ChannelEvent};
use crate::web::{Notify, random_bytes};

/// The verifications under way, by peer.
#[derive(Default)]
pub(super) struct Exchanges {
    current: RefCell<HashMap<PeerId, Exchange>>,
    numbers: Cell<u64>,
}

/// One verification under way.
struct Exchange {
    number: u64,
    /// This side committed first.
    opener: bool,
    /// Its channel, once there is one.
    channel: Option<Rc<Channel>>,
    /// This person answered.
    answered: bool,
    /// The other person answered.
    heard: bool,
}

impl Exchanges {
    /// Starts a new exchange with `peer`, ending any other with them; its number.
    fn begin(&self, peer: &PeerId, opener: bool, channel: Option<Rc<Channel>>) -> u64 {
        self.end(peer);
        let number = self.numbers.get() + 1;
        self.numbers.set(number);
        let exchange = Exchange {
            number,
            opener,
            channel,
            answered: false,
            heard: false,
        };
        self.current.borrow_mut().insert(peer.clone(), exchange);
        number
    }

    /// Whether exchange `number` is still the one with `peer`.
    fn is_current(&self, peer: &PeerId, number: u64) -> bool {
        self.current
            .borrow()
            .get(peer)
            .is_some_and(|exchange| exchange.number == number)
    }

    /// Ends the exchange with `peer`, closing its channel; whether there was one.
    pub(super) fn end(&self, peer: &PeerId) -> bool {
        let ended = self.current.borrow_mut().remove(peer);
        if let Some(channel) = ended
            .as_ref()
            .and_then(|exchange| exchange.channel.as_ref())
        {
            channel.close();
        }
        ended.is_some()
    }

    /// Changes exchange `number` with `peer`, if it is current; ends it once both people
    /// answered. Returns whether it was current.
    fn update(&self, peer: &PeerId, number: u64, change: impl FnOnce(&mut Exchange)) -> bool {
        let done = {
            let mut current = self.current.borrow_mut();
            let Some(exchange) = current.get_mut(peer).filter(|e| e.number == number) else {
                return false;
            };
            change(exchange);
            exchange.answered && exchange.heard
        };
        if done {
            self.end(peer);
        }
        true
    }

    /// The number of the exchange with `peer` this side opened, if one is under way.
    fn opened(&self, peer: &PeerId) -> Option<u64> {
        self.current
            .borrow()
            .get(peer)
            .filter(|exchange| exchange.opener)
            .map(|exchange| exchange.number)
    }
}

impl Engine {
    /// Starts verifying `peer`: this side commits to a nonce; the code follows as a
    /// [`EngineEvent::Verify`].
    pub fn verify(&self, peer: &PeerId) {
        let number = self.inner.talk.exchanges.begin(peer, true, None);
        let (engine, peer) = (self.clone(), peer.clone());
        spawn_local(async move { engine.open_exchange(&peer, number).await });
    }

    /// This person's answer to "do the codes match?" in the verification with `peer`.
    pub fn answer_verification(&self, peer: &PeerId, matched: bool) {
        let exchanges = &self.inner.talk.exchanges;
        let number = exchanges.current.borrow().get(peer).map(|e| e.number);
        if let Some(number) = number {
            exchanges.update(peer, number, |exchange| {
                if let Some(channel) = &exchange.channel {
                    let _ = channel.send(&TransferMessage::VerifyResult { matched });
                }
                exchange.answered = true;
            });
        }
    }

    /// Stops the verification with `peer`; the other side hears that it stopped.
    pub fn stop_verification(&self, peer: &PeerId) {
        self.inner.talk.exchanges.end(peer);
    }

    /// The opener's side: commits, reads the other's nonce, reveals, shows the code.
    async fn open_exchange(&self, peer: &PeerId, number: u64) {
        let exchanges = &self.inner.talk.exchanges;
        let (opener, promise) = Opener::start(random_bytes());
        let first = TransferMessage::VerifyCommit {
            commitment: DigestHex::from_digest(promise),
        };
        let asked = self
            .ask_peer(peer, &first, "a verification", Notify::default())
            .await;
        let Some((link, channel, answer)) = asked else {
            let nick = self.nick_of(peer);
            let why = format!("{nick} did not answer the verification.");
            return self.stop_exchange(peer, number, why);
        };
        // Stopped, or given up for the other side's, while it was asked.
        if !exchanges.update(peer, number, |e| e.channel = Some(Rc::clone(&channel))) {
            return channel.close();
        }
        let Some(TransferMessage::VerifyNonce { nonce }) = answer else {
            let nick = self.nick_of(peer);
            return self.stop_exchange(peer, number, format!("{nick} stopped the verification."));
        };
        self.saw_device(peer, &link);
        let Some((local, remote)) = link.fingerprints() else {
            return self.stop_exchange(peer, number, VerifyError::NoFingerprint.to_string());
        };
        drop(link);
        let prints = Fingerprints {
            opener: local,
            answerer: remote.clone(),
        };
        let (revealed, code) = opener.on_nonce(&nonce.to_bytes(), &prints);
        let reveal = TransferMessage::VerifyReveal {
            nonce: DigestHex::from_digest(revealed),
        };
        if channel.send(&reveal).is_err() {
            let nick = self.nick_of(peer);
            return self.stop_exchange(peer, number, format!("The connection to {nick} closed."));
        }
        self.compare(peer, number, &channel, code, remote).await;
    }

    /// The other side committed, on a channel over the connection of `lane`: answer it. When
    /// this side is opening one with them too, the smaller id's goes on.
    pub(super) fn verify_asked(
        &self,
        peer: &PeerId,
        lane: u32,
        channel: Rc<Channel>,
        promised: [u8; 32],
    ) {
        let exchanges = &self.inner.talk.exchanges;
        let mine_wins = self.inner.me.borrow().as_ref().is_some_and(|me| me < peer);
        if exchanges.opened(peer).is_some() && mine_wins {
            return channel.close();
        }
        let number = exchanges.begin(peer, false, Some(Rc::clone(&channel)));
        let (engine, peer) = (self.clone(), peer.clone());
        spawn_local(async move {
            engine
                .answer_exchange(&peer, lane, number, channel, promised)
                .await;
        });
    }

    /// The answerer's side: sends a nonce, checks the reveal against the commitment, shows
    /// the code.
    async fn answer_exchange(
        &self,
        peer: &PeerId,
        lane: u32,
        number: u64,
        channel: Rc<Channel>,
        promised: [u8; 32],
    ) {
        self.verify_step(peer, VerifyStep::Asked);
        let nonce = random_bytes();
        let answerer = Answerer::answer(promised, nonce);
        let nick = self.nick_of(peer);
        let closed = format!("{nick} stopped the verification.");
        let sent = channel.send(&TransferMessage::VerifyNonce {
            nonce: DigestHex::from_digest(nonce),
        });
        if sent.is_err() {
            return self.stop_exchange(peer, number, closed);
        }
        let revealed = loop {
            match channel.next().await {
                ChannelEvent::Message(TransferMessage::VerifyReveal { nonce }) => break nonce,
                ChannelEvent::Open => {}
                _ => return self.stop_exchange(peer, number, closed),
            }
        };
        let link = self.inner.links.get(peer, lane);
        if let Some(link) = &link {
            self.saw_device(peer, link);
        }
        let Some((local, remote)) = link.and_then(|link| link.fingerprints()) else {
            return self.stop_exchange(peer, number, VerifyError::NoFingerprint.to_string());
        };
        let prints = Fingerprints {
            opener: remote.clone(),
            answerer: local,
        };
        match answerer.on_reveal(&revealed.to_bytes(), &prints) {
            Ok(code) => self.compare(peer, number, &channel, code, remote).await,
            Err(error) => {
                let _ = channel.send(&TransferMessage::Failed {
                    reason: error.to_string(),
                });
                self.stop_exchange(peer, number, format!("Not verified: {error}."));
            }
        }
    }

    /// Both sides: shows the code, then waits for the other person's answer.
    async fn compare(
        &self,
        peer: &PeerId,
        number: u64,
        channel: &Channel,
        code: Code,
        remote: String,
    ) {
        let exchanges = &self.inner.talk.exchanges;
        if !exchanges.is_current(peer, number) {
            return;
        }
        self.verify_step(
            peer,
            VerifyStep::Code {
                code: code.to_string(),
                fingerprint: remote,
            },
        );
        let nick = self.nick_of(peer);
        let why = loop {
            match channel.next().await {
                ChannelEvent::Message(TransferMessage::VerifyResult { matched }) => {
                    if exchanges.update(peer, number, |exchange| exchange.heard = true) {
                        self.verify_step(peer, VerifyStep::TheirAnswer(matched));
                    }
                    return;
                }
                ChannelEvent::Message(TransferMessage::Failed { reason }) => {
                    break format!("Not verified: {reason}.");
                }
                ChannelEvent::Open | ChannelEvent::Message(_) => {}
                ChannelEvent::Chunk(..) | ChannelEvent::Unreadable(_) | ChannelEvent::Closed => {
                    break format!("{nick} stopped the verification.");
                }
            }
        };
        self.stop_exchange(peer, number, why);
    }

    /// Ends exchange `number` with `peer` for `why`, and says so, if it is still current.
    fn stop_exchange(&self, peer: &PeerId, number: u64, why: String) {
        let exchanges = &self.inner.talk.exchanges;
        if exchanges.is_current(peer, number) {
            exchanges.end(peer);
            self.verify_step(peer, VerifyStep::Stopped(why));
        }
    }

    pub(super) fn verify_step(&self, peer: &PeerId, step: VerifyStep) {
        (self.inner.events)(EngineEvent::Verify {
            peer: peer.clone(),
            step,
        });
    }
}
