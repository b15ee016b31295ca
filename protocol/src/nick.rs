//! Nicknames: validated on construction and compared case-insensitively, like the classic
//! user service's `COLLATE NOCASE` column (extended from ASCII to all of Unicode).

use std::fmt;
use std::hash::{Hash, Hasher};

use serde::{Deserialize, Serialize};

/// A user's chosen name, 1 to [`Nick::MAX_CHARS`] characters after trimming, free of control
/// and invisible characters.
///
/// Equality and hashing ignore case, so `Nick::new("Ana") == Nick::new("ANA")`; the original
/// spelling is kept for display.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Nick(String);

/// Why a proposed nickname was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NickError {
    /// Nothing but white space was given.
    #[error("a nickname cannot be empty")]
    Empty,
    /// The trimmed name has more characters than allowed.
    #[error("a nickname can have at most {max} characters, this one has {actual}")]
    TooLong {
        /// The largest number of characters allowed.
        max: usize,
        /// How many characters the trimmed name has.
        actual: usize,
    },
    /// The name holds a control character or one that renders as nothing.
    #[error("a nickname cannot contain the invisible or control character U+{:04X}", u32::from(*.0))]
    InvisibleCharacter(char),
}

impl Nick {
    /// The most characters (Unicode scalar values) a nickname may have.
    pub const MAX_CHARS: usize = 32;

    /// Validates `raw` after trimming surrounding white space.
    pub fn new(raw: &str) -> Result<Self, NickError> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(NickError::Empty);
        }
        if let Some(bad) = trimmed.chars().find(|&c| is_control_or_invisible(c)) {
            return Err(NickError::InvisibleCharacter(bad));
        }
        let actual = trimmed.chars().count();
        if actual > Self::MAX_CHARS {
            return Err(NickError::TooLong {
                max: Self::MAX_CHARS,
                actual,
            });
        }
        Ok(Self(trimmed.to_owned()))
    }

    /// The name as the user typed it (trimmed).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The case-folded form under which two nicks count as the same; use it as a map key.
    pub fn key(&self) -> String {
        self.0.to_lowercase()
    }
}

/// True for characters a nickname must not hold: controls, every default-ignorable code point
/// (Unicode's DerivedCoreProperties: what renders as nothing when a font lacks it), the other
/// format characters (category Cf, such as the Egyptian hieroglyph format controls), and the
/// blank-looking braille pattern U+2800. Each would let two nicks look identical, or a nick
/// look empty.
fn is_control_or_invisible(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            // Default_Ignorable_Code_Point, Unicode 15.1, whole.
            '\u{00AD}'                 // soft hyphen
            | '\u{034F}'               // combining grapheme joiner
            | '\u{061C}'               // Arabic letter mark
            | '\u{115F}' | '\u{1160}'  // Hangul fillers
            | '\u{17B4}' | '\u{17B5}'  // Khmer inherent vowels
            | '\u{180B}'..='\u{180F}'  // Mongolian variation selectors and vowel separator
            | '\u{200B}'..='\u{200F}'  // zero-width spaces, joiners and direction marks
            | '\u{202A}'..='\u{202E}'  // bidirectional embeddings
            | '\u{2060}'..='\u{206F}'  // word joiner, invisible operators, bidi isolates
            | '\u{3164}'               // Hangul filler
            | '\u{FE00}'..='\u{FE0F}'  // variation selectors
            | '\u{FEFF}'               // byte order mark
            | '\u{FFA0}'               // halfwidth Hangul filler
            | '\u{FFF0}'..='\u{FFF8}'  // unassigned specials
            | '\u{1BCA0}'..='\u{1BCA3}' // shorthand format controls
            | '\u{1D173}'..='\u{1D17A}' // musical symbol format controls
            | '\u{E0000}'..='\u{E0FFF}' // tags and variation selectors supplement
            // The other format characters (Cf) of Unicode 15.1.
            | '\u{0600}'..='\u{0605}'  // Arabic number signs
            | '\u{06DD}' | '\u{070F}' | '\u{0890}' | '\u{0891}' | '\u{08E2}'
            | '\u{110BD}' | '\u{110CD}' // Kaithi number signs
            | '\u{13430}'..='\u{1343F}' // Egyptian hieroglyph format controls
            | '\u{FFF9}'..='\u{FFFB}'  // interlinear annotation
            // Separators that are not white space, and a pattern that is blank.
            | '\u{2028}' | '\u{2029}'
            | '\u{2800}'               // braille pattern blank
        )
}

impl PartialEq for Nick {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}

impl Eq for Nick {}

impl Hash for Nick {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.key().hash(state);
    }
}

impl fmt::Display for Nick {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for Nick {
    type Error = NickError;

    fn try_from(raw: String) -> Result<Self, Self::Error> {
        Self::new(&raw)
    }
}

impl From<Nick> for String {
    fn from(nick: Nick) -> Self {
        nick.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_and_keeps_spelling() {
        let nick = Nick::new("  Ana Lúcia ").unwrap();
        assert_eq!(nick.as_str(), "Ana Lúcia");
        assert_eq!(nick.to_string(), "Ana Lúcia");
    }

    #[test]
    fn compares_without_case() {
        assert_eq!(Nick::new("ANA").unwrap(), Nick::new("ana").unwrap());
        assert_eq!(Nick::new("ÉMILE").unwrap().key(), "émile");
        assert_ne!(Nick::new("ana").unwrap(), Nick::new("anna").unwrap());
    }

    #[test]
    fn refuses_empty_and_blank() {
        assert_eq!(Nick::new(""), Err(NickError::Empty));
        assert_eq!(Nick::new(" \t "), Err(NickError::Empty));
    }

    #[test]
    fn counts_characters_not_bytes() {
        let longest = "é".repeat(Nick::MAX_CHARS);
        assert!(Nick::new(&longest).is_ok());
        assert_eq!(
            Nick::new(&format!("{longest}x")),
            Err(NickError::TooLong {
                max: Nick::MAX_CHARS,
                actual: Nick::MAX_CHARS + 1
            })
        );
    }

    #[test]
    fn refuses_control_and_invisible_characters() {
        for raw in [
            "a\nb",
            "a\u{0}b",
            "a\u{200B}b",
            "a\u{202E}b",
            "a\u{FEFF}b",
            "a\u{7F}b",
            "a\u{2800}b",
            "a\u{13430}b",
            "a\u{1343F}b",
            "a\u{1BCA0}b",
            "a\u{1D173}b",
            "a\u{E0100}b",
            "a\u{0600}b",
            "a\u{2029}b",
        ] {
            let bad = raw.chars().nth(1).unwrap();
            assert_eq!(
                Nick::new(raw),
                Err(NickError::InvisibleCharacter(bad)),
                "{raw:?}"
            );
        }
    }

    #[test]
    fn allows_emoji_and_inner_spaces() {
        assert!(Nick::new("bo 🚢").is_ok());
    }

    #[test]
    fn deserializing_validates() {
        let nick: Nick = serde_json::from_str("\" bo \"").unwrap();
        assert_eq!(nick.as_str(), "bo");
        assert!(serde_json::from_str::<Nick>("\"\"").is_err());
    }
}
