//! An offer waiting for this user's answer, and the rules of answering it: whether it can be
//! accepted here at all, how it will land (one file, several downloads, one zip, a tree in a
//! folder the user picks), and what the dialog says about each.

use ferry_protocol::{FileMeta, TransferId};

use crate::format::human_size;
use crate::paths::{has_folders, top_folder};

/// An offer waiting for this user's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IncomingOffer {
    /// The transfer.
    pub id: TransferId,
    /// The sender's nick.
    pub from: String,
    /// What is on offer, with safe names and folders.
    pub files: Vec<FileMeta>,
    /// The offer's folders that hold no file.
    pub empty_folders: Vec<String>,
    /// Files can only be kept in memory here; [`Self::memory_limit`] applies.
    pub memory_only: bool,
    /// The most bytes an offer may hold when kept in memory.
    pub memory_limit: u64,
    /// How many more bytes the browser's private storage takes, where the browser says.
    pub room: Option<u64>,
}

impl IncomingOffer {
    /// The bytes on offer.
    pub fn total_size(&self) -> u64 {
        self.files.iter().map(|file| file.size).sum()
    }

    /// The one folder the offer is, if it is one.
    pub fn folder(&self) -> Option<String> {
        top_folder(self.paths())
    }

    /// Whether the offer holds folders, to be written as a tree or a zip.
    pub fn has_folders(&self) -> bool {
        has_folders(self.paths())
    }

    /// The files' folders, then the empty folders.
    fn paths(&self) -> impl Iterator<Item = &str> {
        let files = self.files.iter().map(|file| file.path.as_str());
        files.chain(self.empty_folders.iter().map(String::as_str))
    }

    /// Whether accepting is impossible because memory is the only sink and the offer is
    /// larger than allowed there.
    pub fn too_large(&self) -> bool {
        self.memory_only && self.total_size() > self.memory_limit
    }

    /// Whether the offer is larger than the browser's private storage can take: accepted
    /// into it, the transfer would fail when the disk fills. A place the user picks is on
    /// the disk itself, which the browser does not measure, so that way stays open.
    pub fn wont_fit(&self) -> bool {
        !self.memory_only && self.room.is_some_and(|room| self.total_size() > room)
    }

    /// Whether Accept can be pressed.
    pub fn can_accept(&self) -> bool {
        !self.too_large() && !self.wont_fit()
    }

    /// The name a save picker suggests, when the offer is one file (saved as a file);
    /// several files, or a folder, go into a folder the user picks.
    pub fn one_file(&self) -> Option<&str> {
        match self.files.as_slice() {
            [one] if !self.has_folders() => Some(&one.name),
            _ => None,
        }
    }

    /// What is on offer, in a few words: "the folder Holiday (42 files, 1.2 GB)",
    /// "notes.txt (12 kB)" or "3 files (4.5 MB)".
    pub fn summary(&self) -> String {
        let total = human_size(self.total_size());
        let count = match self.files.len() {
            1 => "1 file".to_owned(),
            many => format!("{many} files"),
        };
        match (self.folder(), self.files.as_slice()) {
            (Some(folder), _) => format!("the folder {folder} ({count}, {total})"),
            (None, [one]) if !self.has_folders() => {
                format!("{} ({})", one.name, human_size(one.size))
            }
            (None, _) => format!("{count} ({total})"),
        }
    }

    /// Said before Accept when the offer will not fit, so a transfer never fails at 90 % for
    /// want of space; where the browser can save elsewhere (`save_picker`), that is the way.
    pub fn space_note(&self, save_picker: bool) -> Option<String> {
        if !self.wont_fit() {
            return None;
        }
        let total = human_size(self.total_size());
        let room = human_size(self.room.unwrap_or(0));
        let way = if save_picker {
            "Free some disk space, or choose where to save it."
        } else {
            "Free some disk space and ask for it again."
        };
        Some(format!(
            "This needs {total}, but this browser can store only {room} more. {way}"
        ))
    }

