//! The admin API: the control plane's HTTP interface, on its own listener
//! (loopback by default), behind a bearer token kept in the data directory.
//! The CLI is its client ([`client`]).
//!
//! JSON in and out. Errors are `{"type": "...", "message": "..."}` with the
//! Lambda error type also in `x-amzn-ErrorType`: 400 `InvalidParameterValueException`
//! (bad input, malformed wasm — nothing is stored), 404 `ResourceNotFoundException`,
//! 409 `ResourceConflictException`, 413 `RequestTooLargeException`, 429
//! `TooManyRequestsException`, 401 for a missing or wrong token. The usage
//! plan, API key and cache endpoints answer with API Gateway's types instead
//! (400 `BadRequestException`, 404 `NotFoundException`, 409 `ConflictException`).
//!
//! | method and path | what |
//! |---|---|
//! | `GET /healthz` | 200 while the process answers (no token) |
//! | `GET /readyz` | 200 once the registry is loaded and the stages deployed, else 503, with each check (no token) |
//! | `GET /metrics` | OpenMetrics' text format, for Prometheus (no token unless `[server] metrics_token = true`) |
//! | `GET /v1/status` | runtime counters (compiles, artifact loads, loaded versions), `pools`: each loaded version's calls in flight and idle instances, and `policies`: `{store, cache}` (the policy store's kind, each stage's cache hits and misses) |
//! | `GET /v1/functions` | list functions |
//! | `GET /v1/functions/{name}` | one function with its versions and aliases |
//! | `DELETE /v1/functions/{name}[?force=true]` | delete it, its versions and aliases (409 while a served stage calls it, unless forced) |
//! | `PUT /v1/functions/{name}/code` | upload wasm (body) as `$LATEST`, creating the function if needed |
//! | `GET /v1/functions/{name}/code[?version=N]` | download the code |
//! | `GET`, `PATCH /v1/functions/{name}/configuration` | read, or merge into, `$LATEST`'s configuration |
//! | `POST /v1/functions/{name}/versions` | publish `{description, code_sha256?}` |
//! | `GET /v1/functions/{name}/versions` | list versions |
//! | `DELETE /v1/functions/{name}/versions/{n}` | delete a version no alias uses |
//! | `GET /v1/functions/{name}/aliases` | list aliases |
//! | `GET`, `PUT`, `POST`, `PATCH`, `DELETE /v1/functions/{name}/aliases/{alias}` | read, upsert, create, update, delete `{version, additional_version_weights?, description?}` (a delete: 409 while a served stage calls the alias, unless `?force=true`) |
//! | `POST /v1/functions/{qualifier}/invocations` | invoke with the body as event (see below) |
//! | `GET /v1/functions/{qualifier}/logs[?after=&since=&filter=&wait=]` | the function's recent invocations as Lambda's log lines (through that qualifier, or of that version, when one is given): `{events: [{timestamp, message}], next}` ([`logs`]) |
//! | `GET /v1/apis` | deployed APIs, their stages and deployments |
//! | `GET /v1/apis/{api}/deployments` | an API's deployments, oldest first |
//! | `POST /v1/apis/{api}/deployments` | deploy `{stage, description?, force?}` from the server's configuration file (re-read now): functions it declares that the registry never had are created first; refused (409) when a function the stage calls does not resolve; the answer is the deployment with `deployed` (false, and 200, when the stage already serves that very definition and `force` is not set; else true, 201) and `created_functions` |
//! | `POST /v1/apis/{api}/stages/{stage}/rollback` | point the stage at `{deployment_id?}` (an id, or a number as `3` or `#3`), or one step back along its way back (never forward again) |
//! | `POST /v1/apis/{api}/test-invoke` | run one method as the console's TEST button: `{stage, method, resource_path, path?, query?, headers?, body?}` (query and header values a string or a list); answers `{status, headers, multi_value_headers, body, latency_ms, log, invocation}` |
//! | `GET /v1/apis/{api}/stages/{stage}/logs[?after=&since=&filter=&wait=]` | the stage's recent access lines (404 when it keeps no access log) |
//! | `DELETE /v1/apis/{api}/stages/{stage}/cache` | flush a served stage's response cache (404 if the API or stage is not served) |
//! | `GET /v1/usageplans` | list usage plans (stages as `"API/stage"`, throttle, quota, method throttles, the keys in each) |
//! | `POST /v1/usageplans` | create `{name, description?, stages: ["API/stage"], throttle?: {rate, burst}, quota?: {limit, offset?, period}, method_throttle?: {"API/stage": {"/items/GET": {rate, burst}}}}` (201) |
//! | `GET /v1/usageplans/{name}` | one usage plan |
//! | `PATCH /v1/usageplans/{name}` | change `{add_stages?, remove_stages?, throttle?, quota?, method_throttle?, description?}` (`throttle` or `quota` `null` removes it) |
//! | `DELETE /v1/usageplans/{name}` | delete a plan bound to no stage (409 while it is bound) |
//! | `GET /v1/usageplans/{name}/usage[?startDate=YYYY-MM-DD&endDate=YYYY-MM-DD&key=NAME]` | GetUsage: used and remaining per key per day (default: the last 7 days through today, UTC) |
//! | `GET /v1/apikeys` | list API keys (values masked; never a value or its digest) |
//! | `POST /v1/apikeys` | create `{name, value?, plans?, description?, enabled?, invalidate_cache?}` (201): the only answer but rotate's with the key's `value` |
//! | `GET /v1/apikeys/{name}` | one API key (value masked) |
//! | `PATCH /v1/apikeys/{name}` | change `{enabled?, description?, add_plans?, remove_plans?, invalidate_cache?}` |
//! | `POST /v1/apikeys/{name}/rotate` | a new value `{value?}` (generated if not given), answered once; usage stays counted where it was |
//! | `DELETE /v1/apikeys/{name}` | delete an API key |
//!
//! An invocation answers 200 with the function's result as the body, or its
//! error payload plus `X-Amz-Function-Error: Unhandled`, as Lambda's Invoke
//! does, with `X-Amz-Executed-Version`, `X-Wasmgate-Start` (cold, warm, hot),
//! `X-Wasmgate-Duration-Us`, and with `X-Amz-Log-Type: Tail` the last 4 KB of
//! the log as Lambda writes it (START, the output, END, REPORT), base64, in
//! `X-Amz-Log-Result`.

