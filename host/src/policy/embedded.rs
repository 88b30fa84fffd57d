//! The embedded store (the default): everything in this process, for one
//! gateway node.
//!
//! - Throttle buckets: one `governor` limiter (GCRA, a token bucket's
//!   equivalent) per bucket name, made full on first use and made again
//!   when its rate or burst changes. Exact on this node.
//! - Quota counters: per counter, calls per UTC day, in memory. Each counted
//!   call is appended to `<data>/quota.log` (a line: day, plan, key usage
//!   id) before the call goes on, so a restart — or a crash of the process —
//!   loses no acknowledged count (the kernel holds what was written; a
//!   power cut can lose what it had not yet put on disk). The journal is
//!   compacted, one line per counter and day with its total, when the server
//!   starts and whenever it grows past 64 MB; days older than 100 are
//!   dropped then (the usage report reaches back 90).
//! - Cached responses: a `moka` cache per stage, bounded by bytes, each
//!   entry with its own time to live.

use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use governor::{DefaultDirectRateLimiter, Quota as GovernorQuota, RateLimiter};
use parking_lot::{Mutex, RwLock};

use super::catalog::Throttle;
use super::store::{CachedResponse, PolicyStore, QuotaCheck, QuotaOutcome, StoreError};

/// Days of counts kept (the usage report reaches back 90).
const KEEP_DAYS: i64 = 100;
/// The journal is compacted once it grows past this.
const COMPACT_AT: u64 = 64 * 1024 * 1024;

type Cache = moka::sync::Cache<String, (Arc<CachedResponse>, Duration)>;

pub struct EmbeddedStore {
    buckets: RwLock<HashMap<String, (Throttle, Arc<DefaultDirectRateLimiter>)>>,
    quotas: Mutex<Quotas>,
    caches: RwLock<HashMap<String, (u64, Cache)>>,
}

/// Quota counts and their journal.
struct Quotas {
    /// Counter → day → calls.
    counts: HashMap<String, BTreeMap<i64, u64>>,
    journal: Option<Journal>,
}

struct Journal {
    path: PathBuf,
    file: File,
    written: u64,
    /// The line being written (kept: no allocation per call).
    line: Vec<u8>,
}

/// Each entry lives for its own time to live.
struct PerEntry;

impl moka::Expiry<String, (Arc<CachedResponse>, Duration)> for PerEntry {
    fn expire_after_create(
        &self,
        _key: &String,
        value: &(Arc<CachedResponse>, Duration),
        _created_at: Instant,
    ) -> Option<Duration> {
        Some(value.1)
    }
}

impl EmbeddedStore {
    /// A store whose quota counts live only in memory (tests, and a shared
    /// store's fallback while it is unreachable).
    pub fn in_memory() -> EmbeddedStore {
        EmbeddedStore {
            buckets: RwLock::new(HashMap::new()),
            quotas: Mutex::new(Quotas { counts: HashMap::new(), journal: None }),
            caches: RwLock::new(HashMap::new()),
        }
    }

