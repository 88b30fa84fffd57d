//! The gateway listener: requests to `/{stage}/{path}` of the deployed APIs
//! (or `/{base_path}/{stage}/…`, or by `Host`, when one server carries
//! several), routed to a stage's method and run through its pipeline.
//!
//! Layout: [`request`] (the parsed request), [`router`] (resource matching as
//! API Gateway does it), [`stage`] (a deployment compiled for serving),
//! [`pipeline`] (validation → integration → integration response),
//! [`validation`], [`proxy`] (the Lambda proxy event and response),
//! [`headers`] (a response's headers from a function or template: never HTTP's framing),
//! [`responses`] (API Gateway's gateway responses: every failure becomes one
//! here, in [`Gateway::reject`]), [`deploy`] (deployments and rollbacks).
//!
//! After routing, [`Gateway::dispatch`] answers a CORS preflight, then runs
//! the stage's policies (`crate::policy`: API key, throttles, quota) before
//! the pipeline; CORS headers go on the answer (and on its gateway errors
//! where the resource says so).
//!
//! The set of served stages is an immutable snapshot behind an `ArcSwap`: a
//! deploy builds the new stage first and swaps it in atomically, so requests in
//! flight finish on the deployment they started with and none is dropped.

pub mod deploy;
pub mod headers;
pub mod pipeline;
pub mod proxy;
pub mod record;
pub mod request;
pub mod responses;
pub mod router;
pub mod stage;
pub mod testinvoke;
pub mod validation;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use arc_swap::ArcSwap;
use hyper::{Request, Response, StatusCode};
use parking_lot::Mutex;
use serde_json::Value;

use crate::config::ApiSpec;
use crate::functions::Functions;
use crate::http::{self, Body, BodyError};
use crate::metrics::ApiMethodMetrics;
use crate::policy::{Policies, Refusal};
use pipeline::{GatewayResponse, Rejection, Trace};
use request::{GatewayRequest, RequestHeaders};
use responses::{ErrorContext, GatewayResponses, ResponseType};
use stage::{CompiledStage, MethodEntry};

/// API Gateway's payload limit: larger bodies get 413.
pub const MAX_BODY_BYTES: usize = 10 * 1024 * 1024;

/// One API as served: how requests find it, and its stages.
pub struct ServedApi {
    pub name: String,
    pub base_path: Option<String>,
    pub hosts: Vec<String>,
    /// Gateway responses for failures before a stage is known.
    pub responses: Arc<GatewayResponses>,
    /// Looked up on every request (a fast hasher; the keys are the API's own).
    pub stages: foldhash::HashMap<String, Arc<CompiledStage>>,
}

/// Everything served, swapped whole on every deploy.
#[derive(Default)]
pub struct Served {
    pub apis: Vec<ServedApi>,
}

impl Served {
    /// A served API by name; not found, with the name most like it and
    /// the list.
    pub fn api(&self, name: &str) -> Result<&ServedApi, String> {
        self.apis.iter().find(|a| a.name == name).ok_or_else(|| {
            let names = self.apis.iter().map(|a| a.name.as_str());
            format!("API {name:?} is not deployed{}", crate::suggest::hint_and_list(name, "the deployed APIs", names))
        })
    }
}

impl ServedApi {
    /// A served stage by name; not found, with the name most like it and
    /// the list.
    pub fn stage(&self, name: &str) -> Result<&Arc<CompiledStage>, String> {
        self.stages.get(name).ok_or_else(|| {
            let mut names: Vec<&str> = self.stages.keys().map(String::as_str).collect();
            names.sort_unstable();
            let known = crate::suggest::hint_and_list(name, "its stages", names.iter().copied());
            format!("API {:?} has no deployed stage {name:?}{known}", self.name)
        })
    }
}

