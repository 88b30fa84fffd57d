//! The recent logs `wasmgate logs` reads: each function's invocations (its
//! output between Lambda's START, END and REPORT lines) and each stage's
//! access lines, kept in memory, a bounded ring per stream.
//!
//! A stream is resolved once — a loaded version holds its function's, a
//! served stage its own — so a call adds its entry under the stream's lock
//! without looking anything up. An invocation is kept as its facts and
//! output and made into lines only when read.
//!
//! Adding an entry allocates nothing: a 24-byte record (when, and where
//! its text is) and its text — an access line, or an invocation's facts
//! packed into 32 bytes, its request id, qualifier, start kind and output
//! — go to the end of the stream's newest chunk (64 KB); a full chunk
//! starts the next, and the oldest chunks go whole once the stream holds
//! more than [`MAX_ENTRIES`] entries or [`MAX_BYTES`] of text. A stream
//! of 10,000 invocations holds about 1.1 MB (records of 120 bytes, facts
//! unpacked, held 1.6 MB; they were no slower). (An entry per request
//! with a few small allocations of its own cost a tenth of a loaded
//! server's requests/s: the allocator served every request from cold
//! memory.)
//!
//! A server's streams together hold no more than its budget (`[server]
//! recent_logs_mb`, [`DEFAULT_BUDGET_MB`] by default): past it, the oldest
//! chunk of all goes, whichever stream holds it. The budget is counted
//! when a chunk is made or let go, never per entry.
//!
//! A reader asks for what came after the last entry it saw (an entry's
//! `seq` grows by one per entry of its stream), optionally waiting for the
//! next one: `--follow` is a loop of such waits, as `aws logs tail
//! --follow` polls.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicIsize, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;
use tokio::sync::Notify;

use crate::registry::VersionRef;

/// Most entries a stream keeps (the oldest chunk goes whole past it).
pub const MAX_ENTRIES: usize = 10_000;
/// What a server's streams hold together by default (`[server]
/// recent_logs_mb`).
pub const DEFAULT_BUDGET_MB: usize = 256;
/// Most bytes of text a stream keeps (an invocation's output counts whole).
pub const MAX_BYTES: usize = 4 << 20;
/// A chunk's text, and most entries a chunk holds.
const CHUNK_BYTES: usize = 64 << 10;
const CHUNK_ENTRIES: usize = 1024;

/// One invocation, as Lambda's log shows it.
#[derive(Debug, Clone, Copy)]
pub struct Invocation<'a> {
    pub request_id: &'a str,
    /// The version that ran.
    pub version: VersionRef,
    /// `cold`, `warm` or `hot`.
    pub start: &'static str,
    pub duration: Duration,
    pub memory_mb: u32,
    /// The instance's memory at the end of the call.
    pub memory_used_bytes: u64,
    /// What the guest wrote to stdout and stderr.
    pub output: &'a [u8],
}

impl Invocation<'_> {
    /// Its log as Lambda writes it — START, the output's lines, END and
    /// REPORT — each line ended by a newline: what Invoke's `LogType: Tail`
    /// answers the last 4 KB of.
    pub fn lambda_log(&self) -> String {
        let output = String::from_utf8_lossy(self.output);
        let mut text = String::new();
        for line in InvocationFacts::of(self, 0).lines(self.request_id, self.start, &output) {
            text.push_str(&line);
            text.push('\n');
        }
        text
    }
}

/// An entry: when it was added (placed on the wall clock when read:
/// entries are recent, so the clocks cannot drift apart in between, and
/// adding one reads no clock), and where its text is in its chunk. Its
/// `seq` is its chunk's first plus its place.
#[derive(Debug, Clone, Copy)]
struct Record {
    time: Instant,
    at: u32,
    len: u32,
}

/// An entry's text starts with its kind: a line (the rest is the line) or
/// an invocation (its packed facts, then its texts).
const LINE: u8 = 0;
const INVOCATION: u8 = 1;

