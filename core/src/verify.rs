//! The verification code two people compare to know that their browsers talk to each other
//! and to nobody in between: a commit-reveal exchange of nonces, and a code derived from both
//! nonces and both DTLS certificates' fingerprints.
//!
//! The opener commits to its nonce before it sees the other's, and the other sends its nonce
//! before it sees the opener's, so neither side (nor anyone relaying for it) can pick a nonce
//! that makes the codes agree. A man in the middle holds two connections with two pairs of
//! fingerprints; for both people to read the same code, the code of one connection must equal
//! the code of the other, which with [`CODE_BITS`] bits happens by chance once in 2^33 tries.

use std::fmt;

use hkdf::Hkdf;
use sha2::{Digest, Sha256};

/// The bytes of a nonce.
pub const NONCE_BYTES: usize = 32;

/// The bits of a code: three words of a list of 2,048.
pub const CODE_BITS: u32 = 33;

/// What each commitment hashes before the nonce, so a commitment cannot be taken for another
/// hash of the same bytes.
const COMMITMENT_CONTEXT: &[u8] = b"ferry verification commitment v1";

/// The HKDF salt of the code.
const CODE_SALT: &[u8] = b"ferry verification code v1";

/// Why a verification stopped.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The revealed nonce is not the one committed to: the other side, or someone between,
    /// changed its mind after seeing this side's nonce.
    #[error("the other side's answer did not match what it had promised, so it was stopped")]
    BrokenPromise,
    /// A session description without a DTLS fingerprint: nothing to verify.
    #[error("this connection shows no certificate fingerprint to verify")]
    NoFingerprint,
}

/// A random nonce.
pub type Nonce = [u8; NONCE_BYTES];

/// The commitment to `nonce`: SHA-256 of a fixed context and the nonce.
pub fn commitment(nonce: &Nonce) -> [u8; 32] {
    let mut hash = Sha256::new();
    hash.update(COMMITMENT_CONTEXT);
    hash.update(nonce);
    hash.finalize().into()
}

/// The two fingerprints of one connection, by role: the opener's (who committed) and the
/// answerer's, each as [`crate::sdp::fingerprint`] reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fingerprints {
    /// The opener's certificate.
    pub opener: String,
    /// The answerer's certificate.
    pub answerer: String,
}

/// The code both people compare.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Code([u16; 3]);

impl Code {
    /// Derives the code: HKDF-SHA-256 with both nonces as its key material and both
    /// fingerprints, each with its length, as its info.
    pub fn derive(opener_nonce: &Nonce, answerer_nonce: &Nonce, prints: &Fingerprints) -> Self {
        let mut key = Vec::with_capacity(2 * NONCE_BYTES);
        key.extend_from_slice(opener_nonce);
        key.extend_from_slice(answerer_nonce);
        let mut info = Vec::new();
        for print in [&prints.opener, &prints.answerer] {
            info.extend_from_slice(&(print.len() as u32).to_be_bytes());
            info.extend_from_slice(print.as_bytes());
        }
        let mut out = [0u8; 8];
        Hkdf::<Sha256>::new(Some(CODE_SALT), &key)
            .expand(&info, &mut out)
            .expect("8 bytes is far below HKDF-SHA-256's limit");
        let bits = u64::from_be_bytes(out) >> (64 - CODE_BITS);
        let word = |n: u32| ((bits >> (11 * (2 - n))) & 0x7ff) as u16;
        Self([word(0), word(1), word(2)])
    }

    /// The code's words.
    pub fn words(&self) -> [&'static str; 3] {
        let list = bip39::Language::English.word_list();
        self.0.map(|index| list[usize::from(index)])
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.words().join(" "))
    }
}

/// The opener's side of an exchange, after it committed.
#[derive(Clone, Debug)]
pub struct Opener {
    nonce: Nonce,
}

impl Opener {
    /// Starts an exchange with `nonce`; the commitment is what to send first.
    pub fn start(nonce: Nonce) -> (Self, [u8; 32]) {
        (Self { nonce }, commitment(&nonce))
    }

    /// The other side's nonce arrived: the nonce to reveal, and the code.
    pub fn on_nonce(self, theirs: &Nonce, prints: &Fingerprints) -> (Nonce, Code) {
        (self.nonce, Code::derive(&self.nonce, theirs, prints))
    }
}

/// The answerer's side of an exchange, after it sent its nonce.
#[derive(Clone, Debug)]
pub struct Answerer {
    promised: [u8; 32],
    nonce: Nonce,
}

impl Answerer {
    /// Answers a commitment with `nonce`, which is what to send.
    pub fn answer(promised: [u8; 32], nonce: Nonce) -> Self {
        Self { promised, nonce }
    }