/// The gateway's request handler.
pub struct Gateway {
    functions: Functions,
    policies: Arc<Policies>,
    served: ArcSwap<Served>,
    /// Resolved deployments by id (a deployment is immutable, so this never goes stale).
    compiled: Mutex<HashMap<String, Arc<ApiSpec>>>,
    /// Held while what is served is rebuilt ([`Gateway::reload`]).
    reloading: Mutex<()>,
    /// Where requests that reach no stage are counted.
    unrouted: ApiMethodMetrics,
    access_logs: crate::access_log::AccessLogs,
}

impl Gateway {
    /// `logs_dir`: where the stages' access-log files named by a relative
    /// path are (the data directory's `logs/`).
    pub fn new(functions: Functions, policies: Arc<Policies>, logs_dir: std::path::PathBuf) -> Self {
        Gateway {
            access_logs: crate::access_log::AccessLogs::new(logs_dir, functions.runtime().recent_logs().clone()),
            unrouted: functions.runtime().metrics().api_unmatched("", ""),
            functions,
            policies,
            served: ArcSwap::from_pointee(Served::default()),
            compiled: Mutex::new(HashMap::new()),
            reloading: Mutex::new(()),
        }
    }

    pub fn functions(&self) -> &Functions {
        &self.functions
    }

    pub fn policies(&self) -> &Arc<Policies> {
        &self.policies
    }

    /// Has every access-log file opened again by its name (log rotation).
    pub fn reopen_access_logs(&self) {
        self.access_logs.reopen();
    }

    /// Writes every access line made so far to its file (as the server
    /// stops: blocks the thread, up to 5 s a file).
    pub fn flush_access_logs(&self) {
        self.access_logs.flush(std::time::Duration::from_secs(5));
    }

    /// What is served now.
    pub fn served(&self) -> Arc<Served> {
        self.served.load_full()
    }

    /// Finds the API a request is for: by `Host`, else by base path (which is
    /// then stripped), else the API without either. Returns it and the path
    /// left to route.
    fn find_api<'a, 'p>(served: &'a Served, host: &str, path: &'p str) -> Option<(&'a ServedApi, &'p str)> {
        if let Some(api) = served.apis.iter().find(|a| a.hosts.iter().any(|h| h == host)) {
            return Some((api, path));
        }
        let trimmed = path.trim_start_matches('/');
        let (first, rest) = match router::first_slash(trimmed) {
            Some(i) => trimmed.split_at(i),
            None => (trimmed, ""),
        };
        if let Some(api) = served.apis.iter().find(|a| a.base_path.as_deref() == Some(first) && a.hosts.is_empty()) {
            return Some((api, rest));
        }
        served.apis.iter().find(|a| a.base_path.is_none() && a.hosts.is_empty()).map(|a| (a, path))
    }

    /// Turns a rejection into API Gateway's gateway response.
    pub fn reject(responses: &GatewayResponses, rejection: &Rejection, ctx: &ErrorContext) -> GatewayResponse {
        let rendered = responses.render(rejection.kind, rejection.message.as_deref(), ctx);
        let mut status = rendered.status;
        if let Some(s) = rejection.status
            && !responses.is_customised(rejection.kind)
        {
            status = s;
        }
        let mut headers = headers::header_map(&rendered.headers);
        headers.insert(pipeline::REQUEST_ID, ctx.request_id_value());
        // As AWS's error responses: the request id and the extended one.
        if let Some(req) = ctx.request {
            headers.insert(pipeline::APIGW_ID, req.ids.extended_request_id_value());
        }
        GatewayResponse { status, headers, body: bytes::Bytes::from(rendered.body) }
    }

