//! Local files: reading a chosen file one slice at a time, and handing a received one to the
//! browser as a download.

use js_sys::Uint8Array;
use wasm_bindgen::JsCast;
use web_sys::{Blob, File, HtmlAnchorElement, Url};

use super::{Context, JsError, wait};

/// Reads bytes `start..end` of `blob` (`Blob.slice` + `arrayBuffer()`), so that only one
/// slice of a file is ever in memory.
pub async fn read_slice(blob: &Blob, start: u64, end: u64) -> Result<Uint8Array, JsError> {
    // Blob offsets are doubles; every file size a browser handles is exact in one.
    #[allow(clippy::cast_precision_loss)]
    let slice = blob
        .slice_with_f64_and_f64(start as f64, end as f64)
        .context("reading the file")?;
    let buffer = wait(slice.array_buffer(), "reading the file").await?;
    Ok(Uint8Array::new(&buffer))
}

/// A file's name, size and type for an offer.
pub fn describe(file: &File) -> ferry_protocol::FileMeta {
    // `File.size` is a whole number of bytes held in a double.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let size = file.size() as u64;
    ferry_protocol::FileMeta {
        name: crate::core::filename::sanitize(&file.name()),
        size,
        mime: file.type_(),
    }
}

/// A `blob:` URL for a received file; revoke it with [`revoke`] when its row goes.
pub fn object_url(blob: &Blob) -> Result<String, JsError> {
    Url::create_object_url_with_blob(blob).context("preparing the download")
}

/// Frees a URL made by [`object_url`].
pub fn revoke(url: &str) {
    let _ = Url::revoke_object_url(url);
}

/// Offers `url` as a download named `name`: the browser's download settings decide where it
/// lands (or whether to ask).
pub fn download(url: &str, name: &str) -> Result<(), JsError> {
    let document = web_sys::window()
        .and_then(|window| window.document())
        .ok_or_else(|| JsError::plain("starting the download", "no document"))?;
    let anchor: HtmlAnchorElement = document
        .create_element("a")
        .context("starting the download")?
        .unchecked_into();
    anchor.set_href(url);
    anchor.set_download(name);
    anchor.set_hidden(true);
    let body = document
        .body()
        .ok_or_else(|| JsError::plain("starting the download", "no body"))?;
    body.append_child(&anchor)
        .context("starting the download")?;
    anchor.click();
    anchor.remove();
    Ok(())
}
