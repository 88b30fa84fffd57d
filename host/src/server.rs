//! The server process: opens the data directory, loads the registry and the
//! compiled versions, bootstraps `gateway.toml`'s functions, binds the gateway
//! and admin listeners (port 0 allowed) and serves until shut down.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::admin::{AdminApi, AdminOptions, token};
use crate::config::Config;
use crate::functions::Functions;
use crate::gateway::Gateway;
use crate::registry::{Registry, RegistryError};
use crate::runtime::{Runtime, RuntimeError, RuntimeOptions};

/// Errors starting the server.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("registry: {0}")]
    Registry(#[from] RegistryError),
    #[error("runtime: {0}")]
    Runtime(#[from] RuntimeError),
    #[error("bootstrap: {0}")]
    Bootstrap(#[from] crate::bootstrap::BootstrapError),
    #[error("deploy: {0}")]
    Deploy(#[from] crate::gateway::deploy::DeployError),
    #[error("admin token in {path}: {message}")]
    Token { path: String, message: String },
    #[error("could not listen on {addr}: {message}")]
    Bind { addr: SocketAddr, message: String },
}

/// A started server.
pub struct RunningServer {
    pub gateway_addr: SocketAddr,
    pub admin_addr: SocketAddr,
    pub functions: Functions,
    pub gateway: Arc<Gateway>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl RunningServer {
    /// Stops accepting, finishes requests in flight, and returns.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, ServerError> {
    TcpListener::bind(addr).await.map_err(|e| ServerError::Bind { addr, message: e.to_string() })
}

/// Starts everything `config` describes.
pub async fn start(config: &Config) -> Result<RunningServer, ServerError> {
    let started = Instant::now();
    let server = &config.server;
    let data_dir = server.data_dir.clone();
    let registry = {
        let dir = data_dir.clone();
        Arc::new(tokio::task::spawn_blocking(move || Registry::open(&dir)).await.expect("registry open task")?)
    };
    let runtime =
        Runtime::new(RuntimeOptions { artifacts_dir: &data_dir.join("artifacts"), engine: server.engine.clone() })?;
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
    crate::bootstrap::apply(&functions, &config.functions).await?;
    let gateway = Arc::new(Gateway::new(functions.clone()));
    gateway.reload()?;
    for (api, stage) in gateway.deploy_undeployed(&config.apis).await? {
        tracing::info!(api, stage, "deployed a stage that had no deployment");
    }
    let token = token::load_or_create(&data_dir).map_err(|e| ServerError::Token {
        path: token::token_path(&data_dir).display().to_string(),
        message: e.to_string(),
    })?;

    let gateway_listener = bind(server.listen).await?;
    let admin_listener = bind(server.admin_listen).await?;
    let gateway_addr =
        gateway_listener.local_addr().map_err(|e| ServerError::Bind { addr: server.listen, message: e.to_string() })?;
    let admin_addr = admin_listener
        .local_addr()
        .map_err(|e| ServerError::Bind { addr: server.admin_listen, message: e.to_string() })?;

    let (tx, rx) = watch::channel(false);
    let options = crate::http::ServeOptions {
        header_read_timeout: Duration::from_millis(server.header_read_timeout_ms),
        body_read_timeout: Duration::from_millis(server.body_read_timeout_ms),
        grace: Duration::from_millis(server.shutdown_grace_ms),
        preserve_header_case: true,
    };
    let stop = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    let admin = Arc::new(AdminApi::new(
        functions.clone(),
        gateway.clone(),
        AdminOptions { token, max_code_bytes: server.max_code_bytes, config_path: config.path.clone() },
    ));
    let tasks = vec![
        tokio::spawn(crate::http::serve(gateway_listener, gateway.clone(), stop(rx.clone()), options)),
        tokio::spawn(crate::http::serve(
            admin_listener,
            admin,
            stop(rx.clone()),
            crate::http::ServeOptions { preserve_header_case: false, ..options },
        )),
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
    Ok(RunningServer { gateway_addr, admin_addr, functions, gateway, shutdown: tx, tasks })
}
