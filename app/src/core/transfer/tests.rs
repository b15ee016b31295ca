//! The transfer state machine driven the way the glue drives it: blocks of chunks in any
//! order, digests announced after them, damaged blocks, and every way a transfer ends.

use ferry_protocol::BLOCK_SIZE;

use super::*;
use crate::core::blocks::{block_count, block_digest, block_range, file_digest};
use crate::core::chunking::chunk_ranges;
use crate::core::route::NoPath;

const CHUNK: usize = 256 * 1024;

fn meta(name: &str, size: u64) -> FileMeta {
    FileMeta {
        name: name.into(),
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

/// Sends every chunk of block `block` of `file` (whose bytes are `bytes`) and its digest;
/// returns whether the receiver found the block ready to check.
fn deliver_block(receiver: &mut Transfer, file: u32, size: u64, block: u32) -> bool {
    let bytes = content(size);
    let range = block_range(size, block);
    let good = &bytes[range.start as usize..range.end as usize];
    for chunk in chunk_ranges(range.end - range.start, CHUNK) {
        receiver
            .chunk(file, range.start + chunk.start, chunk.end - chunk.start)
            .unwrap();
    }
    let next = receiver
        .block_digest(file, block, &DigestHex::from_digest(hash(good)))
        .unwrap();
    if next != Next::Check(block) {
        return false;
    }
    matches!(
        receiver.check_block(file, block, hash(good)).unwrap(),
        Verdict::Good { .. }
    )
}

#[test]
fn a_broken_connection_pauses_both_sides_and_resuming_sends_only_what_is_missing() {
    let block = u64::from(BLOCK_SIZE);
    let sizes = [3 * block, 2 * block + 5];
    let metas = vec![meta("a", sizes[0]), meta("b", sizes[1])];
    let mut sender = Transfer::outgoing(id(), "bo", metas.clone());
    let mut receiver = Transfer::incoming(id(), "ana", metas);
    sender.accept();
    receiver.accept();
    // The sender's digest of each block it read, as the glue keeps them.
    let digests: Vec<Vec<Option<[u8; 32]>>> = sizes
        .iter()
        .map(|&size| {
            let bytes = content(size);
            (0..block_count(size))
                .map(|index| {
                    let range = block_range(size, index);
                    Some(hash(&bytes[range.start as usize..range.end as usize]))
                })
                .collect()
        })
        .collect();
    assert!(deliver_block(&mut receiver, 0, sizes[0], 0));
    assert!(deliver_block(&mut receiver, 0, sizes[0], 2));
    // Half of block 1 arrives, then the connection breaks.
    receiver.chunk(0, block, CHUNK as u64).unwrap();
    sender.pause();
    receiver.pause();
    assert!(sender.is_paused() && receiver.is_paused() && !receiver.is_ended());
    assert_eq!(sender.shown(0).to_string(), "Paused — waiting for bo");
    assert_eq!(receiver.shown(1).to_string(), "Paused — waiting for ana");
    assert_eq!(receiver.shown(0), Status::Paused { peer: "ana".into() });

    let answer = receiver.resume_receiving();
    assert_eq!(answer[0].blocks, [[0, 1], [2, 3]]);
    assert_eq!(answer[1].blocks, Vec::<[u32; 2]>::new());
    assert!(!answer[0].complete);
    let held =
        crate::core::resume::read_held(&answer, &[("a", sizes[0]), ("b", sizes[1])], &digests)
            .unwrap();
    sender.resume_sending(&held);
    assert_eq!(
        sender.files[0].done,
        2 * block,
        "progress goes on from what is held"
    );
    assert_eq!(statuses(&sender), ["Sending", "Sending"]);
    let wanted: Vec<(u32, u32)> = (0..2u32)
        .flat_map(|file| (0..block_count(sizes[file as usize])).map(move |b| (file, b)))
        .filter(|&(file, b)| held[file as usize].wants(b))
        .collect();
    assert_eq!(wanted, [(0, 1), (1, 0), (1, 1), (1, 2)]);
    // Block 1 comes again whole: its first half, forgotten at the pause, is taken again.
    for (file, index) in wanted {
        assert!(deliver_block(
            &mut receiver,
            file,
            sizes[file as usize],
            index
        ));
    }
    for (file, size) in (0..2u32).zip(sizes) {
        let all: Vec<[u8; 32]> = digests[file as usize].iter().flatten().copied().collect();
        let whole = receiver.file_end(file, file_digest(&all)).unwrap();
        assert_eq!(whole, Some(file as usize));
        receiver.complete_file(file).unwrap();
        sender.file_sent(file as usize, file_digest(&all));
        sender.complete_file(file).unwrap();
        assert_eq!(receiver.files[file as usize].done, size);
    }
    assert!(sender.is_ended() && receiver.is_ended());
    assert_eq!(statuses(&receiver), ["Complete", "Complete"]);
}

#[test]
fn a_file_the_receiver_held_whole_at_the_break_completes_on_resume() {
    let metas = vec![meta("small", 10)];
    let mut sender = Transfer::outgoing(id(), "bo", metas.clone());
    let mut receiver = Transfer::incoming(id(), "ana", metas);
    sender.accept();
    receiver.accept();
    assert!(deliver_block(&mut receiver, 0, 10, 0));
    let digest = file_digest([&hash(&content(10))]);
    sender.file_sent(0, digest.clone());
    assert_eq!(receiver.file_end(0, digest), Ok(Some(0)));
    // The connection breaks while the receiver flushes the file.
    sender.pause();
    receiver.pause();
    let answer = receiver.resume_receiving();
    assert!(answer[0].complete);
    let held = crate::core::resume::read_held(
        &answer,
        &[("small", 10)],
        &[vec![Some(hash(&content(10)))]],
    )
    .unwrap();
    sender.resume_sending(&held);
    assert_eq!(statuses(&sender), ["Complete"]);
    assert!(sender.is_ended());
    // The receiver's verdict, sent before it learnt of the break, may still arrive.
    assert_eq!(sender.complete_file(0), Ok(0));
    assert_eq!(receiver.complete_file(0), Ok(0));
}

#[test]
fn a_paused_transfer_can_be_discarded_and_an_offer_cannot_pause() {
    let mut offered = Transfer::outgoing(id(), "bo", vec![meta("a", 1)]);
    offered.pause();
    assert!(!offered.is_paused(), "nothing moved yet: nothing to keep");
    let mut running = Transfer::incoming(id(), "ana", vec![meta("a", 1)]);
    running.accept();
    running.pause();
    running.cancel();
    assert!(running.is_ended());
    assert_eq!(statuses(&running), ["Cancelled"]);
}

#[test]
fn a_receivers_record_brings_the_transfer_back_after_a_reload() {
    let block = u64::from(BLOCK_SIZE);
    let sizes = [3 * block + 1, 5];
    let metas = vec![meta("a", sizes[0]), meta("b", sizes[1])];
    let mut receiver = Transfer::incoming(id(), "ana", metas);
    receiver.accept();
    assert!(deliver_block(&mut receiver, 0, sizes[0], 1));
    assert!(deliver_block(&mut receiver, 0, sizes[0], 3));
    assert!(deliver_block(&mut receiver, 1, sizes[1], 0));
    let digest = file_digest([&hash(&content(5))]);
    assert_eq!(receiver.file_end(1, digest), Ok(Some(1)));
    receiver.complete_file(1).unwrap();
    receiver.pause();

    let record = receiver.record("tab1", 1_000);
    assert_eq!(record.held[0].blocks, [[1, 2], [3, 4]]);
    assert!(record.held[1].complete);
    // It is kept as JSON in the browser's storage.
    let json = serde_json::to_string(&record).unwrap();
    let read: crate::core::record::Record = serde_json::from_str(&json).unwrap();
    assert_eq!(read, record);

    let mut restored = Transfer::restored(&read).unwrap();
    assert!(restored.is_paused());
    assert_eq!(restored.shown(0).to_string(), "Paused — waiting for ana");
    assert_eq!(statuses(&restored), ["Receiving", "Complete"]);
    assert_eq!(restored.files[0].done, block + 1);
    let held: u64 = restored.files.iter().map(|file| file.done).sum();
    assert_eq!(held, block + 1 + 5);
    assert_eq!(restored.resume_receiving(), receiver.held());
    // The blocks it held stay checked; the others arrive as usual.
    assert!(deliver_block(&mut restored, 0, sizes[0], 0));
    assert!(deliver_block(&mut restored, 0, sizes[0], 2));
    let whole = file_digest(
        &(0..4)
            .map(|b| {
                let range = block_range(sizes[0], b);
                hash(&content(sizes[0])[range.start as usize..range.end as usize])
            })
            .collect::<Vec<_>>(),
    );
    assert_eq!(restored.file_end(0, whole), Ok(Some(0)));
}

#[test]
fn a_record_that_does_not_hold_together_is_not_restored() {
    let mut receiver = Transfer::incoming(id(), "ana", vec![meta("a", 2 << 20)]);
    receiver.accept();
    assert!(deliver_block(&mut receiver, 0, 2 << 20, 0));
    let good = receiver.record("tab1", 1_000);
    let mut missing_digest = good.clone();
    missing_digest.held[0].digests.clear();
    let mut past_end = good.clone();
    past_end.held[0].blocks = vec![[0, 3]];
    let mut fewer_files = good.clone();
    fewer_files.held.clear();
    for bad in [missing_digest, past_end, fewer_files] {
        assert!(Transfer::restored(&bad).is_none(), "{bad:?}");
    }
    use crate::core::record::Kept;
    assert!(!good.is_stale(1_000 + 6 * 24 * 3600));
    assert!(good.is_stale(1_000 + 8 * 24 * 3600));
}

#[test]
fn a_reloaded_senders_transfer_asks_for_its_files_and_waits_once_they_are_right() {
    let sender = {
        let mut sender = Transfer::outgoing(id(), "bo", vec![meta("holiday.mov", 10)]);
        sender.accept();
        sender
    };
    let record = sender.sent_record("tab1", &[1.5e12], 1_000);
    let mut restored = Transfer::sending_restored(&record);
    assert!(restored.is_paused());
    assert_eq!(
        restored.shown(0).to_string(),
        "Paused — pick holiday.mov again to resume"
    );
    restored.picked_again(false);
    assert_eq!(
        restored.shown(0).to_string(),
        "Paused — that is not the holiday.mov that was being sent; pick it again to resume"
    );
    restored.picked_again(true);
    assert_eq!(restored.shown(0).to_string(), "Paused — waiting for bo");
    // The receiver held nothing yet: everything goes.
    let held = crate::core::resume::read_held(
        &[ferry_protocol::HeldFile {
            complete: false,
            blocks: vec![],
            digest: file_digest([]),
        }],
        &[("holiday.mov", 10)],
        &[vec![None]],
    )
    .unwrap();
    restored.resume_sending(&held);
    assert_eq!(statuses(&restored), ["Sending"]);
}
