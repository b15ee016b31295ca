//! Joining and pairing codes for one connection: the nick claimed from the service's store
//! before the registry takes the join, and with Redis a pairing code made, looked up and used
//! up in the shared store, so it works through any instance.

use ferry_protocol::{ErrorCode, Nick, PROTOCOL_VERSION, PairCode, PeerId, Place, SessionToken};
use tokio::sync::oneshot;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use super::{Ending, Reader, fresh_ids, renewal};
use crate::outbound::Outbound;
use crate::pairing::{PairRefusal, candidates, numbers};
use crate::registry::{
    Connection, Refusal, Target, claim_of, encode, no_room_for_codes, pairing_refused, taken,
    too_many_sessions,
};
use crate::store::codes::Found;
use crate::store::{Claimed, Unreachable};

impl Reader {
    /// Joins, claiming the nick from the service's store first unless a session here holds
    /// it (the join then reclaims it with its token, or is refused).
    pub(super) async fn join(
        &mut self,
        version: u32,
        nick: &str,
        token: Option<SessionToken>,
        place: &Place,
    ) -> Option<Ending> {
        if version != PROTOCOL_VERSION {
            return Some(Ending::Fatal {
                refusal: Some(Refusal::new(
                    ErrorCode::UnsupportedVersion,
                    format!(
                        "this server speaks protocol version {PROTOCOL_VERSION}, not {version}; reload the page"
                    ),
                )),
                code: CloseCode::Policy,
                reason: "unsupported protocol version",
            });
        }
        let nick = match Nick::new(nick) {
            Ok(nick) => nick,
            Err(err) => {
                return self.refuse(Refusal::new(ErrorCode::InvalidNick, err.to_string()));
            }
        };
        let mut fresh = match fresh_ids() {
            Ok(fresh) => fresh,
            Err(err) => {
                tracing::error!(error = %err, "no random numbers for a new session");
                return Some(Ending::Internal);
            }
        };
        let (target, by_code) = match self.target(&nick, place).await {
            Ok(found) => found,
            Err(refusal) => return self.refuse(refusal),
        };
        let mut claimed = None;
        if let Some(cluster) = self.state.cluster().filter(|_| target.claim) {
            // A page back with its token claims for that token: the nick it held through an
            // instance that died is still its own, and its new session keeps the token.
            let owner = token.clone().unwrap_or_else(|| fresh.token.clone());
            let per_address = self.state.config().limits.max_sessions_per_ip;
            let claim = claim_of(&target.key, &nick, &owner, self.from, per_address);
            match cluster.claim(claim.clone()).await {
                Ok(Claimed::Won) => {
                    fresh.token = owner;
                    fresh.claimed = true;
                    claimed = Some(claim);
                }
                Ok(Claimed::Taken) => return self.refuse(taken(&nick)),
                Ok(Claimed::Limited(_)) => return self.refuse(too_many_sessions()),
                Err(error) => return self.refuse(self.unavailable(&error)),
            }
        }
        // With codes in the shared store the code is used up before the join is taken: two
        // people trying one code through two instances at once cannot both get in. A join
        // refused after this (a full room) costs the code.
        if let (Some(cluster), Some(code)) = (self.state.cluster(), &by_code) {
            match cluster.take_code(code).await {
                Ok(true) => {}
                Ok(false) => {
                    if let Some(claim) = claimed {
                        cluster.release(claim);
                    }
                    return self.refuse(pairing_refused(PairRefusal::Wrong, code));
                }
                Err(error) => {
                    if let Some(claim) = claimed {
                        cluster.release(claim);
                    }
                    return self.refuse(self.unavailable(&error));
                }
            }
        }
        let (kick_tx, kick_rx) = oneshot::channel();
        let conn = Connection::new(
            self.conn,
            self.tx.clone(),
            kick_tx,
            self.from,
            self.state.config().limits.signals,
            Instant::now(),
        );
        let joined = self.state.registry().join_at(
            nick,
            token.as_ref(),
            target,
            fresh,
            conn,
            Instant::now(),
        );
        match joined {
            Ok(id) => {
                self.joined = Some(id);
                self.kick = Some(kick_rx);
                self.renew = renewal(&self.state);
                let deadline = Instant::now() + self.silence_allowed();
                self.silence.as_mut().reset(deadline);
                None
            }
            Err(refusal) => {
                if let (Some(cluster), Some(claim)) = (self.state.cluster(), claimed) {
                    cluster.release(claim);
                }
                self.refuse(refusal)
            }
        }
    }

    /// Where a join of `nick` into `place` goes: a pairing code is looked up in the shared
    /// store when there is one (and then returned, to be used up once the join succeeds), in
    /// the registry otherwise.
    async fn target(
        &self,
        nick: &Nick,
        place: &Place,
    ) -> Result<(Target, Option<PairCode>), Refusal> {
        let now = Instant::now();
        let (Place::Code(code), Some(cluster)) = (place, self.state.cluster()) else {
            let target = self.state.registry().target(nick, place, self.from, now)?;
            return Ok((target, None));
        };
        let limits = self.state.config().limits.pairing;
        let refusal = match cluster.find_code(code, self.from, &limits).await {
            Ok(Found::Room(room)) => {
                let target = self.state.registry().target_by_code(
                    nick,
                    room,
                    code.clone(),
                    self.from,
                    now,
                )?;
                return Ok((target, Some(code.clone())));
            }
            Ok(Found::Wrong) => PairRefusal::Wrong,
            Ok(Found::TooManyFromAddress(wait)) => PairRefusal::TooManyFromAddress(wait),
            Ok(Found::TooManyInAll(wait)) => PairRefusal::TooManyInAll(wait),
            Err(error) => return Err(self.unavailable(&error)),
        };
        Err(pairing_refused(refusal, code))
    }

    /// A pairing code into the room of session `id`: in the shared store when there is one,
    /// in the registry otherwise.
    pub(super) async fn make_code(&self, id: &PeerId) -> Option<Ending> {
        let numbers = match numbers() {
            Ok(numbers) => numbers,
            Err(err) => {
                tracing::error!(error = %err, "no random numbers for a pairing code");
                return Some(Ending::Internal);
            }
        };
        let Some(cluster) = self.state.cluster() else {
            let made = self
                .state
                .registry()
                .make_code(id, self.conn, numbers, Instant::now());
            return match made {
                Ok(message) => self.queue(Outbound::Text(encode(&message))),
                Err(refusal) => self.refuse(refusal),
            };
        };
        let room = match self.state.registry().room_of(id, self.conn) {
            Ok(room) => room,
            Err(refusal) => return self.refuse(refusal),
        };
        let limits = self.state.config().limits.pairing;
        match cluster
            .make_code(id, &room, &limits, candidates(numbers))
            .await
        {
            Ok(Some(code)) => {
                let message = ferry_protocol::ServerMessage::PairCode {
                    code,
                    expires_in_secs: limits.lifetime.as_secs(),
                };
                self.queue(Outbound::Text(encode(&message)))
            }
            Ok(None) => self.refuse(no_room_for_codes()),
            Err(error) => self.refuse(self.unavailable(&error)),
        }
    }

    /// The refusal of what needs the shared store while it does not answer.
    fn unavailable(&self, error: &Unreachable) -> Refusal {
        tracing::warn!(conn = self.conn, %error, "refused: the shared store does not answer");
        Refusal::new(
            ErrorCode::Unavailable,
            "the service is restarting, retrying…",
        )
    }
}
