//! Keeping an instance alive in the store: its sessions' claims, its liveness key and its
//! listing, written anew (and told again) whenever the store lost them.

use std::sync::Arc;

use ferry_protocol::{ClusterMessage, Wire};

use super::{Cluster, Outgoing, PRESENCE_CHANNEL, alive_key, members_key};
use crate::AppState;
use crate::store::redis::millis;
use crate::store::{Claim, Claimed, Unreachable};

/// Keeps this instance's nick claims, its liveness and its listing alive, three times per
/// time-to-live.
pub(super) async fn refresh(state: AppState, cluster: Arc<Cluster>) {
    let mut ticks = crate::every(cluster.ttl / 3);
    while state.next_tick(&mut ticks).await {
        // Claims first, liveness after: a dead instance's claims run out just before its
        // liveness does, so by the time the others see it gone its people's nicks are free.
        let claims = state.registry().claims();
        let refreshed = cluster.redis.refresh(&claims, cluster.ttl).await;
        cluster.note(&refreshed);
        if refreshed.is_err() {
            continue;
        }
        let alive = keep_alive(&state, &cluster).await;
        cluster.note(&alive);
        if alive.is_ok() {
            let _ = cluster.tx.send(Outgoing::Flush);
        }
    }
}

/// Refreshes the instance's liveness key and hash; when the key was gone (the instance just
/// started, or Redis restarted and lost everything) writes the hash and the claims anew.
async fn keep_alive(state: &AppState, cluster: &Cluster) -> Result<(), Unreachable> {
    let redis = cluster.redis();
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
pub(super) async fn restore(
    cluster: &Cluster,
    listed: Vec<ClusterMessage>,
    claims: Vec<Claim>,
) -> Result<(), Unreachable> {
    let redis = cluster.redis();
    tracing::info!(
        sessions = listed.len(),
        "writing this instance's sessions to the store"
    );
    for claim in &claims {
        if redis.claim(claim, cluster.ttl, true).await? != Claimed::Won {
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