/// An invocation's facts; its texts (request id, what the caller named,
/// start kind, and its output: the rest of the entry's text) follow them
/// in its entry's text.
#[derive(Debug, Clone, Copy, PartialEq)]
struct InvocationFacts {
    id_len: u32,
    invoked_len: u32,
    start_len: u32,
    version: VersionRef,
    duration: Duration,
    memory_mb: u32,
    memory_used_mb: u32,
}

impl InvocationFacts {
    /// Their size packed.
    const PACKED: usize = 3 * 4 + 4 + 8 + 4 + 4;

    /// `invoked_len`: how long what the caller named is (0 when not kept).
    fn of(i: &Invocation<'_>, invoked_len: usize) -> InvocationFacts {
        InvocationFacts {
            id_len: i.request_id.len() as u32,
            invoked_len: invoked_len as u32,
            start_len: i.start.len() as u32,
            version: i.version,
            duration: i.duration,
            memory_mb: i.memory_mb,
            memory_used_mb: i.memory_used_bytes.div_ceil(1 << 20).try_into().unwrap_or(u32::MAX),
        }
    }

    /// Little-endian, in the order of the fields; `$LATEST` as version 0.
    fn pack(&self) -> [u8; Self::PACKED] {
        let version = match self.version {
            VersionRef::Latest => 0,
            VersionRef::Number(n) => n,
        };
        let nanos = u64::try_from(self.duration.as_nanos()).unwrap_or(u64::MAX);
        let mut packed = [0; Self::PACKED];
        let fields: [&[u8]; 7] = [
            &self.id_len.to_le_bytes(),
            &self.invoked_len.to_le_bytes(),
            &self.start_len.to_le_bytes(),
            &version.to_le_bytes(),
            &nanos.to_le_bytes(),
            &self.memory_mb.to_le_bytes(),
            &self.memory_used_mb.to_le_bytes(),
        ];
        let mut at = 0;
        for field in fields {
            packed[at..at + field.len()].copy_from_slice(field);
            at += field.len();
        }
        packed
    }

    fn unpack(packed: &[u8; Self::PACKED]) -> InvocationFacts {
        let u32_at = |at: usize| u32::from_le_bytes(packed[at..at + 4].try_into().expect("4 bytes"));
        let version = match u32_at(12) {
            0 => VersionRef::Latest,
            n => VersionRef::Number(n),
        };
        InvocationFacts {
            id_len: u32_at(0),
            invoked_len: u32_at(4),
            start_len: u32_at(8),
            version,
            duration: Duration::from_nanos(u64::from_le_bytes(packed[16..24].try_into().expect("8 bytes"))),
            memory_mb: u32_at(24),
            memory_used_mb: u32_at(28),
        }
    }

    /// Lambda's lines: START, the output's lines as written, END, REPORT
    /// (its fields tab-separated, wasmgate's start kind last).
    fn lines(&self, id: &str, start: &str, output: &str) -> Vec<String> {
        let mut lines = Vec::with_capacity(3 + output.lines().count());
        lines.push(format!("START RequestId: {id} Version: {}", self.version));
        lines.extend(output.lines().map(str::to_string));
        lines.push(format!("END RequestId: {id}"));
        let ms = self.duration.as_secs_f64() * 1000.0;
        lines.push(format!(
            "REPORT RequestId: {id}\tDuration: {ms:.2} ms\tBilled Duration: {} ms\tMemory Size: {} MB\t\
             Max Memory Used: {} MB\tStart: {start}",
            ms.ceil().max(1.0) as u64,
            self.memory_mb,
            self.memory_used_mb,
        ));
        lines
    }
}

/// Entries and the text they point into.
struct Chunk {
    /// Its first record's `seq`.
    first_seq: u64,
    records: Vec<Record>,
    text: Vec<u8>,
}

impl Chunk {
    /// The memory it holds (the same for its life: neither vector grows).
    fn size(&self) -> usize {
        self.text.capacity() + self.records.capacity() * std::mem::size_of::<Record>()
    }

