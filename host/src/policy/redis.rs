//! The shared store: throttle buckets, quota counters and cached responses
//! in one Redis server, so several gateway processes with the same
//! configuration share them.
//!
//! It owns every Redis key under `wasmgate:`; the names the policies pass
//! in (see [`super::store`]) are split at their `\0` separators, each part
//! percent-encoded (`%`, `:`, controls, spaces, glob characters and
//! non-ASCII bytes), and the parts joined with `:`:
//!
//! | key | holds | expires |
//! |-----|-------|---------|
//! | `wasmgate:throttle:<bucket>` | hash `tokens`, `s`, `us` (tokens left, Redis `TIME` of the last take) | after three refills of the bucket |
//! | `wasmgate:quota:<plan>:<usage id>:period:<first day>` | the period's count | a day after the period ends |
//! | `wasmgate:quota:<plan>:<usage id>:day:<day>` | the day's count (the usage report) | 100 days after its last count |
//! | `wasmgate:cache:<api/stage>:<cache key>` | a [`CachedResponse::encode`]d response | its time to live |
//! | `wasmgate:probe` | written while the store checks that Redis is back | 10 s |
//!
//! Days are epoch days (`1970-01-01` is 0), as in [`super::clock`].
//!
//! How exact each policy is while Redis answers:
//!
//! - Quotas: exact across nodes. One Lua script reads the period's count,
//!   refuses at the limit and otherwise increments the period's and the
//!   day's counters, atomically: no node ever admits a call past the limit
//!   that another node already counted.
//! - Throttles: an exact token bucket (`rate` per second, `burst` deep,
//!   full on first use), evaluated in a Lua script on Redis's own clock
//!   (`TIME`), so nodes whose clocks disagree still agree on the bucket. A
//!   call pays one round trip to Redis for it.
//! - The cache: shared by every node; entries expire by Redis (`PX`). A
//!   stage's `capacity` is not enforced here: Redis's own `maxmemory` and
//!   eviction policy bound what the cache takes. A flush walks the stage's
//!   keys (`SCAN` + `UNLINK`), so an entry written while the flush runs may
//!   survive it.
//!
//! Every Redis call is bounded (250 ms to connect or to answer, 300 ms in
//! all), so a hung or stopped Redis never stalls a request for longer. When
//! a call fails, the store logs the outage once and stops calling Redis
//! from requests; a background task checks every 100 ms (with a write, so a
//! Redis that answers but refuses writes is still out) until it answers
//! again. Meanwhile:
//!
//! - throttles and the cache fail open: [`PolicyStore::take`] and the
//!   `cache_*` calls return [`StoreError::Unavailable`], and the caller
//!   admits the call or misses the cache;
//! - quotas are not dropped: each node counts in memory, from zero at the
//!   start of the outage, and refuses at the limit on its own count. So
//!   during an outage each node may admit up to the limit by itself (n
//!   nodes up to n times the limit in all). When Redis answers again, what
//!   the node counted is added to Redis's period and day counters, and the
//!   recovery is logged with how many counts were replayed. A replay that
//!   fails halfway is kept and retried, so a count may be added twice if
//!   Redis applied it but its answer was lost; none is lost;
//! - the usage report ([`PolicyStore::usage`]) is unavailable.
//!
//! A Redis that cannot be reached when the server starts is not an error:
//! the store starts in the outage above and connects when Redis answers.
//! A URL that does not parse is.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{RedisResult, Script};

use super::clock::Period;
use super::embedded::EmbeddedStore;
use super::store::{Bucket, CachedResponse, PolicyStore, QuotaCheck, QuotaOutcome, StoreError};

/// Every key starts with this.
const PREFIX: &str = "wasmgate:";
/// To connect, or for one answer, on a connection.
const IO_TIMEOUT: Duration = Duration::from_millis(250);
/// One call in all (connecting included).
const CALL_TIMEOUT: Duration = Duration::from_millis(300);
/// How often an unreachable Redis is tried again.
const PROBE_EVERY: Duration = Duration::from_millis(100);
/// Days a day's count is kept (the usage report reaches back 90).
const KEEP_DAYS: i64 = 100;
/// Bucket state outlives this many refills of the bucket.
const BUCKET_REFILLS: f64 = 3.0;
/// The cache's keys are walked this many at a time when a stage is flushed.
const SCAN_COUNT: u32 = 1000;

