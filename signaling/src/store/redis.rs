//! The shared state in Redis: nick claims as keys with a time-to-live, set and let go by
//! compare-and-set scripts, and the commands the cluster's presence and relay use.
//!
//! Every call is bounded by [`CALL_TIMEOUT`]: with Redis out of reach a join is refused at
//! once with a clear error rather than left waiting, and the connection manager reconnects
//! behind the scenes.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::io::tcp::TcpSettings;
use redis::{Client, IntoConnectionInfo, Script};

use super::{Claim, Claimed, Unreachable};

/// The longest any one call to Redis may take.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(2);

/// How many keys one refresh call carries.
const REFRESH_BATCH: usize = 512;

/// The key that says since when (in Redis's own milliseconds) this Redis holds the service's
/// state. Redis keeps nothing on disk here: after a restart it is gone, and so is every claim.
const SINCE: &str = "ferry:since";

/// Claims, all or nothing, the nick keys after the limits and a place in each limit: `ARGV[1]`
/// is the owner, `ARGV[2]` the time-to-live in milliseconds, `ARGV[4]` how many limits there
/// are (`n`); `KEYS[2..n+1]` are the limits (sorted sets of owners by when each runs out) and
/// `ARGV[5..n+4]` their places. Answers 1 when the owner holds them now, 0 when another owner
/// holds a nick key, `10 + i` when limit `i` (from 0) has no place left.
///
/// For `ARGV[3]` milliseconds after Redis started empty (`KEYS[1]`, `SINCE`, is gone) it
/// answers 2 and claims nothing: the instances are writing their sessions' claims again then,
/// and a nick one of them holds must not go to someone else meanwhile. A restoring instance
/// passes 0, and no limit refuses it.
const CLAIM: &str = r"
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local since = redis.call('GET', KEYS[1])
if not since then
  redis.call('SET', KEYS[1], now_ms)
  since = now_ms
end
local restoring = tonumber(ARGV[3]) == 0
if now_ms - tonumber(since) < tonumber(ARGV[3]) then return 2 end
local limits = tonumber(ARGV[4])
for i = limits + 2, #KEYS do
  local held = redis.call('GET', KEYS[i])
  if held and held ~= ARGV[1] then return 0 end
end
for i = 1, limits do
  local key = KEYS[i + 1]
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now_ms)
  if not restoring and not redis.call('ZSCORE', key, ARGV[1])
    and redis.call('ZCARD', key) >= tonumber(ARGV[i + 4]) then
    return 10 + i - 1
  end
end
for i = 1, limits do
  redis.call('ZADD', KEYS[i + 1], now_ms + tonumber(ARGV[2]), ARGV[1])
  redis.call('PEXPIRE', KEYS[i + 1], ARGV[2])
end
for i = limits + 2, #KEYS do
  redis.call('SET', KEYS[i], ARGV[1], 'PX', ARGV[2])
end
return 1
";

/// Lets go of each key its owner (`ARGV[1]`) holds: a nick key (a string) is deleted, and the
/// owner's place in a limit (a sorted set) is freed.
const RELEASE: &str = r"
for _, key in ipairs(KEYS) do
  if redis.call('TYPE', key).ok == 'zset' then
    redis.call('ZREM', key, ARGV[1])
  elseif redis.call('GET', key) == ARGV[1] then
    redis.call('DEL', key)
  end
end
return 1
";

/// Extends each key by `ARGV[1]` milliseconds where its owner (`ARGV[i + 1]` for `KEYS[i]`)
/// still holds it: a nick key (a string), or an address's sessions (a sorted set), where
/// the owner's place is moved on too.
const REFRESH: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
for i, key in ipairs(KEYS) do
  local owner = ARGV[i + 1]
  if redis.call('TYPE', key).ok == 'zset' then
    if redis.call('ZADD', key, 'XX', 'CH', now + tonumber(ARGV[1]), owner) == 1 then
      redis.call('PEXPIRE', key, ARGV[1])
    end
  elseif redis.call('GET', key) == owner then
    redis.call('PEXPIRE', key, ARGV[1])
  end
end
return 1
";

