//! What two browsers say besides transfers, each on a control channel of its own: texts,
//! hellos that show which device the other is on, and (in [`super::verifying`])
//! verifications. A channel's device is the one its own peer connection shows.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::rc::Rc;

use ferry_protocol::{PeerId, TEXT_LIMIT, TransferMessage};
use wasm_bindgen_futures::spawn_local;
use web_sys::RtcCertificate;

use super::verifying::Exchanges;
use super::{Engine, EngineEvent};
use crate::web::Notify;
use crate::web::channel::Channel;
use crate::web::peer::PeerLink;

/// What the engine knows of the other devices and its verifications under way.
#[derive(Default)]
pub(super) struct Talk {
    /// Each peer's device, as its connection last showed it.
    devices: RefCell<HashMap<PeerId, String>>,
    /// The peers a hello is on its way to, so it is asked once.
    checking: RefCell<HashSet<PeerId>>,
    /// The verifications under way.
    pub(super) exchanges: Exchanges,
}

impl Talk {
    /// Forgets a peer that left (its id will not come back); whether a verification with
    /// them was under way, which their leaving ends.
    pub(super) fn forget(&self, peer: &PeerId) -> bool {
        self.devices.borrow_mut().remove(peer);
        self.checking.borrow_mut().remove(peer);
        self.exchanges.end(peer)
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

    /// The other side's first message on a new control channel over the connection of
    /// `lane` was no transfer's: a text, a hello or a verification (anything else closes the
    /// channel).
    pub(super) fn talk_incoming(
        &self,
        peer: &PeerId,
        lane: u32,
        channel: Rc<Channel>,
        first: &TransferMessage,
    ) {
        match first {
            TransferMessage::Text { text } => {
                if text.chars().count() <= TEXT_LIMIT {
                    self.saw_device_by_lane(peer, lane);
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
                self.saw_device_by_lane(peer, lane);
                let _ = channel.send(&TransferMessage::Hello);
            }
            TransferMessage::VerifyCommit { commitment } => {
                self.verify_asked(peer, lane, channel, commitment.to_bytes());
            }
            _ => {}
        }
    }

    /// Reports `peer`'s device as the connection of `lane` shows it: a channel from them
    /// just arrived on it, and what it carries is theirs only if that connection is.
    pub(super) fn saw_device_by_lane(&self, peer: &PeerId, lane: u32) {
        if let Some(link) = self.inner.links.get(peer, lane) {
            self.saw_device(peer, &link);
        }
    }
}
