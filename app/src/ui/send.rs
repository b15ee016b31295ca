//! Choosing files or a folder (pickers or drop) and sending them to the selected user.

use leptos::html;
use leptos::prelude::*;

use crate::core::format::human_size;
use crate::session::{AppState, Session};

/// File inputs "Choose files" and "Choose folder", what was chosen, and button "Send".
#[component]
pub fn SendPanel() -> impl IntoView {
    let state = expect_context::<AppState>();
    let session = expect_context::<Session>();
    let input: NodeRef<html::Input> = NodeRef::new();
    let folder: NodeRef<html::Input> = NodeRef::new();
    // `webkitdirectory` turns a file input into a folder picker (every browser has it, under
    // that name); the view macro knows no such attribute, so it is set once the input exists.
    folder.on_load(|input| {
        let _ = input.set_attribute("webkitdirectory", "");
    });
    let error = RwSignal::new(None::<String>);
    let recipient = move || {
        let selected = state.selected.get()?;
        state
            .users
            .get()
            .into_iter()
            .find(|user| user.id == selected)
            .map(|user| user.nick.as_str().to_owned())
    };
    let can_send = move || recipient().is_some() && !state.chosen.get().is_empty();
    let title = move || {
        let what = match state.chosen_files.get() {
            0 => return "Send files".to_owned(),
            1 => "1 file".to_owned(),
            n => format!("{n} files"),
        };
        match recipient() {
            Some(nick) => format!("Send {what} to {nick}"),
            None => format!("Send {what} to…"),
        }
    };
    let send = move |_| match session.send() {
        Ok(()) => {
            error.set(None);
            // Clearing the inputs lets the same file or folder be chosen again.
            for picker in [input, folder] {
                if let Some(picker) = picker.get_untracked() {
                    picker.set_value("");
                }
            }
        }
        Err(failure) => error.set(Some(failure.to_string())),
    };
    view! {
        <section class="panel send" aria-labelledby="send-title">
            <h2 id="send-title">{title}</h2>
            <p class="note" role="status" hidden=move || state.share_note.with(Option::is_none)>
                {move || state.share_note.get()}
            </p>
            <div class="picker">
                <input
                    id="files"
                    class="visually-hidden"
                    type="file"
                    multiple
                    node_ref=input
                    on:change:target=move |event| {
                        if let Some(list) = event.target().files() {
                            session.choose_files(&list);
                        }
                    }
                />
                <label for="files" class="button secondary">"Choose files"</label>
                // A folder picker lists the folder's files with their paths (not its empty
                // subfolders: a dropped folder keeps those too).
                <input
                    id="folder"
                    class="visually-hidden"
                    type="file"
                    node_ref=folder
                    on:change:target=move |event| {
                        if let Some(list) = event.target().files() {
                            session.choose_files(&list);
                        }
                    }
                />
                <label for="folder" class="button secondary">"Choose folder"</label>
                <span class="hint">"or drop files or a folder anywhere on this page"</span>
            </div>
            <ul class="chosen" aria-label="Chosen files" hidden=move || state.chosen.get().is_empty()>
                {move || {
                    state
                        .chosen
                        .get()
                        .into_iter()
                        .map(|(name, size)| {
                            view! {
                                <li>
                                    <span class="name">{name}</span>
                                    <span class="size">{human_size(size)}</span>
                                </li>
                            }
                        })
                        .collect_view()
                }}
            </ul>
            <div class="send-row">
                <button type="button" class="primary" disabled=move || !can_send() on:click=send>
                    "Send"
                </button>
                <span class="hint">
                    {move || match (recipient(), state.chosen.get().is_empty()) {
                        (Some(nick), false) => format!("to {nick}"),
                        (Some(nick), true) => format!("Choose files for {nick}"),
                        (None, _) => "Pick someone under “Online users”".to_owned(),
                    }}
                </span>
            </div>
            <p class="error" role="alert">{move || error.get()}</p>
        </section>
    }
}
