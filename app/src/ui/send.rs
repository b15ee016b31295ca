//! Choosing files (picker or drop) and sending them to the selected user.

use leptos::html;
use leptos::prelude::*;

use crate::core::format::human_size;
use crate::session::{AppState, Session};

/// File input "Choose files", the chosen files, and button "Send".
#[component]
pub fn SendPanel() -> impl IntoView {
    let state = expect_context::<AppState>();
    let session = expect_context::<Session>();
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
    let send = move |_| match session.send() {
        Ok(()) => {
            error.set(None);
            // Clearing the input lets the same file be chosen again.
            if let Some(input) = input.get_untracked() {
                input.set_value("");
            }
        }
        Err(failure) => error.set(Some(failure)),
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
                            session.choose_files(&list);
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
