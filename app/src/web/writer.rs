//! A dedicated worker that writes received files into the origin-private file system through
//! synchronous access handles.
//!
//! Measured in Chromium: a `FileSystemWritableFileStream` sends every write to the browser
//! process, which writes a swap file and moves it into place on close, so the browser process
//! spent as much CPU as the page's own receiving; a sync access handle writes to the file from
//! the worker's own thread. The page stays free for the network while the worker writes, and
//! one worker serves every file of the page. Sync access handles exist only in dedicated
//! workers, hence the worker; it is a few lines of JavaScript started from a `Blob`, so the app
//! stays one wasm file and the worker needs no second build.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

use futures::channel::oneshot;
use js_sys::{Array, Object, Reflect, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{Blob, BlobPropertyBag, FileSystemFileHandle, MessageEvent, Url, Worker};

use super::{Context, JsError, Listener, property};

/// The worker. Requests are `{id, op, …}`; every request is answered `{id, ok, message}`, in
/// order for each file, because a worker handles one message at a time and a write is
/// synchronous. Only `open` awaits, and nothing else is asked of a file before it is open.
const SCRIPT: &str = r"
const files = new Map();
onmessage = async (event) => {
  const { id, op, file } = event.data;
  try {
    if (op === 'open') {
      files.set(id, await event.data.handle.createSyncAccessHandle());
    } else {
      const access = files.get(file);
      if (op === 'write') {
        for (const { bytes, at } of event.data.parts) {
          let done = 0;
          while (done < bytes.length) {
            const wrote = access.write(bytes.subarray(done), { at: at + done });
            if (wrote === 0) throw new Error('the file takes no more bytes');
            done += wrote;
          }
        }
      } else {
        if (op === 'close') access.flush();
        access.close();
        files.delete(file);
      }
    }
    postMessage({ id, ok: true });
  } catch (error) {
    postMessage({ id, ok: false, message: `${error.message} (${error.name})` });
  }
};
";

type Pending = Rc<RefCell<HashMap<u32, oneshot::Sender<Result<(), String>>>>>;

/// The page's file-writing worker.
#[derive(Debug)]
pub struct Writer {
    worker: Worker,
    url: String,
    pending: Pending,
    next_id: Cell<u32>,
    _answers: Listener,
    _failures: Listener,
}

/// A file open for writing in the worker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WriterFile(u32);

impl Writer {
    /// Starts the worker.
    ///
    /// # Errors
    /// Where the browser has no workers or refuses to start one.
    pub fn start() -> Result<Self, JsError> {
        let options = BlobPropertyBag::new();
        options.set_type("text/javascript");
        let script = Blob::new_with_str_sequence_and_options(
            &Array::of1(&JsValue::from_str(SCRIPT)),
            &options,
        )
        .context("preparing the file writer")?;
        let url = Url::create_object_url_with_blob(&script).context("preparing the file writer")?;
        let worker = Worker::new(&url).context("starting the file writer")?;
        let pending = Pending::default();
        let answers = Listener::new(&worker, "message", {
            let pending = pending.clone();
            move |event| {
                let data = event.unchecked_into::<MessageEvent>().data();
                let Some(id) = property(&data, "id").as_f64() else {
                    return;
                };
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                let waiter = pending.borrow_mut().remove(&(id as u32));
                if let Some(waiter) = waiter {
                    let answer = if property(&data, "ok").is_truthy() {
                        Ok(())
                    } else {
                        Err(property(&data, "message").as_string().unwrap_or_default())
                    };
                    let _ = waiter.send(answer);
                }
            }
        });
        // A worker that cannot run its script answers nothing: every waiting request fails
        // (its sender is dropped) rather than hanging.
        let failures = Listener::new(&worker, "error", {
            let pending = pending.clone();
            move |_| pending.borrow_mut().clear()
        });
        Ok(Self {
            worker,
            url,
            pending,
            next_id: Cell::new(0),
            _answers: answers,
            _failures: failures,
        })
    }

    /// Opens `handle` for writing, through a sync access handle in the worker.
    ///
    /// # Errors
    /// Where the browser has no sync access handles, or the file is open elsewhere.
    pub async fn open(&self, handle: &FileSystemFileHandle) -> Result<WriterFile, JsError> {
        let request = self.request("open", None);
        set(&request, "handle", handle);
        let id = self
            .send(&request, None, "opening the file for writing")
            .await?;
        Ok(WriterFile(id))
    }

    /// Writes each of `parts`' bytes at its position, in one request. The parts' buffers are
    /// handed to the worker rather than copied, so they are unusable here afterwards; each
    /// part must have a buffer of its own (as each received message has).
    ///
    /// # Errors
    /// When the disk is full or the file was closed.
    pub async fn write(
        &self,
        file: WriterFile,
        parts: &[(u64, Uint8Array)],
    ) -> Result<(), JsError> {
        let request = self.request("write", Some(file));
        let list = Array::new();
        let buffers = Array::new();
        for (position, bytes) in parts {
            let part = Object::new();
            set(&part, "bytes", bytes);
            // File offsets are doubles to the browser; every size it handles is exact.
            #[allow(clippy::cast_precision_loss)]
            set(&part, "at", &JsValue::from_f64(*position as f64));
            list.push(&part);
            buffers.push(&bytes.buffer());
        }
        set(&request, "parts", &list);
        self.send(&request, Some(&buffers), "writing the received file")
            .await
            .map(drop)
    }

    /// Flushes and closes the file, so the page can read it.
    ///
    /// # Errors
    /// When the browser cannot flush the file.
    pub async fn close(&self, file: WriterFile) -> Result<(), JsError> {
        let request = self.request("close", Some(file));
        self.send(&request, None, "saving the received file")
            .await
            .map(drop)
    }

    /// Closes the file without flushing, to delete it.
    pub async fn abort(&self, file: WriterFile) {
        let request = self.request("abort", Some(file));
        let _ = self.send(&request, None, "closing the received file").await;
    }

    fn request(&self, op: &str, file: Option<WriterFile>) -> Object {
        let request = Object::new();
        set(&request, "op", &JsValue::from_str(op));
        if let Some(WriterFile(id)) = file {
            set(&request, "file", &JsValue::from(id));
        }
        request
    }

    /// Posts `request` under a new id (transferring `buffers`, if given) and waits for its
    /// answer; returns the id.
    async fn send(
        &self,
        request: &Object,
        buffers: Option<&Array>,
        context: &'static str,
    ) -> Result<u32, JsError> {
        let id = self.next_id.get();
        self.next_id.set(id.wrapping_add(1));
        set(request, "id", &JsValue::from(id));
        let (answer, answered) = oneshot::channel();
        self.pending.borrow_mut().insert(id, answer);
        let posted = match buffers {
            Some(buffers) => self.worker.post_message_with_transfer(request, buffers),
            None => self.worker.post_message(request),
        };
        if let Err(error) = posted {
            self.pending.borrow_mut().remove(&id);
            return Err(JsError::new(context, &error));
        }
        match answered.await {
            Ok(Ok(())) => Ok(id),
            Ok(Err(message)) => Err(JsError::plain(context, message)),
            Err(_) => Err(JsError::plain(context, "the file writer stopped")),
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.worker.terminate();
        let _ = Url::revoke_object_url(&self.url);
    }
}

/// Sets `object[key]`; setting a property of a plain object cannot fail.
fn set(object: &Object, key: &str, value: &JsValue) {
    let _ = Reflect::set(object, &JsValue::from_str(key), value);
}