    fn new(text_bytes: usize) -> Chunk {
        Chunk {
            first_seq: 0,
            records: Vec::with_capacity(CHUNK_ENTRIES),
            text: Vec::with_capacity(text_bytes.max(CHUNK_BYTES)),
        }
    }
}

/// One stream: a function's invocations or a stage's access lines.
#[derive(Default)]
pub struct Stream {
    ring: Mutex<Ring>,
    /// Wakes the readers waiting for the next entry (told only while one waits).
    arrived: Notify,
    waiting: AtomicUsize,
    /// The server's streams it shares their budget with (none: a stream
    /// of its own, bounded by its own limits alone).
    budget: std::sync::Weak<Streams>,
}

#[derive(Default)]
struct Ring {
    chunks: VecDeque<Chunk>,
    entries: usize,
    bytes: usize,
    next_seq: u64,
    /// Emptied chunks, taken again before new ones are made (fresh memory
    /// costs a page fault a page).
    spare: Option<Chunk>,
    /// The memory its chunks and its spare hold.
    held: usize,
}

fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

impl Ring {
    /// Adds an entry whose text is `parts`, end to end.
    fn push(&mut self, time: Instant, parts: &[&[u8]]) {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        let fits = self.chunks.back().is_some_and(|c| {
            c.records.len() < CHUNK_ENTRIES && c.text.len() + len <= c.text.capacity().max(CHUNK_BYTES)
        });
        if !fits {
            let mut chunk = match self.spare.take() {
                Some(spare) if spare.text.capacity() >= len => spare,
                too_small => {
                    if let Some(spare) = too_small {
                        self.held -= spare.size();
                    }
                    let chunk = Chunk::new(len);
                    self.held += chunk.size();
                    chunk
                }
            };
            chunk.first_seq = self.next_seq + 1;
            self.chunks.push_back(chunk);
        }
        let chunk = self.chunks.back_mut().expect("a chunk was just made if there was none");
        let at = chunk.text.len();
        for part in parts {
            chunk.text.extend_from_slice(part);
        }
        self.next_seq += 1;
        // A chunk's text is far below 4 GB (an output larger than a chunk
        // has a chunk of its own, and outputs are bounded).
        chunk.records.push(Record { time, at: at as u32, len: len as u32 });
        self.entries += 1;
        self.bytes += len;
        while (self.entries > MAX_ENTRIES || self.bytes > MAX_BYTES) && self.chunks.len() > 1 {
            let mut old = self.chunks.pop_front().expect("more than one chunk");
            self.entries -= old.records.len();
            self.bytes -= old.text.len();
            old.records.clear();
            old.text.clear();
            if let Some(spare) = self.spare.replace(old) {
                self.held -= spare.size();
            }
        }
    }

    /// When its oldest entry was added.
    fn oldest(&self) -> Option<Instant> {
        self.chunks.front().and_then(|c| c.records.first()).map(|r| r.time)
    }

    /// Lets its oldest chunk and its spare go: the memory let go.
    fn shed_oldest(&mut self) -> usize {
        let before = self.held;
        if let Some(old) = self.chunks.pop_front() {
            self.entries -= old.records.len();
            self.bytes -= old.text.len();
            self.held -= old.size();
        }
        if let Some(spare) = self.spare.take() {
            self.held -= spare.size();
        }
        before - self.held
    }
}

/// A server's streams, the memory they hold together, and its bound: past
/// it, the oldest chunk of all goes, whichever stream it is in (a busy
/// function does not lose its recent entries to an idle one's old ones).
/// Counted when a chunk is made or let go, never per entry.
struct Streams {
    functions: Mutex<HashMap<String, Arc<Stream>>>,
    stages: Mutex<HashMap<String, Arc<Stream>>>,
    limit: isize,
    /// Signed: a stream's growth may be counted just after what was shed of it.
    held: AtomicIsize,
    /// Taken by the one call that sheds; the others go on meanwhile.
    shedding: Mutex<()>,
}

