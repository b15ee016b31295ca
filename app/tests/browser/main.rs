//! Headless-Chromium tests of the web glue through the code the app runs: two engines in one
//! page, their signaling wired straight to each other, move real files over real
//! `RTCPeerConnection`s; the OPFS sink writes and reads back a file.
//!
//! Run with `wasm-bindgen-test-runner` (see `webdriver.json` for the browser flags that let
//! Chromium gather ICE candidates on loopback only).

#![cfg(target_arch = "wasm32")]

use std::cell::RefCell;
use std::rc::Rc;

use ferry_app::core::blocks::{block_digest, file_digest};
use ferry_app::core::route::Route;
use ferry_app::core::rows::FileRow;
use ferry_app::core::stripes::Lanes;
use ferry_app::core::transfer::Status;
use ferry_app::web::Notify;
use ferry_app::web::channel::{Channel, ChannelEvent};
use ferry_app::web::engine::{Answer, Engine, EngineConfig, EngineEvent};
use ferry_app::web::files::SliceReader;
use ferry_app::web::peer::{IcePolicy, LinkEvent, PeerLink};
use ferry_app::web::sink::{Finished, Opfs, Picked, Sink};
use ferry_app::web::sleep;
use ferry_app::web::writer::Writer;
use ferry_protocol::chunk::ChunkHeader;
use ferry_protocol::{
    BLOCK_SIZE, DigestHex, FileMeta, HeldFile, PeerId, TRANSFER_CHANNEL_LABEL, TRANSFER_VERSION,
    TransferId, TransferMessage,
};
use js_sys::Uint8Array;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};
use web_sys::{
    Blob, File, FileSystemDirectoryHandle, FileSystemFileHandle, FileSystemGetDirectoryOptions,
    FileSystemGetFileOptions,
};

wasm_bindgen_test_configure!(run_in_browser);

mod folders;

/// One side of a test: an engine and everything it reported.
struct Side {
    engine: Engine,
    events: Rc<RefCell<Vec<EngineEvent>>>,
}

impl Side {
    /// The latest row of every file of `id`, in file order.
    fn rows(&self, id: &TransferId) -> Vec<FileRow> {
        self.engine.rows(id)
    }

    fn statuses(&self, id: &TransferId) -> Vec<String> {
        self.rows(id)
            .iter()
            .map(|row| row.status.to_string())
            .collect()
    }

    /// The first offer this side was shown.
    fn offer(&self) -> Option<TransferId> {
        self.events.borrow().iter().find_map(|event| match event {
            EngineEvent::Offer(offer) => Some(offer.id.clone()),
            _ => None,
        })
    }
}

fn peer(byte: u8) -> PeerId {
    PeerId::from_random_bytes([byte; 16])
}

/// Two engines, "ana" (id 0x0a…) and "bo" (id 0x0b…), whose signals go straight to each
/// other.
fn pair(config: EngineConfig) -> (Side, Side) {
    let slots: [Rc<RefCell<Option<Engine>>>; 2] = Default::default();
    let ids = [peer(0x0a), peer(0x0b)];
    let nicks = ["ana", "bo"];
    let mut sides = Vec::new();
    for me in 0..2 {
        let other = Rc::clone(&slots[1 - me]);
        let (my_id, my_nick) = (ids[me].clone(), nicks[me]);
        let out = Rc::new(move |_to: PeerId, payload, lane| {
            if let Some(engine) = other.borrow().as_ref() {
                engine.handle_signal(my_id.clone(), my_nick, payload, lane);
            }
        });
        let events = Rc::new(RefCell::new(Vec::new()));
        let sink = Rc::clone(&events);
        let engine = Engine::new(
            config.clone(),
            out,
            Rc::new(move |event| sink.borrow_mut().push(event)),
        );
        engine.set_identity(ids[me].clone(), my_nick, Vec::new(), false);
        engine.set_nick(&ids[1 - me], nicks[1 - me]);
        *slots[me].borrow_mut() = Some(engine.clone());
        sides.push(Side { engine, events });
    }
    let bo = sides.pop().unwrap();
    let ana = sides.pop().unwrap();
    (ana, bo)
}

/// The engines' settings in these tests: received files are kept for the test to read, not
/// downloaded.
fn quiet() -> EngineConfig {
    EngineConfig {
        auto_download: false,
        ..EngineConfig::default()
    }
}

/// Polls `condition` every 20 ms for up to `seconds`.
async fn until(seconds: u32, what: &str, condition: impl Fn() -> bool) {
    for _ in 0..seconds * 50 {
        if condition() {
            return;
        }
        sleep(20).await;
    }
    panic!("timed out waiting for {what}");
}

/// Deterministic pseudo-random bytes (xorshift).
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

fn file(name: &str, bytes: &[u8]) -> File {
    let parts = js_sys::Array::of1(&Uint8Array::from(bytes));
    File::new_with_u8_array_sequence(&parts, name).unwrap()
}

async fn bytes_of(blob: &Blob) -> Vec<u8> {
    let buffer = JsFuture::from(blob.array_buffer()).await.unwrap();
    Uint8Array::new(&buffer).to_vec()
}

