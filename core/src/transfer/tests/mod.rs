//! The transfer state machine driven the way the glue drives it: blocks of chunks in any
//! order, digests announced after them, damaged blocks, and every way a transfer ends.

use ferry_protocol::BLOCK_SIZE;

use super::*;
use crate::blocks::{block_count, block_digest, block_range, file_digest};
use crate::chunking::chunk_ranges;
use crate::route::NoPath;

const CHUNK: usize = 256 * 1024;

fn meta(name: &str, size: u64) -> FileMeta {
    FileMeta {
        name: name.into(),
        path: String::new(),
        size,
        mime: String::new(),
    }
}

fn id() -> TransferId {
    TransferId::from_random_bytes([1; 16])
}

/// Deterministic bytes that differ from block to block.
fn content(size: u64) -> Vec<u8> {
    (0..size).map(|i| (i * 31 % 251) as u8).collect()
}

fn hash(bytes: &[u8]) -> [u8; 32] {
    block_digest(bytes)
}

fn statuses(transfer: &Transfer) -> Vec<String> {
    transfer
        .files
        .iter()
        .map(|file| file.status.to_string())
        .collect()
}

/// Sends `files` from a sender machine to a receiver machine, each block's chunks last to
/// first (as chunks over several lanes may arrive), letting `tamper` damage the bytes of a
/// block the first time it goes. Returns both ends and how many blocks were sent again.
fn run(files: &[u64], tamper: impl Fn(u32, u32, &mut Vec<u8>)) -> (Transfer, Transfer, u32) {
    let metas: Vec<_> = files
        .iter()
        .enumerate()
        .map(|(i, &size)| meta(&format!("f{i}"), size))
        .collect();
    let mut sender = Transfer::outgoing(id(), "bo", metas.clone());
    let mut receiver = Transfer::incoming(id(), "ana", metas);
    assert_eq!(statuses(&sender), vec!["Waiting for bo"; files.len()]);
    receiver.accept();
    sender.accept();
    let mut resent = 0;
    for (index, &size) in files.iter().enumerate() {
        let file = u32::try_from(index).unwrap();
        let bytes = content(size);
        let mut digests = Vec::new();
        for block in 0..block_count(size) {
            let range = block_range(size, block);
            let good = bytes[range.start as usize..range.end as usize].to_vec();
            let digest = hash(&good);
            digests.push(digest);
            let mut sent = good.clone();
            tamper(file, block, &mut sent);
            loop {
                let mut ready = None;
                let chunks: Vec<_> = chunk_ranges(range.end - range.start, CHUNK).collect();
                for chunk in chunks.into_iter().rev() {
                    let next = receiver
                        .chunk(file, range.start + chunk.start, chunk.end - chunk.start)
                        .unwrap();
                    assert_eq!(next, Next::Wait, "no digest yet");
                }
                let next = receiver
                    .block_digest(file, block, &DigestHex::from_digest(digest))
                    .unwrap();
                if let Next::Check(checked) = next {
                    ready = Some(checked);
                }
                assert_eq!(ready, Some(block));
                // The receiver hashes the bytes it got.
                match receiver.check_block(file, block, hash(&sent)).unwrap() {
                    Verdict::Good { .. } => break,
                    Verdict::Resend => {
                        resent += 1;
                        sent = good.clone();
                    }
                }
            }
        }
        let announced = file_digest(&digests);
        sender.file_sent(index, announced.clone());
        sender.stored(file, receiver.files[index].done);
        match receiver.file_end(file, announced) {
            Ok(Some(whole)) => {
                receiver
                    .complete_file(u32::try_from(whole).unwrap())
                    .unwrap();
                sender.complete_file(file).unwrap();
            }
            Ok(None) => panic!("file {index} is not whole after all its blocks"),
            Err(error) => {
                receiver.fail(&error);
                sender.fail(&TransferError::Remote(error.to_string()));
                return (sender, receiver, resent);
            }
        }
    }
    (sender, receiver, resent)
}

