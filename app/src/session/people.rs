//! The session's dealings with people rather than files: the device key, who is verified on
//! which device, verifications, texts, offers accepted without asking, and notifications.

use std::collections::HashMap;

use ferry_protocol::{PeerId, TEXT_LIMIT};
use leptos::prelude::*;

use super::Session;
use crate::core::comparison::{Comparison, Outcome};
use crate::core::offer::IncomingOffer;
use crate::core::trust::{Standing, Trust};
use crate::web::engine::{Answer, EngineEvent, VerifyStep};
use crate::web::notify;
use crate::web::{log, prefs};

/// Where the verified people are kept.
pub(super) const TRUST_KEY: &str = "ferry.verified";

/// How long a join waits for the device key.
const DEVICE_WAIT_MS: u32 = 3_000;

/// How many texts the page keeps.
const TEXTS_KEPT: usize = 100;

/// A text sent or received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TextNote {
    /// Numbers the texts of this page, for the list's keys.
    pub number: u64,
    /// Who wrote it: the other person's nick, or `None` for this person.
    pub from: Option<String>,
    /// To whom, when this person wrote it.
    pub to: String,
    /// The text.
    pub text: String,
}

/// The verification on screen: with whom, and how far it got.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verification {
    /// The other person's id.
    pub peer: PeerId,
    /// How far it got.
    pub comparison: Comparison,
}

impl Session {
    /// Loads this device's key before anything connects, so every connection presents it.
    /// A browser whose storage does not answer within [`DEVICE_WAIT_MS`] joins without it.
    pub(super) async fn load_device(self) {
        let loading = Box::pin(crate::web::device::device());
        let waited = Box::pin(crate::web::sleep(DEVICE_WAIT_MS));
        let loaded = match futures::future::select(loading, waited).await {
            futures::future::Either::Left((loaded, _)) => loaded,
            futures::future::Either::Right(_) => Err(crate::web::JsError::plain(
                "loading the device key",
                "the browser's storage did not answer",
            )),
        };
        match loaded {
            Ok(device) => {
                self.engine
                    .with_value(|engine| engine.set_certificate(device.certificate));
            }
            Err(error) => log(&format!(
                "no device key, connections use their own: {error}"
            )),
        }
    }

    /// Applies what the engine reports about people; the rest goes to the plain state.
    pub(super) fn on_engine(self, event: EngineEvent) {
        match event {
            // The engine keeps each peer's device; only the standings follow from it.
            EngineEvent::Device { .. } => self.refresh_standing(),
            EngineEvent::Text { from, text } => self.text_arrived(&from, text),
            EngineEvent::Verify { peer, step } => self.verify_step(peer, step),
            EngineEvent::Offer(offer) => self.offer_arrived(offer),
            other => self.state.apply(other),
        }
    }

    /// Recomputes everyone's standing, and connects to verified people whose device no
    /// connection has shown yet, so a warning shows before any offer.
    pub(super) fn refresh_standing(self) {
        let users = self.state.users.get_untracked();
        let mut standing = HashMap::new();
        let engine = self.engine.get_value();
        self.trust.with_value(|trust| {
            for user in &users {
                let nick = user.nick.as_str();
                let known = trust.standing(nick, engine.device_of(&user.id).as_deref());
                if known == Standing::Unchecked {
                    engine.check_device(&user.id);
                }
                standing.insert(nick.to_owned(), known);
            }
        });
        self.state.standing.set(standing);
    }

    /// Starts verifying `peer`.
    pub fn verify(self, peer: &PeerId) {
        let nick = self.nick_of(peer);
        self.state.verification.set(Some(Verification {
            peer: peer.clone(),
            comparison: Comparison::new(&nick),
        }));
        self.engine.with_value(|engine| engine.verify(peer));
    }

    /// This person's answer to "do the codes match?".
    pub fn answer_verification(self, matched: bool) {
        let Some(peer) = self
            .state
            .verification
            .with_untracked(|shown| shown.as_ref().map(|shown| shown.peer.clone()))
        else {
            return;
        };
        self.engine
            .with_value(|engine| engine.answer_verification(&peer, matched));
        self.update_verification(&peer, |comparison| comparison.mine = Some(matched));
    }

    /// Closes the verification on screen; one not finished is stopped for both.
    pub fn close_verification(self) {
        let shown = self.state.verification.get_untracked();
        if let Some(shown) = shown {
            // Also once decided: the channel of an exchange one side said "no" to, or that
            // waits for the other's answer, closes now.
            self.engine
                .with_value(|engine| engine.stop_verification(&shown.peer));
            self.state.verification.set(None);
        }
    }

    /// Turns accepting `nick`'s offers without asking on or off (verified people only).
    pub fn set_auto_accept(self, nick: &str, on: bool) {
        self.trust.update_value(|trust| {
            trust.set_auto_accept(nick, on);
        });
        self.keep_trust();
    }

    /// Sends `text` to `peer`; the composer hears how it went.
    pub fn send_text(self, peer: &PeerId, text: String) {
        let to = self.nick_of(peer);
        let engine = self.engine.get_value();
        let peer = peer.clone();
        self.state
            .text_status
            .set(Some(format!("Sending to {to}…")));
        leptos::task::spawn_local(async move {
            match engine.send_text(&peer, text.clone()).await {
                Ok(()) => {
                    self.state
                        .text_status
                        .set(Some(format!("Delivered to {to}.")));
                    self.add_text(None, to, text);
                }
                Err(error) => self.state.text_status.set(Some(error.to_string())),
            }
        });
    }