#[wasm_bindgen_test]
async fn the_slice_reader_reads_any_slice_into_its_one_buffer() {
    let content = noise(3 * 1024 * 1024 + 11, 3);
    let source = file("source.bin", &content);
    let mut reader = SliceReader::default();
    // Out of order and of different lengths, as blocks sent again are.
    for (start, end) in [
        (2 << 20, content.len()),
        (0, 1 << 20),
        (1 << 20, 2 << 20),
        (5, 6),
    ] {
        let read = reader
            .read(&source, start as u64, end as u64)
            .await
            .unwrap();
        assert!(read.to_vec() == content[start..end], "bytes {start}..{end}");
    }
    // A file that shrank since it was offered is an error that says so, not a short block.
    let len = content.len() as u64;
    let error = reader.read(&source, len - 3, len + 10).await.unwrap_err();
    assert!(error.message.contains("shorter"), "{error}");
}

#[wasm_bindgen_test]
async fn a_multi_megabyte_file_crosses_with_backpressure_and_arrives_intact() {
    // A high-water mark below one chunk makes every send after the first wait for the
    // queue to drain, however fast the sender reads (a debug build reads slowly).
    let config = EngineConfig {
        high_water: 64 * 1024,
        ..quiet()
    };
    let (ana, bo) = pair(config);
    let big = noise(8 * 1024 * 1024 + 123, 7);
    let files = vec![
        file("big.bin", &big),
        file("empty.txt", b""),
        file("one.txt", b"x"),
    ];
    let id = ana.engine.send_files(&peer(0x0b), files).unwrap();
    assert_eq!(ana.statuses(&id), vec!["Waiting for bo"; 3]);

    until(20, "the offer", || bo.offer().is_some()).await;
    assert_eq!(bo.offer(), Some(id.clone()));
    bo.engine.answer(&id, Answer::Download);

    until(60, "completion", || {
        ana.statuses(&id) == ["Complete"; 3] && bo.statuses(&id) == ["Complete"; 3]
    })
    .await;
    for (index, expected) in [big.as_slice(), b"", b"x"].into_iter().enumerate() {
        let blob = bo
            .engine
            .received_file(&id, index)
            .expect("kept for saving");
        assert!(bytes_of(&blob).await == expected, "file {index} differs");
    }
    let rows = bo.rows(&id);
    assert_eq!(rows[0].done, big.len() as u64);
    assert_eq!(rows[0].name, "big.bin");
    assert!(rows.iter().all(|row| row.can_save));
    // Two connections in one page find each other directly, and both rows say so, read from
    // the browser's own statistics.
    assert!(rows.iter().all(|row| row.route == Some(Route::Direct)));
    assert!(
        ana.rows(&id)
            .iter()
            .all(|row| row.route == Some(Route::Direct))
    );
    assert!(
        ana.engine.backpressure_waits() > 0,
        "the sender never waited for the channel to drain"
    );

    // The link is reused for a second transfer, this time the other way round.
    let back = bo
        .engine
        .send_files(&peer(0x0a), vec![file("reply.txt", b"thanks")])
        .unwrap();
    until(20, "the second offer", || ana.offer().is_some()).await;
    ana.engine.answer(&back, Answer::Download);
    until(20, "the reply", || ana.statuses(&back) == ["Complete"]).await;
    let reply = ana.engine.received_file(&back, 0).unwrap();
    assert_eq!(bytes_of(&reply).await, b"thanks");
}

#[wasm_bindgen_test]
async fn the_sender_never_runs_more_than_a_window_ahead_of_the_receivers_disk() {
    const WINDOW: u64 = 1024 * 1024;
    let (ana, bo) = pair(EngineConfig {
        window: WINDOW,
        ..quiet()
    });
    let big = noise(8 * 1024 * 1024, 13);
    let id = ana
        .engine
        .send_files(&peer(0x0b), vec![file("big.bin", &big)])
        .unwrap();
    until(20, "the offer", || bo.offer().is_some()).await;
    bo.engine.answer(&id, Answer::Download);
    // Honest progress: the sender's row never shows more than the receiver has.
    for _ in 0..60 * 200 {
        let sent = ana.rows(&id)[0].done;
        let received = bo.rows(&id)[0].done;
        assert!(
            sent <= received,
            "the sender shows {sent} bytes, the receiver has {received}"
        );
        if ana.statuses(&id) == ["Complete"] && bo.statuses(&id) == ["Complete"] {
            break;
        }
        sleep(5).await;
    }
    assert_eq!(ana.statuses(&id), ["Complete"]);
    assert_eq!(ana.rows(&id)[0].done, big.len() as u64);
    let blob = bo.engine.received_file(&id, 0).unwrap();
    assert!(bytes_of(&blob).await == big, "the file differs");
    let most = ana.engine.most_in_flight();
    assert!(
        most <= WINDOW,
        "{most} bytes were in flight with a window of {WINDOW}"
    );
    // The window was what held the sender back, not a slow sender.
    assert!(
        most > WINDOW / 2,
        "only {most} bytes were ever in flight: the window was never tested"
    );
}

