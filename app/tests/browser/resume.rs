//! Paused and resumed transfers: a peer that leaves, a connection that breaks, a discard on
//! either side, a sender back over a new connection, and a reloaded sender's probe.

use ferry_app::core::blocks::{block_digest, file_digest};
use ferry_app::core::transfer::Status;
use ferry_app::web::engine::{Answer, EngineConfig, EngineEvent};
use ferry_app::web::sleep;
use ferry_protocol::{BLOCK_SIZE, HeldFile, TRANSFER_VERSION, TransferId, TransferMessage};
use wasm_bindgen_test::wasm_bindgen_test;

use crate::hand::*;
use crate::support::*;

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
    until_or_say(
        60,
        "completion",
        || ana.statuses(&id) == ["Complete"] && bo.statuses(&id) == ["Complete"],
        || {
            format!(
                "Ana: {}; Bo: {}; paused: {}, {}",
                ana.progress(&id),
                bo.progress(&id),
                was_paused(&ana, &id),
                was_paused(&bo, &id)
            )
        },
    )
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
