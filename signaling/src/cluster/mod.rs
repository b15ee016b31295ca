//! Several instances as one service on one Redis: every nick is claimed there before a join
//! succeeds, and each instance tells the others who is listed where and hands on signals for
//! the sessions they hold. An instance alone has no cluster: its registry holds everything.
//!
//! One worker per instance runs what the registry queues ([`Outgoing`]), in order: a claim
//! waits behind the release of the session that held the nick before it, and a signal
//! never overtakes the presence news sent before it. Consecutive publications go to Redis in
//! one pipeline.
//!
//! Each instance also:
//! - keeps a liveness key (`ferry:alive:ID`) and a hash of its listed sessions
//!   (`ferry:members:ID`) for [`INSTANCE_TTL`] past its last refresh, and refreshes its
//!   sessions' nick claims for as long;
//! - listens on `ferry:presence` (everyone's news) and `ferry:to:ID` (signals for its own
//!   sessions), and on every (re)connection reads a snapshot of every live instance's
//!   sessions;
//! - forgets the sessions of an instance whose liveness key expired: a killed instance's
//!   users vanish from everyone's lists, and their nicks are free again, within
//!   [`INSTANCE_TTL`] and a refresh period;
//! - keeps pairing codes ([`crate::store::codes`]) and the classic API's registrations
//!   ([`crate::store::classic`]) in Redis rather than in its registry, so they work through
//!   every instance and their limits are one budget.

mod listen;
mod refresh;
mod work;

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use ferry_protocol::{ClusterMessage, PairCode, PeerId, RoomId};
use tokio::sync::{mpsc, oneshot};

use crate::AppState;
use crate::address;
use crate::pairing::PairLimits;
use crate::store::codes::{Codes, Found};
use crate::store::redis::RedisStore;
use crate::store::{Claim, Claimed, Unreachable};

/// How long an instance's liveness, its sessions' listing and their nick claims last past
/// the instance's last refresh: how soon the service forgets an instance that died.
pub const INSTANCE_TTL: Duration = Duration::from_secs(15);

/// The channel every instance's presence news goes to.
const PRESENCE_CHANNEL: &str = "ferry:presence";

/// The most publications sent to Redis in one pipeline.
const PUBLISH_BATCH: usize = 256;

/// The most presence news kept while Redis does not take it; past that, the instance's whole
/// listing is written and told again once Redis is back.
const MAX_UNSENT: usize = 100_000;

/// What the registry asks the worker to do.
#[derive(Debug)]
pub(crate) enum Outgoing {
    /// Tell the other instances (a session listed, away or gone).
    Presence(ClusterMessage),
    /// Hand a signal to the instance holding its addressee.
    Signal {
        instance: String,
        message: ClusterMessage,
    },
    /// Let a nick go.
    Release(Claim),
    /// Claim a nick, and a place of the session's address, answering how that went.
    Claim(Claim, oneshot::Sender<Result<Claimed, Unreachable>>),
    /// Send the presence news Redis did not take earlier, if any.
    Flush,
    /// End the pairing code this session made: it left.
    ForgetCode(PeerId),
    /// Write the instance's listing and claims anew: the store lost them (it restarted), or
    /// never had them (the instance just started).
    Restore {
        listed: Vec<ClusterMessage>,
        claims: Vec<Claim>,
    },
}

/// Where the registry queues [`Outgoing`] work.
#[derive(Debug)]
pub(crate) struct Outbox {
    /// This instance's id, which its news carries.
    pub(crate) instance: String,
    pub(crate) tx: mpsc::UnboundedSender<Outgoing>,
}

/// This instance's part in the service.
#[derive(Debug)]
pub(crate) struct Cluster {
    instance: String,
    /// The Redis every instance of the service shares.
    redis: RedisStore,
    ttl: Duration,
    tx: mpsc::UnboundedSender<Outgoing>,
    /// Whether the store answered the last time it was asked.
    healthy: AtomicBool,
    /// The pairing scripts, for codes shared through Redis.
    codes: Codes,
}

impl Cluster {
    /// An instance sharing its state through the Redis at `redis`, with the queue its worker
    /// reads. An instance alone has no part in a cluster: its registry holds its nicks.
    pub(crate) fn new(
        redis: &str,
        ttl: Duration,
    ) -> Result<(Arc<Self>, mpsc::UnboundedReceiver<Outgoing>), redis::RedisError> {
        let redis = RedisStore::open(redis, settle(ttl))?;
        let (tx, rx) = mpsc::unbounded_channel();
        let cluster = Self {
            instance: instance_id(),
            redis,
            ttl,
            tx,
            healthy: AtomicBool::new(true),
            codes: Codes::default(),
        };
        Ok((Arc::new(cluster), rx))
    }

