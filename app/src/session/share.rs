//! A share into Ferry from a phone's share sheet: its files become the files to send, its text
//! the text to send, and the page says what arrived (or that nothing did).

use leptos::prelude::*;

use super::Session;
use crate::core::share::share_sentence;
use crate::web::chosen::Chosen;
use crate::web::shared;

impl Session {
    /// Takes what the share sheet sent when the page was opened on a share; otherwise drops
    /// what an earlier share left in the browser.
    pub fn take_share(self) {
        let opened_on_share = shared::opened_on_share();
        leptos::task::spawn_local(async move {
            if !opened_on_share {
                shared::forget().await;
                return;
            }
            let note = match shared::take().await {
                Ok(share) => {
                    let files = share.files.len();
                    if let Some(text) = share.text {
                        self.state.text_draft.set(text);
                    }
                    self.choose(Chosen::from(share.files));
                    share_sentence(files, !self.state.text_draft.get_untracked().is_empty())
                }
                Err(error) => {
                    format!("What was shared could not be read ({error}): choose the files here.")
                }
            };
            self.state.share_note.set(Some(note));
        });
    }
}
