//! The session: owns the signaling client and the transfer engine, turns what they report
//! into plain state ([`AppState`], signals of plain data), and carries out what the views ask
//! ([`Session`]'s methods). The views read the state and call the session, nothing else; no
//! browser object sits in a signal.

mod people;
mod places;
mod server;
mod share;
mod words;

use std::collections::HashMap;
use std::rc::Rc;

use ferry_protocol::{LobbyScope, PeerId, Place, Roster, TransferId, UserInfo};
use leptos::prelude::*;
use web_sys::{DataTransfer, FileList};

pub use self::people::{TextNote, Verification, outcome_sentence, text_limit_hint};
use self::words::announce;
pub use self::words::sentence;
use crate::core::offer::IncomingOffer;
use crate::core::paths::summary;
use crate::core::rows::FileRow;
use crate::core::trust::{Standing, Trust};
use crate::web::address::{room_in_address, room_link};
use crate::web::chosen::{Chosen, dropped_entries, walk};
use crate::web::engine::{Answer, Engine, EngineConfig, EngineEvent};
use crate::web::notify::{self, Permission};
use crate::web::signaling::{Signaling, same_origin_url};
use crate::web::sink::{has_save_picker, pick_location};
use crate::web::{JsError, log, prefs};

/// Where the "Hide my IP address" choice is remembered across visits.
const HIDE_IP_KEY: &str = "ferry.hide-ip";

/// Where this tab keeps the nick it joined with, to join again after a reload.
const NICK_KEY: &str = "ferry.nick";

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
    /// What keeps this page from the server while it tries again by itself: the connection
    /// dropped, or the service is restarting.
    pub server_trouble: RwSignal<Option<&'static str>>,
    /// Everyone else online.
    pub users: RwSignal<Vec<UserInfo>>,
    /// The user files will go to.
    pub selected: RwSignal<Option<PeerId>>,
    /// What is chosen for sending, a line each (a folder is one line) with its size.
    pub chosen: RwSignal<Vec<(String, u64)>>,
    /// How many files are chosen for sending (a folder's each count).
    pub chosen_files: RwSignal<usize>,
    /// What a share into Ferry brought or why it brought nothing, as a sentence.
    pub share_note: RwSignal<Option<String>>,
    /// One signal per transfer row, newest first.
    pub rows: RwSignal<Vec<(String, RwSignal<FileRow>)>>,
    /// The same signals by key, so an update finds its row at once among thousands.
    row_index: StoredValue<HashMap<String, RwSignal<FileRow>>>,
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
    /// How many incoming transfers another open tab of this browser holds.
    pub held_elsewhere: RwSignal<usize>,
    /// Who meets in the server's lobby, or that it has none.
    pub lobby: RwSignal<LobbyScope>,
    /// The private room the page is in or about to join, as the link that brings others in;
    /// `None` in the lobby.
    pub room_link: RwSignal<Option<String>>,
    /// The pairing code for this room, as people read it ("123 456"), and for how many
    /// minutes it is good.
    pub pair_code: RwSignal<Option<(String, u64)>>,
    /// What went wrong with the last thing asked of the room (a pairing code), as a sentence.
    pub room_error: RwSignal<Option<String>>,
    /// Where each person on the list stands with this browser's verified people, by nick.
    pub standing: RwSignal<HashMap<String, Standing>>,
    /// The verification on screen.
    pub verification: RwSignal<Option<Verification>>,
    /// Texts sent and received, newest first.
    pub texts: RwSignal<Vec<TextNote>>,
    /// How the last text sent went, as a sentence.
    pub text_status: RwSignal<Option<String>>,
    /// The text being written to the selected person (a shared text waits here).
    pub text_draft: RwSignal<String>,
    /// Whether this page may show system notifications.
    pub notify: RwSignal<Permission>,
}

/// Why the chosen files could not be sent; the text is for the user.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The browser refused what a transfer needs, such as a peer connection.
    #[error("Could not start the transfer: {0}.")]
    NotStarted(#[from] JsError),
}

