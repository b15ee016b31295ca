//! The shared store's behaviour, one suite run against both stores: the memory store of an
//! instance alone and the Redis store of several, against a real `redis-server`.

use std::time::Duration;

use ferry_protocol::SessionToken;
use ferry_signaling::store::memory::Memory;
use ferry_signaling::store::redis::RedisStore;
use ferry_signaling::store::{Claim, Claimed, Store, Unreachable};

use crate::support::PATIENCE;
use ferry_signaling::testing::RedisServer;

const TTL: Duration = Duration::from_secs(30);

fn token(byte: u8) -> SessionToken {
    SessionToken::from_random_bytes([byte; SessionToken::BYTES])
}

/// Whether `claim` is won, with no cap on its address's sessions.
async fn won(store: &Store, claim: &Claim, ttl: Duration) -> Result<bool, Unreachable> {
    Ok(store.claim(claim, ttl, false).await? == Claimed::Won)
}

/// Both stores, named; the Redis one on `redis`.
fn stores(redis: &RedisServer) -> anyhow::Result<Vec<(&'static str, Store)>> {
    Ok(vec![
        ("memory", Store::Memory(Memory::default())),
        (
            "redis",
            Store::Redis(Box::new(RedisStore::open(&redis.url(), Duration::ZERO)?)),
        ),
    ])
}

#[tokio::test]
async fn a_nick_and_its_lookalikes_are_held_by_one_owner_per_place() -> anyhow::Result<()> {
    let redis = RedisServer::start().await?;
    for (name, store) in stores(&redis)? {
        let ana = Claim::new("lobby", "ana", &token(1));
        assert!(won(&store, &ana, TTL).await?, "{name}: a free nick");
        assert!(won(&store, &ana, TTL).await?, "{name}: its owner again");
        for other in ["ana", "ANA", "аna"] {
            let theirs = Claim::new("lobby", other, &token(2));
            assert!(
                !won(&store, &theirs, TTL).await?,
                "{name}: {other} is taken"
            );
        }
        let elsewhere = Claim::new("room:cccccccccccccccccccccccccccccccc", "ana", &token(2));
        assert!(
            won(&store, &elsewhere, TTL).await?,
            "{name}: another place is another namespace"
        );
    }
    Ok(())
}

#[tokio::test]
async fn only_its_owner_lets_a_nick_go() -> anyhow::Result<()> {
    let redis = RedisServer::start().await?;
    for (name, store) in stores(&redis)? {
        let ana = Claim::new("lobby", "ana", &token(1));
        let thief = Claim::new("lobby", "ana", &token(2));
        assert!(won(&store, &ana, TTL).await?);
        store.release(&thief).await?;
        assert!(
            !won(&store, &thief, TTL).await?,
            "{name}: released by a stranger"
        );
        store.release(&ana).await?;
        assert!(
            won(&store, &thief, TTL).await?,
            "{name}: not released by its owner"
        );
    }
    Ok(())
}

#[tokio::test]
async fn a_claim_nobody_refreshes_runs_out_and_a_refreshed_one_does_not() -> anyhow::Result<()> {
    let redis = RedisServer::start().await?;
    let ttl = Duration::from_millis(400);
    for (name, store) in stores(&redis)? {
        let kept = Claim::new("lobby", "kept", &token(1));
        let dropped = Claim::new("lobby", "dropped", &token(1));
        assert!(won(&store, &kept, ttl).await?);
        assert!(won(&store, &dropped, ttl).await?);
        // Its instance died: only one of them is refreshed, twice per time-to-live.
        for _ in 0..3 {
            tokio::time::sleep(ttl / 2).await;
            store.refresh(std::slice::from_ref(&kept), ttl).await?;
        }
        let kept_other = Claim::new("lobby", "kept", &token(2));
        let dropped_other = Claim::new("lobby", "dropped", &token(2));
        assert!(
            !won(&store, &kept_other, TTL).await?,
            "{name}: a refreshed claim ran out"
        );
        assert!(
            won(&store, &dropped_other, TTL).await?,
            "{name}: a dead instance's claim stayed"
        );
    }
    Ok(())
}

