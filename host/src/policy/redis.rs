//! The shared store: Redis, for several gateway nodes.

use std::time::Duration;

use super::catalog::Throttle;
use super::store::{CachedResponse, PolicyStore, QuotaCheck, QuotaOutcome, StoreError};

/// Throttle buckets, quota counters and cached responses in one Redis server.
pub struct RedisStore {}

impl PolicyStore for RedisStore {
    async fn take(&self, _bucket: &str, _throttle: Throttle) -> Result<bool, StoreError> {
        Err(StoreError::Unavailable("not connected".into()))
    }
    async fn count(&self, _check: QuotaCheck<'_>) -> Result<QuotaOutcome, StoreError> {
        Err(StoreError::Unavailable("not connected".into()))
    }
    async fn usage(&self, _counter: &str, _from: i64, _to: i64) -> Result<Vec<u64>, StoreError> {
        Err(StoreError::Unavailable("not connected".into()))
    }
    async fn cache_get(&self, _stage: &str, _key: &str) -> Result<Option<CachedResponse>, StoreError> {
        Err(StoreError::Unavailable("not connected".into()))
    }
    async fn cache_put(&self, _: &str, _: &str, _: CachedResponse, _: Duration, _: u64) -> Result<(), StoreError> {
        Err(StoreError::Unavailable("not connected".into()))
    }
    async fn cache_flush(&self, _stage: &str) -> Result<(), StoreError> {
        Err(StoreError::Unavailable("not connected".into()))
    }
}
