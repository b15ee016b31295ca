//! When two nicks count as the same: when they look the same. A Cyrillic "а" for a Latin "a",
//! a capital "I" for an "l", fullwidth letters, a decomposed "é" beside a composed one, an
//! accent typed twice, a no-break space or a blank braille pattern for a space, or another
//! case: each would let someone pose as a person others know.
//!
//! A nick has two keys, and two nicks are the same when they share one. Both start from NFKC
//! with blank-looking characters as spaces, runs of spaces as one, and a combining mark typed
//! twice in a row as one:
//! - the UTS #39 confusable skeleton of the case-folded nick, which finds "ß" in "SS";
//! - the skeleton taken before the case is folded (and again after), which finds confusables
//!   among capitals, such as "I" for "l" in "PauI" or the Cherokee "Ꭺ" for "A", whose lower
//!   case forms are confusable with nothing.
//!
//! Neither order alone finds both kinds. The nick people see stays as it was typed.

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;
use unicode_security::confusable_detection::skeleton;

/// The forms under which nicks that look alike are equal: two nicks look alike when they
/// share a key. Usually both keys are the same string.
pub(crate) fn keys(nick: &str) -> [String; 2] {
    let plain = plain(nick);
    let folded_first = settle(&skeleton_of(&fold_case(&plain)));
    let skeleton_first = settle(&skeleton_of(&fold_case(&skeleton_of(&plain))));
    [folded_first, skeleton_first]
}

/// The nick with what cannot be seen taken out of the comparison: NFKC (fullwidth letters,
/// ligatures, superscripts, the no-break and ideographic spaces), blank-looking characters as
/// spaces, runs of spaces as one, and repeated combining marks as one.
fn plain(nick: &str) -> String {
    let normalized: String = nick
        .nfkc()
        .map(|c| if looks_blank(c) { ' ' } else { c })
        .collect();
    let spaced = normalized.split_whitespace().collect::<Vec<_>>().join(" ");
    once_each_mark(&spaced)
}

/// The skeleton maps each character to the prototype it is confusable with (Cyrillic "а" to
/// Latin "a", "0" to "O", "I" to "l").
fn skeleton_of(text: &str) -> String {
    skeleton(text).collect()
}

/// The last steps of either key: prototypes may be capitals, so the case is folded once more,
/// and composed again.
fn settle(text: &str) -> String {
    fold_case(text).nfc().collect()
}

/// Full case folding, near enough: upper then lower case maps "ß" and "SS" alike and the final
/// sigma with the other sigmas, which lower case alone does not.
fn fold_case(text: &str) -> String {
    text.chars()
        .flat_map(char::to_uppercase)
        .flat_map(char::to_lowercase)
        .collect()
}

/// White space, and characters that draw nothing though they are not white space (the
/// braille pattern blank, the Hangul fillers).
fn looks_blank(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            '\u{2800}' | '\u{3164}' | '\u{FFA0}' | '\u{115F}' | '\u{1160}'
        )
}

/// The text decomposed, with each combining mark that repeats the one before it dropped: an
/// accent typed twice draws as one.
fn once_each_mark(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut last: Option<char> = None;
    for c in text.nfd() {
        if is_combining_mark(c) && last == Some(c) {
            continue;
        }
        out.push(c);
        last = Some(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether two nicks share a key.
    fn alike(a: &str, b: &str) -> bool {
        let (a, b) = (keys(a), keys(b));
        a.iter().any(|key| b.contains(key))
    }

    /// Asserts that every nick of `same` looks like the first, and that `other` does not.
    fn check(same: &[&str], other: &str) {
        for nick in same {
            assert!(
                alike(nick, same[0]),
                "{nick:?} should look like {:?}",
                same[0]
            );
        }
        assert!(
            !alike(other, same[0]),
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
