//! A transfer's folders, as its offer names them: its empty folders, whether it has any, the
//! one they share, and a folder that arrived whole but could not be handed over.

use super::{Status, Transfer};
use crate::paths::top_folder;

impl Transfer {
    /// Every file arrived, but the folder could not be handed over (its zip could not be
    /// made): the transfer's row says so, as the failure of its first file.
    pub fn delivery_failed(&mut self, reason: &str) {
        if let Some(first) = self.files.first_mut() {
            first.status = Status::Failed(reason.to_owned());
        }
    }

    /// The transfer with the offer's `empty` folders.
    #[must_use]
    pub fn with_empty_folders(mut self, empty: Vec<String>) -> Self {
        self.folders |= !empty.is_empty();
        self.empty_folders = empty;
        self
    }

    /// The offer's folders that hold no file.
    pub fn empty_folders(&self) -> &[String] {
        &self.empty_folders
    }

    /// Whether the offer holds folders, rather than files alone.
    pub fn has_folders(&self) -> bool {
        self.folders
    }

    /// The one folder everything on offer sits in, if there is one.
    pub fn top_folder(&self) -> Option<String> {
        top_folder(self.paths())
    }

    /// The files' folders, then the empty folders.
    fn paths(&self) -> impl Iterator<Item = &str> {
        let files = self.files.iter().map(|file| file.meta.path.as_str());
        files.chain(self.empty_folders.iter().map(String::as_str))
    }
}
