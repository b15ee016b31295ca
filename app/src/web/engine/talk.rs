//! What two browsers say besides transfers, each on a control channel of its own over the
//! first peer connection: texts, hellos that show which device the other is on, and
//! verifications (the commit-reveal exchange of [`crate::core::verify`], then each person's
//! answer to "do the codes match?").

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::rc::Rc;

use ferry_protocol::{DigestHex, PeerId, TEXT_LIMIT, TransferMessage};
use wasm_bindgen_futures::spawn_local;
use web_sys::RtcCertificate;

use super::{Engine, EngineEvent, VerifyStep};
use crate::core::verify::{Answerer, Code, Fingerprints, Opener, VerifyError};
use crate::web::channel::{Channel, ChannelEvent};
use crate::web::peer::PeerLink;
use crate::web::{Notify, random_bytes};

/// What the engine knows of the other devices and its verifications under way.
#[derive(Default)]
pub(super) struct Talk {
    /// Each peer's device, as its connection last showed it.
    devices: RefCell<HashMap<PeerId, String>>,
    /// The peers a hello is on its way to, so it is asked once.
    checking: RefCell<HashSet<PeerId>>,
    /// The channel of each verification whose person has not answered yet.
    verifications: RefCell<HashMap<PeerId, Rc<Channel>>>,
}

impl Talk {
    /// Forgets a peer that left: its id will not come back.
    pub(super) fn forget(&self, peer: &PeerId) {
        self.devices.borrow_mut().remove(peer);
        self.checking.borrow_mut().remove(peer);
        self.verifications.borrow_mut().remove(peer);
    }
}

/// Why a text was not delivered, for people.
#[derive(Debug, thiserror::Error)]
pub enum TextError {
    /// Longer than [`TEXT_LIMIT`].
    #[error("A text can hold at most {TEXT_LIMIT} characters; this one has {0}.")]
    TooLong(usize),
    /// Nothing to send.
    #[error("There is nothing to send.")]
    Empty,
    /// No answer.
    #[error("{0} did not answer; the text was not delivered.")]
    NoAnswer(String),
}

impl Engine {
    /// Sets this device's key, which every connection made from now on presents.
    pub fn set_certificate(&self, certificate: RtcCertificate) {
        self.inner.ice.borrow_mut().certificate = Some(certificate);
    }

    /// Sends `text` to `peer`; resolves once they have it.
    ///
    /// # Errors
    /// When the text is empty or too long, or they did not answer.
    pub async fn send_text(&self, peer: &PeerId, text: String) -> Result<(), TextError> {
        let length = text.chars().count();
        if length > TEXT_LIMIT {
            return Err(TextError::TooLong(length));
        }
        if text.trim().is_empty() {
            return Err(TextError::Empty);
        }
        let asked = self
            .ask_peer(
                peer,
                &TransferMessage::Text { text },
                "a text",
                Notify::default(),
            )
            .await;
        match asked {
            Some((link, _, Some(TransferMessage::Delivered))) => {
                self.saw_device(peer, &link);
                Ok(())
            }
            _ => Err(TextError::NoAnswer(self.nick_of(peer))),
        }
    }

    /// Makes sure a connection to `peer` exists and shows their device (a
    /// [`EngineEvent::Device`] follows), unless it was seen already.
    pub fn check_device(&self, peer: &PeerId) {
        let talk = &self.inner.talk;
        if talk.devices.borrow().contains_key(peer)
            || !talk.checking.borrow_mut().insert(peer.clone())
        {
            return;
        }
        let (engine, peer) = (self.clone(), peer.clone());
        spawn_local(async move {
            let asked = engine
                .ask_peer(&peer, &TransferMessage::Hello, "a hello", Notify::default())
                .await;
            engine.inner.talk.checking.borrow_mut().remove(&peer);
            if let Some((link, ..)) = asked {
                engine.saw_device(&peer, &link);
            }
        });
    }

