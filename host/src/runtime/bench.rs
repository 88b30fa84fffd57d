//! Cold, warm and hot start measurements of one function, shared by
//! `wasmgate bench` and the criterion benches.
//!
//! - cold (compile): compile the component from its bytes;
//! - cold (artifact): load the cached artifact, pre-instantiate, instantiate, call;
//! - warm: instantiate a loaded version, call, drop the instance;
//! - hot: call an instance that is reused.
//!
//! Each runs through the same code as a real invocation (limits, timeout,
//! context, log capture). The guest's output is logged as an invocation's
//! is, under `wasmgate::function` when that target is enabled: whoever
//! installs the subscriber decides (`wasmgate bench` turns it off unless
//! `--show-logs`; a run makes thousands of calls).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::{
    EngineOptions, FunctionConfig, InvokeRequest, LoadedVersion, Runtime, RuntimeError, RuntimeOptions, VersionSpec,
    engine,
};

/// A function loaded twice (reused and fresh-instance variants) in a
/// private runtime with its own artifact directory.
pub struct Harness {
    runtime: Arc<Runtime>,
    wasm: Vec<u8>,
    sha256: String,
    hot: Arc<LoadedVersion>,
    fresh: Arc<LoadedVersion>,
    event: String,
    dir: PathBuf,
    owns_dir: bool,
}

/// Latency percentiles of one kind of start.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub start: &'static str,
    pub samples: usize,
    pub p50_us: f64,
    pub p99_us: f64,
    pub mean_us: f64,
}

/// How many samples of each kind to take.
#[derive(Debug, Clone, Copy)]
pub struct Samples {
    pub compile: usize,
    pub artifact: usize,
    pub warm: usize,
    pub hot: usize,
}

impl Default for Samples {
    fn default() -> Self {
        Samples { compile: 5, artifact: 50, warm: 2000, hot: 20000 }
    }
}

impl Harness {
    /// Compiles `wasm` once and loads it. `dir` holds the artifacts (a fresh
    /// temporary directory when `None`, removed on drop).
    pub async fn new(
        wasm: Vec<u8>,
        config: FunctionConfig,
        event: &str,
        dir: Option<&Path>,
    ) -> Result<Harness, RuntimeError> {
        Self::with_engine(wasm, config, event, dir, EngineOptions::default()).await
    }

    /// As [`Harness::new`], on an engine with these pool limits (a smaller
    /// pool reserves less address space, e.g. to run under valgrind).
    pub async fn with_engine(
        wasm: Vec<u8>,
        config: FunctionConfig,
        event: &str,
        dir: Option<&Path>,
        engine: EngineOptions,
    ) -> Result<Harness, RuntimeError> {
        let (dir, owns_dir) = match dir {
            Some(d) => (d.to_path_buf(), false),
            None => (std::env::temp_dir().join(format!("wasmgate-bench-{}", uuid::Uuid::new_v4().simple())), true),
        };
        let runtime = Runtime::new(RuntimeOptions {
            artifacts_dir: &dir,
            engine,
            outbound: Default::default(),
            metrics: Default::default(),
            recent_logs_bytes: crate::recent_logs::DEFAULT_BUDGET_MB << 20,
        })?;
        let sha256 = crate::registry::code::sha256_hex(&wasm);
        runtime.compile(&sha256, &wasm)?;
        let spec = |version: u32, reuse: bool| VersionSpec {
            function: "bench".into(),
            version: crate::registry::VersionRef::Number(version),
            code_sha256: sha256.clone(),
            config: FunctionConfig { reuse, min_warm: 0, ..config.clone() },
        };
        let (hot, _) = runtime.prepare(&spec(1, true), || None, false).await?;
        let (fresh, _) = runtime.prepare(&spec(2, false), || None, false).await?;
        let h = Harness { runtime, wasm, sha256, hot, fresh, event: event.to_string(), dir, owns_dir };
        // One call so the reused instance exists.
        h.hot_once().await?;
        Ok(h)
    }

