//! Several instances as one service: every nick is claimed in the shared store before a join
//! succeeds, and with Redis each instance tells the others who is listed where and hands on
//! signals for the sessions they hold.
//!
//! One worker per instance runs what the registry queues ([`Outgoing`]), in order: a claim
//! waits behind the release of the session that held the nick before it, and a signal
//! never overtakes the presence news sent before it. Consecutive publications go to Redis in
//! one pipeline.
//!
//! With Redis, an instance also:
//! - keeps a liveness key (`ferry:alive:ID`) and a hash of its listed sessions
//!   (`ferry:members:ID`) for [`INSTANCE_TTL`] past its last refresh, and refreshes its
//!   sessions' nick claims for as long;
//! - listens on `ferry:presence` (everyone's news) and `ferry:to:ID` (signals for its own
//!   sessions), and on every (re)connection reads a snapshot of every live instance's
//!   sessions;
//! - forgets the sessions of an instance whose liveness key expired: a killed instance's
//!   users vanish from everyone's lists, and their nicks are free again, within
//!   [`INSTANCE_TTL`] and a refresh period.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use std::net::IpAddr;

use ferry_protocol::{ClusterMessage, PairCode, PeerId, RoomId, ServerMessage, Wire};
use futures::StreamExt;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::AppState;
use crate::address;
use crate::pairing::PairLimits;
use crate::registry::{Listed, PlaceKey};
use crate::store::codes::{Codes, Found};
use crate::store::redis::{RedisStore, millis};
use crate::store::{Claim, Claimed, Store, Unreachable, memory::Memory};

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
    /// Whether other instances share the store: presence news is sent only then.
    pub(crate) shared: bool,
    pub(crate) tx: mpsc::UnboundedSender<Outgoing>,
}

/// This instance's part in the service.
#[derive(Debug)]
pub(crate) struct Cluster {
    instance: String,
    store: Store,
    ttl: Duration,
    tx: mpsc::UnboundedSender<Outgoing>,
    /// Whether the store answered the last time it was asked.
    healthy: AtomicBool,
    /// The pairing scripts, for codes shared through Redis.
    codes: Codes,
}