    /// Runs one request through routing, the stage's policies (unless
    /// `policies` is off: a test invoke, as the console's TEST button, skips
    /// API keys, usage plans, throttles and the cache) and its pipeline.
    ///
    /// A served request (policies on) is counted in the metrics under its
    /// method, or its stage's unmatched series, or the server's; a test
    /// invoke is not (as on AWS, where it reaches no CloudWatch metric).
    pub async fn dispatch(&self, req: &mut GatewayRequest, trace: &mut Trace, policies: bool) -> GatewayResponse {
        let served = self.served.load();
        let full_path = std::mem::take(&mut req.full_path);
        let found_api = Self::find_api(&served, &req.host, &full_path);
        let Some((api, rest)) = found_api else {
            req.full_path = full_path;
            let resp = Self::reject(
                &GatewayResponses::default(),
                &Rejection::new(ResponseType::MissingAuthenticationToken, None),
                &ErrorContext::for_request(req),
            );
            return self.unrouted(req, resp, policies);
        };
        // `//stage/x` is `/stage/x`.
        let trimmed = rest.trim_start_matches('/');
        let (stage_name, after) = match router::first_slash(trimmed) {
            Some(i) => (&trimmed[..i], &trimmed[i..]),
            None => (trimmed, ""),
        };
        let Some(stage) = api.stages.get(stage_name) else {
            // No such stage: API Gateway answers as for an unknown route.
            req.full_path = full_path.clone();
            let rejection = Rejection::new(ResponseType::MissingAuthenticationToken, None);
            let resp = Self::reject(&api.responses, &rejection, &ErrorContext::for_request(req));
            return self.unrouted(req, resp, policies);
        };
        // What follows the stage runs to the end of the path.
        req.path_at = full_path.len() - after.len();
        req.full_path = full_path;
        let req = &*req;
        let (resp, ran) = self.run_stage(stage, req, trace, policies).await;
        if policies {
            let answered = Instant::now();
            let latency = answered.saturating_duration_since(req.received);
            let metrics = ran.method.map_or(&stage.unmatched, |m| &m.metrics);
            metrics.record(resp.status, latency, trace.integration.and_then(|i| i.latency));
            if let Some(log) = &stage.access_log {
                log.write(
                    &record::Record {
                        req,
                        stage,
                        method: ran.method,
                        status: resp.status,
                        response_length: resp.body.len(),
                        latency,
                        integration: trace.integration,
                        error: ran.error.as_ref(),
                        key_id: ran.grant.as_ref().map(|g| g.key.id.as_str()),
                    },
                    answered,
                );
            }
        }
        resp
    }

    /// A request answered before it reached a stage, counted (when served)
    /// in the server's unmatched series.
    fn unrouted(&self, req: &GatewayRequest, resp: GatewayResponse, policies: bool) -> GatewayResponse {
        if policies {
            self.unrouted.record(resp.status, req.received.elapsed(), None);
        }
        resp
    }

    /// Routes a request within its stage and runs the method it matches:
    /// the answer, and what it did there.
    async fn run_stage<'s>(
        &self,
        stage: &'s CompiledStage,
        req: &GatewayRequest,
        trace: &mut Trace,
        policies: bool,
    ) -> (GatewayResponse, Ran<'s>) {
        let Some(found) = stage.router.find(req.method.as_str(), req.path()) else {
            trace.log_line(|| format!("No method matches {} {}", req.method, req.path()));
            let ctx = ErrorContext::for_stage(req, stage, None);
            let rejection = Rejection::new(ResponseType::MissingAuthenticationToken, None);
            let resp = Self::reject(&stage.api.gateway_responses, &rejection, &ctx);
            return (resp, Ran { method: None, error: Some(rejection), grant: None });
        };
        let router::RouteMatch { value: method, resource_path, path_params } = found;
        let cors = method.policy.cors.as_deref();
        if let Some(cors) = cors
            && method.spec.cors_preflight
        {
            trace.log_line(|| "CORS preflight answered".into());
            return (
                cors_preflight(cors, &method.cors_methods, req),
                Ran { method: Some(method), error: None, grant: None },
            );
        }
        // A refusal of a routed request: the stage's gateway responses, with
        // the resource's CORS headers where it says so.
        let reject_routed = |rejection: &Rejection| {
            let ctx = ErrorContext::for_stage(req, stage, Some((resource_path, &path_params)));
            let mut resp = Self::reject(&stage.api.gateway_responses, rejection, &ctx);
            add_cors(&mut resp, cors.filter(|c| c.on_errors), req);
            resp
        };
        let grant = if policies {
            match self.policies.admit(&method.policy, req.header("x-api-key")).await {
                Ok(grant) => grant,
                Err(refusal) => {
                    let kind = match refusal {
                        Refusal::InvalidApiKey(why) => {
                            trace.log_line(|| format!("API key check failed: {why:?}"));
                            ResponseType::InvalidApiKey
                        }
                        Refusal::Throttled => ResponseType::Throttled,
                        Refusal::QuotaExceeded => ResponseType::QuotaExceeded,
                    };
                    let rejection = Rejection::new(kind, None);
                    let resp = reject_routed(&rejection);
                    return (resp, Ran { method: Some(method), error: Some(rejection), grant: None });
                }
            }
        } else {
            None
        };
        let call = pipeline::Call {
            functions: &self.functions,
            policies: policies.then_some(&*self.policies),
            grant: grant.as_deref(),
            stage,
            method,
            path_params: &path_params,
            req,
        };
        let (resp, error) = match pipeline::run(call, trace).await {
            Ok(mut response) => {
                add_cors(&mut response, cors, req);
                (response, None)
            }
            Err(rejection) => (reject_routed(&rejection), Some(rejection)),
        };
        (resp, Ran { method: Some(method), error, grant })
    }
}

