//! The process's one wasmtime [`Engine`], how components are compiled, and the
//! on-disk cache of compiled artifacts.
//!
//! The engine runs guests asynchronously, interrupts them by epoch (one ticker
//! thread for the whole engine, never a timer per call, asleep while no
//! guest runs), and allocates
//! instances from a pool with copy-on-write memory images. The pool keeps
//! memory and tables resident between instances and uses `PAGEMAP_SCAN` where
//! the kernel has it, which makes a fresh instance 1.5–2.7× cheaper than the
//! default of decommitting everything on drop.
//!
//! Compiled artifacts live in `<data>/artifacts/<sha256>-<engine>.cwasm`, named
//! by the code's hash and the engine's compatibility hash, so a restart loads
//! (mmaps) them instead of compiling, and an upgraded engine never loads an
//! artifact it cannot run.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicIsize, AtomicU64, AtomicUsize, Ordering};
use std::thread::Thread;
use std::time::Duration;

use wasmtime::component::Component;
use wasmtime::{Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use super::RuntimeError;

/// How often the engine's epoch advances: the granularity of timeouts, and how
/// often a long-running guest yields to the scheduler.
pub const EPOCH_TICK: Duration = Duration::from_millis(1);

/// Limits of the instance pool, fixed when the engine is built.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Most component instances alive at once (busy plus idle), over all
    /// functions. 1000 by default, Lambda's default concurrency: an idle
    /// instance of a small Rust function keeps about 90 KB resident
    /// (`benches/capacity.sh`), so a full pool of them is under 100 MB, and
    /// the pool's reservation (8 TB of address space at the defaults) leaves
    /// room for about 12 times as many on a 47-bit address space.
    pub max_instances: u32,
    /// Largest linear memory any function may be configured with, in MiB.
    pub max_memory_mb: u32,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions { max_instances: 1000, max_memory_mb: 4096 }
    }
}

/// Builds the engine.
pub fn build_engine(opts: &EngineOptions) -> Result<Engine, RuntimeError> {
    let mut pool = PoolingAllocationConfig::default();
    let instances = opts.max_instances.max(1);
    pool.total_component_instances(instances)
        // A Rust component built for wasm32-wasip2 has a handful of core
        // instances (the program and its adapter shims).
        .total_core_instances(instances.saturating_mul(8))
        .total_memories(instances.saturating_mul(2))
        .total_tables(instances.saturating_mul(4))
        .total_stacks(instances)
        .max_memory_size((opts.max_memory_mb as usize) << 20)
        // Keep the first pages of memories and tables resident when an
        // instance is dropped: re-initialising them is cheaper than faulting
        // them in again.
        .linear_memory_keep_resident(1 << 20)
        .table_keep_resident(64 << 10)
        .pagemap_scan(Enabled::Auto);

    let mut config = Config::new();
    config
        .epoch_interruption(true)
        .memory_init_cow(true)
        .wasm_component_model(true)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    Engine::new(&config).map_err(|e| {
        // The pool reserves address space for two memories of `max_memory_mb`
        // per instance up front (8 TB at the defaults): too large a product
        // is the usual cause.
        let reserved_gb = u64::from(instances) * 2 * u64::from(opts.max_memory_mb) / 1024;
        RuntimeError::Engine(format!(
            "{e:#} (the instance pool reserves about {reserved_gb} GB of address space: max_instances {instances} × 2 memories × max_memory_mb {}; lower max_instances or max_memory_mb)",
            opts.max_memory_mb
        ))
    })
}

/// Ticks without a guest running after which the ticker sleeps until one starts.
const IDLE_TICKS: u32 = 100;

/// Shards of the count of running guests: a thread counts in its own, so two
/// workers starting calls never write the same cache line.
const SHARDS: usize = 16;

#[repr(align(128))]
#[derive(Default)]
struct Shard(AtomicIsize);

