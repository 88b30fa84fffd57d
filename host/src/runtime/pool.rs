//! A loaded version of a function and its pool of idle instances.
//!
//! Loading makes an `InstancePre` (shared by every version with the same code);
//! each call then takes an idle instance (hot) or instantiates a fresh one
//! (warm). After a clean return an instance is parked for reuse (unless the
//! function says `reuse = false`); one that trapped, timed out or hit its memory
//! limit is dropped. Idle ones are dropped after `idle_ttl` seconds, down to
//! the version's warm target.
//!
//! The warm target is `min_warm` for a version that something calls — an
//! alias, a deployed stage, `$LATEST` — and 0 for one that nothing targets
//! any more (provisioned concurrency is per alias or version, as on AWS), so
//! old versions do not hold instances forever ([`LoadedVersion::set_warm`]).
//! A version replaced or unloaded is retired: its idle instances are dropped
//! at once, and its calls still in flight are not parked afterwards.
//!
//! `max_concurrency` counts a function's calls, whichever of its versions
//! they run (one count shared by its loaded versions), so that a weighted
//! alias does not double it.
//!
//! The engine's instance pool is shared by every function. When it is full,
//! an instantiation takes the least recently used idle instance of any
//! version first ([`Loaded::evict_lru`]); only when every slot is busy with
//! a call does it fail, as Lambda's throttling does.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use wasmtime::component::ResourceTable;
use wasmtime::{Engine, Store, UpdateDeadline};
use wasmtime_wasi::WasiCtxBuilder;

use super::bindings::{Handler, HandlerPre};
use super::engine::GuestActivity;
use super::invoke::{HostState, Limits};
use super::logs::LogPipe;
use super::outbound::{AllowedHosts, Outbound};
use super::{Loaded, RuntimeError, ThrottleReason, VersionSpec};

/// Most idle instances kept per version beyond `min_warm`.
const MAX_IDLE: usize = 128;

/// One live instance: its store (with WASI, limits and log pipe) and exports.
pub(crate) struct Instance {
    pub(crate) store: Store<HostState>,
    pub(crate) handler: Handler,
    pub(crate) logs: LogPipe,
}

struct Idle {
    instance: Instance,
    since: Instant,
    /// It has served a call (a reuse is then a hot start); one made ahead
    /// of traffic has not.
    served: bool,
}

/// A version ready to serve: pre-instantiated component, config, idle pool.
pub struct LoadedVersion {
    spec: VersionSpec,
    pre: HandlerPre<HostState>,
    engine: Engine,
    /// Counts this version's guests in while they run (for the epoch ticker).
    pub(crate) activity: Arc<GuestActivity>,
    idle: Mutex<Vec<Idle>>,
    /// This version's calls in flight.
    busy: AtomicU32,
    /// The function's, shared by its versions (`max_concurrency`).
    slots: Arc<AtomicU32>,
    /// Idle instances kept however long they are unused: `min_warm` while
    /// something targets this version, else 0.
    warm: AtomicU32,
    /// Replaced or unloaded: nothing is parked any more.
    retired: AtomicBool,
    /// A background refill of the warm pool is running.
    refilling: AtomicBool,
    /// Every loaded version, to take an idle instance from when the
    /// engine's pool is full.
    loaded: Weak<Loaded>,
    /// Outbound HTTP, and where this version may send it.
    outbound: Arc<Outbound>,
    allowed: Arc<AllowedHosts>,
    /// This version's metric handles.
    metrics: crate::metrics::VersionMetrics,
    /// Its function's recent invocations.
    recent: Arc<crate::recent_logs::Stream>,
}

impl LoadedVersion {
    /// A version of `runtime`'s, with its shares of the runtime: the
    /// engine, the function's concurrency count, outbound HTTP, metrics.
    pub(crate) fn new(spec: VersionSpec, pre: HandlerPre<HostState>, runtime: &super::Runtime) -> Self {
        let slots = runtime.loaded.slots(&spec.function);
        let metrics = runtime.metrics.version(&spec.function, &spec.version.to_string());
        let recent = runtime.recent_logs.function(&spec.function);
        // Checked when the configuration was set; a list that no longer
        // parses allows nothing.
        let allowed = Arc::new(AllowedHosts::parse(&spec.config.allowed_outbound_hosts).unwrap_or_default());
        let (engine, activity, loaded, outbound) = (
            runtime.engine.clone(),
            runtime.activity.clone(),
            Arc::downgrade(&runtime.loaded),
            runtime.outbound.clone(),
        );
        LoadedVersion {
            warm: AtomicU32::new(0),
            spec,
            pre,
            engine,
            activity,
            idle: Mutex::new(Vec::new()),
            busy: AtomicU32::new(0),
            slots,
            retired: AtomicBool::new(false),
            refilling: AtomicBool::new(false),
            loaded,
            outbound,
            allowed,
            metrics,
            recent,
        }
    }

