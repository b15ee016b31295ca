//! The Leptos views, views only: they read the plain state of [`AppState`] and act through
//! the [`Session`]; both are provided as context.

mod join;
mod offer;
mod people;
mod person;
mod privacy;
mod room;
mod send;
mod texts;
mod transfers;
mod verify;

use leptos::ev;
use leptos::leptos_dom::helpers::window_event_listener;
use leptos::prelude::*;

use crate::session::{Phase, Session};

/// Mounts the app on the page's body, in place of the loading view.
pub fn mount() {
    crate::web::boot::dismiss();
    leptos::mount::mount_to_body(App);
    // The moment the page works, for the page-load benchmark.
    crate::web::mark("ferry:mounted");
}

/// The whole app.
#[component]
pub fn App() -> impl IntoView {
    let session = Session::new();
    let state = session.state();
    provide_context(state);
    provide_context(session);
    session.prepare_storage();
    session.learn_lobby();
    session.rejoin();
    session.take_share();

    // Files dropped anywhere on the page are chosen for sending.
    let over = window_event_listener(ev::dragover, move |event| {
        event.prevent_default();
        if state.phase.get_untracked() == Phase::Joined {
            state.dragging.set(true);
        }
    });
    let left = window_event_listener(ev::dragleave, move |event| {
        // Leaving for a child element also fires; only leaving the window ends the drag.
        if event.related_target().is_none() {
            state.dragging.set(false);
        }
    });
    let dropped = window_event_listener(ev::drop, move |event| {
        event.prevent_default();
        state.dragging.set(false);
        if state.phase.get_untracked() != Phase::Joined {
            return;
        }
        if let Some(data) = event.data_transfer() {
            session.choose_dropped(&data);
        }
    });
    // When the page goes, peers hear of it at once and private files are deleted.
    let gone = window_event_listener(ev::pagehide, move |_| session.page_hidden());
    // A page restored from the back/forward cache has neither its server connection nor its
    // peer connections (closed on `pagehide` above): start it afresh rather than show a
    // page that looks joined and is not.
    // Back at the page: the notifications it showed have done their job.
    let looked = window_event_listener(ev::focus, move |_| session.page_shown());
    let back = window_event_listener(ev::pageshow, move |event| {
        if event.persisted() {
            let _ = window().location().reload();
        }
    });
    on_cleanup(move || {
        over.remove();
        left.remove();
        dropped.remove();
        gone.remove();
        looked.remove();
        back.remove();
    });

    view! {
        // The live region is always there and only its text comes and goes: screen readers
        // announce a change of text, not a region that appears already filled.
        <div class="banner" role="status">
            {move || state.server_trouble.get()}
        </div>
        <Show
            when=move || state.phase.get() == Phase::Joined
            fallback=|| view! { <join::JoinScreen/> }
        >
            <header class="topbar">
                <span class="brand">
                    <span class="logo" aria-hidden="true"></span>
                    "Ferry"
                </span>
                <span class="whoami">
                    "Signed in as " <strong>{move || state.me.get().unwrap_or_default()}</strong>
                </span>
                <button
                    type="button"
                    class="secondary notify"
                    hidden=move || !state.notify.get().can_ask()
                    on:click=move |_| session.ask_to_notify()
                >
                    "Notify me"
                </button>
            </header>
            <main class="layout">
                <people::People/>
                <send::SendPanel/>
                <texts::Texts/>
                <transfers::Transfers/>
            </main>
            <verify::VerifyDialog/>
            <offer::OfferDialog/>
            <div class="drop-overlay" aria-hidden="true" hidden=move || !state.dragging.get()>
                <p>"Drop files to send them"</p>
            </div>
        </Show>
    }
}