#[wasm_bindgen_test]
async fn both_sides_offering_at_once_still_connect() {
    // Glare: each engine creates its peer connection and its offer before hearing from the
    // other; perfect negotiation must settle on one connection that carries both transfers.
    let (ana, bo) = pair(quiet());
    let to_bo = ana
        .engine
        .send_files(&peer(0x0b), vec![file("for-bo.txt", b"hello bo")])
        .unwrap();
    let to_ana = bo
        .engine
        .send_files(&peer(0x0a), vec![file("for-ana.txt", b"hello ana")])
        .unwrap();
    until(20, "both offers", || {
        ana.offer().is_some() && bo.offer().is_some()
    })
    .await;
    ana.engine.answer(&to_ana, Answer::Download);
    bo.engine.answer(&to_bo, Answer::Download);
    until(20, "both transfers", || {
        ana.statuses(&to_bo) == ["Complete"] && bo.statuses(&to_ana) == ["Complete"]
    })
    .await;
    let got = bo.engine.received_file(&to_bo, 0).unwrap();
    assert_eq!(bytes_of(&got).await, b"hello bo");
    let got = ana.engine.received_file(&to_ana, 0).unwrap();
    assert_eq!(bytes_of(&got).await, b"hello ana");
}

#[wasm_bindgen_test]
async fn decline_and_cancel_reach_both_sides() {
    let (ana, bo) = pair(quiet());
    let declined = ana
        .engine
        .send_files(&peer(0x0b), vec![file("no.txt", b"no")])
        .unwrap();
    until(20, "the offer", || bo.offer().is_some()).await;
    bo.engine.answer(&declined, Answer::Decline);
    until(20, "the decline", || {
        ana.statuses(&declined) == ["Declined"]
    })
    .await;
    assert_eq!(bo.statuses(&declined), ["Declined"]);

    // A file large enough to still be moving when the receiver cancels.
    let big = noise(64 * 1024 * 1024, 3);
    let cancelled = ana
        .engine
        .send_files(&peer(0x0b), vec![file("big.bin", &big)])
        .unwrap();
    until(20, "the second offer", || {
        bo.events
            .borrow()
            .iter()
            .any(|event| matches!(event, EngineEvent::Offer(offer) if offer.id == cancelled))
    })
    .await;
    bo.engine.answer(&cancelled, Answer::Download);
    until(20, "bytes to flow", || {
        bo.rows(&cancelled).first().is_some_and(|row| row.done > 0)
    })
    .await;
    bo.engine.cancel(&cancelled);
    assert_eq!(bo.statuses(&cancelled), ["Cancelled"]);
    until(10, "the sender to see the cancel", || {
        ana.statuses(&cancelled) == ["Cancelled"]
    })
    .await;
    assert!(bo.engine.received_file(&cancelled, 0).is_none());
}

#[wasm_bindgen_test]
async fn a_dismissed_row_stays_gone_while_later_files_move() {
    let (ana, bo) = pair(EngineConfig {
        high_water: 64 * 1024,
        ..quiet()
    });
    let big = noise(16 * 1024 * 1024, 5);
    let id = ana
        .engine
        .send_files(
            &peer(0x0b),
            vec![file("small.txt", b"small"), file("big.bin", &big)],
        )
        .unwrap();
    until(20, "the offer", || bo.offer().is_some()).await;
    bo.engine.answer(&id, Answer::Download);
    until(20, "the first file", || {
        bo.rows(&id)
            .first()
            .is_some_and(|row| row.status == Status::Complete)
    })
    .await;
    assert_eq!(
        bo.statuses(&id)[1],
        "Receiving",
        "the second file is too quick"
    );
    bo.engine.dismiss(&id, 0);
    let removed_at = bo.events.borrow().len();
    until(20, "the second file", || {
        bo.rows(&id)
            .last()
            .is_some_and(|row| row.status == Status::Complete)
    })
    .await;
    assert_eq!(bo.statuses(&id), ["Complete"]);
    let first_key = format!("{id}-0");
    let revived = bo.events.borrow()[removed_at..].iter().any(|event| {
        matches!(event, EngineEvent::Rows(rows) if rows.iter().any(|row| row.key == first_key))
    });
    assert!(!revived, "the dismissed row came back");
}

/// Installs `watch_webrtc.js` in this page: a count of the bytes sent over data channels, and
/// a way to close every peer connection, as a network failure would end them.
fn watch_webrtc() -> js_sys::Object {
    js_sys::Function::new_no_args(include_str!("../watch_webrtc.js"))
        .call0(&wasm_bindgen::JsValue::NULL)
        .unwrap()
        .unchecked_into()
}

fn call_watch(watch: &js_sys::Object, method: &str) -> f64 {
    let function: js_sys::Function = js_sys::Reflect::get(watch, &method.into())
        .unwrap()
        .unchecked_into();
    function.call0(watch).unwrap().as_f64().unwrap_or(0.0)
}

/// A 12 MiB transfer through a 512 KiB window, so that it is still running when a test breaks
/// it; returns both sides, the transfer, its bytes, and the watch.
async fn a_transfer_under_way() -> (Side, Side, TransferId, Vec<u8>, js_sys::Object) {
    let watch = watch_webrtc();
    let (ana, bo) = pair(EngineConfig {
        high_water: 64 * 1024,
        window: 512 * 1024,
        ..quiet()
    });
    let big = noise(12 * 1024 * 1024, 9);
    let id = ana
        .engine
        .send_files(&peer(0x0b), vec![file("big.bin", &big)])
        .unwrap();
    until(20, "the offer", || bo.offer().is_some()).await;
    bo.engine.answer(&id, Answer::Download);
    until(60, "a quarter to arrive", || {
        bo.rows(&id).first().is_some_and(|row| row.done >= 3 << 20)
    })
    .await;
    (ana, bo, id, big, watch)
}