pub mod client;
mod logs;
mod policies;
pub mod token;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use base64::Engine as _;
use bytes::Bytes;
use hyper::{Method, Request, Response, StatusCode, header};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::functions::{Functions, FunctionsError};
use crate::gateway::Gateway;
use crate::gateway::deploy::DeployError;
use crate::http::{self, Body, BodyError};
use crate::registry::{AliasUpdate, FunctionRecord, RegistryError, VersionRef};
use crate::runtime::{FunctionConfig, RuntimeError};

/// Largest invocation payload (Lambda's synchronous limit).
pub const MAX_EVENT_BYTES: usize = crate::runtime::invoke::MAX_EVENT_BYTES;

/// The admin API's settings.
#[derive(Debug, Clone)]
pub struct AdminOptions {
    pub token: String,
    /// Largest code upload, in bytes.
    pub max_code_bytes: usize,
    /// The configuration file deployments are taken from.
    pub config_path: std::path::PathBuf,
    /// Becomes true when the server starts to stop: a read waiting for log
    /// entries answers then, so that it does not hold the stop up.
    pub stopping: tokio::sync::watch::Receiver<bool>,
}

/// The admin API handler.
pub struct AdminApi {
    functions: Functions,
    gateway: Arc<Gateway>,
    options: AdminOptions,
}

