//! The configuration exactly as written (serde), before validation.

use std::collections::BTreeMap;

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use toml::Spanned;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    #[serde(default)]
    pub server: RawServer,
    #[serde(default)]
    pub functions: IndexMap<String, Spanned<RawFunction>>,
    #[serde(default)]
    pub apis: IndexMap<String, Spanned<RawApi>>,
    /// Usage plans every node declares alike.
    #[serde(default)]
    pub usage_plans: IndexMap<String, Spanned<RawUsagePlan>>,
    /// API keys every node declares alike (the value from the environment, or its digest).
    #[serde(default)]
    pub api_keys: IndexMap<String, Spanned<RawApiKey>>,
}

/// A usage plan.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawUsagePlan {
    pub description: Option<String>,
    /// `"API/stage"`.
    #[serde(default)]
    pub stages: Vec<Spanned<String>>,
    pub throttle: Option<Spanned<RawThrottle>>,
    pub quota: Option<Spanned<RawQuota>>,
    /// `"API/stage"` → `"/resource/METHOD"` → throttle.
    #[serde(default)]
    pub method_throttle: IndexMap<String, Spanned<IndexMap<String, Spanned<RawThrottle>>>>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawThrottle {
    /// Requests per second.
    pub rate: f64,
    pub burst: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawQuota {
    pub limit: u64,
    #[serde(default)]
    pub offset: u64,
    /// `DAY`, `WEEK` or `MONTH`.
    pub period: Spanned<String>,
}

/// An API key.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawApiKey {
    pub description: Option<String>,
    #[serde(default)]
    pub plans: Vec<Spanned<String>>,
    /// The environment variable holding the value.
    pub value_env: Option<Spanned<String>>,
    /// The value's SHA-256, hex.
    pub value_sha256: Option<Spanned<String>>,
    pub enabled: Option<bool>,
    /// May refresh cached responses with `Cache-Control: max-age=0`.
    pub invalidate_cache: Option<bool>,
}

/// An API (a REST API of API Gateway). Serializable: a deployment stores its
/// API as TOML text and resolves it again when loaded.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawApi {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Serve this API under `/{base_path}/{stage}/…` (several APIs on one server).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_path: Option<Spanned<String>>,
    /// Serve this API for these `Host` names (instead of, or as well as, a base path).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub binary_media_types: Vec<String>,
    /// JSON Schema (draft 4) models by name.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub models: IndexMap<String, Spanned<RawModel>>,
    /// Request validators by name (`validate_body`, `validate_parameters`).
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub request_validators: IndexMap<String, Spanned<RawValidator>>,
    /// Resource path → HTTP method (or `ANY`) → method.
    #[serde(default)]
    pub resources: IndexMap<String, Spanned<IndexMap<String, Spanned<RawMethod>>>>,
    #[serde(default)]
    pub stages: IndexMap<String, Spanned<RawStage>>,
    /// Resource path → CORS ("Enable CORS" on the resource).
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub cors: IndexMap<String, Spanned<RawCors>>,
    /// Customised gateway responses by type (`MISSING_AUTHENTICATION_TOKEN`, `DEFAULT_4XX` …).
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub gateway_responses: IndexMap<String, Spanned<RawGatewayResponse>>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawModel {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The JSON Schema, as JSON text.
    pub schema: Spanned<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawValidator {
    #[serde(default)]
    pub validate_body: bool,
    #[serde(default)]
    pub validate_parameters: bool,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawMethod {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_required: Option<bool>,
    /// A validator of `request_validators`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_validator: Option<Spanned<String>>,
    /// `method.request.{path,querystring,header}.NAME` → required.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub request_parameters: IndexMap<String, Spanned<bool>>,
    /// Content type → model name.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub request_models: IndexMap<String, Spanned<String>>,
    pub integration: Spanned<RawIntegration>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawIntegration {
    /// `mock`, `function` or `function-proxy`.
    #[serde(rename = "type")]
    pub kind: Spanned<String>,
    /// `Name`, `Name:alias`, `Name:${stageVariables.x}` (function integrations).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function: Option<Spanned<String>>,
    /// `WHEN_NO_MATCH` (default), `WHEN_NO_TEMPLATES` or `NEVER`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passthrough_behavior: Option<Spanned<String>>,
    /// 50–29000 ms (default 29000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<Spanned<u64>>,
    /// Content type → mapping template.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub request_templates: IndexMap<String, Spanned<String>>,
    /// `method.request.{path,querystring,header}.NAME` that key the stage's
    /// cache (besides the method and the path, path parameters included).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cache_key_parameters: Vec<Spanned<String>>,
    /// Integration responses, chosen by `selection_pattern`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub responses: Vec<Spanned<RawIntegrationResponse>>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawIntegrationResponse {
    /// Java regex matched against the function's error message (function
    /// integrations) or the status code (mock). Absent: the default response.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selection_pattern: Option<Spanned<String>>,
    pub status: Spanned<u16>,
    /// Content type → response mapping template.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub templates: IndexMap<String, Spanned<String>>,
    /// Response header → `'static value'` or `integration.response.header.X` /
    /// `integration.response.body` / `integration.response.body.field`.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub headers: IndexMap<String, Spanned<String>>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawStage {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default)]
    pub variables: IndexMap<String, String>,
    /// The stage's default throttle (every method, all callers together).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throttle: Option<Spanned<RawThrottle>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache: Option<Spanned<RawStageCache>>,
    /// The stage's access log (API Gateway's `accessLogSettings`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_log: Option<Spanned<RawAccessLog>>,
    /// `"/resource/METHOD"` → the method's own settings.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub methods: IndexMap<String, Spanned<RawMethodSettings>>,
}

/// A stage's access log.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawAccessLog {
    /// `CLF`, `JSON`, `XML`, `CSV` or a format of `$context` variables.
    pub format: Spanned<String>,
    /// A file (relative: within the data directory's `logs/`); without
    /// it, the server's log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<Spanned<String>>,
}

/// A stage's response cache.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawStageCache {
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity_mb: Option<Spanned<u64>>,
    /// Seconds, 0–3600 (default 300).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<Spanned<u64>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_authorization: Option<bool>,
    /// `FAIL_WITH_403`, `SUCCEED_WITH_RESPONSE_HEADER` or `SUCCEED_WITHOUT_RESPONSE_HEADER`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unauthorized_strategy: Option<Spanned<String>>,
}

fn yes() -> bool {
    true
}

/// A method's overrides of its stage's settings.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawMethodSettings {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throttle: Option<Spanned<RawThrottle>>,
    /// `false` opts a GET out of the stage's cache; `true` opts another method in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caching: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_ttl: Option<Spanned<u64>>,
}