    /// A store whose quota counts are journalled in `data_dir`, with the
    /// counts the journal holds (compacted now). `today` decides which
    /// days are old enough to drop.
    pub fn open(data_dir: &Path, today: i64) -> Result<EmbeddedStore, StoreError> {
        let path = data_dir.join("quota.log");
        let mut counts: HashMap<String, BTreeMap<i64, u64>> = HashMap::new();
        match File::open(&path) {
            Ok(file) => {
                for line in BufReader::new(file).lines() {
                    let line = line.map_err(|e| StoreError::Journal(format!("read {}: {e}", path.display())))?;
                    // A line cut short by a crash is skipped.
                    if let Some((day, counter, n)) = parse_line(&line) {
                        *counts.entry(counter).or_default().entry(day).or_default() += n;
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(StoreError::Journal(format!("open {}: {e}", path.display()))),
        }
        let mut quotas = Quotas { counts, journal: None };
        quotas.compact(&path, today)?;
        let store = EmbeddedStore::in_memory();
        *store.quotas.lock() = quotas;
        Ok(store)
    }
}

fn parse_line(line: &str) -> Option<(i64, String, u64)> {
    let mut fields = line.split('\t');
    let day = fields.next()?.parse().ok()?;
    let plan = fields.next()?;
    let usage = fields.next()?;
    let n = match fields.next() {
        Some(n) => n.parse().ok()?,
        None => 1,
    };
    if plan.is_empty() || usage.is_empty() || fields.next().is_some() {
        return None;
    }
    Some((day, format!("{plan}\0{usage}"), n))
}

impl Quotas {
    /// Writes the counts (days within [`KEEP_DAYS`] of `today`) as the new
    /// journal, replacing the old one atomically, and appends from there.
    fn compact(&mut self, path: &Path, today: i64) -> Result<(), StoreError> {
        let fail = |e: std::io::Error| StoreError::Journal(format!("{}: {e}", path.display()));
        for days in self.counts.values_mut() {
            days.retain(|day, _| *day > today - KEEP_DAYS);
        }
        self.counts.retain(|_, days| !days.is_empty());
        let tmp = path.with_extension("log.tmp");
        let mut text = String::new();
        for (counter, days) in &self.counts {
            let counter = counter.replace('\0', "\t");
            for (day, n) in days {
                text.push_str(&format!("{day}\t{counter}\t{n}\n"));
            }
        }
        {
            let mut file = File::create(&tmp).map_err(fail)?;
            file.write_all(text.as_bytes()).map_err(fail)?;
            file.sync_all().map_err(fail)?;
        }
        std::fs::rename(&tmp, path).map_err(fail)?;
        let file = OpenOptions::new().append(true).open(path).map_err(fail)?;
        self.journal = Some(Journal { path: path.to_path_buf(), file, written: text.len() as u64, line: Vec::new() });
        Ok(())
    }

    /// Records one call of `counter` on `day` in the journal: one `write`
    /// of one line.
    fn journal(&mut self, counter: &str, day: i64) -> Result<(), StoreError> {
        let Some(journal) = &mut self.journal else { return Ok(()) };
        let line = &mut journal.line;
        line.clear();
        let _ = write!(line, "{day}\t");
        line.extend(counter.bytes().map(|b| if b == 0 { b'\t' } else { b }));
        line.push(b'\n');
        (&journal.file)
            .write_all(line)
            .map_err(|e| StoreError::Journal(format!("write {}: {e}", journal.path.display())))?;
        journal.written += line.len() as u64;
        if journal.written > COMPACT_AT {
            let path = journal.path.clone();
            self.compact(&path, day)?;
        }
        Ok(())
    }
}

impl EmbeddedStore {
    fn limiter(&self, bucket: &str, throttle: Throttle) -> Arc<DefaultDirectRateLimiter> {
        if let Some((t, limiter)) = self.buckets.read().get(bucket)
            && *t == throttle
        {
            return limiter.clone();
        }
        let period = Duration::from_secs_f64(1.0 / throttle.rate);
        let burst = NonZeroU32::new(throttle.burst).unwrap_or(NonZeroU32::MIN);
        let quota = GovernorQuota::with_period(period).unwrap_or_else(|| GovernorQuota::per_second(burst));
        let limiter = Arc::new(RateLimiter::direct(quota.allow_burst(burst)));
        self.buckets.write().insert(bucket.to_string(), (throttle, limiter.clone()));
        limiter
    }

    fn cache(&self, stage: &str, capacity: u64) -> Cache {
        if let Some((c, cache)) = self.caches.read().get(stage)
            && *c == capacity
        {
            return cache.clone();
        }
        let cache: Cache = moka::sync::Cache::builder()
            .max_capacity(capacity)
            .weigher(|k: &String, v: &(Arc<CachedResponse>, Duration)| {
                u32::try_from(v.0.weight() + k.len() as u64).unwrap_or(u32::MAX)
            })
            .expire_after(PerEntry)
            .build();
        // A changed capacity starts an empty cache, as resizing API
        // Gateway's cache does.
        self.caches.write().insert(stage.to_string(), (capacity, cache.clone()));
        cache
    }

    /// Counts now (synchronous; the embedded store never waits).
    pub fn count_now(&self, check: QuotaCheck<'_>) -> Result<QuotaOutcome, StoreError> {
        let (start, _) = check.period.bounds(check.today);
        let mut quotas = self.quotas.lock();
        let used: u64 = match quotas.counts.get(check.counter) {
            Some(days) => days.range(start..=check.today).map(|(_, n)| n).sum(),
            None => 0,
        };
        if used >= check.limit {
            return Ok(QuotaOutcome::Exceeded);
        }
        quotas.journal(check.counter, check.today)?;
        let days = match quotas.counts.get_mut(check.counter) {
            Some(days) => days,
            None => quotas.counts.entry(check.counter.to_string()).or_default(),
        };
        *days.entry(check.today).or_default() += 1;
        Ok(QuotaOutcome::Counted { used: used + 1, remaining: check.limit - used - 1 })
    }

    /// Adds `n` calls to a counter's day without a limit (a shared store
    /// replaying what was counted while it was away, or a test).
    pub fn add(&self, counter: &str, day: i64, n: u64) {
        *self.quotas.lock().counts.entry(counter.to_string()).or_default().entry(day).or_default() += n;
    }

    /// Every counter's calls on `day` (what a fallback counted, to replay).
    pub fn take_counts(&self) -> Vec<(String, i64, u64)> {
        let mut quotas = self.quotas.lock();
        let counts = std::mem::take(&mut quotas.counts);
        counts.into_iter().flat_map(|(c, days)| days.into_iter().map(move |(d, n)| (c.clone(), d, n))).collect()
    }

    pub fn take_now(&self, bucket: &str, throttle: Throttle) -> bool {
        self.limiter(bucket, throttle).check().is_ok()
    }

    pub fn usage_now(&self, counter: &str, from: i64, to: i64) -> Vec<u64> {
        let quotas = self.quotas.lock();
        let days = quotas.counts.get(counter);
        (from..=to).map(|d| days.and_then(|days| days.get(&d)).copied().unwrap_or(0)).collect()
    }

    pub fn cache_get_now(&self, stage: &str, key: &str) -> Option<CachedResponse> {
        let caches = self.caches.read();
        let (_, cache) = caches.get(stage)?;
        cache.get(key).map(|(r, _)| (*r).clone())
    }

    pub fn cache_put_now(&self, stage: &str, key: &str, response: CachedResponse, ttl: Duration, capacity: u64) {
        self.cache(stage, capacity).insert(key.to_string(), (Arc::new(response), ttl));
    }

    pub fn cache_flush_now(&self, stage: &str) {
        if let Some((_, cache)) = self.caches.read().get(stage) {
            cache.invalidate_all();
        }
    }
}

impl PolicyStore for EmbeddedStore {
    async fn take(&self, bucket: &str, throttle: Throttle) -> Result<bool, StoreError> {
        Ok(self.take_now(bucket, throttle))
    }

    async fn count(&self, check: QuotaCheck<'_>) -> Result<QuotaOutcome, StoreError> {
        self.count_now(check)
    }

    async fn usage(&self, counter: &str, from: i64, to: i64) -> Result<Vec<u64>, StoreError> {
        Ok(self.usage_now(counter, from, to))
    }

    async fn cache_get(&self, stage: &str, key: &str) -> Result<Option<CachedResponse>, StoreError> {
        Ok(self.cache_get_now(stage, key))
    }

    async fn cache_put(
        &self,
        stage: &str,
        key: &str,
        response: CachedResponse,
        ttl: Duration,
        capacity: u64,
    ) -> Result<(), StoreError> {
        self.cache_put_now(stage, key, response, ttl, capacity);
        Ok(())
    }

    async fn cache_flush(&self, stage: &str) -> Result<(), StoreError> {
        self.cache_flush_now(stage);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::clock::Period;

    fn check(counter: &str, limit: u64, today: i64) -> QuotaCheck<'_> {
        QuotaCheck { counter, limit, period: Period::Week, today }
    }

    #[test]
    fn quota_counts_survive_a_reopen_and_periods_roll_over() {
        let dir = tempfile::tempdir().unwrap();
        let monday = crate::policy::clock::parse_day("2026-11-30").unwrap();
        let store = EmbeddedStore::open(dir.path(), monday).unwrap();
        for i in 1..=3 {
            assert_eq!(
                store.count_now(check("P\0k", 3, monday)).unwrap(),
                QuotaOutcome::Counted { used: i, remaining: 3 - i }
            );
        }
        assert_eq!(store.count_now(check("P\0k", 3, monday + 1)).unwrap(), QuotaOutcome::Exceeded);
        drop(store);
        let store = EmbeddedStore::open(dir.path(), monday + 2).unwrap();
        assert_eq!(store.count_now(check("P\0k", 3, monday + 6)).unwrap(), QuotaOutcome::Exceeded);
        // Next Monday: a new period.
        assert!(matches!(
            store.count_now(check("P\0k", 3, monday + 7)).unwrap(),
            QuotaOutcome::Counted { used: 1, .. }
        ));
        assert_eq!(store.usage_now("P\0k", monday, monday + 7), vec![3, 0, 0, 0, 0, 0, 0, 1]);
        // A torn last line is skipped.
        let mut f = OpenOptions::new().append(true).open(dir.path().join("quota.log")).unwrap();
        f.write_all(b"2047\tP").unwrap();
        drop((f, store));
        let store = EmbeddedStore::open(dir.path(), monday + 7).unwrap();
        assert_eq!(store.usage_now("P\0k", monday, monday + 7), vec![3, 0, 0, 0, 0, 0, 0, 1]);
    }

    #[test]
    fn a_bucket_admits_its_burst_then_its_rate() {
        let store = EmbeddedStore::in_memory();
        let t = Throttle { rate: 0.001, burst: 3 };
        let admitted = (0..10).filter(|_| store.take_now("b", t)).count();
        assert_eq!(admitted, 3);
    }
}
