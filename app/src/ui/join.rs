//! The join screen: a nickname, a button, and the reason when the server says no.

use ferry_protocol::Nick;
use leptos::prelude::*;

use super::transfers::HeldElsewhere;
use crate::core::transfer::{Direction, Status};
use crate::session::{AppState, Phase, Session};

/// Textbox "Nickname", button "Join", and an alert next to them for refusals.
#[component]
pub fn JoinScreen() -> impl IntoView {
    let state = expect_context::<AppState>();
    let session = expect_context::<Session>();
    let (nick, set_nick) = signal(String::new());
    let submit = move |event: leptos::ev::SubmitEvent| {
        event.prevent_default();
        if state.phase.get_untracked() == Phase::Joining {
            return;
        }
        let typed = nick.get_untracked();
        match Nick::new(&typed) {
            Ok(valid) => session.join(valid.as_str().to_owned()),
            Err(error) => state.join_error.set(Some(sentence(&error.to_string()))),
        }
    };
    view! {
        <main class="join">
            <form class="card join-card" on:submit=submit>
                <h1 class="brand big">
                    <span class="logo" aria-hidden="true"></span>
                    "Ferry"
                </h1>
                <p class="lede">
                    "Send files straight from your browser to someone else's. "
                    "The bytes travel peer to peer; the server only introduces you."
                </p>
                <label for="nickname">"Nickname"</label>
                <div class="field-row">
                    <input
                        id="nickname"
                        type="text"
                        autocomplete="nickname"
                        maxlength="32"
                        spellcheck="false"
                        autofocus
                        aria-describedby="join-error"
                        aria-invalid=move || state.join_error.get().is_some().to_string()
                        prop:value=nick
                        on:input:target=move |event| set_nick.set(event.target().value())
                    />
                    <button type="submit" class="primary" aria-busy=move || (state.phase.get() == Phase::Joining).to_string()>
                        "Join"
                    </button>
                </div>
                <p id="join-error" class="error" role="alert">
                    {move || state.join_error.get()}
                </p>
                // Transfers this page took up from a closed tab wait for the sender, who finds
                // this user once they join: say so before the list is shown.
                {move || {
                    paused_here(state)
                        .map(|waiting| {
                            view! {
                                <p class="note" role="status">
                                    {format!("Paused here, going on once you join: {waiting}.")}
                                </p>
                            }
                        })
                }}
                <HeldElsewhere/>
            </form>
        </main>
    }
}

/// Capitalizes a validation message and ends it with a full stop.
fn sentence(message: &str) -> String {
    let mut chars = message.chars();
    let first = chars.next().map(|c| c.to_uppercase().collect::<String>());
    format!("{}{}.", first.unwrap_or_default(), chars.as_str())
}

/// The paused transfers to this user that this page holds, as "NAME from NICK" joined by
/// commas; `None` when there are none.
fn paused_here(state: AppState) -> Option<String> {
    let waiting: Vec<String> = state.rows.with(|rows| {
        rows.iter()
            .filter_map(|(_, row)| {
                row.with(|row| {
                    (row.direction == Direction::Incoming
                        && matches!(row.status, Status::Paused { .. }))
                    .then(|| format!("{} from {}", row.name, row.peer))
                })
            })
            .collect()
    });
    (!waiting.is_empty()).then(|| waiting.join(", "))
}