    /// The opener revealed its nonce: the code, or [`VerifyError::BrokenPromise`] when the
    /// nonce is not the one it committed to.
    pub fn on_reveal(self, revealed: &Nonce, prints: &Fingerprints) -> Result<Code, VerifyError> {
        if commitment(revealed) != self.promised {
            return Err(VerifyError::BrokenPromise);
        }
        Ok(Code::derive(revealed, &self.nonce, prints))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prints() -> Fingerprints {
        Fingerprints {
            opener: "sha-256 AA:BB".into(),
            answerer: "sha-256 CC:DD".into(),
        }
    }

    /// Runs a whole exchange between two honest sides: both codes.
    fn exchange(opener_nonce: Nonce, answerer_nonce: Nonce) -> (Code, Code) {
        let (opener, promise) = Opener::start(opener_nonce);
        let answerer = Answerer::answer(promise, answerer_nonce);
        let (revealed, opener_code) = opener.on_nonce(&answerer_nonce, &prints());
        let answerer_code = answerer.on_reveal(&revealed, &prints()).unwrap();
        (opener_code, answerer_code)
    }

    #[test]
    fn both_honest_sides_read_the_same_three_words() {
        let (a, b) = exchange([1; 32], [2; 32]);
        assert_eq!(a, b);
        assert_eq!(a.to_string().split(' ').count(), 3);
        assert!(a.words().iter().all(|word| word.len() >= 3));
    }

    #[test]
    fn the_code_changes_with_every_fingerprint_and_nonce() {
        let base = Code::derive(&[1; 32], &[2; 32], &prints());
        let mut other_opener = prints();
        other_opener.opener = "sha-256 AA:BC".into();
        let mut other_answerer = prints();
        other_answerer.answerer = "sha-256 CC:DE".into();
        let swapped = Fingerprints {
            opener: prints().answerer,
            answerer: prints().opener,
        };
        let variants = [
            Code::derive(&[3; 32], &[2; 32], &prints()),
            Code::derive(&[1; 32], &[3; 32], &prints()),
            Code::derive(&[2; 32], &[1; 32], &prints()),
            Code::derive(&[1; 32], &[2; 32], &other_opener),
            Code::derive(&[1; 32], &[2; 32], &other_answerer),
            Code::derive(&[1; 32], &[2; 32], &swapped),
        ];
        for variant in variants {
            assert_ne!(variant, base);
        }
    }

    #[test]
    fn fingerprints_cannot_be_regrouped_across_their_boundary() {
        // Lengths are part of the info, so moving a character from one print to the other
        // gives another code.
        let moved = Fingerprints {
            opener: "sha-256 AA:BBC".into(),
            answerer: "C:DD".into(),
        };
        let base = Fingerprints {
            opener: "sha-256 AA:BB".into(),
            answerer: "CC:DD".into(),
        };
        assert_ne!(
            Code::derive(&[1; 32], &[2; 32], &moved),
            Code::derive(&[1; 32], &[2; 32], &base)
        );
    }

    #[test]
    fn a_reveal_that_does_not_match_its_commitment_is_refused() {
        let (_, promise) = Opener::start([1; 32]);
        let answerer = Answerer::answer(promise, [2; 32]);
        assert_eq!(
            answerer.on_reveal(&[9; 32], &prints()),
            Err(VerifyError::BrokenPromise)
        );
    }

    #[test]
    fn a_man_in_the_middle_gets_two_different_codes() {
        // Mallory holds one connection with each side, so each side sees Mallory's print in
        // place of the other's; even relaying the nonces unchanged, the codes differ.
        let nonces = ([4; 32], [5; 32]);
        let ana_sees = Fingerprints {
            opener: "sha-256 A".into(),
            answerer: "sha-256 M1".into(),
        };
        let bo_sees = Fingerprints {
            opener: "sha-256 M2".into(),
            answerer: "sha-256 B".into(),
        };
        assert_ne!(
            Code::derive(&nonces.0, &nonces.1, &ana_sees),
            Code::derive(&nonces.0, &nonces.1, &bo_sees)
        );
    }

    #[test]
    fn codes_spread_over_all_their_bits() {
        // 2,000 codes from different nonces: each word position takes many values, and no two
        // codes repeat (a repeat among 2,000 of 2^33 would be a 1-in-4,000 event).
        let mut seen = std::collections::HashSet::new();
        let mut first_words = std::collections::HashSet::new();
        for n in 0..2000u32 {
            let mut nonce = [0; 32];
            nonce[..4].copy_from_slice(&n.to_be_bytes());
            let code = Code::derive(&nonce, &[7; 32], &prints());
            first_words.insert(code.0[0]);
            assert!(code.0.iter().all(|&word| word < 2048));
            assert!(seen.insert(code.0), "repeated code {code}");
        }
        assert!(
            first_words.len() > 1000,
            "{} first words",
            first_words.len()
        );
    }

    #[test]
    fn the_commitment_hides_the_nonce_behind_sha_256_with_a_context() {
        assert_ne!(commitment(&[1; 32]), commitment(&[2; 32]));
        let plain: [u8; 32] = Sha256::digest([1u8; 32]).into();
        assert_ne!(commitment(&[1; 32]), plain);
    }
}
