//! When two nicks count as the same: when they look the same. A Cyrillic "а" for a Latin "a",
//! fullwidth letters, a decomposed "é" beside a composed one, a no-break space for a space, or
//! another case: each would let someone pose as a person others know.
//!
//! The key of a nick is its UTS #39 confusable skeleton after NFKC normalisation and case
//! folding; the nick people see stays as it was typed.

use unicode_normalization::UnicodeNormalization;
use unicode_security::confusable_detection::skeleton;

/// The form under which nicks that look alike are equal; a map key for the nick namespace.
pub(crate) fn key(nick: &str) -> String {
    // NFKC folds compatibility forms: fullwidth letters, ligatures, superscripts, and the
    // no-break and ideographic spaces.
    let normalized: String = nick.nfkc().collect();
    let folded = fold_case(&normalized);
    let spaced = collapse_spaces(&folded);
    // The skeleton maps each character to the prototype it is confusable with (Cyrillic "а" to
    // Latin "a", "0" to "O"); prototypes may be capitals, so the case is folded once more.
    let skeleton: String = skeleton(&spaced).collect();
    fold_case(&skeleton.nfc().collect::<String>())
}

/// Full case folding, near enough: upper then lower case maps "ß" and "SS" alike and the final
/// sigma with the other sigmas, which lower case alone does not.
fn fold_case(text: &str) -> String {
    text.chars()
        .flat_map(char::to_uppercase)
        .flat_map(char::to_lowercase)
        .collect()
}

/// Every run of white space as one space: two spaces look like one.
fn collapse_spaces(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Asserts that every nick of `same` has one key, and that `other` has another.
    fn check(same: &[&str], other: &str) {
        let first = key(same[0]);
        for nick in same {
            assert_eq!(key(nick), first, "{nick:?} should look like {:?}", same[0]);
        }
        assert_ne!(
            key(other),
            first,
            "{other:?} should not look like {:?}",
            same[0]
        );
    }

    #[test]
    fn case_and_compatibility_forms_are_the_same_nick() {
        check(&["anna", "Anna", "ANNA", "ａｎｎａ", "Ａｎｎａ"], "anne");
        check(&["straße", "STRASSE", "strasse"], "strase");
        check(&["ΣΟΦΟΣ", "σοφος", "σοφοσ"], "σοφα");
    }

    #[test]
    fn other_scripts_that_look_latin_are_the_same_nick() {
        // Cyrillic а (U+0430) and о (U+043E), Greek ο (U+03BF).
        check(&["anna", "\u{430}nn\u{430}"], "bnna");
        check(&["bob", "b\u{43E}b", "b\u{3BF}b"], "bab");
    }

    #[test]
    fn composed_and_decomposed_letters_are_the_same_nick() {
        check(&["rené", "rene\u{301}", "RENÉ"], "rene");
    }

    #[test]
    fn spaces_that_look_alike_are_the_same_nick() {
        check(
            &[
                "anna maria",
                "anna\u{A0}maria",
                "anna\u{3000}maria",
                "anna  maria",
            ],
            "annamaria",
        );
    }

    #[test]
    fn digits_and_letters_that_look_alike_are_the_same_nick() {
        check(&["l00p", "loop", "LOOP", "1oop"], "leap");
    }
}
