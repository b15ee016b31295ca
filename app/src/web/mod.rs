//! All browser glue: WebRTC, the signaling WebSocket, the origin-private file system, file
//! reading and downloads. Nothing outside this module calls into `web-sys` for those.
//!
//! # Errors
//! Every fallible browser call goes through [`JsError`], which keeps what was being done and
//! the browser's message (a `DOMException`'s name and text, an `Error`'s message, or a string).
//!
//! # Closure lifetimes
//! A Rust closure handed to the browser is wrapped in a [`Listener`], owned by the struct that
//! registered it (a [`channel::Channel`], a [`peer::PeerLink`]) and unregistered and freed when
//! that struct is dropped. Nothing is leaked with `Closure::forget`: a transfer that ends
//! leaves no callbacks behind, however many chunks it moved. One-shot waits (timers, channel
//! opening) use promises or futures channels instead of closures.

pub mod address;
pub mod boot;
pub mod channel;
pub mod chosen;
pub mod device;
pub mod engine;
pub mod files;
pub mod notify;
pub mod opfs;
pub mod peer;
pub mod prefs;
pub mod shared;
pub mod signaling;
pub mod sink;
pub mod writer;

use std::cell::RefCell;
use std::rc::Rc;

use futures::channel::oneshot;
use js_sys::{Promise, Reflect};
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::{Event, EventTarget};

/// A browser call that failed, with what Ferry was doing at the time.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{context}: {message}")]
pub struct JsError {
    /// What Ferry was doing, e.g. "writing the file".
    pub context: &'static str,
    /// What the browser said.
    pub message: String,
}

impl JsError {
    /// Wraps whatever the browser threw or rejected with.
    pub fn new(context: &'static str, value: &JsValue) -> Self {
        let message = if let Some(exception) = value.dyn_ref::<web_sys::DomException>() {
            format!("{} ({})", exception.message(), exception.name())
        } else if let Some(error) = value.dyn_ref::<js_sys::Error>() {
            String::from(error.message())
        } else if let Some(text) = value.as_string() {
            text
        } else {
            format!("{value:?}")
        };
        Self { context, message }
    }

    /// An error that the browser did not throw but Ferry found.
    pub fn plain(context: &'static str, message: impl Into<String>) -> Self {
        Self {
            context,
            message: message.into(),
        }
    }

    /// Whether the browser reported a user abort (e.g. a dismissed file picker).
    pub fn is_abort(&self) -> bool {
        self.message.ends_with("(AbortError)")
    }
}

impl From<JsError> for crate::core::transfer::TransferError {
    fn from(error: JsError) -> Self {
        Self::Local(crate::core::transfer::LocalError {
            doing: error.context,
            what: error.message,
        })
    }
}