#[test]
fn sizes_that_matter_arrive_complete() {
    let block = u64::from(BLOCK_SIZE);
    for size in [0, 1, CHUNK as u64 + 1, block - 1, block, 3 * block + 17] {
        let (sender, receiver, resent) = run(&[size], |_, _, _| {});
        assert_eq!(statuses(&sender), ["Complete"], "size {size}");
        assert_eq!(statuses(&receiver), ["Complete"], "size {size}");
        assert_eq!(receiver.files[0].done, size);
        assert_eq!(sender.files[0].done, size);
        assert_eq!(receiver.files[0].digest, sender.files[0].digest);
        assert_eq!(resent, 0);
        assert!(sender.is_ended() && receiver.is_ended());
    }
}

#[test]
fn a_damaged_block_is_sent_again_and_the_file_completes() {
    let block = u64::from(BLOCK_SIZE);
    let (sender, receiver, resent) = run(&[3 * block, 10], |file, block, bytes| {
        if (file, block) == (0, 1) {
            bytes[5] ^= 0xff;
        }
    });
    assert_eq!(resent, 1);
    assert_eq!(statuses(&receiver), ["Complete", "Complete"]);
    assert_eq!(statuses(&sender), ["Complete", "Complete"]);
}

#[test]
fn a_file_whose_blocks_add_up_to_another_digest_fails() {
    let mut receiver = Transfer::incoming(id(), "ana", vec![meta("a", 10)]);
    receiver.accept();
    receiver.chunk(0, 0, 10).unwrap();
    let digest = hash(&content(10));
    receiver
        .block_digest(0, 0, &DigestHex::from_digest(digest))
        .unwrap();
    receiver.check_block(0, 0, digest).unwrap();
    let wrong = DigestHex::from_digest([0; 32]);
    assert_eq!(receiver.file_end(0, wrong), Err(TransferError::Integrity));
}

#[test]
fn chunks_and_digests_from_nowhere_are_protocol_errors() {
    let mut receiver = Transfer::incoming(id(), "ana", vec![meta("a", 10)]);
    receiver.accept();
    let blame = Err(TransferError::Protocol("ana".into()));
    assert_eq!(receiver.chunk(1, 0, 5), blame.clone().map(|()| Next::Wait));
    assert_eq!(receiver.chunk(0, 8, 5), blame.clone().map(|()| Next::Wait));
    let digest = DigestHex::from_digest([1; 32]);
    assert_eq!(
        receiver.block_digest(0, 1, &digest),
        blame.clone().map(|()| Next::Wait)
    );
    assert_eq!(receiver.file_end(3, digest.clone()), blame.map(|()| None));
    assert_eq!(receiver.file_end(0, digest.clone()), Ok(None));
    assert_eq!(
        receiver.file_end(0, digest),
        Err(TransferError::Protocol("ana".into())),
        "announced twice"
    );
}

#[test]
fn the_sender_shows_what_the_receiver_stored_not_what_it_read() {
    let mut sender = Transfer::outgoing(id(), "bo", vec![meta("a", 10), meta("b", 5)]);
    sender.accept();
    sender.stored(1, 4);
    sender.stored(0, 10);
    sender.stored(1, 4);
    let done: Vec<u64> = sender.files.iter().map(|file| file.done).collect();
    assert_eq!(done, [10, 5], "never more than the file");
}

#[test]
fn cancel_failure_and_messages_of_the_wrong_direction_are_read_alike() {
    let mut sender = Transfer::outgoing(id(), "bo", vec![meta("a", 1)]);
    sender.accept();
    let refused = sender.react(TransferMessage::Block {
        file: 0,
        index: 0,
        digest: DigestHex::from_digest([0; 32]),
    });
    assert_eq!(
        refused,
        Reaction::Refuse(TransferError::Protocol("bo".into()))
    );
    assert_eq!(
        sender.react(TransferMessage::Stored { file: 0, block: 0 }),
        Reaction::Other(TransferMessage::Stored { file: 0, block: 0 })
    );
    assert_eq!(
        sender.react(TransferMessage::Failed {
            reason: "disk full".into()
        }),
        Reaction::Ended
    );
    assert_eq!(statuses(&sender), ["Failed: disk full"]);

    let mut receiver = Transfer::incoming(id(), "ana", vec![meta("a", 1)]);
    receiver.accept();
    assert!(matches!(
        receiver.react(TransferMessage::Stored { file: 0, block: 0 }),
        Reaction::Refuse(_)
    ));
    assert_eq!(receiver.react(TransferMessage::Cancel), Reaction::Ended);
    assert_eq!(statuses(&receiver), ["Cancelled"]);
}

