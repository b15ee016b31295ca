//! Random identifiers: peer ids the server hands out, the secret token that lets a client
//! reclaim its nick after a reconnect, transfer ids the sending browser picks and the ids of
//! private rooms.
//!
//! The protocol crate holds no random number generator (it is serde only); each end fills
//! these from its own secure source, `getrandom` on the server, `crypto.getRandomValues`
//! in the browser, through the `from_random_bytes` constructors.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Why a string is not a valid identifier.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("expected {expected} lowercase hexadecimal digits")]
pub struct IdError {
    /// How many hexadecimal digits this kind of identifier has.
    pub expected: usize,
}

/// Writes `bytes` as lowercase hexadecimal.
pub(crate) fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut hex = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        hex.push(char::from(DIGITS[usize::from(byte >> 4)]));
        hex.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    hex
}

/// Checks that `raw` is exactly `expected` lowercase hexadecimal digits.
pub(crate) fn check_hex(raw: &str, expected: usize) -> Result<(), IdError> {
    let valid =
        raw.len() == expected && raw.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    if valid {
        Ok(())
    } else {
        Err(IdError { expected })
    }
}

/// Declares a hex-string identifier type made from `$bytes` random bytes.
macro_rules! hex_id {
    ($(#[$doc:meta])* $name:ident, $bytes:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// How many random bytes make one identifier.
            pub const BYTES: usize = $bytes;

            /// Builds the identifier from bytes of a cryptographically secure random source.
            pub fn from_random_bytes(bytes: [u8; $bytes]) -> Self {
                Self(to_hex(&bytes))
            }

            /// Parses the hexadecimal form.
            pub fn parse(raw: &str) -> Result<Self, IdError> {
                check_hex(raw, $bytes * 2)?;
                Ok(Self(raw.to_owned()))
            }

            /// The hexadecimal form.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;

            fn try_from(raw: String) -> Result<Self, Self::Error> {
                check_hex(&raw, $bytes * 2)?;
                Ok(Self(raw))
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> Self {
                id.0
            }
        }
    };
}

hex_id!(
    /// A connected user's identity, chosen by the server: 128 random bits, so nobody can guess
    /// another user's id. It is what the HTTP API reports as that user's `identity`.
    PeerId,
    16
);

hex_id!(
    /// A secret the server gives a user on joining; presenting it again within the presence
    /// time-to-live reclaims the same nick and id after a dropped connection.
    SessionToken,
    32
);

hex_id!(
    /// Names one offer of files from one browser to another; picked at random by the sender.
    TransferId,
    16
);

hex_id!(
    /// A private room: 128 random bits a browser picks, so the room cannot be found by
    /// guessing. Whoever knows it can join the room, so it travels only in an address's
    /// fragment (never sent to a server in a request line) and in a `join`.
    RoomId,
    16
);

/// A room id is as good as an invitation: debug output (and so logs) never shows it.
impl fmt::Debug for RoomId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RoomId(…)")
    }
}

impl fmt::Debug for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PeerId({})", self.0)
    }
}

impl fmt::Display for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for TransferId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TransferId({})", self.0)
    }
}

impl fmt::Display for TransferId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The token is a credential: debug output (and so logs) never shows it.
impl fmt::Debug for SessionToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionToken(…)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip() {
        let id = PeerId::from_random_bytes([0xab; 16]);
        assert_eq!(id.as_str(), "ab".repeat(16));
        assert_eq!(PeerId::parse(id.as_str()), Ok(id));
    }

    #[test]
    fn rejects_wrong_length_and_digits() {
        assert_eq!(PeerId::parse("abc"), Err(IdError { expected: 32 }));
        assert!(PeerId::parse(&"AB".repeat(16)).is_err());
        assert!(PeerId::parse(&"zz".repeat(16)).is_err());
        assert!(SessionToken::parse(&"00".repeat(16)).is_err());
        assert!(SessionToken::parse(&"00".repeat(32)).is_ok());
    }

    #[test]
    fn token_and_room_debug_hide_the_secret() {
        let token = SessionToken::from_random_bytes([7; 32]);
        assert!(!format!("{token:?}").contains("07"));
        let room = RoomId::from_random_bytes([7; 16]);
        assert!(!format!("{room:?}").contains("07"));
        assert_eq!(room.as_str().len(), 32);
    }
}