    /// Said when received files can only be kept in memory here.
    pub fn memory_note(&self) -> Option<String> {
        self.memory_only.then(|| {
            format!(
                "This browser can only keep received files in memory, up to {} per offer.",
                human_size(self.memory_limit)
            )
        })
    }

    /// How the offer will land. A folder arrives as one zip, or as a tree where the user
    /// picks (`save_picker`). Several files are several downloads, and browsers let a page
    /// start one download per click; each further one needs the user's permission ("download
    /// multiple files"), and a refused one lands nowhere while its row says Complete. Saying so
    /// up front, and keeping a Save button on every row, means no file of a multi-file offer
    /// is lost to a prompt the user did not expect.
    pub fn delivery_note(&self, save_picker: bool) -> Option<String> {
        if self.has_folders() {
            let zip = self.folder().map_or_else(
                || "one zip file".to_owned(),
                |folder| format!("{folder}.zip"),
            );
            return Some(if save_picker {
                format!(
                    "Accept saves the folder as {zip}; “Choose where to save…” writes its files \
                     and folders into a folder you pick."
                )
            } else {
                format!("The folder arrives as {zip}.")
            });
        }
        (self.files.len() > 1).then(|| {
            "Your browser may ask whether Ferry may download several files: choose Allow. \
             Each file also keeps a Save button once it has arrived."
                .to_owned()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, name: &str, size: u64) -> FileMeta {
        FileMeta {
            name: name.to_owned(),
            size,
            mime: String::new(),
            path: path.to_owned(),
        }
    }

    fn offer(files: Vec<FileMeta>) -> IncomingOffer {
        IncomingOffer {
            id: TransferId::parse("00112233445566778899aabbccddeeff").unwrap(),
            from: "ana".to_owned(),
            files,
            empty_folders: Vec::new(),
            memory_only: false,
            memory_limit: 512 << 20,
            room: None,
        }
    }

    #[test]
    fn one_file_is_saved_as_itself_and_summed_up_by_name() {
        let one = offer(vec![file("", "notes.txt", 12_000)]);
        assert_eq!(one.one_file(), Some("notes.txt"));
        assert_eq!(one.summary(), "notes.txt (12.0 kB)");
        assert_eq!(one.delivery_note(true), None);
        assert!(one.can_accept());
    }

    #[test]
    fn several_files_warn_of_the_downloads_prompt() {
        let two = offer(vec![file("", "a", 1_000_000), file("", "b", 1_000_000)]);
        assert_eq!(two.one_file(), None);
        assert_eq!(two.summary(), "2 files (2.0 MB)");
        assert!(two.delivery_note(false).unwrap().contains("choose Allow"));
    }

    #[test]
    fn a_folder_arrives_as_its_zip_or_where_the_user_picks() {
        let folder = offer(vec![
            file("Holiday", "a.jpg", 5),
            file("Holiday/x", "b.jpg", 5),
        ]);
        assert_eq!(folder.one_file(), None);
        assert_eq!(folder.summary(), "the folder Holiday (2 files, 10 B)");
        assert_eq!(
            folder.delivery_note(false).as_deref(),
            Some("The folder arrives as Holiday.zip.")
        );
        assert!(folder.delivery_note(true).unwrap().contains("Holiday.zip"));
    }

    #[test]
    fn an_offer_that_cannot_be_kept_here_cannot_be_accepted() {
        let mut big = offer(vec![file("", "big.bin", 600 << 20)]);
        big.memory_only = true;
        assert!(big.too_large());
        assert!(!big.can_accept());
        assert!(big.memory_note().unwrap().contains("in memory"));

        let mut full = offer(vec![file("", "big.bin", 2_000_000)]);
        full.room = Some(1_000_000);
        assert!(full.wont_fit());
        assert!(!full.can_accept());
        let note = full.space_note(true).unwrap();
        assert!(note.contains("only 1.0 MB more"), "{note}");
        assert!(note.ends_with("choose where to save it."), "{note}");
        assert!(
            full.space_note(false)
                .unwrap()
                .ends_with("ask for it again.")
        );
        full.room = Some(3_000_000);
        assert_eq!(full.space_note(true), None);
    }
}
