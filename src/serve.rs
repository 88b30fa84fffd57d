//! `wasmgate serve` and `wasmgate validate`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

#[derive(Args)]
pub struct ServeArgs {
    /// The configuration to serve.
    #[arg(long, short, default_value = "gateway.toml")]
    config: PathBuf,
    /// Data directory (registry, code, artifacts, admin token); overrides the config.
    #[arg(long, env = "WASMGATE_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Gateway address (port 0 picks a free port); overrides the config.
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Admin API address (port 0 picks a free port); overrides the config.
    #[arg(long)]
    admin_listen: Option<SocketAddr>,
    /// Let the admin API listen on a non-loopback address, although its bearer
    /// token travels in clear text (as `admin_allow_remote = true` in [server]).
    #[arg(long)]
    admin_allow_remote: bool,
}

#[derive(Args)]
pub struct ValidateArgs {
    /// The configuration to check.
    #[arg(long, short, default_value = "gateway.toml")]
    config: PathBuf,
}

pub async fn serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    // Reject a bad configuration before binding any port.
    let mut config = wasmgate_host::config::load(&args.config)?;
    if let Some(d) = args.data_dir {
        config.server.data_dir = d;
    }
    if let Some(a) = args.listen {
        config.server.listen = a;
    }
    if let Some(a) = args.admin_listen {
        config.server.admin_listen = a;
    }
    if args.admin_allow_remote {
        config.server.admin_allow_remote = true;
    }
    let server = wasmgate_host::server::start(&config).await?;
    // Printed (not only logged) so scripts and tests can read the bound ports.
    println!("wasmgate: gateway listening on http://{}", server.gateway_addr);
    println!("wasmgate: admin API listening on http://{}", server.admin_addr);
    shutdown_signal().await;
    tracing::info!("shutting down: finishing requests in flight");
    server.shutdown().await;
    Ok(ExitCode::SUCCESS)
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = ctrl_c.await;
                return;
            }
        };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

pub fn validate(args: ValidateArgs) -> anyhow::Result<ExitCode> {
    let config = wasmgate_host::config::load(&args.config)?;
    // What was checked: `gateway.toml: ok: 1 function; API ItemsAPI: 2 methods, CORS on 2 resources, stages dev, prod`.
    let mut summary = format!("{}: ok: {}", args.config.display(), count(config.functions.len(), "function"));
    for api in &config.apis {
        let stages: Vec<&str> = api.stages.keys().map(String::as_str).collect();
        let stages = if stages.is_empty() { "no stages".to_string() } else { format!("stages {}", stages.join(", ")) };
        let methods = api.methods.iter().filter(|m| !m.cors_preflight).count();
        let cors = if api.cors.is_empty() {
            String::new()
        } else {
            format!(", CORS on {}", count(api.cors.len(), "resource"))
        };
        summary.push_str(&format!("; API {}: {}{cors}, {stages}", api.name, count(methods, "method")));
    }
    println!("{summary}");
    Ok(ExitCode::SUCCESS)
}

/// `1 function`, `2 functions`.
fn count(n: usize, noun: &str) -> String {
    if n == 1 { format!("1 {noun}") } else { format!("{n} {noun}s") }
}
