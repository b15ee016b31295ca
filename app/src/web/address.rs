//! The page's address and what it asks the server before joining: the fragment that names a
//! private room, the link to share, the server's lobby, and copying a link to the clipboard.

use ferry_protocol::{RoomId, ServerInfo};
use wasm_bindgen_futures::JsFuture;

use super::JsError;
use crate::core::place::{BrokenLink, fragment, link, room_in};

fn location() -> web_sys::Location {
    web_sys::window()
        .expect("Ferry runs in a window")
        .location()
}

/// The room the page's address names, if it names one.
pub fn room_in_address() -> Result<Option<RoomId>, BrokenLink> {
    room_in(&location().hash().unwrap_or_default())
}

/// Puts `room` in the address, or takes any room out of it, without a reload and without a
/// new history entry: a reload then comes back to the same place.
pub fn show_room(room: Option<&RoomId>) {
    let location = location();
    let path = location.pathname().unwrap_or_else(|_| "/".to_owned());
    let search = location.search().unwrap_or_default();
    let url = match room {
        Some(room) => format!("{path}{search}{}", fragment(room)),
        None => format!("{path}{search}"),
    };
    if let Ok(history) = web_sys::window().expect("a window").history() {
        let _ = history.replace_state_with_url(&wasm_bindgen::JsValue::NULL, "", Some(&url));
    }
}

/// The link that brings someone else into `room`.
pub fn room_link(room: &RoomId) -> String {
    link(&location().origin().unwrap_or_default(), room)
}

/// What the server says about itself; `Ok(None)` when it does not say (an older server), which
/// counts as a lobby for everyone.
///
/// # Errors
/// When the server cannot be reached at all (this device is offline, or the server is down).
pub async fn server_info() -> Result<Option<ServerInfo>, JsError> {
    let response = gloo_net::http::Request::get("/api/server")
        .send()
        .await
        .map_err(|error| JsError::plain("asking the server about itself", error.to_string()))?;
    if !response.ok() {
        return Ok(None);
    }
    Ok(response.json().await.ok())
}

/// Copies `text` to the clipboard.
pub async fn copy(text: &str) -> Result<(), JsError> {
    let clipboard = web_sys::window().expect("a window").navigator().clipboard();
    JsFuture::from(clipboard.write_text(text))
        .await
        .map(|_| ())
        .map_err(|error| JsError::new("copying the link", &error))
}
