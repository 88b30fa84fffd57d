//! A stage's policy settings as `gateway.toml` resolves them (stage
//! throttling, the response cache and its per-method overrides, CORS per
//! resource), and what one method of a deployed stage applies
//! ([`MethodPolicy`]), compiled once per deploy.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::store::Bucket;
use super::store::Throttle;

/// API Gateway's largest cached response.
pub const MAX_CACHED_BYTES: usize = 1_048_576;
/// API Gateway's default cache TTL.
pub const DEFAULT_CACHE_TTL: u64 = 300;
/// A stage cache's default capacity (bytes).
pub const DEFAULT_CACHE_CAPACITY_MB: u64 = 64;
/// The console's default `Access-Control-Allow-Headers`.
pub const DEFAULT_ALLOW_HEADERS: &str = "Content-Type,X-Amz-Date,Authorization,X-Api-Key,X-Amz-Security-Token";

/// What a request that asks to refresh the cache without the right to gets
/// (`unauthorizedCacheControlHeaderStrategy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UnauthorizedStrategy {
    /// 403.
    FailWith403,
    /// Served as usual, with a `Warning` header saying the header was ignored (the default).
    #[default]
    SucceedWithResponseHeader,
    /// Served as usual.
    SucceedWithoutResponseHeader,
}

impl UnauthorizedStrategy {
    pub const NAMES: &[&str] = &["FAIL_WITH_403", "SUCCEED_WITH_RESPONSE_HEADER", "SUCCEED_WITHOUT_RESPONSE_HEADER"];

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "FAIL_WITH_403" => Some(Self::FailWith403),
            "SUCCEED_WITH_RESPONSE_HEADER" => Some(Self::SucceedWithResponseHeader),
            "SUCCEED_WITHOUT_RESPONSE_HEADER" => Some(Self::SucceedWithoutResponseHeader),
            _ => None,
        }
    }
}

/// A stage's cache.
#[derive(Debug, Clone, PartialEq)]
pub struct StageCache {
    pub enabled: bool,
    pub capacity_bytes: u64,
    pub ttl: u64,
    pub require_authorization: bool,
    pub unauthorized: UnauthorizedStrategy,
}

impl Default for StageCache {
    fn default() -> Self {
        StageCache {
            enabled: false,
            capacity_bytes: DEFAULT_CACHE_CAPACITY_MB * 1024 * 1024,
            ttl: DEFAULT_CACHE_TTL,
            require_authorization: true,
            unauthorized: UnauthorizedStrategy::default(),
        }
    }
}

/// A method's overrides of its stage's settings (`"/items/GET"`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MethodSettings {
    pub throttle: Option<Throttle>,
    /// `Some(false)` opts a GET out; `Some(true)` opts another method in.
    pub caching: Option<bool>,
    pub cache_ttl: Option<u64>,
}

/// A stage's policy settings.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StageSettings {
    pub throttle: Option<Throttle>,
    pub cache: StageCache,
    /// `"/items/GET"` → overrides.
    pub methods: indexmap::IndexMap<String, MethodSettings>,
}

/// CORS of one resource, as the console's "Enable CORS" sets it up.
#[derive(Debug, Clone, PartialEq)]
pub struct Cors {
    /// `["*"]`, or the origins allowed (the request's is echoed when listed).
    pub allow_origins: Vec<String>,
    /// Empty: the resource's methods and OPTIONS.
    pub allow_methods: Vec<String>,
    pub allow_headers: String,
    pub expose_headers: Option<String>,
    pub max_age: Option<u64>,
    pub allow_credentials: bool,
    /// Add the allow-origin header to the gateway's error responses on this
    /// resource too (a 403 or 429 a browser can read).
    pub on_errors: bool,
    /// The actual responses' headers when they do not depend on the
    /// request ([`Cors::varies`] is false): made once, copied per response.
    pub fixed: std::sync::OnceLock<Vec<(hyper::header::HeaderName, hyper::header::HeaderValue)>>,
}

impl Default for Cors {
    fn default() -> Self {
        Cors {
            allow_origins: vec!["*".into()],
            allow_methods: Vec::new(),
            allow_headers: DEFAULT_ALLOW_HEADERS.into(),
            expose_headers: None,
            max_age: None,
            allow_credentials: false,
            on_errors: true,
            fixed: std::sync::OnceLock::new(),
        }
    }
}

impl Cors {
    /// The `Access-Control-Allow-Origin` for a request from `origin`:
    /// `*`, or the origin itself when it is listed (`Vary: Origin` then).
    ///
    /// With credentials allowed, `*` allows nothing (browsers refuse it, and
    /// echoing any origin would hand every site the caller's credentials):
    /// only listed origins are echoed.
    pub fn allow_origin<'a>(&'a self, origin: Option<&'a str>) -> Option<&'a str> {
        if self.allow_origins.iter().any(|o| o == "*") && !self.allow_credentials {
            return Some("*");
        }
        let origin = origin?;
        self.allow_origins.iter().any(|o| o != "*" && o.eq_ignore_ascii_case(origin)).then_some(origin)
    }

    /// Whether the answer depends on the request's `Origin`.
    pub fn varies(&self) -> bool {
        self.allow_credentials || !self.allow_origins.iter().any(|o| o == "*")
    }

