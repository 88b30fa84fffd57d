//! Validation and resolution of the raw configuration.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use toml::Spanned;

use super::api::{ApiSpec, resolve_api};
use super::raw::{RawAlias, RawConfig, RawFunction};
use super::{ConfigError, line_of};
use crate::registry::{AliasUpdate, VersionRef};
use crate::runtime::{EngineOptions, FunctionConfig};

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it came from.
    pub path: PathBuf,
    pub server: ServerConfig,
    pub functions: Vec<FunctionSeed>,
    pub apis: Vec<ApiSpec>,
}

/// Listeners, data directory and limits.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub admin_listen: SocketAddr,
    /// `admin_listen` may be a non-loopback address (`server::start` refuses one otherwise).
    pub admin_allow_remote: bool,
    pub data_dir: PathBuf,
    pub max_code_bytes: usize,
    pub engine: EngineOptions,
    pub shutdown_grace_ms: u64,
    /// How long a client may take to send a request's headers.
    pub header_read_timeout_ms: u64,
    /// The longest pause between two pieces of a request's body.
    pub body_read_timeout_ms: u64,
    /// Most gateway requests in flight at once; beyond it 429 (API Gateway's
    /// throttling answer).
    pub max_requests_in_flight: usize,
}

/// Where a function's code comes from at bootstrap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeSource {
    /// A guest embedded in the binary.
    Guest(String),
    /// A component file.
    File(PathBuf),
}

impl CodeSource {
    pub fn read(&self) -> std::io::Result<Vec<u8>> {
        match self {
            CodeSource::Guest(name) => crate::guests::get(name)
                .map(<[u8]>::to_vec)
                .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, format!("no guest {name:?}"))),
            CodeSource::File(path) => std::fs::read(path),
        }
    }
}

/// A function to create at start-up if it does not exist yet.
#[derive(Debug, Clone)]
pub struct FunctionSeed {
    pub name: String,
    pub code: CodeSource,
    pub description: Option<String>,
    pub config: FunctionConfig,
    /// Publish version 1 with this description.
    pub publish: Option<String>,
    pub aliases: Vec<(String, AliasUpdate)>,
}

pub(super) struct Ctx<'a> {
    pub(super) text: &'a str,
    pub(super) path: &'a Path,
}

impl Ctx<'_> {
    pub(super) fn err<T>(
        &self,
        span: std::ops::Range<usize>,
        key: impl Into<String>,
        message: impl Into<String>,
    ) -> Result<T, ConfigError> {
        Err(ConfigError::Invalid {
            path: self.path.to_path_buf(),
            line: line_of(self.text, span.start),
            key: key.into(),
            message: message.into(),
        })
    }

    /// A duration in milliseconds that must not be zero.
    fn positive_ms(&self, value: &Option<Spanned<u64>>, key: &str, default: u64) -> Result<u64, ConfigError> {
        match value {
            None => Ok(default),
            Some(t) if *t.get_ref() == 0 => self.err(t.span(), key, "must be at least 1"),
            Some(t) => Ok(*t.get_ref()),
        }
    }

    fn addr(&self, value: &Option<Spanned<String>>, key: &str, default: &str) -> Result<SocketAddr, ConfigError> {
        match value {
            None => Ok(default.parse().expect("default address parses")),
            Some(v) => match v.get_ref().parse() {
                Ok(a) => Ok(a),
                Err(_) => self.err(v.span(), key, format!("{:?} is not an address like 127.0.0.1:8080", v.get_ref())),
            },
        }
    }
}

pub(super) fn resolve(
    raw: RawConfig,
    text: &str,
    path: &Path,
    other_functions: super::api::KnownFunctions<'_>,
) -> Result<Config, ConfigError> {
    let cx = Ctx { text, path };
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let base = if base.as_os_str().is_empty() { PathBuf::from(".") } else { base };
    let s = &raw.server;
    let mut engine = EngineOptions::default();
    if let Some(n) = &s.max_instances {
        if *n.get_ref() == 0 {
            return cx.err(n.span(), "server.max_instances", "must be at least 1");
        }
        engine.max_instances = *n.get_ref();
    }
    if let Some(n) = &s.max_memory_mb {
        if *n.get_ref() == 0 || *n.get_ref() > 65536 {
            return cx.err(n.span(), "server.max_memory_mb", "must be between 1 and 65536");
        }
        engine.max_memory_mb = *n.get_ref();
    }
    let max_code_bytes = match &s.max_code_mb {
        None => 64 << 20,
        Some(n) if *n.get_ref() == 0 || *n.get_ref() > 1024 => {
            return cx.err(n.span(), "server.max_code_mb", "must be between 1 and 1024");
        }
        Some(n) => (*n.get_ref() as usize) << 20,
    };
    let server = ServerConfig {
        listen: cx.addr(&s.listen, "server.listen", "127.0.0.1:8080")?,
        admin_listen: cx.addr(&s.admin_listen, "server.admin_listen", "127.0.0.1:9090")?,
        admin_allow_remote: s.admin_allow_remote.unwrap_or(false),
        data_dir: base.join(s.data_dir.as_deref().unwrap_or(".wasmgate")),
        max_code_bytes,
        engine,
        shutdown_grace_ms: s.shutdown_grace_ms.unwrap_or(30_000),
        header_read_timeout_ms: cx.positive_ms(&s.header_read_timeout_ms, "server.header_read_timeout_ms", 30_000)?,
        body_read_timeout_ms: cx.positive_ms(&s.body_read_timeout_ms, "server.body_read_timeout_ms", 30_000)?,
        max_requests_in_flight: cx.positive_ms(
            &s.max_requests_in_flight,
            "server.max_requests_in_flight",
            crate::http::DEFAULT_MAX_IN_FLIGHT as u64,
        )? as usize,
    };

    let mut functions = Vec::new();
    for (name, f) in &raw.functions {
        let key = format!("functions.{name}");
        if let Err(e) = crate::registry::validate_function_name(name) {
            return cx.err(f.span(), key, e.to_string());
        }
        functions.push(resolve_function(&cx, &base, name, f.get_ref(), f.span(), &key, &server)?);
    }
    let known = |name: &str| raw.functions.contains_key(name) || other_functions(name);
    let mut apis: Vec<ApiSpec> = Vec::new();
    for (name, api) in &raw.apis {
        let spec = resolve_api(&cx, name, api, &known)?;
        // Two APIs must not claim the same requests.
        if let Some(other) = apis.iter().find(|o| {
            o.base_path == spec.base_path
                && ((o.hosts.is_empty() && spec.hosts.is_empty()) || o.hosts.iter().any(|h| spec.hosts.contains(h)))
        }) {
            return cx.err(
                api.span(),
                format!("apis.{name}"),
                format!("serves the same requests as API {:?}: give one a different base_path or hosts", other.name),
            );
        }
        apis.push(spec);
    }
    Ok(Config { path: path.to_path_buf(), server, functions, apis })
}