/// What a request did within its stage, for its metrics and access line.
struct Ran<'s> {
    /// The method it matched (`None`: none did).
    method: Option<&'s MethodEntry>,
    /// The gateway response it was answered with, if any.
    error: Option<Rejection>,
    /// The API key's grant it was admitted with.
    grant: Option<Arc<crate::policy::catalog::Grant>>,
}

impl stage::StageServices for Gateway {
    fn cache_stats(&self, stage: &str) -> Arc<crate::policy::settings::CacheStats> {
        self.policies.cache_stats(stage)
    }

    fn metrics(&self) -> &crate::metrics::Metrics {
        self.functions.runtime().metrics()
    }

    fn access_logs(&self) -> &crate::access_log::AccessLogs {
        &self.access_logs
    }
}

/// A CORS preflight's answer, as the OPTIONS method "Enable CORS" adds:
/// 200, the body `{}` (the console's response template), the allow headers.
fn cors_preflight(cors: &crate::policy::settings::Cors, methods: &[String], req: &GatewayRequest) -> GatewayResponse {
    let mut headers = hyper::HeaderMap::new();
    headers.insert(hyper::header::CONTENT_TYPE, hyper::header::HeaderValue::from_static("application/json"));
    for (name, value) in cors.preflight_headers(req.header("origin"), methods) {
        headers::set_header(&mut headers, name, &value);
    }
    headers.insert(pipeline::REQUEST_ID, req.ids.request_id_value());
    headers.insert(pipeline::APIGW_ID, req.ids.extended_request_id_value());
    GatewayResponse { status: 200, headers, body: bytes::Bytes::from_static(b"{}") }
}

/// Adds a resource's CORS headers to a response that lacks them (a proxy
/// function may set its own).
fn add_cors(resp: &mut GatewayResponse, cors: Option<&crate::policy::settings::Cors>, req: &GatewayRequest) {
    let Some(cors) = cors else { return };
    if resp.headers.contains_key(hyper::header::ACCESS_CONTROL_ALLOW_ORIGIN) {
        return;
    }
    if let Some(fixed) = cors.fixed_response_headers() {
        for (name, value) in fixed {
            resp.headers.insert(name.clone(), value.clone());
        }
        return;
    }
    for (name, value) in cors.response_headers(req.header("origin")) {
        if name == "vary" {
            if let Ok(v) = hyper::header::HeaderValue::from_str(&value) {
                resp.headers.append(hyper::header::VARY, v);
            }
        } else {
            headers::set_header(&mut resp.headers, name, &value);
        }
    }
}

