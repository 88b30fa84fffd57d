//! The one interface behind which throttle buckets, quota counters and cached
//! responses live ([`PolicyStore`]), and the value types that cross it.
//!
//! Two implementations: [`super::embedded::EmbeddedStore`] (in-process; the
//! default, with quota counts durable in the data directory) and
//! [`super::redis::RedisStore`] (several gateway processes sharing one
//! Redis). [`Store`] holds whichever the server was started with, so the
//! request path calls it without boxing a future per request.
//!
//! Every name that crosses this interface is built from what all nodes
//! share — a plan's name and a key's usage id, an API, a stage, a resource
//! path and a method — never from an id one node made up.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use governor::DefaultDirectRateLimiter;
use hyper::header::{HeaderMap, HeaderName, HeaderValue};
use serde::{Deserialize, Serialize};

use super::clock::Period;
use super::embedded::EmbeddedStore;

/// A token bucket: `rate` requests per second refill it, `burst` is its size.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Throttle {
    pub rate: f64,
    pub burst: u32,
}

impl Throttle {
    pub fn check(&self) -> Result<(), String> {
        if !(self.rate.is_finite() && self.rate > 0.0) {
            return Err(format!("rate must be a number of requests per second above 0, not {}", self.rate));
        }
        if self.burst == 0 {
            return Err("burst must be at least 1".into());
        }
        Ok(())
    }
}

/// A throttle bucket as a policy names it (a stage's method, a key's plan):
/// its name in the store, its rate and burst, and — once a call has taken
/// from it on the embedded store — the limiter itself, so that later calls
/// take from it without looking the name up. The embedded store still keeps
/// one limiter per name and throttle: a catalog rebuilt or a stage deployed
/// again finds the same limiter (and its tokens) through the name, and a
/// changed rate or burst starts a new, full one, as before.
pub struct Bucket {
    pub name: String,
    pub throttle: Throttle,
    limiter: OnceLock<Arc<DefaultDirectRateLimiter>>,
}

impl Bucket {
    pub fn new(name: String, throttle: Throttle) -> Bucket {
        Bucket { name, throttle, limiter: OnceLock::new() }
    }

    pub(super) fn limiter(&self, store: &EmbeddedStore) -> &DefaultDirectRateLimiter {
        self.limiter.get_or_init(|| store.limiter(&self.name, self.throttle))
    }
}

impl std::fmt::Debug for Bucket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bucket").field("name", &self.name).field("throttle", &self.throttle).finish_non_exhaustive()
    }
}

/// What went wrong in a store.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The shared store cannot be reached (the gateway goes on, degraded).
    #[error("shared store unavailable: {0}")]
    Unavailable(String),
    /// The shared store's address is not one (the server refuses to start).
    #[error("{0}")]
    BadAddress(String),
    /// The embedded store could not write its quota journal.
    #[error("quota journal: {0}")]
    Journal(String),
}

/// A quota check's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuotaOutcome {
    /// Counted: this call is the `used`-th of the period.
    Counted { used: u64, remaining: u64 },
    /// The period's limit is reached: not counted.
    Exceeded,
}

/// One quota check: a counter, its limit this period, and today.
#[derive(Debug, Clone, Copy)]
pub struct QuotaCheck<'a> {
    /// `plan \0 usage_id`.
    pub counter: &'a str,
    /// The limit that applies this period (the plan's, less its offset in
    /// its first period).
    pub limit: u64,
    pub period: Period,
    /// Today's epoch day (UTC).
    pub today: i64,
}

/// A response as the cache keeps it (the request ids are added per request).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedResponse {
    pub status: u16,
    /// Kept as HTTP's own types: a hit copies them without parsing.
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl CachedResponse {
    /// Bytes it takes in a cache (its weight against the capacity).
    pub fn weight(&self) -> u64 {
        let headers: usize = self.headers.iter().map(|(k, v)| k.as_str().len() + v.len() + 4).sum();
        (self.body.len() + headers + 16) as u64
    }

    /// A compact binary form, for a shared store: status, header count,
    /// each header as length-prefixed name and value, then the body.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.weight() as usize);
        out.extend_from_slice(&self.status.to_be_bytes());
        out.extend_from_slice(&(self.headers.len() as u32).to_be_bytes());
        for (name, value) in &self.headers {
            out.extend_from_slice(&(name.as_str().len() as u32).to_be_bytes());
            out.extend_from_slice(name.as_str().as_bytes());
            out.extend_from_slice(&(value.len() as u32).to_be_bytes());
            out.extend_from_slice(value.as_bytes());
        }
        out.extend_from_slice(&self.body);
        out
    }

    /// The inverse of [`CachedResponse::encode`]; `None` for bytes it did not make.
    pub fn decode(bytes: &[u8]) -> Option<CachedResponse> {
        fn take<'a>(bytes: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
            if bytes.len() < n {
                return None;
            }
            let (head, rest) = bytes.split_at(n);
            *bytes = rest;
            Some(head)
        }
        fn len(bytes: &mut &[u8]) -> Option<usize> {
            Some(u32::from_be_bytes(take(bytes, 4)?.try_into().ok()?) as usize)
        }
        let mut rest = bytes;
        let status = u16::from_be_bytes(take(&mut rest, 2)?.try_into().ok()?);
        let count = len(&mut rest)?;
        let mut headers = HeaderMap::with_capacity(count.min(256));
        for _ in 0..count {
            let n = len(&mut rest)?;
            let name = HeaderName::from_bytes(take(&mut rest, n)?).ok()?;
            let n = len(&mut rest)?;
            headers.append(name, HeaderValue::from_bytes(take(&mut rest, n)?).ok()?);
        }
        Some(CachedResponse { status, headers, body: Bytes::copy_from_slice(rest) })
    }
}

