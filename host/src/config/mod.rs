//! `gateway.toml`: parsed strictly ([`raw`], every table denies unknown keys),
//! then validated and resolved ([`Config`]) — relative paths made absolute,
//! guests and files checked, aliases checked against what bootstrap will
//! publish. Every error names the file, the line and the key. The rest of the
//! program only sees the resolved form.

pub mod api;
mod raw;
mod resolve;

use std::path::{Path, PathBuf};

pub use api::ApiSpec;
pub use raw::RawApi;
pub use resolve::{CodeSource, Config, FunctionSeed, ServerConfig};

/// What is wrong with a configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("could not read {path}: {message}")]
    Read { path: PathBuf, message: String },
    /// A syntax error, an unknown key or a value of the wrong type (toml's
    /// message shows the line, the column and the key).
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    /// A value that parses but cannot be used.
    #[error("{path}:{line}: {key}: {message}")]
    Invalid { path: PathBuf, line: usize, key: String, message: String },
}

/// `[server] admin_listen` when the file does not set it.
pub const DEFAULT_ADMIN_LISTEN: &str = "127.0.0.1:9090";
/// `[server] data_dir` when the file does not set it (beside the file).
pub const DEFAULT_DATA_DIR: &str = ".wasmgate";

/// What a client command needs of a configuration: where the admin API
/// listens and where its token is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientSettings {
    pub admin_listen: std::net::SocketAddr,
    pub data_dir: PathBuf,
}

impl Default for ClientSettings {
    /// A server's defaults, for a client without a configuration file.
    fn default() -> Self {
        ClientSettings {
            admin_listen: DEFAULT_ADMIN_LISTEN.parse().expect("a socket address"),
            data_dir: PathBuf::from(DEFAULT_DATA_DIR),
        }
    }
}

/// Reads only the `[server]` table of a configuration file (its
/// `admin_listen` and `data_dir`, with their defaults) for a client
/// command: the rest of the file — a template half-edited, a function
/// misdeclared — is not its business. When the file does not parse as
/// TOML at all, the `[server]` table's own lines are read, and the
/// returned warning says the rest of the file is broken.
pub fn load_client_settings(path: &Path) -> Result<(ClientSettings, Option<String>), ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::Read { path: path.to_path_buf(), message: e.to_string() })?;
    let (table, warning) = match text.parse::<toml::Table>() {
        Ok(mut whole) => (whole.remove("server"), None),
        Err(e) => {
            let server = server_table_text(&text);
            let table = server.parse::<toml::Table>().map_err(|e| ConfigError::Parse {
                path: path.to_path_buf(),
                message: format!("[server]: {}", e.to_string().trim_end()),
            })?;
            let first = e.to_string().lines().next().unwrap_or_default().to_string();
            let warning = format!("{}: {first} (only its [server] table was read)", path.display());
            (table.get("server").cloned(), Some(warning))
        }
    };
    let base = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let server = table.unwrap_or_else(|| toml::Value::Table(Default::default()));
    let invalid = |key: &str, message: String| ConfigError::Parse {
        path: path.to_path_buf(),
        message: format!("server.{key}: {message}"),
    };
    let admin_listen = match server.get("admin_listen") {
        None => ClientSettings::default().admin_listen,
        Some(toml::Value::String(s)) => {
            s.parse().map_err(|_| invalid("admin_listen", format!("{s:?} is not an address like 127.0.0.1:9090")))?
        }
        Some(other) => return Err(invalid("admin_listen", format!("expected an address string, found {other}"))),
    };
    let data_dir = match server.get("data_dir") {
        None => base.join(DEFAULT_DATA_DIR),
        Some(toml::Value::String(s)) => base.join(s),
        Some(other) => return Err(invalid("data_dir", format!("expected a path string, found {other}"))),
    };
    Ok((ClientSettings { admin_listen, data_dir }, warning))
}

/// The lines of `text`'s `[server]` table, its heading included.
fn server_table_text(text: &str) -> String {
    let mut out = String::new();
    let mut inside = false;
    for line in text.lines() {
        let heading = line.trim_start();
        if heading.starts_with('[') {
            inside = heading.starts_with("[server]");
        }
        if inside {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// Reads and validates a configuration file.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::Read { path: path.to_path_buf(), message: e.to_string() })?;
    parse(&text, path)
}

/// Validates configuration text; `path` is used for messages and to resolve
/// relative paths. Function integrations may name the functions the file
/// declares.
pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
    parse_with_functions(text, path, &|_| false)
}

/// Like [`parse`], with more functions integrations may name (those in the
/// registry, for a running server).
pub fn parse_with_functions(
    text: &str,
    path: &Path,
    functions: api::KnownFunctions<'_>,
) -> Result<Config, ConfigError> {
    let raw: raw::RawConfig = from_toml(text, path)?;
    resolve::resolve(raw, text, path, functions)
}

/// Reads and validates a configuration file, with more known functions.
pub fn load_with_functions(path: &Path, functions: api::KnownFunctions<'_>) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::Read { path: path.to_path_buf(), message: e.to_string() })?;
    parse_with_functions(&text, path, functions)
}

/// An API as a deployment stores it: TOML text of its definition.
pub fn api_snapshot(api: &RawApi) -> String {
    toml::to_string(api).unwrap_or_default()
}

/// Resolves a stored deployment's API (functions are checked per request).
pub fn resolve_api_snapshot(name: &str, text: &str) -> Result<ApiSpec, ConfigError> {
    let path = Path::new("deployment");
    let raw: toml::Spanned<RawApi> = from_toml(text, path)?;
    api::resolve_api(&resolve::Ctx { text, path }, name, &raw, &|_| true)
}

/// Deserialises TOML text. A value of the wrong type or an unknown key is
/// reported with its dotted key (`functions.ItemsFunction.timeout_ms`)
/// before toml's own message, which gives the line and shows it.
fn from_toml<T: serde::de::DeserializeOwned>(text: &str, path: &Path) -> Result<T, ConfigError> {
    let fail = |key: String, e: toml::de::Error| {
        let message = e.to_string();
        let message = message.trim_end();
        let message = if key.is_empty() { message.to_string() } else { format!("{key}: {message}") };
        ConfigError::Parse { path: path.to_path_buf(), message }
    };
    let de = toml::Deserializer::parse(text).map_err(|e| fail(String::new(), e))?;
    serde_path_to_error::deserialize(de).map_err(|e| {
        let key = dotted_key(e.path());
        fail(key, e.into_inner())
    })
}

/// A deserialisation path as TOML spells a key: `apis.A.resources."/x".GET`,
/// array elements as `responses[0]`.
fn dotted_key(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut key = String::new();
    for segment in path.iter() {
        match segment {
            // `Spanned` values add a private segment of toml's.
            Segment::Map { key: k } if k.starts_with("$__serde_spanned") => {}
            Segment::Map { key: k } | Segment::Enum { variant: k } => {
                if !key.is_empty() {
                    key.push('.');
                }
                if !k.is_empty() && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
                    key.push_str(k);
                } else {
                    key.push_str(&format!("{k:?}"));
                }
            }
            Segment::Seq { index } => key.push_str(&format!("[{index}]")),
            Segment::Unknown => {}
        }
    }
    key
}

/// The 1-based line of a byte offset.
pub(crate) fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].bytes().filter(|b| *b == b'\n').count() + 1
}
