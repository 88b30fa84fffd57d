//! The Redis store against a real `redis-server` (`cargo test -p
//! wasmgate-host --test redis_store`): each test starts its own server on a
//! unix socket in a temporary directory, and plays two gateway nodes as two
//! `RedisStore`s on it.
//!
//! `redis-server` must be installed (Debian's `redis-server` package;
//! `.ci/run` installs it). Nothing here waits a fixed time: a test waits
//! for what it needs (the server saying it is ready, an entry gone, the store
//! answering again), polling with a deadline.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use wasmgate_host::policy::clock::{Clock, Period};
use wasmgate_host::policy::redis::RedisStore;
use wasmgate_host::policy::store::{
    Bucket, CachedResponse, PolicyStore, QuotaCheck, QuotaOutcome, StoreError, Throttle,
};

/// How long a test waits for anything.
const DEADLINE: Duration = Duration::from_secs(15);

#[path = "support/redis_server.rs"]
mod redis_server;
use redis_server::RedisServer as Redis;

async fn node(redis: &Redis) -> Arc<RedisStore> {
    Arc::new(RedisStore::connect(&redis.url()).await.expect("connect"))
}

/// A throttle bucket as a policy names it.
fn bucket(name: &str, throttle: Throttle) -> Bucket {
    Bucket::new(name.to_string(), throttle)
}

/// Waits until `store` answers again after an outage.
async fn until_back(store: &RedisStore) {
    let deadline = Instant::now() + DEADLINE;
    let t = Throttle { rate: 1000.0, burst: 1000 };
    while store.take(&bucket("probe-bucket", t)).await.is_err() {
        assert!(Instant::now() < deadline, "the store did not answer again within {DEADLINE:?}");
        tokio::task::yield_now().await;
    }
}

fn today() -> i64 {
    Clock::default().today()
}

