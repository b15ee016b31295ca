//! Perfect negotiation: applying the other side's offers, answers and candidates so that two
//! browsers offering at the same moment still agree, the polite one yielding.

use std::cell::{Cell, RefCell};

use ferry_protocol::{PeerId, SignalPayload};
use wasm_bindgen::JsCast;
use web_sys::{
    RtcIceCandidateInit, RtcPeerConnection, RtcSdpType, RtcSessionDescriptionInit,
    RtcSignalingState,
};

use super::SignalOut;
use crate::web::{JsError, call_method, wait};

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
            // On a collision the polite side's pending offer is rolled back implicitly.
            set_remote_description(connection, RtcSdpType::Offer, &sdp).await?;
            let answer = set_local_description(connection).await?;
            out(remote.clone(), SignalPayload::Answer { sdp: answer });
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

/// Calls the argument-less `setLocalDescription()`, which creates the right offer or answer
/// for the current state (web-sys only binds the form that takes a description), and returns
/// the resulting SDP.
pub(super) async fn set_local_description(
    connection: &RtcPeerConnection,
) -> Result<String, JsError> {
    let promise = call_method(
        connection,
        "setLocalDescription",
        &[],
        "describing the session",
    )?;
    wait(promise.unchecked_into(), "describing the session").await?;
    connection
        .local_description()
        .map(|description| description.sdp())
        .ok_or_else(|| JsError::plain("describing the session", "no local description"))
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
