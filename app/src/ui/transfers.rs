//! The transfers list: one row per file with progress, speed, time left, status and actions.

use leptos::prelude::*;

use crate::core::format::{human_size, progress_text, speed_text, time_left_text};
use crate::core::route::Route;
use crate::core::rows::{FileRow, kept_bytes};
use crate::core::transfer::{Direction, Status};
use crate::session::{AppState, Session};

/// Every file sent or received in this session, newest first.
#[component]
pub fn Transfers() -> impl IntoView {
    let state = expect_context::<AppState>();
    view! {
        <section class="panel transfers" aria-labelledby="transfers-title">
            <h2 id="transfers-title">"Transfers"</h2>
            <p class="hint" hidden=move || !state.rows.get().is_empty()>
                "Files you send or receive show up here."
            </p>
            <p class="visually-hidden" role="status">{move || state.announcement.get()}</p>
            {move || {
                let kept = state
                    .rows
                    .with(|rows| {
                        rows.iter().map(|(_, row)| row.with(|row| kept_bytes([row]))).sum::<u64>()
                    });
                (kept > 0)
                    .then(|| {
                        view! {
                            <p class="hint kept">
                                {format!(
                                    "Paused transfers keep {} in this browser until they finish or are discarded.",
                                    human_size(kept),
                                )}
                            </p>
                        }
                    })
            }}
            <HeldElsewhere/>
            <ul class="rows" aria-label="Transfers">
                <For
                    each=move || state.rows.get()
                    key=|(key, _)| key.clone()
                    children=|(_, row)| view! { <Row row/> }
                />
            </ul>
        </section>
    }
}

/// Says that another Ferry tab of this browser holds transfers to this user, when one does:
/// they go on there, and this tab cannot take them up while it is open.
#[component]
pub(super) fn HeldElsewhere() -> impl IntoView {
    let state = expect_context::<AppState>();
    move || {
        let elsewhere = state.held_elsewhere.get();
        let said = match elsewhere {
            0 => return None,
            1 => "A transfer to you is held by another Ferry tab in this browser and goes on \
                  there. Close that tab to take it up here."
                .to_owned(),
            many => format!(
                "{many} transfers to you are held by another Ferry tab in this browser and go \
                 on there. Close that tab to take them up here."
            ),
        };
        Some(view! { <p class="hint elsewhere" role="status">{said}</p> })
    }
}

