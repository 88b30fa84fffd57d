//! The function runtime: one wasmtime engine, compiled components, loaded
//! versions with their pools of instances, and invocation under limits.
//!
//! A function version goes through three states, and every invocation reports
//! which one it found:
//!
//! - **cold**: the version is not loaded; its component is loaded from the
//!   cached artifact (or compiled, if there is none) and pre-instantiated;
//! - **warm**: the version is loaded (its `InstancePre` is ready); a fresh
//!   instance is made for the call;
//! - **hot**: an idle instance of the version is reused (its globals persist,
//!   like a warm Lambda execution environment).
//!
//! Compilation happens when code is uploaded, never on the request path.
//! Module layout: [`engine`] (engine, compile, artifact cache), [`pool`]
//! (loaded versions and their idle instances), [`invoke`] (one call under
//! timeout, memory limit and log capture), [`logs`] (log capture), [`outbound`]
//! (outbound HTTP, `wasi:http`, under each function's allow-list), [`bench`]
//! (the cold/warm/hot measurements behind `wasmgate bench`).

pub mod bench;
pub mod engine;
pub mod invoke;
pub mod logs;
pub mod outbound;
pub mod pool;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::registry::VersionRef;

use parking_lot::RwLock;
use serde::{Deserialize, Serialize};
use wasmtime::Engine;
use wasmtime::component::{Component, Linker};

pub use engine::EngineOptions;
pub use invoke::{FailureKind, FunctionError, InvokeOutcome, InvokeRequest, StartKind};
pub use outbound::{AllowedHosts, OutboundOptions};
pub use pool::LoadedVersion;

/// Host bindings of `wit/handler.wit`.
pub(crate) mod bindings {
    wasmtime::component::bindgen!({
        path: "wit",
        world: "handler",
        exports: { default: async },
        // The context passed on every call borrows its strings (no copies per call).
        ownership: Borrowing { duplicate_if_necessary: true },
    });
}
use bindings::HandlerPre;

/// Errors of the runtime layer.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("invalid function code: {0}")]
    InvalidCode(String),
    #[error("engine: {0}")]
    Engine(String),
    #[error("i/o: {0}")]
    Io(String),
    #[error("could not instantiate {function}:{version}: {message}")]
    Instantiate { function: String, version: String, message: String },
    #[error("Rate Exceeded.")]
    Throttled { function: String, reason: ThrottleReason },
    #[error("code {0} is not in the code store")]
    MissingCode(String),
    /// The code's memory starts larger than the function's `memory_mb`.
    #[error(
        "memory_mb {memory_mb} is too small for {function}'s code: its memory starts at {pages} pages of 64 KiB, \
         so it needs memory_mb {needs_mb} or more"
    )]
    MemoryTooSmall { function: String, memory_mb: u32, pages: u64, needs_mb: u64 },
    /// Lambda's limit on a synchronous invocation's event.
    #[error("Request must be smaller than {} bytes for the InvokeFunction operation", invoke::MAX_EVENT_BYTES)]
    EventTooLarge { size: usize },
}

/// Why a call was throttled, in Lambda's words (the `Reason` of its
/// `TooManyRequestsException`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThrottleReason {
    /// The function's `max_concurrency` calls are running.
    ReservedFunctionConcurrentInvocationLimitExceeded,
    /// Every instance the server can hold (`max_instances`) is busy.
    ConcurrentInvocationLimitExceeded,
}

impl ThrottleReason {
    pub fn as_str(self) -> &'static str {
        match self {
            ThrottleReason::ReservedFunctionConcurrentInvocationLimitExceeded => {
                "ReservedFunctionConcurrentInvocationLimitExceeded"
            }
            ThrottleReason::ConcurrentInvocationLimitExceeded => "ConcurrentInvocationLimitExceeded",
        }
    }
}

/// Refuses a version whose `memory_mb` is below what its code's memory
/// starts at (it could never be instantiated).
fn check_memory(spec: &VersionSpec, pre: &HandlerPre<invoke::HostState>) -> Result<(), RuntimeError> {
    let pages =
        pre.instance_pre().component().resources_required().and_then(|r| r.max_initial_memory_size).unwrap_or(0);
    let needs_mb = (pages * 65536).div_ceil(1 << 20);
    if needs_mb > u64::from(spec.config.memory_mb) {
        return Err(RuntimeError::MemoryTooSmall {
            function: spec.function.clone(),
            memory_mb: spec.config.memory_mb,
            pages,
            needs_mb,
        });
    }
    Ok(())
}

