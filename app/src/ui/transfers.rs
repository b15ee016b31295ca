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
    view! {
        <li class="row" data-state=kind>
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
                <span
                    class="route"
                    data-route=move || row.with(|row| row.route.map(|route| route.to_string()))
                    title=move || row.with(|row| match row.route {
                        Some(Route::Relayed) => "The bytes go through the server's relay",
                        Some(Route::Direct) => "The bytes go straight between the two browsers",
                        None => "",
                    })
                >
                    {move || row.with(|row| row.route.map(|route| route.to_string()))}
                </span>
                <span
                    class="lanes"
                    title="The bytes travel over this many connections at once, which is faster across long distances"
                >
                    {move || row.with(|row| (row.lanes > 1).then(|| format!("{} connections", row.lanes)))}
                </span>
            </div>
            <div class="row-foot">
                <span class="status">{move || status().to_string()}</span>
                <span
                    class="digest"
                    title=move || row.with(|row| row.digest.clone().unwrap_or_default())
                >
                    {move || row.with(|row| {
                        row.digest.as_ref().map(|digest| format!("BLAKE3 {}…", &digest[..12]))
                    })}
                </span>
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
                    <Show when=move || row.with(|row| row.can_save)>
                        <button type="button" class="secondary small" on:click=save.clone()>
                            {read(|row| format!("Save {}", row.name))}
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
