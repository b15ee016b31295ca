//! The Leptos views. They read plain state from [`AppState`] signals and act through
//! [`Services`], which owns the browser-bound engine and signaling client outside the reactive
//! system; nothing `!Send` sits in a signal.

mod join;
mod offer;
mod people;
mod privacy;
mod send;
mod transfers;

use ferry_protocol::{ErrorCode, PeerId, UserInfo};
use leptos::ev;
use leptos::leptos_dom::helpers::window_event_listener;
use leptos::prelude::*;
use std::rc::Rc;
use web_sys::File;

use crate::web::engine::{Engine, EngineConfig, EngineEvent, FileRow, IncomingOffer};
use crate::web::prefs;
use crate::web::signaling::{Signaling, SignalingEvent, same_origin_url};

/// Mounts the app on the page's body.
pub fn mount() {
    leptos::mount::mount_to_body(App);
}

/// Where the user is in the app.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Choosing a nickname.
    Join,
    /// Waiting for the server's answer.
    Joining,
    /// In: the user list and transfers are shown.
    Joined,
}

/// Everything the views show, as plain data in signals; provided as context.
#[derive(Clone, Copy, Debug)]
pub struct AppState {
    /// Where the user is.
    pub phase: RwSignal<Phase>,
    /// This user's nick once joined.
    pub me: RwSignal<Option<String>>,
    /// Why the last join was refused.
    pub join_error: RwSignal<Option<String>>,
    /// Whether the signaling connection is down (and being re-established).
    pub connection_lost: RwSignal<bool>,
    /// Everyone else online.
    pub users: RwSignal<Vec<UserInfo>>,
    /// The user files will go to.
    pub selected: RwSignal<Option<PeerId>>,
    /// Names and sizes of the files chosen for sending.
    pub chosen: RwSignal<Vec<(String, u64)>>,
    /// One signal per transfer row, newest first.
    pub rows: RwSignal<Vec<(String, RwSignal<FileRow>)>>,
    /// What just happened to transfers, for screen readers: "NAME: STATUS" for each file that
    /// was answered or ended.
    pub announcement: RwSignal<String>,
    /// Offers waiting for an answer, oldest first.
    pub offers: RwSignal<Vec<IncomingOffer>>,
    /// A file is being dragged over the page.
    pub dragging: RwSignal<bool>,
    /// The server offers a TURN relay, so connections can hide addresses.
    pub relay_offered: RwSignal<bool>,
    /// The server relays every connection, whatever this user chooses.
    pub relay_forced: RwSignal<bool>,
    /// This user asked for relayed connections, to hide their IP address.
    pub hide_ip: RwSignal<bool>,
}

/// The browser-bound services, kept out of the reactive graph; provided as context.
#[derive(Clone, Copy, Debug)]
pub struct Services {
    /// The transfer engine.
    pub engine: StoredValue<Engine, LocalStorage>,
    /// The signaling client while joined (or joining).
    pub signaling: StoredValue<Option<Signaling>, LocalStorage>,
    /// The files chosen for sending.
    pub files: StoredValue<Vec<File>, LocalStorage>,
}

impl AppState {
    fn new() -> Self {
        Self {
            phase: RwSignal::new(Phase::Join),
            me: RwSignal::new(None),
            join_error: RwSignal::new(None),
            connection_lost: RwSignal::new(false),
            users: RwSignal::new(Vec::new()),
            selected: RwSignal::new(None),
            chosen: RwSignal::new(Vec::new()),
            rows: RwSignal::new(Vec::new()),
            announcement: RwSignal::new(String::new()),
            offers: RwSignal::new(Vec::new()),
            dragging: RwSignal::new(false),
            relay_offered: RwSignal::new(false),
            relay_forced: RwSignal::new(false),
            hide_ip: RwSignal::new(prefs::flag(privacy::HIDE_IP_KEY)),
        }
    }

    /// Applies what the engine reports.
    fn apply(self, event: EngineEvent) {
        match event {
            EngineEvent::Rows(batch) => {
                let mut news = Vec::new();
                self.rows.update(|rows| {
                    let mut fresh = Vec::new();
                    for row in batch {
                        let Some((_, signal)) = rows.iter().find(|(key, _)| *key == row.key) else {
                            fresh.push((row.key.clone(), RwSignal::new(row)));
                            continue;
                        };
                        if signal.with_untracked(|old| row.status.is_news_after(&old.status)) {
                            news.push(format!("{}: {}", row.name, row.status));
                        }
                        signal.set(row);
                    }
                    if !fresh.is_empty() {
                        fresh.append(rows);
                        *rows = fresh;
                    }
                });
                // One announcement per change, however many files it concerns: a live region per
                // row would read out every step of every file.
                if !news.is_empty() {
                    self.announcement.set(news.join("; "));
                }
            }
            EngineEvent::Offer(offer) => self.offers.update(|offers| offers.push(offer)),
            EngineEvent::OfferGone(id) => self.offers.update(|offers| {
                offers.retain(|offer| offer.id != id);
            }),
            EngineEvent::Removed(gone) => self.rows.update(|rows| {
                rows.retain(|(key, _)| *key != gone);
            }),
        }
    }
}