    /// The device `peer` is on, as far as a connection showed it.
    pub fn device_of(&self, peer: &PeerId) -> Option<String> {
        self.inner.talk.devices.borrow().get(peer).cloned()
    }

    /// Reports `peer`'s device as `link` shows it, if it is news.
    pub(super) fn saw_device(&self, peer: &PeerId, link: &PeerLink) {
        let Some((_, fingerprint)) = link.fingerprints() else {
            return;
        };
        let known = self
            .inner
            .talk
            .devices
            .borrow_mut()
            .insert(peer.clone(), fingerprint.clone());
        if known.as_ref() != Some(&fingerprint) {
            (self.inner.events)(EngineEvent::Device {
                peer: peer.clone(),
                fingerprint,
            });
        }
    }

    /// Starts verifying `peer`: this side commits to a nonce; the code follows as a
    /// [`EngineEvent::Verify`].
    pub fn verify(&self, peer: &PeerId) {
        let (engine, peer) = (self.clone(), peer.clone());
        spawn_local(async move {
            let (opener, promise) = Opener::start(random_bytes());
            let first = TransferMessage::VerifyCommit {
                commitment: DigestHex::from_digest(promise),
            };
            let asked = engine
                .ask_peer(&peer, &first, "a verification", Notify::default())
                .await;
            let Some((link, channel, Some(TransferMessage::VerifyNonce { nonce }))) = asked else {
                let nick = engine.nick_of(&peer);
                return engine.verify_step(
                    &peer,
                    VerifyStep::Stopped(format!("{nick} did not answer the verification.")),
                );
            };
            engine.saw_device(&peer, &link);
            let Some((local, remote)) = link.fingerprints() else {
                return engine.verify_step(
                    &peer,
                    VerifyStep::Stopped(VerifyError::NoFingerprint.to_string()),
                );
            };
            let prints = Fingerprints {
                opener: local,
                answerer: remote.clone(),
            };
            let (revealed, code) = opener.on_nonce(&nonce.to_bytes(), &prints);
            let reveal = TransferMessage::VerifyReveal {
                nonce: DigestHex::from_digest(revealed),
            };
            if channel.send(&reveal).is_err() {
                let nick = engine.nick_of(&peer);
                return engine.verify_step(
                    &peer,
                    VerifyStep::Stopped(format!("The connection to {nick} closed.")),
                );
            }
            engine.compare(&peer, channel, code, remote).await;
        });
    }

    /// This person's answer to "do the codes match?" in the verification with `peer`.
    pub fn answer_verification(&self, peer: &PeerId, matched: bool) {
        let channel = self.inner.talk.verifications.borrow_mut().remove(peer);
        if let Some(channel) = channel {
            let _ = channel.send(&TransferMessage::VerifyResult { matched });
        }
    }

    /// Stops the verification with `peer`; the other side hears that it stopped.
    pub fn stop_verification(&self, peer: &PeerId) {
        let channel = self.inner.talk.verifications.borrow_mut().remove(peer);
        if let Some(channel) = channel {
            channel.close();
        }
    }

    /// The other side's first message on a new control channel was no transfer's: a text,
    /// a hello or a verification (anything else closes the channel).
    pub(super) fn talk_incoming(
        &self,
        peer: &PeerId,
        channel: Rc<Channel>,
        first: &TransferMessage,
    ) {
        match first {
            TransferMessage::Text { text } => {
                if text.chars().count() <= TEXT_LIMIT {
                    self.saw_device_by_lane(peer);
                    (self.inner.events)(EngineEvent::Text {
                        from: peer.clone(),
                        text: text.clone(),
                    });
                    let _ = channel.send(&TransferMessage::Delivered);
                } else {
                    let _ = channel.send(&TransferMessage::Failed {
                        reason: format!("a text holds at most {TEXT_LIMIT} characters"),
                    });
                }
            }
            TransferMessage::Hello => {
                self.saw_device_by_lane(peer);
                let _ = channel.send(&TransferMessage::Hello);
            }
            TransferMessage::VerifyCommit { commitment } => {
                let (engine, peer) = (self.clone(), peer.clone());
                let promised = commitment.to_bytes();
                spawn_local(async move { engine.answer_commit(peer, channel, promised).await });
            }
            _ => {}
        }
    }

