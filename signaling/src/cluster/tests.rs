//! The instance's part without Redis: a join's claim waits for the worker however long the
//! server's own backlog is, and is answered as the store says.

use std::sync::Arc;

use super::{Cluster, INSTANCE_TTL, Outgoing};
use crate::store::redis::CALL_TIMEOUT;
use crate::store::{Claim, Claimed};

fn claim(nick: &str) -> Claim {
    Claim {
        place: "lobby".into(),
        keys: vec![nick.into()],
        owner: format!("owner of {nick}"),
        limits: Vec::new(),
    }
}

/// A crowd joining at once queues thousands of claims, and the worker reaches the last long
/// after any store call's timeout: with the memory store that is the server's backlog, and
/// the join that waited is taken, not refused as if the store were out of reach.
#[tokio::test(start_paused = true)]
async fn a_claim_queued_behind_the_servers_backlog_is_answered_not_refused() {
    let (cluster, mut queue) = Cluster::new(None, INSTANCE_TTL).expect("a memory store");
    let asking = tokio::spawn({
        let cluster = Arc::clone(&cluster);
        async move { cluster.claim(claim("ana")).await }
    });
    // The worker is busy elsewhere for ten times what a store call may take.
    tokio::time::sleep(CALL_TIMEOUT * 10).await;
    let Some(Outgoing::Claim(queued, reply)) = queue.recv().await else {
        panic!("the claim was not queued for the worker");
    };
    let answer = cluster.store.claim(&queued, cluster.ttl, false).await;
    reply
        .send(answer)
        .expect("the join still waits for its claim");
    let claimed = asking.await.expect("the join's task ran");
    assert!(
        matches!(claimed, Ok(Claimed::Won)),
        "the claim came to {claimed:?}"
    );
}
