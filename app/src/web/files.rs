//! Local files: reading a chosen file one slice at a time, and handing a received one to the
//! browser as a download.

use js_sys::Uint8Array;
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{Blob, File, HtmlAnchorElement, Url};

use super::{Context, JsError, wait};

/// Reads a file one slice at a time into one buffer, so that reading allocates nothing per
/// slice: the renderer otherwise took a fresh buffer (and its page faults, and its garbage)
/// for every block it sent, and its memory grew by some 140 MB over a 1 GiB file.
///
/// The bytes come through a `Blob.stream()` reader in "bring your own buffer" mode, which
/// fills the buffer it is given. One reader serves consecutive slices of a file, as blocks are
/// sent in order; a slice elsewhere (a block sent again, another file) starts a new one, since
/// each costs the browser a stream of its own. Where the browser has no such reader, bytes
/// come through `Blob.arrayBuffer()` into a fresh buffer.
#[derive(Debug, Default)]
pub struct SliceReader {
    /// What [`READ_INTO`] keeps between reads: the blob and reader in use, the position the
    /// reader is at, and the buffer to fill next.
    state: Option<js_sys::Object>,
    /// [`READ_INTO`], compiled on the first read.
    read_into: Option<js_sys::Function>,
}

/// Reads bytes `start..end` of `blob` into `state.buffer` (each read hands the buffer over and
/// gets it back under a new name); resolves to a view of them, or to `null` where the browser
/// has no byte-stream reader for blobs; rejects with the message it is given when the blob
/// ends first.
const READ_INTO: &str = "
const [state, blob, start, end, SHORTER] = arguments;
const wanted = end - start;
if (state.blob !== blob || state.position !== start) {
  state.reader?.cancel().catch(() => {});
  state.blob = null;
  try {
    state.reader = blob.slice(start).stream().getReader({ mode: 'byob' });
  } catch (error) {
    return Promise.resolve(null);
  }
  state.blob = blob;
  state.position = start;
}
if (!state.buffer || state.buffer.byteLength < wanted) state.buffer = new ArrayBuffer(wanted);
return (async () => {
  let filled = 0;
  try {
    while (filled < wanted) {
      const { value, done } = await state.reader.read(
        new Uint8Array(state.buffer, filled, wanted - filled));
      if (done) throw new Error(SHORTER);
      filled += value.byteLength;
      state.buffer = value.buffer;
    }
  } catch (error) {
    state.blob = null;
    state.buffer = null;
    throw error;
  }
  state.position = end;
  return new Uint8Array(state.buffer, 0, wanted);
})();
";

/// What a read says when the file has fewer bytes than when it was offered.
const SHORTER: &str = "the file is shorter than when it was offered";

impl SliceReader {
    /// Reads bytes `start..end` of `blob`. The view is valid until the next read.
    pub async fn read(&mut self, blob: &Blob, start: u64, end: u64) -> Result<Uint8Array, JsError> {
        // Blob offsets are doubles; every file size a browser handles is exact in one.
        #[allow(clippy::cast_precision_loss)]
        let (from, to) = (start as f64, end as f64);
        let len = u32::try_from(end - start).unwrap_or(u32::MAX);
        // A small file read whole costs the browser less in one `arrayBuffer()` than in a
        // stream of its own: a folder of thousands of photos is thousands of such reads.
        #[allow(clippy::cast_precision_loss)]
        let whole_small = start == 0 && end as f64 == blob.size() && len <= SMALL;
        if whole_small {
            return fresh(blob, from, to, len).await;
        }
        let read_into = self
            .read_into
            .get_or_insert_with(|| js_sys::Function::new_no_args(READ_INTO));
        let state = self.state.get_or_insert_with(js_sys::Object::new);
        let args = js_sys::Array::of5(state, blob, &from.into(), &to.into(), &SHORTER.into());
        let promise = js_sys::Reflect::apply(read_into, &JsValue::UNDEFINED, &args)
            .context("reading the file")?;
        let read = wait(promise.unchecked_into(), "reading the file").await?;
        if !read.is_null() {
            return Ok(read.unchecked_into());
        }
        fresh(blob, from, to, len).await
    }
}

/// The largest file read whole into a fresh buffer rather than through the reused one.
const SMALL: u32 = 256 * 1024;

/// Reads bytes `from..to` (`len` of them) of `blob` into a fresh buffer.
async fn fresh(blob: &Blob, from: f64, to: f64, len: u32) -> Result<Uint8Array, JsError> {
    let slice = blob
        .slice_with_f64_and_f64(from, to)
        .context("reading the file")?;
    let fresh = Uint8Array::new(&wait(slice.array_buffer(), "reading the file").await?);
    if fresh.length() < len {
        return Err(JsError::plain("reading the file", SHORTER));
    }
    Ok(fresh)
}

/// A file's name, size and type for an offer.
pub fn describe(file: &File) -> ferry_protocol::FileMeta {
    // `File.size` is a whole number of bytes held in a double.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let size = file.size() as u64;
    ferry_protocol::FileMeta {
        name: crate::core::filename::sanitize(&file.name()),
        path: String::new(),
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