/// [`a_transfer_under_way`], paused on both sides: as far as Ana knows, Bo left the server.
async fn a_transfer_paused_by_bo_leaving() -> (Side, Side, TransferId) {
    let (ana, bo, id, _, _) = a_transfer_under_way().await;
    ana.engine.peer_left(&peer(0x0b));
    until(20, "bo to pause", || {
        bo.statuses(&id) == ["Paused — waiting for ana"]
    })
    .await;
    (ana, bo, id)
}

#[wasm_bindgen_test]
async fn a_paused_transfer_discarded_by_the_sender_ends_for_the_receiver_once_back() {
    let (ana, bo, id) = a_transfer_paused_by_bo_leaving().await;
    ana.engine.cancel(&id);
    assert_eq!(ana.statuses(&id), ["Cancelled"]);
    // Bo is back on the server: Ana's page tells him.
    ana.engine.set_nick(&peer(0x0b), "bo");
    until(30, "bo to hear of it", || bo.statuses(&id) == ["Cancelled"]).await;
    assert!(bo.engine.received_file(&id, 0).is_none());
    ana.engine.shutdown();
    bo.engine.shutdown();
}

/// Checks that the transfer completed intact, and that after the break the sender sent only
/// the bytes bo did not hold then, with their headers and the control messages.
async fn resumed_without_resending(
    bo: &Side,
    id: &TransferId,
    big: &[u8],
    held: u64,
    sent_before: f64,
    watch: &js_sys::Object,
) {
    let blob = bo.engine.received_file(id, 0).expect("kept for saving");
    assert!(bytes_of(&blob).await == big, "the resumed file differs");
    // Both engines live in this page, so the count holds ana's chunks and both sides'
    // control messages.
    let sent_after = call_watch(watch, "sent") - sent_before;
    let missing = (big.len() as u64 - held) as f64;
    assert!(
        sent_after <= missing + f64::from(64u32 << 10),
        "{sent_after} bytes went after the break for {missing} missing: verified blocks went again"
    );
}

/// Whether `side` ever showed the transfer paused.
fn was_paused(side: &Side, id: &TransferId) -> bool {
    side.events.borrow().iter().any(|event| {
        matches!(event, EngineEvent::Rows(rows)
            if rows.iter().any(|row| &row.transfer == id && matches!(row.status, Status::Paused { .. })))
    })
}

#[wasm_bindgen_test]
async fn a_peer_that_leaves_mid_transfer_pauses_it_and_it_goes_on_when_they_are_back() {
    let (ana, bo, id, big, watch) = a_transfer_under_way().await;
    // As when the server says bo left: ana drops the connection at once.
    let held = bo.rows(&id)[0].done;
    let sent_before = call_watch(&watch, "sent");
    ana.engine.peer_left(&peer(0x0b));
    assert_eq!(ana.statuses(&id), ["Paused — waiting for bo"]);
    until(20, "bo to see the connection gone", || {
        bo.statuses(&id) == ["Paused — waiting for ana"]
    })
    .await;
    // Paused stays paused while bo is away.
    sleep(1500).await;
    assert_eq!(ana.statuses(&id), ["Paused — waiting for bo"]);
    // Bo is back on the server.
    ana.engine.set_nick(&peer(0x0b), "bo");
    until(60, "completion", || {
        ana.statuses(&id) == ["Complete"] && bo.statuses(&id) == ["Complete"]
    })
    .await;
    resumed_without_resending(&bo, &id, &big, held, sent_before, &watch).await;
    ana.engine.shutdown();
    bo.engine.shutdown();
}

#[wasm_bindgen_test]
async fn a_connection_closed_mid_transfer_resumes_by_itself() {
    let (ana, bo, id, big, watch) = a_transfer_under_way().await;
    let held = bo.rows(&id)[0].done;
    let sent_before = call_watch(&watch, "breakAll");
    until(60, "completion", || {
        ana.statuses(&id) == ["Complete"] && bo.statuses(&id) == ["Complete"]
    })
    .await;
    // Each side saw the break: the connection was gone, not merely slow.
    assert!(was_paused(&ana, &id) && was_paused(&bo, &id));
    resumed_without_resending(&bo, &id, &big, held, sent_before, &watch).await;
    ana.engine.shutdown();
    bo.engine.shutdown();
}

#[wasm_bindgen_test]
async fn a_paused_transfer_discarded_by_the_receiver_ends_on_both_sides() {
    let (ana, bo, id) = a_transfer_paused_by_bo_leaving().await;
    bo.engine.cancel(&id);
    assert_eq!(bo.statuses(&id), ["Cancelled"]);
    ana.engine.set_nick(&peer(0x0b), "bo");
    until(30, "ana to hear of it", || {
        ana.statuses(&id) == ["Cancelled"]
    })
    .await;
    assert!(bo.engine.received_file(&id, 0).is_none());
    ana.engine.shutdown();
    bo.engine.shutdown();
}

/// Bo's engine, what it reported, and a bare channel to it on which a test plays Ana by hand,
/// so that she can send what no Ferry sends.
struct HandPlayed {
    bo: Engine,
    events: Rc<RefCell<Vec<EngineEvent>>>,
    channel: Channel,
    /// The connection Ana's channel runs on, which must outlive it; Bo's signals go to it.
    link: Rc<RefCell<Option<Rc<PeerLink>>>>,
}