/// The environment variables the runtime sets for every instance, as Lambda
/// does (`pool::LoadedVersion::instantiate`): the function's name, the
/// version that runs and its memory size in MiB.
pub const FUNCTION_NAME_ENV: &str = "AWS_LAMBDA_FUNCTION_NAME";
pub const FUNCTION_VERSION_ENV: &str = "AWS_LAMBDA_FUNCTION_VERSION";
pub const FUNCTION_MEMORY_ENV: &str = "AWS_LAMBDA_FUNCTION_MEMORY_SIZE";
/// Lambda's log group (`/aws/lambda/NAME`) and the instance's log stream
/// (`YYYY/MM/DD/[VERSION]` and 32 hex digits, one per instance, as one per
/// execution environment on Lambda).
pub const LOG_GROUP_ENV: &str = "AWS_LAMBDA_LOG_GROUP_NAME";
pub const LOG_STREAM_ENV: &str = "AWS_LAMBDA_LOG_STREAM_NAME";

/// Those variables: a function's `env` may not name them.
pub const RESERVED_ENV: [&str; 5] =
    [FUNCTION_NAME_ENV, FUNCTION_VERSION_ENV, FUNCTION_MEMORY_ENV, LOG_GROUP_ENV, LOG_STREAM_ENV];

/// The per-function settings the runtime enforces (part of `$LATEST`, copied
/// into each published version).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FunctionConfig {
    /// Memory limit of one instance, in MiB.
    pub memory_mb: u32,
    /// Longest an invocation may run, in milliseconds.
    pub timeout_ms: u64,
    /// Environment variables the guest sees.
    pub env: BTreeMap<String, String>,
    /// Instances kept instantiated ahead of traffic (provisioned concurrency).
    pub min_warm: u32,
    /// Most invocations running at once; beyond it calls are throttled
    /// (reserved concurrency). `None`: no limit of its own.
    pub max_concurrency: Option<u32>,
    /// Seconds an idle instance is kept before it is dropped (down to `min_warm`).
    pub idle_ttl: u64,
    /// Reuse instances between calls (hot starts). `false`: a fresh instance
    /// for every call, for strict isolation.
    pub reuse: bool,
    /// Where the function may send outbound HTTP requests, in Spin's
    /// spelling (`https://api.example.com`, `http://127.0.0.1:*`); empty:
    /// nowhere ([`outbound::AllowedHosts`]).
    pub allowed_outbound_hosts: Vec<String>,
}

impl Default for FunctionConfig {
    fn default() -> Self {
        FunctionConfig {
            memory_mb: 128,
            timeout_ms: 3000,
            env: BTreeMap::new(),
            min_warm: 0,
            max_concurrency: None,
            idle_ttl: 300,
            reuse: true,
            allowed_outbound_hosts: Vec::new(),
        }
    }
}

impl FunctionConfig {
    /// Checks the values against the runtime's limits.
    pub fn validate(&self, max_memory_mb: u32) -> Result<(), ConfigProblem> {
        let problem = |field: &'static str, message: String| Err(ConfigProblem { field, message });
        if self.memory_mb == 0 || self.memory_mb > max_memory_mb {
            return problem(
                "memory_mb",
                format!("memory_mb must be between 1 and {max_memory_mb}, not {}", self.memory_mb),
            );
        }
        if self.timeout_ms == 0 || self.timeout_ms > 900_000 {
            return problem("timeout_ms", format!("timeout_ms must be between 1 and 900000, not {}", self.timeout_ms));
        }
        if self.env.keys().any(|k| k.is_empty() || k.contains('=')) {
            return problem("env", "env names must be non-empty and must not contain '='".into());
        }
        let reserved: Vec<&str> = self.env.keys().map(String::as_str).filter(|k| RESERVED_ENV.contains(k)).collect();
        if !reserved.is_empty() {
            return problem(
                "env",
                format!("env: reserved keys that are set by wasmgate and cannot be modified: {}", reserved.join(", ")),
            );
        }
        if self.min_warm > 1000 {
            return problem("min_warm", format!("min_warm must be at most 1000, not {}", self.min_warm));
        }
        if let Err(message) = AllowedHosts::parse(&self.allowed_outbound_hosts) {
            return problem("allowed_outbound_hosts", message);
        }
        Ok(())
    }
}

