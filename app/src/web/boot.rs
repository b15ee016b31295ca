//! The loading view `index.html` shows until the app starts: the app takes it away as it
//! mounts, so the page never shows both.

/// The id of the loading view in `index.html`.
const BOOT_VIEW: &str = "boot";

/// Takes the loading view off the page, if it is there.
pub fn dismiss() {
    let view = web_sys::window()
        .and_then(|window| window.document())
        .and_then(|document| document.get_element_by_id(BOOT_VIEW));
    if let Some(view) = view {
        view.remove();
    }
}
