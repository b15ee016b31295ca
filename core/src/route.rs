//! How two browsers' bytes travel: straight between them or through a TURN relay, read from
//! the peer connection's statistics; and, when no path was found, the likeliest reason.
//!
//! The browser glue hands over the statistics as JSON values (`RTCStatsReport` entries) and the
//! ICE errors as they came; the decisions are made here, under native tests, on the shapes
//! Chromium and Firefox report.

use std::fmt;

use serde_json::Value;

/// The path the bytes of a connection take.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// Straight from one browser to the other (host, server- or peer-reflexive candidates).
    Direct,
    /// Through a TURN relay, on at least one side.
    Relayed,
}

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Direct => "Direct",
            Self::Relayed => "Relayed",
        })
    }
}

/// Why two browsers found no network path to each other.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoPath {
    /// The relay answered, but refused the credentials (TURN error 401 or 403).
    RelayRefused,
    /// The relay did not answer at all.
    RelayUnreachable,
    /// There is no direct path, and no relay to fall back on.
    NoRelay,
    /// Neither a direct path nor the relay worked, for no reason the browser gave.
    Blocked,
}

impl fmt::Display for NoPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::RelayRefused => "the relay refused Ferry's credentials",
            Self::RelayUnreachable => "the relay could not be reached",
            Self::NoRelay => "no relay is configured",
            Self::Blocked => "neither a direct path nor the relay worked",
        })
    }
}

/// An `icecandidateerror` as the browser reported it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IceError {
    /// The STUN or TURN server's URL.
    pub url: String,
    /// The STUN error code (401 Unauthorized, 403 Forbidden), or 701 when the server did not
    /// answer.
    pub code: u16,
}

impl NoPath {
    /// The reason to give, from whether a relay was configured and the errors the ICE agent
    /// met while gathering.
    pub fn from_errors(relay_configured: bool, errors: &[IceError]) -> Self {
        let relay =
            |error: &&IceError| error.url.starts_with("turn:") || error.url.starts_with("turns:");
        if errors
            .iter()
            .filter(relay)
            .any(|error| matches!(error.code, 401 | 403))
        {
            Self::RelayRefused
        } else if !relay_configured {
            Self::NoRelay
        } else if errors
            .iter()
            .filter(relay)
            .any(|error| (700..800).contains(&error.code))
        {
            Self::RelayUnreachable
        } else {
            Self::Blocked
        }
    }
}

/// The round trip of the selected candidate pair in `stats`, in milliseconds (the browsers
/// report `currentRoundTripTime` in seconds).
pub fn round_trip_ms(stats: &[Value]) -> Option<f64> {
    let pair = selected_pair(stats)?;
    pair["currentRoundTripTime"]
        .as_f64()
        .map(|seconds| seconds * 1000.0)
}

/// The route of the selected candidate pair in `stats` (the entries of an `RTCStatsReport`),
/// `None` while no pair is selected.
pub fn route_from_stats(stats: &[Value]) -> Option<Route> {
    let by_id = |id: &str| stats.iter().find(|entry| entry["id"].as_str() == Some(id));
    let pair = selected_pair(stats)?;
    let kind = |key: &str| {
        let candidate = by_id(pair[key].as_str()?)?;
        candidate["candidateType"].as_str().map(str::to_owned)
    };
    let (local, remote) = (kind("localCandidateId")?, kind("remoteCandidateId")?);
    Some(if local == "relay" || remote == "relay" {
        Route::Relayed
    } else {
        Route::Direct
    })
}