impl Streams {
    /// A stream's chunks came to hold `grown` bytes more (or fewer).
    fn grew(&self, grown: isize) {
        let held = self.held.fetch_add(grown, Ordering::AcqRel) + grown;
        if grown > 0 && held > self.limit {
            self.shed();
        }
    }

    /// Lets the oldest chunks of all go until the streams hold no more
    /// than the limit. A stream's lock is taken alone, never inside
    /// another's (and no one takes the maps' locks inside a stream's).
    fn shed(&self) {
        let Some(_one) = self.shedding.try_lock() else { return };
        while self.held.load(Ordering::Acquire) > self.limit {
            let oldest = {
                let (functions, stages) = (self.functions.lock(), self.stages.lock());
                let streams = functions.values().chain(stages.values());
                streams.filter_map(|s| Some((s.ring.lock().oldest()?, s.clone()))).min_by_key(|(t, _)| *t)
            };
            let Some((_, stream)) = oldest else { return };
            let freed = stream.ring.lock().shed_oldest();
            self.held.fetch_sub(freed as isize, Ordering::AcqRel);
        }
    }
}

impl std::fmt::Debug for Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Stream")
    }
}

/// A read: the lines after an entry, and where the next read starts.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Page {
    pub events: Vec<Event>,
    /// The `after` of the next read.
    pub next: u64,
}

/// A line with its time, as `aws logs` shows one.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Event {
    /// Unix milliseconds.
    pub timestamp: u64,
    pub message: String,
}

/// What a read selects.
#[derive(Debug, Clone, Default)]
pub struct Query {
    /// Entries after this `seq` (0: from the oldest kept).
    pub after: u64,
    /// Entries from this time on (Unix milliseconds).
    pub since_ms: u64,
    /// Invocations made through this qualifier, or of this version.
    pub qualifier: Option<String>,
    /// Lines that contain this text (an invocation's START, END and REPORT
    /// lines stay with any of its lines that does).
    pub filter: Option<String>,
}

impl Stream {
    /// Adds an invocation made through `invoked` (what the caller named:
    /// `fn`, `fn:7`, `fn:prod`; split only when read) that ended at `ended`.
    pub fn invocation(&self, i: Invocation<'_>, invoked: &str, ended: Instant) {
        let facts = InvocationFacts::of(&i, invoked.len()).pack();
        let parts =
            [&[INVOCATION], &facts[..], i.request_id.as_bytes(), invoked.as_bytes(), i.start.as_bytes(), i.output];
        self.push(ended, &parts);
    }

    /// Adds a line of `time`.
    pub fn line(&self, line: &str, time: Instant) {
        self.push(time, &[&[LINE], line.as_bytes()]);
    }

    fn push(&self, time: Instant, parts: &[&[u8]]) {
        let grown = {
            let mut ring = self.ring.lock();
            let before = ring.held;
            ring.push(time, parts);
            ring.held as isize - before as isize
        };
        if self.waiting.load(Ordering::Acquire) > 0 {
            self.arrived.notify_waiters();
        }
        if grown != 0
            && let Some(streams) = self.budget.upgrade()
        {
            streams.grew(grown);
        }
    }

