//! A transfer's folders, as its offer names them: whether it has any, the one they share, and
//! a folder that arrived whole but could not be handed over.

use super::{Status, Transfer};
use crate::core::paths::{has_folders, top_folder};

impl Transfer {
    /// Every file arrived, but the folder could not be handed over (its zip could not be
    /// made): the transfer's row says so, as the failure of its first file.
    pub fn delivery_failed(&mut self, reason: &str) {
        if let Some(first) = self.files.first_mut() {
            first.status = Status::Failed(reason.to_owned());
        }
    }

    /// Whether the offer holds folders, rather than files alone.
    pub fn has_folders(&self) -> bool {
        has_folders(self.paths())
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
