//! Stage policies: API keys, usage plans (throttle + quota), stage and method
//! throttling, the response cache and CORS.
//!
//! Layout: [`catalog`] (usage plans and API keys: rules, storage, the
//! snapshot requests read), [`settings`] (a stage's settings and what one
//! method applies), [`clock`] (UTC days and quota periods), [`store`] (the one
//! interface throttle buckets, quota counters and cached responses sit
//! behind), [`embedded`] and [`redis`] (its two homes).
//!
//! [`Policies::admit`] runs for every routed request, in API Gateway's order
//! (`../AWS-BEHAVIOUR.md` §0): the API key (missing, unknown, disabled, or not
//! in a plan of this stage → `INVALID_API_KEY`), the key's throttle in its
//! plan (a method's own, else the plan's), the stage's throttle for the
//! method, then the key's quota. A refused call stops at the first refusal:
//! it never reaches the function, and it is counted against nothing after
//! that point (a throttled call uses no quota). The gateway consults the
//! cache after request validation, so a cache hit has passed — and been
//! counted by — the key, the throttles and the quota, as on AWS, where a
//! cached response is still a call of the key's plan.
//!
//! A store that fails (a shared store out of reach, a journal that cannot be
//! written) never stops the gateway: throttles and the cache fail open, and
//! the quota goes on being counted by this node alone (see [`redis`]). The
//! first failure is logged, and the recovery.

pub mod catalog;
pub mod clock;
pub mod embedded;
pub mod redis;
pub mod settings;
pub mod store;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use serde_json::{Value, json};

use catalog::{Catalog, Grant, KeyRefusal};
use clock::Clock;
use settings::CacheStats;
use store::{Bucket, CachedResponse, PolicyStore, QuotaCheck, QuotaOutcome, Store, StoreError};

/// Why a call is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// 403 `INVALID_API_KEY`.
    InvalidApiKey(KeyRefusal),
    /// 429 `THROTTLED`.
    Throttled,
    /// 429 `QUOTA_EXCEEDED`.
    QuotaExceeded,
}

/// The policies of a server: its catalog, its store and its clock.
pub struct Policies {
    catalog: Catalog,
    store: Store,
    clock: Clock,
    cache_stats: Mutex<HashMap<String, Arc<CacheStats>>>,
    /// Set while the store fails (logged when it starts and when it ends).
    failing: AtomicBool,
}

/// A usage report, shaped like API Gateway's GetUsage.
pub type UsageReport = Value;

impl Policies {
    pub fn new(catalog: Catalog, store: Store, clock: Clock) -> Policies {
        Policies { catalog, store, clock, cache_stats: Mutex::new(HashMap::new()), failing: AtomicBool::new(false) }
    }

    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// The hit and miss counters of a stage's cache (`"api/stage"`).
    pub fn cache_stats(&self, stage: &str) -> Arc<CacheStats> {
        self.cache_stats.lock().entry(stage.to_string()).or_default().clone()
    }

    /// Each stage's cache hits and misses: (`api/stage`, hits, misses),
    /// by stage.
    pub fn cache_counts(&self) -> Vec<(String, u64, u64)> {
        let stats = self.cache_stats.lock();
        let mut counts: Vec<_> = stats
            .iter()
            .map(|(stage, s)| (stage.clone(), s.hits.load(Ordering::Relaxed), s.misses.load(Ordering::Relaxed)))
            .collect();
        counts.sort();
        counts
    }

    /// Every stage's cache counters.
    pub fn cache_report(&self) -> Value {
        let counts = self.cache_counts().into_iter();
        Value::Array(
            counts.map(|(stage, hits, misses)| json!({ "stage": stage, "hits": hits, "misses": misses })).collect(),
        )
    }

    /// Notes a store's answer: a failure is logged once, until it recovers.
    fn observe<T>(&self, result: Result<T, StoreError>, fallback: T) -> T {
        match result {
            Ok(v) => {
                if self.failing.load(Ordering::Relaxed) && self.failing.swap(false, Ordering::Relaxed) {
                    tracing::warn!(store = self.store.kind(), "policy store recovered");
                }
                v
            }
            // A shared store logs its own outages and recoveries, once each.
            Err(StoreError::Unavailable(_)) => fallback,
            Err(e) => {
                if !self.failing.swap(true, Ordering::Relaxed) {
                    tracing::error!(store = self.store.kind(), error = %e, "policy store failing: throttles and the cache fail open, quotas count in memory only");
                }
                fallback
            }
        }
    }

    async fn take(&self, bucket: &Bucket) -> bool {
        let taken = self.store.take(bucket).await;
        self.observe(taken, true)
    }