/// Escaped in a key's parts: `:` (the separator), `%` (the escape), the
/// glob characters of `SCAN MATCH`, spaces and controls.
const KEY_PART: &AsciiSet = &CONTROLS.add(b':').add(b'%').add(b'*').add(b'?').add(b'[').add(b']').add(b'\\').add(b' ');

/// A token bucket on Redis's clock. KEYS: the bucket. ARGV: rate per
/// second, burst, expiry (ms). Returns 1 when a token was taken.
const TAKE: &str = r#"
if redis.replicate_commands then redis.replicate_commands() end
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local now = redis.call('TIME')
local s, us = tonumber(now[1]), tonumber(now[2])
local state = redis.call('HMGET', KEYS[1], 'tokens', 's', 'us')
local tokens, s0, us0 = tonumber(state[1]), tonumber(state[2]), tonumber(state[3])
if tokens == nil or s0 == nil or us0 == nil then
  tokens = burst
else
  local elapsed = (s - s0) + (us - us0) / 1000000
  if elapsed > 0 then tokens = tokens + elapsed * rate end
  if tokens > burst then tokens = burst end
end
local taken = 0
if tokens >= 1 then
  tokens = tokens - 1
  taken = 1
end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.17g', tokens), 's', now[1], 'us', now[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return taken
"#;

/// A quota's check-and-count. KEYS: the period's counter, the day's.
/// ARGV: the limit, the period counter's expiry (s), the day counter's
/// (s). Returns the period's new count, or -1 when the limit was reached
/// (nothing counted).
const COUNT: &str = r#"
local used = tonumber(redis.call('GET', KEYS[1])) or 0
if used >= tonumber(ARGV[1]) then return -1 end
used = redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], ARGV[2])
redis.call('INCR', KEYS[2])
redis.call('EXPIRE', KEYS[2], ARGV[3])
return used
"#;

/// Adds what a node counted during an outage. KEYS: the day's counter,
/// then the period's if known. ARGV: the count, the day counter's expiry
/// (s), the period counter's (s).
const REPLAY: &str = r#"
redis.call('INCRBY', KEYS[1], ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[2])
if KEYS[2] then
  redis.call('INCRBY', KEYS[2], ARGV[1])
  redis.call('EXPIRE', KEYS[2], ARGV[3])
end
return 1
"#;

/// Throttle buckets, quota counters and cached responses in one Redis
/// server (see the module's documentation).
pub struct RedisStore {
    inner: Arc<Inner>,
}

struct Inner {
    /// The URL with any password masked.
    url: String,
    conn: ConnectionManager,
    take_script: Script,
    count_script: Script,
    replay_script: Script,
    /// Set while Redis is out of reach (requests do not call it then).
    down: AtomicBool,
    /// Set while a task checks for Redis's return.
    probing: AtomicBool,
    /// Since when, and why, for the recovery's log line.
    outage: Mutex<Option<(Instant, String)>>,
    /// Quota counts made while Redis was out of reach, to replay.
    fallback: EmbeddedStore,
    /// Set once the log has said that `capacity_mb` is Redis's to bound.
    capacity_said: AtomicBool,
    /// Set when `fallback` may hold counts not yet replayed.
    pending: AtomicBool,
    /// Each counter's period, as last counted in `fallback` (to replay its
    /// counts into the right period counter).
    periods: Mutex<HashMap<String, Period>>,
}

