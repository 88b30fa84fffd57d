//! The process's one wasmtime [`Engine`], how components are compiled, and the
//! on-disk cache of compiled artifacts.
//!
//! The engine runs guests asynchronously, interrupts them by epoch (one ticker
//! thread for the whole engine, never a timer per call), and allocates
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
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
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
    /// Most component instances alive at once (busy plus idle).
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
    Engine::new(&config).map_err(|e| RuntimeError::Engine(format!("{e:#}")))
}

/// Advances the engine's epoch every [`EPOCH_TICK`] on one thread, until dropped.
pub struct EpochTicker {
    stop: Arc<AtomicBool>,
}

impl EpochTicker {
    pub fn start(engine: &Engine) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let engine = engine.clone();
        let flag = stop.clone();
        std::thread::Builder::new()
            .name("wasmgate-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    engine.increment_epoch();
                }
            })
            .expect("spawn the epoch ticker thread");
        EpochTicker { stop }
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
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