    fn request(&self) -> InvokeRequest<'_> {
        InvokeRequest {
            event: &self.event,
            request_id: "bench",
            invoked_qualifier: "bench",
            keep_logs: false,
            cold: false,
        }
    }

    /// Compiles the component from its bytes (nothing cached).
    pub fn compile_once(&self) -> Result<(), RuntimeError> {
        engine::compile(self.runtime.engine(), &self.wasm).map(drop)
    }

    /// Loads the cached artifact, pre-instantiates, instantiates and calls.
    pub async fn cold_from_artifact_once(&self) -> Result<(), RuntimeError> {
        let component = self
            .runtime
            .artifacts
            .load(self.runtime.engine(), &self.sha256)
            .ok_or_else(|| RuntimeError::MissingCode(self.sha256.clone()))?;
        let pre = self.runtime.pre_instantiate(&component)?;
        let loaded = Arc::new(self.runtime.new_loaded(self.fresh.spec().clone(), pre));
        check(loaded.invoke(self.request()).await?)
    }

    /// Instantiates a loaded version, calls it, drops the instance.
    pub async fn warm_once(&self) -> Result<(), RuntimeError> {
        check(self.call(true).await?)
    }

    /// Calls a reused instance.
    pub async fn hot_once(&self) -> Result<(), RuntimeError> {
        check(self.call(false).await?)
    }

    /// One call, on a reused instance (`fresh`: on a fresh one), with its outcome.
    pub async fn call(&self, fresh: bool) -> Result<super::InvokeOutcome, RuntimeError> {
        let loaded = if fresh { &self.fresh } else { &self.hot };
        loaded.invoke(self.request()).await
    }

    /// The resident memory one instance adds once it has served a call:
    /// `n` fresh instances made and called once each, all kept alive, and
    /// the process's resident set (`VmRSS`, Linux) compared before and
    /// after. `None` where the resident set cannot be read.
    pub async fn resident_per_instance(&self, n: usize) -> Result<Option<u64>, RuntimeError> {
        let Some(before) = resident_bytes() else { return Ok(None) };
        let mut held = Vec::with_capacity(n);
        let _running = self.fresh.activity.enter();
        for _ in 0..n {
            let mut instance = self.fresh.instantiate().await?;
            let timeout = Duration::from_millis(self.fresh.spec().config.timeout_ms);
            instance.store.data_mut().deadline = Instant::now() + timeout;
            instance.store.set_epoch_deadline(1);
            let ctx = super::bindings::wasmgate::function::types::Context {
                request_id: "bench",
                invoked_qualifier: "bench",
                remaining_time_ms: timeout.as_millis() as u64,
                deadline_ms: 0,
            };
            instance
                .handler
                .call_handle(&mut instance.store, &self.event, ctx)
                .await
                .map_err(|e| RuntimeError::Engine(format!("the function failed: {e:#}")))?
                .ok();
            instance.logs.clear();
            held.push(instance);
        }
        let after = resident_bytes().unwrap_or(before);
        drop(held);
        Ok(Some(after.saturating_sub(before) / n.max(1) as u64))
    }

    /// Measures every kind of start; returns one row each.
    pub async fn run(&self, samples: Samples) -> Result<Vec<Row>, RuntimeError> {
        let mut rows = Vec::new();
        let mut times = Vec::with_capacity(samples.compile);
        for _ in 0..samples.compile {
            let t = Instant::now();
            self.compile_once()?;
            times.push(t.elapsed());
        }
        rows.push(row("cold (compile)", times));
        macro_rules! measure {
            ($name:expr, $n:expr, $op:ident) => {{
                let mut times = Vec::with_capacity($n);
                for _ in 0..$n {
                    let t = Instant::now();
                    self.$op().await?;
                    times.push(t.elapsed());
                }
                rows.push(row($name, times));
            }};
        }
        measure!("cold (cached artifact)", samples.artifact, cold_from_artifact_once);
        measure!("warm (fresh instance)", samples.warm, warm_once);
        measure!("hot (reused instance)", samples.hot, hot_once);
        Ok(rows)
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        if self.owns_dir {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// This process's resident set, from `/proc/self/status`.
fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.trim_start_matches("VmRSS:").trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(kb * 1024)
}

fn check(outcome: super::InvokeOutcome) -> Result<(), RuntimeError> {
    match outcome.result {
        Ok(_) => Ok(()),
        Err(e) if e.kind == super::FailureKind::Handled => Ok(()),
        Err(e) => Err(RuntimeError::Engine(format!("the function failed: {}: {}", e.error_type, e.error_message))),
    }
}

fn row(start: &'static str, mut times: Vec<Duration>) -> Row {
    times.sort();
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    let pick = |q: f64| times.get(((times.len() as f64 - 1.0) * q).round() as usize).map(|d| us(*d)).unwrap_or(0.0);
    let mean = if times.is_empty() { 0.0 } else { times.iter().map(|d| us(*d)).sum::<f64>() / times.len() as f64 };
    Row { start, samples: times.len(), p50_us: pick(0.5), p99_us: pick(0.99), mean_us: mean }
}

/// Formats rows as the table `wasmgate bench` prints.
pub fn table(rows: &[Row]) -> String {
    // Milliseconds throughout (as every duration wasmgate prints), to the
    // tenth of a microsecond below one.
    let fmt = |us: f64| {
        let ms = us / 1000.0;
        if ms >= 1.0 { format!("{ms:.2}") } else { format!("{ms:.4}") }
    };
    let mut out = format!("{:<24} {:>8} {:>12} {:>12} {:>12}\n", "start", "samples", "p50 ms", "p99 ms", "mean ms");
    for r in rows {
        out.push_str(&format!(
            "{:<24} {:>8} {:>12} {:>12} {:>12}\n",
            r.start,
            r.samples,
            fmt(r.p50_us),
            fmt(r.p99_us),
            fmt(r.mean_us)
        ));
    }
    out
}