/// A configuration value out of its range: which setting, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ConfigProblem {
    pub field: &'static str,
    pub message: String,
}

/// Everything needed to run one version of a function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionSpec {
    pub function: String,
    /// `$LATEST` or a version number.
    pub version: VersionRef,
    pub code_sha256: String,
    pub config: FunctionConfig,
}

/// Where the runtime keeps its files.
pub struct RuntimeOptions<'a> {
    pub artifacts_dir: &'a Path,
    pub engine: EngineOptions,
    pub outbound: OutboundOptions,
    /// Where invocations are counted (each loaded version holds its handles).
    pub metrics: Arc<crate::metrics::Metrics>,
    /// What the recent logs of the functions and stages hold together.
    pub recent_logs_bytes: usize,
}

/// The runtime: engine, linker, artifact cache and loaded versions.
pub struct Runtime {
    engine: Engine,
    linker: Linker<invoke::HostState>,
    artifacts: engine::ArtifactCache,
    max_memory_mb: u32,
    max_instances: u32,
    /// Pre-instantiated components by code hash, shared by every version with
    /// that code.
    components: RwLock<HashMap<String, HandlerPre<invoke::HostState>>>,
    /// The loaded versions.
    loaded: Arc<Loaded>,
    /// Guests running, for the ticker (which sleeps while none is).
    activity: Arc<engine::GuestActivity>,
    /// Outbound HTTP: the pooled client and each function's slots.
    outbound: Arc<outbound::Outbound>,
    metrics: Arc<crate::metrics::Metrics>,
    /// Each function's recent invocations (each loaded version holds its
    /// function's stream).
    recent_logs: Arc<crate::recent_logs::RecentLogs>,
    _ticker: engine::EpochTicker,
}

/// The loaded versions by function, then version, and each function's
/// calls in flight. Each loaded version holds it weakly: an instantiation
/// that finds the engine's pool full takes an idle instance from here.
#[derive(Default)]
pub(crate) struct Loaded {
    versions: RwLock<HashMap<String, HashMap<VersionRef, Arc<LoadedVersion>>>>,
    slots: parking_lot::Mutex<HashMap<String, Arc<std::sync::atomic::AtomicU32>>>,
}

impl Loaded {
    fn all(&self) -> Vec<Arc<LoadedVersion>> {
        self.versions.read().values().flat_map(|v| v.values().cloned()).collect()
    }

    /// Drops the least recently used idle instance of any loaded version —
    /// one beyond its version's warm target if there is such, else any —
    /// to free a slot of the engine's pool. `false`: none is idle.
    pub(crate) fn evict_lru(&self) -> bool {
        loop {
            // Beyond the warm target sorts first (`false < true`), then the oldest.
            let oldest = self
                .all()
                .into_iter()
                .filter_map(|v| v.oldest_idle().map(|(since, spare)| ((!spare, since), v)))
                .min_by_key(|(key, _)| *key);
            let Some((_, version)) = oldest else { return false };
            // Another call may have taken it meanwhile: look again.
            if version.evict_oldest() {
                tracing::debug!(
                    function = %version.spec().function,
                    version = %version.spec().version,
                    "instance pool full: dropped the least recently used idle instance"
                );
                return true;
            }
        }
    }

    /// The calls-in-flight count of `function`, shared by its versions.
    fn slots(&self, function: &str) -> Arc<std::sync::atomic::AtomicU32> {
        self.slots.lock().entry(function.to_string()).or_default().clone()
    }
}

/// Counters for tests, logs and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RuntimeStats {
    pub compiles: u64,
    pub artifact_loads: u64,
    pub loaded_versions: usize,
    /// Component instances alive (busy and idle), of `max_instances`.
    pub instances_alive: u64,
    pub max_instances: u32,
    /// The epoch ticker sleeps: no guest has run for a while.
    pub epoch_ticker_parked: bool,
}