/// An admin API error: status, Lambda error type, message.
struct ApiError(StatusCode, &'static str, String);

impl ApiError {
    fn bad_request(message: impl Into<String>) -> Self {
        ApiError(StatusCode::BAD_REQUEST, "InvalidParameterValueException", message.into())
    }
    fn not_found(message: impl Into<String>) -> Self {
        ApiError(StatusCode::NOT_FOUND, "ResourceNotFoundException", message.into())
    }
    fn into_response(self) -> Response<Body> {
        let mut resp = http::json(self.0, &json!({ "type": self.1, "message": self.2 }));
        resp.headers_mut().insert("x-amzn-errortype", header::HeaderValue::from_static(self.1));
        resp
    }
}

impl From<FunctionsError> for ApiError {
    fn from(e: FunctionsError) -> Self {
        match e {
            FunctionsError::Registry(RegistryError::NotFound(m)) => ApiError::not_found(m),
            FunctionsError::Registry(RegistryError::Conflict(m)) => {
                ApiError(StatusCode::CONFLICT, "ResourceConflictException", m)
            }
            FunctionsError::Registry(RegistryError::InvalidParameter(m)) => ApiError::bad_request(m),
            FunctionsError::Runtime(RuntimeError::InvalidCode(m)) => {
                ApiError::bad_request(format!("invalid function code: {m}"))
            }
            FunctionsError::Runtime(e @ RuntimeError::EventTooLarge { .. }) => {
                ApiError(StatusCode::PAYLOAD_TOO_LARGE, "RequestTooLargeException", e.to_string())
            }
            FunctionsError::Runtime(RuntimeError::Throttled { .. }) => {
                ApiError(StatusCode::TOO_MANY_REQUESTS, "TooManyRequestsException", "Rate Exceeded.".into())
            }
            FunctionsError::InvalidConfig(m) => ApiError::bad_request(m),
            FunctionsError::Runtime(e @ RuntimeError::MemoryTooSmall { .. }) => ApiError::bad_request(e.to_string()),
            other => ApiError(StatusCode::INTERNAL_SERVER_ERROR, "ServiceException", other.to_string()),
        }
    }
}

impl From<DeployError> for ApiError {
    fn from(e: DeployError) -> Self {
        match e {
            DeployError::Registry(r) => FunctionsError::Registry(r).into(),
            DeployError::UnknownApi(_) | DeployError::UnknownStage { .. } => ApiError::not_found(e.to_string()),
            DeployError::Unresolved { .. } => {
                ApiError(StatusCode::CONFLICT, "ResourceConflictException", e.to_string())
            }
            DeployError::Config(c) => ApiError::bad_request(c.to_string()),
            DeployError::Broken { .. } => {
                ApiError(StatusCode::INTERNAL_SERVER_ERROR, "ServiceException", e.to_string())
            }
        }
    }
}

impl From<BodyError> for ApiError {
    fn from(e: BodyError) -> Self {
        match e {
            BodyError::TooLarge(_) => {
                ApiError(StatusCode::PAYLOAD_TOO_LARGE, "RequestTooLargeException", e.to_string())
            }
            BodyError::Read(m) => ApiError::bad_request(m),
            BodyError::TimedOut(_) => ApiError(StatusCode::REQUEST_TIMEOUT, "RequestTimeoutException", e.to_string()),
        }
    }
}

type ApiResult = Result<Response<Body>, ApiError>;

fn ok(value: &impl serde::Serialize) -> ApiResult {
    Ok(http::json(StatusCode::OK, value))
}

fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let body = if body.is_empty() { b"{}".as_slice() } else { body };
    serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))
}

/// `?force=true` (a destructive change made although something uses what it removes).
fn forced(req: &Request<http::RequestBody>) -> bool {
    query_param(req, "force").is_some_and(|v| v == "true" || v == "1")
}

fn query_param(req: &Request<http::RequestBody>, name: &str) -> Option<String> {
    let query = req.uri().query()?;
    form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
}

/// A function as the API shows it in lists.
fn summary(f: &FunctionRecord) -> Value {
    json!({
        "name": f.name,
        "description": f.description,
        "code_sha256": f.code_sha256,
        "code_size": f.code_size,
        "last_modified": f.last_modified,
        "versions": f.versions.len(),
        "aliases": f.aliases.keys().collect::<Vec<_>>(),
    })
}