    /// Asks to notify; call it from the click on "Notify me".
    pub fn ask_to_notify(self) {
        leptos::task::spawn_local(async move {
            match notify::ask().await {
                Ok(permission) => self.state.notify.set(permission),
                Err(error) => log(&error.to_string()),
            }
        });
    }

    /// The page is looked at again: its notifications have done their job.
    pub fn page_shown(self) {
        notify::clear();
    }

    fn text_arrived(self, from: &PeerId, text: String) {
        let nick = self.nick_of(from);
        notify::notify(&format!("{nick} sent you a text"), &preview(&text));
        self.add_text(Some(nick), String::new(), text);
    }

    fn add_text(self, from: Option<String>, to: String, text: String) {
        self.state.texts.update(|texts| {
            let number = texts.first().map_or(0, |newest| newest.number + 1);
            texts.insert(
                0,
                TextNote {
                    number,
                    from,
                    to,
                    text,
                },
            );
            texts.truncate(TEXTS_KEPT);
        });
    }

    fn offer_arrived(self, offer: IncomingOffer) {
        let standing = self
            .state
            .standing
            .with_untracked(|standing| standing.get(&offer.from).copied());
        let auto = standing == Some(Standing::Verified { auto_accept: true })
            && !offer.too_large()
            && !offer.wont_fit();
        if auto {
            self.engine
                .with_value(|engine| engine.answer(&offer.id, Answer::Download));
            self.state.announcement.set(format!(
                "Accepted automatically from {}: {}",
                offer.from,
                offer.summary()
            ));
            return;
        }
        notify::notify(
            &format!("{} wants to send you files", offer.from),
            &offer.summary(),
        );
        self.state.apply(EngineEvent::Offer(offer));
    }

    fn verify_step(self, peer: PeerId, step: VerifyStep) {
        if step == VerifyStep::Asked {
            // One verification on screen: one with someone else under way gives way.
            let other = self.state.verification.with_untracked(|shown| {
                shown
                    .as_ref()
                    .filter(|shown| shown.peer != peer)
                    .map(|shown| shown.peer.clone())
            });
            if let Some(other) = other {
                self.engine
                    .with_value(|engine| engine.stop_verification(&other));
            }
            let nick = self.nick_of(&peer);
            notify::notify(
                &format!("{nick} asks to verify"),
                "Compare the code on both screens.",
            );
            self.state.verification.set(Some(Verification {
                peer,
                comparison: Comparison::new(&nick),
            }));
            return;
        }
        self.update_verification(&peer, |comparison| match step {
            // The first code is the one on screen, whatever comes after it.
            VerifyStep::Code { code, fingerprint } if comparison.code.is_none() => {
                comparison.code = Some(code);
                comparison.fingerprint = Some(fingerprint);
            }
            VerifyStep::Code { .. } => {}
            VerifyStep::TheirAnswer(matched) => comparison.theirs = Some(matched),
            VerifyStep::Stopped(why) => comparison.stopped = Some(why),
            VerifyStep::Asked => {}
        });
    }

    /// Changes the verification with `peer` if it is the one on screen, and keeps the
    /// device once both said the codes match.
    fn update_verification(self, peer: &PeerId, change: impl FnOnce(&mut Comparison)) {
        let mut verified = None;
        self.state.verification.update(|shown| {
            if let Some(shown) = shown.as_mut().filter(|shown| &shown.peer == peer)
                && !shown.comparison.is_over()
            {
                change(&mut shown.comparison);
                verified = shown
                    .comparison
                    .verified_device()
                    .map(|device| (shown.comparison.nick.clone(), device.to_owned()));
            }
        });
        if let Some((nick, device)) = verified {
            self.trust
                .update_value(|trust| trust.verify(&nick, &device));
            self.keep_trust();
        }
    }

    fn keep_trust(self) {
        let json = self.trust.with_value(Trust::to_json);
        if !prefs::set_text(TRUST_KEY, &json) {
            log("the verified people could not be kept: storage refused");
        }
        self.refresh_standing();
    }

    fn nick_of(self, peer: &PeerId) -> String {
        self.state.users.with_untracked(|users| {
            users.iter().find(|user| &user.id == peer).map_or_else(
                || "someone".to_owned(),
                |user| user.nick.as_str().to_owned(),
            )
        })
    }
}

/// The verification as the dialog says it.
pub fn outcome_sentence(comparison: &Comparison) -> String {
    let nick = &comparison.nick;
    match comparison.outcome() {
        Outcome::Waiting => format!("Connecting to {nick}…"),
        Outcome::Comparing => format!(
            "Check that {nick}'s screen shows the same three words, in person or on a call you \
             trust."
        ),
        Outcome::WaitingForThem => format!("Waiting for {nick} to compare…"),
        Outcome::Verified => format!("{nick} is verified on this device."),
        Outcome::Differ => format!(
            "The codes differ: {nick} is not verified. Someone may be between you; do not send \
             them anything private."
        ),
        Outcome::Stopped(why) => why,
    }
}

/// The start of a text, for a notification.
fn preview(text: &str) -> String {
    const SHOWN: usize = 120;
    let mut shown: String = text.chars().take(SHOWN).collect();
    if text.chars().count() > SHOWN {
        shown.push('…');
    }
    shown
}

/// What the text composer says of its limit.
pub fn text_limit_hint() -> String {
    format!("Up to {TEXT_LIMIT} characters. It goes straight to them, not through the server.")
}
