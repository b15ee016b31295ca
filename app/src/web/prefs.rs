//! Small preferences kept in the browser's local storage, so they outlast a reload.
//!
//! Storage may be unavailable (a private window, a sandboxed page); a preference then reads as
//! unset and is simply not remembered.

/// Whether the flag `key` was stored as set.
pub fn flag(key: &str) -> bool {
    storage()
        .and_then(|storage| storage.get_item(key).ok().flatten())
        .is_some_and(|value| value == "1")
}

/// Stores the flag `key`.
pub fn set_flag(key: &str, value: bool) {
    if let Some(storage) = storage() {
        let _ = storage.set_item(key, if value { "1" } else { "0" });
    }
}

fn storage() -> Option<web_sys::Storage> {
    web_sys::window()?.local_storage().ok().flatten()
}