/// The status's `pools`: every version loaded with the code and
/// configuration the registry has for it now, as `{function, version, busy,
/// idle}` — its calls in flight (counted from when a call is taken, a
/// throttled one for an instant) and its idle instances, ready for a hot
/// start. What a test (or an operator) waits for: a call having started,
/// an idle instance having expired.
fn pools(f: &Functions) -> Vec<Value> {
    f.loaded_versions()
        .iter()
        .map(|loaded| {
            json!({
                "function": loaded.spec().function,
                "version": loaded.spec().version,
                "busy": loaded.busy_count(),
                "idle": loaded.idle_count(),
            })
        })
        .collect()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PublishBody {
    #[serde(default)]
    description: String,
    #[serde(default)]
    code_sha256: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AliasBody {
    version: String,
    #[serde(default)]
    additional_version_weights: std::collections::BTreeMap<String, f64>,
    #[serde(default)]
    description: Option<String>,
}

impl AliasBody {
    fn into_update(self) -> Result<AliasUpdate, ApiError> {
        let version = VersionRef::parse(&self.version).ok_or_else(|| {
            ApiError::bad_request(format!("invalid version {:?}: use $LATEST or a number", self.version))
        })?;
        if self.additional_version_weights.len() > 1 {
            return Err(ApiError::bad_request("Number of items in AdditionalVersionWeights cannot be greater than 1"));
        }
        let additional_version = match self.additional_version_weights.into_iter().next() {
            None => None,
            Some((v, w)) => match VersionRef::parse(&v) {
                Some(VersionRef::Number(n)) => Some((n, w)),
                _ => {
                    return Err(ApiError::bad_request(format!(
                        "invalid additional version {v:?}: use a version number"
                    )));
                }
            },
        };
        Ok(AliasUpdate { version, additional_version, description: self.description })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeployBody {
    stage: String,
    #[serde(default)]
    description: Option<String>,
    /// Deploy even when the stage already serves this definition.
    #[serde(default)]
    force: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RollbackBody {
    #[serde(default)]
    deployment_id: Option<String>,
}

impl AdminApi {
    /// Deployed APIs (or one), with their stages and deployments.
    fn apis(&self, only: Option<&str>) -> Value {
        let state = self.functions.registry().snapshot();
        let list: Vec<Value> = state
            .deployments
            .iter()
            .filter(|(api, _)| only.is_none_or(|o| o == api.as_str()))
            .map(|(api, deployments)| {
                let stages: Vec<&crate::registry::StageRecord> =
                    state.stages.iter().filter(|((a, _), _)| a == api).map(|(_, s)| s).collect();
                json!({ "name": api, "stages": stages, "deployments": deployments })
            })
            .collect();
        Value::Array(list)
    }

    /// The API as the configuration file defines it now, once the
    /// functions the file declares and the registry never had are created
    /// (as the first `serve` creates them). Returns the API and the names
    /// of the functions created.
    async fn configured_api(&self, api: &str) -> Result<(crate::config::ApiSpec, Vec<String>), ApiError> {
        let config = {
            let state = self.functions.registry().snapshot();
            let known = |name: &str| state.functions.contains_key(name);
            crate::config::load_with_functions(&self.options.config_path, &known)
                .map_err(|e| ApiError::bad_request(e.to_string()))?
        };
        let Some(spec) = config.apis.iter().find(|a| a.name == api).cloned() else {
            let hint = crate::suggest::did_you_mean(api, config.apis.iter().map(|a| a.name.as_str()));
            return Err(ApiError::not_found(format!(
                "API {api:?} is not in {}{hint}",
                self.options.config_path.display()
            )));
        };
        let created = crate::bootstrap::apply(&self.functions, &config.functions)
            .await
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        Ok((spec, created))
    }

    /// Refuses (409, naming them) to delete `function`, or its `alias`,
    /// while a served stage calls it.
    fn refuse_if_served(&self, function: &str, alias: Option<&str>) -> Result<(), ApiError> {
        let served = self.gateway.served();
        let mut callers = Vec::new();
        for api in &served.apis {
            for (stage, compiled) in &api.stages {
                for target in &compiled.function_targets {
                    let q = crate::registry::Qualifier::parse(target);
                    if q.function == function && (alias.is_none() || q.qualifier == alias) {
                        callers.push(format!("{}/{stage} calls {target}", api.name));
                    }
                }
            }
        }
        if callers.is_empty() {
            return Ok(());
        }
        callers.sort();
        let what = match alias {
            Some(alias) => format!("alias {alias} of {function}"),
            None => format!("function {function}"),
        };
        Err(ApiError(
            StatusCode::CONFLICT,
            "ResourceConflictException",
            format!(
                "{what} is in use: {}. Deploy those stages without it first, or delete it anyway with --force \
                 (?force=true; their calls then answer 500)",
                callers.join(", ")
            ),
        ))
    }

    pub fn new(functions: Functions, gateway: Arc<Gateway>, options: AdminOptions) -> Self {
        AdminApi { functions, gateway, options }
    }

    fn authorized(&self, req: &Request<http::RequestBody>) -> bool {
        bearer_is(&self.options.token, req)
    }

    async fn route(&self, req: Request<http::RequestBody>) -> ApiResult {
        let path = req.uri().path().to_string();
        let segments: Vec<String> = path
            .trim_matches('/')
            .split('/')
            .map(|s| percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned())
            .collect();
        let segs: Vec<&str> = segments.iter().map(String::as_str).collect();
        let method = req.method().clone();
        let f = &self.functions;
        match (&method, segs.as_slice()) {
            (&Method::GET, ["v1", "status"]) => {
                let state = f.registry().snapshot();
                ok(&json!({
                    "version": env!("CARGO_PKG_VERSION"),
                    "runtime": f.runtime().stats(),
                    "functions": state.functions.len(),
                    "pools": pools(f),
                    "policies": self.policies_status(),
                }))
            }
            (&Method::GET, ["v1", "functions"]) => {
                let state = f.registry().snapshot();
                ok(&json!({ "functions": state.functions.values().map(summary).collect::<Vec<_>>() }))
            }
            (&Method::GET, ["v1", "functions", name]) => {
                ok(f.registry().snapshot().function(name).map_err(FunctionsError::from)?)
            }
            (&Method::DELETE, ["v1", "functions", name]) => {
                if !forced(&req) {
                    self.refuse_if_served(name, None)?;
                }
                f.delete_function(name).await?;
                Ok(http::response(StatusCode::NO_CONTENT, "application/json", Bytes::new()))
            }
            (&Method::PUT, ["v1", "functions", name, "code"]) => {
                let description = query_param(&req, "description");
                let max = self.options.max_code_bytes;
                let body = http::read_body(req.into_body(), max).await.map_err(|e| match e {
                    BodyError::TooLarge(_) => ApiError(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "RequestTooLargeException",
                        format!(
                            "the code is larger than this server's max_code_mb = {} ([server] in gateway.toml)",
                            max >> 20
                        ),
                    ),
                    other => other.into(),
                })?;
                let started = std::time::Instant::now();
                let record = f.put_code(name, body.to_vec(), None, description).await?;
                // How long storing and compiling took, for the CLI to show.
                let mut resp = ok(&record)?;
                let ms = started.elapsed().as_millis().to_string();
                resp.headers_mut().insert("x-wasmgate-compile-ms", ms.parse().expect("digits are a header value"));
                Ok(resp)
            }
            (&Method::GET, ["v1", "functions", name, "code"]) => {
                let state = f.registry().snapshot();
                let func = state.function(name).map_err(FunctionsError::from)?;
                let sha = match query_param(&req, "version").as_deref().map(VersionRef::parse) {
                    None | Some(Some(VersionRef::Latest)) => func.code_sha256.clone(),
                    Some(Some(VersionRef::Number(n))) => func
                        .versions
                        .get(&n)
                        .map(|v| v.code_sha256.clone())
                        .ok_or_else(|| ApiError::not_found(format!("Function not found: {name}:{n}")))?,
                    Some(None) => return Err(ApiError::bad_request("invalid version")),
                };
                let code = f.registry().code().get(&sha).ok_or_else(|| ApiError::not_found("code missing"))?;
                Ok(http::response(StatusCode::OK, "application/wasm", code))
            }
            (&Method::GET, ["v1", "functions", name, "configuration"]) => {
                ok(&f.registry().snapshot().function(name).map_err(FunctionsError::from)?.config)
            }
            (&Method::PATCH | &Method::PUT, ["v1", "functions", name, "configuration"]) => {
                let body = http::read_body(req.into_body(), 1 << 20).await?;
                let patch: Value = parse_json(&body)?;
                let Value::Object(patch) = patch else {
                    return Err(ApiError::bad_request("the configuration must be a JSON object"));
                };
                let current = f.registry().snapshot().function(name).map_err(FunctionsError::from)?.config.clone();
                let mut merged = if method == Method::PUT {
                    serde_json::Map::new()
                } else {
                    match serde_json::to_value(current) {
                        Ok(Value::Object(m)) => m,
                        _ => serde_json::Map::new(),
                    }
                };
                merged.extend(patch);
                let config: FunctionConfig = serde_json::from_value(Value::Object(merged))
                    .map_err(|e| ApiError::bad_request(format!("invalid configuration: {e}")))?;
                ok(&f.put_config(name, config).await?.config)
            }
            (&Method::POST, ["v1", "functions", name, "versions"]) => {
                let body = http::read_body(req.into_body(), 1 << 20).await?;
                let p: PublishBody = parse_json(&body)?;
                let (version, created) = f.publish(name, p.description, p.code_sha256).await?;
                let status = if created { StatusCode::CREATED } else { StatusCode::OK };
                Ok(http::json(status, &version))
            }
            (&Method::GET, ["v1", "functions", name, "versions"]) => {
                let state = f.registry().snapshot();
                let func = state.function(name).map_err(FunctionsError::from)?;
                ok(&json!({ "versions": func.versions.values().collect::<Vec<_>>() }))
            }
            (&Method::DELETE, ["v1", "functions", name, "versions", version]) => {
                f.delete_version(name, version).await?;
                Ok(http::response(StatusCode::NO_CONTENT, "application/json", Bytes::new()))
            }
            (&Method::GET, ["v1", "functions", name, "aliases"]) => {
                let state = f.registry().snapshot();
                let func = state.function(name).map_err(FunctionsError::from)?;
                ok(&json!({ "aliases": func.aliases.values().collect::<Vec<_>>() }))
            }
            (&Method::GET, ["v1", "functions", name, "aliases", alias]) => {
                let state = f.registry().snapshot();
                let func = state.function(name).map_err(FunctionsError::from)?;
                let a = func.aliases.get(*alias).ok_or_else(|| ApiError::not_found(func.no_alias(alias)))?;
                ok(a)
            }
            (&Method::PUT | &Method::POST | &Method::PATCH, ["v1", "functions", name, "aliases", alias]) => {
                let must_exist = match method {
                    Method::POST => Some(false),
                    Method::PATCH => Some(true),
                    _ => None,
                };
                let body = http::read_body(req.into_body(), 1 << 20).await?;
                let update = parse_json::<AliasBody>(&body)?.into_update()?;
                ok(&f.put_alias(name, alias, update, must_exist).await?)
            }
            (&Method::DELETE, ["v1", "functions", name, "aliases", alias]) => {
                if !forced(&req) {
                    self.refuse_if_served(name, Some(alias))?;
                }
                f.delete_alias(name, alias).await?;
                Ok(http::response(StatusCode::NO_CONTENT, "application/json", Bytes::new()))
            }
            (&Method::POST, ["v1", "functions", qualifier, "invocations"]) => self.invoke(qualifier, req).await,
            (&Method::GET, ["v1", "functions", qualifier, "logs"]) => self.function_logs(qualifier, &req).await,
            (&Method::GET, ["v1", "apis", api, "stages", stage, "logs"]) => self.stage_logs(api, stage, &req).await,
            (&Method::GET, ["v1", "apis"]) => ok(&self.apis(None)),
            (&Method::GET, ["v1", "apis", api, "deployments"]) => {
                let list = self.apis(Some(api));
                if list.as_array().is_none_or(Vec::is_empty) {
                    let served = self.gateway.served();
                    let why = served.api(api).err().unwrap_or_default();
                    return Err(ApiError::not_found(format!("Invalid API identifier specified: {why}")));
                }
                ok(&list[0])
            }
            (&Method::POST, ["v1", "apis", api, "deployments"]) => {
                let body = http::read_body(req.into_body(), 1 << 20).await?;
                let d: DeployBody = parse_json(&body)?;
                let (spec, created_functions) = self.configured_api(api).await?;
                let description = d.description.as_deref().unwrap_or("");
                let outcome = self.gateway.deploy(&spec, &d.stage, description, d.force).await?;
                let status = if outcome.deployed { StatusCode::CREATED } else { StatusCode::OK };
                let mut answer = serde_json::to_value(&outcome.record).unwrap_or_default();
                answer["deployed"] = json!(outcome.deployed);
                answer["created_functions"] = json!(created_functions);
                Ok(http::json(status, &answer))
            }
            (&Method::POST, ["v1", "apis", api, "stages", stage, "rollback"]) => {
                let body = http::read_body(req.into_body(), 1 << 20).await?;
                let r: RollbackBody = parse_json(&body)?;
                ok(&self.gateway.rollback(api, stage, r.deployment_id).await?)
            }
            (&Method::POST, ["v1", "apis", api, "test-invoke"]) => {
                let body = http::read_body(req.into_body(), crate::gateway::MAX_BODY_BYTES + (1 << 20)).await?;
                let t: crate::gateway::testinvoke::TestInvoke = parse_json(&body)?;
                let result =
                    crate::gateway::testinvoke::run(&self.gateway, api, t).await.map_err(ApiError::bad_request)?;
                ok(&result)
            }
            (_, ["v1", "usageplans" | "apikeys", ..] | ["v1", "apis", _, "stages", _, "cache"]) => {
                self.route_policies(&method, &segs, req).await
            }
            (_, ["v1", ..]) => Err(ApiError(
                StatusCode::NOT_FOUND,
                "UnknownOperationException",
                format!("no admin operation {method} {path}"),
            )),
            _ => Err(ApiError::not_found(format!("no admin operation {method} {path}"))),
        }
    }

    async fn invoke(&self, qualifier: &str, req: Request<http::RequestBody>) -> ApiResult {
        let tail = req.headers().get("x-amz-log-type").is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"tail"));
        let body = http::read_body(req.into_body(), MAX_EVENT_BYTES).await?;
        let invalid = |why: String| {
            ApiError(
                StatusCode::BAD_REQUEST,
                "InvalidRequestContentException",
                format!("Could not parse request body into json: {why}"),
            )
        };
        let event = if body.is_empty() {
            "{}"
        } else {
            std::str::from_utf8(&body).map_err(|e| invalid(format!("the payload is not UTF-8 ({e})")))?
        };
        // serde's message says where: `key must be a string at line 2 column 2`.
        serde_json::from_str::<serde::de::IgnoredAny>(event).map_err(|e| invalid(e.to_string()))?;
        let request_id = uuid::Uuid::new_v4().to_string();
        let outcome = self.functions.invoke(qualifier, event, &request_id, tail).await?;
        let (payload, failed) = match &outcome.result {
            Ok(output) => (output.clone(), false),
            Err(e) => (e.to_json(), true),
        };
        let mut resp = http::response(StatusCode::OK, "application/json", payload);
        let h = resp.headers_mut();
        let mut set = |name: &'static str, value: &str| {
            if let Ok(v) = header::HeaderValue::from_str(value) {
                h.insert(name, v);
            }
        };
        set("x-amzn-requestid", &request_id);
        set("x-amz-executed-version", &outcome.version.to_string());
        set("x-wasmgate-start", outcome.start.as_str());
        set("x-wasmgate-duration-us", &outcome.duration.as_micros().to_string());
        if failed {
            set("x-amz-function-error", "Unhandled");
        }
        if tail {
            let log = crate::recent_logs::Invocation {
                request_id: &request_id,
                version: outcome.version,
                start: outcome.start.as_str(),
                duration: outcome.duration,
                memory_mb: outcome.memory_mb,
                memory_used_bytes: outcome.memory_used_bytes,
                output: outcome.logs.as_bytes(),
            }
            .lambda_log();
            let mut start = log.len().saturating_sub(4096);
            while !log.is_char_boundary(start) {
                start += 1;
            }
            set("x-amz-log-result", &base64::engine::general_purpose::STANDARD.encode(&log.as_bytes()[start..]));
        }
        Ok(resp)
    }
}

impl http::Handler for AdminApi {
    async fn handle(api: Arc<Self>, req: Request<http::RequestBody>, _conn: http::RequestConn) -> Response<Body> {
        api.answer(req).await
    }
}

/// Whether `req` carries `token` as its bearer token (compared in constant time).
fn bearer_is(token: &str, req: &Request<http::RequestBody>) -> bool {
    let given =
        req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    given.is_some_and(|t| token::matches(token, t.trim()))
}

/// How far a starting server has come, for `/readyz`.
#[derive(Debug, Default)]
pub struct Readiness {
    registry: AtomicBool,
    stages: AtomicBool,
}

impl Readiness {
    /// The registry is open and its versions loaded.
    pub fn registry_loaded(&self) {
        self.registry.store(true, Ordering::Release);
    }

    /// Every configured stage has a deployment, served.
    pub fn stages_deployed(&self) {
        self.stages.store(true, Ordering::Release);
    }
}

/// The admin listener from the moment it is bound: `/healthz`, `/readyz`
/// and `/metrics` answer at once, for load balancers, orchestrators and
/// Prometheus; the admin API itself once the server is ready (503 until
/// then).
pub struct AdminListener {
    token: String,
    /// `/metrics` asks for the token too (`[server] metrics_token = true`).
    metrics_token: bool,
    metrics: Arc<crate::metrics::Metrics>,
    pub readiness: Readiness,
    api: std::sync::OnceLock<Arc<AdminApi>>,
}

impl AdminListener {
    pub fn new(token: String, metrics_token: bool, metrics: Arc<crate::metrics::Metrics>) -> Self {
        AdminListener {
            token,
            metrics_token,
            metrics,
            readiness: Readiness::default(),
            api: std::sync::OnceLock::new(),
        }
    }

    /// The server is ready: the admin API answers from now on.
    pub fn ready(&self, api: Arc<AdminApi>) {
        let _ = self.api.set(api);
    }

    fn authorized(&self, req: &Request<http::RequestBody>) -> bool {
        bearer_is(&self.token, req)
    }

    fn readyz(&self) -> Response<Body> {
        let checks = json!({
            "listeners": true,
            "registry": self.readiness.registry.load(Ordering::Acquire),
            "stages": self.readiness.stages.load(Ordering::Acquire),
        });
        let ready = self.api.get().is_some();
        let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
        http::json(status, &json!({ "ready": ready, "checks": checks }))
    }
}

impl http::Handler for AdminListener {
    async fn handle(this: Arc<Self>, req: Request<http::RequestBody>, _conn: http::RequestConn) -> Response<Body> {
        let get = req.method() == Method::GET || req.method() == Method::HEAD;
        match req.uri().path() {
            "/healthz" if get => http::json(StatusCode::OK, &json!({ "status": "ok" })),
            "/readyz" if get => this.readyz(),
            "/metrics" if get => {
                if this.metrics_token && !this.authorized(&req) {
                    return ApiError(
                        StatusCode::UNAUTHORIZED,
                        "UnauthorizedException",
                        "metrics_token is set: send the admin token as a bearer token".into(),
                    )
                    .into_response();
                }
                // What prometheus-client writes is OpenMetrics (its `info`
                // type, `# EOF`): said so, a scraper parses it as such.
                http::response(StatusCode::OK, crate::metrics::CONTENT_TYPE, Bytes::from(this.metrics.encode()))
            }
            _ => match this.api.get() {
                Some(api) => api.answer(req).await,
                None => ApiError(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "ServiceUnavailableException",
                    "the server is starting (GET /readyz says when it is ready)".into(),
                )
                .into_response(),
            },
        }
    }
}

impl AdminApi {
    async fn answer(&self, req: Request<http::RequestBody>) -> Response<Body> {
        if !self.authorized(&req) {
            return ApiError(
                StatusCode::UNAUTHORIZED,
                "UnauthorizedException",
                "missing or wrong bearer token (see admin.token in the data directory)".into(),
            )
            .into_response();
        }
        let (method, path) = (req.method().clone(), req.uri().path().to_string());
        let resp = self.route(req).await.unwrap_or_else(ApiError::into_response);
        tracing::debug!(%method, %path, status = resp.status().as_u16(), "admin request");
        resp
    }
}