    /// Runs the key, throttle and quota checks of one call of `policy`'s
    /// method with the request's `x-api-key`. Returns the key's grant when
    /// the method requires a key.
    pub async fn admit(
        &self,
        policy: &settings::MethodPolicy,
        api_key: Option<&str>,
    ) -> Result<Option<Arc<Grant>>, Refusal> {
        let grant = if policy.api_key_required {
            let grant =
                self.catalog.snapshot().authorize(api_key, &policy.stage).map_err(Refusal::InvalidApiKey)?.clone();
            let bucket = grant.method_throttle.get(&policy.method).or(grant.bucket.as_ref());
            if let Some(bucket) = bucket
                && !self.take(bucket).await
            {
                return Err(Refusal::Throttled);
            }
            Some(grant)
        } else {
            None
        };
        if let Some(bucket) = &policy.throttle
            && !self.take(bucket).await
        {
            return Err(Refusal::Throttled);
        }
        if let Some(grant) = &grant
            && let Some(quota) = grant.plan.quota
        {
            let today = self.clock.today();
            let (start, end) = quota.period.bounds(today);
            let first_period = (start..end).contains(&grant.plan.created_day);
            let limit = if first_period { quota.limit - quota.offset } else { quota.limit };
            let check = QuotaCheck { counter: &grant.counter, limit, period: quota.period, today };
            let counted = self.store.count(check).await;
            let outcome = self.observe(counted, QuotaOutcome::Counted { used: 0, remaining: limit });
            if outcome == QuotaOutcome::Exceeded {
                return Err(Refusal::QuotaExceeded);
            }
        }
        Ok(grant)
    }

    /// A cached response, if fresh (`None` too when the store fails).
    pub async fn cache_get(&self, stage: &str, key: &str) -> Option<Arc<CachedResponse>> {
        let got = self.store.cache_get(stage, key).await;
        self.observe(got, None)
    }

    pub async fn cache_put(&self, stage: &str, key: &str, response: CachedResponse, ttl: Duration, capacity: u64) {
        let put = self.store.cache_put(stage, key, response, ttl, capacity).await;
        self.observe(put, ())
    }

    /// Writes every quota count made so far to the embedded store's
    /// journal (blocking the thread). A server calls it as it stops.
    pub fn flush_journal(&self) -> Result<(), StoreError> {
        match &self.store {
            Store::Embedded(store) => store.flush(),
            Store::Redis(_) => Ok(()),
        }
    }

    /// Flushes a stage's cache (`"api/stage"`).
    pub async fn flush(&self, stage: &str) -> Result<(), StoreError> {
        self.store.cache_flush(stage).await
    }

    /// A plan's usage per key per day, `from..=to` (epoch days), as
    /// GetUsage: `{usagePlanId, startDate, endDate, items: {keyId: [[used,
    /// remaining], …]}}`, `remaining` being what the quota had left at the
    /// end of that day (`null` without a quota), plus `keyNames` (key id →
    /// name). `key` limits it to one key (by name).
    pub async fn usage(&self, plan: &str, key: Option<&str>, from: i64, to: i64) -> Result<UsageReport, UsageError> {
        if to < from || to - from > 90 {
            return Err(UsageError::Invalid(
                "the report covers 1 to 91 days: the end date is on or after the start date".into(),
            ));
        }
        let snapshot = self.catalog.snapshot();
        let plan = snapshot
            .plans
            .get(plan)
            .ok_or_else(|| UsageError::NotFound(catalog::no_plan(plan, snapshot.plans.keys())))?;
        let keys: Vec<_> = snapshot
            .keys
            .values()
            .filter(|k| k.plans.iter().any(|p| p == &plan.name))
            .filter(|k| key.is_none_or(|name| name == k.name))
            .collect();
        if let Some(name) = key
            && keys.is_empty()
        {
            return Err(UsageError::NotFound(format!("API key {name:?} is not in usage plan {:?}", plan.name)));
        }
        let mut items = serde_json::Map::new();
        let mut names = serde_json::Map::new();
        for k in keys {
            let counter = format!("{}\0{}", plan.name, k.usage_id);
            // From the start of the first day's period, for what remained.
            let first = plan.quota.map_or(from, |q| q.period.bounds(from).0);
            let days = self.store.usage(&counter, first, to).await.map_err(UsageError::Store)?;
            let mut rows = Vec::new();
            let mut used_in_period = 0;
            let mut period_end = i64::MIN;
            for (i, used) in days.iter().enumerate() {
                let day = first + i as i64;
                if let Some(q) = plan.quota {
                    let (start, end) = q.period.bounds(day);
                    if day >= period_end {
                        used_in_period = 0;
                        period_end = end;
                    }
                    used_in_period += used;
                    if day >= from {
                        let limit = if (start..end).contains(&plan.created_day) { q.limit - q.offset } else { q.limit };
                        rows.push(json!([used, limit.saturating_sub(used_in_period)]));
                    }
                } else if day >= from {
                    rows.push(json!([used, Value::Null]));
                }
            }
            items.insert(k.id.clone(), Value::Array(rows));
            names.insert(k.id.clone(), Value::String(k.name.clone()));
        }
        Ok(json!({
            "usagePlanId": plan.name,
            "startDate": clock::format_day(from),
            "endDate": clock::format_day(to),
            "items": items,
            "keyNames": names,
        }))
    }
}

/// Why a usage report cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum UsageError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(StoreError),
}
