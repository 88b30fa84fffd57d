//! Functions as users see them: the registry and the runtime together.
//!
//! Every change goes in the same order — validate, store code, compile, load
//! and warm what will serve, commit, swap — so that compilation never happens
//! on the request path and a change causes no cold start: moving an alias (or
//! replacing `$LATEST`) loads and warms the target before the switch. This is
//! what the admin API, the bootstrap from `gateway.toml`, and the gateway's
//! function integrations call.
//!
//! A gateway's integration calls through a [`FunctionTarget`]: its
//! qualifier resolved to loaded code once per registry generation, so a
//! request goes straight to the instance pool.
//!
//! Warm pools follow what is called: after every change, each loaded
//! version whose `min_warm` applies — `$LATEST`, a version an alias names,
//! a version a deployed stage names ([`Functions::set_stage_targets`]) —
//! keeps its instances ahead of traffic, and the rest keep none
//! ([`Functions::retarget`]).

use std::collections::HashSet;
use std::sync::Arc;

use arc_swap::ArcSwapOption;
use parking_lot::Mutex;

use crate::registry::{
    AliasRecord, AliasUpdate, FunctionRecord, Registry, RegistryError, VersionRecord, VersionRef, weighted_pick,
};
use crate::runtime::{FunctionConfig, InvokeOutcome, InvokeRequest, LoadedVersion, Runtime, RuntimeError, VersionSpec};

/// Errors of function operations.
#[derive(Debug, thiserror::Error)]
pub enum FunctionsError {
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
}

/// The registry and the runtime, used together.
#[derive(Clone)]
pub struct Functions {
    registry: Arc<Registry>,
    runtime: Arc<Runtime>,
    /// The qualifiers the deployed stages call (`ItemsFunction:prod`).
    stage_targets: Arc<Mutex<Vec<String>>>,
}

async fn blocking<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> R {
    tokio::task::spawn_blocking(f).await.expect("blocking registry task panicked")
}

impl Functions {
    pub fn new(registry: Arc<Registry>, runtime: Arc<Runtime>) -> Self {
        Functions { registry, runtime, stage_targets: Arc::default() }
    }

    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    pub fn runtime(&self) -> &Arc<Runtime> {
        &self.runtime
    }

    /// The loaded versions of the registry's functions (`$LATEST` and
    /// published ones, as the registry has them now), in the registry's order.
    pub fn loaded_versions(&self) -> Vec<Arc<LoadedVersion>> {
        let state = self.registry.snapshot();
        let specs = state.functions.values().flat_map(|record| {
            let numbers = record.versions.keys().map(|n| VersionRef::Number(*n));
            std::iter::once(VersionRef::Latest).chain(numbers).filter_map(|v| record.spec(v))
        });
        specs.filter_map(|spec| self.runtime.loaded(&spec)).collect()
    }

    /// Loads a version (and warms it, when `warm`: something will call it);
    /// its code is read from the store only if no compiled artifact is cached.
    async fn prepare(&self, spec: &VersionSpec, warm: bool) -> Result<(), FunctionsError> {
        let registry = self.registry.clone();
        let sha = spec.code_sha256.clone();
        self.runtime.prepare(spec, move || registry.code().get(&sha), warm).await?;
        Ok(())
    }

    /// Records the qualifiers the deployed stages call, and retargets the
    /// warm pools to them.
    pub fn set_stage_targets(&self, qualifiers: Vec<String>) {
        *self.stage_targets.lock() = qualifiers;
        self.retarget();
    }

    /// Gives each loaded version its warm target: `min_warm` for `$LATEST`,
    /// for the versions an alias names, and for those a deployed stage
    /// names; nothing for the rest (see the module's docs). Versions short
    /// of their target are topped up in the background.
    pub fn retarget(&self) {
        for version in self.targets() {
            version.refill_in_background();
        }
    }

