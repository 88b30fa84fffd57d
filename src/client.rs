//! How client commands find the admin API: `--admin URL` (or `WASMGATE_ADMIN`),
//! else the `admin_listen` of `--config` (default `gateway.toml` if present:
//! its `[server]` table only, and not at all when `--admin` and the token's
//! source are given);
//! the token from `--token` (or `WASMGATE_TOKEN`), else `admin.token` in
//! `--data-dir` (or `WASMGATE_DATA_DIR`, else the config's `data_dir`), refused
//! when its group or others may read or write it (`chmod 600` fixes it).

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use wasmgate_host::admin::client::AdminClient;
use wasmgate_host::config::{ClientSettings, load_client_settings};

#[derive(Args, Clone, Debug)]
pub struct ClientArgs {
    /// URL of the admin API (`http://` may be left out).
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
    /// The admin API's client. With `--admin` and a token (or a data
    /// directory) given, no configuration file is read; otherwise only its
    /// `[server]` table is, and a broken rest of the file is a warning.
    pub fn client(&self) -> anyhow::Result<AdminClient> {
        let settings = if self.admin.is_some() && (self.token.is_some() || self.data_dir.is_some()) {
            ClientSettings::default()
        } else {
            self.settings()?.unwrap_or_default()
        };
        let admin = match &self.admin {
            Some(url) => admin_url(url),
            None => format!("http://{}", settings.admin_listen),
        };
        if let Some(token) = &self.token {
            return Ok(AdminClient::new(&admin, token));
        }
        let data_dir = self.data_dir.clone().unwrap_or(settings.data_dir);
        Ok(AdminClient::from_data_dir(&admin, &data_dir)?)
    }

    /// The `[server]` table of `--config`, or of `./gateway.toml` if there
    /// is one.
    fn settings(&self) -> anyhow::Result<Option<ClientSettings>> {
        let path = self.config.clone().or_else(|| {
            let p = PathBuf::from("gateway.toml");
            p.exists().then_some(p)
        });
        let Some(path) = path else { return Ok(None) };
        let (settings, warning) =
            load_client_settings(&path).with_context(|| format!("reading the [server] table of {}", path.display()))?;
        if let Some(warning) = warning {
            eprintln!("warning: {warning}");
        }
        Ok(Some(settings))
    }
}

/// `--admin` as a URL: `127.0.0.1:9090` means `http://127.0.0.1:9090`.
pub fn admin_url(given: &str) -> String {
    if given.contains("://") { given.to_string() } else { format!("http://{given}") }
}

/// A path segment or query value for an admin API URL, percent-encoded.
pub fn enc(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// Prints an admin API answer as indented JSON (`--output json`, and the answers of commands that change state).
pub fn print_json(value: &serde_json::Value) {
    outln!("{}", serde_json::to_string_pretty(value).unwrap_or_default());
}