    /// The headers on an actual (not preflight) response.
    pub fn response_headers(&self, origin: Option<&str>) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if let Some(allowed) = self.allow_origin(origin) {
            out.push(("access-control-allow-origin", allowed.to_string()));
            if self.allow_credentials {
                out.push(("access-control-allow-credentials", "true".into()));
            }
            if let Some(expose) = &self.expose_headers {
                out.push(("access-control-expose-headers", expose.clone()));
            }
        }
        if self.varies() {
            out.push(("vary", "Origin".into()));
        }
        out
    }

    /// The actual responses' headers when they are the same for every
    /// request (`*` without credentials), as HTTP's types, made once.
    pub fn fixed_response_headers(&self) -> Option<&[(hyper::header::HeaderName, hyper::header::HeaderValue)]> {
        if self.varies() {
            return None;
        }
        let fixed = self.fixed.get_or_init(|| {
            self.response_headers(None)
                .into_iter()
                .filter_map(|(name, value)| {
                    Some((
                        hyper::header::HeaderName::from_static(name),
                        hyper::header::HeaderValue::from_str(&value).ok()?,
                    ))
                })
                .collect()
        });
        Some(fixed)
    }

    /// The headers of a preflight answer; `methods` are the resource's own.
    pub fn preflight_headers(&self, origin: Option<&str>, methods: &[String]) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if let Some(allowed) = self.allow_origin(origin) {
            out.push(("access-control-allow-origin", allowed.to_string()));
            let allow_methods =
                if self.allow_methods.is_empty() { methods.join(",") } else { self.allow_methods.join(",") };
            out.push(("access-control-allow-methods", allow_methods));
            out.push(("access-control-allow-headers", self.allow_headers.clone()));
            if let Some(age) = self.max_age {
                out.push(("access-control-max-age", age.to_string()));
            }
            if self.allow_credentials {
                out.push(("access-control-allow-credentials", "true".into()));
            }
        }
        if self.varies() {
            out.push(("vary", "Origin".into()));
        }
        out
    }
}

/// Hits and misses of one stage's cache (kept across deploys).
#[derive(Debug, Default)]
pub struct CacheStats {
    pub hits: AtomicU64,
    pub misses: AtomicU64,
}

impl CacheStats {
    pub fn hit(&self) {
        self.hits.fetch_add(1, Ordering::Relaxed);
    }
    pub fn miss(&self) {
        self.misses.fetch_add(1, Ordering::Relaxed);
    }
}

/// A cache-key parameter of a method.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyParameter {
    Path(String),
    Query(String),
    Header(String),
}

impl KeyParameter {
    /// `method.request.{path,querystring,header}.NAME`.
    pub fn parse(text: &str) -> Option<KeyParameter> {
        let rest = text.strip_prefix("method.request.")?;
        let (kind, name) = rest.split_once('.')?;
        if name.is_empty() {
            return None;
        }
        match kind {
            "path" => Some(KeyParameter::Path(name.to_string())),
            "querystring" => Some(KeyParameter::Query(name.to_string())),
            "header" => Some(KeyParameter::Header(name.to_ascii_lowercase())),
            _ => None,
        }
    }
}

/// A method's cache, when it caches.
#[derive(Debug)]
pub struct MethodCache {
    pub ttl: Duration,
    pub capacity_bytes: u64,
    /// The key's parameters beyond the path's own.
    pub key_parameters: Vec<KeyParameter>,
    pub require_authorization: bool,
    pub unauthorized: UnauthorizedStrategy,
    pub stats: Arc<CacheStats>,
}

/// What one method of a deployed stage applies.
#[derive(Debug, Default)]
pub struct MethodPolicy {
    /// `"api/stage"`.
    pub stage: Arc<str>,
    /// `"/items/GET"`.
    pub method: String,
    pub api_key_required: bool,
    /// The stage's throttle for this method (its own override, else the
    /// stage's).
    pub throttle: Option<Bucket>,
    pub cache: Option<MethodCache>,
    pub cors: Option<Arc<Cors>>,
}

impl MethodPolicy {
    /// Compiles a method's policy from its stage's settings.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        api: &str,
        stage: &str,
        resource_path: &str,
        http_method: &str,
        api_key_required: bool,
        settings: &StageSettings,
        key_parameters: &[KeyParameter],
        cors: Option<Arc<Cors>>,
        stats: impl FnOnce() -> Arc<CacheStats>,
    ) -> MethodPolicy {
        let label: Arc<str> = Arc::from(format!("{api}/{stage}"));
        let method = format!("{resource_path}/{http_method}");
        let own = settings.methods.get(&method);
        let throttle = own
            .and_then(|m| m.throttle)
            .map(|t| Bucket::new(format!("stage\0{label}\0{method}"), t))
            .or_else(|| settings.throttle.map(|t| Bucket::new(format!("stage\0{label}"), t)));
        let caches = settings.cache.enabled
            && own.and_then(|m| m.caching).unwrap_or(http_method == "GET")
            && own.and_then(|m| m.cache_ttl).unwrap_or(settings.cache.ttl) > 0;
        let cache = caches.then(|| MethodCache {
            ttl: Duration::from_secs(own.and_then(|m| m.cache_ttl).unwrap_or(settings.cache.ttl)),
            capacity_bytes: settings.cache.capacity_bytes,
            key_parameters: key_parameters.to_vec(),
            require_authorization: settings.cache.require_authorization,
            unauthorized: settings.cache.unauthorized,
            stats: stats(),
        });
        MethodPolicy { stage: label, method, api_key_required, throttle, cache, cors }
    }
}
