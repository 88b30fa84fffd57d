//! Validation and resolution of the raw configuration.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use toml::Spanned;

use super::api::{ApiSpec, resolve_api, resolve_throttle};
use super::raw::{RawAlias, RawApiKey, RawConfig, RawFunction, RawUsagePlan};
use super::{ConfigError, line_of};
use crate::policy::catalog::{self, ApiKey, ApiStage, Quota, Source, UsagePlan};
use crate::policy::clock::{Clock, Period};
use crate::registry::{AliasUpdate, VersionRef};
use crate::runtime::{EngineOptions, FunctionConfig, OutboundOptions};

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it came from.
    pub path: PathBuf,
    pub server: ServerConfig,
    pub functions: Vec<FunctionSeed>,
    pub apis: Vec<ApiSpec>,
    /// `[usage_plans.NAME]`.
    pub usage_plans: Vec<UsagePlan>,
    /// `[api_keys.NAME]`, their values hashed.
    pub api_keys: Vec<ApiKey>,
}

/// Listeners, data directory and limits.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub admin_listen: SocketAddr,
    /// `admin_listen` may be a non-loopback address (`server::start` refuses one otherwise).
    pub admin_allow_remote: bool,
    /// `/metrics` asks for the admin token (scrapers are let in without it by default).
    pub metrics_token: bool,
    pub data_dir: PathBuf,
    pub max_code_bytes: usize,
    pub engine: EngineOptions,
    /// Limits on functions' outbound HTTP.
    pub outbound: OutboundOptions,
    pub shutdown_grace_ms: u64,
    /// How long a client may take to send a request's headers.
    pub header_read_timeout_ms: u64,
    /// The longest pause between two pieces of a request's body.
    pub body_read_timeout_ms: u64,
    /// Most gateway requests in flight at once; beyond it 429 (API Gateway's
    /// throttling answer).
    pub max_requests_in_flight: usize,
    /// `redis://…`: where throttles, quotas and the cache are shared (else
    /// they live in this process).
    pub shared_store: Option<String>,
    /// What the recent logs (`wasmgate logs`) hold in memory together.
    pub recent_logs_bytes: usize,
}

/// Where a function's code comes from at bootstrap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeSource {
    /// A guest embedded in the binary.
    Guest(String),
    /// A component file.
    File(PathBuf),
    /// A Python or JavaScript source, built when the code is read
    /// ([`crate::build`]), with its handler (`MODULE.FUNCTION`) if named.
    Source { path: PathBuf, handler: Option<String> },
}

impl CodeSource {
    /// The component's bytes (built, for a source: a build takes seconds,
    /// so this blocks; call it off the async runtime's threads).
    pub fn read(&self) -> std::io::Result<Vec<u8>> {
        match self {
            CodeSource::Guest(name) => crate::guests::get(name)
                .map(<[u8]>::to_vec)
                .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, format!("no guest {name:?}"))),
            CodeSource::File(path) => std::fs::read(path),
            CodeSource::Source { path, handler } => {
                let opts = crate::build::BuildOptions { handler: handler.clone(), toolchains: None };
                let built = crate::build::build_source(path, &opts).map_err(std::io::Error::other)?;
                tracing::info!(
                    source = %path.display(),
                    handler = %built.handler,
                    toolchain = %built.toolchain,
                    size_mb = format_args!("{:.1}", built.wasm.len() as f64 / 1e6),
                    ms = built.elapsed.as_millis() as u64,
                    "built a function from its source"
                );
                Ok(built.wasm)
            }
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

    /// Where `field` is set in the table whose heading is at `table`: its
    /// `field = …` line, or its `[….field]` sub-table's heading, before the
    /// next table; the table's own heading when neither is found.
    pub(super) fn key_span(&self, table: std::ops::Range<usize>, field: &str) -> std::ops::Range<usize> {
        let Some(text) = self.text.get(table.start..) else { return table };
        let mut offset = table.start;
        for (i, line) in text.split_inclusive('\n').enumerate() {
            let trimmed = line.trim();
            let here = offset..offset + line.len();
            offset += line.len();
            if i == 0 {
                continue;
            }
            if trimmed.starts_with('[') {
                if trimmed.trim_end_matches(']').ends_with(&format!(".{field}")) {
                    return here;
                }
                break;
            }
            if trimmed.strip_prefix(field).map(str::trim_start).is_some_and(|r| r.starts_with('=')) {
                return here;
            }
        }
        table
    }