impl Runtime {
    pub fn new(opts: RuntimeOptions<'_>) -> Result<Arc<Runtime>, RuntimeError> {
        let engine = engine::build_engine(&opts.engine)?;
        let mut linker = Linker::new(&engine);
        let engine_error = |e: wasmtime::Error| RuntimeError::Engine(format!("{e:#}"));
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(engine_error)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker).map_err(engine_error)?;
        bindings::wasmgate::function::report::add_to_linker::<_, wasmtime::component::HasSelf<_>>(&mut linker, |s| s)
            .map_err(engine_error)?;
        let artifacts = engine::ArtifactCache::new(opts.artifacts_dir, &engine)?;
        let activity = Arc::new(engine::GuestActivity::default());
        let ticker = engine::EpochTicker::start(&engine, activity.clone());
        Ok(Arc::new(Runtime {
            engine,
            linker,
            artifacts,
            max_memory_mb: opts.engine.max_memory_mb,
            max_instances: opts.engine.max_instances,
            components: RwLock::new(HashMap::new()),
            loaded: Arc::new(Loaded::default()),
            activity,
            outbound: Arc::new(outbound::Outbound::new(opts.outbound)),
            metrics: opts.metrics,
            recent_logs: Arc::new(crate::recent_logs::RecentLogs::new(opts.recent_logs_bytes)),
            _ticker: ticker,
        }))
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    pub fn metrics(&self) -> &crate::metrics::Metrics {
        &self.metrics
    }

    /// The recent logs of the functions (and, through the gateway, of the
    /// stages' access logs).
    pub fn recent_logs(&self) -> &Arc<crate::recent_logs::RecentLogs> {
        &self.recent_logs
    }

    /// Each function's calls in flight (over its versions), for the metrics.
    pub fn concurrency(&self) -> Vec<(String, u32)> {
        let slots = self.loaded.slots.lock();
        slots.iter().map(|(f, n)| (f.clone(), n.load(std::sync::atomic::Ordering::Relaxed))).collect()
    }

    pub fn max_memory_mb(&self) -> u32 {
        self.max_memory_mb
    }

    pub fn stats(&self) -> RuntimeStats {
        use std::sync::atomic::Ordering::Relaxed;
        RuntimeStats {
            compiles: self.artifacts.compiles.load(Relaxed),
            artifact_loads: self.artifacts.artifact_loads.load(Relaxed),
            loaded_versions: self.loaded.versions.read().values().map(HashMap::len).sum(),
            instances_alive: self.engine.pooling_allocator_metrics().map_or(0, |m| m.component_instances()),
            max_instances: self.max_instances,
            epoch_ticker_parked: self.activity.ticker_parked(),
        }
    }

    /// Checks that `wasm` is a component wasmgate can run (it compiles, its
    /// imports are satisfiable and it exports `handle` with the right type),
    /// and stores its compiled artifact. Called when code is uploaded, so that
    /// the request path never compiles. CPU-heavy: call it off the async
    /// executor (e.g. `spawn_blocking`).
    pub fn compile(&self, sha256: &str, wasm: &[u8]) -> Result<(), RuntimeError> {
        if self.components.read().contains_key(sha256) {
            return Ok(());
        }
        let component = self.artifacts.compile_and_store(&self.engine, sha256, wasm)?;
        let pre = self.pre_instantiate(&component)?;
        self.components.write().insert(sha256.to_string(), pre);
        tracing::info!(code_sha256 = sha256, "compiled component");
        Ok(())
    }

    fn pre_instantiate(&self, component: &Component) -> Result<HandlerPre<invoke::HostState>, RuntimeError> {
        let pre = self
            .linker
            .instantiate_pre(component)
            .map_err(|e| RuntimeError::InvalidCode(format!("the component cannot be linked: {e:#}")))?;
        HandlerPre::new(pre).map_err(|e| {
            RuntimeError::InvalidCode(format!(
                "the component does not export `handle: func(event: string, ctx: context) -> result<string, function-error>` of world wasmgate:function/handler@0.2.0: {e:#}"
            ))
        })
    }

