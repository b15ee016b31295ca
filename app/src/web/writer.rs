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
//!
//! Every received message's buffer ends in the worker, and Chromium frees such buffers only
//! when its collector gets round to it: a receiver's renderer grew by 166 MB over 1 GiB and by
//! 348 MB over 4 GiB, rising all the way (a bare data channel's receiver, which keeps nothing,
//! grew by 110 and 282 MB). So the worker is replaced by a fresh one after every
//! [`TURNOVER`] bytes it was handed, which frees all it held at once: the open files are
//! closed in the old worker and opened again in the new one. Measured over 1 GiB, the
//! receiver then grew by 54–59 MB and stayed flat from the first quarter of the transfer to
//! the last, at the same speed and CPU; every 64 MiB it grew by 76–83 MB, every 16 MiB by
//! 33–35 MB, 1–2 % slower.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

use futures::channel::oneshot;
use js_sys::{Array, ArrayBuffer, Object, Reflect, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{Blob, BlobPropertyBag, FileSystemFileHandle, MessageEvent, Url, Worker};

use super::{Context, JsError, Listener, Notify, property};

/// The bytes a worker is handed before a fresh one takes over (see the module's notes).
pub const TURNOVER: u64 = 32 << 20;

/// The worker. Requests are `{id, op, …}`; every request is answered `{id, ok, message}`, in
/// order for each file, because a worker handles one message at a time and a write is
/// synchronous. Only `open` awaits, and nothing else is asked of a file before it is open. A
/// file is known by the id of the request that opened it, or by `file` when a new worker
/// opens it again; `release` closes every file, for the worker's successor to open.
const SCRIPT: &str = include_str!("writer.js");

type Pending = Rc<RefCell<HashMap<u32, oneshot::Sender<Result<(), Threw>>>>>;

/// The page's file-writing worker.
#[derive(Debug)]
pub struct Writer {
    thread: RefCell<Thread>,
    url: String,
    pending: Pending,
    next_id: Cell<u32>,
    /// The files open in the worker, by id, to open again in its successor.
    open: RefCell<HashMap<u32, FileSystemFileHandle>>,
    /// The bytes handed to the current worker.
    handed: Cell<u64>,
    /// A worker takes over after this many bytes.
    turnover: u64,
    /// How many workers were started.
    started: Cell<u32>,
    /// While a fresh worker takes over, other requests wait for `replaced`.
    replacing: Cell<bool>,
    replaced: Notify,
    /// Wakes a takeover waiting for the requests in flight to be answered.
    answered: Notify,
}

/// One worker, and the listeners that take its answers; dropping it ends the worker.
#[derive(Debug)]
struct Thread {
    worker: Worker,
    _answers: Listener,
    _failures: Listener,
}

impl Thread {
    /// Starts a worker from the script at `url`, its answers going to `pending`; `answered`
    /// hears of each.
    fn start(url: &str, pending: &Pending, answered: &Notify) -> Result<Self, JsError> {
        let worker = Worker::new(url).context("starting the file writer")?;
        let answers = Listener::new(&worker, "message", {
            let (pending, answered) = (pending.clone(), answered.clone());
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
                        Err(Threw {
                            name: property(&data, "name").as_string().unwrap_or_default(),
                            message: property(&data, "message").as_string().unwrap_or_default(),
                        })
                    };
                    let _ = waiter.send(answer);
                }
                answered.notify_all();
            }
        });
        // A worker that cannot run its script answers nothing: every waiting request fails
        // (its sender is dropped) rather than hanging.
        let failures = Listener::new(&worker, "error", {
            let (pending, answered) = (pending.clone(), answered.clone());
            move |_| {
                pending.borrow_mut().clear();
                answered.notify_all();
            }
        });
        Ok(Self {
            worker,
            _answers: answers,
            _failures: failures,
        })
    }
}

