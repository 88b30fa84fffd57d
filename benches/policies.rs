//! What each stage policy adds to a request (criterion): `cargo bench --bench policies`.
//!
//! `Policies::admit` — the API key check, the key's throttle in its plan,
//! the stage's throttle and the key's quota — for a method with none of
//! them, then with each alone and all together, on the embedded store (its
//! quota journal in a temporary directory). The limits are far above what
//! the benchmark sends, so every call is admitted and the whole path of
//! each check is measured. Calls go 64 at a time, as a loaded server makes
//! them (criterion reports the time per call): the quota journal's writer
//! then writes many counts at once, as it does under load. A lone call's
//! quota, which waits for a write of its own, is measured apart. Next to
//! them, a cache hit's lookup and a miss's store. The per-policy cost is
//! the difference from `none`.

use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use wasmgate_host::policy::Policies;
use wasmgate_host::policy::catalog::{ApiStage, Catalog, Quota};
use wasmgate_host::policy::clock::{Clock, Period};
use wasmgate_host::policy::embedded::EmbeddedStore;
use wasmgate_host::policy::settings::{CacheStats, MethodPolicy, StageSettings};
use wasmgate_host::policy::store::Throttle;
use wasmgate_host::policy::store::{CachedResponse, Store};

const HUGE: Throttle = Throttle { rate: 1e12, burst: u32::MAX };

fn method(key: bool, stage_throttle: bool) -> MethodPolicy {
    let settings = StageSettings { throttle: stage_throttle.then_some(HUGE), ..StageSettings::default() };
    MethodPolicy::new("A", "s", "/m", "GET", key, &settings, &[], None, || Arc::new(CacheStats::default()))
}

fn policies(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");
    let dir = tempfile::tempdir().expect("temporary directory");
    let clock = Clock::default();
    let catalog = Catalog::open(Some(dir.path()), Vec::new(), Vec::new(), clock.clone()).expect("catalog");
    let stage = || vec![ApiStage::parse("A/s").expect("a stage")];
    let quota = Quota { limit: u64::MAX / 2, offset: 0, period: Period::Month };
    catalog.create_plan("Bare", String::new(), stage(), None, None).expect("plan");
    let (_, bare) = catalog.create_key("bare", None, vec!["Bare".into()], String::new(), true, false).expect("key");
    let store = Store::Embedded(EmbeddedStore::open(dir.path(), clock.today()).expect("store"));
    let policies = Policies::new(catalog, store, clock);
    let with_plan = |name: &str, throttle: Option<Throttle>, quota: Option<Quota>| {
        let mut s = stage();
        s[0].stage = name.to_string();
        policies.catalog().create_plan(name, String::new(), s, throttle, quota).expect("plan");
        let (_, value) =
            policies.catalog().create_key(name, None, vec![name.into()], String::new(), true, false).expect("key");
        value
    };
    let throttled = with_plan("t", Some(HUGE), None);
    let counted = with_plan("q", None, Some(quota));
    let all = with_plan("all", Some(HUGE), Some(quota));
    let on = |stage: &str, key: bool, stage_throttle: bool| {
        let settings = StageSettings { throttle: stage_throttle.then_some(HUGE), ..StageSettings::default() };
        MethodPolicy::new("A", stage, "/m", "GET", key, &settings, &[], None, || Arc::new(CacheStats::default()))
    };

    let mut group = c.benchmark_group("policies");
    let cases: [(&str, MethodPolicy, Option<&str>); 6] = [
        ("none", method(false, false), None),
        ("API key", method(true, false), Some(&bare)),
        ("API key + plan throttle", on("t", true, false), Some(&throttled)),
        ("API key + quota", on("q", true, false), Some(&counted)),
        ("stage throttle", method(false, true), None),
        ("API key + plan throttle + quota + stage throttle", on("all", true, true), Some(&all)),
    ];
    const AT_ONCE: usize = 64;
    group.throughput(criterion::Throughput::Elements(AT_ONCE as u64));
    for (name, policy, key) in &cases {
        assert!(rt.block_on(policies.admit(policy, *key)).is_ok(), "{name} admits");
        group.bench_function(*name, |b| {
            b.iter(|| {
                let calls = (0..AT_ONCE).map(|_| policies.admit(policy, *key));
                rt.block_on(futures_util::future::join_all(calls)).iter().all(Result::is_ok)
            })
        });
    }
    group.throughput(criterion::Throughput::Elements(1));
    let (_, quota_alone, key) = &cases[3];
    group.bench_function("API key + quota, a lone call", |b| {
        b.iter(|| rt.block_on(policies.admit(quota_alone, *key)).is_ok())
    });
    let response = CachedResponse {
        status: 200,
        headers: hyper::HeaderMap::from_iter([(
            hyper::header::CONTENT_TYPE,
            hyper::header::HeaderValue::from_static("application/json"),
        )]),
        body: bytes::Bytes::from_static(br#"[{"ID":1,"name":"Pen","price":2.5},{"ID":2,"name":"Pencil","price":1.5}]"#),
    };
    let ttl = Duration::from_secs(300);
    rt.block_on(policies.cache_put("A/s", "GET /items", response.clone(), ttl, 1 << 26));
    group.bench_function("cache hit (lookup)", |b| {
        b.iter(|| rt.block_on(policies.cache_get("A/s", "GET /items")).is_some())
    });
    group.bench_function("cache miss (store)", |b| {
        b.iter(|| rt.block_on(policies.cache_put("A/s", "GET /other", response.clone(), ttl, 1 << 26)))
    });
    group.finish();
}

criterion_group!(benches, policies);
criterion_main!(benches);