impl HandPlayed {
    /// A new connection from Ana to Bo, which from now on gets Bo's signals, and a control
    /// channel on it, open.
    async fn connect(bo: &Engine, link: &RefCell<Option<Rc<PeerLink>>>) -> Channel {
        let to_bo = bo.clone();
        let new = Rc::new(
            PeerLink::new(
                &peer(0x0a),
                peer(0x0b),
                &IcePolicy::default(),
                Rc::new(move |_to, payload| to_bo.handle_signal(peer(0x0a), "ana", payload, 0)),
                Rc::new(|_: &PeerId, _: LinkEvent| {}),
            )
            .unwrap(),
        );
        *link.borrow_mut() = Some(Rc::clone(&new));
        let channel = Channel::new(
            new.open_channel(TRANSFER_CHANNEL_LABEL),
            1024 * 1024,
            Notify::default(),
        );
        assert!(matches!(channel.next().await, ChannelEvent::Open));
        channel
    }
}

/// Bo, and Ana played by hand over a first connection.
async fn bo_and_a_hand_played_ana() -> HandPlayed {
    let link: Rc<RefCell<Option<Rc<PeerLink>>>> = Rc::default();
    let to_ana = Rc::clone(&link);
    let events = Rc::new(RefCell::new(Vec::new()));
    let sink = Rc::clone(&events);
    let bo = Engine::new(
        quiet(),
        Rc::new(move |_to, payload, _lane| {
            if let Some(link) = to_ana.borrow().as_ref() {
                link.signal(payload);
            }
        }),
        Rc::new(move |event| sink.borrow_mut().push(event)),
    );
    bo.set_identity(peer(0x0b), "bo", Vec::new(), false);
    let channel = HandPlayed::connect(&bo, &link).await;
    HandPlayed {
        bo,
        events,
        channel,
        link,
    }
}

/// Ana offers one file of `size` bytes by hand, with protocol `version`.
fn hand_offer(channel: &Channel, id: &TransferId, size: u64, version: u32) {
    let offer = TransferMessage::Offer {
        id: id.clone(),
        files: vec![FileMeta {
            name: "by-hand.bin".into(),
            path: String::new(),
            size,
            mime: String::new(),
        }],
        version,
        empty_folders: Vec::new(),
    };
    channel.send(&offer).unwrap();
}

/// Whether the hand-played Ana's offer reached Bo's user (rows may come before it).
fn offered(events: &RefCell<Vec<EngineEvent>>) -> bool {
    events
        .borrow()
        .iter()
        .any(|event| matches!(event, EngineEvent::Offer(_)))
}

/// The next control message on the hand-played channel.
async fn next_message(channel: &Channel) -> TransferMessage {
    loop {
        match channel.next().await {
            ChannelEvent::Message(message) => return message,
            ChannelEvent::Open => {}
            other => panic!("expected a message, got {other:?}"),
        }
    }
}

#[wasm_bindgen_test]
async fn a_damaged_block_is_asked_for_again_and_the_file_completes() {
    let HandPlayed {
        bo,
        events,
        channel,
        ..
    } = bo_and_a_hand_played_ana().await;
    let id = TransferId::from_random_bytes([9; 16]);
    hand_offer(&channel, &id, 4, TRANSFER_VERSION);
    until(20, "the offer", || offered(&events)).await;
    bo.answer(&id, Answer::Download);
    assert_eq!(
        next_message(&channel).await,
        TransferMessage::Accept {
            version: TRANSFER_VERSION
        }
    );
    let good = block_digest(b"abcd");
    let header = ChunkHeader { file: 0, offset: 0 };
    // The first time, the bytes are damaged on the way.
    for bytes in [&b"abXd"[..], &b"abcd"[..]] {
        channel
            .send_chunk(header, &Uint8Array::from(bytes))
            .unwrap();
        channel
            .send(&TransferMessage::Block {
                file: 0,
                index: 0,
                digest: DigestHex::from_digest(good),
            })
            .unwrap();
        let answer = next_message(&channel).await;
        if bytes == b"abXd" {
            assert_eq!(answer, TransferMessage::Resend { file: 0, block: 0 });
        } else {
            assert_eq!(answer, TransferMessage::Stored { file: 0, block: 0 });
        }
    }
    channel
        .send(&TransferMessage::FileEnd {
            index: 0,
            digest: file_digest([&good]),
        })
        .unwrap();
    assert_eq!(
        next_message(&channel).await,
        TransferMessage::FileVerified { index: 0 }
    );
    let blob = bo.received_file(&id, 0).unwrap();
    assert_eq!(bytes_of(&blob).await, b"abcd");
}

/// Sends `bytes`, block `index` of file 0, in chunks of 64 KiB, and its digest.
fn hand_block(channel: &Channel, index: u32, bytes: &[u8]) {
    let start = u64::from(index) * u64::from(BLOCK_SIZE);
    for (piece, offset) in bytes.chunks(64 * 1024).zip((start..).step_by(64 * 1024)) {
        let header = ChunkHeader { file: 0, offset };
        channel
            .send_chunk(header, &Uint8Array::from(piece))
            .unwrap();
    }
    let digest = DigestHex::from_digest(block_digest(bytes));
    channel
        .send(&TransferMessage::Block {
            file: 0,
            index,
            digest,
        })
        .unwrap();
}