fn response(body: &'static str) -> CachedResponse {
    CachedResponse {
        status: 200,
        headers: hyper::HeaderMap::from_iter([(
            hyper::header::CONTENT_TYPE,
            hyper::header::HeaderValue::from_static("application/json"),
        )]),
        body: Bytes::from_static(body.as_bytes()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quota_counted_from_two_nodes_admits_exactly_its_limit() {
    let redis = Redis::start();
    let (a, b) = (node(&redis).await, node(&redis).await);
    let day = today();
    const LIMIT: u64 = 25;
    let tasks: Vec<_> = (0..80)
        .map(|i| {
            let store = if i % 2 == 0 { a.clone() } else { b.clone() };
            tokio::spawn(async move {
                let check = QuotaCheck { counter: "Basic\0key-1", limit: LIMIT, period: Period::Month, today: day };
                store.count(check).await
            })
        })
        .collect();
    let mut used = Vec::new();
    let mut exceeded = 0;
    for task in tasks {
        match task.await.expect("task").expect("count") {
            QuotaOutcome::Counted { used: u, remaining } => {
                assert_eq!(u + remaining, LIMIT);
                used.push(u);
            }
            QuotaOutcome::Exceeded => exceeded += 1,
        }
    }
    used.sort_unstable();
    assert_eq!(used, (1..=LIMIT).collect::<Vec<_>>(), "each admitted call has its own place in the count");
    assert_eq!(exceeded, 80 - LIMIT);
    assert!(!a.is_down() && !b.is_down());
    assert_eq!(a.usage("Basic\0key-1", day, day).await.expect("usage"), vec![LIMIT]);
    // Another counter is counted apart.
    let check = QuotaCheck { counter: "Basic\0key-2", limit: LIMIT, period: Period::Month, today: day };
    assert_eq!(b.count(check).await.expect("count"), QuotaOutcome::Counted { used: 1, remaining: LIMIT - 1 });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bucket_taken_from_two_nodes_admits_exactly_its_burst() {
    let redis = Redis::start();
    let (a, b) = (node(&redis).await, node(&redis).await);
    // One token per 10⁴ s: nothing refills during the test.
    let t = Throttle { rate: 0.0001, burst: 7 };
    let tasks: Vec<_> = (0..40)
        .map(|i| {
            let store = if i % 2 == 0 { a.clone() } else { b.clone() };
            tokio::spawn(async move { store.take(&bucket("stage\0ItemsAPI/prod\0GET /items", t)).await })
        })
        .collect();
    let mut admitted = 0;
    for task in tasks {
        if task.await.expect("task").expect("take") {
            admitted += 1;
        }
    }
    assert_eq!(admitted, 7);
    // Another bucket starts full.
    assert!(a.take(&bucket("stage\0ItemsAPI/prod", t)).await.expect("take"));
    // A fast bucket refills on Redis's clock: drained, it admits again.
    let fast = Throttle { rate: 1000.0, burst: 1 };
    assert!(a.take(&bucket("fast", fast)).await.expect("take"));
    let deadline = Instant::now() + DEADLINE;
    while !b.take(&bucket("fast", fast)).await.expect("take") {
        assert!(Instant::now() < deadline, "a bucket refilling 1000 per second stayed empty");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cache_is_shared_flushed_for_all_and_expires() {
    let redis = Redis::start();
    let (a, b) = (node(&redis).await, node(&redis).await);
    let hour = Duration::from_secs(3600);
    a.cache_put("ItemsAPI/prod", "GET /items", response("[1]"), hour, 1 << 20).await.expect("put");
    a.cache_put("ItemsAPI/prod", "GET /items/1", response("{}"), hour, 1 << 20).await.expect("put");
    a.cache_put("ItemsAPI/test", "GET /items", response("[2]"), hour, 1 << 20).await.expect("put");
    assert_eq!(b.cache_get("ItemsAPI/prod", "GET /items").await.expect("get"), Some(Arc::new(response("[1]"))));
    assert_eq!(b.cache_get("ItemsAPI/test", "GET /items").await.expect("get"), Some(Arc::new(response("[2]"))));
    assert_eq!(b.cache_get("ItemsAPI/prod", "GET /other").await.expect("get"), None);

    // A flush through one node empties the stage for both, and only it.
    b.cache_flush("ItemsAPI/prod").await.expect("flush");
    for store in [&a, &b] {
        assert_eq!(store.cache_get("ItemsAPI/prod", "GET /items").await.expect("get"), None);
        assert_eq!(store.cache_get("ItemsAPI/prod", "GET /items/1").await.expect("get"), None);
        assert_eq!(store.cache_get("ItemsAPI/test", "GET /items").await.expect("get"), Some(Arc::new(response("[2]"))));
    }
    // A flush walks the stage in batches: more keys than one batch.
    for i in 0..2500 {
        a.cache_put("Big/prod", &format!("GET /k/{i}"), response("x"), hour, 1 << 20).await.expect("put");
    }
    a.cache_flush("Big/prod").await.expect("flush");
    assert_eq!(b.cache_get("Big/prod", "GET /k/0").await.expect("get"), None);
    assert_eq!(b.cache_get("Big/prod", "GET /k/2499").await.expect("get"), None);

    // An entry expires with its time to live, by Redis.
    a.cache_put("ItemsAPI/prod", "short", response("[3]"), Duration::from_millis(50), 1 << 20).await.expect("put");
    let deadline = Instant::now() + DEADLINE;
    while b.cache_get("ItemsAPI/prod", "short").await.expect("get").is_some() {
        assert!(Instant::now() < deadline, "an entry with a 50 ms time to live was still there");
        tokio::task::yield_now().await;
    }
    assert_eq!(a.cache_get("ItemsAPI/test", "GET /items").await.expect("get"), Some(Arc::new(response("[2]"))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_fails_throttles_open_counts_quotas_per_node_and_replays_them() {
    let mut redis = Redis::start();
    let (a, b) = (node(&redis).await, node(&redis).await);
    let day = today();
    let check = QuotaCheck { counter: "Gold\0k", limit: 3, period: Period::Week, today: day };
    let t = Throttle { rate: 0.0001, burst: 1 };
    assert!(a.take(&bucket("bucket", t)).await.expect("take"));
    assert!(matches!(a.count(check).await.expect("count"), QuotaOutcome::Counted { used: 1, .. }));

    redis.kill();
    // Throttles and the cache fail open: the caller admits, or misses.
    assert!(matches!(a.take(&bucket("bucket", t)).await, Err(StoreError::Unavailable(_))));
    assert!(matches!(b.take(&bucket("bucket", t)).await, Err(StoreError::Unavailable(_))));
    assert!(a.is_down() && b.is_down());
    assert!(matches!(a.cache_get("s/p", "k").await, Err(StoreError::Unavailable(_))));
    assert!(matches!(
        a.cache_put("s/p", "k", response("x"), Duration::from_secs(1), 1).await,
        Err(StoreError::Unavailable(_))
    ));
    assert!(matches!(a.usage("Gold\0k", day, day).await, Err(StoreError::Unavailable(_))));
    // Quotas are counted by each node, from zero, up to the limit.
    for store in [&a, &b] {
        for used in 1..=3 {
            assert_eq!(store.count(check).await.expect("count"), QuotaOutcome::Counted { used, remaining: 3 - used });
        }
        assert_eq!(store.count(check).await.expect("count"), QuotaOutcome::Exceeded);
    }

    // Redis comes back (empty: it kept nothing on disk).
    redis.launch();
    until_back(&a).await;
    until_back(&b).await;
    // What both nodes counted during the outage is in Redis: in the day's
    // counter (the usage report) and the period's (the limit).
    assert_eq!(a.usage("Gold\0k", day, day).await.expect("usage"), vec![6]);
    assert_eq!(b.count(check).await.expect("count"), QuotaOutcome::Exceeded);
    let roomy = QuotaCheck { limit: 10, ..check };
    assert_eq!(a.count(roomy).await.expect("count"), QuotaOutcome::Counted { used: 7, remaining: 3 });
    // Throttles are shared again.
    assert!(a.take(&bucket("bucket", t)).await.expect("take"));
    assert!(!b.take(&bucket("bucket", t)).await.expect("take"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_unreachable_at_start_is_an_outage_not_an_error() {
    // Nothing listens there yet.
    let mut redis = Redis::not_started();
    let store = RedisStore::connect(&redis.url()).await.expect("an unreachable Redis is not an error");
    assert!(store.is_down());
    assert!(matches!(
        store.take(&bucket("b", Throttle { rate: 1.0, burst: 1 })).await,
        Err(StoreError::Unavailable(_))
    ));
    let check = QuotaCheck { counter: "P\0k", limit: 2, period: Period::Day, today: today() };
    assert!(matches!(store.count(check).await.expect("count"), QuotaOutcome::Counted { used: 1, .. }));
    assert!(matches!(store.count(check).await.expect("count"), QuotaOutcome::Counted { used: 2, .. }));
    assert_eq!(store.count(check).await.expect("count"), QuotaOutcome::Exceeded);

    redis.launch();
    until_back(&store).await;
    assert_eq!(store.usage("P\0k", today(), today()).await.expect("usage"), vec![2]);

    // A URL that does not parse is an error; a password never shows.
    assert!(RedisStore::connect("http://localhost:6379").await.is_err());
    assert!(RedisStore::connect("redis://").await.is_err());
    let masked = RedisStore::connect("redis://user:secret@127.0.0.1:1/0").await.expect("unreachable is no error");
    assert_eq!(masked.url(), "redis://user:***@127.0.0.1:1/0");
    assert!(!format!("{masked:?}").contains("secret"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_is_counted_per_day() {
    let redis = Redis::start();
    let (a, b) = (node(&redis).await, node(&redis).await);
    let day = today();
    let counts = [(day - 3, 3), (day - 2, 1), (day, 2)];
    for (d, n) in counts {
        for i in 0..n {
            let store = if i % 2 == 0 { &a } else { &b };
            let check = QuotaCheck { counter: "Basic\0k", limit: 100, period: Period::Day, today: d };
            assert!(matches!(store.count(check).await.expect("count"), QuotaOutcome::Counted { .. }));
        }
    }
    assert_eq!(b.usage("Basic\0k", day - 4, day).await.expect("usage"), vec![0, 3, 1, 0, 2]);
    assert_eq!(a.usage("Basic\0k", day, day).await.expect("usage"), vec![2]);
    assert_eq!(a.usage("Basic\0other", day - 1, day).await.expect("usage"), vec![0, 0]);
    assert_eq!(a.usage("Basic\0k", day, day - 1).await.expect("usage"), Vec::<u64>::new());
    // A week's quota counts every day of its week, and a new week starts
    // from zero.
    let (monday, _) = Period::Week.bounds(day - 14);
    let weekly = |today| QuotaCheck { counter: "Weekly\0k", limit: 3, period: Period::Week, today };
    assert!(matches!(a.count(weekly(monday)).await.expect("count"), QuotaOutcome::Counted { used: 1, .. }));
    assert!(matches!(b.count(weekly(monday)).await.expect("count"), QuotaOutcome::Counted { used: 2, .. }));
    assert_eq!(a.count(weekly(monday + 6)).await.expect("count"), QuotaOutcome::Counted { used: 3, remaining: 0 });
    assert_eq!(b.count(weekly(monday + 6)).await.expect("count"), QuotaOutcome::Exceeded);
    assert_eq!(b.count(weekly(monday + 7)).await.expect("count"), QuotaOutcome::Counted { used: 1, remaining: 2 });
    assert_eq!(a.usage("Weekly\0k", monday, monday + 7).await.expect("usage"), vec![2, 0, 0, 0, 0, 0, 1, 1]);
}

/// This crate's log events, as (level, message, the store's `url` field):
/// the process's subscriber, set by the first test that asks for it.
#[derive(Clone, Default)]
struct Capture(Arc<std::sync::Mutex<Vec<(tracing::Level, String, String)>>>);

fn capture() -> &'static Capture {
    static CAPTURE: std::sync::OnceLock<Capture> = std::sync::OnceLock::new();
    CAPTURE.get_or_init(|| {
        let capture = Capture::default();
        // A global subscriber: a store logs from its background task, on
        // whichever thread runs it.
        tracing::subscriber::set_global_default(capture.clone()).expect("the only subscriber");
        capture
    })
}

impl Capture {
    /// How many events of `level` for the store at `url` say `text`.
    fn lines(&self, url: &str, level: tracing::Level, text: &str) -> usize {
        let events = self.0.lock().unwrap_or_else(|e| e.into_inner());
        events.iter().filter(|(l, m, u)| *l == level && u == url && m.contains(text)).count()
    }
}

impl tracing::Subscriber for Capture {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        #[derive(Default)]
        struct Fields {
            message: String,
            url: String,
        }
        impl tracing::field::Visit for Fields {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                match field.name() {
                    "message" => self.message = format!("{value:?}"),
                    "url" => self.url = format!("{value:?}"),
                    _ => {}
                }
            }
        }
        if event.metadata().target().starts_with("wasmgate_host") {
            let mut fields = Fields::default();
            event.record(&mut fields);
            let line = (*event.metadata().level(), fields.message, fields.url);
            self.0.lock().unwrap_or_else(|e| e.into_inner()).push(line);
        }
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_and_its_end_are_logged_once_each() {
    use tracing::Level;
    let log = capture();
    let mut redis = Redis::not_started();
    let store = RedisStore::connect(&redis.url()).await.expect("connect");
    let url = store.url();
    let t = Throttle { rate: 1.0, burst: 1 };
    let check = QuotaCheck { counter: "P\0k", limit: 10, period: Period::Day, today: today() };
    for _ in 0..5 {
        assert!(store.take(&bucket("b", t)).await.is_err());
        assert!(matches!(store.count(check).await.expect("count"), QuotaOutcome::Counted { .. }));
    }
    assert_eq!(log.lines(url, Level::ERROR, "shared store unreachable"), 1);
    redis.launch();
    until_back(&store).await;
    assert_eq!(log.lines(url, Level::WARN, "5 quota counts made during the outage replayed"), 1);
    // Another outage is another pair of lines.
    redis.kill();
    assert!(store.take(&bucket("b", t)).await.is_err());
    assert!(store.take(&bucket("b", t)).await.is_err());
    assert_eq!(log.lines(url, Level::ERROR, "shared store unreachable"), 2);
    redis.launch();
    until_back(&store).await;
    assert_eq!(log.lines(url, Level::WARN, "shared store reachable again"), 2);
    assert_eq!(log.lines(url, Level::WARN, "0 quota counts made during the outage replayed"), 1);
}
