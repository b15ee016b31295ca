//! Small values kept in the browser's storage, so they outlast a reload: preferences and
//! records in local storage, and what belongs to this tab in its session storage.
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

/// The text stored under `key`, if any.
pub fn text(key: &str) -> Option<String> {
    storage()?.get_item(key).ok().flatten()
}

/// Stores `value` under `key`; false when the browser refused (storage full or missing).
pub fn set_text(key: &str, value: &str) -> bool {
    storage().is_some_and(|storage| storage.set_item(key, value).is_ok())
}

/// Forgets `key`.
pub fn remove(key: &str) {
    if let Some(storage) = storage() {
        let _ = storage.remove_item(key);
    }
}

/// Every stored key that starts with `prefix`.
pub fn keys_with_prefix(prefix: &str) -> Vec<String> {
    let Some(storage) = storage() else {
        return Vec::new();
    };
    let count = storage.length().unwrap_or(0);
    (0..count)
        .filter_map(|index| storage.key(index).ok().flatten())
        .filter(|key| key.starts_with(prefix))
        .collect()
}

/// The text this tab stored under `key`: session storage outlives a reload of the tab (and
/// a crash the browser restores), not the tab itself.
pub fn tab_text(key: &str) -> Option<String> {
    tab_storage()?.get_item(key).ok().flatten()
}

/// Stores `value` under `key` for this tab.
pub fn set_tab_text(key: &str, value: &str) {
    if let Some(storage) = tab_storage() {
        let _ = storage.set_item(key, value);
    }
}

fn tab_storage() -> Option<web_sys::Storage> {
    web_sys::window()?.session_storage().ok().flatten()
}