/// The gateway's own copy of a request's head (the body comes later), and
/// whether it is an HTTP/1.1 request without a `Host` (neither the header
/// nor an absolute URI's authority), which RFC 9112 (§3.2) has a server
/// refuse with 400: a request without one cannot be told apart from one for
/// another host.
fn parse_request(parts: &hyper::http::request::Parts, conn: http::RequestConn) -> (GatewayRequest, bool) {
    // As the client sent them where the listener recorded them (it read the
    // same head as hyper: the targets and the counts agree), else hyper's.
    let headers = match conn.headers {
        Some(sent) if sent.is_record_of(parts) => sent,
        _ => {
            let bytes = parts.headers.iter().map(|(k, v)| k.as_str().len() + v.len()).sum();
            let mut headers = RequestHeaders::with_capacity(parts.headers.len(), bytes);
            for (k, v) in &parts.headers {
                headers.push_bytes(k.as_str(), v.as_bytes());
            }
            headers
        }
    };
    // `Host` is nearly always among the first few headers: a scan of the
    // request's own copy costs less than hashing the name for hyper's map.
    let host = headers.get("host").or_else(|| parts.uri.authority().map(|a| a.as_str()));
    let lacks_host = host.is_none() && parts.version == hyper::Version::HTTP_11;
    let host = host.unwrap_or("");
    let host_name =
        host.rsplit_once(':').filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit())).map_or(host, |(h, _)| h);
    let host = host_name.to_ascii_lowercase();
    let time = std::time::SystemTime::now();
    let received = Instant::now();
    let req = GatewayRequest {
        ids: request::RequestIds::new(time),
        method: parts.method.clone(),
        full_path: normal_path(parts.uri.path()),
        path_at: 0,
        raw_query: parts.uri.query().map(str::to_string),
        headers,
        body: bytes::Bytes::new(),
        source_ip: conn.peer.ip(),
        host,
        protocol: if parts.version == hyper::Version::HTTP_2 { "HTTP/2.0" } else { "HTTP/1.1" },
        time,
        received,
    };
    (req, lacks_host)
}

/// The request path with one leading slash (`//stage/x` is `/stage/x`).
fn normal_path(path: &str) -> String {
    match path.as_bytes() {
        [b'/', second, ..] if *second != b'/' => path.to_string(),
        _ => format!("/{}", path.trim_start_matches('/')),
    }
}

/// Turns the pipeline's answer into an HTTP response.
pub fn to_http(resp: GatewayResponse) -> Response<Body> {
    let mut out = Response::new(http_body_util::Full::new(resp.body));
    *out.status_mut() = StatusCode::from_u16(resp.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    *out.headers_mut() = resp.headers;
    out
}

impl http::Handler for Gateway {
    fn handle(
        gateway: Arc<Self>,
        req: Request<http::RequestBody>,
        conn: http::RequestConn,
    ) -> impl Future<Output = Response<Body>> + Send + 'static {
        let (parts, body) = req.into_parts();
        let (mut req, lacks_host) = parse_request(&parts, conn);
        // Let go of hyper's read buffer now (see `http::Handler::handle`):
        // the request owns copies of what it needs.
        drop(parts);
        async move {
            let resp = match admit(&mut req, lacks_host, body).await {
                Ok(()) => {
                    // API Gateway's execution logging: with `wasmgate::execution` at
                    // `debug`, each request's execution log (what test-invoke shows)
                    // goes to the server's log. Off, the trace is an empty pointer.
                    let mut trace = if tracing::enabled!(target: "wasmgate::execution", tracing::Level::DEBUG) {
                        Trace::enabled()
                    } else {
                        Trace::default()
                    };
                    let resp = gateway.dispatch(&mut req, &mut trace, true).await;
                    if let Some(recording) = trace.into_recording() {
                        log_execution(req.ids.request_id(), &recording);
                    }
                    resp
                }
                // Refused before routing: the API's own gateway responses
                // are not known yet, so API Gateway's defaults answer.
                Err(rejection) => {
                    let resp = Self::reject(&GatewayResponses::default(), &rejection, &ErrorContext::for_request(&req));
                    gateway.unrouted(&req, resp, true)
                }
            };
            // Every response has its access line, a refusal's too.
            if tracing::enabled!(target: "wasmgate::access", tracing::Level::INFO) {
                tracing::info!(
                    target: "wasmgate::access",
                    request_id = req.ids.request_id(),
                    ip = %req.source_ip,
                    method = %req.method,
                    path = %req.full_path,
                    status = resp.status,
                    bytes = resp.body.len(),
                    latency_us = req.received.elapsed().as_micros() as u64,
                );
            }
            to_http(resp)
        }
    }

    /// API Gateway's throttling response (429 `{"message":"Too Many
    /// Requests"}`, `TooManyRequestsException`), as its account-level limit
    /// answers.
    fn overloaded(&self) -> Response<Body> {
        self.unrouted.record(429, std::time::Duration::ZERO, None);
        let rejection = Rejection::new(ResponseType::Throttled, None);
        let mut resp = to_http(Self::reject(&GatewayResponses::default(), &rejection, &ErrorContext::default()));
        resp.headers_mut().remove(pipeline::REQUEST_ID);
        resp
    }
}