    /// Sets the warm targets; returns the versions short of theirs.
    fn targets(&self) -> Vec<Arc<LoadedVersion>> {
        let state = self.registry.snapshot();
        let mut targeted: HashSet<(String, VersionRef)> = HashSet::new();
        for f in state.functions.values() {
            targeted.insert((f.name.clone(), VersionRef::Latest));
            targeted.extend(f.aliased_versions().map(|v| (f.name.clone(), v)));
        }
        for qualifier in self.stage_targets.lock().iter() {
            if let Ok(target) = state.resolve(qualifier) {
                let name = &target.function.name;
                targeted.insert((name.clone(), target.primary));
                targeted.extend(target.additional.map(|(v, _)| (name.clone(), VersionRef::Number(v))));
            }
        }
        self.runtime.retarget(&targeted)
    }

    /// Creates a function or replaces its `$LATEST` code (and, if given, its
    /// configuration). The code is validated and compiled first; malformed
    /// code is rejected and nothing is stored in the registry.
    pub async fn put_code(
        &self,
        name: &str,
        wasm: Vec<u8>,
        config: Option<FunctionConfig>,
        description: Option<String>,
    ) -> Result<FunctionRecord, FunctionsError> {
        crate::registry::validate_function_name(name)?;
        if let Some(c) = &config {
            c.validate(self.runtime.max_memory_mb()).map_err(|p| FunctionsError::InvalidConfig(p.message))?;
        }
        let size = wasm.len() as u64;
        let sha = crate::registry::code::sha256_hex(&wasm);
        let runtime = self.runtime.clone();
        let (sha2, wasm) = (sha.clone(), Arc::new(wasm));
        let compile_wasm = wasm.clone();
        blocking(move || runtime.compile(&sha2, &compile_wasm)).await?;
        let registry = self.registry.clone();
        blocking(move || registry.code().put(&wasm)).await?;

        let existing = self.registry.snapshot().functions.get(name).cloned();
        let config = config.or_else(|| existing.as_ref().map(|f| f.config.clone())).unwrap_or_default();
        let spec = VersionSpec { function: name.into(), version: VersionRef::Latest, code_sha256: sha.clone(), config };
        self.prepare(&spec, true).await?;
        let registry = self.registry.clone();
        let name2 = name.to_string();
        let record =
            blocking(move || registry.put_code(&name2, &sha, size, Some(&spec.config), description.as_deref())).await?;
        tracing::info!(function = name, code_sha256 = %record.code_sha256, "updated $LATEST code");
        Ok(record)
    }

    /// Replaces `$LATEST`'s configuration.
    pub async fn put_config(&self, name: &str, config: FunctionConfig) -> Result<FunctionRecord, FunctionsError> {
        config.validate(self.runtime.max_memory_mb()).map_err(|p| FunctionsError::InvalidConfig(p.message))?;
        let f = self.registry.snapshot().function(name)?.clone();
        let spec = VersionSpec {
            function: name.into(),
            version: VersionRef::Latest,
            code_sha256: f.code_sha256.clone(),
            config: config.clone(),
        };
        self.prepare(&spec, true).await?;
        let registry = self.registry.clone();
        let name = name.to_string();
        Ok(blocking(move || registry.put_config(&name, &config)).await?)
    }

    /// Publishes `$LATEST` as a version (or returns the unchanged newest one),
    /// loaded and warmed before this returns.
    pub async fn publish(
        &self,
        name: &str,
        description: String,
        expected_sha256: Option<String>,
    ) -> Result<(VersionRecord, bool), FunctionsError> {
        let registry = self.registry.clone();
        let n = name.to_string();
        let (version, created) =
            blocking(move || registry.publish(&n, &description, expected_sha256.as_deref())).await?;
        let state = self.registry.snapshot();
        if let Some(spec) = state.function(name)?.spec(VersionRef::Number(version.version)) {
            // Loaded, not warmed: nothing calls a new version until an
            // alias or a stage names it (and that warms it).
            self.prepare(&spec, false).await?;
        }
        if created {
            tracing::info!(function = name, version = version.version, "published version");
        }
        Ok((version, created))
    }