impl RedisStore {
    /// A store on the Redis at `url` (`redis://[user:password@]host:port[/db]`
    /// or `redis+unix:///path/to.sock[?db=N]`). A URL that does not parse is
    /// an error; a Redis that does not answer is not (the store starts as in
    /// an outage, and connects when it answers).
    pub async fn connect(url: &str) -> Result<RedisStore, StoreError> {
        let masked = mask_url(url);
        let client =
            redis::Client::open(url).map_err(|e| StoreError::BadAddress(format!("invalid Redis URL {masked}: {e}")))?;
        // The connection manager's tasks run on Tokio.
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(StoreError::Unavailable("the Redis store needs a Tokio runtime".into()));
        }
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(IO_TIMEOUT))
            .set_response_timeout(Some(IO_TIMEOUT))
            // One attempt per reconnection: the store's own probe retries.
            .set_number_of_retries(0)
            .set_min_delay(Duration::from_millis(10))
            .set_max_delay(PROBE_EVERY);
        let conn = ConnectionManager::new_lazy_with_config(client, config)
            .map_err(|e| StoreError::Unavailable(format!("Redis at {masked}: {e}")))?;
        let inner = Arc::new(Inner {
            url: masked,
            conn,
            take_script: Script::new(TAKE),
            count_script: Script::new(COUNT),
            replay_script: Script::new(REPLAY),
            down: AtomicBool::new(false),
            probing: AtomicBool::new(false),
            outage: Mutex::new(None),
            fallback: EmbeddedStore::in_memory(),
            capacity_said: AtomicBool::new(false),
            pending: AtomicBool::new(false),
            periods: Mutex::new(HashMap::new()),
        });
        let mut conn = inner.conn.clone();
        // A failure is logged as the outage's start, and probed from here.
        let _ = inner.call(async move { redis::cmd("PING").query_async::<String>(&mut conn).await }).await;
        Ok(RedisStore { inner })
    }

    /// The Redis URL, with any password masked (for logs).
    pub fn url(&self) -> &str {
        &self.inner.url
    }

    /// Whether the store is in an outage (Redis out of reach).
    pub fn is_down(&self) -> bool {
        self.inner.down.load(Ordering::Acquire)
    }
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore").field("url", &self.inner.url).field("down", &self.is_down()).finish()
    }
}

impl Inner {
    /// Runs one Redis call, bounded in time. While Redis is out of reach
    /// it is not called; a failure starts an outage.
    async fn call<T>(self: &Arc<Self>, op: impl Future<Output = RedisResult<T>>) -> Result<T, StoreError> {
        if self.down.load(Ordering::Acquire) {
            self.ensure_probe();
            return Err(StoreError::Unavailable(format!("Redis at {} is unreachable", self.url)));
        }
        self.bounded(op).await.map_err(|reason| {
            self.went_down(&reason);
            StoreError::Unavailable(format!("Redis at {}: {reason}", self.url))
        })
    }

