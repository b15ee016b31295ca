//! The person picked under "Online users": whether they are verified on this device, "Verify",
//! accepting their offers without asking, and a text to them.

use leptos::prelude::*;

use crate::core::trust::Standing;
use crate::session::{AppState, Session, text_limit_hint};

/// What the list shows beside a nick: "Verified", or a warning when a verified nick is on
/// another device. Also read by the offer dialog.
#[component]
pub fn StandingMark(nick: String) -> impl IntoView {
    let state = expect_context::<AppState>();
    let standing = {
        let nick = nick.clone();
        move || state.standing.with(|standing| standing.get(&nick).copied())
    };
    move || {
        match standing() {
        Some(Standing::Verified { .. }) => Some(view! {
            <span class="mark verified" title="Verified on this device">"Verified"</span>
        }.into_any()),
        Some(Standing::OtherDevice) => Some(view! {
            <span class="mark warning" title=format!("{nick} is not on the device you verified")>
                "Other device"
            </span>
        }.into_any()),
        _ => None,
    }
    }
}

/// The sentence that warns of a verified nick on another device.
pub fn other_device_warning(nick: &str) -> String {
    format!(
        "{nick} is not on the device you verified. It may be someone else using the nick, or \
         {nick} after clearing their browser's data: verify again before you accept anything."
    )
}

/// Actions on the selected person.
#[component]
pub fn PersonPanel() -> impl IntoView {
    let state = expect_context::<AppState>();
    let session = expect_context::<Session>();
    let selected = Memo::new(move |_| {
        let id = state.selected.get()?;
        state.users.with(|users| {
            users
                .iter()
                .find(|user| user.id == id)
                .map(|user| (id.clone(), user.nick.as_str().to_owned()))
        })
    });
    // The draft outlives a change of person: a shared text waits in it for whoever is picked.
    let text = state.text_draft;
    move || {
        let (peer, nick) = selected.get()?;
        let standing = {
            let nick = nick.clone();
            Signal::derive(move || state.standing.with(|standing| standing.get(&nick).copied()))
        };
        let verify = {
            let peer = peer.clone();
            move |_| session.verify(&peer)
        };
        let send_text = {
            let peer = peer.clone();
            move |_| {
                let typed = text.get_untracked();
                if !typed.trim().is_empty() {
                    session.send_text(&peer, typed);
                    text.set(String::new());
                }
            }
        };
        let auto_nick = nick.clone();
        let warning_nick = nick.clone();
        Some(view! {
            <div class="person" role="group" aria-label=format!("{nick}")>
                <p class="warning" role="alert" hidden=move || standing.get() != Some(Standing::OtherDevice)>
                    {other_device_warning(&warning_nick)}
                </p>
                <div class="person-actions">
                    <button type="button" class="secondary" on:click=verify>
                        {move || if standing.get().is_some_and(Standing::is_verified) {
                            format!("Verify {} again", selected.get().map(|(_, nick)| nick).unwrap_or_default())
                        } else {
                            format!("Verify {}", selected.get().map(|(_, nick)| nick).unwrap_or_default())
                        }}
                    </button>
                    <label class="check" hidden=move || !standing.get().is_some_and(Standing::is_verified)>
                        <input
                            type="checkbox"
                            prop:checked=move || standing.get() == Some(Standing::Verified { auto_accept: true })
                            on:change:target=move |event| {
                                session.set_auto_accept(&auto_nick, event.target().checked());
                            }
                        />
                        {format!("Accept automatically from {nick}")}
                    </label>
                </div>
                <label for="text" class="text-label">{format!("Text to {nick}")}</label>
                <textarea
                    id="text"
                    rows="2"
                    maxlength=ferry_protocol::TEXT_LIMIT.to_string()
                    prop:value=move || text.get()
                    on:input:target=move |event| text.set(event.target().value())
                ></textarea>
                <div class="send-row">
                    <button
                        type="button"
                        class="secondary"
                        disabled=move || text.with(|text| text.trim().is_empty())
                        on:click=send_text
                    >
                        "Send text"
                    </button>
                    <span class="hint">{text_limit_hint()}</span>
                </div>
                <p class="hint" role="status">{move || state.text_status.get()}</p>
            </div>
        })
    }
}