/// Bo and a hand-played Ana, who offered transfer `id` of one file of a block and 4 bytes
/// (noise from `seed`), which Bo accepted; Bo stored its first block. Returns the file's
/// bytes too.
async fn bo_holding_the_first_block(id: &TransferId, seed: u64) -> (HandPlayed, Vec<u8>) {
    let hand = bo_and_a_hand_played_ana().await;
    let bytes = noise(BLOCK_SIZE as usize + 4, seed);
    hand_offer(&hand.channel, id, bytes.len() as u64, TRANSFER_VERSION);
    until(20, "the offer", || offered(&hand.events)).await;
    hand.bo.answer(id, Answer::Download);
    next_message(&hand.channel).await;
    hand_block(&hand.channel, 0, &bytes[..BLOCK_SIZE as usize]);
    assert_eq!(
        next_message(&hand.channel).await,
        TransferMessage::Stored { file: 0, block: 0 }
    );
    (hand, bytes)
}

#[wasm_bindgen_test]
async fn a_sender_back_over_a_new_connection_while_the_old_is_open_goes_on_from_what_is_held() {
    let id = TransferId::from_random_bytes([6; 16]);
    // Ana's first channel stays open, as in a page that has not seen its connection break.
    let (
        HandPlayed {
            bo,
            link,
            channel: _first_channel,
            ..
        },
        bytes,
    ) = bo_holding_the_first_block(&id, 5).await;
    let (first, last) = bytes.split_at(BLOCK_SIZE as usize);
    // Ana's end of the connection broke, and she is back over a new one while Bo's end of
    // the old one is still open: her new connection's offer must replace it, not renegotiate
    // it.
    let old = link.borrow().clone();
    let resumed = HandPlayed::connect(&bo, &link).await;
    resumed
        .send(&TransferMessage::Resume {
            id: id.clone(),
            version: TRANSFER_VERSION,
        })
        .unwrap();
    let digests = [block_digest(first), block_digest(last)];
    assert_eq!(
        next_message(&resumed).await,
        TransferMessage::Resumed {
            files: vec![HeldFile {
                complete: false,
                blocks: vec![[0, 1]],
                digest: file_digest([&digests[0]]),
            }]
        }
    );
    // Ana's end of the old connection goes only now, after Bo went on over the new one.
    drop(old);
    hand_block(&resumed, 1, last);
    assert_eq!(
        next_message(&resumed).await,
        TransferMessage::Stored { file: 0, block: 1 }
    );
    resumed
        .send(&TransferMessage::FileEnd {
            index: 0,
            digest: file_digest(&digests),
        })
        .unwrap();
    assert_eq!(
        next_message(&resumed).await,
        TransferMessage::FileVerified { index: 0 }
    );
    let blob = bo.received_file(&id, 0).unwrap();
    assert!(bytes_of(&blob).await == bytes, "the resumed file differs");
}

#[wasm_bindgen_test]
async fn a_reloaded_senders_probe_hears_what_is_held_or_how_the_transfer_ended() {
    let id = TransferId::from_random_bytes([5; 16]);
    // Ana's first channel stays open, as in a page that has not seen its connection break.
    let (
        HandPlayed {
            bo,
            link,
            channel: _first_channel,
            ..
        },
        bytes,
    ) = bo_holding_the_first_block(&id, 3).await;
    let first = &bytes[..BLOCK_SIZE as usize];
    // Each question comes from Ana's reloaded page, over a connection of its own.
    let ask = async |id: &TransferId, version: u32| {
        let asking = HandPlayed::connect(&bo, &link).await;
        let probe = TransferMessage::Probe {
            id: id.clone(),
            version,
        };
        asking.send(&probe).unwrap();
        next_message(&asking).await
    };
    assert_eq!(
        ask(&id, TRANSFER_VERSION).await,
        TransferMessage::Holds {
            files: vec![HeldFile {
                complete: false,
                blocks: vec![[0, 1]],
                digest: file_digest([&block_digest(first)]),
            }]
        }
    );
    assert_eq!(
        ask(&id, 1).await,
        TransferMessage::Failed {
            reason: "bo's Ferry is newer; reload this page to get it".into()
        }
    );
    bo.cancel(&id);
    assert_eq!(ask(&id, TRANSFER_VERSION).await, TransferMessage::Cancel);
    let unknown = TransferId::from_random_bytes([4; 16]);
    assert_eq!(
        ask(&unknown, TRANSFER_VERSION).await,
        TransferMessage::Failed {
            reason: "bo no longer has this transfer".into()
        }
    );
}

#[wasm_bindgen_test]
async fn a_chunk_from_outside_the_file_fails_the_transfer_and_keeps_nothing() {
    let HandPlayed {
        bo,
        events,
        channel,
        ..
    } = bo_and_a_hand_played_ana().await;
    let id = TransferId::from_random_bytes([8; 16]);
    hand_offer(&channel, &id, 4, TRANSFER_VERSION);
    until(20, "the offer", || offered(&events)).await;
    bo.answer(&id, Answer::Download);
    next_message(&channel).await;
    let header = ChunkHeader { file: 0, offset: 2 };
    channel
        .send_chunk(header, &Uint8Array::from(&b"abcd"[..]))
        .unwrap();
    assert_eq!(
        next_message(&channel).await,
        TransferMessage::Failed {
            reason: "unexpected message from ana".into()
        }
    );
    // Bo reads nothing more of this transfer, so he closes its channel.
    assert!(matches!(channel.next().await, ChannelEvent::Closed));
    assert!(bo.received_file(&id, 0).is_none());
}

