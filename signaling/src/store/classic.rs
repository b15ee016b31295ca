//! The classic HTTP API's registrations in Redis, with several instances: a registration made
//! through one instance is looked up and listed through any other, holds its nick against
//! everyone's (its claim shares the nick keys of WebSocket sessions), and counts against its
//! address's registrations and everyone's across the service, as its requests count against
//! one rate.
//!
//! A registration is a claim ([`super::Claim`]) owned by a digest of its identity, for the
//! presence time-to-live (each registration renews it), and a record under each of its nick's
//! keys in `ferry:classic:PLACE`: owner, address, identity and nick. A record counts only while
//! its claim does; dead ones are pruned when read.

use std::time::Duration;

use ferry_protocol::Nick;
use sha2::{Digest, Sha256};

use super::redis::RedisStore;
use super::{Claim, Claimed, Unreachable};

/// How a registration went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Registered {
    Done,
    /// Someone else holds the nick, or one that looks like it.
    Taken,
    /// The address holds as many registrations as it may.
    TooManyFromAddress,
    /// The service holds as many registrations as it may.
    Full,
    /// Removing a registration made from another address.
    NotYours,
}

/// The owner of `identity`'s registrations.
fn owner(identity: &str) -> String {
    let digest = Sha256::digest(format!("http:{identity}").as_bytes());
    digest[..16]
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

fn records(place: &str) -> String {
    format!("ferry:classic:{place}")
}

/// One record: who registered which nick from where.
struct Record {
    owner: String,
    from: String,
    identity: String,
    nick: String,
}

impl Record {
    fn encode(&self) -> String {
        [&self.owner, &self.from, &self.identity, &self.nick]
            .map(String::as_str)
            .join("\t")
    }

    fn decode(raw: &str) -> Option<Self> {
        let mut parts = raw.splitn(4, '\t');
        Some(Self {
            owner: parts.next()?.to_owned(),
            from: parts.next()?.to_owned(),
            identity: parts.next()?.to_owned(),
            nick: parts.next()?.to_owned(),
        })
    }
}

/// A registration asked for: `nick` in `place` for `identity`, from the network `from`.
#[derive(Debug)]
pub struct Asked<'a> {
    pub place: &'a str,
    pub nick: &'a Nick,
    pub identity: &'a str,
    pub from: &'a str,
}

/// Registers or renews what was `asked` for `ttl`, with at most `per_address` registrations
/// from its network and `total` in all.
pub async fn register(
    redis: &RedisStore,
    asked: &Asked<'_>,
    ttl: Duration,
    (per_address, total): (usize, usize),
) -> Result<Registered, Unreachable> {
    let Asked {
        place,
        nick,
        identity,
        from,
    } = *asked;
    let owner = owner(identity);
    let claim = Claim::owned(place, nick.as_str(), owner.clone())
        .limited(format!("http:{from}"), per_address)
        .limited("http", total);
    match redis.claim(&claim, ttl, false).await? {
        Claimed::Won => {}
        Claimed::Taken => return Ok(Registered::Taken),
        Claimed::Limited(0) => return Ok(Registered::TooManyFromAddress),
        Claimed::Limited(_) => return Ok(Registered::Full),
    }
    let record = Record {
        owner,
        from: from.to_owned(),
        identity: identity.to_owned(),
        nick: nick.as_str().to_owned(),
    }
    .encode();
    let mut pipe = redis::pipe();
    for key in &claim.keys {
        pipe.hset(records(place), key, &record).ignore();
    }
    redis.call::<()>(pipe).await?;
    Ok(Registered::Done)
}

/// Removes the registration of `nick` in `place`, if the network `from` made it; nothing to
/// remove counts as done.
pub async fn unregister(
    redis: &RedisStore,
    place: &str,
    nick: &Nick,
    from: &str,
) -> Result<Registered, Unreachable> {
    let Some((key, record)) = live(redis, place, nick).await? else {
        return Ok(Registered::Done);
    };
    if record.from != from {
        return Ok(Registered::NotYours);
    }
    let claim = Claim::owned(place, &record.nick, record.owner.clone())
        .limited(format!("http:{}", record.from), 0)
        .limited("http", 0);
    redis.release(&claim).await?;
    let mut pipe = redis::pipe();
    pipe.hdel(records(place), &key).ignore();
    for key in &claim.keys {
        pipe.hdel(records(place), key).ignore();
    }
    redis.call::<()>(pipe).await?;
    Ok(Registered::Done)
}

