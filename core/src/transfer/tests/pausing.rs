//! The state machine across a broken connection: both sides paused, the receiver's account of
//! what it holds, what the sender makes of it, and the records that outlive a reload.

use super::*;

/// Delivers block `block` of `file` as [`arrive_block`] does, and writes it if good.
fn deliver_block(receiver: &mut Transfer, file: u32, size: u64, block: u32) -> bool {
    let good = arrive_block(receiver, file, size, block);
    if good {
        receiver.block_stored(file, block);
    }
    good
}

/// Sends every chunk of block `block` of `file` (of `size` bytes of [`content`]) and its
/// digest; returns whether the receiver found the block ready to check and good. The block
/// is not written yet.
fn arrive_block(receiver: &mut Transfer, file: u32, size: u64, block: u32) -> bool {
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
        crate::resume::read_held(&answer, &[("a", sizes[0]), ("b", sizes[1])], &digests).unwrap();
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
    let held =
        crate::resume::read_held(&answer, &[("small", 10)], &[vec![Some(hash(&content(10)))]])
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
    let read: crate::record::Record = serde_json::from_str(&json).unwrap();
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
fn a_file_still_flushed_when_the_page_went_is_handed_over_after_the_reload() {
    let mut receiver = Transfer::incoming(id(), "ana", vec![meta("a", 5)]);
    receiver.accept();
    assert!(deliver_block(&mut receiver, 0, 5, 0));
    let digest = file_digest([&hash(&content(5))]);
    assert_eq!(receiver.file_end(0, digest.clone()), Ok(Some(0)));
    // Whole and checked, it is being flushed ("Verifying") as the page goes.
    let record = receiver.record("tab1", 1_000);
    assert!(!record.held[0].complete, "it was never handed over");
    assert_eq!(record.held[0].blocks, [[0, 1]]);

    let mut restored = Transfer::restored(&record).unwrap();
    assert_eq!(statuses(&restored), ["Receiving"]);
    assert_eq!(restored.files[0].done, 5);
    // The sender hears every block is held, sends none, and announces the digest again:
    // the file is whole, to be flushed and handed over.
    assert!(!restored.resume_receiving()[0].complete);
    assert_eq!(restored.file_end(0, digest), Ok(Some(0)));
}

#[test]
fn a_block_still_being_written_as_the_page_goes_is_left_out_of_the_record() {
    let block = u64::from(BLOCK_SIZE);
    let size = 3 * block;
    let mut receiver = Transfer::incoming(id(), "ana", vec![meta("a", size)]);
    receiver.accept();
    assert!(deliver_block(&mut receiver, 0, size, 0));
    assert!(arrive_block(&mut receiver, 0, size, 1));
    // Block 1 is checked, and its write has not finished.
    let record = receiver.record("tab1", 1_000);
    assert_eq!(record.held[0].blocks, [[0, 1]]);
    assert_eq!(record.held[0].digests.len(), 1);
    let restored = Transfer::restored(&record).unwrap();
    assert_eq!(restored.files[0].done, block);
    // Once written, it is named.
    receiver.block_stored(0, 1);
    let record = receiver.record("tab1", 1_000);
    assert_eq!(record.held[0].blocks, [[0, 2]]);
    assert_eq!(record.held[0].digests.len(), 2);
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
    use crate::record::Kept;
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
    let held = crate::resume::read_held(
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

#[test]
fn a_reloaded_senders_transfer_the_receiver_holds_whole_ends_complete_without_its_files() {
    let metas = vec![meta("a.mov", 10), meta("b.txt", 0)];
    let mut sender = Transfer::outgoing(id(), "bo", metas);
    sender.accept();
    let record = sender.sent_record("tab1", &[1.5e12, 1.5e12], 1_000);
    let held = |complete: [bool; 2]| -> Vec<ferry_protocol::HeldFile> {
        complete
            .into_iter()
            .map(|complete| ferry_protocol::HeldFile {
                complete,
                blocks: vec![],
                digest: file_digest([]),
            })
            .collect()
    };
    let mut restored = Transfer::sending_restored(&record);
    assert!(!restored.probed(&held([true, false])), "b.txt is missing");
    assert!(
        !restored.probed(&held([true, true])[..1]),
        "an answer for one file of two"
    );
    assert_eq!(
        restored.shown(0).to_string(),
        "Paused — pick a.mov again to resume"
    );
    assert!(restored.probed(&held([true, true])));
    assert_eq!(statuses(&restored), ["Complete", "Complete"]);
    assert!(restored.is_ended());
    assert_eq!(restored.files[0].done, 10);
}