/// The session: the signaling client and the transfer engine, kept out of the reactive graph,
/// and the plain state they update; cheap to copy, provided as context.
#[derive(Clone, Copy, Debug)]
pub struct Session {
    state: AppState,
    engine: StoredValue<Engine, LocalStorage>,
    signaling: StoredValue<Option<Signaling>, LocalStorage>,
    /// The files chosen for sending.
    files: StoredValue<Chosen, LocalStorage>,
    /// The others online, as the server's welcome and batches say; `AppState::users` shows it.
    roster: StoredValue<Roster>,
    /// Where the next join goes.
    place: StoredValue<Place>,
    /// Whether to ask for a pairing code once the join into a new room is welcomed.
    pair_when_in: StoredValue<bool>,
    /// The people verified in this browser.
    trust: StoredValue<Trust>,
}

impl AppState {
    fn new() -> Self {
        Self {
            phase: RwSignal::new(Phase::Join),
            me: RwSignal::new(None),
            join_error: RwSignal::new(None),
            server_trouble: RwSignal::new(None),
            users: RwSignal::new(Vec::new()),
            selected: RwSignal::new(None),
            chosen: RwSignal::new(Vec::new()),
            chosen_files: RwSignal::new(0),
            share_note: RwSignal::new(None),
            rows: RwSignal::new(Vec::new()),
            row_index: StoredValue::new(HashMap::new()),
            announcement: RwSignal::new(String::new()),
            offers: RwSignal::new(Vec::new()),
            dragging: RwSignal::new(false),
            relay_offered: RwSignal::new(false),
            relay_forced: RwSignal::new(false),
            hide_ip: RwSignal::new(prefs::flag(HIDE_IP_KEY)),
            held_elsewhere: RwSignal::new(0),
            lobby: RwSignal::new(LobbyScope::Everyone),
            room_link: RwSignal::new(None),
            pair_code: RwSignal::new(None),
            room_error: RwSignal::new(None),
            standing: RwSignal::new(HashMap::new()),
            verification: RwSignal::new(None),
            texts: RwSignal::new(Vec::new()),
            text_status: RwSignal::new(None),
            text_draft: RwSignal::new(String::new()),
            notify: RwSignal::new(notify::permission()),
        }
    }

    /// Applies what the engine reports.
    fn apply(self, event: EngineEvent) {
        match event {
            EngineEvent::Rows(batch) => {
                let mut news = Vec::new();
                let mut fresh = Vec::new();
                for row in batch {
                    let known = self
                        .row_index
                        .with_value(|index| index.get(&row.key).copied());
                    let Some(signal) = known else {
                        let key = row.key.clone();
                        let signal = RwSignal::new(row);
                        self.row_index.update_value(|index| {
                            index.insert(key.clone(), signal);
                        });
                        fresh.push((key, signal));
                        continue;
                    };
                    if signal.with_untracked(|old| row.status.is_news_after(&old.status)) {
                        news.push((row.name.clone(), row.status.to_string()));
                    }
                    signal.set(row);
                }
                if !fresh.is_empty() {
                    self.rows.update(|rows| {
                        fresh.append(rows);
                        *rows = fresh;
                    });
                }
                // One announcement per change, however many files it concerns: a live region per
                // row would read out every step of every file.
                if !news.is_empty() {
                    self.announcement.set(announce(&news));
                }
            }
            EngineEvent::Offer(offer) => self.offers.update(|offers| offers.push(offer)),
            EngineEvent::OfferGone(id) => self.offers.update(|offers| {
                offers.retain(|offer| offer.id != id);
            }),
            EngineEvent::HeldElsewhere(count) => self.held_elsewhere.set(count),
            // The session takes these itself (`people.rs`): they need more than plain state.
            EngineEvent::Device { .. } | EngineEvent::Text { .. } | EngineEvent::Verify { .. } => {}
            EngineEvent::Removed(gone) => {
                self.row_index.update_value(|index| {
                    index.remove(&gone);
                });
                self.rows.update(|rows| {
                    rows.retain(|(key, _)| *key != gone);
                });
            }
        }
    }
}