/// CORS of a resource ("Enable CORS").
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawCors {
    /// `["*"]` (the default) or the origins allowed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_origins: Option<Vec<String>>,
    /// Default: the resource's methods and OPTIONS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_methods: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_headers: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expose_headers: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_credentials: Option<bool>,
    /// Add the allow-origin header to gateway error responses on this resource (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_errors: Option<bool>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawGatewayResponse {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Header → `'static'`, `method.request.header.X`, `stageVariables.x` …
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub headers: IndexMap<String, String>,
    /// Content type → template (`$context.error.messageString` …).
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub templates: IndexMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawServer {
    pub listen: Option<Spanned<String>>,
    pub admin_listen: Option<Spanned<String>>,
    /// Let `admin_listen` be a non-loopback address (its token travels in clear text).
    pub admin_allow_remote: Option<bool>,
    /// `/metrics` asks for the admin token too.
    pub metrics_token: Option<bool>,
    pub data_dir: Option<String>,
    pub max_code_mb: Option<Spanned<u64>>,
    pub max_instances: Option<Spanned<u32>>,
    pub max_memory_mb: Option<Spanned<u32>>,
    pub shutdown_grace_ms: Option<u64>,
    pub header_read_timeout_ms: Option<Spanned<u64>>,
    pub body_read_timeout_ms: Option<Spanned<u64>>,
    pub max_requests_in_flight: Option<Spanned<u64>>,
    /// Largest outbound response body a function may receive, in MB.
    pub max_outbound_response_mb: Option<Spanned<u64>>,
    /// Most outbound requests of one function in flight at once.
    pub max_outbound_requests: Option<Spanned<u64>>,
    /// What `wasmgate logs` keeps in memory, all functions and stages together, in MB.
    pub recent_logs_mb: Option<Spanned<u64>>,
    /// `redis://…`: throttles, quotas and the cache shared through Redis.
    pub shared_store: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFunction {
    /// A guest of this repository's `guest-functions/` (embedded in the binary).
    pub guest: Option<Spanned<String>>,
    /// A `.wasm` component file, relative to the configuration file.
    pub wasm: Option<Spanned<String>>,
    /// A Python or JavaScript source (a file, or a directory with the
    /// handler's module), built with the language's toolchain at bootstrap.
    pub source: Option<Spanned<String>>,
    /// The source's handler, `MODULE.FUNCTION` (Lambda's `Handler`).
    pub handler: Option<Spanned<String>>,
    pub allowed_outbound_hosts: Option<Vec<String>>,
    pub description: Option<String>,
    pub memory_mb: Option<u32>,
    pub timeout_ms: Option<u64>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    pub min_warm: Option<u32>,
    pub max_concurrency: Option<u32>,
    pub idle_ttl: Option<u64>,
    pub reuse: Option<bool>,
    /// Publish version 1 with this description when the function is created.
    pub publish: Option<String>,
    /// Aliases created with the function: `name = "$LATEST"`, `"1"`, or
    /// `{ version = "2", weights = { "1" = 0.1 } }`.
    #[serde(default)]
    pub aliases: IndexMap<String, Spanned<RawAlias>>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum RawAlias {
    Version(String),
    Weighted {
        version: String,
        #[serde(default)]
        weights: BTreeMap<String, f64>,
        #[serde(default)]
        description: Option<String>,
    },
}
