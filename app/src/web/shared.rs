//! What a phone's share sheet sent into the installed app: the service worker (`sw.js`) keeps
//! its files and text in a cache of their own and opens the page at `/?shared`, which takes
//! them here.

use js_sys::{Array, Object, Reflect};
use wasm_bindgen::{JsCast, JsValue};
use web_sys::File;

use super::{JsError, call_method, property, wait};

/// The cache the service worker keeps a share in (the name `sw.js` gives it).
const CACHE: &str = "ferry-shared";

/// The address's query when the service worker opened the page on a share.
const OPENED_ON_SHARE: &str = "?shared";

/// A share: its files in the order they were shared, and its text (title, text and link, a
/// line each), if it had any.
#[derive(Debug, Default)]
pub struct Shared {
    /// The files.
    pub files: Vec<File>,
    /// The text.
    pub text: Option<String>,
}

/// Whether the page was opened on a share, and takes that mark off its address (a reload then
/// does not take the share again).
pub fn opened_on_share() -> bool {
    let Some(window) = web_sys::window() else {
        return false;
    };
    let location = window.location();
    if location.search().as_deref() != Ok(OPENED_ON_SHARE) {
        return false;
    }
    let path = location.pathname().unwrap_or_else(|_| "/".to_owned());
    let hash = location.hash().unwrap_or_default();
    if let Ok(history) = window.history() {
        let _ = history.replace_state_with_url(&JsValue::NULL, "", Some(&format!("{path}{hash}")));
    }
    true
}

/// The share the service worker kept; empty when it kept none (a browser without share
/// targets, or a share the service worker did not see).
///
/// The share stays kept after this: the files read here are backed by it. It is replaced by
/// the next share and dropped by [`forget`] on the next visit that is not one.
pub async fn take() -> Result<Shared, JsError> {
    let Some(caches) = storage() else {
        return Ok(Shared::default());
    };
    let held = wait(
        call_method(&caches, "has", &[&CACHE.into()], "looking for a share")?.unchecked_into(),
        "looking for a share",
    )
    .await?;
    if held.as_bool() != Some(true) {
        return Ok(Shared::default());
    }
    let cache = wait(
        call_method(&caches, "open", &[&CACHE.into()], "opening the share")?.unchecked_into(),
        "opening the share",
    )
    .await?;
    let requests: Array = wait(
        call_method(&cache, "keys", &[], "listing the share")?.unchecked_into(),
        "listing the share",
    )
    .await?
    .unchecked_into();
    let mut files = Vec::new();
    let mut text = None;
    for request in requests.iter() {
        let url = property(&request, "url").as_string().unwrap_or_default();
        let response = wait(
            call_method(&cache, "match", &[&request], "reading the share")?.unchecked_into(),
            "reading the share",
        )
        .await?;
        if url.ends_with("/shared/text") {
            let body = wait(
                call_method(&response, "text", &[], "reading the shared text")?.unchecked_into(),
                "reading the shared text",
            )
            .await?;
            text = body.as_string();
        } else if let Some(place) = url.rsplit('/').next().and_then(|n| n.parse::<usize>().ok()) {
            files.push((place, shared_file(&response).await?));
        }
    }
    files.sort_by_key(|(place, _)| *place);
    Ok(Shared {
        files: files.into_iter().map(|(_, file)| file).collect(),
        text,
    })
}

/// Drops a share kept from an earlier visit, so shared files do not stay in the browser.
pub async fn forget() {
    if let Some(caches) = storage()
        && let Ok(deleting) = call_method(&caches, "delete", &[&CACHE.into()], "dropping a share")
    {
        let _ = wait(deleting.unchecked_into(), "dropping a share").await;
    }
}

/// The page's cache storage, where there is one (a secure context).
fn storage() -> Option<JsValue> {
    Some(property(&js_sys::global(), "caches")).filter(|caches| !caches.is_undefined())
}

/// One kept file, with the name, type and date the service worker noted beside it.
async fn shared_file(response: &JsValue) -> Result<File, JsError> {
    let headers = property(response, "headers");
    let header = |name: &str| {
        call_method(&headers, "get", &[&name.into()], "reading a shared file")
            .ok()
            .and_then(|value| value.as_string())
    };
    let name = header("x-ferry-name")
        .and_then(|encoded| js_sys::decode_uri_component(&encoded).ok())
        .map(String::from)
        .unwrap_or_else(|| "shared file".to_owned());
    let kind = header("content-type").unwrap_or_default();
    // Whole milliseconds, read as an integer: parsing a float would bring the float parser's
    // tables into the wasm for this one number.
    let modified = header("x-ferry-modified").and_then(|millis| millis.parse::<u64>().ok());
    let blob = wait(
        call_method(response, "blob", &[], "reading a shared file")?.unchecked_into(),
        "reading a shared file",
    )
    .await?;
    let options = Object::new();
    let _ = Reflect::set(&options, &"type".into(), &kind.into());
    if let Some(modified) = modified {
        let _ = Reflect::set(&options, &"lastModified".into(), &(modified as f64).into());
    }
    let parts = Array::of1(&blob);
    File::new_with_blob_sequence_and_options(&parts, &name, options.unchecked_ref())
        .map_err(|error| JsError::new("reading a shared file", &error))
}