    /// The pre-instantiated component for this code: from memory, else from
    /// the artifact cache, else compiled from `code` (read lazily). Returns
    /// whether it had to compile. Blocking (file reads, deserialising,
    /// perhaps compiling): [`Runtime::prepare`] runs it on a blocking thread.
    fn component_for(
        &self,
        sha256: &str,
        code: &dyn Fn() -> Option<Vec<u8>>,
    ) -> Result<(HandlerPre<invoke::HostState>, bool), RuntimeError> {
        if let Some(pre) = self.components.read().get(sha256) {
            return Ok((pre.clone(), false));
        }
        let (component, compiled) = match self.artifacts.load(&self.engine, sha256) {
            Some(c) => (c, false),
            None => {
                let wasm = code().ok_or_else(|| RuntimeError::MissingCode(sha256.to_string()))?;
                (self.artifacts.compile_and_store(&self.engine, sha256, &wasm)?, true)
            }
        };
        let pre = self.pre_instantiate(&component)?;
        self.components.write().entry(sha256.to_string()).or_insert(pre.clone());
        Ok((pre, compiled))
    }

    /// The loaded version of `function`/`version` if it runs exactly this
    /// code and configuration (the request path's look-up: no allocation).
    pub fn loaded_with(
        &self,
        function: &str,
        version: VersionRef,
        code_sha256: &str,
        config: &FunctionConfig,
    ) -> Option<Arc<LoadedVersion>> {
        let versions = self.loaded.versions.read();
        let loaded = versions.get(function)?.get(&version)?;
        let spec = loaded.spec();
        (spec.code_sha256 == code_sha256 && &spec.config == config).then(|| loaded.clone())
    }

    /// The loaded version matching `spec` exactly, if there is one.
    pub fn loaded(&self, spec: &VersionSpec) -> Option<Arc<LoadedVersion>> {
        let versions = self.loaded.versions.read();
        let loaded = versions.get(&spec.function)?.get(&spec.version)?;
        (loaded.spec() == spec).then(|| loaded.clone())
    }

    /// Loads `spec` (cold start) unless it is loaded already, and makes it
    /// the version that serves `spec`'s key (a version it replaces is
    /// retired). `warm`: something targets it (an alias, a stage), so its
    /// pool is filled up to `min_warm` before this returns. `code` gives the
    /// wasm if no artifact is cached. Returns the loaded version and whether
    /// this call loaded it.
    ///
    /// The component is read, deserialised (and, without an artifact,
    /// compiled) on a blocking thread, never on the async workers that
    /// serve requests.
    pub async fn prepare(
        self: &Arc<Self>,
        spec: &VersionSpec,
        code: impl Fn() -> Option<Vec<u8>> + Send + 'static,
        warm: bool,
    ) -> Result<(Arc<LoadedVersion>, bool), RuntimeError> {
        if let Some(loaded) = self.loaded(spec) {
            if warm && loaded.set_warm(true) {
                loaded.fill_to_min_warm().await?;
            }
            return Ok((loaded, false));
        }
        let started = Instant::now();
        let cached = self.components.read().get(&spec.code_sha256).cloned();
        let (pre, compiled) = match cached {
            Some(pre) => (pre, false),
            None => {
                let (runtime, sha256) = (self.clone(), spec.code_sha256.clone());
                tokio::task::spawn_blocking(move || runtime.component_for(&sha256, &code))
                    .await
                    .map_err(|e| RuntimeError::Engine(format!("loading the component failed: {e}")))??
            }
        };
        check_memory(spec, &pre)?;
        let loaded = Arc::new(self.new_loaded(spec.clone(), pre));
        loaded.set_warm(warm);
        loaded.fill_to_min_warm().await?;
        tracing::info!(
            function = %spec.function,
            version = %spec.version,
            from = if compiled { "compile" } else { "cached artifact" },
            warm = loaded.warm_target(),
            elapsed_us = started.elapsed().as_micros() as u64,
            "loaded version"
        );
        let mut versions = self.loaded.versions.write();
        let slot = versions.entry(spec.function.clone()).or_default();
        // Another caller may have loaded the same spec meanwhile: keep theirs.
        if let Some(existing) = slot.get(&spec.version)
            && existing.spec() == spec
        {
            return Ok((existing.clone(), false));
        }
        if let Some(replaced) = slot.insert(spec.version, loaded.clone()) {
            replaced.retire();
        }
        Ok((loaded, true))
    }

