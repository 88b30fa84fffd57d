//! How client commands find the admin API: `--admin URL` (or `WASMGATE_ADMIN`),
//! else the `admin_listen` of `--config` (default `gateway.toml` if present);
//! the token from `--token` (or `WASMGATE_TOKEN`), else `admin.token` in
//! `--data-dir` (or `WASMGATE_DATA_DIR`, else the config's `data_dir`), refused
//! when its group or others may read or write it (`chmod 600` fixes it).

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use wasmgate_host::admin::client::AdminClient;

#[derive(Args, Clone, Debug)]
pub struct ClientArgs {
    /// URL of the admin API.
    #[arg(long, env = "WASMGATE_ADMIN", global = true)]
    pub admin: Option<String>,
    /// Data directory of the server (to read its admin token).
    #[arg(long, env = "WASMGATE_DATA_DIR", global = true)]
    pub data_dir: Option<PathBuf>,
    /// Admin token (instead of reading it from the data directory).
    #[arg(long, env = "WASMGATE_TOKEN", global = true, hide_env_values = true)]
    pub token: Option<String>,
    /// gateway.toml to take the admin address and data directory from.
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
}

impl ClientArgs {
    pub fn client(&self) -> anyhow::Result<AdminClient> {
        let config_path = self.config.clone().or_else(|| {
            let p = PathBuf::from("gateway.toml");
            p.exists().then_some(p)
        });
        let config = match &config_path {
            Some(p) => Some(wasmgate_host::config::load(p).with_context(|| format!("reading {}", p.display()))?),
            None => None,
        };
        let admin = self.admin.clone().unwrap_or_else(|| {
            let addr =
                config.as_ref().map(|c| c.server.admin_listen.to_string()).unwrap_or_else(|| "127.0.0.1:9090".into());
            format!("http://{addr}")
        });
        if let Some(token) = &self.token {
            return Ok(AdminClient::new(&admin, token));
        }
        let data_dir = self
            .data_dir
            .clone()
            .or_else(|| config.as_ref().map(|c| c.server.data_dir.clone()))
            .unwrap_or_else(|| PathBuf::from(".wasmgate"));
        Ok(AdminClient::from_data_dir(&admin, &data_dir)?)
    }
}

/// A path segment or query value for an admin API URL, percent-encoded.
pub fn enc(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// Prints an admin API answer as indented JSON (a command's `--json`).
pub fn print_json(value: &serde_json::Value) {
    println!("{}", serde_json::to_string_pretty(value).unwrap_or_default());
}