impl Services {
    fn new(state: AppState) -> Self {
        let signaling: StoredValue<Option<Signaling>, LocalStorage> = StoredValue::new_local(None);
        let out = Rc::new(move |to, payload| {
            signaling.with_value(|client| {
                if let Some(client) = client {
                    client.signal(to, payload);
                }
            });
        });
        // Engine events arrive from tasks outside the component tree; running them under the
        // app's owner gives the row signals they create an owner that disposes of them.
        let owner = Owner::current();
        let events = Rc::new(move |event| match &owner {
            Some(owner) => owner.with(|| state.apply(event)),
            None => state.apply(event),
        });
        let engine = Engine::new(EngineConfig::default(), out, events);
        engine.set_hide_ip(state.hide_ip.get_untracked());
        Self {
            engine: StoredValue::new_local(engine),
            signaling,
            files: StoredValue::new_local(Vec::new()),
        }
    }

    /// Connects to the server and joins as `nick`.
    pub fn join(self, state: AppState, nick: String) {
        state.phase.set(Phase::Joining);
        state.join_error.set(None);
        let typed = nick.clone();
        let events = Rc::new(move |event| self.on_signaling(state, &typed, event));
        let client = Signaling::start(same_origin_url(), nick, events);
        self.signaling.set_value(Some(client));
    }

    fn on_signaling(self, state: AppState, typed: &str, event: SignalingEvent) {
        let engine = self.engine.get_value();
        match event {
            SignalingEvent::Welcome {
                id,
                nick,
                users,
                ice_servers,
                relay_only,
            } => {
                state.relay_offered.set(
                    ice_servers
                        .iter()
                        .flat_map(|server| &server.urls)
                        .any(|url| url.starts_with("turn:") || url.starts_with("turns:")),
                );
                state.relay_forced.set(relay_only);
                engine.set_identity(id, ice_servers, relay_only);
                for user in &users {
                    engine.set_nick(&user.id, user.nick.as_str());
                }
                // After a server restart everyone has a new id: keep the selection by nick.
                let selected_nick = state.selected.with_untracked(|selected| {
                    let users = state.users.get_untracked();
                    selected.as_ref().and_then(|id| {
                        users
                            .into_iter()
                            .find(|user| &user.id == id)
                            .map(|user| user.nick)
                    })
                });
                let reselected = selected_nick.and_then(|wanted| {
                    users
                        .iter()
                        .find(|user| user.nick == wanted)
                        .map(|user| user.id.clone())
                });
                state.users.set(users);
                state.selected.set(reselected);
                state.me.set(Some(nick.as_str().to_owned()));
                state.connection_lost.set(false);
                state.join_error.set(None);
                state.phase.set(Phase::Joined);
            }
            SignalingEvent::Refused { code, message } => {
                state.join_error.set(Some(refusal(code, &message, typed)));
                state.connection_lost.set(false);
                state.phase.set(Phase::Join);
                self.signaling.set_value(None);
            }
            SignalingEvent::IceServers(servers) => engine.set_ice_servers(servers),
            SignalingEvent::Lost => state.connection_lost.set(true),
            SignalingEvent::UsersChanged { joined, left } => {
                for user in &joined {
                    engine.set_nick(&user.id, user.nick.as_str());
                }
                state.users.update(|users| {
                    users.retain(|user| {
                        !left.contains(&user.id) && joined.iter().all(|new| new.id != user.id)
                    });
                    users.extend(joined);
                });
                if state
                    .selected
                    .get_untracked()
                    .is_some_and(|selected| left.contains(&selected))
                {
                    state.selected.set(None);
                }
                for id in &left {
                    engine.peer_left(id);
                }
            }
            SignalingEvent::Signal {
                from,
                from_nick,
                payload,
            } => engine.handle_signal(from, from_nick.as_str(), payload),
        }
    }
}

/// What to tell the user when joining fails.
fn refusal(code: Option<ErrorCode>, message: &str, nick: &str) -> String {
    match code {
        Some(ErrorCode::NickTaken) => {
            format!("The nickname “{nick}” is taken: someone online uses it. Try another.")
        }
        Some(ErrorCode::InvalidNick) => format!("That nickname won't do: {message}."),
        Some(ErrorCode::UnsupportedVersion) => {
            "This page is out of date. Reload it to get the current Ferry.".to_owned()
        }
        Some(_) => format!("The server refused: {message}."),
        None => message.to_owned(),
    }
}

/// The whole app.
#[component]
pub fn App() -> impl IntoView {
    let state = AppState::new();
    let services = Services::new(state);
    provide_context(state);
    provide_context(services);
    let engine = services.engine.get_value();
    leptos::task::spawn_local(async move { engine.prepare_storage().await });

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
        if let Some(list) = event.data_transfer().and_then(|transfer| transfer.files()) {
            send::choose(state, services, &list);
        }
    });
    // When the page goes, peers hear of it at once and private files are deleted.
    let gone = window_event_listener(ev::pagehide, move |_| {
        services.signaling.with_value(|client| {
            if let Some(client) = client {
                client.leave();
            }
        });
        services.engine.with_value(Engine::shutdown);
    });
    // A page restored from the back/forward cache has neither its server connection nor its
    // peer connections (closed on `pagehide` above): start it afresh rather than show a
    // page that looks joined and is not.
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
        back.remove();
    });

    view! {
        // The live region is always there and only its text comes and goes: screen readers
        // announce a change of text, not a region that appears already filled.
        <div class="banner" role="status">
            {move || {
                state
                    .connection_lost
                    .get()
                    .then_some("Connection to the server lost — reconnecting…")
            }}
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
            </header>
            <main class="layout">
                <people::People/>
                <send::SendPanel/>
                <transfers::Transfers/>
            </main>
            <offer::OfferDialog/>
            <div class="drop-overlay" aria-hidden="true" hidden=move || !state.dragging.get()>
                <p>"Drop files to send them"</p>
            </div>
        </Show>
    }
}