impl Default for Session {
    fn default() -> Self {
        Self::new()
    }
}

impl Session {
    /// A session with nobody joined, its state under the current reactive owner.
    pub fn new() -> Self {
        let state = AppState::new();
        let signaling: StoredValue<Option<Signaling>, LocalStorage> = StoredValue::new_local(None);
        let out = Rc::new(move |to, payload, lane| {
            signaling.with_value(|client| {
                if let Some(client) = client {
                    client.signal(to, payload, lane);
                }
            });
        });
        // Engine events arrive from tasks outside the component tree; running them under the
        // app's owner gives the row signals they create an owner that disposes of them. They
        // go to the session, which exists before the engine can report anything.
        let owner = Owner::current();
        let session: StoredValue<Option<Session>> = StoredValue::new(None);
        let events = Rc::new(move |event| {
            // Nothing once the app is gone: engine tasks may outlive it.
            let Some(session) = session.try_get_value().flatten() else {
                return;
            };
            match &owner {
                Some(owner) => owner.with(|| session.on_engine(event)),
                None => session.on_engine(event),
            }
        });
        let engine = Engine::new(EngineConfig::default(), out, events);
        engine.set_hide_ip(state.hide_ip.get_untracked());
        // A room link opened, or a reload in a room, joins that room.
        let place = match room_in_address() {
            Ok(Some(room)) => {
                state.room_link.set(Some(room_link(&room)));
                Place::Room(room)
            }
            Ok(None) => Place::Lobby,
            Err(broken) => {
                state.join_error.set(Some(broken.to_string()));
                Place::Lobby
            }
        };
        let created = Self {
            state,
            engine: StoredValue::new_local(engine),
            signaling,
            files: StoredValue::new_local(Chosen::default()),
            roster: StoredValue::new(Roster::new()),
            place: StoredValue::new(place),
            pair_when_in: StoredValue::new(false),
            trust: StoredValue::new(Trust::from_json(
                &prefs::text(people::TRUST_KEY).unwrap_or_default(),
            )),
        };
        session.set_value(Some(created));
        created
    }

    /// The plain state the views read.
    pub fn state(self) -> AppState {
        self.state
    }

    /// Connects to the server and joins as `nick` where the page is (the lobby, or the room
    /// its address names).
    pub fn join(self, nick: String) {
        let state = self.state;
        state.phase.set(Phase::Joining);
        state.join_error.set(None);
        state.room_error.set(None);
        state.pair_code.set(None);
        let typed = nick.clone();
        leptos::task::spawn_local(async move {
            self.load_device().await;
            let events = Rc::new(move |event| self.on_signaling(&typed, event));
            let client = Signaling::start(same_origin_url(), nick, self.place.get_value(), events);
            self.signaling.set_value(Some(client));
        });
    }

    /// Joins again under the nick this tab had before it was reloaded, if it had one: a
    /// reload then costs no typing, and transfers paused by it go on.
    pub fn rejoin(self) {
        if let Some(nick) = prefs::tab_text(NICK_KEY) {
            self.join(nick);
        }
    }

    /// Opens the private storage (and clears what closed tabs left) ahead of the first
    /// transfer.
    pub fn prepare_storage(self) {
        let engine = self.engine.get_value();
        leptos::task::spawn_local(async move { engine.prepare_storage().await });
    }

    /// Takes the files of a file or folder picker as the next files to send.
    pub fn choose_files(self, list: &FileList) {
        self.choose(Chosen::from_list(list));
    }