/// Whether guests are running on the engine (being instantiated or called),
/// so that the epoch ticker sleeps while none is: an idle server would
/// otherwise wake a thousand times a second for nothing.
///
/// A guest counts itself in with [`GuestActivity::enter`] before it runs and
/// out when the guard drops. Starting a guest costs two uncontended atomic
/// additions and a read; the ticker sums the shards.
#[derive(Default)]
pub struct GuestActivity {
    shards: [Shard; SHARDS],
    /// The ticker announced it is going to sleep.
    parked: AtomicBool,
    ticker: OnceLock<Thread>,
}

/// One running guest, counted until dropped.
pub struct Running<'a> {
    activity: &'a GuestActivity,
    shard: usize,
}

impl GuestActivity {
    /// Counts a guest in; the ticker is woken first if it sleeps.
    pub fn enter(&self) -> Running<'_> {
        thread_local! {
            static SHARD: usize = {
                static NEXT: AtomicUsize = AtomicUsize::new(0);
                NEXT.fetch_add(1, Ordering::Relaxed) % SHARDS
            };
        }
        let shard = SHARD.with(|s| *s);
        // Sequentially consistent, as the ticker's side: either the ticker
        // sees this guest before it sleeps, or this sees that it is going to.
        self.shards[shard].0.fetch_add(1, Ordering::SeqCst);
        if self.parked.load(Ordering::SeqCst)
            && self.parked.swap(false, Ordering::SeqCst)
            && let Some(ticker) = self.ticker.get()
        {
            ticker.unpark();
        }
        Running { activity: self, shard }
    }

    /// Whether the ticker has gone to sleep (no guest ran for a while); the
    /// next guest to start wakes it.
    pub fn ticker_parked(&self) -> bool {
        self.parked.load(Ordering::SeqCst)
    }

    /// Guests running now.
    pub fn running(&self) -> isize {
        // A guest may leave on another thread than it entered: only the sum counts.
        self.shards.iter().map(|s| s.0.load(Ordering::SeqCst)).sum()
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.activity.shards[self.shard].0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Advances the engine's epoch every [`EPOCH_TICK`] on one thread, until
/// dropped; after [`IDLE_TICKS`] without a running guest it sleeps until one
/// enters.
pub struct EpochTicker {
    stop: Arc<AtomicBool>,
    thread: Thread,
}

impl EpochTicker {
    pub fn start(engine: &Engine, activity: Arc<GuestActivity>) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let engine = engine.clone();
        let flag = stop.clone();
        let shared = activity.clone();
        let handle = std::thread::Builder::new()
            .name("wasmgate-epoch".into())
            .spawn(move || {
                let mut idle = 0;
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    engine.increment_epoch();
                    if activity.running() > 0 {
                        idle = 0;
                        continue;
                    }
                    idle += 1;
                    if idle < IDLE_TICKS {
                        continue;
                    }
                    // Announce the sleep, then look again (see `enter`).
                    activity.parked.store(true, Ordering::SeqCst);
                    if activity.running() == 0 && !flag.load(Ordering::SeqCst) {
                        std::thread::park();
                    }
                    activity.parked.store(false, Ordering::SeqCst);
                    idle = 0;
                }
            })
            .expect("spawn the epoch ticker thread");
        let thread = handle.thread().clone();
        // Set before any guest can need it: the ticker sleeps only after
        // `IDLE_TICKS` ticks.
        let _ = shared.ticker.set(thread.clone());
        EpochTicker { stop, thread }
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.unpark();
    }
}

/// Compiled artifacts on disk, by code hash.
pub struct ArtifactCache {
    dir: PathBuf,
    engine_tag: String,
    /// Components compiled from source by this process (not loaded from cache).
    pub compiles: AtomicU64,
    /// Components loaded from a cached artifact.
    pub artifact_loads: AtomicU64,
}

impl ArtifactCache {
    pub fn new(dir: &Path, engine: &Engine) -> Result<Self, RuntimeError> {
        std::fs::create_dir_all(dir).map_err(|e| RuntimeError::Io(format!("create {}: {e}", dir.display())))?;
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        Ok(ArtifactCache {
            dir: dir.to_path_buf(),
            engine_tag: format!("{:016x}", hasher.finish()),
            compiles: AtomicU64::new(0),
            artifact_loads: AtomicU64::new(0),
        })
    }

