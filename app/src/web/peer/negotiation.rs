//! Perfect negotiation: applying the other side's offers, answers and candidates so that two
//! browsers offering at the same moment still agree, the polite one yielding.

use std::cell::{Cell, RefCell};

use ferry_protocol::{PeerId, SignalPayload};
use js_sys::Promise;
use wasm_bindgen::JsCast;
use web_sys::{
    RtcIceCandidateInit, RtcIceGatheringState, RtcPeerConnection, RtcSdpType,
    RtcSessionDescriptionInit, RtcSignalingState,
};

use super::SignalOut;
use crate::web::{JsError, call_method, sleep, wait};

/// Negotiation state shared by the link's callbacks and its signal task.
#[derive(Default)]
pub(super) struct Negotiation {
    pub(super) making_offer: Cell<bool>,
    pub(super) ignore_offer: Cell<bool>,
    /// Candidates that came before any description of the other side, to add once one is
    /// set: the other side gathers from the moment it sets its own description, so its first
    /// candidates can be sent before the offer that description makes. Added at once, they
    /// would fail ("the remote description was null") and be lost; two browsers offering at
    /// the same moment over one loopback address then found no path at all.
    early: RefCell<Vec<RtcIceCandidateInit>>,
}

/// Applies one signal from the other side, per perfect negotiation.
pub(super) async fn apply_signal(
    connection: &RtcPeerConnection,
    negotiation: &Negotiation,
    polite: bool,
    remote: &PeerId,
    out: &SignalOut,
    payload: SignalPayload,
) -> Result<(), JsError> {
    match payload {
        SignalPayload::Offer { sdp } => {
            let collision = negotiation.making_offer.get()
                || connection.signaling_state() != RtcSignalingState::Stable;
            negotiation.ignore_offer.set(!polite && collision);
            if negotiation.ignore_offer.get() {
                return Ok(());
            }
            if collision {
                gathered_or_gave_up(connection).await;
            }
            // On a collision the polite side's pending offer is rolled back implicitly.
            set_remote_description(connection, RtcSdpType::Offer, &sdp).await?;
            let answer = described(connection, describe_now(connection)?).await?;
            out(remote.clone(), answer);
            add_early_candidates(connection, negotiation).await?;
        }
        SignalPayload::Answer { sdp } => {
            set_remote_description(connection, RtcSdpType::Answer, &sdp).await?;
            add_early_candidates(connection, negotiation).await?;
        }
        SignalPayload::IceCandidate {
            candidate,
            sdp_mid,
            sdp_m_line_index,
        } => {
            let init = RtcIceCandidateInit::new(&candidate);
            init.set_sdp_mid(sdp_mid.as_deref());
            init.set_sdp_m_line_index(sdp_m_line_index);
            if connection.remote_description().is_none() {
                negotiation.early.borrow_mut().push(init);
                return Ok(());
            }
            add_candidate(connection, negotiation, &init).await?;
        }
    }
    Ok(())
}

/// How long the polite side waits for its own gathering to complete before it rolls its
/// offer back.
const GATHERING_PATIENCE_MS: u32 = 2_000;

/// Waits until the connection has gathered its candidates, or gives up after
/// [`GATHERING_PATIENCE_MS`].
///
/// Chromium rolling back an offer before it has gathered for it (gathering starts only once
/// the offer is set, so an offer colliding at once has not even begun) stops that gathering
/// for good: the answer that follows, even an ICE restart after it, gathers no candidate at
/// all, so the other side has nothing to reach this one with and the two never connect (the
/// glare wasm test, run on its own, failed every time). Once gathering is complete, the
/// candidates already sent stay good for the answer, which keeps the same ICE credentials;
/// the other side adds them once its description is set (`early`). On loopback or a LAN
/// gathering takes milliseconds.
async fn gathered_or_gave_up(connection: &RtcPeerConnection) {
    let mut waited = 0;
    while connection.ice_gathering_state() != RtcIceGatheringState::Complete
        && waited < GATHERING_PATIENCE_MS
    {
        sleep(10).await;
        waited += 10;
    }
}

/// Adds the candidates that came before the other side's description, now that it is set.
async fn add_early_candidates(
    connection: &RtcPeerConnection,
    negotiation: &Negotiation,
) -> Result<(), JsError> {
    let early = std::mem::take(&mut *negotiation.early.borrow_mut());
    for init in &early {
        add_candidate(connection, negotiation, init).await?;
    }
    Ok(())
}

async fn add_candidate(
    connection: &RtcPeerConnection,
    negotiation: &Negotiation,
    init: &RtcIceCandidateInit,
) -> Result<(), JsError> {
    let added = wait(
        connection.add_ice_candidate_with_opt_rtc_ice_candidate_init(Some(init)),
        "adding an ICE candidate",
    )
    .await;
    // Candidates of an offer this side ignored are expected to fail.
    if added.is_err() && !negotiation.ignore_offer.get() {
        added?;
    }
    Ok(())
}

/// Starts the argument-less `setLocalDescription()` now, which creates the right offer or
/// answer for the state the connection is in when it runs (web-sys only binds the form that
/// takes a description); [`described`] waits for it.
///
/// Started a moment after whatever decided it (a `negotiationneeded` event handled by a
/// task), a remote offer applied in between turns an intended offer into an answer: what it
/// turned out to be is what [`described`] sends.
pub(super) fn describe_now(connection: &RtcPeerConnection) -> Result<Promise, JsError> {
    let promise = call_method(
        connection,
        "setLocalDescription",
        &[],
        "describing the session",
    )?;
    Ok(promise.unchecked_into())
}

/// Waits for a description [`describe_now`] started and returns it as the signal to send:
/// an offer or an answer, as it turned out, never one labelled as the other.
pub(super) async fn described(
    connection: &RtcPeerConnection,
    started: Promise,
) -> Result<SignalPayload, JsError> {
    wait(started, "describing the session").await?;
    let description = connection
        .local_description()
        .ok_or_else(|| JsError::plain("describing the session", "no local description"))?;
    let sdp = description.sdp();
    match description.type_() {
        RtcSdpType::Offer => Ok(SignalPayload::Offer { sdp }),
        RtcSdpType::Answer => Ok(SignalPayload::Answer { sdp }),
        other => Err(JsError::plain(
            "describing the session",
            format!("a {other:?} description is not sent"),
        )),
    }
}

async fn set_remote_description(
    connection: &RtcPeerConnection,
    kind: RtcSdpType,
    sdp: &str,
) -> Result<(), JsError> {
    let init = RtcSessionDescriptionInit::new(kind);
    init.set_sdp(sdp);
    wait(
        connection.set_remote_description(&init),
        "applying the other browser's session description",
    )
    .await
    .map(drop)
}
