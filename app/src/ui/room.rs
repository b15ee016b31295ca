//! Where this user is: the lobby, with ways into a private room (a new one, a pairing code
//! to show, a code to type), or a private room, with its link to copy, its QR code, a code to
//! pair one more device, and the way back to the lobby.

use ferry_protocol::LobbyScope;
use leptos::prelude::*;

use crate::core::qr::svg_of;
use crate::session::{AppState, Session};

/// The place block at the top of "Online users".
#[component]
pub fn Room() -> impl IntoView {
    let state = expect_context::<AppState>();
    let session = expect_context::<Session>();
    let (code, set_code) = signal(String::new());
    let (copied, set_copied) = signal(String::new());
    let enter = move |event: leptos::ev::SubmitEvent| {
        event.prevent_default();
        if let Some(nick) = state.me.get_untracked() {
            session.enter_code(nick, &code.get_untracked());
        }
    };
    let new_room = move |_| {
        if let Some(nick) = state.me.get_untracked() {
            session.new_room(nick, false);
        }
    };
    let copy = move |_| {
        let Some(link) = state.room_link.get_untracked() else {
            return;
        };
        leptos::task::spawn_local(async move {
            set_copied.set(match session.copy(&link).await {
                Ok(()) => "Link copied.".to_owned(),
                Err(error) => format!("Could not copy: {error}. Select the link and copy it."),
            });
        });
    };
    let lobby_note = move || match state.lobby.get() {
        LobbyScope::Network => "Everyone on your network sees you here.",
        LobbyScope::Everyone | LobbyScope::Off => "Everyone on this server sees you here.",
    };
    view! {
        <div class="place" role="group" aria-labelledby="place-title">
            <Show
                when=move || state.room_link.get().is_some()
                fallback=move || view! {
                    <h3 id="place-title">"Lobby"</h3>
                    <p class="hint">{lobby_note}</p>
                    <div class="place-actions">
                        <button type="button" id="new-room" on:click=new_room>"New private room"</button>
                        <button type="button" id="pair" on:click=move |_| session.pair()>"Pair with a code"</button>
                    </div>
                    <form class="field-row" on:submit=enter>
                        <input
                            id="code"
                            type="text"
                            inputmode="numeric"
                            autocomplete="off"
                            maxlength="9"
                            placeholder="123 456"
                            aria-label="Pairing code"
                            prop:value=code
                            on:input:target=move |event| set_code.set(event.target().value())
                        />
                        <button type="submit" id="enter-code">"Enter code"</button>
                    </form>
                }
            >
                <h3 id="place-title">"Private room"</h3>
                <p class="hint">"Only people with this link or a code see you here."</p>
                <div class="field-row">
                    <input
                        id="room-link"
                        type="text"
                        readonly
                        aria-label="Room link"
                        prop:value=move || state.room_link.get().unwrap_or_default()
                    />
                    <button type="button" id="copy-link" on:click=copy>"Copy"</button>
                </div>
                <p class="hint" role="status">{copied}</p>
                <div
                    class="qr"
                    role="img"
                    aria-label="QR code of the room link"
                    inner_html=move || state.room_link.get().as_deref().and_then(svg_of).unwrap_or_default()
                ></div>
                <div class="place-actions">
                    <button type="button" id="pair" on:click=move |_| session.pair()>"Pair with a code"</button>
                    <button
                        type="button"
                        id="leave-room"
                        hidden=move || state.lobby.get() == LobbyScope::Off
                        on:click=move |_| session.leave_room()
                    >
                        "Leave room"
                    </button>
                </div>
                {move || state.pair_code.get().map(|(digits, minutes)| view! {
                    <p class="pair-code" role="status">
                        "Code " <strong id="pair-code">{digits}</strong>
                        {format!(": type it on the other device. It works once, for {minutes} minutes.")}
                    </p>
                })}
            </Show>
            <p class="error" role="alert">{move || state.room_error.get()}</p>
        </div>
    }
}
