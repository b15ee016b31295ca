//! "Online users": everyone else, selectable; this user is shown apart as "you"; below them
//! the place (lobby or room, with its link and codes) and the privacy choice.

use leptos::prelude::*;

use super::person::{PersonPanel, StandingMark};
use super::privacy::Privacy;
use super::room::Room;
use crate::session::AppState;

/// The list of other users, each a toggle button; the pressed one receives the files.
#[component]
pub fn People() -> impl IntoView {
    let state = expect_context::<AppState>();
    view! {
        <section class="panel people" aria-labelledby="people-title">
            <h2 id="people-title">"Online users"</h2>
            <p class="self">
                <span class="avatar" data-initial=move || initial(&state.me.get().unwrap_or_default())></span>
                <span class="nick">{move || state.me.get()}</span>
                <span class="tag">"you"</span>
            </p>
            <ul class="users" aria-label="Online users">
                <For
                    each=move || state.users.get()
                    key=|user| user.id.clone()
                    children=move |user| {
                        let id = user.id.clone();
                        let pressed = {
                            let id = id.clone();
                            move || state.selected.get().as_ref() == Some(&id)
                        };
                        let nick = user.nick.as_str().to_owned();
                        view! {
                            <li>
                                <button
                                    type="button"
                                    class="user"
                                    aria-pressed=move || pressed().to_string()
                                    on:click=move |_| state.selected.set(Some(id.clone()))
                                >
                                    <span class="avatar" data-initial=initial(&nick)></span>
                                    <span class="nick">{nick.clone()}</span>
                                    <StandingMark nick=nick.clone()/>
                                </button>
                            </li>
                        }
                    }
                />
            </ul>
            <PersonPanel/>
            <p class="hint" hidden=move || !state.users.get().is_empty()>
                {move || if state.room_link.get().is_some() {
                    "Nobody else is in this room yet. Share its link, its QR code or a pairing code."
                } else {
                    "Nobody else is here yet. Open this page in another browser or share its address."
                }}
            </p>
            // Where this user is and how to bring others in come after the people, so that
            // the list follows its heading and "you" at once.
            <Room/>
            <Privacy/>
        </section>
    }
}

/// The first letter of a nick, for its avatar (drawn by CSS, so it is not part of the name,
/// and capitalised there).
fn initial(nick: &str) -> String {
    nick.chars().next().map(String::from).unwrap_or_default()
}
