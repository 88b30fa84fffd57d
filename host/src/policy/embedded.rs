//! The embedded store (the default): everything in this process, for one
//! gateway node.
//!
//! - Throttle buckets: one `governor` limiter (GCRA, a token bucket's
//!   equivalent) per bucket name, made full on first use and made again
//!   when its rate or burst changes. Exact on this node.
//! - Quota counters: per counter, calls per UTC day, in memory, and
//!   journalled in `<data>/quota.log` as lines of (day, plan, key usage id,
//!   calls). A thread of its own writes them: woken by the first count
//!   after it last wrote, it waits `GATHER` (10 ms), then writes one line per
//!   counter and day with the calls counted meanwhile, in one `write`. A
//!   call neither waits for its line nor sends one (a `write` per call cost
//!   a tenth of a loaded server's time, and a line sent per call to the
//!   writer still a few percent). A stop — SIGTERM, Ctrl-C, a restart —
//!   writes every count before the server exits and loses none; a crash of
//!   the process (`kill -9`) can lose the counts of its last 10 ms,
//!   those not written yet; a power cut, what the kernel had not yet put on
//!   disk. The journal is compacted, one line per counter and day, when the
//!   server starts and whenever it grows past 64 MB; days older than 100
//!   are dropped then (the usage report reaches back 90).
//! - Cached responses: a `moka` cache per stage, bounded by bytes, each
//!   entry with its own time to live.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::time::{Duration, Instant};

use governor::{DefaultDirectRateLimiter, Quota as GovernorQuota, RateLimiter};
use parking_lot::{Mutex, RwLock};

use super::store::{Bucket, CachedResponse, PolicyStore, QuotaCheck, QuotaOutcome, StoreError, Throttle};

/// Looked up on every call that a throttle or quota checks: a fast hasher
/// (the names are the configuration's, not a caller's).
type HashMap<K, V> = foldhash::HashMap<K, V>;

/// Days of counts kept (the usage report reaches back 90).
const KEEP_DAYS: i64 = 100;
/// The journal is compacted once it grows past this.
const COMPACT_AT: u64 = 64 * 1024 * 1024;

type Cache = moka::sync::Cache<String, (Arc<CachedResponse>, Duration)>;

pub struct EmbeddedStore {
    buckets: RwLock<HashMap<String, (Throttle, Arc<DefaultDirectRateLimiter>)>>,
    quotas: Arc<Mutex<Quotas>>,
    caches: RwLock<HashMap<String, (u64, Cache)>>,
    /// The journal's writer thread, joined when the store goes.
    writer: Option<std::thread::JoinHandle<()>>,
}

/// Quota counts, and what their journal has not been given yet.
struct Quotas {
    counts: HashMap<String, Counter>,
    /// Counters with calls not yet handed to the journal's writer.
    dirty: Vec<String>,
    /// Wakes the journal's writer (none: counts in memory only).
    journal: Option<Sender<Pending>>,
}

/// One counter's calls.
#[derive(Default)]
struct Counter {
    /// Day → calls.
    days: BTreeMap<i64, u64>,
    /// (day, calls) counted since the writer last took them.
    unwritten: Vec<(i64, u64)>,
}

/// What wakes the journal's writer: counts to write (sent by the first
/// count after it last took them), or a flush, told once every count made
/// before it is written.
enum Pending {
    Counts,
    Flush(std::sync::mpsc::SyncSender<Result<(), String>>),
}

/// How long the writer gathers counts after the first before it writes
/// them: what a crash of the process can lose.
const GATHER: Duration = Duration::from_millis(10);