impl Cluster {
    /// An instance sharing its state through the Redis at `redis`, or alone; with the queue
    /// its worker reads.
    pub(crate) fn new(
        redis: Option<&str>,
        ttl: Duration,
    ) -> Result<(Arc<Self>, mpsc::UnboundedReceiver<Outgoing>), redis::RedisError> {
        let store = match redis {
            Some(url) => Store::Redis(Box::new(RedisStore::open(url, settle(ttl))?)),
            None => Store::Memory(Memory::default()),
        };
        let (tx, rx) = mpsc::unbounded_channel();
        let cluster = Self {
            instance: instance_id(),
            store,
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
            shared: matches!(self.store, Store::Redis(_)),
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
        // queue ahead of it is a store too slow to wait for.
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

    /// Whether pairing codes live in the shared store (with Redis) rather than in the
    /// registry.
    pub(crate) fn shares_codes(&self) -> bool {
        self.redis().is_some()
    }

    /// The store and Redis, when several instances share them: the classic API's
    /// registrations live there then.
    pub(crate) fn shared(&self) -> Option<(&Store, &RedisStore)> {
        self.redis().map(|redis| (&self.store, redis))
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
        let redis = self
            .redis()
            .ok_or_else(|| Unreachable("no shared store".into()))?;
        let made = self
            .codes
            .make(
                redis,
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
        let redis = self
            .redis()
            .ok_or_else(|| Unreachable("no shared store".into()))?;
        let address = from.map_or_else(|| "none".to_owned(), |ip| address::place(ip).to_string());
        let found = self
            .codes
            .find(
                redis,
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
        let redis = self
            .redis()
            .ok_or_else(|| Unreachable("no shared store".into()))?;
        let taken = self.codes.take(redis, code).await;
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

    fn redis(&self) -> Option<&RedisStore> {
        match &self.store {
            Store::Redis(redis) => Some(redis),
            Store::Memory(_) => None,
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

/// Starts the instance's part: the worker and the refresher, and with Redis the listener and
/// the reaper, until shutdown.
pub(crate) fn start(
    state: &AppState,
    cluster: &Arc<Cluster>,
    rx: mpsc::UnboundedReceiver<Outgoing>,
) {
    state
        .tasks()
        .spawn(work(state.clone(), Arc::clone(cluster), rx));
    state
        .tasks()
        .spawn(refresh(state.clone(), Arc::clone(cluster)));
    if cluster.redis().is_some() {
        state
            .tasks()
            .spawn(listen(state.clone(), Arc::clone(cluster)));
        state
            .tasks()
            .spawn(reap(state.clone(), Arc::clone(cluster)));
    }
}

/// Runs the queued work in order until shutdown.
async fn work(state: AppState, cluster: Arc<Cluster>, mut rx: mpsc::UnboundedReceiver<Outgoing>) {
    let mut held = None;
    // Presence news Redis did not take, oldest first: sent again ahead of newer news, so the
    // others hear every arrival and departure, in order, once Redis is back.
    let mut unsent = Vec::new();
    loop {
        let next = match held.take() {
            Some(next) => next,
            None => tokio::select! {
                () = state.shutdown().cancelled() => return,
                next = rx.recv() => match next {
                    Some(next) => next,
                    None => return,
                },
            },
        };
        match next {
            Outgoing::Claim(claim, reply) => {
                let won = cluster.store.claim(&claim, cluster.ttl, false).await;
                cluster.note(&won);
                let _ = reply.send(won);
            }
            Outgoing::Restore { listed, claims } => {
                let restored = restore(&cluster, listed, claims).await;
                cluster.note(&restored);
            }
            Outgoing::ForgetCode(maker) => {
                if let Some(redis) = cluster.redis() {
                    let _ = cluster.codes.forget(redis, &maker).await;
                }
            }
            Outgoing::Flush => {
                if !unsent.is_empty() {
                    publish(&state, &cluster, Vec::new(), &mut unsent).await;
                }
            }
            Outgoing::Release(claim) => {
                if let Err(error) = cluster.store.release(&claim).await {
                    // The claim runs out by itself within the time-to-live.
                    tracing::debug!(%error, "could not let a nick go");
                }
            }
            first @ (Outgoing::Presence(_) | Outgoing::Signal { .. }) => {
                let mut batch = vec![first];
                while batch.len() < PUBLISH_BATCH {
                    match rx.try_recv() {
                        Ok(next @ (Outgoing::Presence(_) | Outgoing::Signal { .. })) => {
                            batch.push(next);
                        }
                        Ok(other) => {
                            held = Some(other);
                            break;
                        }
                        Err(_) => break,
                    }
                }
                publish(&state, &cluster, batch, &mut unsent).await;
            }
        }
    }
}

/// Sends presence news and signals in one pipeline, after the news Redis did not take
/// before (`unsent`): each piece of news also updates the instance's hash of listed sessions,
/// for a snapshot. What Redis does not take now is kept in `unsent`, but signals, which are
/// stale by the time it is back: the pages send them again.
async fn publish(
    state: &AppState,
    cluster: &Cluster,
    batch: Vec<Outgoing>,
    unsent: &mut Vec<ClusterMessage>,
) {
    let Some(redis) = cluster.redis() else {
        return;
    };
    let members = members_key(&cluster.instance);
    let mut pipe = redis::pipe();
    let mut news = std::mem::take(unsent);
    for outgoing in batch {
        match outgoing {
            Outgoing::Presence(message) => news.push(message),
            Outgoing::Signal { instance, message } => {
                pipe.publish(signals_key(&instance), message.to_json())
                    .ignore();
            }
            Outgoing::Release(_)
            | Outgoing::Claim(..)
            | Outgoing::Restore { .. }
            | Outgoing::Flush
            | Outgoing::ForgetCode(_) => {}
        }
    }
    for message in &news {
        match message {
            ClusterMessage::Listed { id, .. } => {
                pipe.hset(&members, id.as_str(), message.to_json()).ignore();
            }
            ClusterMessage::Away { id, .. } | ClusterMessage::Left { id, .. } => {
                pipe.hdel(&members, id.as_str()).ignore();
            }
            ClusterMessage::Signal { .. } => {}
        }
        pipe.publish(PRESENCE_CHANNEL, message.to_json()).ignore();
    }
    let sent = redis.call::<()>(pipe).await;
    cluster.note(&sent);
    if sent.is_err() {
        if news.len() > MAX_UNSENT {
            // Too much to keep: the listing is written and told whole instead.
            tracing::warn!(
                news = news.len(),
                "too much news kept for Redis; the listing will be written again"
            );
            state.registry().restore();
        } else {
            *unsent = news;
        }
    }
}

/// Keeps this instance's nick claims (and with Redis its liveness and listing) alive, three
/// times per time-to-live.
async fn refresh(state: AppState, cluster: Arc<Cluster>) {
    let mut ticks = tokio::time::interval(cluster.ttl / 3);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = state.shutdown().cancelled() => return,
            _ = ticks.tick() => {}
        }
        // Claims first, liveness after: a dead instance's claims run out just before its
        // liveness does, so by the time the others see it gone its people's nicks are free.
        let claims = state.registry().claims();
        let refreshed = cluster.store.refresh(&claims, cluster.ttl).await;
        cluster.note(&refreshed);
        if refreshed.is_err() {
            continue;
        }
        if let Some(redis) = cluster.redis() {
            let alive = keep_alive(&state, &cluster, redis).await;
            cluster.note(&alive);
            if alive.is_ok() {
                let _ = cluster.tx.send(Outgoing::Flush);
            }
        }
    }
}

/// Refreshes the instance's liveness key and hash; when the key was gone (the instance just
/// started, or Redis restarted and lost everything) writes the hash and the claims anew.
async fn keep_alive(
    state: &AppState,
    cluster: &Cluster,
    redis: &RedisStore,
) -> Result<(), Unreachable> {
    let ttl = millis(cluster.ttl);
    let mut set = redis::cmd("SET");
    set.arg(alive_key(&cluster.instance))
        .arg(1)
        .arg("PX")
        .arg(ttl)
        .arg("GET");
    let before: Option<String> = redis.call(set).await?;
    if before.is_none() {
        // Queued behind the news already sent, and ahead of the news after it, so that the
        // listing written is exactly what the others have heard.
        state.registry().restore();
    }
    let members = members_key(&cluster.instance);
    let mut expire = redis::cmd("PEXPIRE");
    expire.arg(&members).arg(ttl);
    redis.call::<i64>(expire).await.map(drop)
}

/// Writes the instance's listing and claims anew (see [`Outgoing::Restore`]).
async fn restore(
    cluster: &Cluster,
    listed: Vec<ClusterMessage>,
    claims: Vec<Claim>,
) -> Result<(), Unreachable> {
    let Some(redis) = cluster.redis() else {
        return Ok(());
    };
    tracing::info!(
        sessions = listed.len(),
        "writing this instance's sessions to the store"
    );
    for claim in &claims {
        if cluster.store.claim(claim, cluster.ttl, true).await? != Claimed::Won {
            tracing::warn!(
                place = %claim.place,
                "a session elsewhere took a nick one here holds while the store was away"
            );
        }
    }
    let members = members_key(&cluster.instance);
    let mut pipe = redis::pipe();
    pipe.del(&members).ignore();
    for message in listed {
        if let ClusterMessage::Listed { id, .. } = &message {
            pipe.hset(&members, id.as_str(), message.to_json()).ignore();
        }
        // Told again too: an instance that read its snapshot before this one was back in the
        // store has not heard of these sessions, and one that has hears nothing new.
        pipe.publish(PRESENCE_CHANNEL, message.to_json()).ignore();
    }
    pipe.pexpire(
        &members,
        i64::try_from(millis(cluster.ttl)).unwrap_or(i64::MAX),
    )
    .ignore();
    redis.call::<()>(pipe).await
}

/// Listens to the other instances until shutdown, reconnecting (and reading a fresh
/// snapshot) whenever the subscription drops.
async fn listen(state: AppState, cluster: Arc<Cluster>) {
    let Some(redis) = cluster.redis() else {
        return;
    };
    loop {
        let listened = tokio::select! {
            () = state.shutdown().cancelled() => return,
            listened = listen_once(&state, &cluster, redis) => listened,
        };
        if let Err(error) = listened {
            tracing::debug!(%error, "not listening to the other instances; trying again");
        }
        tokio::select! {
            () = state.shutdown().cancelled() => return,
            () = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
    }
}

/// One subscription: subscribes, reads the snapshot, then applies news as it comes.
async fn listen_once(
    state: &AppState,
    cluster: &Cluster,
    redis: &RedisStore,
) -> Result<(), Unreachable> {
    let timeout = crate::store::redis::CALL_TIMEOUT;
    let unreachable = |error: redis::RedisError| Unreachable(error.to_string());
    let mut pubsub = tokio::time::timeout(timeout, redis.client().get_async_pubsub())
        .await
        .map_err(|_| Unreachable("no connection".into()))?
        .map_err(unreachable)?;
    pubsub
        .subscribe(PRESENCE_CHANNEL)
        .await
        .map_err(unreachable)?;
    pubsub
        .subscribe(signals_key(&cluster.instance))
        .await
        .map_err(unreachable)?;
    // Subscribed first, so nothing said while the snapshot is read is missed; news applied
    // twice changes nothing.
    let snapshot = snapshot(cluster, redis).await?;
    state.registry().reconcile(snapshot);
    let mut messages = pubsub.into_on_message();
    while let Some(message) = messages.next().await {
        let Ok(text) = std::str::from_utf8(message.get_payload_bytes()) else {
            continue;
        };
        match ClusterMessage::from_json(text) {
            Ok(news) => apply(state, cluster, news),
            Err(error) => tracing::warn!(%error, "unreadable news from another instance"),
        }
    }
    Err(Unreachable("the subscription ended".into()))
}

/// Every listed session of every other live instance.
async fn snapshot(cluster: &Cluster, redis: &RedisStore) -> Result<Vec<Listed>, Unreachable> {
    let mut instances = Vec::new();
    let mut cursor: u64 = 0;
    loop {
        let mut scan = redis::cmd("SCAN");
        scan.arg(cursor)
            .arg("MATCH")
            .arg("ferry:alive:*")
            .arg("COUNT")
            .arg(1000);
        let (next, keys): (u64, Vec<String>) = redis.call(scan).await?;
        instances.extend(
            keys.iter()
                .filter_map(|key| key.strip_prefix("ferry:alive:"))
                .filter(|instance| *instance != cluster.instance)
                .map(str::to_owned),
        );
        if next == 0 {
            break;
        }
        cursor = next;
    }
    let mut listed = Vec::new();
    for instance in instances {
        let mut all = redis::cmd("HVALS");
        all.arg(members_key(&instance));
        let values: Vec<String> = redis.call(all).await?;
        listed.extend(
            values
                .iter()
                .filter_map(|value| ClusterMessage::from_json(value).ok())
                .filter_map(|message| as_listed(message, &cluster.instance)),
        );
    }
    Ok(listed)
}

/// A `listed` message from another instance, as the registry takes it.
fn as_listed(message: ClusterMessage, me: &str) -> Option<Listed> {
    match message {
        ClusterMessage::Listed {
            instance,
            place,
            id,
            nick,
        } if instance != me => Some(Listed {
            instance,
            place: PlaceKey::from_wire(&place)?,
            id,
            nick,
        }),
        _ => None,
    }
}

/// Applies one piece of news from another instance.
fn apply(state: &AppState, cluster: &Cluster, news: ClusterMessage) {
    match news {
        ClusterMessage::Listed { .. } => {
            if let Some(listed) = as_listed(news, &cluster.instance) {
                state.registry().remote_listed(listed);
            }
        }
        ClusterMessage::Away { instance, id } if instance != cluster.instance => {
            state.registry().remote_away(&id);
        }
        ClusterMessage::Left { instance, id } if instance != cluster.instance => {
            state.registry().remote_left(&id);
        }
        ClusterMessage::Signal {
            from,
            from_nick,
            place,
            to,
            payload,
            lane,
        } => {
            if let Some(place) = PlaceKey::from_wire(&place) {
                let message = ServerMessage::Signal {
                    from: from.clone(),
                    from_nick,
                    payload,
                    lane,
                };
                state
                    .registry()
                    .deliver_remote(&from, &place, &to, &message, Instant::now());
            }
        }
        ClusterMessage::Away { .. } | ClusterMessage::Left { .. } => {}
    }
}

/// Forgets, three times per time-to-live, the sessions of instances whose liveness key is
/// gone.
async fn reap(state: AppState, cluster: Arc<Cluster>) {
    let Some(redis) = cluster.redis() else {
        return;
    };
    let mut ticks = tokio::time::interval(cluster.ttl / 3);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = state.shutdown().cancelled() => return,
            _ = ticks.tick() => {}
        }
        let known: Vec<String> = state.registry().remote_instances().into_iter().collect();
        if known.is_empty() {
            continue;
        }
        let mut pipe = redis::pipe();
        for instance in &known {
            pipe.exists(alive_key(instance));
        }
        let Ok(alive) = redis.call::<Vec<bool>>(pipe).await else {
            // Whether they live cannot be told now; they are looked at again next time.
            continue;
        };
        let gone: HashSet<&String> = known
            .iter()
            .zip(alive)
            .filter(|(_, alive)| !alive)
            .map(|(instance, _)| instance)
            .collect();
        let mut registry = state.registry();
        for instance in gone {
            registry.drop_instance(instance);
        }
    }
}

fn alive_key(instance: &str) -> String {
    format!("ferry:alive:{instance}")
}

fn members_key(instance: &str) -> String {
    format!("ferry:members:{instance}")
}

fn signals_key(instance: &str) -> String {
    format!("ferry:to:{instance}")
}