/// A connection to Redis that reconnects by itself, and the scripts.
pub struct RedisStore {
    client: Client,
    /// How long claims wait after Redis started empty (see [`CLAIM`]).
    settle: Duration,
    connection: ConnectionManager,
    claim: Script,
    release: Script,
    refresh: Script,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("server", &self.client.get_connection_info().addr())
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// A store on the Redis at `url` (`redis://HOST:PORT/`) whose claims wait `settle` after
    /// Redis started empty: long enough for every instance to write its sessions' claims
    /// again. Nothing is connected yet: an instance starts whether Redis is up or not, and
    /// connects on first use.
    pub fn open(url: &str, settle: Duration) -> Result<Self, redis::RedisError> {
        // Without TCP_NODELAY a small command waits for the last one's acknowledgement:
        // relayed signals took 4 ms at the median and 20 at the 99th percentile between two
        // instances on one machine.
        let info = url
            .into_connection_info()?
            .set_tcp_settings(TcpSettings::default().set_nodelay(true));
        let client = Client::open(info)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CALL_TIMEOUT))
            .set_response_timeout(Some(CALL_TIMEOUT))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        let connection = ConnectionManager::new_lazy_with_config(client.clone(), config)?;
        Ok(Self {
            client,
            settle,
            connection,
            claim: Script::new(CLAIM),
            release: Script::new(RELEASE),
            refresh: Script::new(REFRESH),
        })
    }

    /// The client, for the cluster's subscriptions, which need connections of their own.
    pub(crate) fn client(&self) -> &Client {
        &self.client
    }

    /// Runs `command` (a query or a pipeline) within [`CALL_TIMEOUT`].
    pub(crate) async fn call<T: redis::FromRedisValue>(
        &self,
        command: impl AsyncQuery<T>,
    ) -> Result<T, Unreachable> {
        let mut connection = self.connection.clone();
        match tokio::time::timeout(CALL_TIMEOUT, command.run(&mut connection)).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => Err(Unreachable(error.to_string())),
            Err(_) => Err(Unreachable(format!(
                "no answer within {} s",
                CALL_TIMEOUT.as_secs()
            ))),
        }
    }

    pub(crate) async fn claim(
        &self,
        claim: &Claim,
        ttl: Duration,
        restoring: bool,
    ) -> Result<Claimed, Unreachable> {
        let mut invocation = self.claim.prepare_invoke();
        invocation.key(SINCE);
        for name in claim.limit_names() {
            invocation.key(name);
        }
        for name in claim.names() {
            invocation.key(name);
        }
        // A restoring claim waits for nothing (0), so the settle time is never 0 otherwise.
        let settle = if restoring {
            0
        } else {
            millis(self.settle).max(1)
        };
        invocation
            .arg(&claim.owner)
            .arg(millis(ttl))
            .arg(settle)
            .arg(claim.limits.len());
        for (_, places) in &claim.limits {
            invocation.arg(*places);
        }
        match self.call::<i64>(Invocation(invocation)).await? {
            1 => Ok(Claimed::Won),
            0 => Ok(Claimed::Taken),
            full @ 10.. => Ok(Claimed::Limited(usize::try_from(full - 10).unwrap_or(0))),
            _ => Err(Unreachable(
                "the store restarted a moment ago; the service is writing its sessions again"
                    .into(),
            )),
        }
    }

    pub(crate) async fn release(&self, claim: &Claim) -> Result<(), Unreachable> {
        let mut invocation = self.release.prepare_invoke();
        for name in claim.names().chain(claim.limit_names()) {
            invocation.key(name);
        }
        invocation.arg(&claim.owner);
        self.call::<i64>(Invocation(invocation)).await.map(drop)
    }

    pub(crate) async fn refresh(&self, claims: &[Claim], ttl: Duration) -> Result<(), Unreachable> {
        let held: Vec<(String, &str)> = claims
            .iter()
            .flat_map(|claim| {
                claim
                    .names()
                    .chain(claim.limit_names())
                    .map(|name| (name, claim.owner.as_str()))
            })
            .collect();
        for batch in held.chunks(REFRESH_BATCH) {
            let mut invocation = self.refresh.prepare_invoke();
            invocation.arg(millis(ttl));
            for (name, owner) in batch {
                invocation.key(name).arg(*owner);
            }
            self.call::<i64>(Invocation(invocation)).await?;
        }
        Ok(())
    }
}

/// Milliseconds, as Redis takes a time-to-live.
pub(crate) fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// Something [`RedisStore::call`] can run: a command, a pipeline or a script invocation.
pub(crate) trait AsyncQuery<T> {
    fn run(
        self,
        connection: &mut ConnectionManager,
    ) -> impl Future<Output = redis::RedisResult<T>> + Send;
}

impl<T: redis::FromRedisValue + Send> AsyncQuery<T> for redis::Cmd {
    async fn run(self, connection: &mut ConnectionManager) -> redis::RedisResult<T> {
        self.query_async(connection).await
    }
}

impl<T: redis::FromRedisValue + Send> AsyncQuery<T> for redis::Pipeline {
    async fn run(self, connection: &mut ConnectionManager) -> redis::RedisResult<T> {
        self.query_async(connection).await
    }
}

/// A script invocation, owned so that it can be handed to [`RedisStore::call`].
pub(crate) struct Invocation<'a>(pub(crate) redis::ScriptInvocation<'a>);

impl<T: redis::FromRedisValue + Send> AsyncQuery<T> for Invocation<'_> {
    async fn run(self, connection: &mut ConnectionManager) -> redis::RedisResult<T> {
        self.0.invoke_async(connection).await
    }
}
