//! What a Ferry that breaks the rules gets: a damaged block asked for again, a chunk from
//! outside the file, an offer from an older Ferry.

use ferry_app::core::blocks::{block_digest, file_digest};
use ferry_app::core::transfer::Status;
use ferry_app::web::channel::ChannelEvent;
use ferry_app::web::engine::Answer;
use ferry_protocol::chunk::ChunkHeader;
use ferry_protocol::{DigestHex, TRANSFER_VERSION, TransferId, TransferMessage};
use js_sys::Uint8Array;
use wasm_bindgen_test::wasm_bindgen_test;

use crate::hand::*;
use crate::support::*;

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
