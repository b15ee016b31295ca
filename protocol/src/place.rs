//! Where a page is: the lobby or one private room, named in a `join` by the room's id or by a
//! pairing code that leads to one; and what a page can ask about the server's lobby before it
//! joins.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::RoomId;

/// Where a `join` wants to be.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Place {
    /// The lobby, which the server scopes ([`LobbyScope`]).
    #[default]
    Lobby,
    /// The private room with this id, made if nobody is in it yet.
    Room(RoomId),
    /// The room whose pairing code this is; the welcome names the room.
    Code(PairCode),
}

impl Place {
    /// Whether this is the lobby, which a `join` need not name.
    pub fn is_lobby(&self) -> bool {
        matches!(self, Self::Lobby)
    }
}

/// Who meets in a server's lobby.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LobbyScope {
    /// Everyone on the server: the classic service's behaviour.
    #[default]
    Everyone,
    /// People whose connections come from the same public address; every private, loopback
    /// and link-local address counts as one network.
    Network,
    /// No lobby: private rooms only.
    Off,
}

/// What a page learns from `GET /api/server` before joining.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerInfo {
    /// Who meets in the lobby, or that there is none.
    pub lobby: LobbyScope,
    /// How many people fit in one private room.
    pub room_size: usize,
}

/// Why a string is not a pairing code.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("a pairing code is {} digits", PairCode::DIGITS)]
pub struct PairCodeError;

/// Six digits that lead one other person into a room, once, for a few minutes. The server
/// draws them; a person reads them off one screen and types them on another.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PairCode(String);

impl PairCode {
    /// How many digits a code has.
    pub const DIGITS: usize = 6;
    /// How many codes there are.
    pub const SPACE: u32 = 1_000_000;

    /// The code for `n`, which must be below [`Self::SPACE`] (taken modulo it otherwise).
    pub fn from_number(n: u32) -> Self {
        Self(format!("{:06}", n % Self::SPACE))
    }

    /// Parses a code as a person may type it: digits, with spaces or dashes between groups.
    pub fn parse(typed: &str) -> Result<Self, PairCodeError> {
        let digits: String = typed
            .chars()
            .filter(|c| !matches!(c, ' ' | '-' | '\u{a0}'))
            .collect();
        if digits.len() == Self::DIGITS && digits.bytes().all(|b| b.is_ascii_digit()) {
            Ok(Self(digits))
        } else {
            Err(PairCodeError)
        }
    }

    /// The six digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The code as people read it aloud: two groups of three.
    pub fn grouped(&self) -> String {
        format!("{} {}", &self.0[..3], &self.0[3..])
    }
}

impl TryFrom<String> for PairCode {
    type Error = PairCodeError;

    fn try_from(raw: String) -> Result<Self, Self::Error> {
        if raw.len() == Self::DIGITS && raw.bytes().all(|b| b.is_ascii_digit()) {
            Ok(Self(raw))
        } else {
            Err(PairCodeError)
        }
    }
}

impl From<PairCode> for String {
    fn from(code: PairCode) -> Self {
        code.0
    }
}

/// A live code leads into a room: debug output (and so logs) never shows it.
impl fmt::Debug for PairCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PairCode(…)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_six_digits_with_leading_zeros() {
        assert_eq!(PairCode::from_number(42).as_str(), "000042");
        assert_eq!(PairCode::from_number(999_999).as_str(), "999999");
        assert_eq!(PairCode::from_number(1_000_007).as_str(), "000007");
        assert_eq!(PairCode::from_number(123_456).grouped(), "123 456");
    }

    #[test]
    fn typed_codes_may_have_spaces_and_dashes_but_nothing_else() {
        let code = PairCode::from_number(123_456);
        assert_eq!(PairCode::parse("123456"), Ok(code.clone()));
        assert_eq!(PairCode::parse(" 123 456 "), Ok(code.clone()));
        assert_eq!(PairCode::parse("123-456"), Ok(code));
        for bad in ["12345", "1234567", "12345a", "１２３４５６", ""] {
            assert_eq!(PairCode::parse(bad), Err(PairCodeError), "{bad}");
        }
        assert!(serde_json::from_str::<PairCode>(r#""123 456""#).is_err());
        assert!(format!("{:?}", PairCode::from_number(7)).contains('…'));
    }

    #[test]
    fn places_on_the_wire() {
        let room = RoomId::from_random_bytes([0xab; 16]);
        let cases = [
            (Place::Lobby, r#""lobby""#.to_owned()),
            (
                Place::Room(room.clone()),
                format!(r#"{{"room":"{}"}}"#, room.as_str()),
            ),
            (
                Place::Code(PairCode::from_number(5)),
                r#"{"code":"000005"}"#.to_owned(),
            ),
        ];
        for (place, json) in cases {
            assert_eq!(serde_json::to_string(&place).unwrap(), json);
            assert_eq!(serde_json::from_str::<Place>(&json).unwrap(), place);
        }
        assert!(serde_json::from_str::<Place>(r#"{"room":"short"}"#).is_err());
    }
}