    /// Where this version's invocations are counted.
    pub fn metrics(&self) -> &crate::metrics::VersionMetrics {
        &self.metrics
    }

    /// Where this version's invocations are kept for `wasmgate logs`.
    pub fn recent_logs(&self) -> &crate::recent_logs::Stream {
        &self.recent
    }

    /// The number of idle instances kept ahead of traffic.
    pub fn warm_target(&self) -> u32 {
        self.warm.load(Ordering::Relaxed)
    }

    /// Sets the warm target: `min_warm` when `targeted`, else 0, in which
    /// case the instances made ahead of traffic that never served are
    /// dropped at once. Returns whether the pool is short of the target.
    pub(crate) fn set_warm(&self, targeted: bool) -> bool {
        let target = if targeted { self.spec.config.min_warm } else { 0 };
        self.warm.store(target, Ordering::Relaxed);
        if !targeted {
            self.idle.lock().retain(|i| i.served);
        }
        self.idle_count() < target as usize
    }

    /// Drops every idle instance and parks none from now on: the version
    /// was replaced or unloaded (its calls in flight finish).
    pub(crate) fn retire(&self) {
        self.retired.store(true, Ordering::Release);
        self.warm.store(0, Ordering::Relaxed);
        let dropped = std::mem::take(&mut *self.idle.lock());
        drop(dropped);
    }

    /// When this version's least recently used idle instance was last used,
    /// and whether it is beyond the warm target.
    pub(crate) fn oldest_idle(&self) -> Option<(Instant, bool)> {
        let idle = self.idle.lock();
        let oldest = idle.iter().map(|i| i.since).min()?;
        Some((oldest, idle.len() > self.warm_target() as usize))
    }

    /// Drops the least recently used idle instance, if there is one.
    pub(crate) fn evict_oldest(&self) -> bool {
        let mut idle = self.idle.lock();
        let Some(at) = idle.iter().enumerate().min_by_key(|(_, i)| i.since).map(|(at, _)| at) else {
            return false;
        };
        let evicted = idle.remove(at);
        drop(idle);
        drop(evicted);
        true
    }

    pub fn spec(&self) -> &VersionSpec {
        &self.spec
    }

    /// Idle instances ready for a hot start.
    pub fn idle_count(&self) -> usize {
        self.idle.lock().len()
    }

    /// Invocations running now.
    pub fn busy_count(&self) -> u32 {
        self.busy.load(Ordering::Relaxed)
    }