fn resolve_function(
    cx: &Ctx<'_>,
    base: &Path,
    name: &str,
    f: &RawFunction,
    span: std::ops::Range<usize>,
    key: &str,
    server: &ServerConfig,
) -> Result<FunctionSeed, ConfigError> {
    let code = match (&f.guest, &f.wasm) {
        (Some(g), None) => {
            if crate::guests::get(g.get_ref()).is_none() {
                let known: Vec<&str> = crate::guests::names().collect();
                return cx.err(
                    g.span(),
                    format!("{key}.guest"),
                    format!("unknown guest {:?} (built-in guests: {})", g.get_ref(), known.join(", ")),
                );
            }
            CodeSource::Guest(g.get_ref().clone())
        }
        (None, Some(w)) => {
            let file = base.join(w.get_ref());
            if !file.is_file() {
                return cx.err(w.span(), format!("{key}.wasm"), format!("no such file: {}", file.display()));
            }
            CodeSource::File(file)
        }
        (Some(g), Some(_)) => return cx.err(g.span(), key, "give either `guest` or `wasm`, not both"),
        (None, None) => return cx.err(span, key, "missing `guest` (a built-in guest) or `wasm` (a component file)"),
    };
    let d = FunctionConfig::default();
    let config = FunctionConfig {
        memory_mb: f.memory_mb.unwrap_or(d.memory_mb),
        timeout_ms: f.timeout_ms.unwrap_or(d.timeout_ms),
        env: f.env.clone(),
        min_warm: f.min_warm.unwrap_or(d.min_warm),
        max_concurrency: f.max_concurrency,
        idle_ttl: f.idle_ttl.unwrap_or(d.idle_ttl),
        reuse: f.reuse.unwrap_or(d.reuse),
    };
    if let Err(message) = config.validate(server.engine.max_memory_mb) {
        return cx.err(span, key, message);
    }
    let mut aliases = Vec::new();
    for (alias, a) in &f.aliases {
        let akey = format!("{key}.aliases.{alias}");
        if let Err(e) = crate::registry::validate_alias_name(alias) {
            return cx.err(a.span(), akey, e.to_string());
        }
        let (version, weights, description) = match a.get_ref() {
            RawAlias::Version(v) => (v.as_str(), None, None),
            RawAlias::Weighted { version, weights, description } => {
                (version.as_str(), Some(weights), description.clone())
            }
        };
        let Some(version) = VersionRef::parse(version) else {
            return cx.err(a.span(), akey, format!("version {version:?} must be \"$LATEST\" or a number"));
        };
        // Bootstrap publishes at most version 1.
        let available = |v: VersionRef| v == VersionRef::Latest || (f.publish.is_some() && v == VersionRef::Number(1));
        if !available(version) {
            return cx.err(
                a.span(),
                akey,
                format!(
                    "version {version} will not exist: bootstrap publishes only version 1, and only with `publish`"
                ),
            );
        }
        let additional_version = match weights.map(|w| w.iter().collect::<Vec<_>>()).unwrap_or_default().as_slice() {
            [] => None,
            [(v, w)] => match VersionRef::parse(v) {
                Some(VersionRef::Number(n)) if available(VersionRef::Number(n)) && VersionRef::Number(n) != version => {
                    Some((n, **w))
                }
                _ => {
                    return cx.err(
                        a.span(),
                        akey,
                        format!("weighted version {v:?} is not a published version other than {version}"),
                    );
                }
            },
            _ => return cx.err(a.span(), akey, "at most one weighted additional version"),
        };
        aliases.push((alias.clone(), AliasUpdate { version, additional_version, description }));
    }
    Ok(FunctionSeed {
        name: name.to_string(),
        code,
        description: f.description.clone(),
        config,
        publish: f.publish.clone(),
        aliases,
    })
}