    /// Creates or updates an alias; the versions it will use are loaded and
    /// warmed before it switches.
    pub async fn put_alias(
        &self,
        name: &str,
        alias: &str,
        update: AliasUpdate,
        must_exist: Option<bool>,
    ) -> Result<AliasRecord, FunctionsError> {
        let state = self.registry.snapshot();
        let f = state.function(name)?;
        let targets =
            std::iter::once(update.version).chain(update.additional_version.map(|(v, _)| VersionRef::Number(v)));
        for v in targets {
            match f.spec(v) {
                Some(spec) => self.prepare(&spec, true).await?,
                None => return Err(RegistryError::NotFound(format!("Function not found: {name}:{v}")).into()),
            }
        }
        let registry = self.registry.clone();
        let (n, a) = (name.to_string(), alias.to_string());
        let record = blocking(move || registry.put_alias(&n, &a, &update, must_exist)).await?;
        // The versions it no longer names may go cold.
        self.retarget();
        tracing::info!(function = name, alias, version = %record.version, additional = ?record.additional_version, "alias set");
        Ok(record)
    }

    pub async fn delete_alias(&self, name: &str, alias: &str) -> Result<(), FunctionsError> {
        let registry = self.registry.clone();
        let (n, a) = (name.to_string(), alias.to_string());
        blocking(move || registry.delete_alias(&n, &a)).await?;
        self.retarget();
        Ok(())
    }

    pub async fn delete_version(&self, name: &str, version: &str) -> Result<(), FunctionsError> {
        let registry = self.registry.clone();
        let (n, v) = (name.to_string(), version.to_string());
        blocking(move || registry.delete_version(&n, &v)).await?;
        // The registry took it, so it parses (as the number it deleted).
        if let Some(version) = VersionRef::parse(version) {
            self.runtime.unload_version(name, version);
        }
        Ok(())
    }

    pub async fn delete_function(&self, name: &str) -> Result<(), FunctionsError> {
        let registry = self.registry.clone();
        let n = name.to_string();
        blocking(move || registry.delete_function(&n)).await?;
        self.runtime.unload_function(name);
        Ok(())
    }

    /// Loads every `$LATEST` and version in the registry (from cached
    /// artifacts), so the first requests after a start are not cold.
    pub async fn load_all(&self) -> Result<usize, FunctionsError> {
        let specs = self.registry.snapshot().all_specs();
        let count = specs.len();
        let mut tasks = tokio::task::JoinSet::new();
        for spec in specs {
            let me = self.clone();
            // Warmed afterwards, by what targets them (`retarget`).
            tasks.spawn(async move { me.prepare(&spec, false).await.map_err(|e| (spec, e)) });
        }
        while let Some(done) = tasks.join_next().await {
            if let Ok(Err((spec, e))) = done {
                tracing::error!(function = %spec.function, version = %spec.version, error = %e, "could not load version");
            }
        }
        // Warm what is called before the server serves, as a first start does.
        for version in self.targets() {
            if let Err(e) = version.fill_to_min_warm().await {
                tracing::warn!(function = %version.spec().function, error = %e, "could not fill the warm pool");
            }
        }
        Ok(count)
    }

    /// Invokes `name[:qualifier]` with a JSON event; `keep_logs` as
    /// [`InvokeRequest::keep_logs`].
    pub async fn invoke(
        &self,
        qualified: &str,
        event: &str,
        request_id: &str,
        keep_logs: bool,
    ) -> Result<InvokeOutcome, FunctionsError> {
        self.invoke_target(&FunctionTarget::new(qualified), event, request_id, keep_logs).await
    }