/// Where throttle buckets, quota counters and cached responses live.
///
/// `bucket`, `counter` and `stage` are names every node derives alike.
pub trait PolicyStore: Send + Sync {
    /// Takes a token from `bucket` (created full on first use): `true`
    /// when one was there.
    fn take(&self, bucket: &Bucket) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Counts one call against a quota, unless its limit is reached.
    fn count(&self, check: QuotaCheck<'_>) -> impl Future<Output = Result<QuotaOutcome, StoreError>> + Send;

    /// Calls counted per day for `counter`, days `from..=to`.
    fn usage(&self, counter: &str, from: i64, to: i64) -> impl Future<Output = Result<Vec<u64>, StoreError>> + Send;

    /// A cached response of `stage` (`"api/stage"`), if fresh.
    fn cache_get(
        &self,
        stage: &str,
        key: &str,
    ) -> impl Future<Output = Result<Option<Arc<CachedResponse>>, StoreError>> + Send;

    /// Caches a response of `stage` for `ttl`; the stage's cache holds at
    /// most `capacity` bytes.
    fn cache_put(
        &self,
        stage: &str,
        key: &str,
        response: CachedResponse,
        ttl: Duration,
        capacity: u64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Drops every cached response of `stage`.
    fn cache_flush(&self, stage: &str) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// The store a server runs with (one per server: the variants' sizes do
/// not matter).
#[allow(clippy::large_enum_variant)]
pub enum Store {
    Embedded(super::embedded::EmbeddedStore),
    Redis(super::redis::RedisStore),
}

impl Store {
    /// `"embedded"` or `"redis"`.
    pub fn kind(&self) -> &'static str {
        match self {
            Store::Embedded(_) => "embedded",
            Store::Redis(_) => "redis",
        }
    }
}

/// Calls the store the server runs with. The embedded store answers at
/// once, through futures of a few words; a shared store's futures (a
/// kilobyte and more, for its round trips) are boxed, so that a request's
/// own future, which holds this one, does not carry them.
macro_rules! dispatch {
    ($self:ident, $s:ident => $call:expr) => {
        match $self {
            Store::Embedded($s) => $call.await,
            Store::Redis($s) => Box::pin($call).await,
        }
    };
}

impl PolicyStore for Store {
    async fn take(&self, bucket: &Bucket) -> Result<bool, StoreError> {
        dispatch!(self, s => s.take(bucket))
    }

    async fn count(&self, check: QuotaCheck<'_>) -> Result<QuotaOutcome, StoreError> {
        dispatch!(self, s => s.count(check))
    }

    async fn usage(&self, counter: &str, from: i64, to: i64) -> Result<Vec<u64>, StoreError> {
        dispatch!(self, s => s.usage(counter, from, to))
    }

    async fn cache_get(&self, stage: &str, key: &str) -> Result<Option<Arc<CachedResponse>>, StoreError> {
        dispatch!(self, s => s.cache_get(stage, key))
    }

    async fn cache_put(
        &self,
        stage: &str,
        key: &str,
        response: CachedResponse,
        ttl: Duration,
        capacity: u64,
    ) -> Result<(), StoreError> {
        dispatch!(self, s => s.cache_put(stage, key, response, ttl, capacity))
    }

    async fn cache_flush(&self, stage: &str) -> Result<(), StoreError> {
        dispatch!(self, s => s.cache_flush(stage))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cached_response_survives_its_encoding() {
        let mut headers = HeaderMap::new();
        headers.append("content-type", HeaderValue::from_static("application/json"));
        headers.append("x", HeaderValue::from_static(""));
        headers.append("x", HeaderValue::from_static("2"));
        let r = CachedResponse { status: 200, headers, body: Bytes::from_static(b"[1,2]") };
        assert_eq!(CachedResponse::decode(&r.encode()), Some(r));
        assert_eq!(CachedResponse::decode(b"\x00"), None);
    }
}