    /// Takes what was dropped on the page as the next files to send: its folders are walked
    /// with their subfolders; where the browser lists no entries, its files.
    pub fn choose_dropped(self, data: &DataTransfer) {
        let Some(entries) = dropped_entries(data) else {
            if let Some(list) = data.files() {
                self.choose_files(&list);
            }
            return;
        };
        leptos::task::spawn_local(async move {
            match walk(entries).await {
                Ok(chosen) => self.choose(chosen),
                Err(error) => log(&error.to_string()),
            }
        });
    }

    fn choose(self, chosen: Chosen) {
        if chosen.is_empty() {
            return;
        }
        self.state
            .chosen
            .set(summary(&chosen.metas(), &chosen.empty_folders));
        self.state.chosen_files.set(chosen.files.len());
        self.files.set_value(chosen);
    }

    /// Sends the chosen files to the selected user.
    ///
    /// # Errors
    /// When the transfer could not start; the error says so to the user.
    pub fn send(self) -> Result<(), SendError> {
        let Some(to) = self.state.selected.get_untracked() else {
            return Ok(());
        };
        let chosen = self.files.get_value();
        if chosen.is_empty() {
            return Ok(());
        }
        self.engine
            .with_value(|engine| engine.send_files(&to, chosen))?;
        self.files.set_value(Chosen::default());
        self.state.chosen.set(Vec::new());
        self.state.chosen_files.set(0);
        self.state.share_note.set(None);
        Ok(())
    }

    /// Accepts an offer: its files go to the browser's downloads (a folder as one zip).
    pub fn accept(self, id: &TransferId) {
        self.engine
            .with_value(|engine| engine.answer(id, Answer::Download));
    }

    /// Declines an offer.
    pub fn decline(self, id: &TransferId) {
        self.engine
            .with_value(|engine| engine.answer(id, Answer::Decline));
    }

    /// Whether this browser can save where the user picks ("Choose where to save…").
    pub fn can_pick_where_to_save(self) -> bool {
        has_save_picker()
    }

    /// Asks where to save `offer` (a file's name for one file, a folder otherwise) and
    /// accepts it into what the user picked; nothing happens when they dismiss the picker.
    /// Call it from the click's own handler: the picker opens only while the click still
    /// counts as the user's gesture.
    pub fn accept_into_picked(self, offer: &IncomingOffer) {
        let id = offer.id.clone();
        let one_file = offer.one_file().map(str::to_owned);
        leptos::task::spawn_local(async move {
            match pick_location(one_file.as_deref()).await {
                Ok(Some(picked)) => self
                    .engine
                    .with_value(|engine| engine.answer(&id, Answer::SaveTo(picked))),
                Ok(None) => {}
                Err(error) => log(&error.to_string()),
            }
        });
    }

    /// Cancels a transfer.
    pub fn cancel(self, id: &TransferId) {
        self.engine.with_value(|engine| engine.cancel(id));
    }

    /// Takes the files picked again for a transfer this page sent before it was reloaded.
    pub fn pick_again(self, id: &TransferId, list: &FileList) {
        let files = Chosen::from_list(list).files;
        self.engine
            .with_value(|engine| engine.pick_again(id, files));
    }

    /// Offers a received file as a download again.
    pub fn save_again(self, id: &TransferId, index: usize) {
        self.engine
            .with_value(|engine| engine.save_again(id, index));
    }

    /// Clears a finished file's row.
    pub fn dismiss(self, id: &TransferId, index: usize) {
        self.engine.with_value(|engine| engine.dismiss(id, index));
    }

    /// Whether this user's new connections hide their address (relay only); remembered.
    pub fn set_hide_ip(self, hide: bool) {
        self.state.hide_ip.set(hide);
        prefs::set_flag(HIDE_IP_KEY, hide);
        self.engine.with_value(|engine| engine.set_hide_ip(hide));
    }

    /// The page is going: says goodbye to the server, so peers hear of it at once, closes
    /// the peer connections and deletes private files.
    pub fn page_hidden(self) {
        self.signaling.with_value(|client| {
            if let Some(client) = client {
                client.leave();
            }
        });
        self.engine.with_value(Engine::shutdown);
    }
}
