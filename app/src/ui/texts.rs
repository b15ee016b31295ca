//! Texts sent and received, newest first, each with "Copy". Links are plain text: nothing
//! in a text opens by itself.

use leptos::prelude::*;

use crate::session::{AppState, Session, TextNote};

/// The texts panel, shown once there is a text.
#[component]
pub fn Texts() -> impl IntoView {
    let state = expect_context::<AppState>();
    view! {
        <section class="panel texts" aria-labelledby="texts-title" hidden=move || state.texts.with(Vec::is_empty)>
            <h2 id="texts-title">"Texts"</h2>
            <ul class="text-list" aria-label="Texts" aria-live="polite">
                <For
                    each=move || state.texts.get()
                    key=|note| note.number
                    children=move |note| view! { <TextItem note/> }
                />
            </ul>
        </section>
    }
}

#[component]
fn TextItem(note: TextNote) -> impl IntoView {
    let session = expect_context::<Session>();
    let copied = RwSignal::new(None::<String>);
    let heading = match &note.from {
        Some(nick) => format!("From {nick}"),
        None => format!("To {}", note.to),
    };
    let text = note.text.clone();
    let copy = move |_| {
        let text = text.clone();
        leptos::task::spawn_local(async move {
            copied.set(Some(match session.copy(&text).await {
                Ok(()) => "Copied".to_owned(),
                Err(error) => format!("Could not copy: {error}. Select the text and copy it."),
            }));
        });
    };
    view! {
        <li class="text-item">
            <p class="text-from">{heading}</p>
            <p class="text-body">{note.text}</p>
            <div class="send-row">
                <button type="button" class="secondary" on:click=copy>"Copy"</button>
                <span class="hint" role="status">{move || copied.get()}</span>
            </div>
        </li>
    }
}
