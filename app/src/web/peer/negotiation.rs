//! Perfect negotiation: applying the other side's offers, answers and candidates so that two
//! browsers offering at the same moment still agree, the polite one yielding.

use std::cell::Cell;

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
        }
        SignalPayload::Answer { sdp } => {
            set_remote_description(connection, RtcSdpType::Answer, &sdp).await?;
        }
        SignalPayload::IceCandidate {
            candidate,
            sdp_mid,
            sdp_m_line_index,
        } => {
            let init = RtcIceCandidateInit::new(&candidate);
            init.set_sdp_mid(sdp_mid.as_deref());
            init.set_sdp_m_line_index(sdp_m_line_index);
            let added = wait(
                connection.add_ice_candidate_with_opt_rtc_ice_candidate_init(Some(&init)),
                "adding an ICE candidate",
            )
            .await;
            // Candidates of an offer this side ignored are expected to fail.
            if added.is_err() && !negotiation.ignore_offer.get() {
                added?;
            }
        }
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
