//! What the browser tests share: two engines wired to each other, waiting, test files and
//! the watch that counts and breaks data channels.

use std::cell::RefCell;
use std::rc::Rc;

use ferry_app::core::rows::FileRow;
use ferry_app::web::engine::{Engine, EngineConfig, EngineEvent};
use ferry_app::web::sleep;
use ferry_protocol::{PeerId, TransferId};
use js_sys::Uint8Array;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{Blob, File};

/// One side of a test: an engine and everything it reported.
pub(crate) struct Side {
    pub(crate) engine: Engine,
    pub(crate) events: Rc<RefCell<Vec<EngineEvent>>>,
}

impl Side {
    /// The latest row of every file of `id`, in file order.
    pub(crate) fn rows(&self, id: &TransferId) -> Vec<FileRow> {
        self.engine.rows(id)
    }

    /// Each file's status and bytes done, for a failed test to say where the side stood.
    pub(crate) fn progress(&self, id: &TransferId) -> String {
        self.rows(id)
            .iter()
            .map(|row| format!("{} at {} bytes", row.status, row.done))
            .collect::<Vec<_>>()
            .join(", ")
    }

    pub(crate) fn statuses(&self, id: &TransferId) -> Vec<String> {
        self.rows(id)
            .iter()
            .map(|row| row.status.to_string())
            .collect()
    }

    /// The first offer this side was shown.
    pub(crate) fn offer(&self) -> Option<TransferId> {
        self.events.borrow().iter().find_map(|event| match event {
            EngineEvent::Offer(offer) => Some(offer.id.clone()),
            _ => None,
        })
    }
}

pub(crate) fn peer(byte: u8) -> PeerId {
    PeerId::from_random_bytes([byte; 16])
}

/// Two engines, "ana" (id 0x0a…) and "bo" (id 0x0b…), whose signals go straight to each
/// other.
pub(crate) fn pair(config: EngineConfig) -> (Side, Side) {
    let slots: [Rc<RefCell<Option<Engine>>>; 2] = Default::default();
    let ids = [peer(0x0a), peer(0x0b)];
    let nicks = ["ana", "bo"];
    let mut sides = Vec::new();
    for me in 0..2 {
        let other = Rc::clone(&slots[1 - me]);
        let (my_id, my_nick) = (ids[me].clone(), nicks[me]);
        let out = Rc::new(move |_to: PeerId, payload, lane| {
            if let Some(engine) = other.borrow().as_ref() {
                engine.handle_signal(my_id.clone(), my_nick, payload, lane);
            }
        });
        let events = Rc::new(RefCell::new(Vec::new()));
        let sink = Rc::clone(&events);
        let engine = Engine::new(
            config.clone(),
            out,
            Rc::new(move |event| sink.borrow_mut().push(event)),
        );
        engine.set_identity(ids[me].clone(), my_nick, Vec::new(), false);
        engine.set_nick(&ids[1 - me], nicks[1 - me]);
        *slots[me].borrow_mut() = Some(engine.clone());
        sides.push(Side { engine, events });
    }
    let bo = sides.pop().unwrap();
    let ana = sides.pop().unwrap();
    (ana, bo)
}

/// The engines' settings in these tests: received files are kept for the test to read, not
/// downloaded.
pub(crate) fn quiet() -> EngineConfig {
    EngineConfig {
        auto_download: false,
        ..EngineConfig::default()
    }
}

/// Polls `condition` every 20 ms for up to `seconds`.
pub(crate) async fn until(seconds: u32, what: &str, condition: impl Fn() -> bool) {
    until_or_say(seconds, what, condition, String::new).await;
}

/// [`until`], whose failure also says what `say` tells of where things stood then: the
/// test's own output is what a failed run shows first.
pub(crate) async fn until_or_say(
    seconds: u32,
    what: &str,
    condition: impl Fn() -> bool,
    say: impl Fn() -> String,
) {
    for _ in 0..seconds * 50 {
        if condition() {
            return;
        }
        sleep(20).await;
    }
    panic!("timed out waiting for {what}. {}", say());
}

/// Deterministic pseudo-random bytes (xorshift).
pub(crate) fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

pub(crate) fn file(name: &str, bytes: &[u8]) -> File {
    let parts = js_sys::Array::of1(&Uint8Array::from(bytes));
    File::new_with_u8_array_sequence(&parts, name).unwrap()
}

pub(crate) async fn bytes_of(blob: &Blob) -> Vec<u8> {
    let buffer = JsFuture::from(blob.array_buffer()).await.unwrap();
    Uint8Array::new(&buffer).to_vec()
}

/// Installs `watch_webrtc.js` in this page: a count of the bytes sent over data channels, and
/// a way to close every peer connection, as a network failure would end them.
pub(crate) fn watch_webrtc() -> js_sys::Object {
    js_sys::Function::new_no_args(include_str!("../watch_webrtc.js"))
        .call0(&wasm_bindgen::JsValue::NULL)
        .unwrap()
        .unchecked_into()
}

pub(crate) fn call_watch(watch: &js_sys::Object, method: &str) -> f64 {
    let function: js_sys::Function = js_sys::Reflect::get(watch, &method.into())
        .unwrap()
        .unchecked_into();
    function.call0(watch).unwrap().as_f64().unwrap_or(0.0)
}
