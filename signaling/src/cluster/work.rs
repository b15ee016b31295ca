//! The worker: what the registry queues, run in order, publications batched into pipelines,
//! and presence news Redis did not take kept and sent again.

use std::sync::Arc;

use ferry_protocol::{ClusterMessage, Wire};
use tokio::sync::mpsc;

use super::refresh::restore;
use super::{
    Cluster, MAX_UNSENT, Outgoing, PRESENCE_CHANNEL, PUBLISH_BATCH, members_key, signals_key,
};
use crate::AppState;

/// Runs the queued work in order until shutdown.
pub(super) async fn work(
    state: AppState,
    cluster: Arc<Cluster>,
    mut rx: mpsc::UnboundedReceiver<Outgoing>,
) {
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
                let won = cluster.redis.claim(&claim, cluster.ttl, false).await;
                cluster.note(&won);
                let _ = reply.send(won);
            }
            Outgoing::Restore { listed, claims } => {
                let restored = restore(&cluster, listed, claims).await;
                cluster.note(&restored);
            }
            Outgoing::ForgetCode(maker) => {
                let _ = cluster.codes.forget(&cluster.redis, &maker).await;
            }
            Outgoing::Flush => {
                if !unsent.is_empty() {
                    publish(&state, &cluster, Vec::new(), &mut unsent).await;
                }
            }
            Outgoing::Release(claim) => {
                if let Err(error) = cluster.redis.release(&claim).await {
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
    let redis = cluster.redis();
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
