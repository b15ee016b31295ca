//! The "Incoming files" dialog: who sends what, and the user's answer.

use leptos::ev::KeyboardEvent;
use leptos::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::HtmlElement;

use super::person::{StandingMark, other_device_warning};
use crate::core::format::human_size;
use crate::core::offer::IncomingOffer;
use crate::core::paths::join;
use crate::core::trust::Standing;
use crate::session::{AppState, Session};

/// How many of an offer's files the dialog lists.
const SHOWN_FILES: usize = 50;

/// Shows the oldest offer waiting for an answer, with "Accept", "Decline" and, where the
/// browser has the save picker, "Choose where to save…". Escape declines. When the last offer
/// is answered, focus goes back to where it was before the first one appeared.
#[component]
pub fn OfferDialog() -> impl IntoView {
    let state = expect_context::<AppState>();
    // A memo, so that a second offer arriving does not rebuild the dialog of the first (and
    // pull focus away from the button the user is on).
    let current = Memo::new(move |_| state.offers.with(|offers| offers.first().cloned()));
    let return_focus: StoredValue<Option<HtmlElement>, LocalStorage> = StoredValue::new_local(None);
    Effect::new(move || {
        if current.with(Option::is_none)
            && let Some(element) = return_focus.try_update_value(Option::take).flatten()
        {
            let _ = element.focus();
        }
    });
    // The tab's title counts the offers waiting, so a person in another tab sees one come.
    Effect::new(move || {
        let title = state.offers.with(|offers| match offers.first() {
            Some(first) => format!("({}) Ferry — offer from {}", offers.len(), first.from),
            None => "Ferry".to_owned(),
        });
        document().set_title(&title);
    });
    view! {
        {move || current.get().map(|offer| view! { <OfferCard offer return_focus/> })}
    }
}

#[component]
fn OfferCard(
    offer: IncomingOffer,
    return_focus: StoredValue<Option<HtmlElement>, LocalStorage>,
) -> impl IntoView {
    let session = expect_context::<Session>();
    let state = expect_context::<AppState>();
    // A verified nick on another device is said before anything can be accepted.
    let other_device = state.standing.with_untracked(|standing| {
        standing.get(&offer.from).copied() == Some(Standing::OtherDevice)
    });
    // Where focus was before the first of a run of offers took it (not a previous dialog).
    let focused = document()
        .active_element()
        .filter(|element| element.closest("dialog.offer").ok().flatten().is_none())
        .and_then(|element| element.dyn_into::<HtmlElement>().ok());
    if focused.is_some() {
        return_focus.set_value(focused);
    }
    let id = offer.id.clone();
    let accept = {
        let id = id.clone();
        move |_| session.accept(&id)
    };
    let decline = {
        let id = id.clone();
        move |_| session.decline(&id)
    };
    // A dialog's Escape means "no": an offer cannot be put aside unanswered.
    let escape = move |event: KeyboardEvent| {
        if event.key() == "Escape" {
            event.prevent_default();
            session.decline(&id);
        }
    };
    let choose = {
        let offer = offer.clone();
        move |_| session.accept_into_picked(&offer)
    };
    let save_picker = session.can_pick_where_to_save();
    let summary = offer.summary();
    let too_large = offer.too_large();
    let can_accept = offer.can_accept();
    let space_note = offer.space_note(save_picker);
    let memory_note = offer.memory_note();
    let delivery_note = offer.delivery_note(save_picker);
    // A folder of thousands of files is summed up above; the list shows its first files.
    let shown = offer.files.len().min(SHOWN_FILES);
    let more =
        (offer.files.len() > shown).then(|| format!("… and {} more", offer.files.len() - shown));
    // The dialog does not block the page, so move focus to it: keyboard and screen-reader
    // users learn of the offer at once and reach its buttons with Tab.
    let dialog: NodeRef<leptos::html::Dialog> = NodeRef::new();
    Effect::new(move || {
        if let Some(dialog) = dialog.get() {
            let _ = dialog.focus();
        }
    });
    view! {
        <dialog
            open
            node_ref=dialog
            tabindex="-1"
            class="offer card"
            aria-label="Incoming files"
            aria-describedby="offer-summary"
            on:keydown=escape
        >
            <h2>"Incoming files"</h2>
            <p id="offer-summary">
                <strong>{offer.from.clone()}</strong>
                <StandingMark nick=offer.from.clone()/>
                " wants to send you "
                {summary}
            </p>
            {other_device.then(|| view! {
                <p class="warning" role="alert">{other_device_warning(&offer.from)}</p>
            })}
            <ul class="offer-files">
                {offer
                    .files
                    .iter()
                    .take(shown)
                    .map(|file| {
                        view! {
                            <li>
                                <span class="name">{join(&file.path, &file.name)}</span>
                                <span class="size">{human_size(file.size)}</span>
                            </li>
                        }
                    })
                    .collect_view()}
                {more.map(|more| view! { <li class="more">{more}</li> })}
            </ul>
            {memory_note.map(|note| view! { <p class="note">{note}</p> })}
            {delivery_note.map(|note| view! { <p class="note">{note}</p> })}
            {too_large
                .then(|| view! { <p class="error">"That is more than this browser can take."</p> })}
            {space_note.map(|note| view! { <p class="error" role="alert">{note}</p> })}
            <div class="answers">
                <button type="button" class="secondary" on:click=decline>
                    "Decline"
                </button>
                <button
                    type="button"
                    class="primary"
                    disabled=!can_accept
                    on:click=accept
                >
                    "Accept"
                </button>
                {save_picker
                    .then(|| {
                        view! {
                            <button type="button" class="ghost wide" on:click=choose.clone()>
                                "Choose where to save…"
                            </button>
                        }
                    })}
            </div>
        </dialog>
    }
}