/// The candidate pair in use: Chromium names it in the `transport` entry
/// (`selectedCandidatePairId`); Firefox marks it with `selected: true`; failing both, a
/// nominated pair that succeeded is the one in use.
fn selected_pair(stats: &[Value]) -> Option<&Value> {
    let of_type = |kind: &'static str| {
        stats
            .iter()
            .filter(move |entry| entry["type"].as_str() == Some(kind))
    };
    let by_id = |id: &str| stats.iter().find(|entry| entry["id"].as_str() == Some(id));
    of_type("transport")
        .find_map(|transport| by_id(transport["selectedCandidatePairId"].as_str()?))
        .or_else(|| of_type("candidate-pair").find(|pair| pair["selected"] == true))
        .or_else(|| {
            of_type("candidate-pair")
                .find(|pair| pair["nominated"] == true && pair["state"] == "succeeded")
        })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn candidates(local: &str, remote: &str) -> Vec<Value> {
        vec![
            json!({"type": "local-candidate", "id": "L1", "candidateType": local}),
            json!({"type": "remote-candidate", "id": "R1", "candidateType": remote}),
            json!({"type": "local-candidate", "id": "L2", "candidateType": "host"}),
            json!({"type": "remote-candidate", "id": "R2", "candidateType": "host"}),
            json!({"type": "candidate-pair", "id": "P2", "localCandidateId": "L2",
                   "remoteCandidateId": "R2", "state": "failed", "nominated": false}),
        ]
    }

    #[test]
    fn chromium_names_the_selected_pair_in_its_transport() {
        let mut stats = candidates("relay", "host");
        stats.push(
            json!({"type": "candidate-pair", "id": "P1", "localCandidateId": "L1",
                          "remoteCandidateId": "R1", "state": "succeeded"}),
        );
        stats.push(json!({"type": "transport", "id": "T1", "selectedCandidatePairId": "P1"}));
        assert_eq!(route_from_stats(&stats), Some(Route::Relayed));
    }

    #[test]
    fn firefox_marks_the_selected_pair() {
        let mut stats = candidates("host", "relay");
        stats.push(
            json!({"type": "candidate-pair", "id": "P1", "localCandidateId": "L1",
                          "remoteCandidateId": "R1", "selected": true}),
        );
        assert_eq!(route_from_stats(&stats), Some(Route::Relayed));
        let mut stats = candidates("srflx", "prflx");
        stats.push(
            json!({"type": "candidate-pair", "id": "P1", "localCandidateId": "L1",
                          "remoteCandidateId": "R1", "nominated": true, "state": "succeeded"}),
        );
        assert_eq!(route_from_stats(&stats), Some(Route::Direct));
    }

    #[test]
    fn the_round_trip_is_the_selected_pairs_in_milliseconds() {
        let mut stats = candidates("host", "host");
        stats.push(
            json!({"type": "candidate-pair", "id": "P1", "localCandidateId": "L1",
                          "remoteCandidateId": "R1", "selected": true,
                          "currentRoundTripTime": 0.021}),
        );
        assert_eq!(round_trip_ms(&stats), Some(21.0));
        assert_eq!(round_trip_ms(&candidates("host", "host")), None);
    }

    #[test]
    fn no_selected_pair_means_no_route_yet() {
        assert_eq!(route_from_stats(&candidates("host", "host")), None);
        let mut stats = candidates("host", "host");
        stats.push(json!({"type": "transport", "id": "T1"}));
        assert_eq!(route_from_stats(&stats), None);
        assert_eq!(route_from_stats(&[]), None);
    }

    #[test]
    fn the_reason_for_no_path_prefers_what_the_relay_said() {
        let error = |url: &str, code| IceError {
            url: url.into(),
            code,
        };
        let refused = [
            error("stun:stun.example:3478", 701),
            error("turn:10.77.0.1:3478?transport=udp", 401),
        ];
        assert_eq!(NoPath::from_errors(true, &refused), NoPath::RelayRefused);
        let silent = [error("turns:relay.example:443", 701)];
        assert_eq!(NoPath::from_errors(true, &silent), NoPath::RelayUnreachable);
        assert_eq!(NoPath::from_errors(true, &[]), NoPath::Blocked);
        let stun_only = [error("stun:stun.example:3478", 701)];
        assert_eq!(NoPath::from_errors(false, &stun_only), NoPath::NoRelay);
        assert_eq!(
            NoPath::RelayRefused.to_string(),
            "the relay refused Ferry's credentials"
        );
    }
}