    /// Runs one Redis call with the time limit, whatever the store's state.
    async fn bounded<T>(&self, op: impl Future<Output = RedisResult<T>>) -> Result<T, String> {
        match tokio::time::timeout(CALL_TIMEOUT, op).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!("no answer within {} ms", CALL_TIMEOUT.as_millis())),
        }
    }

    /// Starts an outage (logged once) unless one is on.
    fn went_down(self: &Arc<Self>, reason: &str) {
        if !self.down.swap(true, Ordering::AcqRel) {
            *self.outage.lock() = Some((Instant::now(), reason.to_string()));
            tracing::error!(
                store = "redis",
                url = %self.url,
                "shared store unreachable: {reason}; throttles and the cache fail open, quotas are counted by each node until it returns"
            );
        }
        self.ensure_probe();
    }

    /// Starts the task that waits for Redis's return, unless it runs.
    fn ensure_probe(self: &Arc<Self>) {
        if self.probing.load(Ordering::Acquire) || self.probing.swap(true, Ordering::AcqRel) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            // The next call, made on a runtime, starts it.
            self.probing.store(false, Ordering::Release);
            return;
        };
        let weak: Weak<Inner> = Arc::downgrade(self);
        runtime.spawn(async move {
            loop {
                tokio::time::sleep(PROBE_EVERY).await;
                // The store is gone: so is its outage.
                let Some(inner) = weak.upgrade() else { return };
                if inner.recover().await {
                    return;
                }
            }
        });
    }

    /// Tries Redis; when it answers, replays what was counted meanwhile
    /// and ends the outage. Returns `true` when it has ended.
    async fn recover(&self) -> bool {
        // The first try may only report the last failed connection (and
        // reconnect); the second then tries the new connection.
        let mut answered = false;
        for _ in 0..2 {
            let mut conn = self.conn.clone();
            let probe = async move {
                redis::cmd("SET")
                    .arg(format!("{PREFIX}probe"))
                    .arg(1)
                    .arg("PX")
                    .arg(10_000)
                    .query_async::<()>(&mut conn)
                    .await
            };
            if self.bounded(probe).await.is_ok() {
                answered = true;
                break;
            }
        }
        if !answered {
            return false;
        }
        let replayed = match self.replay().await {
            Ok(n) => n,
            Err(_) => return false,
        };
        let since = self.outage.lock().take();
        // The outage ends before probing does: a failure in between starts
        // a new outage whose probe the next call starts (a call made while
        // down starts one if none runs).
        self.down.store(false, Ordering::Release);
        self.probing.store(false, Ordering::Release);
        let (lasted, reason) = match since {
            Some((at, reason)) => (at.elapsed(), reason),
            None => (Duration::ZERO, String::new()),
        };
        tracing::warn!(
            store = "redis",
            url = %self.url,
            replayed,
            "shared store reachable again after {} ms ({reason}); {replayed} quota counts made during the outage replayed",
            lasted.as_millis()
        );
        true
    }

    /// Adds the counts the fallback made to Redis, and clears them there.
    /// Returns how many calls were added. On a failure, what was not
    /// added is kept for the next replay.
    async fn replay(&self) -> Result<u64, String> {
        if !self.pending.swap(false, Ordering::AcqRel) {
            return Ok(0);
        }
        let counts = self.fallback.take_counts();
        let periods = self.periods.lock().clone();
        let mut replayed = 0;
        for (i, (counter, day, n)) in counts.iter().enumerate() {
            let mut invocation = self.replay_script.key(day_key(counter, *day));
            let mut period_ttl = 1;
            if let Some(period) = periods.get(counter) {
                let (start, end) = period.bounds(*day);
                invocation.key(period_key(counter, start));
                period_ttl = period_ttl_secs(end, *day);
            }
            invocation.arg(*n).arg(KEEP_DAYS * 86_400).arg(period_ttl);
            let mut conn = self.conn.clone();
            if let Err(e) = self.bounded(async { invocation.invoke_async::<i64>(&mut conn).await }).await {
                for (counter, day, n) in &counts[i..] {
                    self.fallback.add(counter, *day, *n);
                }
                self.pending.store(true, Ordering::Release);
                return Err(e);
            }
            replayed += n;
        }
        Ok(replayed)
    }

    /// Counts in memory while Redis is out of reach.
    fn count_locally(&self, check: QuotaCheck<'_>) -> Result<QuotaOutcome, StoreError> {
        {
            let mut periods = self.periods.lock();
            if periods.get(check.counter) != Some(&check.period) {
                periods.insert(check.counter.to_string(), check.period);
            }
        }
        let outcome = self.fallback.count_now(check);
        self.pending.store(true, Ordering::Release);
        Ok(outcome)
    }

    /// Replays what the fallback holds, if anything, before a call that
    /// reads or writes counts.
    async fn replay_pending(self: &Arc<Self>) -> Result<(), StoreError> {
        if !self.pending.load(Ordering::Acquire) || self.down.load(Ordering::Acquire) {
            return Ok(());
        }
        self.replay().await.map(drop).map_err(|reason| {
            self.went_down(&reason);
            StoreError::Unavailable(format!("Redis at {}: {reason}", self.url))
        })
    }
}

impl PolicyStore for RedisStore {
    async fn take(&self, bucket: &Bucket) -> Result<bool, StoreError> {
        let (inner, throttle) = (&self.inner, bucket.throttle);
        let refill_ms = f64::from(throttle.burst.max(1)) / throttle.rate * 1000.0 * BUCKET_REFILLS;
        // At least a second, at most a year (a rate near zero).
        let ttl_ms =
            if refill_ms.is_finite() { refill_ms.ceil().clamp(1000.0, 365.0 * 86_400_000.0) as u64 } else { 1000 };
        let mut invocation = inner.take_script.key(throttle_key(&bucket.name));
        invocation.arg(throttle.rate.to_string()).arg(throttle.burst).arg(ttl_ms);
        let mut conn = inner.conn.clone();
        let taken = inner.call(async { invocation.invoke_async::<i64>(&mut conn).await }).await?;
        Ok(taken == 1)
    }