    /// Invokes a [`FunctionTarget`], resolving it through the registry only
    /// when the registry changed since its last call.
    pub async fn invoke_target(
        &self,
        target: &FunctionTarget,
        event: &str,
        request_id: &str,
        keep_logs: bool,
    ) -> Result<InvokeOutcome, FunctionsError> {
        let request = InvokeRequest { event, request_id, invoked_qualifier: &target.qualified, keep_logs, cold: false };
        let generation = self.registry.generation();
        let cached = target.resolved.load();
        if let Some(resolved) = cached.as_ref().filter(|r| r.generation == generation) {
            // Called through the guard, not a clone of the version's `Arc`:
            // every request would write that one count, from every worker.
            let loaded = resolved.pick(rand::random::<f64>);
            return self.counted(loaded, loaded.invoke(request).await);
        }
        drop(cached);

        let state = self.registry.snapshot();
        let resolved = state.resolve(&target.qualified)?;
        let f = resolved.function;
        // Remember the resolution when every version it can pick is loaded
        // (a cold start is not remembered: the next call finds it loaded).
        let primary = self.loaded_version(f, resolved.primary);
        let additional = match resolved.additional {
            Some((v, weight)) => self.loaded_version(f, VersionRef::Number(v)).map(|l| Some((l, weight))),
            None => Some(None),
        };
        if let (Some(primary), Some(additional)) = (primary, additional) {
            let resolved = Arc::new(Resolved { generation, primary, additional });
            target.resolved.store(Some(resolved.clone()));
            let loaded = resolved.pick(rand::random::<f64>).clone();
            return self.counted(&loaded, loaded.invoke(request).await);
        }

        let version = resolved.pick(rand::random::<f64>);
        let not_found = || RegistryError::NotFound(format!("Function not found: {}:{version}", f.name));
        let (loaded, cold) = match self.loaded_version(f, version) {
            Some(l) => (l, false),
            None => {
                let spec = f.spec(version).ok_or_else(not_found)?;
                let registry = self.registry.clone();
                let sha = spec.code_sha256.clone();
                // Boxed: the cold path's future is large, and inline it would
                // make every hot call's future (moved on each request) as large.
                // Warm only if something targets it (the next `retarget` says).
                Box::pin(self.runtime.prepare(&spec, move || registry.code().get(&sha), false)).await?
            }
        };
        self.counted(&loaded, loaded.invoke(InvokeRequest { cold, ..request }).await)
    }

    /// Counts an invocation in its version's metrics, or a throttle in its
    /// function's.
    fn counted(
        &self,
        loaded: &LoadedVersion,
        result: Result<InvokeOutcome, RuntimeError>,
    ) -> Result<InvokeOutcome, FunctionsError> {
        match result {
            Ok(outcome) => {
                let error = outcome.result.as_ref().err().map(|e| e.error_type.as_str());
                loaded.metrics().invoked(outcome.start.as_str(), outcome.duration, error);
                Ok(outcome)
            }
            Err(e) => {
                if let RuntimeError::Throttled { function, .. } = &e {
                    self.runtime.metrics().throttled(function);
                }
                Err(e.into())
            }
        }
    }

    /// The loaded code of one version of `f`, if it is loaded with the
    /// registry's code and configuration.
    fn loaded_version(&self, f: &FunctionRecord, version: VersionRef) -> Option<Arc<LoadedVersion>> {
        let (sha, config) = match version {
            VersionRef::Latest => (&f.code_sha256, &f.config),
            VersionRef::Number(n) => {
                let v = f.versions.get(&n)?;
                (&v.code_sha256, &v.config)
            }
        };
        self.runtime.loaded_with(&f.name, version, sha, config)
    }
}

/// A function qualifier as a stage's integration names it
/// (`ItemsFunction:prod`), with its resolution — alias to version(s) to
/// loaded code — kept until the registry changes. A request then reaches
/// its instance pool without parsing the qualifier or looking anything up;
/// an alias move, a publish or a code update changes the registry's
/// generation and the next call resolves afresh.
pub struct FunctionTarget {
    qualified: String,
    resolved: ArcSwapOption<Resolved>,
}

/// One resolution of a [`FunctionTarget`], valid for one registry generation.
struct Resolved {
    generation: u64,
    primary: Arc<LoadedVersion>,
    /// An alias's additional version and its weight.
    additional: Option<(Arc<LoadedVersion>, f64)>,
}

impl Resolved {
    /// The version for one call (the roll is drawn only for a weighted alias).
    fn pick(&self, roll: impl FnOnce() -> f64) -> &Arc<LoadedVersion> {
        weighted_pick(&self.primary, self.additional.as_ref().map(|(v, weight)| (v, *weight)), roll)
    }
}

impl FunctionTarget {
    pub fn new(qualified: impl Into<String>) -> Self {
        FunctionTarget { qualified: qualified.into(), resolved: ArcSwapOption::empty() }
    }

    /// `name[:qualifier]`.
    pub fn qualified(&self) -> &str {
        &self.qualified
    }
}

impl std::fmt::Debug for FunctionTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("FunctionTarget").field(&self.qualified).finish()
    }
}