impl Drop for Thread {
    fn drop(&mut self) {
        self.worker.terminate();
    }
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
        Self::with_turnover(TURNOVER)
    }

    /// Starts the worker, to be replaced after every `turnover` bytes (tests use less than
    /// [`TURNOVER`]).
    ///
    /// # Errors
    /// Where the browser has no workers or refuses to start one.
    pub fn with_turnover(turnover: u64) -> Result<Self, JsError> {
        let options = BlobPropertyBag::new();
        options.set_type("text/javascript");
        let script = Blob::new_with_str_sequence_and_options(
            &Array::of1(&JsValue::from_str(SCRIPT)),
            &options,
        )
        .context("preparing the file writer")?;
        let url = Url::create_object_url_with_blob(&script).context("preparing the file writer")?;
        let pending = Pending::default();
        let answered = Notify::default();
        let thread = Thread::start(&url, &pending, &answered)?;
        Ok(Self {
            thread: RefCell::new(thread),
            url,
            pending,
            next_id: Cell::new(0),
            open: RefCell::new(HashMap::new()),
            handed: Cell::new(0),
            turnover,
            started: Cell::new(1),
            replacing: Cell::new(false),
            replaced: Notify::default(),
            answered,
        })
    }

    /// How many workers this writer started: one, and one more each time a fresh one took
    /// over.
    pub fn workers_started(&self) -> u32 {
        self.started.get()
    }

    /// Opens `handle` for writing, through a sync access handle in the worker.
    ///
    /// # Errors
    /// Where the browser has no sync access handles, or the file is open elsewhere.
    pub async fn open(&self, handle: &FileSystemFileHandle) -> Result<WriterFile, JsError> {
        const CONTEXT: &str = "opening the file for writing";
        self.until_taken_over().await;
        let request = self.request("open", None);
        set(&request, "handle", handle);
        let (id, answered) = self.post_now(&request, None, CONTEXT)?;
        // Known before the answer comes: a takeover meanwhile opens it in the new worker too.
        self.open.borrow_mut().insert(id, handle.clone());
        if let Err(error) = answer(answered, CONTEXT).await {
            self.open.borrow_mut().remove(&id);
            return Err(error);
        }
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
        if self.handed.get() >= self.turnover && !self.replacing.get() {
            self.replace().await?;
        }
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
        self.open.borrow_mut().remove(&file.0);
        let request = self.request("close", Some(file));
        self.send(&request, None, "saving the received file")
            .await
            .map(drop)
    }

    /// Closes the file without flushing, to delete it.
    pub async fn abort(&self, file: WriterFile) {
        self.open.borrow_mut().remove(&file.0);
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

    /// A fresh worker takes over: once the requests in flight are answered, the current one
    /// closes every open file and ends, and the new one opens them again. Other requests wait
    /// meanwhile.
    async fn replace(&self) -> Result<(), JsError> {
        self.replacing.set(true);
        while !self.pending.borrow().is_empty() {
            let _ = self.answered.notified().await;
        }
        let replaced = self.hand_over().await;
        self.replacing.set(false);
        self.replaced.notify_all();
        replaced
    }

    /// Closes the open files in the current worker, ends it, and opens them in a new one.
    async fn hand_over(&self) -> Result<(), JsError> {
        let release = self.request("release", None);
        self.post(&release, None, "handing the files to a new writer")
            .await?;
        let fresh = Thread::start(&self.url, &self.pending, &self.answered)?;
        // Ends the old worker, and with it every buffer it still held.
        drop(self.thread.replace(fresh));
        self.started.set(self.started.get() + 1);
        self.handed.set(0);
        let open: Vec<(u32, FileSystemFileHandle)> = self
            .open
            .borrow()
            .iter()
            .map(|(id, handle)| (*id, handle.clone()))
            .collect();
        for (id, handle) in open {
            let request = self.request("open", Some(WriterFile(id)));
            set(&request, "handle", &handle);
            self.post(&request, None, "opening the file for writing again")
                .await?;
        }
        Ok(())
    }

    /// Waits while a fresh worker takes over.
    async fn until_taken_over(&self) {
        while self.replacing.get() {
            let _ = self.replaced.notified().await;
        }
    }

    /// [`Self::post`], once no fresh worker is taking over.
    async fn send(
        &self,
        request: &Object,
        buffers: Option<&Array>,
        context: &'static str,
    ) -> Result<u32, JsError> {
        self.until_taken_over().await;
        self.post(request, buffers, context).await
    }

    /// Posts `request` (see [`Self::post_now`]) and waits for its answer; returns the id.
    async fn post(
        &self,
        request: &Object,
        buffers: Option<&Array>,
        context: &'static str,
    ) -> Result<u32, JsError> {
        let (id, answered) = self.post_now(request, buffers, context)?;
        answer(answered, context).await.map(|()| id)
    }

    /// Posts `request` under a new id, transferring `buffers` if given; returns the id and
    /// where its answer will come.
    fn post_now(
        &self,
        request: &Object,
        buffers: Option<&Array>,
        context: &'static str,
    ) -> Result<(u32, Answer), JsError> {
        let id = self.next_id.get();
        self.next_id.set(id.wrapping_add(1));
        set(request, "id", &JsValue::from(id));
        let (answer, answered) = oneshot::channel();
        self.pending.borrow_mut().insert(id, answer);
        if let Some(buffers) = buffers {
            // Counted as they reach a worker: bytes that waited for a takeover go to the new one.
            let bytes: u64 = buffers
                .iter()
                .filter_map(|buffer| buffer.dyn_into::<ArrayBuffer>().ok())
                .map(|buffer| u64::from(buffer.byte_length()))
                .sum();
            self.handed.set(self.handed.get() + bytes);
        }
        let posted = match buffers {
            Some(buffers) => self
                .thread
                .borrow()
                .worker
                .post_message_with_transfer(request, buffers),
            None => self.thread.borrow().worker.post_message(request),
        };
        if let Err(error) = posted {
            self.pending.borrow_mut().remove(&id);
            return Err(JsError::new(context, &error));
        }
        Ok((id, answered))
    }
}

/// Where a request's answer comes: what the worker threw, if it failed.
type Answer = oneshot::Receiver<Result<(), Threw>>;

/// What the worker threw doing a request: the error's name (a `DOMException`'s, such as
/// `QuotaExceededError` when the disk is full) and its message.
#[derive(Debug)]
struct Threw {
    name: String,
    message: String,
}

/// The worker's answer to a request, as a result.
async fn answer(answered: Answer, context: &'static str) -> Result<(), JsError> {
    match answered.await {
        Ok(Ok(())) => Ok(()),
        // Said as the browser's own errors are (see `JsError::new`), so an abort reads as one.
        Ok(Err(Threw { name, message })) => {
            Err(JsError::plain(context, format!("{message} ({name})")))
        }
        Err(_) => Err(JsError::plain(context, "the file writer stopped")),
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        let _ = Url::revoke_object_url(&self.url);
    }
}

/// Sets `object[key]`; setting a property of a plain object cannot fail.
fn set(object: &Object, key: &str, value: &JsValue) {
    let _ = Reflect::set(object, &JsValue::from_str(key), value);
}
