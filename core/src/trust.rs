//! The people this browser verified: each verified nick with the device key (certificate
//! fingerprint) it was verified on, and whether offers from them are accepted without asking.
//! Kept as JSON in the browser's storage; what a person's standing is follows from it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One verified person.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Verified {
    /// The fingerprint of the device they were verified on.
    fingerprint: String,
    /// Their offers are accepted without asking, while they are on that device.
    #[serde(default)]
    auto_accept: bool,
}

/// What this browser knows of a person with a given nick on a given device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Standing {
    /// Never verified here.
    Unverified,
    /// Verified, but no connection has shown their device yet.
    Unchecked,
    /// Verified, and on the device they were verified on.
    Verified {
        /// Their offers are accepted without asking.
        auto_accept: bool,
    },
    /// Verified on another device: this may be someone else using their nick, or the same
    /// person after clearing their browser's data.
    OtherDevice,
}

impl Standing {
    /// Whether the person was verified on the device they use now.
    pub fn is_verified(self) -> bool {
        matches!(self, Self::Verified { .. })
    }
}

/// The verified people, by nick (compared without case, as the server does).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trust {
    people: BTreeMap<String, Verified>,
}

impl Trust {
    /// Reads what [`Trust::to_json`] wrote; anything unreadable is an empty list, so a damaged
    /// store costs verifications, never the page.
    pub fn from_json(text: &str) -> Self {
        serde_json::from_str(text).unwrap_or_default()
    }

    /// The list as JSON, to keep.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("plain strings and flags serialize")
    }

    /// The standing of `nick` on the device with `fingerprint` (`None`: not seen yet).
    pub fn standing(&self, nick: &str, fingerprint: Option<&str>) -> Standing {
        let Some(known) = self.people.get(&key(nick)) else {
            return Standing::Unverified;
        };
        match fingerprint {
            None => Standing::Unchecked,
            Some(print) if print == known.fingerprint => Standing::Verified {
                auto_accept: known.auto_accept,
            },
            Some(_) => Standing::OtherDevice,
        }
    }

    /// Whether `nick` was ever verified here.
    pub fn knows(&self, nick: &str) -> bool {
        self.people.contains_key(&key(nick))
    }

    /// Records `nick` as verified on the device with `fingerprint`, replacing any earlier
    /// device (and its automatic accepting, which was for that device).
    pub fn verify(&mut self, nick: &str, fingerprint: &str) {
        self.people.insert(
            key(nick),
            Verified {
                fingerprint: fingerprint.to_owned(),
                auto_accept: false,
            },
        );
    }

    /// Turns accepting `nick`'s offers without asking on or off; only a verified person can
    /// have it. Returns whether it is now on.
    pub fn set_auto_accept(&mut self, nick: &str, on: bool) -> bool {
        match self.people.get_mut(&key(nick)) {
            Some(person) => {
                person.auto_accept = on;
                on
            }
            None => false,
        }
    }

    /// Forgets `nick`'s verification.
    pub fn forget(&mut self, nick: &str) {
        self.people.remove(&key(nick));
    }
}

/// How nicks are compared.
fn key(nick: &str) -> String {
    nick.to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_verified_nick_is_verified_only_on_its_device() {
        let mut trust = Trust::default();
        assert_eq!(trust.standing("bo", Some("A")), Standing::Unverified);
        trust.verify("Bo", "A");
        assert_eq!(trust.standing("bo", None), Standing::Unchecked);
        assert_eq!(
            trust.standing("BO", Some("A")),
            Standing::Verified { auto_accept: false }
        );
        assert_eq!(trust.standing("bo", Some("B")), Standing::OtherDevice);
        assert_eq!(trust.standing("ana", Some("A")), Standing::Unverified);
    }

    #[test]
    fn automatic_accepting_needs_a_verification_and_ends_with_a_new_device() {
        let mut trust = Trust::default();
        assert!(!trust.set_auto_accept("bo", true));
        assert_eq!(trust.standing("bo", Some("A")), Standing::Unverified);
        trust.verify("bo", "A");
        assert!(trust.set_auto_accept("bo", true));
        assert_eq!(
            trust.standing("bo", Some("A")),
            Standing::Verified { auto_accept: true }
        );
        // Not on another device, and not after verifying that one either.
        assert_eq!(trust.standing("bo", Some("B")), Standing::OtherDevice);
        trust.verify("bo", "B");
        assert_eq!(
            trust.standing("bo", Some("B")),
            Standing::Verified { auto_accept: false }
        );
    }

    #[test]
    fn the_list_survives_being_kept_and_a_damaged_one_is_empty() {
        let mut trust = Trust::default();
        trust.verify("bo", "sha-256 AB");
        trust.set_auto_accept("bo", true);
        trust.verify("ana", "sha-256 CD");
        trust.forget("ana");
        let again = Trust::from_json(&trust.to_json());
        assert_eq!(again, trust);
        assert!(again.knows("bo") && !again.knows("ana"));
        assert_eq!(Trust::from_json("{not json"), Trust::default());
    }
}