    /// The answerer's side: sends a nonce, checks the reveal against the commitment, shows
    /// the code.
    async fn answer_commit(&self, peer: PeerId, channel: Rc<Channel>, promised: [u8; 32]) {
        self.verify_step(&peer, VerifyStep::Asked);
        let nonce = random_bytes();
        let answerer = Answerer::answer(promised, nonce);
        let nick = self.nick_of(&peer);
        let closed = || VerifyStep::Stopped(format!("{nick} stopped the verification."));
        if channel
            .send(&TransferMessage::VerifyNonce {
                nonce: DigestHex::from_digest(nonce),
            })
            .is_err()
        {
            return self.verify_step(&peer, closed());
        }
        let revealed = loop {
            match channel.next().await {
                ChannelEvent::Message(TransferMessage::VerifyReveal { nonce }) => break nonce,
                ChannelEvent::Open => {}
                _ => return self.verify_step(&peer, closed()),
            }
        };
        let link = self.inner.links.get(&peer, 0);
        if let Some(link) = &link {
            self.saw_device(&peer, link);
        }
        let Some((local, remote)) = link.and_then(|link| link.fingerprints()) else {
            return self.verify_step(
                &peer,
                VerifyStep::Stopped(VerifyError::NoFingerprint.to_string()),
            );
        };
        let prints = Fingerprints {
            opener: remote.clone(),
            answerer: local,
        };
        match answerer.on_reveal(&revealed.to_bytes(), &prints) {
            Ok(code) => self.compare(&peer, channel, code, remote).await,
            Err(error) => {
                let _ = channel.send(&TransferMessage::Failed {
                    reason: error.to_string(),
                });
                self.verify_step(
                    &peer,
                    VerifyStep::Stopped(format!("Not verified: {error}.")),
                );
            }
        }
    }

    /// Both sides: shows the code, then waits for the other person's answer. The channel
    /// stays open until this person answered too ([`Engine::answer_verification`]).
    async fn compare(&self, peer: &PeerId, channel: Rc<Channel>, code: Code, remote: String) {
        self.inner
            .talk
            .verifications
            .borrow_mut()
            .insert(peer.clone(), Rc::clone(&channel));
        self.verify_step(
            peer,
            VerifyStep::Code {
                code: code.to_string(),
                fingerprint: remote,
            },
        );
        let nick = self.nick_of(peer);
        let step = loop {
            match channel.next().await {
                ChannelEvent::Message(TransferMessage::VerifyResult { matched }) => {
                    return self.verify_step(peer, VerifyStep::TheirAnswer(matched));
                }
                ChannelEvent::Message(TransferMessage::Failed { reason }) => {
                    break VerifyStep::Stopped(format!("Not verified: {reason}."));
                }
                ChannelEvent::Open | ChannelEvent::Message(_) => {}
                // Also when this side stopped it: the views have let it go by then.
                ChannelEvent::Chunk(..) | ChannelEvent::Unreadable(_) | ChannelEvent::Closed => {
                    break VerifyStep::Stopped(format!("{nick} stopped the verification."));
                }
            }
        };
        self.inner.talk.verifications.borrow_mut().remove(peer);
        self.verify_step(peer, step);
    }

    fn verify_step(&self, peer: &PeerId, step: VerifyStep) {
        (self.inner.events)(EngineEvent::Verify {
            peer: peer.clone(),
            step,
        });
    }

    /// Reports `peer`'s device from the first connection to them, which a channel from
    /// them just arrived on.
    pub(super) fn saw_device_by_lane(&self, peer: &PeerId) {
        if let Some(link) = self.inner.links.get(peer, 0) {
            self.saw_device(peer, &link);
        }
    }
}