    /// Counts a call in, or refuses it when `max_concurrency` calls of the
    /// function (any of its versions) are running.
    pub(crate) fn enter(&self) -> Result<BusyGuard<'_>, RuntimeError> {
        let now = self.slots.fetch_add(1, Ordering::AcqRel) + 1;
        self.busy.fetch_add(1, Ordering::AcqRel);
        let guard = BusyGuard { version: &self.busy, function: &self.slots };
        if let Some(limit) = self.spec.config.max_concurrency
            && now > limit
        {
            return Err(RuntimeError::Throttled {
                function: self.spec.function.clone(),
                reason: ThrottleReason::ReservedFunctionConcurrentInvocationLimitExceeded,
            });
        }
        Ok(guard)
    }

    /// Makes a fresh instance. Its instantiation runs under the function's
    /// timeout and memory limit, like a call.
    pub(crate) async fn instantiate(&self) -> Result<Instance, RuntimeError> {
        // Instantiation runs the guest's start-up code: the ticker must tick.
        let _running = self.activity.enter();
        let config = &self.spec.config;
        let logs = LogPipe::default();
        let mut wasi = WasiCtxBuilder::new();
        wasi.stdout(logs.clone())
            .stderr(logs.clone())
            .env(super::FUNCTION_NAME_ENV, &self.spec.function)
            .env(super::FUNCTION_VERSION_ENV, self.spec.version.to_string())
            .env(super::FUNCTION_MEMORY_ENV, config.memory_mb.to_string())
            .env(super::LOG_GROUP_ENV, format!("/aws/lambda/{}", self.spec.function))
            .env(super::LOG_STREAM_ENV, log_stream_name(&self.spec.version.to_string()))
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false);
        for (k, v) in &config.env {
            wasi.env(k, v);
        }
        let state = HostState {
            wasi: wasi.build(),
            table: ResourceTable::new(),
            http: wasmtime_wasi_http::WasiHttpCtx::new(),
            outbound: self.outbound.hooks(&self.spec.function, self.allowed.clone(), logs.clone()),
            limits: Limits::new(config.memory_mb),
            deadline: Instant::now() + Duration::from_millis(config.timeout_ms),
            timed_out: false,
            stack_trace: Vec::new(),
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limits);
        // One ticker for the engine; each tick a running guest yields to the
        // scheduler, and once past its deadline it is interrupted.
        store.epoch_deadline_callback(|mut ctx| {
            let state = ctx.data_mut();
            if Instant::now() >= state.deadline {
                state.timed_out = true;
                Ok(UpdateDeadline::Interrupt)
            } else {
                Ok(UpdateDeadline::Yield(1))
            }
        });
        store.set_epoch_deadline(1);
        let deadline = store.data().deadline;
        let failed = |message: String| RuntimeError::Instantiate {
            function: self.spec.function.clone(),
            version: self.spec.version.to_string(),
            message,
        };
        loop {
            // Bounded wherever the start-up code waits, as a call is (`invoke`).
            let instantiated = super::invoke::until_deadline(self.pre.instantiate_async(&mut store), deadline).await;
            let handler = match instantiated {
                Some(Ok(handler)) => handler,
                // The engine's pool is full: take an idle instance of any
                // function (the least recently used) and try again; when
                // every instance is busy with a call, refuse as Lambda
                // does at its concurrency limit.
                Some(Err(e)) if e.downcast_ref::<wasmtime::PoolConcurrencyLimitError>().is_some() => {
                    if self.loaded.upgrade().is_some_and(|loaded| loaded.evict_lru()) {
                        continue;
                    }
                    tracing::warn!(function = %self.spec.function, error = %e, "no instance slot free: every instance is busy");
                    return Err(RuntimeError::Throttled {
                        function: self.spec.function.clone(),
                        reason: ThrottleReason::ConcurrentInvocationLimitExceeded,
                    });
                }
                Some(Err(e)) => return Err(failed(format!("{e:#}"))),
                None => {
                    return Err(failed(format!(
                        "start-up ran past the function's timeout of {} ms",
                        config.timeout_ms
                    )));
                }
            };
            return Ok(Instance { store, handler, logs });
        }
    }

    /// An idle instance, and whether it has served a call before.
    pub(crate) fn take_idle(&self) -> Option<(Instance, bool)> {
        self.idle.lock().pop().map(|i| (i.instance, i.served))
    }

    /// Parks an instance that returned cleanly at `now`, for the next hot start.
    pub(crate) fn park(&self, instance: Instance, now: Instant) {
        if self.retired.load(Ordering::Acquire) {
            return;
        }
        let mut idle = self.idle.lock();
        if idle.len() < MAX_IDLE.max(self.spec.config.min_warm as usize) {
            idle.push(Idle { instance, since: now, served: true });
        }
    }

    /// Starts one background task that tops the pool up to `min_warm`,
    /// unless one is running already (one task per shortfall, not per call).
    pub(crate) fn refill_in_background(self: &std::sync::Arc<Self>) {
        if self.idle_count() >= self.warm_target() as usize || self.refilling.swap(true, Ordering::AcqRel) {
            return;
        }
        let me = self.clone();
        tokio::spawn(async move {
            if let Err(e) = me.fill_to_min_warm().await {
                tracing::warn!(error = %e, "could not refill the warm pool");
            }
            me.refilling.store(false, Ordering::Release);
        });
    }

    /// Instantiates until the warm target's instances are idle.
    pub(crate) async fn fill_to_min_warm(&self) -> Result<(), RuntimeError> {
        while self.idle_count() < self.warm_target() as usize && !self.retired.load(Ordering::Acquire) {
            let instance = self.instantiate().await?;
            self.idle.lock().push(Idle { instance, since: Instant::now(), served: false });
        }
        Ok(())
    }

    /// Drops instances idle longer than `idle_ttl`, keeping `min_warm`.
    pub(crate) fn evict_idle(&self, now: Instant) -> usize {
        let ttl = Duration::from_secs(self.spec.config.idle_ttl);
        let keep = self.warm_target() as usize;
        let mut idle = self.idle.lock();
        let before = idle.len();
        // Newest last: keep the most recently used ones.
        idle.sort_by_key(|i| i.since);
        let mut expired = idle.iter().filter(|i| now.duration_since(i.since) >= ttl).count();
        expired = expired.min(before.saturating_sub(keep));
        idle.drain(..expired);
        before - idle.len()
    }
}

/// Counts a call out of its version and its function when it ends, however
/// it ends.
pub(crate) struct BusyGuard<'a> {
    version: &'a AtomicU32,
    function: &'a AtomicU32,
}

impl Drop for BusyGuard<'_> {
    fn drop(&mut self) {
        self.version.fetch_sub(1, Ordering::AcqRel);
        self.function.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A new instance's log stream name, as Lambda names an execution
/// environment's: `2026/12/07/[$LATEST]` and 32 hex digits.
fn log_stream_name(version: &str) -> String {
    let today = time::OffsetDateTime::now_utc().date();
    format!(
        "{:04}/{:02}/{:02}/[{version}]{}",
        today.year(),
        u8::from(today.month()),
        today.day(),
        uuid::Uuid::new_v4().simple()
    )
}