/// The journal's file, owned by its writer thread.
struct Journal {
    path: PathBuf,
    file: File,
    written: u64,
    /// Compacted past this many bytes.
    compact_at: u64,
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
            buckets: RwLock::new(HashMap::default()),
            quotas: Arc::new(Mutex::new(Quotas { counts: HashMap::default(), dirty: Vec::new(), journal: None })),
            caches: RwLock::new(HashMap::default()),
            writer: None,
        }
    }

    /// A store whose quota counts are journalled in `data_dir`, with the
    /// counts the journal holds (compacted now). `today` decides which
    /// days are old enough to drop.
    pub fn open(data_dir: &Path, today: i64) -> Result<EmbeddedStore, StoreError> {
        EmbeddedStore::open_compacting_at(data_dir, today, COMPACT_AT)
    }

    fn open_compacting_at(data_dir: &Path, today: i64, compact_at: u64) -> Result<EmbeddedStore, StoreError> {
        let path = data_dir.join("quota.log");
        let mut counts: HashMap<String, Counter> = HashMap::default();
        match File::open(&path) {
            Ok(file) => {
                for line in BufReader::new(file).lines() {
                    let line = line.map_err(|e| StoreError::Journal(format!("read {}: {e}", path.display())))?;
                    // A line cut short by a crash is skipped.
                    if let Some((day, counter, n)) = parse_line(&line) {
                        *counts.entry(counter).or_default().days.entry(day).or_default() += n;
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(StoreError::Journal(format!("open {}: {e}", path.display()))),
        }
        let journal = compact(&mut counts, &path, today, compact_at)?;
        let mut store = EmbeddedStore::in_memory();
        let (tx, rx) = channel();
        let quotas = store.quotas.clone();
        let writer = std::thread::Builder::new()
            .name("wasmgate-quota".into())
            .spawn(move || write_journal(journal, rx, quotas))
            .map_err(|e| StoreError::Journal(format!("start the quota journal's writer: {e}")))?;
        store.writer = Some(writer);
        *store.quotas.lock() = Quotas { counts, dirty: Vec::new(), journal: Some(tx) };
        Ok(store)
    }
}

/// The journal's writer: waits to be woken, gathers counts for
/// [`GATHER`] (not after a flush), writes them in one `write`, and answers
/// flushes; compacts the journal when it has grown too long. Ends, having
/// written everything, when the store drops its end of the channel.
fn write_journal(mut journal: Journal, pending: Receiver<Pending>, quotas: Arc<Mutex<Quotas>>) {
    let mut buf = Vec::new();
    let mut flushes = Vec::new();
    let mut failing = false;
    loop {
        let closed = match pending.recv() {
            Ok(Pending::Counts) => {
                // Counters only wake this thread when it has taken what
                // they had: a loaded server's calls pay no wake-up.
                std::thread::sleep(GATHER);
                false
            }
            Ok(Pending::Flush(done)) => {
                flushes.push(done);
                false
            }
            Err(_) => true,
        };
        flushes.extend(pending.try_iter().filter_map(|p| match p {
            Pending::Flush(done) => Some(done),
            Pending::Counts => None,
        }));
        buf.clear();
        take_unwritten(&mut quotas.lock(), &mut buf);
        let result = if buf.is_empty() {
            Ok(())
        } else {
            (&journal.file).write_all(&buf).map_err(|e| format!("write {}: {e}", journal.path.display()))
        };
        match &result {
            Err(e) if !failing => tracing::error!("quota journal: {e}; counts are kept in memory only until it works"),
            Ok(()) if failing => tracing::warn!("quota journal written again"),
            _ => {}
        }
        failing = result.is_err();
        journal.written += buf.len() as u64;
        for done in flushes.drain(..) {
            let _ = done.send(result.clone());
        }
        if closed {
            return;
        }
        if journal.written > journal.compact_at {
            let mut quotas = quotas.lock();
            // Counts not taken yet are in the compacted journal: they are
            // not written again.
            let quotas = &mut *quotas;
            for counter in quotas.dirty.drain(..) {
                if let Some(c) = quotas.counts.get_mut(&counter) {
                    c.unwritten.clear();
                }
            }
            let today = quotas.counts.values().filter_map(|c| c.days.keys().next_back()).max().copied().unwrap_or(0);
            match compact(&mut quotas.counts, &journal.path, today, journal.compact_at) {
                Ok(compacted) => journal = compacted,
                Err(e) => tracing::error!("quota journal: compaction failed: {e}"),
            }
        }
    }
}

/// Takes the counts not yet written as journal lines into `buf`.
fn take_unwritten(quotas: &mut Quotas, buf: &mut Vec<u8>) {
    for counter in quotas.dirty.drain(..) {
        let Some(c) = quotas.counts.get_mut(&counter) else { continue };
        for (day, n) in c.unwritten.drain(..) {
            push_line(buf, day, &counter, n);
        }
    }
}

/// Appends the journal line of `n` calls of `counter` on `day`: the
/// inverse of [`parse_line`].
fn push_line(buf: &mut Vec<u8>, day: i64, counter: &str, n: u64) {
    let _ = write!(buf, "{day}\t");
    buf.extend(counter.bytes().map(|b| if b == 0 { b'\t' } else { b }));
    let _ = writeln!(buf, "\t{n}");
}

/// A journal line: `day \t plan \t usage id [\t count]`.
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

/// Writes `counts` (days within [`KEEP_DAYS`] of `today`) as the new
/// journal, replacing the old one atomically, and opens it to append.
fn compact(
    counts: &mut HashMap<String, Counter>,
    path: &Path,
    today: i64,
    compact_at: u64,
) -> Result<Journal, StoreError> {
    let fail = |e: std::io::Error| StoreError::Journal(format!("{}: {e}", path.display()));
    for c in counts.values_mut() {
        c.days.retain(|day, _| *day > today - KEEP_DAYS);
    }
    counts.retain(|_, c| !c.days.is_empty());
    let tmp = path.with_extension("log.tmp");
    let mut text = Vec::new();
    for (counter, c) in counts.iter() {
        for (day, n) in &c.days {
            push_line(&mut text, *day, counter, *n);
        }
    }
    {
        let mut file = File::create(&tmp).map_err(fail)?;
        file.write_all(&text).map_err(fail)?;
        file.sync_all().map_err(fail)?;
    }
    std::fs::rename(&tmp, path).map_err(fail)?;
    let file = OpenOptions::new().append(true).open(path).map_err(fail)?;
    Ok(Journal { path: path.to_path_buf(), file, written: text.len() as u64, compact_at })
}

impl EmbeddedStore {
    /// The limiter of `bucket` with `throttle`: the one made before, unless
    /// the throttle has changed since.
    pub(super) fn limiter(&self, bucket: &str, throttle: Throttle) -> Arc<DefaultDirectRateLimiter> {
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

    /// Counts a call: in memory, and (when journalled) among the counts
    /// the journal's writer takes next, waking it if it has taken all.
    pub fn count_now(&self, check: QuotaCheck<'_>) -> QuotaOutcome {
        let (start, _) = check.period.bounds(check.today);
        let mut quotas = self.quotas.lock();
        let quotas = &mut *quotas;
        let counter = match quotas.counts.get_mut(check.counter) {
            Some(counter) => counter,
            None => quotas.counts.entry(check.counter.to_string()).or_default(),
        };
        let used: u64 = counter.days.range(start..=check.today).map(|(_, n)| n).sum();
        if used >= check.limit {
            return QuotaOutcome::Exceeded;
        }
        *counter.days.entry(check.today).or_default() += 1;
        if let Some(journal) = &quotas.journal {
            match counter.unwritten.last_mut() {
                Some((day, n)) if *day == check.today => *n += 1,
                last => {
                    if last.is_none() {
                        if quotas.dirty.is_empty() {
                            // The writer only stops with the store.
                            let _ = journal.send(Pending::Counts);
                        }
                        quotas.dirty.push(check.counter.to_string());
                    }
                    counter.unwritten.push((check.today, 1));
                }
            }
        }
        QuotaOutcome::Counted { used: used + 1, remaining: check.limit - used - 1 }
    }

    /// Waits (blocking the thread) until every count made so far is
    /// written to the journal. A server calls it as it stops.
    pub fn flush(&self) -> Result<(), StoreError> {
        let Some(journal) = self.quotas.lock().journal.clone() else { return Ok(()) };
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        if journal.send(Pending::Flush(tx)).is_err() {
            return Err(StoreError::Journal("the quota journal's writer stopped".into()));
        }
        match rx.recv() {
            Ok(result) => result.map_err(StoreError::Journal),
            Err(_) => Err(StoreError::Journal("the quota journal's writer stopped".into())),
        }
    }

    /// Adds `n` calls to a counter's day without a limit (a shared store
    /// replaying what was counted while it was away, or a test).
    pub fn add(&self, counter: &str, day: i64, n: u64) {
        *self.quotas.lock().counts.entry(counter.to_string()).or_default().days.entry(day).or_default() += n;
    }

    /// Every counter's calls on `day` (what a fallback counted, to replay).
    pub fn take_counts(&self) -> Vec<(String, i64, u64)> {
        let mut quotas = self.quotas.lock();
        let counts = std::mem::take(&mut quotas.counts);
        counts
            .into_iter()
            .flat_map(|(c, counter)| counter.days.into_iter().map(move |(d, n)| (c.clone(), d, n)))
            .collect()
    }

    /// Takes a token from `bucket`, straight from its own limiter once it
    /// has one.
    pub fn take_now(&self, bucket: &Bucket) -> bool {
        bucket.limiter(self).check().is_ok()
    }

    pub fn usage_now(&self, counter: &str, from: i64, to: i64) -> Vec<u64> {
        let quotas = self.quotas.lock();
        let days = quotas.counts.get(counter).map(|c| &c.days);
        (from..=to).map(|d| days.and_then(|days| days.get(&d)).copied().unwrap_or(0)).collect()
    }
}

impl Drop for EmbeddedStore {
    /// Every count is written, and the writer has stopped (the journal is
    /// left alone), before the store goes.
    fn drop(&mut self) {
        // The writer writes what was counted, then ends with its channel.
        drop(self.quotas.lock().journal.take());
        if let Some(writer) = self.writer.take()
            && writer.join().is_err()
        {
            tracing::error!("quota journal: its writer panicked");
        }
    }
}

impl PolicyStore for EmbeddedStore {
    async fn take(&self, bucket: &Bucket) -> Result<bool, StoreError> {
        Ok(self.take_now(bucket))
    }

    async fn count(&self, check: QuotaCheck<'_>) -> Result<QuotaOutcome, StoreError> {
        Ok(self.count_now(check))
    }

    async fn usage(&self, counter: &str, from: i64, to: i64) -> Result<Vec<u64>, StoreError> {
        Ok(self.usage_now(counter, from, to))
    }

    async fn cache_get(&self, stage: &str, key: &str) -> Result<Option<Arc<CachedResponse>>, StoreError> {
        let caches = self.caches.read();
        let hit = caches.get(stage).and_then(|(_, cache)| cache.get(key));
        Ok(hit.map(|(response, _)| response))
    }

    async fn cache_put(
        &self,
        stage: &str,
        key: &str,
        response: CachedResponse,
        ttl: Duration,
        capacity: u64,
    ) -> Result<(), StoreError> {
        self.cache(stage, capacity).insert(key.to_string(), (Arc::new(response), ttl));
        Ok(())
    }

    async fn cache_flush(&self, stage: &str) -> Result<(), StoreError> {
        if let Some((_, cache)) = self.caches.read().get(stage) {
            cache.invalidate_all();
        }
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
            assert_eq!(store.count_now(check("P\0k", 3, monday)), QuotaOutcome::Counted { used: i, remaining: 3 - i });
        }
        assert_eq!(store.count_now(check("P\0k", 3, monday + 1)), QuotaOutcome::Exceeded);
        drop(store);
        let store = EmbeddedStore::open(dir.path(), monday + 2).unwrap();
        assert_eq!(store.count_now(check("P\0k", 3, monday + 6)), QuotaOutcome::Exceeded);
        // Next Monday: a new period.
        assert!(matches!(store.count_now(check("P\0k", 3, monday + 7)), QuotaOutcome::Counted { used: 1, .. }));
        assert_eq!(store.usage_now("P\0k", monday, monday + 7), vec![3, 0, 0, 0, 0, 0, 0, 1]);
        // A torn last line (a crash in the middle of a write) is skipped.
        store.flush().unwrap();
        let mut f = OpenOptions::new().append(true).open(dir.path().join("quota.log")).unwrap();
        f.write_all(b"2047\tP").unwrap();
        drop((f, store));
        let store = EmbeddedStore::open(dir.path(), monday + 7).unwrap();
        assert_eq!(store.usage_now("P\0k", monday, monday + 7), vec![3, 0, 0, 0, 0, 0, 0, 1]);
    }

    #[test]
    fn the_writer_compacts_the_journal_and_loses_no_count() {
        let dir = tempfile::tempdir().unwrap();
        let day = 20_000;
        let store = Arc::new(EmbeddedStore::open_compacting_at(dir.path(), day, 300).unwrap());
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let store = store.clone();
                std::thread::spawn(move || {
                    let counter = format!("P\0key{t}");
                    for _ in 0..100 {
                        let check = QuotaCheck { counter: &counter, limit: 1000, period: Period::Day, today: day };
                        assert!(matches!(store.count_now(check), QuotaOutcome::Counted { .. }));
                        // A write per count (or a few, with the others'),
                        // not one per gathering: the journal grows fast.
                        store.flush().unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        drop(store);
        // Compacted as it grew: far fewer lines than the writes made (each
        // compaction leaves a line per counter; 300 bytes hold about 15).
        let journal = std::fs::read_to_string(dir.path().join("quota.log")).unwrap();
        assert!(journal.lines().count() < 30, "never compacted:\n{journal}");
        let store = EmbeddedStore::open(dir.path(), day).unwrap();
        for t in 0..4 {
            assert_eq!(store.usage_now(&format!("P\0key{t}"), day, day), vec![100]);
        }
    }

    #[test]
    fn a_bucket_admits_its_burst_then_its_rate() {
        let store = EmbeddedStore::in_memory();
        let t = Throttle { rate: 0.001, burst: 3 };
        let bucket = Bucket::new("b".into(), t);
        let admitted = (0..10).filter(|_| store.take_now(&bucket)).count();
        assert_eq!(admitted, 3);
    }
}