#[wasm_bindgen_test]
async fn an_offer_from_an_older_ferry_is_refused_saying_who_should_reload() {
    let HandPlayed { bo, channel, .. } = bo_and_a_hand_played_ana().await;
    let id = TransferId::from_random_bytes([7; 16]);
    hand_offer(&channel, &id, 4, 1);
    assert_eq!(
        next_message(&channel).await,
        TransferMessage::Failed {
            reason: "bo's Ferry is newer; reload this page to get it".into()
        }
    );
    until(5, "the refusal", || {
        bo.rows(&id).first().is_some_and(|row| {
            row.status == Status::Failed("ana's Ferry is older; ask them to reload the page".into())
        })
    })
    .await;
}

#[wasm_bindgen_test]
async fn a_transfer_striped_over_three_connections_arrives_intact_out_of_order() {
    let (ana, bo) = pair(EngineConfig {
        lanes: Lanes::Fixed(3),
        reverse_chunks: true,
        ..quiet()
    });
    let big = noise(6 * 1024 * 1024 + 77, 21);
    let id = ana
        .engine
        .send_files(
            &peer(0x0b),
            vec![file("striped.bin", &big), file("two.txt", b"2")],
        )
        .unwrap();
    until(20, "the offer", || bo.offer().is_some()).await;
    bo.engine.answer(&id, Answer::Download);
    until(60, "completion", || {
        ana.statuses(&id) == ["Complete"; 2] && bo.statuses(&id) == ["Complete"; 2]
    })
    .await;
    assert_eq!(
        ana.engine.lanes(&id),
        3,
        "the sender used three connections"
    );
    assert_eq!(
        bo.engine.lanes(&id),
        3,
        "the receiver took chunks from three"
    );
    let blob = bo.engine.received_file(&id, 0).unwrap();
    assert!(bytes_of(&blob).await == big, "the striped file differs");
    let rows = bo.rows(&id);
    assert_eq!(rows[0].digest, ana.rows(&id)[0].digest);
    assert!(rows[0].digest.is_some());
}

#[wasm_bindgen_test]
async fn the_opfs_sink_writes_and_reads_back_a_file() {
    let opfs = Opfs::open("wasm-test")
        .await
        .unwrap()
        .expect("Chromium has OPFS");
    let content = noise(3 * 1024 * 1024 + 5, 11);
    let mut sink = Sink::private(&opfs, "sample").await.unwrap();
    // Written out of order, as blocks that pass their checks in any order are.
    let chunks: Vec<(usize, &[u8])> = content.chunks(256 * 1024).enumerate().collect();
    for (index, chunk) in chunks.into_iter().rev() {
        let at = (index * 256 * 1024) as u64;
        sink.write(&[(at, Uint8Array::from(chunk))]).await.unwrap();
    }
    let Finished::Download { blob, entry } = sink.finish("application/octet-stream").await.unwrap()
    else {
        panic!("a private file is handed over as a download");
    };
    assert_eq!(entry.as_deref(), Some("sample"));
    assert!(bytes_of(&blob).await == content);

    // A discarded partial file is gone at once.
    let mut partial = Sink::private(&opfs, "partial").await.unwrap();
    partial
        .write(&[(0, Uint8Array::from(&b"half"[..]))])
        .await
        .unwrap();
    partial.discard().await;
    opfs.remove("sample").await;
    assert!(opfs.entries().await.is_empty());
}

#[wasm_bindgen_test]
async fn the_writer_worker_writes_parts_in_any_order_through_a_sync_access_handle() {
    let folder = fresh_folder("writer-test").await;
    let create = FileSystemGetFileOptions::new();
    create.set_create(true);
    let handle: FileSystemFileHandle =
        JsFuture::from(folder.get_file_handle_with_options("parts", &create))
            .await
            .unwrap()
            .unchecked_into();
    // Both browsers have sync access handles: a failure to open is a failure here, not a
    // fallback.
    let writer = Writer::start().unwrap();
    let file = writer.open(&handle).await.unwrap();
    let content = noise(2 * 1024 * 1024 + 77, 5);
    let parts: Vec<(u64, Uint8Array)> = content
        .chunks(300 * 1024)
        .enumerate()
        .map(|(index, chunk)| ((index * 300 * 1024) as u64, Uint8Array::from(chunk)))
        .rev()
        .collect();
    let (late, early) = parts.split_at(2);
    writer.write(file, early).await.unwrap();
    writer.write(file, late).await.unwrap();
    writer.close(file).await.unwrap();
    assert!(read_entry(&folder, "parts").await == content);

    // A closed file takes no more bytes, and says so.
    let refused = writer
        .write(file, &[(0, Uint8Array::from(&b"late"[..]))])
        .await;
    assert!(refused.is_err(), "a write after close succeeded");
}