    /// A duration in milliseconds that must not be zero.
    fn positive_ms(&self, value: &Option<Spanned<u64>>, key: &str, default: u64) -> Result<u64, ConfigError> {
        match value {
            None => Ok(default),
            Some(t) if *t.get_ref() == 0 => self.err(t.span(), key, "must be at least 1"),
            Some(t) => Ok(*t.get_ref()),
        }
    }

    /// A number that must lie within `range`, if it is set.
    fn within<T: Copy + PartialOrd + std::fmt::Display>(
        &self,
        value: &Option<Spanned<T>>,
        key: &str,
        range: std::ops::RangeInclusive<T>,
    ) -> Result<Option<T>, ConfigError> {
        match value {
            Some(v) if !range.contains(v.get_ref()) => {
                self.err(v.span(), key, format!("must be between {} and {}", range.start(), range.end()))
            }
            v => Ok(v.as_ref().map(|v| *v.get_ref())),
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
    if let Some(mb) = cx.within(&s.max_memory_mb, "server.max_memory_mb", 1..=65536)? {
        engine.max_memory_mb = mb;
    }
    let max_code_bytes = cx.within(&s.max_code_mb, "server.max_code_mb", 1..=1024)?.map_or(64, |mb| mb as usize) << 20;
    let mut outbound = OutboundOptions::default();
    if let Some(mb) = cx.within(&s.max_outbound_response_mb, "server.max_outbound_response_mb", 1..=1024)? {
        outbound.max_response_bytes = mb << 20;
    }
    if let Some(n) = cx.within(&s.max_outbound_requests, "server.max_outbound_requests", 1..=10_000)? {
        outbound.max_concurrency = n as u32;
    }
    let recent_logs_bytes = cx
        .within(&s.recent_logs_mb, "server.recent_logs_mb", 1..=65536)?
        .map_or(crate::recent_logs::DEFAULT_BUDGET_MB, |mb| mb as usize)
        << 20;
    let server = ServerConfig {
        recent_logs_bytes,
        listen: cx.addr(&s.listen, "server.listen", "127.0.0.1:8080")?,
        admin_listen: cx.addr(&s.admin_listen, "server.admin_listen", super::DEFAULT_ADMIN_LISTEN)?,
        admin_allow_remote: s.admin_allow_remote.unwrap_or(false),
        metrics_token: s.metrics_token.unwrap_or(false),
        data_dir: base.join(s.data_dir.as_deref().unwrap_or(super::DEFAULT_DATA_DIR)),
        max_code_bytes,
        engine,
        outbound,
        shutdown_grace_ms: s.shutdown_grace_ms.unwrap_or(30_000),
        header_read_timeout_ms: cx.positive_ms(&s.header_read_timeout_ms, "server.header_read_timeout_ms", 30_000)?,
        body_read_timeout_ms: cx.positive_ms(&s.body_read_timeout_ms, "server.body_read_timeout_ms", 30_000)?,
        max_requests_in_flight: cx.positive_ms(
            &s.max_requests_in_flight,
            "server.max_requests_in_flight",
            crate::http::DEFAULT_MAX_IN_FLIGHT as u64,
        )? as usize,
        shared_store: match &s.shared_store {
            None => None,
            Some(url) => {
                let u = url.get_ref();
                if !(u.starts_with("redis://") || u.starts_with("rediss://") || u.starts_with("redis+unix://")) {
                    return cx.err(
                        url.span(),
                        "server.shared_store",
                        "a Redis URL: redis://HOST:PORT[/DB], rediss://… or redis+unix:///PATH",
                    );
                }
                Some(u.clone())
            }
        },
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
    let clock = Clock::default();
    let mut usage_plans = Vec::new();
    for (name, plan) in &raw.usage_plans {
        usage_plans.push(resolve_plan(&cx, name, plan, &apis, &clock)?);
    }
    let mut api_keys = Vec::new();
    for (name, key) in &raw.api_keys {
        api_keys.push(resolve_key(&cx, name, key, &raw.usage_plans, &clock)?);
    }
    let plans = usage_plans.iter().map(|p| (p.name.clone(), p.clone())).collect();
    let keys = api_keys.iter().map(|k| (k.name.clone(), k.clone())).collect();
    if let Err(e) = catalog::check_rules(&plans, &keys) {
        let span = raw.api_keys.values().next().map_or(0..0, |k| k.span());
        return cx.err(span, "api_keys", e.to_string());
    }
    Ok(Config { path: path.to_path_buf(), server, functions, apis, usage_plans, api_keys })
}

/// A declared usage plan; its stages and method throttles must name what
/// the file's APIs define.
fn resolve_plan(
    cx: &Ctx<'_>,
    name: &str,
    plan: &Spanned<RawUsagePlan>,
    apis: &[ApiSpec],
    clock: &Clock,
) -> Result<UsagePlan, ConfigError> {
    let key = format!("usage_plans.{name}");
    if let Err(e) = catalog::check_name("a usage plan", name) {
        return cx.err(plan.span(), key, e);
    }
    let raw = plan.get_ref();
    let mut stages = Vec::new();
    for s in &raw.stages {
        let stage = match ApiStage::parse(s.get_ref()) {
            Ok(stage) => stage,
            Err(e) => return cx.err(s.span(), format!("{key}.stages"), e),
        };
        let known = apis.iter().any(|a| a.name == stage.api && a.stages.contains_key(&stage.stage));
        if !known {
            return cx.err(
                s.span(),
                format!("{key}.stages"),
                format!("no stage {:?} of an API {:?} in this file", stage.stage, stage.api),
            );
        }
        stages.push(stage);
    }
    for (label, methods) in &raw.method_throttle {
        let mkey = format!("{key}.method_throttle.\"{label}\"");
        let Some(stage) = stages.iter_mut().find(|s| s.label() == *label) else {
            return cx.err(methods.span(), mkey, "not one of the plan's stages");
        };
        let api = apis.iter().find(|a| a.name == stage.api);
        for (method, t) in methods.get_ref() {
            let known = method.rsplit_once('/').is_some_and(|(path, m)| {
                api.is_some_and(|a| a.methods.iter().any(|x| x.resource_path == path && x.http_method == m))
            });
            if !known {
                return cx.err(
                    t.span(),
                    format!("{mkey}.\"{method}\""),
                    format!(
                        "{method:?} is not a method of {}: name one as RESOURCE/METHOD, e.g. /items/GET",
                        stage.api
                    ),
                );
            }
            let throttle = resolve_throttle(cx, &format!("{mkey}.\"{method}\""), t)?;
            stage.method_throttle.insert(method.clone(), throttle);
        }
    }
    let throttle = match &raw.throttle {
        Some(t) => Some(resolve_throttle(cx, &format!("{key}.throttle"), t)?),
        None => None,
    };
    let quota = match &raw.quota {
        None => None,
        Some(q) => {
            let Some(period) = Period::parse(q.get_ref().period.get_ref()) else {
                return cx.err(q.get_ref().period.span(), format!("{key}.quota.period"), "DAY, WEEK or MONTH");
            };
            let quota = Quota { limit: q.get_ref().limit, offset: q.get_ref().offset, period };
            if let Err(e) = quota.check() {
                return cx.err(q.span(), format!("{key}.quota"), e);
            }
            Some(quota)
        }
    };
    let resolved = UsagePlan {
        name: name.to_string(),
        description: raw.description.clone().unwrap_or_default(),
        stages,
        throttle,
        quota,
        created: clock.rfc3339(),
        created_day: clock.today(),
        source: Source::File,
    };
    // Each limit at its own line; then what is left to check, the stages.
    if let Some(Err(e)) = resolved.throttle.as_ref().map(|t| t.check()) {
        return cx.err(cx.key_span(plan.span(), "throttle"), format!("{key}.throttle"), e);
    }
    if let Some(Err(e)) = resolved.quota.as_ref().map(|q| q.check()) {
        return cx.err(cx.key_span(plan.span(), "quota"), format!("{key}.quota"), e);
    }
    if let Err(e) = catalog::check_plan(&resolved) {
        // A stage listed twice, or a method throttle of one.
        let field = if e.starts_with("stage ") { "stages" } else { "method_throttle" };
        return cx.err(cx.key_span(plan.span(), field), format!("{key}.{field}"), e);
    }
    Ok(resolved)
}

/// A declared API key: its value from the environment (hashed at once) or
/// its SHA-256.
fn resolve_key(
    cx: &Ctx<'_>,
    name: &str,
    raw_key: &Spanned<RawApiKey>,
    plans: &indexmap::IndexMap<String, Spanned<RawUsagePlan>>,
    clock: &Clock,
) -> Result<ApiKey, ConfigError> {
    let key = format!("api_keys.{name}");
    if let Err(e) = catalog::check_name("an API key", name) {
        return cx.err(raw_key.span(), key, e);
    }
    let raw = raw_key.get_ref();
    let sha256 = match (&raw.value_env, &raw.value_sha256) {
        (Some(var), None) => match std::env::var(var.get_ref()) {
            Ok(value) => {
                if let Err(e) = catalog::check_value(&value) {
                    return cx.err(var.span(), format!("{key}.value_env"), format!("${}: {e}", var.get_ref()));
                }
                catalog::digest_hex(&value)
            }
            Err(_) => {
                return cx.err(
                    var.span(),
                    format!("{key}.value_env"),
                    format!("the environment variable {} is not set (it holds the key's value)", var.get_ref()),
                );
            }
        },
        (None, Some(digest)) => {
            let d = digest.get_ref().to_ascii_lowercase();
            if d.len() != 64 || !d.bytes().all(|b| b.is_ascii_hexdigit()) {
                return cx.err(
                    digest.span(),
                    format!("{key}.value_sha256"),
                    "the value's SHA-256 as 64 hex digits (e.g. printf %s \"$KEY\" | sha256sum)",
                );
            }
            d
        }
        (Some(v), Some(_)) => return cx.err(v.span(), key, "give value_env or value_sha256, not both"),
        (None, None) => {
            return cx.err(
                raw_key.span(),
                key,
                "missing value_env (the environment variable holding the value) or value_sha256 (its SHA-256): \
                 a key's value is never written in the file",
            );
        }
    };
    let mut key_plans = Vec::new();
    for p in &raw.plans {
        if !plans.contains_key(p.get_ref()) {
            return cx.err(p.span(), format!("{key}.plans"), format!("no usage plan {:?} in this file", p.get_ref()));
        }
        key_plans.push(p.get_ref().clone());
    }
    Ok(ApiKey {
        name: name.to_string(),
        // The same on every node, and telling nothing about the value.
        id: catalog::digest_hex(&format!("wasmgate api key {name}"))[..10].to_string(),
        description: raw.description.clone().unwrap_or_default(),
        enabled: raw.enabled.unwrap_or(true),
        usage_id: sha256[..32].to_string(),
        sha256,
        prefix: None,
        plans: key_plans,
        invalidate_cache: raw.invalidate_cache.unwrap_or(false),
        created: clock.rfc3339(),
        source: Source::File,
    })
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
    if let (Some(h), None) = (&f.handler, &f.source) {
        return cx.err(h.span(), format!("{key}.handler"), "`handler` names the handler of a `source`; there is none");
    }
    let code = match (&f.guest, &f.wasm, &f.source) {
        (None, None, Some(source)) => {
            let path = base.join(source.get_ref());
            if !path.exists() {
                return cx.err(
                    source.span(),
                    format!("{key}.source"),
                    format!("no such file or directory: {}", path.display()),
                );
            }
            let handler = f.handler.as_ref().map(|h| h.get_ref().clone());
            let opts = crate::build::BuildOptions { handler: handler.clone(), toolchains: None };
            // The language and the handler's module are checked now; the
            // toolchain only when the build runs (a server whose registry
            // already has the function never builds it).
            if let Err(e) = crate::build::check_source(&path, &opts) {
                let at = f.handler.as_ref().map_or(source.span(), |h| h.span());
                return cx.err(at, format!("{key}.source"), e.to_string());
            }
            CodeSource::Source { path, handler }
        }
        (Some(g), None, None) => {
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
        (None, Some(w), None) => {
            let file = base.join(w.get_ref());
            if !file.is_file() {
                return cx.err(w.span(), format!("{key}.wasm"), format!("no such file: {}", file.display()));
            }
            CodeSource::File(file)
        }
        (None, None, None) => {
            return cx.err(
                span,
                key,
                "missing `guest` (a built-in guest), `wasm` (a component file) or `source` (Python or JavaScript)",
            );
        }
        _ => return cx.err(span, key, "give one of `guest`, `wasm` and `source`, not several"),
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
        allowed_outbound_hosts: f.allowed_outbound_hosts.clone().unwrap_or_default(),
    };
    if let Err(problem) = config.validate(server.engine.max_memory_mb) {
        return cx.err(cx.key_span(span, problem.field), format!("{key}.{}", problem.field), problem.message);
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
