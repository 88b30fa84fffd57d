//! The server process: locks the data directory, binds the gateway and
//! admin listeners (port 0 allowed; a start that cannot bind them stops
//! there, having changed nothing), then loads the registry and the compiled
//! versions, bootstraps `gateway.toml`'s functions and serves until shut
//! down.
//!
//! One server per data directory: before anything in it is touched (the
//! registry's start-up sweep deletes code blobs no committed row names, which
//! would include one another server has written but not committed yet), the
//! server takes an exclusive lock on `<data>/wasmgate.lock`, holds it until
//! it has shut down, and writes its pid and addresses there; a second server
//! is refused with them. The directory is created private (0700); the admin
//! token must be ([`token`]); and the admin API, whose bearer token travels
//! in clear text, listens on loopback unless `admin_allow_remote` says
//! otherwise.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::admin::{AdminApi, AdminListener, AdminOptions, token};
use crate::config::Config;
use crate::fsutil::LockFile;
use crate::functions::Functions;
use crate::gateway::Gateway;
use crate::metrics::Metrics;
use crate::registry::{Registry, RegistryError};
use crate::runtime::{Runtime, RuntimeError, RuntimeOptions};

/// Errors starting the server.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("registry")]
    Registry(#[from] RegistryError),
    #[error("runtime")]
    Runtime(#[from] RuntimeError),
    #[error("bootstrap")]
    Bootstrap(#[from] crate::bootstrap::BootstrapError),
    #[error("deploy")]
    Deploy(#[from] crate::gateway::deploy::DeployError),
    #[error(transparent)]
    Token(#[from] token::TokenError),
    #[error("data directory {}: {message}", path.display())]
    DataDir { path: PathBuf, message: String },
    #[error(
        "data directory {} is in use by another wasmgate server{}; stop it or use another --data-dir",
        path.display(),
        holder.as_deref().map(|h| format!(" ({h})")).unwrap_or_default()
    )]
    DataDirInUse { path: PathBuf, holder: Option<String> },
    #[error(
        "the admin API's address {addr} is not a loopback address: its bearer token would travel in clear text \
         to anyone on the network path. To allow it (behind TLS or on a private network), set \
         `admin_allow_remote = true` in [server] or pass --admin-allow-remote"
    )]
    AdminNotLoopback { addr: SocketAddr },
    #[error("could not listen on {addr}: {message}")]
    Bind { addr: SocketAddr, message: String },
    #[error("usage plans and API keys")]
    Catalog(#[from] crate::policy::catalog::CatalogError),
    #[error("policy store")]
    Store(#[from] crate::policy::store::StoreError),
    #[error("{0}")]
    ClockOffset(String),
}

/// `WASMGATE_CLOCK_OFFSET_SECS`: seconds the quota clock runs ahead of
/// (or, negative, behind) the system's — how a test crosses a quota period
/// without waiting for midnight. Unset: the system's clock.
pub const CLOCK_OFFSET_ENV: &str = "WASMGATE_CLOCK_OFFSET_SECS";

/// The policies' clock, and its offset from the environment.
fn policy_clock() -> Result<crate::policy::clock::Clock, ServerError> {
    let clock = crate::policy::clock::Clock::default();
    if let Ok(text) = std::env::var(CLOCK_OFFSET_ENV) {
        let secs: i64 = text
            .trim()
            .parse()
            .map_err(|_| ServerError::ClockOffset(format!("{CLOCK_OFFSET_ENV}={text:?} is not a number of seconds")))?;
        clock.advance(secs);
        tracing::warn!(offset_secs = secs, "the quota clock is offset from the system's ({CLOCK_OFFSET_ENV})");
    }
    Ok(clock)
}

/// Opens the catalog of plans and keys and the store their counters (and
/// the cache) live in: Redis when `shared_store` names one, else this
/// process, with quota counts journalled in the data directory.
async fn open_policies(config: &Config, data_dir: &Path) -> Result<crate::policy::Policies, ServerError> {
    use crate::policy::{Policies, catalog::Catalog, embedded::EmbeddedStore, redis::RedisStore, store::Store};
    let clock = policy_clock()?;
    let catalog = {
        let (dir, plans, keys, clock) =
            (data_dir.to_path_buf(), config.usage_plans.clone(), config.api_keys.clone(), clock.clone());
        tokio::task::spawn_blocking(move || Catalog::open(Some(&dir), plans, keys, clock))
            .await
            .expect("catalog open task")?
    };
    let store = match &config.server.shared_store {
        Some(url) => {
            let store = RedisStore::connect(url).await?;
            tracing::info!(url = store.url(), "throttles, quotas and the cache are shared through Redis");
            Store::Redis(store)
        }
        None => {
            let (dir, today) = (data_dir.to_path_buf(), clock.today());
            Store::Embedded(
                tokio::task::spawn_blocking(move || EmbeddedStore::open(&dir, today))
                    .await
                    .expect("quota journal task")?,
            )
        }
    };
    Ok(Policies::new(catalog, store, clock))
}

/// A started server.
pub struct RunningServer {
    pub gateway_addr: SocketAddr,
    pub admin_addr: SocketAddr,
    pub functions: Functions,
    pub gateway: Arc<Gateway>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    /// The data directory's lock, released once the server has shut down.
    lock: LockFile,
}

impl RunningServer {
    /// Stops accepting, finishes requests in flight, and returns.
    pub async fn shutdown(self) {
        let RunningServer { shutdown, tasks, lock, functions, gateway, .. } = self;
        let _ = shutdown.send(true);
        for task in tasks {
            let _ = task.await;
        }
        // Every request has finished: every quota count it made is written.
        let policies = gateway.policies().clone();
        match tokio::task::spawn_blocking(move || policies.flush_journal()).await {
            Ok(Err(e)) => tracing::error!("quota journal: {e}"),
            Err(e) => tracing::error!("quota journal: {e}"),
            Ok(Ok(())) => {}
        }
        // And every access line it made.
        let logs = gateway.clone();
        let _ = tokio::task::spawn_blocking(move || logs.flush_access_logs()).await;
        // Whatever uses the data directory goes before its lock.
        drop((gateway, functions));
        drop(lock);
    }
}

/// The lock file inside the data directory.
pub const LOCK_FILE: &str = "wasmgate.lock";

/// Creates the data directory (0700) if needed and locks it for this
/// process, noting its pid in the lock file.
fn lock_data_dir(data_dir: &Path) -> Result<LockFile, ServerError> {
    let io_error = |e: std::io::Error| ServerError::DataDir { path: data_dir.to_path_buf(), message: e.to_string() };
    crate::fsutil::create_private_dir(data_dir).map_err(io_error)?;
    match LockFile::try_acquire(&data_dir.join(LOCK_FILE)).map_err(io_error)? {
        Ok(lock) => {
            lock.write_note(&format!("pid {}", std::process::id())).map_err(io_error)?;
            Ok(lock)
        }
        Err(note) => {
            // What the holder wrote about itself: one short line.
            let note: String = note.lines().next().unwrap_or_default().trim().chars().take(200).collect();
            Err(ServerError::DataDirInUse { path: data_dir.to_path_buf(), holder: (!note.is_empty()).then_some(note) })
        }
    }
}

/// Releases the data directory after a start that failed before touching
/// it, removing it when this start made it.
fn undo_start(lock: LockFile, data_dir: &Path, made_it: bool, error: ServerError) -> ServerError {
    drop(lock);
    if made_it && let Err(e) = std::fs::remove_dir_all(data_dir) {
        tracing::warn!(path = %data_dir.display(), "could not remove the data directory this start made: {e}");
    }
    error
}

/// Refuses an admin listener off loopback unless `allow_remote`.
fn check_admin_listen(addr: SocketAddr, allow_remote: bool) -> Result<(), ServerError> {
    if addr.ip().to_canonical().is_loopback() {
        return Ok(());
    }
    if !allow_remote {
        return Err(ServerError::AdminNotLoopback { addr });
    }
    tracing::warn!(admin = %addr, "the admin API listens beyond loopback (admin_allow_remote): its token travels in clear text");
    Ok(())
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, ServerError> {
    TcpListener::bind(addr).await.map_err(|e| ServerError::Bind { addr, message: e.to_string() })
}

/// Starts everything `config` describes.
pub async fn start(config: &Config) -> Result<RunningServer, ServerError> {
    let started = Instant::now();
    process_start_seconds();
    let server = &config.server;
    check_admin_listen(server.admin_listen, server.admin_allow_remote)?;
    let data_dir = server.data_dir.clone();
    let new_data_dir = !data_dir.exists();
    // Before anything else in the data directory is touched.
    let lock = lock_data_dir(&data_dir)?;
    // Both listeners before the registry: a start that cannot listen has
    // changed nothing (and removes the data directory it made).
    let (gateway_listener, admin_listener) = match bind(server.listen).await {
        Ok(gateway) => match bind(server.admin_listen).await {
            Ok(admin) => (gateway, admin),
            Err(e) => return Err(undo_start(lock, &data_dir, new_data_dir, e)),
        },
        Err(e) => return Err(undo_start(lock, &data_dir, new_data_dir, e)),
    };
    let token = token::load_or_create(&data_dir)?;
    // The admin listener answers /healthz, /readyz and /metrics from now
    // on; the admin API itself once the server is ready.
    let metrics = Arc::new(Metrics::new());
    let admin_listener_handler = Arc::new(AdminListener::new(token.clone(), server.metrics_token, metrics.clone()));
    let (tx, rx) = watch::channel(false);
    let options = crate::http::ServeOptions {
        header_read_timeout: Duration::from_millis(server.header_read_timeout_ms),
        body_read_timeout: Duration::from_millis(server.body_read_timeout_ms),
        grace: Duration::from_millis(server.shutdown_grace_ms),
        preserve_header_case: true,
        max_in_flight: server.max_requests_in_flight,
    };
    let stop = |mut rx: watch::Receiver<bool>| async move {
        // Also when the sender is dropped: a start that fails stops it.
        let _ = rx.wait_for(|stop| *stop).await;
    };
    let admin_addr = admin_listener
        .local_addr()
        .map_err(|e| ServerError::Bind { addr: server.admin_listen, message: e.to_string() })?;
    tracing::info!(
        admin = %admin_addr,
        "admin listener bound: /healthz, /readyz and /metrics answer now, the admin API once the server is ready"
    );
    let admin_task = tokio::spawn(crate::http::serve(
        admin_listener,
        admin_listener_handler.clone(),
        stop(rx.clone()),
        crate::http::ServeOptions { preserve_header_case: false, ..options },
    ));
    let registry = {
        let dir = data_dir.clone();
        Arc::new(tokio::task::spawn_blocking(move || Registry::open(&dir)).await.expect("registry open task")?)
    };
    let runtime = Runtime::new(RuntimeOptions {
        artifacts_dir: &data_dir.join("artifacts"),
        engine: server.engine.clone(),
        outbound: server.outbound,
        metrics: metrics.clone(),
        recent_logs_bytes: server.recent_logs_bytes,
    })?;
    let functions = Functions::new(registry, runtime.clone());
    let loaded = functions.load_all().await.map_err(|e| match e {
        crate::functions::FunctionsError::Registry(r) => ServerError::Registry(r),
        other => ServerError::Runtime(RuntimeError::Engine(other.to_string())),
    })?;
    let stats = runtime.stats();
    tracing::info!(
        versions = loaded,
        compiles = stats.compiles,
        artifact_loads = stats.artifact_loads,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "registry loaded"
    );
    admin_listener_handler.readiness.registry_loaded();
    crate::bootstrap::apply(&functions, &config.functions).await?;
    let policies = Arc::new(open_policies(config, &data_dir).await?);
    let gateway = Arc::new(Gateway::new(functions.clone(), policies, data_dir.join("logs")));
    gateway.reload()?;
    for (api, stage) in gateway.deploy_undeployed(&config.apis).await? {
        tracing::info!(api, stage, "deployed a stage that had no deployment");
    }
    admin_listener_handler.readiness.stages_deployed();
    metrics.set_state(Box::new(StateCollector { functions: functions.clone(), gateway: gateway.clone() }));
    let gateway_addr =
        gateway_listener.local_addr().map_err(|e| ServerError::Bind { addr: server.listen, message: e.to_string() })?;

    // For whoever finds the directory locked (or reads the file).
    let note = format!("pid {}, gateway {gateway_addr}, admin API {admin_addr}", std::process::id());
    if let Err(e) = lock.write_note(&note) {
        tracing::warn!(path = %lock.path().display(), "could not note this server in its lock file: {e}");
    }

    let admin = Arc::new(AdminApi::new(
        functions.clone(),
        gateway.clone(),
        AdminOptions {
            token,
            max_code_bytes: server.max_code_bytes,
            config_path: config.path.clone(),
            stopping: rx.clone(),
        },
    ));
    admin_listener_handler.ready(admin);
    let tasks = vec![
        tokio::spawn(crate::http::serve(gateway_listener, gateway.clone(), stop(rx.clone()), options)),
        admin_task,
    ];
    let evictor = runtime.spawn_evictor(Duration::from_secs(1));
    let mut rx_evict = rx;
    tokio::spawn(async move {
        let _ = rx_evict.wait_for(|s| *s).await;
        evictor.abort();
    });
    tracing::info!(
        gateway = %gateway_addr,
        admin = %admin_addr,
        data_dir = %data_dir.display(),
        ready_ms = started.elapsed().as_millis() as u64,
        "wasmgate ready"
    );
    Ok(RunningServer { gateway_addr, admin_addr, functions, gateway, shutdown: tx, tasks, lock })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_admin_api_stays_on_loopback_unless_allowed() {
        for addr in ["127.0.0.1:9090", "127.1.2.3:0", "[::1]:9090", "[::ffff:127.0.0.1]:9090"] {
            assert!(check_admin_listen(addr.parse().unwrap(), false).is_ok(), "{addr}");
        }
        for addr in ["0.0.0.0:0", "[::]:9090", "10.0.0.1:9090", "[::ffff:10.0.0.1]:9090"] {
            let addr: SocketAddr = addr.parse().unwrap();
            let e = check_admin_listen(addr, false).unwrap_err().to_string();
            assert!(e.contains("admin_allow_remote = true") && e.contains("--admin-allow-remote"), "{e}");
            assert!(check_admin_listen(addr, true).is_ok(), "{addr}");
        }
    }

    #[test]
    fn a_locked_data_dir_is_refused_naming_its_holder() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let lock = lock_data_dir(&data).unwrap();
        let e = lock_data_dir(&data).unwrap_err().to_string();
        let pid = std::process::id();
        assert!(
            e.starts_with(&format!(
                "data directory {} is in use by another wasmgate server (pid {pid});",
                data.display()
            )),
            "{e}"
        );
        drop(lock);
        drop(lock_data_dir(&data).unwrap());
    }
}

/// What `/metrics` reads from the server's state at each scrape: each
/// function's calls in flight, each loaded version's idle instances, the
/// instance pool, the registry and the stages served.
struct StateCollector {
    functions: Functions,
    gateway: Arc<Gateway>,
}

impl std::fmt::Debug for StateCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StateCollector")
    }
}