    /// Where the artifact of the code with this hash lives.
    pub fn path(&self, sha256: &str) -> PathBuf {
        self.dir.join(format!("{sha256}-{}.cwasm", self.engine_tag))
    }

    pub fn contains(&self, sha256: &str) -> bool {
        self.path(sha256).exists()
    }

    /// Compiles `wasm` and stores the artifact (written to a temporary file,
    /// synced, then renamed, so a crash never leaves a torn artifact).
    pub fn compile_and_store(&self, engine: &Engine, sha256: &str, wasm: &[u8]) -> Result<Component, RuntimeError> {
        let component = compile(engine, wasm)?;
        self.compiles.fetch_add(1, Ordering::Relaxed);
        let bytes = component.serialize().map_err(|e| RuntimeError::Engine(format!("serialize artifact: {e:#}")))?;
        crate::fsutil::write_atomic(&self.path(sha256), &bytes)
            .map_err(|e| RuntimeError::Io(format!("store artifact: {e}")))?;
        Ok(component)
    }

    /// Loads (memory-maps) the cached artifact for this hash, if there is one
    /// that this engine can run.
    pub fn load(&self, engine: &Engine, sha256: &str) -> Option<Component> {
        let path = self.path(sha256);
        if !path.exists() {
            return None;
        }
        // SAFETY: the file was written by `compile_and_store` of an engine with
        // the same compatibility hash (it is in the file name), atomically, in a
        // directory that only this program writes.
        match unsafe { Component::deserialize_file(engine, &path) } {
            Ok(c) => {
                self.artifact_loads.fetch_add(1, Ordering::Relaxed);
                Some(c)
            }
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %format!("{e:#}"), "unusable cached artifact; recompiling");
                None
            }
        }
    }
}

/// Compiles a component, turning wasmtime's error into one that says what is
/// wrong with the upload.
pub fn compile(engine: &Engine, wasm: &[u8]) -> Result<Component, RuntimeError> {
    if wasm.len() < 8 || &wasm[..4] != b"\0asm" {
        return Err(RuntimeError::InvalidCode("not a WebAssembly binary (missing the \\0asm magic number)".into()));
    }
    // Bytes 4..8 are the version and layer: 0x0001_0000 is a core module, a
    // component has layer 1.
    if wasm[6..8] == [0, 0] {
        return Err(RuntimeError::InvalidCode(
            "this is a core WebAssembly module, not a component: build the function for wasm32-wasip2 (or wrap it with `wasm-tools component new`)"
                .into(),
        ));
    }
    Component::new(engine, wasm).map_err(|e| RuntimeError::InvalidCode(format!("{e:#}")))
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;

    /// Polls `cond` for up to 5 s.
    fn eventually(cond: impl Fn() -> bool) -> bool {
        let until = Instant::now() + Duration::from_secs(5);
        while Instant::now() < until {
            if cond() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        false
    }

    #[test]
    fn the_ticker_sleeps_while_no_guest_runs_and_wakes_for_one() {
        let engine = Engine::default();
        let activity = Arc::new(GuestActivity::default());
        let _ticker = EpochTicker::start(&engine, activity.clone());
        assert!(eventually(|| activity.parked.load(Ordering::SeqCst)), "an idle ticker goes to sleep");
        let running = activity.enter();
        assert_eq!(activity.running(), 1);
        assert!(!activity.parked.load(Ordering::SeqCst), "a guest entering wakes it");
        // It keeps ticking while the guest runs (well past the idle limit).
        std::thread::sleep(EPOCH_TICK * IDLE_TICKS * 3);
        assert!(!activity.parked.load(Ordering::SeqCst));
        // A guest may leave on another thread than it entered.
        std::thread::scope(|s| {
            s.spawn(move || drop(running));
        });
        assert_eq!(activity.running(), 0);
        assert!(eventually(|| activity.parked.load(Ordering::SeqCst)), "and sleeps again once it is idle");
    }
}