    async fn count(&self, check: QuotaCheck<'_>) -> Result<QuotaOutcome, StoreError> {
        let inner = &self.inner;
        if inner.down.load(Ordering::Acquire) || inner.replay_pending().await.is_err() {
            inner.ensure_probe();
            return inner.count_locally(check);
        }
        let (start, end) = check.period.bounds(check.today);
        let mut invocation = inner.count_script.key(period_key(check.counter, start));
        invocation
            .key(day_key(check.counter, check.today))
            .arg(check.limit)
            .arg(period_ttl_secs(end, check.today))
            .arg(KEEP_DAYS * 86_400);
        let mut conn = inner.conn.clone();
        match inner.call(async { invocation.invoke_async::<i64>(&mut conn).await }).await {
            Ok(used) if used < 0 => Ok(QuotaOutcome::Exceeded),
            Ok(used) => {
                let used = used as u64;
                Ok(QuotaOutcome::Counted { used, remaining: check.limit.saturating_sub(used) })
            }
            Err(_) => inner.count_locally(check),
        }
    }

    async fn usage(&self, counter: &str, from: i64, to: i64) -> Result<Vec<u64>, StoreError> {
        let inner = &self.inner;
        if to < from {
            return Ok(Vec::new());
        }
        inner.replay_pending().await?;
        let keys: Vec<String> = (from..=to).map(|day| day_key(counter, day)).collect();
        let mut conn = inner.conn.clone();
        let days = inner
            .call(async { redis::cmd("MGET").arg(&keys).query_async::<Vec<Option<u64>>>(&mut conn).await })
            .await?;
        Ok(days.into_iter().map(Option::unwrap_or_default).collect())
    }

    async fn cache_get(&self, stage: &str, key: &str) -> Result<Option<Arc<CachedResponse>>, StoreError> {
        let inner = &self.inner;
        let mut conn = inner.conn.clone();
        let key = cache_key(stage, key);
        let bytes =
            inner.call(async { redis::cmd("GET").arg(&key).query_async::<Option<Vec<u8>>>(&mut conn).await }).await?;
        // Bytes this store did not write are a miss.
        Ok(bytes.and_then(|b| CachedResponse::decode(&b)).map(Arc::new))
    }

    async fn cache_put(
        &self,
        stage: &str,
        key: &str,
        response: CachedResponse,
        ttl: Duration,
        capacity: u64,
    ) -> Result<(), StoreError> {
        let inner = &self.inner;
        if !inner.capacity_said.swap(true, Ordering::Relaxed) {
            // Not silently ignored: a shared cache has one bound, Redis's.
            tracing::warn!(
                store = "redis",
                stage,
                capacity_mb = capacity / (1024 * 1024),
                "a stage cache's capacity_mb is not applied with a shared store: Redis's maxmemory and eviction policy bound the cached responses (each also ends with its TTL)"
            );
        }
        let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
        if ttl_ms == 0 {
            return Ok(());
        }
        let mut conn = inner.conn.clone();
        let key = cache_key(stage, key);
        let value = response.encode();
        inner
            .call(async {
                redis::cmd("SET").arg(&key).arg(value).arg("PX").arg(ttl_ms).query_async::<()>(&mut conn).await
            })
            .await
    }

    async fn cache_flush(&self, stage: &str) -> Result<(), StoreError> {
        let inner = &self.inner;
        let pattern = format!("{}*", cache_prefix(stage));
        let mut cursor: u64 = 0;
        loop {
            let mut conn = inner.conn.clone();
            let (next, keys) = inner
                .call(async {
                    redis::cmd("SCAN")
                        .arg(cursor)
                        .arg("MATCH")
                        .arg(&pattern)
                        .arg("COUNT")
                        .arg(SCAN_COUNT)
                        .query_async::<(u64, Vec<Vec<u8>>)>(&mut conn)
                        .await
                })
                .await?;
            if !keys.is_empty() {
                let mut conn = inner.conn.clone();
                inner.call(async { redis::cmd("UNLINK").arg(&keys).query_async::<()>(&mut conn).await }).await?;
            }
            if next == 0 {
                return Ok(());
            }
            cursor = next;
        }
    }
}

