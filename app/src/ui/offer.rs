//! The "Incoming files" dialog: who sends what, and the user's answer.

use leptos::ev::KeyboardEvent;
use leptos::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::HtmlElement;

use crate::core::format::human_size;
use crate::core::paths::join;
use crate::session::{AppState, Session};
use crate::web::engine::{Answer, IncomingOffer};
use crate::web::sink::{has_save_picker, pick_location};

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
    // Where focus was before the first of a run of offers took it (not a previous dialog).
    let focused = document()
        .active_element()
        .filter(|element| element.closest("dialog.offer").ok().flatten().is_none())
        .and_then(|element| element.dyn_into::<HtmlElement>().ok());
    if focused.is_some() {
        return_focus.set_value(focused);
    }
    let id = offer.id.clone();
    let answer = move |answer: Answer| session.answer(&id, answer);
    let accept = {
        let answer = answer.clone();
        move |_| answer(Answer::Download)
    };
    let decline = {
        let answer = answer.clone();
        move |_| answer(Answer::Decline)
    };
    // A dialog's Escape means "no": an offer cannot be put aside unanswered.
    let escape = {
        let answer = answer.clone();
        move |event: KeyboardEvent| {
            if event.key() == "Escape" {
                event.prevent_default();
                answer(Answer::Decline);
            }
        }
    };
    // One file is saved as a file; several, or a folder, into a folder the user picks.
    let one_file = match offer.files.as_slice() {
        [one] if !offer.has_folders() => Some(one.name.clone()),
        _ => None,
    };
    let choose = move |_| {
        let one_file = one_file.clone();
        let answer = answer.clone();
        // The picker must open while the click still counts as the user's gesture.
        leptos::task::spawn_local(async move {
            match pick_location(one_file.as_deref()).await {
                Ok(Some(picked)) => answer(Answer::SaveTo(picked)),
                Ok(None) => {}
                Err(error) => crate::web::log(&error.to_string()),
            }
        });
    };
    let total = human_size(offer.total_size());
    let count = match offer.files.len() {
        1 => "1 file".to_owned(),
        many => format!("{many} files"),
    };
    let summary = match (offer.folder(), offer.files.as_slice()) {
        (Some(folder), _) => format!("the folder {folder} ({count}, {total})"),
        (None, [one]) if !offer.has_folders() => format!("{} ({})", one.name, human_size(one.size)),
        (None, _) => format!("{count} ({total})"),
    };
    let too_large = offer.too_large();
    let wont_fit = offer.wont_fit();
    // Said before Accept, so a transfer never fails at 90 % for want of space.
    let space_note = wont_fit.then(|| {
        let room = human_size(offer.room.unwrap_or(0));
        if has_save_picker() {
            format!(
                "This needs {total}, but this browser can store only {room} more. \
                 Free some disk space, or choose where to save it."
            )
        } else {
            format!(
                "This needs {total}, but this browser can store only {room} more. \
                 Free some disk space and ask for it again."
            )
        }
    });
    let memory_note = offer.memory_only.then(|| {
        format!(
            "This browser can only keep received files in memory, up to {} per offer.",
            human_size(offer.memory_limit)
        )
    });
    // How the offer will land. A folder arrives as one zip, or as a tree where the user picks.
    // Several files are several downloads, and browsers let a page start one download per
    // click; each further one needs the user's permission ("download multiple files"), and a
    // refused one lands nowhere while its row says Complete. Saying so up front, and keeping a
    // Save button on every row, means no file of a multi-file offer is lost to a prompt the
    // user did not expect.
    let delivery_note = if offer.has_folders() {
        let zip = offer.folder().map_or_else(
            || "one zip file".to_owned(),
            |folder| format!("{folder}.zip"),
        );
        Some(if has_save_picker() {
            format!(
                "Accept saves the folder as {zip}; “Choose where to save…” writes its files and \
                 folders into a folder you pick."
            )
        } else {
            format!("The folder arrives as {zip}.")
        })
    } else {
        (offer.files.len() > 1).then(|| {
            "Your browser may ask whether Ferry may download several files: choose Allow. \
             Each file also keeps a Save button once it has arrived."
                .to_owned()
        })
    };
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
                " wants to send you "
                {summary}
            </p>
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
                    disabled=too_large || wont_fit
                    on:click=accept
                >
                    "Accept"
                </button>
                {has_save_picker()
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