impl prometheus_client::collector::Collector for StateCollector {
    fn encode(&self, mut encoder: prometheus_client::encoding::DescriptorEncoder) -> Result<(), std::fmt::Error> {
        use crate::metrics::{Labels, encode_counters, encode_gauges};
        let runtime = self.functions.runtime();
        let concurrency: Vec<(Labels, i64)> = runtime
            .concurrency()
            .into_iter()
            .map(|(function, n)| (vec![("function", function)], i64::from(n)))
            .collect();
        encode_gauges(
            &mut encoder,
            "wasmgate_function_concurrent_executions",
            "Invocations of a function running now, over its versions (Lambda's ConcurrentExecutions)",
            &concurrency,
        )?;
        let idle: Vec<(Labels, i64)> = self
            .functions
            .loaded_versions()
            .iter()
            .map(|loaded| {
                let spec = loaded.spec();
                (
                    vec![("function", spec.function.clone()), ("version", spec.version.to_string())],
                    loaded.idle_count() as i64,
                )
            })
            .collect();
        encode_gauges(&mut encoder, "wasmgate_pool_idle_instances", "Idle instances of a loaded version", &idle)?;
        let stats = runtime.stats();
        let alive = stats.instances_alive as i64;
        encode_gauges(
            &mut encoder,
            "wasmgate_pool_instances_alive",
            "Instances alive, busy and idle, all functions together",
            &[(vec![], alive)],
        )?;
        encode_gauges(
            &mut encoder,
            "wasmgate_pool_slots_free",
            "Instances that can still be made before the pool ([server] max_instances) is full",
            &[(vec![], i64::from(stats.max_instances) - alive)],
        )?;
        encode_gauges(
            &mut encoder,
            "wasmgate_registry_generation",
            "The registry's generation: it grows with every change",
            &[(vec![], self.functions.registry().generation() as i64)],
        )?;
        let (mut hits, mut misses) = (Vec::new(), Vec::new());
        for (stage, h, m) in self.gateway.policies().cache_counts() {
            let (api, stage) = stage.split_once('/').unwrap_or((stage.as_str(), ""));
            let labels: Labels = vec![("api", api.to_string()), ("stage", stage.to_string())];
            hits.push((labels.clone(), h));
            misses.push((labels, m));
        }
        encode_counters(
            &mut encoder,
            "wasmgate_api_cache_hits",
            "Requests a stage's cache answered (API Gateway's CacheHitCount)",
            &hits,
        )?;
        encode_counters(
            &mut encoder,
            "wasmgate_api_cache_misses",
            "Requests a stage's cache could have answered and did not (API Gateway's CacheMissCount)",
            &misses,
        )?;
        let stages: i64 = self.gateway.served().apis.iter().map(|a| a.stages.len() as i64).sum();
        encode_gauges(
            &mut encoder,
            "wasmgate_deployments_served",
            "Stages served, each from one deployment",
            &[(vec![], stages)],
        )?;
        encode_gauges(
            &mut encoder,
            "wasmgate_recent_logs_bytes",
            "Memory the recent logs (wasmgate logs) hold, all functions and stages together \
             (at most [server] recent_logs_mb)",
            &[(vec![], runtime.recent_logs().held() as i64)],
        )?;
        encode_gauges(
            &mut encoder,
            "wasmgate_process_start_time_seconds",
            "When this process started, in Unix seconds",
            &[(vec![], process_start_seconds())],
        )
    }
}

/// When this process started (the first call's time: `start` calls it early).
fn process_start_seconds() -> i64 {
    static STARTED: std::sync::OnceLock<i64> = std::sync::OnceLock::new();
    *STARTED.get_or_init(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
    })
}
