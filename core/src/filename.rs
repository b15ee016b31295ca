//! Names for received files: the sender's name, made safe to hand to the browser's download
//! machinery and to the file system, and numbered where it would replace another file.

/// The longest name kept, in bytes of UTF-8; common file systems allow 255.
const MAX_BYTES: usize = 200;

/// Keeps the last path component, drops control characters and characters Windows forbids,
/// and trims dots and white space from the ends; keeps spaces, accents and emoji. A name
/// Windows reserves for a device ("CON", "nul.txt", "COM1") gets a `_` after its stem, as
/// Windows would not create it. Never returns an empty name, ".", or "..".
pub fn sanitize(raw: &str) -> String {
    let last = raw.rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned: String = last
        .chars()
        .filter(|c| !c.is_control())
        .map(|c| match c {
            '<' | '>' | ':' | '"' | '|' | '?' | '*' => '_',
            other => other,
        })
        .collect();
    let trimmed = cleaned.trim_matches(|c: char| c.is_whitespace() || c == '.');
    // A leading dot is kept (".bashrc"), a trailing one is not (Windows drops it silently).
    let name = if cleaned.trim_start().starts_with('.') && !trimmed.is_empty() {
        format!(".{trimmed}")
    } else {
        trimmed.to_owned()
    };
    if name.is_empty() {
        return "download".to_owned();
    }
    shorten(&unreserved(name))
}

/// `name` with a `_` after its stem when the stem is a device name Windows reserves.
fn unreserved(name: String) -> String {
    let stem_end = name.find('.').unwrap_or(name.len());
    let stem = name[..stem_end].to_ascii_uppercase();
    let numbered_device = |prefix: &str| {
        stem.strip_prefix(prefix)
            .is_some_and(|digit| digit.len() == 1 && digit.as_bytes()[0].is_ascii_digit())
    };
    let reserved = matches!(stem.as_str(), "CON" | "PRN" | "AUX" | "NUL")
        || numbered_device("COM")
        || numbered_device("LPT");
    if reserved {
        format!("{}_{}", &name[..stem_end], &name[stem_end..])
    } else {
        name
    }
}

/// The `n`th variant of a name that is already taken: "notes (2).txt" for `n` = 2; `n` = 1
/// is the name itself. Stays within the length limit by cutting the stem, never the number.
pub fn numbered(name: &str, n: u32) -> String {
    if n <= 1 {
        return name.to_owned();
    }
    let extension = extension(name);
    let stem = &name[..name.len() - extension.len()];
    fit(stem, &format!(" ({n}){extension}"))
}

/// Cuts a long name at a character boundary, keeping a short extension.
fn shorten(name: &str) -> String {
    if name.len() <= MAX_BYTES {
        return name.to_owned();
    }
    let extension = extension(name);
    fit(&name[..name.len() - extension.len()], extension)
}

/// A short extension of `name` with its dot ("" when there is none, or it is long, or the
/// dot starts the name as in ".bashrc").
fn extension(name: &str) -> &str {
    name.rfind('.')
        .filter(|&dot| dot > 0)
        .map(|dot| &name[dot..])
        .filter(|ext| ext.len() <= 16)
        .unwrap_or("")
}

/// `stem` followed by `tail`, the stem cut at a character boundary to stay within the limit.
fn fit(stem: &str, tail: &str) -> String {
    let mut stem_end = stem.len().min(MAX_BYTES.saturating_sub(tail.len()));
    while !stem.is_char_boundary(stem_end) {
        stem_end -= 1;
    }
    format!("{}{tail}", &stem[..stem_end])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(raw: &str, expected: &str) {
        assert_eq!(sanitize(raw), expected, "sanitize({raw:?})");
    }

    #[test]
    fn keeps_ordinary_names() {
        check("holiday.mov", "holiday.mov");
        check("Café au lait 🚢 ü.txt", "Café au lait 🚢 ü.txt");
        check(".bashrc", ".bashrc");
    }

    #[test]
    fn strips_folders_and_controls() {
        check("../../etc/passwd", "passwd");
        check("C:\\Users\\ana\\notes.txt", "notes.txt");
        check("bad\u{0}name\n.txt", "badname.txt");
        check("what?<now>.txt", "what__now_.txt");
    }

    #[test]
    fn renames_names_windows_reserves() {
        check("CON", "CON_");
        check("nul.txt", "nul_.txt");
        check("com1.tar.gz", "com1_.tar.gz");
        check("LPT9", "LPT9_");
        check("console.log", "console.log");
        check("COM10", "COM10");
    }

    #[test]
    fn never_empty_or_special() {
        check("", "download");
        check("..", "download");
        check(".", "download");
        check("folder/", "download");
        check("  name.  ", "name");
    }

    #[test]
    fn numbers_a_taken_name_before_its_extension() {
        assert_eq!(numbered("notes.txt", 1), "notes.txt");
        assert_eq!(numbered("notes.txt", 2), "notes (2).txt");
        assert_eq!(numbered("README", 3), "README (3)");
        assert_eq!(numbered(".bashrc", 2), ".bashrc (2)");
        let long = format!("{}.txt", "é".repeat(150));
        let second = numbered(&long, 2);
        assert!(second.len() <= MAX_BYTES);
        assert!(second.ends_with(" (2).txt"), "{second}");
    }

    #[test]
    fn shortens_long_names_keeping_the_extension() {
        let long = format!("{}.tar.gz", "é".repeat(300));
        let short = sanitize(&long);
        assert!(short.len() <= MAX_BYTES);
        assert!(short.ends_with(".gz"));
        assert!(short.starts_with('é'));
    }
}
