//! Who is on the other end: the device key is made once and kept, connections present it,
//! two engines verify each other with the same code, a reveal that breaks its promise is
//! refused, and a text arrives.

use ferry_app::core::verify::commitment;
use ferry_app::web::device::{device, forget_loaded};
use ferry_app::web::engine::{EngineEvent, VerifyStep};
use ferry_protocol::{DigestHex, TransferMessage};
use wasm_bindgen_test::wasm_bindgen_test;

use crate::hand::*;
use crate::support::*;

/// The codes and fingerprints the verification events of `side` carried.
fn codes(side: &Side) -> Vec<(String, String)> {
    side.events
        .borrow()
        .iter()
        .filter_map(|event| match event {
            EngineEvent::Verify {
                step: VerifyStep::Code { code, fingerprint },
                ..
            } => Some((code.clone(), fingerprint.clone())),
            _ => None,
        })
        .collect()
}

fn their_answers(side: &Side) -> Vec<bool> {
    side.events
        .borrow()
        .iter()
        .filter_map(|event| match event {
            EngineEvent::Verify {
                step: VerifyStep::TheirAnswer(matched),
                ..
            } => Some(*matched),
            _ => None,
        })
        .collect()
}

#[wasm_bindgen_test]
async fn the_device_key_is_made_once_and_kept_across_page_loads() {
    let first = device().await.expect("a device key");
    assert!(
        first.fingerprint.starts_with("sha-256 "),
        "{}",
        first.fingerprint
    );
    // A new page load reads IndexedDB again: the same key, not a new one.
    forget_loaded();
    let again = device().await.expect("the device key again");
    assert_eq!(again.fingerprint, first.fingerprint);
    assert!(!again.made_now, "a second load made a new key");
    assert_eq!(again.certificate.expires(), first.certificate.expires());
}

#[wasm_bindgen_test]
async fn two_engines_verify_with_the_same_code_over_their_device_keys() {
    let key = device().await.expect("a device key");
    let (ana, bo) = pair(quiet());
    // Ana's connections present the device key; Bo's make their own, as a browser without
    // one stored would.
    ana.engine.set_certificate(key.certificate.clone());
    ana.engine.verify(&peer(0x0b));
    until(20, "both codes", || {
        !codes(&ana).is_empty() && !codes(&bo).is_empty()
    })
    .await;
    let (ana_code, bo_device) = codes(&ana).remove(0);
    let (bo_code, ana_device) = codes(&bo).remove(0);
    assert_eq!(ana_code, bo_code);
    assert_eq!(ana_code.split(' ').count(), 3);
    // Each side keeps the other's device as its connection shows it: Ana's is her key.
    assert_eq!(ana_device, key.fingerprint);
    assert_ne!(bo_device, key.fingerprint);
    assert_eq!(
        bo.engine.device_of(&peer(0x0a)),
        Some(key.fingerprint.clone())
    );

    ana.engine.answer_verification(&peer(0x0b), true);
    bo.engine.answer_verification(&peer(0x0a), true);
    until(20, "both answers", || {
        their_answers(&ana) == [true] && their_answers(&bo) == [true]
    })
    .await;

    // A text goes over the same connection.
    ana.engine
        .send_text(&peer(0x0b), "see https://example.com".into())
        .await
        .expect("the text is delivered");
    let texts: Vec<String> = bo
        .events
        .borrow()
        .iter()
        .filter_map(|event| match event {
            EngineEvent::Text { text, .. } => Some(text.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(texts, ["see https://example.com"]);
    ana.engine.shutdown();
    bo.engine.shutdown();
}

#[wasm_bindgen_test]
async fn a_reveal_that_breaks_its_promise_is_refused() {
    let HandPlayed {
        bo,
        events,
        channel,
        ..
    } = bo_and_a_hand_played_ana().await;
    channel
        .send(&TransferMessage::VerifyCommit {
            commitment: DigestHex::from_digest(commitment(&[1; 32])),
        })
        .unwrap();
    assert!(matches!(
        next_message(&channel).await,
        TransferMessage::VerifyNonce { .. }
    ));
    // Having seen Bo's nonce, "Ana" reveals another nonce than the one she committed to.
    channel
        .send(&TransferMessage::VerifyReveal {
            nonce: DigestHex::from_digest([2; 32]),
        })
        .unwrap();
    assert!(matches!(
        next_message(&channel).await,
        TransferMessage::Failed { .. }
    ));
    let stopped = events.borrow().iter().any(|event| {
        matches!(
            event,
            EngineEvent::Verify {
                step: VerifyStep::Stopped(why),
                ..
            } if why.starts_with("Not verified")
        )
    });
    assert!(stopped, "Bo was not told the verification stopped");
    let shown_code = events.borrow().iter().any(|event| {
        matches!(
            event,
            EngineEvent::Verify {
                step: VerifyStep::Code { .. },
                ..
            }
        )
    });
    assert!(!shown_code, "a code was shown for a broken promise");
    bo.shutdown();
}