#[test]
fn versions_other_than_this_one_are_refused_with_who_should_reload() {
    assert_eq!(check_version("bo", TRANSFER_VERSION), Ok(()));
    let older = check_version("bo", 1).unwrap_err();
    assert_eq!(
        older.to_string(),
        "bo's Ferry is older; ask them to reload the page"
    );
    let newer = check_version("bo", TRANSFER_VERSION + 1).unwrap_err();
    assert_eq!(
        newer.to_string(),
        "bo's Ferry is newer; reload this page to get it"
    );
    // Ana refuses bo's older Ferry; bo reads that ana's is newer, and that bo should reload.
    assert_eq!(
        older.for_peer("ana").to_string(),
        "ana's Ferry is newer; reload this page to get it"
    );
    assert_eq!(
        TransferError::Integrity.for_peer("ana"),
        TransferError::Integrity
    );
}

#[test]
fn decline_and_cancel() {
    let mut declined = Transfer::outgoing(id(), "bo", vec![meta("a", 1), meta("b", 2)]);
    declined.decline();
    assert_eq!(statuses(&declined), ["Declined", "Declined"]);
    assert!(declined.is_ended());

    let mut cancelled = Transfer::outgoing(id(), "bo", vec![meta("a", 0), meta("b", 2)]);
    cancelled.accept();
    cancelled.file_sent(0, file_digest([]));
    cancelled.complete_file(0).unwrap();
    cancelled.cancel();
    assert_eq!(statuses(&cancelled), ["Complete", "Cancelled"]);
    // Once ended, later news changes nothing.
    cancelled.fail(&TransferError::PeerGone("bo".into()));
    cancelled.decline();
    assert_eq!(statuses(&cancelled), ["Complete", "Cancelled"]);
}

#[test]
fn a_vanished_peer_fails_what_is_unfinished() {
    let mut transfer = Transfer::outgoing(id(), "bo", vec![meta("a", 5), meta("b", 5)]);
    transfer.accept();
    transfer.file_sent(0, file_digest([]));
    transfer.fail(&TransferError::PeerGone("bo".into()));
    assert_eq!(
        statuses(&transfer),
        ["Failed: bo disconnected", "Failed: bo disconnected"]
    );
}

#[test]
fn an_offer_without_a_network_path_fails_saying_why() {
    let mut transfer = Transfer::outgoing(id(), "bo", vec![meta("a", 5)]);
    transfer.fail(&TransferError::NoPath {
        peer: "bo".into(),
        why: NoPath::RelayRefused,
    });
    assert_eq!(
        statuses(&transfer),
        ["Failed: no network path to bo — the relay refused Ferry's credentials"]
    );
}

#[test]
fn status_texts() {
    assert_eq!(
        Status::Waiting { peer: "bo".into() }.to_string(),
        "Waiting for bo"
    );
    assert_eq!(Status::Failed("x".into()).to_string(), "Failed: x");
    assert!(Status::Verifying.is_running());
    assert!(!Status::Complete.is_running());
}

#[test]
fn news_is_the_answer_and_the_end() {
    let waiting = Status::Waiting { peer: "bo".into() };
    assert!(Status::Sending.is_news_after(&waiting));
    assert!(Status::Declined.is_news_after(&waiting));
    assert!(Status::Complete.is_news_after(&Status::Verifying));
    assert!(Status::Cancelled.is_news_after(&Status::Receiving));
    assert!(!Status::Verifying.is_news_after(&Status::Sending));
    assert!(!Status::Sending.is_news_after(&Status::Sending));
    assert!(!Status::Cancelled.is_news_after(&Status::Complete));
}

mod pausing;
