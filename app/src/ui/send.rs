//! Choosing files (picker or drop) and sending them to the selected user.

use leptos::html;
use leptos::prelude::*;
use web_sys::FileList;

use super::{AppState, Services};
use crate::format::human_size;

/// Takes the files of a picker or a drop as the next files to send.
pub fn choose(state: AppState, services: Services, list: &FileList) {
    let files: Vec<web_sys::File> = (0..list.length()).filter_map(|i| list.get(i)).collect();
    if files.is_empty() {
        return;
    }
    // `File.size` is a whole number of bytes held in a double.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let chosen = files
        .iter()
        .map(|file| (file.name(), file.size() as u64))
        .collect();
    state.chosen.set(chosen);
    services.files.set_value(files);
}

/// File input "Choose files", the chosen files, and button "Send".
#[component]
pub fn SendPanel() -> impl IntoView {
    let state = expect_context::<AppState>();
    let services = expect_context::<Services>();
    let input: NodeRef<html::Input> = NodeRef::new();
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
    let send = move |_| {
        let Some(to) = state.selected.get_untracked() else {
            return;
        };
        let files = services.files.get_value();
        if files.is_empty() {
            return;
        }
        match services
            .engine
            .with_value(|engine| engine.send_files(&to, files))
        {
            Ok(_) => {
                error.set(None);
                services.files.set_value(Vec::new());
                state.chosen.set(Vec::new());
                // Clearing the input lets the same file be chosen again.
                if let Some(input) = input.get_untracked() {
                    input.set_value("");
                }
            }
            Err(failure) => error.set(Some(format!("Could not start the transfer: {failure}."))),
        }
    };
    view! {
        <section class="panel send" aria-labelledby="send-title">
            <h2 id="send-title">"Send files"</h2>
            <div class="picker">
                <input
                    id="files"
                    class="visually-hidden"
                    type="file"
                    multiple
                    node_ref=input
                    on:change:target=move |event| {
                        if let Some(list) = event.target().files() {
                            choose(state, services, &list);
                        }
                    }
                />
                <label for="files" class="button secondary">"Choose files"</label>
                <span class="hint">"or drop them anywhere on this page"</span>
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