/// What a request must be before it is routed: an HTTP/1.1 request must
/// name its host, and its body (read here, whole) must keep within the
/// limit and keep coming.
async fn admit(req: &mut GatewayRequest, lacks_host: bool, body: http::RequestBody) -> Result<(), Rejection> {
    if lacks_host {
        return Err(Rejection::new(ResponseType::Default4xx, Some("Bad Request".into())).with_status(400));
    }
    // A request without a body (a GET) starts no read at all.
    if !body.is_empty() {
        req.body = http::read_body(body, MAX_BODY_BYTES).await.map_err(|e| match e {
            BodyError::TooLarge(_) => Rejection::new(ResponseType::RequestTooLarge, None),
            BodyError::Read(_) => Rejection::new(ResponseType::Default4xx, None),
            // API Gateway has no type of its own for it: a 4xx with HTTP's
            // status for it.
            BodyError::TimedOut(_) => {
                Rejection::new(ResponseType::Default4xx, Some("Request Timeout".into())).with_status(408)
            }
        })?;
    }
    Ok(())
}

/// Writes a request's execution log to the server's log, a line an event.
#[cold]
#[inline(never)]
fn log_execution(request_id: &str, recording: &pipeline::Recording) {
    for line in &recording.lines {
        tracing::debug!(target: "wasmgate::execution", request_id, "{line}");
    }
}

/// The proxy event v1 for a routed request.
pub(crate) fn proxy_event(
    stage: &CompiledStage,
    method: &MethodEntry,
    path_params: &[(String, String)],
    req: &GatewayRequest,
    key_id: Option<&str>,
) -> Value {
    let binary = is_binary(stage, req.media_type("content-type").as_deref());
    proxy::build_event(stage, method, path_params, req, binary, key_id)
}

fn media_matches(pattern: &str, media: &str) -> bool {
    let pattern = pattern.to_ascii_lowercase();
    match pattern.strip_suffix("/*") {
        _ if pattern == "*/*" => true,
        Some(prefix) => media.split('/').next() == Some(prefix),
        None => pattern == media,
    }
}

fn is_binary(stage: &CompiledStage, media: Option<&str>) -> bool {
    media.is_some_and(|m| stage.api.binary_media_types.iter().any(|p| media_matches(p, m)))
}

/// Whether the client's first `Accept` type is a binary media type (then a
/// base64 proxy body is decoded).
pub(crate) fn accepts_binary(stage: &CompiledStage, req: &GatewayRequest) -> bool {
    is_binary(stage, req.media_type("accept").as_deref())
}