#[wasm_bindgen_test]
async fn fresh_writer_workers_take_over_open_files_and_write_on_where_the_last_stopped() {
    let folder = fresh_folder("writer-turnover").await;
    let create = FileSystemGetFileOptions::new();
    create.set_create(true);
    let mut handles = Vec::new();
    for name in ["one", "two"] {
        let handle: FileSystemFileHandle =
            JsFuture::from(folder.get_file_handle_with_options(name, &create))
                .await
                .unwrap()
                .unchecked_into();
        handles.push(handle);
    }
    // A fresh worker after every 256 KiB, so that both files outlive several.
    let writer = Writer::with_turnover(256 * 1024).unwrap();
    let files = [
        writer.open(&handles[0]).await.unwrap(),
        writer.open(&handles[1]).await.unwrap(),
    ];
    let contents = [noise(1024 * 1024 + 5, 6), noise(700 * 1024, 7)];
    // Two transfers writing at once: a takeover waits for the other's write in flight.
    let write_all = async |index: usize| {
        let parts = (0u64..)
            .step_by(100 * 1024)
            .zip(contents[index].chunks(100 * 1024));
        for (at, chunk) in parts {
            writer
                .write(files[index], &[(at, Uint8Array::from(chunk))])
                .await
                .unwrap();
        }
    };
    futures::join!(write_all(0), write_all(1));
    for file in files {
        writer.close(file).await.unwrap();
    }
    assert!(
        writer.workers_started() >= 6,
        "only {} workers for 1.7 MB handed over in turns of 256 KiB",
        writer.workers_started()
    );
    assert!(read_entry(&folder, "one").await == contents[0]);
    assert!(read_entry(&folder, "two").await == contents[1]);
}

#[wasm_bindgen_test]
async fn start_up_clears_what_closed_tabs_left_behind() {
    // A folder no tab holds a lock for, as a tab that closed mid-transfer leaves it.
    let storage = web_sys::window().unwrap().navigator().storage();
    let root: FileSystemDirectoryHandle = JsFuture::from(storage.get_directory())
        .await
        .unwrap()
        .unchecked_into();
    let create = FileSystemGetDirectoryOptions::new();
    create.set_create(true);
    let incoming: FileSystemDirectoryHandle =
        JsFuture::from(root.get_directory_handle_with_options("ferry-incoming", &create))
            .await
            .unwrap()
            .unchecked_into();
    JsFuture::from(incoming.get_directory_handle_with_options("closed-tab", &create))
        .await
        .unwrap();

    let opfs = Opfs::open("live-tab").await.unwrap().unwrap();
    assert!(opfs.entries().await.is_empty());
    let gone = JsFuture::from(incoming.get_directory_handle("closed-tab")).await;
    assert!(gone.is_err(), "the abandoned folder is still there");
    JsFuture::from(incoming.get_directory_handle("live-tab"))
        .await
        .expect("this tab's own folder stays");
}

/// The folder `name` in the origin-private file system, created empty.
async fn fresh_folder(name: &str) -> FileSystemDirectoryHandle {
    let storage = web_sys::window().unwrap().navigator().storage();
    let root: FileSystemDirectoryHandle = JsFuture::from(storage.get_directory())
        .await
        .unwrap()
        .unchecked_into();
    let recursive = web_sys::FileSystemRemoveOptions::new();
    recursive.set_recursive(true);
    let _ = JsFuture::from(root.remove_entry_with_options(name, &recursive)).await;
    let create = FileSystemGetDirectoryOptions::new();
    create.set_create(true);
    JsFuture::from(root.get_directory_handle_with_options(name, &create))
        .await
        .unwrap()
        .unchecked_into()
}

async fn read_entry(folder: &FileSystemDirectoryHandle, name: &str) -> Vec<u8> {
    let handle: FileSystemFileHandle = JsFuture::from(folder.get_file_handle(name))
        .await
        .unwrap()
        .unchecked_into();
    let file: Blob = JsFuture::from(handle.get_file())
        .await
        .unwrap()
        .unchecked_into();
    bytes_of(&file).await
}

#[wasm_bindgen_test]
async fn a_chosen_folder_keeps_its_files_and_namesakes_in_one_offer_get_their_own() {
    let folder = fresh_folder("chosen-folder").await;
    let create = FileSystemGetFileOptions::new();
    create.set_create(true);
    JsFuture::from(folder.get_file_handle_with_options("same.txt", &create))
        .await
        .unwrap();
    let mut old = Sink::picked(&Picked::Folder(folder.clone()), "", "old.txt")
        .await
        .unwrap();
    old.write(&[(0, Uint8Array::from(&b"mine"[..]))])
        .await
        .unwrap();
    old.finish("").await.unwrap();

    let (ana, bo) = pair(quiet());
    let id = ana
        .engine
        .send_files(
            &peer(0x0b),
            vec![
                file("same.txt", b"first"),
                file("same.txt", b"second"),
                file("old.txt", b"theirs"),
            ],
        )
        .unwrap();
    until(20, "the offer", || bo.offer().is_some()).await;
    bo.engine
        .answer(&id, Answer::SaveTo(Picked::Folder(folder.clone())));
    until(20, "completion", || bo.statuses(&id) == ["Complete"; 3]).await;
    let names: Vec<String> = bo.rows(&id).into_iter().map(|row| row.name).collect();
    assert_eq!(names, ["same.txt", "same (2).txt", "old.txt"]);
    // "same.txt" was already there, empty: each file took the next free name.
    assert_eq!(read_entry(&folder, "same.txt").await, b"");
    assert_eq!(read_entry(&folder, "same (2).txt").await, b"first");
    assert_eq!(read_entry(&folder, "same (2) (2).txt").await, b"second");
    assert_eq!(read_entry(&folder, "old.txt").await, b"mine");
    assert_eq!(read_entry(&folder, "old (2).txt").await, b"theirs");
}
