//! Notifications: shown only while the page is hidden and allowed, saying who and what; a
//! click brings the page forward and closes it. The browser's `Notification` is replaced by a
//! recording stand-in, since a headless browser neither grants the permission nor hides the
//! page. These tests change the page's globals, so they run in a page of their own, apart
//! from the transfer tests.

#![cfg(target_arch = "wasm32")]

use ferry_app::web::notify::{Permission, clear, notify, permission};
use js_sys::{Function, Reflect};
use wasm_bindgen::JsValue;
use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};

wasm_bindgen_test_configure!(run_in_browser);

/// Replaces `Notification` with a stand-in that records what is shown, grants or denies as
/// `granted` says, and makes the page read as hidden or not.
fn stand_in(granted: bool, hidden: bool) {
    Function::new_with_args(
        "granted, hidden",
        "window.shown = window.shown || [];
         class StandIn {
           static get permission() { return granted ? 'granted' : 'denied'; }
           static requestPermission() { return Promise.resolve(StandIn.permission); }
           constructor(title, options) {
             this.title = title;
             this.body = options && options.body;
             this.closed = false;
             this.listeners = {};
             window.shown.push(this);
           }
           addEventListener(type, listener) { this.listeners[type] = listener; }
           removeEventListener(type) { delete this.listeners[type]; }
           close() { this.closed = true; }
         }
         window.realNotification = window.realNotification || window.Notification;
         window.Notification = StandIn;
         Object.defineProperty(document, 'hidden', { configurable: true, get: () => hidden });",
    )
    .call2(&JsValue::NULL, &granted.into(), &hidden.into())
    .unwrap();
}

/// Puts the browser's own `Notification` and `document.hidden` back.
fn restore() {
    Function::new_no_args(
        "window.Notification = window.realNotification;
         delete document.hidden;
         window.shown = [];",
    )
    .call0(&JsValue::NULL)
    .unwrap();
}

/// What the stand-in showed: each notification's title, body and whether it is closed.
fn shown() -> Vec<(String, String, bool)> {
    let list: js_sys::Array = Reflect::get(&js_sys::global(), &"shown".into())
        .unwrap()
        .into();
    list.iter()
        .map(|item| {
            let get = |key: &str| Reflect::get(&item, &key.into()).unwrap();
            (
                get("title").as_string().unwrap_or_default(),
                get("body").as_string().unwrap_or_default(),
                get("closed").as_bool().unwrap_or_default(),
            )
        })
        .collect()
}

#[wasm_bindgen_test]
fn a_hidden_page_notifies_who_and_what_and_a_click_closes_it() {
    stand_in(true, true);
    assert_eq!(permission(), Permission::Granted);
    notify("ana wants to send you files", "holiday.jpg (2.1 MB)");
    assert_eq!(
        shown(),
        [(
            "ana wants to send you files".to_owned(),
            "holiday.jpg (2.1 MB)".to_owned(),
            false
        )]
    );
    // A click brings the page forward and closes the notification.
    Function::new_no_args("window.shown[0].listeners.click(new Event('click'));")
        .call0(&JsValue::NULL)
        .unwrap();
    assert!(shown()[0].2, "the clicked notification stayed open");

    notify("bo sent you a text", "the door code is 4711");
    assert_eq!(shown().len(), 2);
    clear();
    assert!(shown().iter().all(|(_, _, closed)| *closed));
    restore();
}

#[wasm_bindgen_test]
fn a_page_in_view_or_without_permission_does_not_notify() {
    stand_in(true, false);
    notify("ana wants to send you files", "a.bin");
    assert!(shown().is_empty(), "a page in view notified");
    stand_in(false, true);
    assert_eq!(permission(), Permission::Denied);
    assert!(!permission().can_ask());
    notify("ana wants to send you files", "a.bin");
    assert!(shown().is_empty(), "a page without permission notified");
    restore();
}
