//! `wasmgate serve` and `wasmgate validate`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use wasmgate_host::gateway::deploy::unresolved_calls;
use wasmgate_host::registry::{FunctionRecord, RegistryState};

use crate::client::ClientArgs;

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
    /// The admin API of the running server whose registry the functions
    /// are checked against (default: the file's admin_listen).
    #[arg(long, env = "WASMGATE_ADMIN")]
    admin: Option<String>,
    /// The server's data directory (to read its admin token).
    #[arg(long, env = "WASMGATE_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Admin token.
    #[arg(long, env = "WASMGATE_TOKEN", hide_env_values = true)]
    token: Option<String>,
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
    // Listened for from before the start (SIGUSR1's default is to end the
    // process), answered once the server runs.
    #[cfg(unix)]
    let usr1 = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::user_defined1());
    let server = wasmgate_host::server::start(&config).await?;
    // Printed (not only logged) so scripts and tests can read the bound
    // ports. A standard output nobody reads any more is no reason to stop
    // serving: a failure to write is let be.
    let listening = format!(
        "wasmgate: gateway listening on http://{}\nwasmgate: admin API listening on http://{}\n",
        server.gateway_addr, server.admin_addr
    );
    let _ = std::io::Write::write_all(&mut std::io::stdout().lock(), listening.as_bytes());
    #[cfg(unix)]
    reopen_logs_on(usr1, &server.gateway);
    shutdown_signal().await;
    tracing::info!("shutting down: finishing requests in flight");
    server.shutdown().await;
    Ok(ExitCode::SUCCESS)
}

/// Each SIGUSR1 has the access-log files opened again by their names, as
/// nginx does: logrotate renames a file, then signals.
#[cfg(unix)]
fn reopen_logs_on(
    usr1: std::io::Result<tokio::signal::unix::Signal>,
    gateway: &std::sync::Arc<wasmgate_host::gateway::Gateway>,
) {
    match usr1 {
        Ok(mut usr1) => {
            let gateway = gateway.clone();
            tokio::spawn(async move {
                while usr1.recv().await.is_some() {
                    gateway.reopen_access_logs();
                }
            });
        }
        Err(e) => tracing::warn!("SIGUSR1 cannot be listened for: access-log files will not be reopened: {e}"),
    }
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

/// The running server's functions, when one answers; else why not.
async fn registry_of_server(args: &ValidateArgs) -> Result<(String, RegistryState), String> {
    let client = ClientArgs {
        admin: args.admin.clone(),
        data_dir: args.data_dir.clone(),
        token: args.token.clone(),
        config: Some(args.config.clone()),
    }
    .client()
    .map_err(|e| format!("{e:#}"))?;
    let list = client.get_json("/v1/functions").await.map_err(|e| e.to_string())?;
    let mut state = RegistryState::default();
    for f in list["functions"].as_array().into_iter().flatten() {
        let name = f["name"].as_str().unwrap_or_default();
        let record =
            client.get_json(&format!("/v1/functions/{}", crate::client::enc(name))).await.map_err(|e| e.to_string())?;
        let record: FunctionRecord = serde_json::from_value(record).map_err(|e| format!("function {name}: {e}"))?;
        state.functions.insert(name.to_string(), record);
    }
    Ok((client.base().to_string(), state))
}

pub async fn validate(args: ValidateArgs) -> anyhow::Result<ExitCode> {
    let server = registry_of_server(&args).await;
    let registry = server.as_ref().ok().map(|(_, state)| state);
    let known = |name: &str| registry.is_some_and(|r| r.functions.contains_key(name));
    let config = wasmgate_host::config::load_with_functions(&args.config, &known)?;
    match &server {
        Ok((url, state)) => {
            // Each stage's function calls, as a deploy checks them; a
            // function the file declares and the registry lacks is created
            // by the deploy.
            let declared = |name: &str| config.functions.iter().any(|f| f.name == name);
            let mut problems = Vec::new();
            for api in &config.apis {
                for stage in api.stages.keys() {
                    let unresolved = unresolved_calls(api, stage, state, &declared);
                    problems.extend(unresolved.into_iter().map(|p| format!("{}/{stage}: {p}", api.name)));
                }
            }
            if !problems.is_empty() {
                anyhow::bail!(
                    "{}: against the registry of the server at {url}:\n  {}",
                    args.config.display(),
                    problems.join("\n  ")
                );
            }
            eprintln!(
                "checked against the registry of the server at {url} ({})",
                count(state.functions.len(), "function")
            );
        }
        Err(why) => {
            // The calls to the file's own functions, against what their
            // first start creates: `$LATEST`, version 1 if published, the
            // declared aliases.
            let mut problems = Vec::new();
            for api in &config.apis {
                for stage in api.stages.keys() {
                    for call in api.function_calls(stage) {
                        let Some(seed) = config.functions.iter().find(|f| f.name == call.function()) else { continue };
                        let known = match call.target().qualifier {
                            None | Some("$LATEST") => true,
                            Some("1") => seed.publish.is_some(),
                            Some(alias) => seed.aliases.iter().any(|(a, _)| a == alias),
                        };
                        if !known {
                            let aliases: Vec<&str> = seed.aliases.iter().map(|(a, _)| a.as_str()).collect();
                            let versions = if seed.publish.is_some() { "1" } else { "none" };
                            let error = format!(
                                "{} declares no such alias or version (aliases: {}; versions: {versions}; or $LATEST)",
                                seed.name,
                                wasmgate_host::suggest::list(aliases.iter().copied())
                            );
                            problems.push(format!("{}/{stage}: {}", api.name, call.explain(&error)));
                        }
                    }
                }
            }
            if !problems.is_empty() {
                anyhow::bail!(
                    "{} (checked the file alone: no server to check against, {why}):\n  {}\n\
                     (as the file declares them: a running server's registry may have more, and validate checks against it)",
                    args.config.display(),
                    problems.join("\n  ")
                );
            }
            eprintln!("checked the file alone (no server to check against: {why})");
        }
    }
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
    outln!("{summary}");
    Ok(ExitCode::SUCCESS)
}

/// `1 function`, `2 functions`.
fn count(n: usize, noun: &str) -> String {
    if n == 1 { format!("1 {noun}") } else { format!("{n} {noun}s") }
}
