//! What the page says of a share into Ferry from a phone's share sheet.

/// What the page says of a share of `files` files, with or without a text.
pub fn share_sentence(files: usize, text: bool) -> String {
    let files_part = match files {
        0 => None,
        1 => Some("1 shared file is".to_owned()),
        n => Some(format!("{n} shared files are")),
    };
    match (files_part, text) {
        (Some(files), false) => format!("{files} ready: pick who gets them."),
        (Some(files), true) => {
            format!("{files} ready, and the shared text: pick who gets them.")
        }
        (None, true) => "The shared text is ready: pick who gets it.".to_owned(),
        (None, false) => "Nothing shared reached Ferry (this browser hands shares only to the \
                          installed app): choose the files here."
            .to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::share_sentence;

    #[test]
    fn a_share_is_told_by_what_it_brought() {
        assert_eq!(
            share_sentence(1, false),
            "1 shared file is ready: pick who gets them."
        );
        assert_eq!(
            share_sentence(3, true),
            "3 shared files are ready, and the shared text: pick who gets them."
        );
        assert_eq!(
            share_sentence(0, true),
            "The shared text is ready: pick who gets it."
        );
        assert!(share_sentence(0, false).starts_with("Nothing shared reached Ferry"));
    }
}
