//! System notifications for a page that is not being looked at: an offer or a text arrived.
//! Permission is asked only from a person's click; a click on a notification brings the page
//! to the front.

use std::cell::RefCell;

use wasm_bindgen::JsValue;
use web_sys::{Notification, NotificationOptions, NotificationPermission};

use super::{JsError, Listener, wait};

/// How many notifications are kept open at once; older ones are closed.
const KEPT: usize = 5;

thread_local! {
    /// The notifications shown and their click listeners, freed when they are closed.
    static SHOWN: RefCell<Vec<(Notification, Listener)>> = const { RefCell::new(Vec::new()) };
}

/// Whether this page may notify.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Permission {
    /// The browser has no notifications (or not in this context).
    Unsupported,
    /// Not asked yet.
    Ask,
    /// Allowed.
    Granted,
    /// Refused; only the browser's site settings can change that.
    Denied,
}

impl Permission {
    /// Whether "Notify me" still has something to ask.
    pub fn can_ask(self) -> bool {
        self == Self::Ask
    }
}

/// This page's permission now.
pub fn permission() -> Permission {
    let supported = js_sys::Reflect::has(&js_sys::global(), &JsValue::from_str("Notification"))
        .unwrap_or(false);
    if !supported {
        return Permission::Unsupported;
    }
    match Notification::permission() {
        NotificationPermission::Granted => Permission::Granted,
        NotificationPermission::Denied => Permission::Denied,
        _ => Permission::Ask,
    }
}

/// Asks for permission; call it from a click's handler.
///
/// # Errors
/// When the browser refuses to ask.
pub async fn ask() -> Result<Permission, JsError> {
    if permission() == Permission::Unsupported {
        return Ok(Permission::Unsupported);
    }
    let promise = Notification::request_permission()
        .map_err(|value| JsError::new("asking to notify", &value))?;
    wait(promise, "asking to notify").await?;
    Ok(permission())
}

/// Whether the page is hidden (another tab, a minimised window).
pub fn page_hidden() -> bool {
    web_sys::window()
        .and_then(|window| window.document())
        .is_some_and(|document| document.hidden())
}

/// Shows `title` with `body` when the page is hidden and notifying is allowed; a click on it
/// brings the page to the front.
pub fn notify(title: &str, body: &str) {
    if !page_hidden() || permission() != Permission::Granted {
        return;
    }
    let options = NotificationOptions::new();
    options.set_body(body);
    let Ok(notification) = Notification::new_with_options(title, &options) else {
        return;
    };
    let clicked = Listener::new(notification.as_ref(), "click", {
        let notification = notification.clone();
        move |_| {
            if let Some(window) = web_sys::window() {
                let _ = window.focus();
            }
            notification.close();
        }
    });
    SHOWN.with(|shown| {
        let mut shown = shown.borrow_mut();
        shown.push((notification, clicked));
        while shown.len() > KEPT {
            let (old, _) = shown.remove(0);
            old.close();
        }
    });
}

/// Closes every notification this page showed: the person is looking at the page now.
pub fn clear() {
    SHOWN.with(|shown| {
        for (notification, _) in shown.borrow_mut().drain(..) {
            notification.close();
        }
    });
}