    /// The lines `query` selects, read now. Under the stream's lock the
    /// selected entries' text is only copied out; they are made into lines
    /// after it is let go (a request adding an entry waits on that lock).
    pub fn read(&self, query: &Query) -> Page {
        // Now on both clocks: an entry's wall-clock time is now less its age.
        let (now, now_ms) = (Instant::now(), unix_ms(SystemTime::now()));
        let wall_ms = |t: Instant| now_ms.saturating_sub(now.saturating_duration_since(t).as_millis() as u64);
        let (taken, next) = {
            let ring = self.ring.lock();
            let mut taken = Vec::new();
            for chunk in &ring.chunks {
                let after = query.after.saturating_sub(chunk.first_seq - 1);
                for record in chunk.records.iter().skip(usize::try_from(after).unwrap_or(usize::MAX)) {
                    let timestamp = wall_ms(record.time);
                    if timestamp >= query.since_ms {
                        let (at, len) = (record.at as usize, record.len as usize);
                        taken.push((timestamp, chunk.text[at..at + len].to_vec()));
                    }
                }
            }
            (taken, ring.next_seq.max(query.after))
        };
        let matched = |line: &String| query.filter.as_deref().is_none_or(|f| line.contains(f));
        let mut events = Vec::new();
        for (timestamp, text) in taken {
            let (lines, whole) = match text.split_first() {
                Some((&INVOCATION, rest)) => {
                    let (packed, rest) = rest.split_first_chunk().expect("an invocation's facts");
                    let facts = InvocationFacts::unpack(packed);
                    let (id, rest) = rest.split_at(facts.id_len as usize);
                    let (invoked, rest) = rest.split_at(facts.invoked_len as usize);
                    let (start, output) = rest.split_at(facts.start_len as usize);
                    let text = String::from_utf8_lossy;
                    let invoked = text(invoked);
                    let qualifier = invoked.split_once(':').map_or("$LATEST", |(_, q)| q);
                    let version = facts.version.to_string();
                    if query.qualifier.as_deref().is_some_and(|q| q != qualifier && q != version) {
                        continue;
                    }
                    let lines = facts.lines(&text(id), &text(start), &text(output));
                    let whole = lines.iter().any(matched);
                    (lines, whole)
                }
                Some((_, line)) => (vec![String::from_utf8_lossy(line).into_owned()], false),
                None => continue,
            };
            for line in lines {
                if whole || matched(&line) {
                    events.push(Event { timestamp, message: line });
                }
            }
        }
        Page { events, next }
    }

    /// The lines `query` selects; if there are none yet, waits up to
    /// `wait` for the next entry.
    pub async fn read_or_wait(&self, query: &Query, wait: Duration) -> Page {
        let deadline = tokio::time::Instant::now() + wait;
        let mut query = query.clone();
        // Counted out however the wait ends (an answer, or a dropped request).
        let _waiting = Waiting::new(&self.waiting);
        loop {
            // Registered before reading: an entry added in between wakes it.
            let arrived = self.arrived.notified();
            tokio::pin!(arrived);
            arrived.as_mut().enable();
            let page = self.read(&query);
            if !page.events.is_empty() || tokio::time::Instant::now() >= deadline {
                return page;
            }
            // Entries that did not match move the reader on.
            query.after = page.next;
            if tokio::time::timeout_at(deadline, arrived).await.is_err() {
                return Page { events: Vec::new(), next: query.after };
            }
        }
    }
}

/// A reader counted among a stream's waiting ones while it lives.
struct Waiting<'a>(&'a AtomicUsize);

impl<'a> Waiting<'a> {
    fn new(count: &'a AtomicUsize) -> Self {
        count.fetch_add(1, Ordering::AcqRel);
        Waiting(count)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Every stream of a server, holding no more than its budget together.
pub struct RecentLogs(Arc<Streams>);

impl Default for RecentLogs {
    fn default() -> Self {
        RecentLogs::new(DEFAULT_BUDGET_MB << 20)
    }
}

impl std::fmt::Debug for RecentLogs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RecentLogs")
    }
}

impl RecentLogs {
    /// Streams that hold at most `budget` bytes together (each also at most
    /// [`MAX_ENTRIES`] entries and [`MAX_BYTES`] of text).
    pub fn new(budget: usize) -> RecentLogs {
        RecentLogs(Arc::new(Streams {
            functions: Mutex::default(),
            stages: Mutex::default(),
            limit: budget.try_into().unwrap_or(isize::MAX),
            held: AtomicIsize::new(0),
            shedding: Mutex::new(()),
        }))
    }

    /// A function's stream (made on first use, kept across its versions).
    pub fn function(&self, name: &str) -> Arc<Stream> {
        self.0.functions.lock().entry(name.to_string()).or_insert_with(|| self.new_stream()).clone()
    }

    /// A stage's access-log stream (`api/stage`).
    pub fn stage(&self, stage: &str) -> Arc<Stream> {
        self.0.stages.lock().entry(stage.to_string()).or_insert_with(|| self.new_stream()).clone()
    }

