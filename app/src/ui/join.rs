//! The join screen: a nickname, where to go (the lobby, a new private room, or the room a
//! pairing code leads to), and the reason when the server says no.

use ferry_protocol::{LobbyScope, Nick};
use leptos::prelude::*;

use super::transfers::HeldElsewhere;
use crate::core::transfer::{Direction, Status};
use crate::session::{AppState, Phase, Session, sentence};

/// Textbox "Nickname", button "Join" (the lobby, or the room the link names), buttons "New
/// private room" and, with textbox "Pairing code", "Join with code", and an alert for refusals.
#[component]
pub fn JoinScreen() -> impl IntoView {
    let state = expect_context::<AppState>();
    let session = expect_context::<Session>();
    let (nick, set_nick) = signal(state.me.get_untracked().unwrap_or_default());
    let (code, set_code) = signal(String::new());
    let in_room = session.joining_a_room();
    let no_lobby = move || state.lobby.get() == LobbyScope::Off && !in_room;
    // Every way in needs a valid nick first; `go` is called with it.
    let with_nick = move |go: &dyn Fn(String)| {
        if state.phase.get_untracked() == Phase::Joining {
            return;
        }
        match Nick::new(&nick.get_untracked()) {
            Ok(valid) => go(valid.as_str().to_owned()),
            Err(error) => state.join_error.set(Some(sentence(&error.to_string()))),
        }
    };
    let submit = move |event: leptos::ev::SubmitEvent| {
        event.prevent_default();
        if no_lobby() {
            with_nick(&|nick| session.new_room(nick, false));
        } else {
            with_nick(&|nick| session.join(nick));
        }
    };
    let new_room = move |_| with_nick(&|nick| session.new_room(nick, false));
    let with_code = move |_| with_nick(&|nick| session.enter_code(nick, &code.get_untracked()));
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
                {in_room.then(|| view! {
                    <p class="note" id="joining-room">
                        "You are joining a private room: only people with its link or a code see you there."
                    </p>
                })}
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
                        {move || if in_room { "Join room" } else if no_lobby() { "Create a room" } else { "Join" }}
                    </button>
                </div>
                {(!in_room).then(|| view! {
                    <div class="ways-in">
                        <button type="button" id="join-new-room" on:click=new_room hidden=no_lobby>
                            "New private room"
                        </button>
                        <label for="join-code">"Or enter a pairing code"</label>
                        <div class="field-row">
                            <input
                                id="join-code"
                                type="text"
                                inputmode="numeric"
                                autocomplete="off"
                                maxlength="9"
                                placeholder="123 456"
                                prop:value=code
                                on:input:target=move |event| set_code.set(event.target().value())
                            />
                            <button type="button" id="join-with-code" on:click=with_code>
                                "Join with code"
                            </button>
                        </div>
                    </div>
                })}
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
                <p class="note" role="status" hidden=move || state.share_note.with(Option::is_none)>
                    {move || state.share_note.get().map(|note| format!("{note} Join to see who is here."))}
                </p>
                <HeldElsewhere/>
            </form>
        </main>
    }
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
