//! "Hide my IP address (relay only)": the switch that makes this user's new connections go
//! through the server's TURN relay, shown only when the server offers one.

use leptos::prelude::*;

use crate::session::{AppState, Session};

/// The relay-only switch and a line that says what it does and when.
#[component]
pub fn Privacy() -> impl IntoView {
    let state = expect_context::<AppState>();
    let session = expect_context::<Session>();
    let toggle = move |event: leptos::ev::Event| session.set_hide_ip(event_target_checked(&event));
    let hint = move || {
        if state.relay_forced.get() {
            "This server relays every connection, so nobody learns your IP address."
        } else if state.hide_ip.get() {
            "Your connections go through the server's relay; applies to new connections."
        } else {
            "Others can see your IP address; applies to new connections."
        }
    };
    view! {
        <div class="privacy" hidden=move || !state.relay_offered.get()>
            <label class="switch">
                <input
                    type="checkbox"
                    aria-describedby="privacy-hint"
                    prop:checked=move || state.hide_ip.get() || state.relay_forced.get()
                    prop:disabled=move || state.relay_forced.get()
                    on:change=toggle
                />
                "Hide my IP address (relay only)"
            </label>
            <p id="privacy-hint" class="hint">{hint}</p>
        </div>
    }
}
