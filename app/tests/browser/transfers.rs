//! Transfers between two engines: reading, backpressure and the window, offers crossing,
//! decline, cancel and dismissed rows, and striping over several connections.

use ferry_app::core::route::Route;
use ferry_app::core::stripes::Lanes;
use ferry_app::core::transfer::Status;
use ferry_app::web::engine::{Answer, EngineConfig, EngineEvent};
use ferry_app::web::files::SliceReader;
use ferry_app::web::sleep;
use wasm_bindgen_test::wasm_bindgen_test;

use crate::support::*;

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
        // Bo's row appears once the accepted transfer runs; until then he holds nothing.
        let received = bo.rows(&id).first().map_or(0, |row| row.done);
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
    // The receiver who declined keeps no row of it: the offer was all there was.
    assert!(bo.statuses(&declined).is_empty());

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