/// Adds [`JsError`] context to results of browser calls.
pub trait Context<T> {
    /// Names what was being done when the call failed.
    fn context(self, context: &'static str) -> Result<T, JsError>;
}

impl<T> Context<T> for Result<T, JsValue> {
    fn context(self, context: &'static str) -> Result<T, JsError> {
        self.map_err(|value| JsError::new(context, &value))
    }
}

/// Awaits a promise, naming what it was for when it rejects.
pub async fn wait(promise: Promise, context: &'static str) -> Result<JsValue, JsError> {
    JsFuture::from(promise).await.context(context)
}

/// Reads `object[key]`, `undefined` when it is missing.
pub fn property(object: &JsValue, key: &str) -> JsValue {
    Reflect::get(object, &JsValue::from_str(key)).unwrap_or(JsValue::UNDEFINED)
}

/// Calls `object.method(...args)` where `web-sys` has no binding (or only an unstable one).
pub fn call_method(
    object: &JsValue,
    method: &str,
    args: &[&JsValue],
    context: &'static str,
) -> Result<JsValue, JsError> {
    let function = property(object, method)
        .dyn_into::<js_sys::Function>()
        .map_err(|_| JsError::plain(context, format!("{method} is not supported here")))?;
    let list = args.iter().copied().collect::<js_sys::Array>();
    Reflect::apply(&function, object, &list).context(context)
}

/// Writes a diagnostic to the browser console.
pub fn log(message: &str) {
    web_sys::console::warn_1(&JsValue::from_str(message));
}

/// Lowercase hexadecimal, for names made of random bytes.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Resolves after `millis` milliseconds.
pub async fn sleep(millis: u32) {
    let promise = Promise::new(&mut |resolve, _| {
        let _ = web_sys::window()
            .expect("Ferry runs in a window")
            .set_timeout_with_callback_and_timeout_and_arguments_0(
                &resolve,
                i32::try_from(millis).unwrap_or(i32::MAX),
            );
    });
    let _ = JsFuture::from(promise).await;
}

/// Waits out the next delay of `backoff`, jittered by the page's random numbers.
pub async fn back_off(backoff: &mut crate::core::backoff::Backoff) {
    let delay = backoff.next_delay(js_sys::Math::random());
    sleep(u32::try_from(delay.as_millis()).unwrap_or(u32::MAX)).await;
}

/// Seconds on a monotonic clock, for rates and throttling.
pub fn now_secs() -> f64 {
    let performance = property(&js_sys::global(), "performance");
    call_method(&performance, "now", &[], "reading the clock")
        .ok()
        .and_then(|value| value.as_f64())
        .map_or_else(|| js_sys::Date::now() / 1000.0, |millis| millis / 1000.0)
}

/// Marks a moment on the page's performance timeline (`performance.mark`), where a benchmark
/// reads how long a step took: "ferry:send", "ferry:open", "ferry:accept", "ferry:first-byte".
pub fn mark(name: &str) {
    let performance = property(&js_sys::global(), "performance");
    let _ = call_method(
        &performance,
        "mark",
        &[&JsValue::from_str(name)],
        "marking a moment",
    );
}

/// Bytes from the browser's cryptographically secure generator.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0; N];
    let crypto = property(&js_sys::global(), "crypto").unchecked_into::<web_sys::Crypto>();
    crypto
        .get_random_values_with_u8_array(&mut bytes)
        .expect("crypto.getRandomValues works in every supported browser");
    bytes
}

/// An event listener that lives exactly as long as this value: dropping it unregisters the
/// callback and frees the closure.
pub struct Listener {
    target: EventTarget,
    event: &'static str,
    closure: Closure<dyn FnMut(Event)>,
}

impl Listener {
    /// Calls `handler` for every `event` on `target` until dropped.
    pub fn new(
        target: &EventTarget,
        event: &'static str,
        handler: impl FnMut(Event) + 'static,
    ) -> Self {
        let closure = Closure::<dyn FnMut(Event)>::new(handler);
        // Registering a listener on a live EventTarget cannot fail.
        let _ = target.add_event_listener_with_callback(event, closure.as_ref().unchecked_ref());
        Self {
            target: target.clone(),
            event,
            closure,
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        let _ = self
            .target
            .remove_event_listener_with_callback(self.event, self.closure.as_ref().unchecked_ref());
    }
}

impl std::fmt::Debug for Listener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Listener({})", self.event)
    }
}

/// Wakes every task waiting on it when [`Notify::notify_all`] is called; used for
/// `bufferedamountlow`, for channel opening and for the receiver's reports of written bytes.
#[derive(Clone, Debug, Default)]
pub struct Notify {
    waiters: Rc<RefCell<Vec<oneshot::Sender<()>>>>,
}

impl Notify {
    /// Registers a waiter; register before checking the condition's opposite has changed
    /// nothing (JavaScript runs no event between the check and this call).
    pub fn notified(&self) -> oneshot::Receiver<()> {
        let (sender, receiver) = oneshot::channel();
        self.waiters.borrow_mut().push(sender);
        receiver
    }

    /// Wakes all current waiters.
    pub fn notify_all(&self) {
        for waiter in self.waiters.borrow_mut().drain(..) {
            let _ = waiter.send(());
        }
    }
}