    fn new_stream(&self) -> Arc<Stream> {
        Arc::new(Stream { budget: Arc::downgrade(&self.0), ..Stream::default() })
    }

    /// The memory the streams hold together.
    pub fn held(&self) -> usize {
        self.0.held.load(Ordering::Acquire).max(0) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Adds an invocation of `f` made through `invoked`, ending now.
    fn invoke(stream: &Stream, id: &str, invoked: &str, output: &str) {
        let invocation = Invocation {
            request_id: id,
            version: if invoked == "f:prod" { VersionRef::Number(1) } else { VersionRef::Latest },
            start: "warm",
            duration: Duration::from_micros(1500),
            memory_mb: 128,
            memory_used_bytes: 3 << 20,
            output: output.as_bytes(),
        };
        stream.invocation(invocation, invoked, Instant::now());
    }

    fn messages(page: &Page) -> Vec<&str> {
        page.events.iter().map(|e| e.message.as_str()).collect()
    }

    #[test]
    fn an_invocation_reads_as_lambdas_lines() {
        let stream = Stream::default();
        invoke(&stream, "r1", "f", "hello\nworld\n");
        let page = stream.read(&Query::default());
        assert_eq!(
            messages(&page),
            [
                "START RequestId: r1 Version: $LATEST",
                "hello",
                "world",
                "END RequestId: r1",
                "REPORT RequestId: r1\tDuration: 1.50 ms\tBilled Duration: 2 ms\tMemory Size: 128 MB\t\
                 Max Memory Used: 3 MB\tStart: warm",
            ]
        );
        assert_eq!(page.next, 1);
        assert!(stream.read(&Query { after: 1, ..Query::default() }).events.is_empty());
    }

    #[test]
    fn an_invocations_facts_read_as_they_were_packed() {
        for (version, duration) in
            [(VersionRef::Latest, Duration::from_micros(1500)), (VersionRef::Number(7), Duration::MAX)]
        {
            let invocation = Invocation {
                request_id: "r1",
                version,
                start: "cold",
                duration,
                memory_mb: 10_240,
                memory_used_bytes: (3 << 20) + 1,
                output: b"out",
            };
            let facts = InvocationFacts::of(&invocation, 6);
            let read = InvocationFacts::unpack(&facts.pack());
            assert_eq!(
                read,
                InvocationFacts {
                    duration: Duration::from_nanos(facts.duration.as_nanos().min(u64::MAX as u128) as u64),
                    ..facts
                }
            );
            assert_eq!((read.id_len, read.invoked_len, read.start_len), (2, 6, 4));
            assert_eq!((read.version, read.memory_mb, read.memory_used_mb), (version, 10_240, 4));
        }
    }

    #[test]
    fn a_query_selects_by_qualifier_version_and_text() {
        let stream = Stream::default();
        invoke(&stream, "r1", "f", "apple\n");
        invoke(&stream, "r2", "f:prod", "banana\n");
        let by = |qualifier: &str| {
            let page = stream.read(&Query { qualifier: Some(qualifier.into()), ..Query::default() });
            page.events.iter().filter(|e| e.message.starts_with("START")).count()
        };
        assert_eq!((by("prod"), by("1"), by("$LATEST"), by("dev")), (1, 1, 1, 0));
        let page = stream.read(&Query { filter: Some("banana".into()), ..Query::default() });
        assert_eq!(page.events.len(), 4, "the invocation's own lines come with it: {page:?}");
        assert!(messages(&page)[0].contains("r2"));
    }

    #[test]
    fn a_stream_keeps_its_newest_within_its_bounds() {
        let stream = Stream::default();
        let n = MAX_ENTRIES + 5;
        for i in 0..n {
            stream.line(&format!("line {i}"), Instant::now());
        }
        let page = stream.read(&Query::default());
        assert!(page.events.len() <= MAX_ENTRIES && page.events.len() > MAX_ENTRIES - CHUNK_ENTRIES);
        assert_eq!(page.events.last().unwrap().message, format!("line {}", n - 1));
        let first: usize = page.events[0].message["line ".len()..].parse().unwrap();
        assert_eq!(first, n - page.events.len(), "the newest, in order");
        // A read after an entry, whichever chunk it is in, starts just past it.
        for back in [1, 3, CHUNK_ENTRIES + 2] {
            let after = page.next - back as u64;
            let rest = stream.read(&Query { after, ..Query::default() });
            assert_eq!(rest.events.len(), back);
            assert_eq!(rest.events[0].message, format!("line {}", n - back));
        }
        // Outputs larger than a chunk are kept whole, within the bytes' bound.
        let big = "x".repeat(MAX_BYTES / 3);
        for _ in 0..4 {
            invoke(&stream, "r", "f", &big);
        }
        let ring = stream.ring.lock();
        assert!(ring.bytes <= MAX_BYTES, "{}", ring.bytes);
        let counted: usize = ring.chunks.iter().map(|c| c.text.len()).sum();
        assert_eq!(counted, ring.bytes);
    }

    #[test]
    fn the_streams_of_a_server_hold_no_more_than_its_budget() {
        let budget = 1 << 20;
        let logs = RecentLogs::new(budget);
        let (idle, busy) = (logs.stage("A/s"), logs.function("busy"));
        let t0 = Instant::now();
        let at = |i: u64| t0 + Duration::from_micros(i);
        let line = "x".repeat(1000);
        // The idle stage's lines are the oldest: they go first.
        for i in 0..300 {
            idle.line(&line, at(i));
        }
        let n = 2000;
        for i in 0..n {
            busy.line(&line, at(1000 + i));
            assert!(logs.held() <= budget, "{} after {i}", logs.held());
        }
        assert!(idle.read(&Query::default()).events.is_empty());
        let page = busy.read(&Query::default());
        // The budget holds 11 chunks of 65 lines (and their records).
        let (chunk, per_chunk) = (CHUNK_BYTES + CHUNK_ENTRIES * std::mem::size_of::<Record>(), CHUNK_BYTES / 1001);
        let most = budget / chunk * per_chunk;
        assert!((most - 2 * per_chunk..=most).contains(&page.events.len()), "{} of {most}", page.events.len());
        assert_eq!(page.next, n, "the newest are kept");
        assert!(logs.held() > budget - 2 * chunk, "only what was over the budget went: {}", logs.held());
        // What the streams hold is what their chunks do.
        let counted: usize = [&idle, &busy].iter().map(|s| s.ring.lock()).map(|r| r.held).sum();
        assert_eq!(counted, logs.held());
        // Idle again, a stream takes a chunk within the budget.
        idle.line("again", at(n + 1000));
        assert_eq!(messages(&idle.read(&Query::default())), ["again"]);
        assert!(logs.held() <= budget);
    }

    #[tokio::test]
    async fn a_reader_waits_for_the_next_entry() {
        let stream = Arc::new(Stream::default());
        stream.line("first", Instant::now());
        let page = stream.read_or_wait(&Query::default(), Duration::from_secs(5)).await;
        assert_eq!(messages(&page), ["first"]);
        let waiting = {
            let stream = stream.clone();
            let query = Query { after: page.next, ..Query::default() };
            tokio::spawn(async move { stream.read_or_wait(&query, Duration::from_secs(30)).await })
        };
        // Whether the reader is parked yet or not, the line reaches it.
        tokio::task::yield_now().await;
        stream.line("second", Instant::now());
        let page = waiting.await.unwrap();
        assert_eq!(messages(&page), ["second"]);
        // Nothing arrives: an empty page when the wait is over.
        let query = Query { after: page.next, ..Query::default() };
        let empty = stream.read_or_wait(&query, Duration::from_millis(1)).await;
        assert_eq!((empty.events.len(), empty.next), (0, 2));
        assert_eq!(stream.waiting.load(Ordering::Relaxed), 0);
    }
}