#[tokio::test]
async fn two_instances_claiming_one_nick_at_once_never_both_win() -> anyhow::Result<()> {
    let redis = RedisServer::start().await?;
    // Two connections, as two instances have.
    let one = Store::Redis(Box::new(RedisStore::open(&redis.url(), Duration::ZERO)?));
    let two = Store::Redis(Box::new(RedisStore::open(&redis.url(), Duration::ZERO)?));
    let memory = Store::Memory(Memory::default());
    for (name, first, second) in [("redis", &one, &two), ("memory", &memory, &memory)] {
        for round in 0..1_000 {
            let nick = format!("racer{round}");
            let (a, b) = (
                Claim::new("lobby", &nick, &token(1)),
                // A lookalike, so the race is over a key both share, not one name.
                Claim::new("lobby", &nick.to_uppercase(), &token(2)),
            );
            let (won_a, won_b) = tokio::join!(won(first, &a, TTL), won(second, &b, TTL));
            assert!(
                won_a? ^ won_b?,
                "{name}, round {round}: not exactly one instance won"
            );
        }
    }
    Ok(())
}

#[tokio::test]
async fn after_a_redis_restart_only_restoring_owners_claim_until_the_store_settles()
-> anyhow::Result<()> {
    let mut redis = RedisServer::start().await?;
    let settle = Duration::from_millis(800);
    let store = Store::Redis(Box::new(RedisStore::open(&redis.url(), settle)?));
    let ana = Claim::new("lobby", "ana", &token(1));
    let thief = Claim::new("lobby", "ana", &token(2));
    assert!(won(&store, &ana, TTL).await?);
    redis.kill();
    assert!(
        store.claim(&ana, TTL, false).await.is_err(),
        "a claim succeeded with Redis down"
    );
    redis.restart().await?;
    // The same store, with no new connection made by hand: it reconnects by itself. Redis
    // lost every claim, so nobody new may claim until the instances wrote theirs again.
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        match store.claim(&thief, TTL, false).await {
            Err(error) if error.to_string().contains("restarted") => break,
            Err(_) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            other => anyhow::bail!("a claim right after the restart: {other:?}"),
        }
    }
    assert!(
        store.claim(&ana, TTL, true).await? == Claimed::Won,
        "the owner could not write its claim again"
    );
    tokio::time::sleep(settle).await;
    assert!(
        !won(&store, &thief, TTL).await?,
        "someone else took the restored nick"
    );
    Ok(())
}

#[tokio::test]
async fn an_address_holds_at_most_its_sessions_and_a_released_one_frees_a_place()
-> anyhow::Result<()> {
    let redis = RedisServer::start().await?;
    for (name, store) in stores(&redis)? {
        let from = |nick: &str, byte: u8| {
            Claim::new("lobby", nick, &token(byte)).limited("ws:192.0.2.7", 2)
        };
        let (ana, bo, cy) = (from("ana", 1), from("bo", 2), from("cy", 3));
        assert_eq!(store.claim(&ana, TTL, false).await?, Claimed::Won, "{name}");
        assert_eq!(store.claim(&bo, TTL, false).await?, Claimed::Won, "{name}");
        assert_eq!(
            store.claim(&cy, TTL, false).await?,
            Claimed::Limited(0),
            "{name}: a third session from one address"
        );
        // A session claiming again (a reconnect) keeps its place; another address has its own.
        assert_eq!(store.claim(&ana, TTL, false).await?, Claimed::Won, "{name}");
        let elsewhere = Claim::new("lobby", "cy", &token(3)).limited("ws:198.51.100.1", 2);
        assert_eq!(
            store.claim(&elsewhere, TTL, false).await?,
            Claimed::Won,
            "{name}"
        );
        store.release(&elsewhere).await?;
        store.release(&bo).await?;
        assert_eq!(
            store.claim(&cy, TTL, false).await?,
            Claimed::Won,
            "{name}: a released session kept its address's place"
        );
    }
    Ok(())
}