/// A name as a key's part: its `\0`-separated parts escaped, joined by `:`.
fn key_part(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 8);
    for (i, part) in name.split('\0').enumerate() {
        if i > 0 {
            out.push(':');
        }
        out.extend(utf8_percent_encode(part, KEY_PART));
    }
    out
}

fn throttle_key(bucket: &str) -> String {
    format!("{PREFIX}throttle:{}", key_part(bucket))
}

fn period_key(counter: &str, start_day: i64) -> String {
    format!("{PREFIX}quota:{}:period:{start_day}", key_part(counter))
}

fn day_key(counter: &str, day: i64) -> String {
    format!("{PREFIX}quota:{}:day:{day}", key_part(counter))
}

/// The prefix of every cached response of `stage`.
fn cache_prefix(stage: &str) -> String {
    format!("{PREFIX}cache:{}:", key_part(stage))
}

fn cache_key(stage: &str, key: &str) -> String {
    format!("{}{}", cache_prefix(stage), key_part(key))
}

/// A period counter's expiry: a day after its period ends (`end`, counted
/// from `today`).
fn period_ttl_secs(end: i64, today: i64) -> i64 {
    ((end - today).max(0) + 1) * 86_400
}

/// `url` with the password (in its user info or a `pass`/`password`
/// parameter) replaced by `***`.
fn mask_url(url: &str) -> String {
    let mut out = url.to_string();
    if let Some(scheme_end) = url.find("://") {
        let start = scheme_end + 3;
        let rest = &url[start..];
        let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
        if let Some(at) = authority.rfind('@')
            && let Some(colon) = authority[..at].find(':')
        {
            out = format!("{}:***{}", &url[..start + colon], &url[start + at..]);
        }
    }
    if let Some(q) = out.find('?') {
        let (head, query) = out.split_at(q + 1);
        let (query, fragment) = match query.find('#') {
            Some(h) => query.split_at(h),
            None => (query, ""),
        };
        let masked: Vec<String> = query
            .split('&')
            .map(|param| match param.split_once('=') {
                Some((name, _)) if name.eq_ignore_ascii_case("pass") || name.eq_ignore_ascii_case("password") => {
                    format!("{name}=***")
                }
                _ => param.to_string(),
            })
            .collect();
        out = format!("{head}{}{fragment}", masked.join("&"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_prefixed_printable_and_unambiguous() {
        assert_eq!(day_key("Basic\0k-1", 20_000), "wasmgate:quota:Basic:k-1:day:20000");
        assert_eq!(period_key("a:b\0c", 7), "wasmgate:quota:a%3Ab:c:period:7");
        assert_eq!(throttle_key("stage\0Items API/prod\0GET /x"), "wasmgate:throttle:stage:Items%20API/prod:GET%20/x");
        assert_eq!(cache_key("api/prod", "GET|/x*?[a]"), "wasmgate:cache:api/prod:GET|/x%2A%3F%5Ba%5D");
        // One stage's prefix never matches another's keys.
        assert!(!cache_key("a:b", "k").starts_with(&cache_prefix("a")));
        assert_eq!(key_part("100%\u{e9}"), "100%25%C3%A9");
    }

    #[test]
    fn passwords_are_masked() {
        assert_eq!(mask_url("redis://user:secret@host:6379/0"), "redis://user:***@host:6379/0");
        assert_eq!(mask_url("redis://:secret@host"), "redis://:***@host");
        assert_eq!(mask_url("redis://host:6379"), "redis://host:6379");
        assert_eq!(
            mask_url("redis+unix:///run/r.sock?db=1&pass=x&user=u"),
            "redis+unix:///run/r.sock?db=1&pass=***&user=u"
        );
        assert_eq!(mask_url("redis://u:p@h/0?password=p#f"), "redis://u:***@h/0?password=***#f");
    }
}