    /// Where the registry queues its work.
    pub(crate) fn outbox(&self) -> Outbox {
        Outbox {
            instance: self.instance.clone(),
            tx: self.tx.clone(),
        }
    }

    /// Claims `claim` for a join, after whatever was queued before it.
    pub(crate) async fn claim(&self, claim: Claim) -> Result<Claimed, Unreachable> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Outgoing::Claim(claim, reply))
            .map_err(|_| Unreachable("the server is shutting down".into()))?;
        // The worker answers within its own call's timeout once it reaches this claim; a long
        // queue ahead of it is Redis too slow to wait for.
        match tokio::time::timeout(crate::store::redis::CALL_TIMEOUT * 2, answer).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(_)) => Err(Unreachable("the server is shutting down".into())),
            Err(_) => Err(Unreachable("the store is too slow to answer".into())),
        }
    }

    /// Lets `claim` go, after whatever was queued before it.
    pub(crate) fn release(&self, claim: Claim) {
        let _ = self.tx.send(Outgoing::Release(claim));
    }

    /// The Redis the instances share, where the classic API's registrations live.
    pub(crate) fn redis(&self) -> &RedisStore {
        &self.redis
    }

    /// A code into `room` for `maker`, drawn from `candidates`, within `limits`; `None` when
    /// as many codes are good as may be.
    pub(crate) async fn make_code(
        &self,
        maker: &PeerId,
        room: &RoomId,
        limits: &PairLimits,
        candidates: Vec<PairCode>,
    ) -> Result<Option<PairCode>, Unreachable> {
        let made = self
            .codes
            .make(
                &self.redis,
                maker,
                room,
                limits.lifetime,
                limits.max_codes,
                candidates,
            )
            .await;
        self.note(&made);
        made
    }

    /// Looks `code` up for a try from `from`, within `limits`.
    pub(crate) async fn find_code(
        &self,
        code: &PairCode,
        from: Option<IpAddr>,
        limits: &PairLimits,
    ) -> Result<Found, Unreachable> {
        let address = from.map_or_else(|| "none".to_owned(), |ip| address::place(ip).to_string());
        let found = self
            .codes
            .find(
                &self.redis,
                code,
                &address,
                limits.tries_per_address,
                limits.tries_total,
            )
            .await;
        self.note(&found);
        found
    }

    /// Uses `code` up for a join it leads in, before the join is taken, so that no two
    /// people anywhere get in by one code: false when someone else used it first.
    pub(crate) async fn take_code(&self, code: &PairCode) -> Result<bool, Unreachable> {
        let taken = self.codes.take(&self.redis, code).await;
        self.note(&taken);
        taken
    }

    /// Whether the store answered the last time it was asked.
    pub(crate) fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }

    /// Notes how the store's last call went, saying so in the log when that changed.
    fn note<T>(&self, result: &Result<T, Unreachable>) {
        let healthy = result.is_ok();
        if self.healthy.swap(healthy, Ordering::Relaxed) != healthy {
            match result {
                Ok(_) => tracing::info!("the shared store answers again"),
                Err(error) => tracing::warn!(%error, "the shared store does not answer"),
            }
        }
    }
}

/// How long claims wait after Redis started empty: a refresh period, in which every live
/// instance finds its liveness key gone and writes its claims again, and a margin.
fn settle(ttl: Duration) -> Duration {
    ttl / 3 + Duration::from_millis(500)
}

/// A random id for this instance.
fn instance_id() -> String {
    let mut bytes = [0u8; 8];
    // Without the operating system's random source the server could not make session ids
    // either; the time is unique enough to tell instances apart.
    if getrandom::fill(&mut bytes).is_err() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| since.as_nanos());
        bytes = (nanos as u64).to_le_bytes();
    }
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Starts the instance's part: the worker, the refresher, the listener and the reaper, until
/// shutdown.
pub(crate) fn start(
    state: &AppState,
    cluster: &Arc<Cluster>,
    rx: mpsc::UnboundedReceiver<Outgoing>,
) {
    state
        .tasks()
        .spawn(work::work(state.clone(), Arc::clone(cluster), rx));
    state
        .tasks()
        .spawn(refresh::refresh(state.clone(), Arc::clone(cluster)));
    state
        .tasks()
        .spawn(listen::listen(state.clone(), Arc::clone(cluster)));
    state
        .tasks()
        .spawn(listen::reap(state.clone(), Arc::clone(cluster)));
}

/// The key whose life is an instance's.
fn alive_key(instance: &str) -> String {
    format!("ferry:alive:{instance}")
}

/// The hash of an instance's listed sessions.
fn members_key(instance: &str) -> String {
    format!("ferry:members:{instance}")
}

/// The channel of signals for an instance's sessions.
fn signals_key(instance: &str) -> String {
    format!("ferry:to:{instance}")
}
