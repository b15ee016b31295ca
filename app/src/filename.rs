//! Names for received files: the sender's name, made safe to hand to the browser's download
//! machinery and to the origin-private file system.

/// The longest name kept, in bytes of UTF-8; common file systems allow 255.
const MAX_BYTES: usize = 200;

/// Keeps the last path component, drops control characters and characters Windows forbids,
/// and trims dots and white space from the ends; keeps spaces, accents and emoji.
/// Never returns an empty name, ".", or "..".
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
    shorten(&name)
}

/// Cuts a long name at a character boundary, keeping a short extension.
fn shorten(name: &str) -> String {
    if name.len() <= MAX_BYTES {
        return name.to_owned();
    }
    let extension = name
        .rfind('.')
        .map(|dot| &name[dot..])
        .filter(|ext| ext.len() <= 16)
        .unwrap_or("");
    let mut stem_end = MAX_BYTES - extension.len();
    while !name.is_char_boundary(stem_end) {
        stem_end -= 1;
    }
    format!("{}{extension}", &name[..stem_end])
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
    fn never_empty_or_special() {
        check("", "download");
        check("..", "download");
        check(".", "download");
        check("folder/", "download");
        check("  name.  ", "name");
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