/// One file's row, or a folder's. Its progress bar is named after the file or folder.
#[component]
fn Row(row: RwSignal<FileRow>) -> impl IntoView {
    let session = expect_context::<Session>();
    let read = move |f: fn(&FileRow) -> String| move || row.with(f);
    let status = move || row.with(|row| row.status.clone());
    let kind = move || match status() {
        Status::Complete => "complete",
        Status::Declined | Status::Cancelled => "stopped",
        Status::Failed(_) => "failed",
        Status::Waiting { .. } | Status::Verifying => "waiting",
        Status::Sending | Status::Receiving => "moving",
        Status::Paused { .. } | Status::PickAgain { .. } => "paused",
    };
    let transfer = row.with_untracked(|row| row.transfer.clone());
    let index = row.with_untracked(|row| row.index);
    let cancel = {
        let transfer = transfer.clone();
        move |_| session.cancel(&transfer)
    };
    let save = {
        let transfer = transfer.clone();
        move |_| session.save_again(&transfer, index)
    };
    let pick_again = {
        let transfer = transfer.clone();
        move |list: web_sys::FileList| session.pick_again(&transfer, &list)
    };
    let picker_id = row.with_untracked(|row| format!("pick-{}", row.key));
    let dismiss = move |_| session.dismiss(&transfer, index);
    // An incoming row appears once its offer is accepted: brought into view, so that on a
    // narrow screen, where the list is below the fold, Accept visibly starts something.
    let node: NodeRef<leptos::html::Li> = NodeRef::new();
    let accepted_now = row.with_untracked(|row| {
        row.direction == Direction::Incoming && row.status == Status::Receiving
    });
    Effect::new(move || {
        if accepted_now && let Some(item) = node.get() {
            let options = web_sys::ScrollIntoViewOptions::new();
            options.set_block(web_sys::ScrollLogicalPosition::Nearest);
            options.set_behavior(web_sys::ScrollBehavior::Smooth);
            item.scroll_into_view_with_scroll_into_view_options(&options);
        }
    });
    view! {
        <li class="row" data-state=kind node_ref=node>
            <div class="row-head">
                <span
                    class="direction"
                    aria-hidden="true"
                    data-direction=move || row.with(|row| match row.direction {
                        Direction::Outgoing => "out",
                        Direction::Incoming => "in",
                    })
                ></span>
                <span class="name">{read(|row| row.name.clone())}</span>
                {move || {
                    row.with(|row| (row.files > 1).then(|| format!("{} files", row.files)))
                        .map(|count| view! { <span class="count">{count}</span> })
                }}
                <span class="peer">
                    {read(|row| match row.direction {
                        Direction::Outgoing => format!("to {}", row.peer),
                        Direction::Incoming => format!("from {}", row.peer),
                    })}
                </span>
            </div>
            <progress
                aria-label=read(|row| row.name.clone())
                max=move || row.with(|row| row.size.max(1).to_string())
                value=move || row.with(|row| {
                    if row.size == 0 && row.status == Status::Complete { 1 } else { row.done }
                }.to_string())
            ></progress>
            <div class="row-meta">
                <span>{read(|row| progress_text(row.done, row.size))}</span>
                <span>{read(|row| row.bytes_per_sec.map(speed_text).unwrap_or_default())}</span>
                <span>{read(|row| row.seconds_left.map(time_left_text).unwrap_or_default())}</span>
                // How the bytes travel, while they do and once they did: a paused row's last
                // route says nothing of how it will go on. The number of connections is said
                // in words in the tooltip, never beside a nick where it reads as people.
                <span
                    class="route"
                    data-route=move || row.with(|row| row.route.map(|route| route.to_string()))
                    title=move || row.with(route_title)
                >
                    {move || row.with(|row| shows_route(&row.status).then_some(row.route).flatten().map(|route| route.to_string()))}
                </span>
            </div>
            <div class="row-foot">
                <span class="status">{move || status().to_string()}</span>
                // What "complete" means, for whoever wants to know: every block and the whole
                // file matched the sender's digests.
                <Show when=move || status() == Status::Complete>
                    <details class="checked">
                        <summary>"Checked ✓"</summary>
                        <p>{move || row.with(checked_text)}</p>
                    </details>
                </Show>
                <span class="actions">
                    // After a reload the page has no file to read from until it is picked
                    // again; the input takes the whole set a transfer needs.
                    <Show when=move || matches!(status(), Status::PickAgain { .. })>
                        <input
                            id=picker_id.clone()
                            class="visually-hidden"
                            type="file"
                            multiple
                            on:change:target={
                                let pick_again = pick_again.clone();
                                move |event| {
                                    if let Some(list) = event.target().files() {
                                        pick_again(list);
                                    }
                                }
                            }
                        />
                        <label for=picker_id.clone() class="button secondary small">
                            {read(|row| format!("Pick {} again", row.name))}
                        </label>
                    </Show>
                    <Show when=move || status().is_running()>
                        // A paused transfer is not moving: what stopping it does is throw
                        // away what arrived so far.
                        <button type="button" class="secondary small" on:click=cancel.clone()>
                            {move || match status() {
                                Status::Paused { .. } => "Discard",
                                _ => "Cancel",
                            }}
                        </button>
                    </Show>
                    // Saving is what is left to do once a file is in: the row's main action,
                    // named as the file will be saved.
                    <Show when=move || row.with(|row| row.can_save)>
                        <button type="button" class="primary small" on:click=save.clone()>
                            {read(|row| format!("Save {}", row.saved_as))}
                        </button>
                    </Show>
                    <Show when=move || !status().is_running()>
                        <button
                            type="button"
                            class="ghost small"
                            aria-label=read(|row| format!("Clear {} from the list", row.name))
                            on:click=dismiss.clone()
                        >
                            "Clear"
                        </button>
                    </Show>
                </span>
            </div>
        </li>
    }
}

/// Whether a row with `status` shows how its bytes travel: while they do, and once they did.
fn shows_route(status: &Status) -> bool {
    matches!(
        status,
        Status::Sending | Status::Receiving | Status::Verifying | Status::Complete
    )
}

/// The route's tooltip: where the bytes go, and over how many connections, in words.
fn route_title(row: &FileRow) -> String {
    let over = if row.lanes > 1 {
        format!(", over {} connections at once", row.lanes)
    } else {
        String::new()
    };
    match row.route {
        Some(Route::Relayed) => format!("The bytes go through the server's relay{over}"),
        Some(Route::Direct) => format!("The bytes go straight between the two browsers{over}"),
        None => String::new(),
    }
}

/// What a checked row's details say.
fn checked_text(row: &FileRow) -> String {
    match (&row.digest, row.files) {
        (Some(digest), _) => format!(
            "Every block, and the whole file, matched the digests the sender computed \
             (BLAKE3 {digest})."
        ),
        (None, 1) => "Every block, and the whole file, matched the sender's digests.".to_owned(),
        (None, files) => format!(
            "Every block of its {files} files, and each whole file, matched the sender's \
             digests."
        ),
    }
}