    /// A loaded version of `spec`, not (yet) in the map of loaded versions.
    pub(crate) fn new_loaded(&self, spec: VersionSpec, pre: HandlerPre<invoke::HostState>) -> LoadedVersion {
        LoadedVersion::new(spec, pre, self)
    }

    /// Sets each loaded version's warm target: `min_warm` for those in
    /// `targeted` (what aliases and stages call), 0 for the rest, whose
    /// instances made ahead of traffic are dropped and whose used ones
    /// expire after `idle_ttl`. Returns the versions short of their target,
    /// for the caller to fill.
    pub fn retarget(&self, targeted: &HashSet<(String, VersionRef)>) -> Vec<Arc<LoadedVersion>> {
        let mut short = Vec::new();
        for version in self.loaded.all() {
            let spec = version.spec();
            let key = (spec.function.clone(), spec.version);
            if version.set_warm(targeted.contains(&key)) {
                short.push(version);
            }
        }
        short
    }

    /// Forgets a function's loaded versions: their idle instances are
    /// dropped now, and their calls in flight finish without parking theirs.
    pub fn unload_function(&self, function: &str) {
        let removed = self.loaded.versions.write().remove(function);
        for version in removed.into_iter().flat_map(HashMap::into_values) {
            version.retire();
        }
    }

    /// Forgets one loaded version, as [`Runtime::unload_function`] does.
    pub fn unload_version(&self, function: &str, version: VersionRef) {
        let removed = self.loaded.versions.write().get_mut(function).and_then(|v| v.remove(&version));
        if let Some(removed) = removed {
            removed.retire();
        }
    }

    /// Drops idle instances unused for longer than their `idle_ttl` (keeping
    /// each version's warm target). The server calls this periodically.
    pub fn evict_idle(&self) -> usize {
        self.loaded.all().iter().map(|v| v.evict_idle(Instant::now())).sum()
    }

    /// Starts the background task that evicts idle instances every `every`.
    pub fn spawn_evictor(self: &Arc<Self>, every: Duration) -> tokio::task::JoinHandle<()> {
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(every);
            loop {
                interval.tick().await;
                let Some(rt) = weak.upgrade() else { break };
                let evicted = rt.evict_idle();
                if evicted > 0 {
                    tracing::debug!(evicted, "evicted idle instances");
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// Loading a version that must be compiled (no artifact yet) leaves the
    /// async worker free: with one worker, a task spawned after the load
    /// runs, and ends, while the component compiles.
    #[test]
    fn a_cold_load_leaves_the_worker_to_other_tasks() {
        let dir = tempfile::tempdir().unwrap();
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let ended = Arc::new(AtomicUsize::new(0));
        let (load_at, light_at) = runtime.block_on(async {
            let rt = Runtime::new(RuntimeOptions {
                artifacts_dir: dir.path(),
                engine: EngineOptions::default(),
                outbound: OutboundOptions::default(),
                metrics: Default::default(),
                recent_logs_bytes: crate::recent_logs::DEFAULT_BUDGET_MB << 20,
            })
            .expect("runtime");
            let wasm = crate::guests::get("items").expect("the items guest").to_vec();
            let spec = VersionSpec {
                function: "f".into(),
                version: VersionRef::Latest,
                code_sha256: crate::registry::code::sha256_hex(&wasm),
                config: FunctionConfig::default(),
            };
            let e = ended.clone();
            let load = tokio::spawn(async move {
                let (_, loaded_now) = rt.prepare(&spec, move || Some(wasm.clone()), false).await.expect("loads");
                assert!(loaded_now);
                assert_eq!(rt.stats().compiles, 1, "compiled, there being no artifact");
                e.fetch_add(1, Ordering::SeqCst)
            });
            let e = ended.clone();
            let light = tokio::spawn(async move { e.fetch_add(1, Ordering::SeqCst) });
            (load.await.unwrap(), light.await.unwrap())
        });
        assert_eq!((light_at, load_at), (0, 1), "the light task ended first, while the component compiled");
    }
}
