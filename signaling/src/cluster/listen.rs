//! Hearing the other instances: their presence news and the signals they hand on, a snapshot
//! of everyone on every (re)connection, and forgetting an instance whose liveness ran out.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use ferry_protocol::{ClusterMessage, ServerMessage, Wire};
use futures::StreamExt;
use tokio::time::Instant;

use super::{Cluster, PRESENCE_CHANNEL, alive_key, members_key, signals_key};
use crate::AppState;
use crate::registry::{Listed, PlaceKey};
use crate::store::Unreachable;
use crate::store::redis::RedisStore;

/// Listens to the other instances until shutdown, reconnecting (and reading a fresh
/// snapshot) whenever the subscription drops.
pub(super) async fn listen(state: AppState, cluster: Arc<Cluster>) {
    let redis = cluster.redis();
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
pub(super) async fn reap(state: AppState, cluster: Arc<Cluster>) {
    let redis = cluster.redis();
    let mut ticks = crate::every(cluster.ttl / 3);
    while state.next_tick(&mut ticks).await {
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
