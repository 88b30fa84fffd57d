//! A loaded version of a function and its pool of idle instances.
//!
//! Loading makes an `InstancePre` (shared by every version with the same code);
//! each call then takes an idle instance (hot) or instantiates a fresh one
//! (warm). After a clean return an instance is parked for reuse (unless the
//! function says `reuse = false`); one that trapped, timed out or hit its memory
//! limit is dropped. `min_warm` instances are made ahead of traffic, and idle
//! ones are dropped after `idle_ttl` seconds (down to `min_warm`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use wasmtime::component::ResourceTable;
use wasmtime::{Engine, Store, UpdateDeadline};
use wasmtime_wasi::WasiCtxBuilder;

use super::bindings::{Handler, HandlerPre};
use super::engine::GuestActivity;
use super::invoke::{HostState, Limits};
use super::logs::LogPipe;
use super::{RuntimeError, VersionSpec};

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
}

/// A version ready to serve: pre-instantiated component, config, idle pool.
pub struct LoadedVersion {
    spec: VersionSpec,
    pre: HandlerPre<HostState>,
    engine: Engine,
    /// Counts this version's guests in while they run (for the epoch ticker).
    pub(crate) activity: Arc<GuestActivity>,
    idle: Mutex<Vec<Idle>>,
    busy: AtomicU32,
    /// A background refill of the warm pool is running.
    refilling: std::sync::atomic::AtomicBool,
}

impl LoadedVersion {
    pub(crate) fn new(
        spec: VersionSpec,
        pre: HandlerPre<HostState>,
        engine: Engine,
        activity: Arc<GuestActivity>,
    ) -> Self {
        LoadedVersion {
            spec,
            pre,
            engine,
            activity,
            idle: Mutex::new(Vec::new()),
            busy: AtomicU32::new(0),
            refilling: std::sync::atomic::AtomicBool::new(false),
        }
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

    /// Counts a call in, or refuses it when `max_concurrency` calls are running.
    pub(crate) fn enter(&self) -> Result<BusyGuard<'_>, RuntimeError> {
        let now = self.busy.fetch_add(1, Ordering::AcqRel) + 1;
        let guard = BusyGuard(&self.busy);
        if let Some(limit) = self.spec.config.max_concurrency
            && now > limit
        {
            return Err(RuntimeError::Throttled { function: self.spec.function.clone(), limit });
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
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false);
        for (k, v) in &config.env {
            wasi.env(k, v);
        }
        let state = HostState {
            wasi: wasi.build(),
            table: ResourceTable::new(),
            limits: Limits::new(config.memory_mb),
            deadline: Instant::now() + Duration::from_millis(config.timeout_ms),
            timed_out: false,
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
        let handler = self.pre.instantiate_async(&mut store).await.map_err(|e| RuntimeError::Instantiate {
            function: self.spec.function.clone(),
            version: self.spec.version.to_string(),
            message: format!("{e:#}"),
        })?;
        Ok(Instance { store, handler, logs })
    }

    pub(crate) fn take_idle(&self) -> Option<Instance> {
        self.idle.lock().pop().map(|i| i.instance)
    }

    /// Parks an instance that returned cleanly at `now`, for the next hot start.
    pub(crate) fn park(&self, instance: Instance, now: Instant) {
        let mut idle = self.idle.lock();
        if idle.len() < MAX_IDLE.max(self.spec.config.min_warm as usize) {
            idle.push(Idle { instance, since: now });
        }
    }

    /// Starts one background task that tops the pool up to `min_warm`,
    /// unless one is running already (one task per shortfall, not per call).
    pub(crate) fn refill_in_background(self: &std::sync::Arc<Self>) {
        if self.idle_count() >= self.spec.config.min_warm as usize || self.refilling.swap(true, Ordering::AcqRel) {
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

    /// Instantiates until `min_warm` instances are idle.
    pub(crate) async fn fill_to_min_warm(&self) -> Result<(), RuntimeError> {
        let want = self.spec.config.min_warm as usize;
        while self.idle_count() < want {
            let instance = self.instantiate().await?;
            self.idle.lock().push(Idle { instance, since: Instant::now() });
        }
        Ok(())
    }

    /// Drops instances idle longer than `idle_ttl`, keeping `min_warm`.
    pub(crate) fn evict_idle(&self, now: Instant) -> usize {
        let ttl = Duration::from_secs(self.spec.config.idle_ttl);
        let keep = self.spec.config.min_warm as usize;
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

/// Decrements the busy count when a call ends, however it ends.
pub(crate) struct BusyGuard<'a>(&'a AtomicU32);

impl Drop for BusyGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}
