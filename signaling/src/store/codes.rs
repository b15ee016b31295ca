//! Pairing codes in Redis, so a code made through one instance leads into its room through any
//! other, and the bound on wrong guesses (per address and in all, over a minute) is one budget
//! for the whole service, however many instances there are.
//!
//! A code is `ferry:code:CODE` → `ROOM MAKER` for its lifetime, its maker's `ferry:made:MAKER`
//! names it (so a new code replaces the old, and a maker leaving ends it), and the sorted set
//! `ferry:codes` holds every good code by expiry, to bound how many there are. Wrong tries are
//! sorted sets of the last minute's tries, `ferry:wrong:ADDRESS` and `ferry:wrong`.

use std::time::Duration;

use ferry_protocol::{PairCode, PeerId, RoomId};
use redis::Script;

use super::Unreachable;
use super::redis::{Invocation, RedisStore, millis};

/// What wrong tries are counted over, as on one instance.
const WINDOW: Duration = Duration::from_secs(60);

/// Makes a code for `ARGV[1]` (the maker) into room `ARGV[2]`: the first of `ARGV[5..]` that
/// is not good already, good for `ARGV[3]` ms, when fewer than `ARGV[4]` are good. Ends the
/// maker's earlier code. Answers the code, or an empty string when there is no room for one.
const MAKE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local made = 'ferry:made:' .. ARGV[1]
local old = redis.call('GET', made)
if old then
  redis.call('DEL', 'ferry:code:' .. old, made)
  redis.call('ZREM', 'ferry:codes', old)
end
redis.call('ZREMRANGEBYSCORE', 'ferry:codes', '-inf', now)
if redis.call('ZCARD', 'ferry:codes') >= tonumber(ARGV[4]) then return '' end
for i = 5, #ARGV do
  local code = ARGV[i]
  if redis.call('SET', 'ferry:code:' .. code, ARGV[2] .. ' ' .. ARGV[1], 'PX', ARGV[3], 'NX') then
    redis.call('SET', made, code, 'PX', ARGV[3])
    redis.call('ZADD', 'ferry:codes', now + tonumber(ARGV[3]), code)
    return code
  end
end
return ''
";

/// Looks code `ARGV[1]` up for address `ARGV[2]`, with at most `ARGV[3]` wrong tries a window
/// (`ARGV[5]` ms) from the address and `ARGV[4]` from everyone. Answers `{0, 'ROOM MAKER'}`
/// for a good code, `{1, wait ms}` or `{2, wait ms}` when the address or everyone is past
/// its tries (then nothing is looked up), and `{3, ''}` for a wrong code, which is counted.
const FIND: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[5])
local mine = 'ferry:wrong:' .. ARGV[2]
local all = 'ferry:wrong'
local caps = { {mine, tonumber(ARGV[3]), 1}, {all, tonumber(ARGV[4]), 2} }
for _, cap in ipairs(caps) do
  redis.call('ZREMRANGEBYSCORE', cap[1], '-inf', now - window)
  if redis.call('ZCARD', cap[1]) >= cap[2] then
    local oldest = redis.call('ZRANGE', cap[1], 0, 0, 'WITHSCORES')
    return {cap[3], tonumber(oldest[2]) + window - now}
  end
end
local found = redis.call('GET', 'ferry:code:' .. ARGV[1])
if found then return {0, found} end
local try = now .. '-' .. redis.call('INCR', 'ferry:wrong:count')
for _, key in ipairs({mine, all}) do
  redis.call('ZADD', key, now, try)
  redis.call('PEXPIRE', key, window)
end
return {3, ''}
";

/// Ends code `ARGV[1]` (it is being used), or with `ARGV[2]` set the code maker `ARGV[2]`
/// holds; 1 when there was such a code, 0 when there was none (any more).
const END: &str = r"
local code = ARGV[1]
if code == '' then code = redis.call('GET', 'ferry:made:' .. ARGV[2]) end
if not code then return 0 end
local found = redis.call('GET', 'ferry:code:' .. code)
redis.call('DEL', 'ferry:code:' .. code)
redis.call('ZREM', 'ferry:codes', code)
if found then
  local maker = string.match(found, ' (.*)$')
  if maker and redis.call('GET', 'ferry:made:' .. maker) == code then
    redis.call('DEL', 'ferry:made:' .. maker)
  end
end
return 1
";

/// What looking a code up found.
#[derive(Debug, PartialEq, Eq)]
pub enum Found {
    /// The room it leads into.
    Room(RoomId),
    /// No room has it; the try was counted.
    Wrong,
    /// The address is past its tries; it may try again after this long.
    TooManyFromAddress(Duration),
    /// Everyone together is past their tries.
    TooManyInAll(Duration),
}

/// The pairing scripts.
#[derive(Debug)]
pub struct Codes {
    make: Script,
    find: Script,
    end: Script,
}

impl Default for Codes {
    fn default() -> Self {
        Self {
            make: Script::new(MAKE),
            find: Script::new(FIND),
            end: Script::new(END),
        }
    }
}

impl Codes {
    /// A code into `room` for `maker`, drawn from `candidates`, good for `lifetime`, unless
    /// `max_codes` are good already (`None`).
    pub async fn make(
        &self,
        redis: &RedisStore,
        maker: &PeerId,
        room: &RoomId,
        lifetime: Duration,
        max_codes: usize,
        candidates: impl IntoIterator<Item = PairCode>,
    ) -> Result<Option<PairCode>, Unreachable> {
        let mut invocation = self.make.prepare_invoke();
        invocation
            .arg(maker.as_str())
            .arg(room.as_str())
            .arg(millis(lifetime))
            .arg(max_codes);
        for code in candidates {
            invocation.arg(code.as_str());
        }
        let made: String = redis.call(Invocation(invocation)).await?;
        Ok(PairCode::parse(&made).ok())
    }

    /// Looks `code` up for a try from `address` (its network's name), with at most
    /// `per_address` and `total` wrong tries a minute.
    pub async fn find(
        &self,
        redis: &RedisStore,
        code: &PairCode,
        address: &str,
        per_address: usize,
        total: usize,
    ) -> Result<Found, Unreachable> {
        let mut invocation = self.find.prepare_invoke();
        invocation
            .arg(code.as_str())
            .arg(address)
            .arg(per_address)
            .arg(total)
            .arg(millis(WINDOW));
        let (kind, value): (i64, String) = redis.call(Invocation(invocation)).await?;
        let wait = || Duration::from_millis(value.parse().unwrap_or(0));
        Ok(match kind {
            0 => value
                .split_once(' ')
                .and_then(|(room, _)| RoomId::parse(room).ok())
                .map_or(Found::Wrong, Found::Room),
            1 => Found::TooManyFromAddress(wait()),
            2 => Found::TooManyInAll(wait()),
            _ => Found::Wrong,
        })
    }

    /// Uses `code` up for the join it leads in: true when it was still good, false when
    /// someone else used it (or it ended) since it was looked up.
    pub async fn take(&self, redis: &RedisStore, code: &PairCode) -> Result<bool, Unreachable> {
        let mut invocation = self.end.prepare_invoke();
        invocation.arg(code.as_str()).arg("");
        redis
            .call::<i64>(Invocation(invocation))
            .await
            .map(|ended| ended == 1)
    }

    /// Ends the code `maker` holds, if any: it left its room.
    pub async fn forget(&self, redis: &RedisStore, maker: &PeerId) -> Result<(), Unreachable> {
        let mut invocation = self.end.prepare_invoke();
        invocation.arg("").arg(maker.as_str());
        redis.call::<i64>(Invocation(invocation)).await.map(drop)
    }
}