/// The identity registered under `nick` (or a lookalike) in `place`, if any.
pub async fn identity(
    redis: &RedisStore,
    place: &str,
    nick: &Nick,
) -> Result<Option<String>, Unreachable> {
    Ok(live(redis, place, nick)
        .await?
        .map(|(_, record)| record.identity))
}

/// Every live registration in `place`: nick and identity.
pub async fn listed(redis: &RedisStore, place: &str) -> Result<Vec<(Nick, String)>, Unreachable> {
    let mut all = redis::cmd("HGETALL");
    all.arg(records(place));
    let fields: Vec<(String, String)> = redis.call(all).await?;
    let mut listed: Vec<(Nick, String)> = Vec::new();
    let mut dead = Vec::new();
    for (key, raw) in fields {
        let Some(record) = Record::decode(&raw) else {
            dead.push(key);
            continue;
        };
        if holds(redis, place, &key, &record.owner).await? {
            if let Ok(nick) = Nick::new(&record.nick)
                && !listed.iter().any(|(listed, _)| listed == &nick)
            {
                listed.push((nick, record.identity));
            }
        } else {
            dead.push(key);
        }
    }
    prune(redis, place, &dead).await?;
    Ok(listed)
}

/// The live record under one of `nick`'s keys in `place`, and that key.
async fn live(
    redis: &RedisStore,
    place: &str,
    nick: &Nick,
) -> Result<Option<(String, Record)>, Unreachable> {
    let mut dead = Vec::new();
    let mut found = None;
    for key in crate::lookalike::keys(nick.as_str()) {
        let mut get = redis::cmd("HGET");
        get.arg(records(place)).arg(&key);
        let Some(raw) = redis.call::<Option<String>>(get).await? else {
            continue;
        };
        match Record::decode(&raw) {
            Some(record) if holds(redis, place, &key, &record.owner).await? => {
                found = Some((key, record));
                break;
            }
            _ => dead.push(key),
        }
    }
    prune(redis, place, &dead).await?;
    Ok(found)
}

/// Whether `owner` still holds the nick key `key` in `place`.
async fn holds(
    redis: &RedisStore,
    place: &str,
    key: &str,
    owner: &str,
) -> Result<bool, Unreachable> {
    let mut get = redis::cmd("GET");
    get.arg(format!("ferry:nick:{place}:{key}"));
    Ok(redis.call::<Option<String>>(get).await?.as_deref() == Some(owner))
}

/// Deletes the records under `keys`, whose claims ran out.
async fn prune(redis: &RedisStore, place: &str, keys: &[String]) -> Result<(), Unreachable> {
    if keys.is_empty() {
        return Ok(());
    }
    let mut delete = redis::cmd("HDEL");
    delete.arg(records(place)).arg(keys);
    redis.call::<i64>(delete).await.map(drop)
}

/// Counts a request against the sorted set `KEYS[1]` of the last `ARGV[2]` ms's requests,
/// which may hold `ARGV[1]`: 1 when it may be answered (and is counted), 0 when not.
const REQUEST: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[2]))
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], now, now .. '-' .. redis.call('INCR', 'ferry:rate:count'))
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
";

/// Counts a request from the network `from` against one budget for the whole service: at
/// most `burst` requests in any `burst / per_sec` seconds, which averages `per_sec`. True
/// when it may be answered.
pub async fn request_allowed(
    redis: &RedisStore,
    from: &str,
    per_sec: u32,
    burst: u32,
) -> Result<bool, Unreachable> {
    let window = Duration::from_secs_f64(f64::from(burst) / f64::from(per_sec.max(1)));
    let script = redis::Script::new(REQUEST);
    let mut invocation = script.prepare_invoke();
    invocation
        .key(format!("ferry:rate:{from}"))
        .arg(burst)
        .arg(super::redis::millis(window));
    let allowed: i64 = redis.call(super::redis::Invocation(invocation)).await?;
    Ok(allowed == 1)
}
