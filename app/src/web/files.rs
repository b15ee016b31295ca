//! Local files: reading a chosen file one slice at a time, and handing a received one to the
//! browser as a download.

use js_sys::Uint8Array;
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{Blob, File, HtmlAnchorElement, Url};

use super::{Context, JsError, wait};

/// Reads a file one slice at a time into one buffer, so that reading allocates nothing per
/// slice: the renderer otherwise took a fresh buffer (and its page faults, and its garbage)
/// for every block it sent.
///
/// The bytes come through a `Blob.stream()` reader in "bring your own buffer" mode, which
/// fills the buffer it is given; where the browser has no such reader, through
/// `Blob.arrayBuffer()` into a fresh buffer as before.
#[derive(Debug, Default)]
pub struct SliceReader {
    /// The buffer to fill next; each read hands it over and gets it back under a new name.
    buffer: Option<js_sys::ArrayBuffer>,
    /// [`READ_INTO`], compiled on the first read.
    read_into: Option<js_sys::Function>,
}

/// Fills `buffer` (a transferable `ArrayBuffer` of at least `end - start` bytes) with bytes
/// `start..end` of `blob`; resolves to a view of them, whose buffer is the one to pass next
/// time, or to `null` where the browser has no byte-stream reader for blobs; rejects with
/// the message it is given when the blob ends first.
const READ_INTO: &str = "
const [blob, start, end, buffer, SHORTER] = arguments;
let reader;
try {
  reader = blob.slice(start, end).stream().getReader({ mode: 'byob' });
} catch (error) {
  return Promise.resolve(null);
}
const wanted = end - start;
return (async () => {
  let filled = 0;
  let backing = buffer;
  while (filled < wanted) {
    const { value, done } = await reader.read(new Uint8Array(backing, filled, wanted - filled));
    if (done) throw new Error(SHORTER);
    filled += value.byteLength;
    backing = value.buffer;
  }
  reader.releaseLock();
  return new Uint8Array(backing, 0, wanted);
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
        let buffer = match self.buffer.take() {
            Some(buffer) if buffer.byte_length() >= len => buffer,
            _ => js_sys::ArrayBuffer::new(len),
        };
        let read_into = self
            .read_into
            .get_or_insert_with(|| js_sys::Function::new_no_args(READ_INTO));
        let args = js_sys::Array::of5(blob, &from.into(), &to.into(), &buffer, &SHORTER.into());
        let promise = js_sys::Reflect::apply(read_into, &JsValue::UNDEFINED, &args)
            .context("reading the file")?;
        let read = wait(promise.unchecked_into(), "reading the file").await?;
        if read.is_null() {
            let slice = blob
                .slice_with_f64_and_f64(from, to)
                .context("reading the file")?;
            let fresh = Uint8Array::new(&wait(slice.array_buffer(), "reading the file").await?);
            if fresh.length() < len {
                return Err(JsError::plain("reading the file", SHORTER));
            }
            return Ok(fresh);
        }
        let view: Uint8Array = read.unchecked_into();
        self.buffer = Some(view.buffer());
        Ok(view)
    }
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
