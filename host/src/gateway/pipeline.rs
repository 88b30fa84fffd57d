//! The per-request pipeline of a stage, in API Gateway's order: route (done
//! by the caller) → request validation → integration (mock, function,
//! function-proxy) → integration response (selection, mapping template,
//! header mappings, overrides). Every failure is a [`Rejection`] naming one of
//! API Gateway's gateway response types; `gateway::respond` turns it into the
//! response, in one place.
//!
//! API keys, usage plans (throttle, quota), the response cache and CORS plug
//! in between routing and validation (the `policy` hooks).

use std::borrow::Cow;
use std::sync::LazyLock;
use std::task::Poll;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use indexmap::IndexMap;
use serde_json::{Value, json};

use super::headers::{header_map, set_header};
use super::request::{GatewayRequest, RequestIds};
use super::responses::ResponseType;
use super::stage::{CompiledStage, MethodEntry};
use crate::config::api::{HeaderSource, IntegrationKind, IntegrationResponseSpec, Passthrough};
use crate::functions::{Functions, FunctionsError};
use crate::policy::Policies;
use crate::policy::catalog::Grant;
use crate::policy::settings::{KeyParameter, MAX_CACHED_BYTES, MethodCache, UnauthorizedStrategy};
use crate::policy::store::CachedResponse;
use crate::runtime::{FailureKind, InvokeOutcome};
use crate::template::{RenderError, Template, TemplateContext, TemplateInput, Val};

/// A failure of the pipeline: a gateway response type, optionally with its
/// message and status replaced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub kind: ResponseType,
    pub message: Option<String>,
    /// A status other than the type's default (e.g. 502 for a malformed proxy response).
    pub status: Option<u16>,
}

impl Rejection {
    pub fn new(kind: ResponseType, message: Option<String>) -> Self {
        Rejection { kind, message, status: None }
    }

    /// The message its gateway response shows: its own, else its type's.
    pub fn shown_message(&self) -> &str {
        self.message.as_deref().unwrap_or(self.kind.default_message())
    }

    pub(crate) fn with_status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self
    }

    fn internal() -> Self {
        Rejection::new(ResponseType::ApiConfigurationError, Some("Internal server error".into()))
    }
}

/// The pipeline's answer. Headers are kept as HTTP's types from the start:
/// the fixed ones are constants, and the response goes out without a second
/// parse.
#[derive(Debug, Clone)]
pub struct GatewayResponse {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// `x-amzn-RequestId`, on every response.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-amzn-requestid");
/// `x-amz-apigw-id` (the extended request id), on every routed response.
pub const APIGW_ID: HeaderName = HeaderName::from_static("x-amz-apigw-id");
/// `X-Amzn-Trace-Id`, on responses from a function.
pub const TRACE_ID: HeaderName = HeaderName::from_static("x-amzn-trace-id");

/// Sets the request's ids on a response (the trace id where a function ran).
fn set_ids(headers: &mut HeaderMap, ids: &RequestIds, traced: bool) {
    headers.insert(REQUEST_ID, ids.request_id_value());
    headers.insert(APIGW_ID, ids.extended_request_id_value());
    if traced {
        headers.insert(TRACE_ID, ids.trace_id_value());
    }
}

/// The headers a mock or function response starts with: `Content-Type:
/// application/json` and the request's ids.
///
/// Every such response has them, so they are copied from a map made once,
/// and the ids written in place, by position: inserting them one by one
/// hashes each name and probes the map, four times per request, about a
/// thousand instructions, twice what the copy costs. The template's
/// entries come in the order they were inserted, which
/// `integration_headers_hold_the_ids` checks.
fn integration_headers(ids: &RequestIds, traced: bool) -> HeaderMap {
    static TEMPLATES: LazyLock<[HeaderMap; 2]> = LazyLock::new(|| {
        [false, true].map(|traced| {
            let mut headers = HeaderMap::with_capacity(4);
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            set_ids(&mut headers, &RequestIds::of("", "", ""), traced);
            headers
        })
    });
    let mut headers = TEMPLATES[usize::from(traced)].clone();
    let mut values = headers.values_mut().skip(1);
    if let (Some(id), Some(extended)) = (values.next(), values.next()) {
        *id = ids.request_id_value();
        *extended = ids.extended_request_id_value();
    }
    if traced && let Some(trace_id) = values.next() {
        *trace_id = ids.trace_id_value();
    }
    debug_assert_eq!(headers.get(REQUEST_ID), Some(&ids.request_id_value()));
    headers
}

/// What one request did: its execution log (what the console's TEST button
/// shows) and its integration's measure (for the metrics and access logs).
///
/// The log is kept by a test invoke, and by a served request while
/// execution logging is on (`wasmgate::execution` at `debug`); otherwise it
/// is off, and then one empty pointer, as it lives in every request's
/// future (which is copied into its box per request).
#[derive(Debug, Default)]
pub struct Trace {
    recording: Option<Box<Recording>>,
    /// Set when the request reached a function.
    pub integration: Option<Integration>,
}

/// A function integration's measure, as API Gateway's access logs and
/// IntegrationLatency see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Integration {
    /// The invocation's time (the function's own, instantiation included);
    /// `None` when the integration timed out (access logs say `-1`, as API
    /// Gateway's).
    pub latency: Option<Duration>,
    /// What the function service answered, as Lambda's: 200 when the
    /// function ran (its own errors included), 429 when it was throttled,
    /// 500 when it could not be invoked; `None` on a timeout.
    pub status: Option<u16>,
}

/// What a [`Trace`] recorded.
#[derive(Debug)]
pub struct Recording {
    started: Instant,
    pub lines: Vec<String>,
    /// The event the function received, the version that ran, its start kind and logs.
    pub invocation: Option<Value>,
}

impl Trace {
    pub fn enabled() -> Self {
        let recording = Recording { started: Instant::now(), lines: Vec::new(), invocation: None };
        Trace { recording: Some(Box::new(recording)), integration: None }
    }

    /// What was recorded (`None` when the trace was off).
    pub fn into_recording(self) -> Option<Recording> {
        self.recording.map(|r| *r)
    }

    /// Adds a line to the execution log (computed only when tracing).
    pub fn log_line(&mut self, line: impl FnOnce() -> String) {
        self.log(line)
    }

    /// Only the check is inlined: the line's formatting, one copy per call
    /// site, stays out of the request path's code (and its instruction cache).
    #[inline(always)]
    fn log(&mut self, line: impl FnOnce() -> String) {
        if let Some(recording) = &mut self.recording {
            recording.record(line);
        }
    }

    /// Whether this trace records (a test invoke, or execution logging).
    fn is_recording(&self) -> bool {
        self.recording.is_some()
    }

    /// Records the invocation (computed only when tracing).
    fn set_invocation(&mut self, invocation: impl FnOnce() -> Value) {
        if let Some(recording) = &mut self.recording {
            recording.invocation = Some(invocation());
        }
    }
}

impl Recording {
    #[cold]
    #[inline(never)]
    fn record(&mut self, line: impl FnOnce() -> String) {
        let at = self.started.elapsed().as_micros();
        self.lines.push(format!("[{:>8.3} ms] {}", at as f64 / 1000.0, line()));
    }
}

/// `$context` of a request, as the mapping templates see it (and, as JSON,
/// the proxy event's `requestContext`). Built straight as template values:
/// it is made for every request that runs a template.
///
/// `key_id` is the id of the API key the request was admitted with (then
/// `identity.apiKey` is the key itself and `identity.apiKeyId` its id).
pub fn template_context(
    stage: &CompiledStage,
    method: &MethodEntry,
    req: &GatewayRequest,
    key_id: Option<&str>,
) -> Val {
    let mut identity = IndexMap::with_capacity(8);
    identity.insert("sourceIp".to_string(), Val::str(req.source_ip.to_string()));
    identity.insert("userAgent".to_string(), req.header("user-agent").map_or(Val::Null, Val::str));
    let api_key = key_id.and_then(|_| req.header("x-api-key"));
    identity.insert("apiKey".to_string(), api_key.map_or(Val::Null, Val::str));
    identity.insert("apiKeyId".to_string(), key_id.map_or(Val::Null, Val::str));
    for key in ["accountId", "caller", "user", "userArn"] {
        identity.insert(key.to_string(), Val::Null);
    }
    let fields = [
        ("accountId", Val::str("000000000000")),
        ("apiId", Val::str(stage.api_id.as_str())),
        ("deploymentId", Val::str(stage.deployment_id.as_str())),
        ("domainName", Val::str(req.host.as_str())),
        ("domainPrefix", Val::str(req.host.split('.').next().unwrap_or(""))),
        ("extendedRequestId", Val::str(req.ids.extended_request_id())),
        ("httpMethod", Val::str(req.method.as_str())),
        ("identity", Val::new_map(identity)),
        ("path", Val::str(req.full_path.as_str())),
        ("protocol", Val::str(req.protocol)),
        ("requestId", Val::str(req.ids.request_id())),
        ("requestTime", Val::str(req.clf_time())),
        ("requestTimeEpoch", Val::Int(req.epoch_ms() as i64)),
        ("resourceId", Val::str(method.resource_id.as_str())),
        ("resourcePath", Val::str(method.spec.resource_path.as_str())),
        ("stage", Val::str(stage.stage.as_str())),
    ];
    Val::new_map(fields.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
}

fn template_input(
    stage: &CompiledStage,
    req: &GatewayRequest,
    path_params: &[(String, String)],
    body: String,
) -> TemplateInput {
    TemplateInput {
        body,
        path: path_params.iter().cloned().collect(),
        querystring: req.query(),
        header: req.header_map(),
        stage_variables: stage.variables.clone(),
    }
}

/// Picks the template for a media type: exact, else `application/json`, else the first.
fn pick_template<'a>(
    templates: &'a IndexMap<String, std::sync::Arc<Template>>,
    media: &str,
) -> Option<(&'a str, &'a Template)> {
    templates
        .get_key_value(media)
        .or_else(|| templates.get_key_value("application/json"))
        .or_else(|| templates.first())
        .map(|(k, v)| (k.as_str(), v.as_ref()))
}

/// How long a template renders on an async worker before it is run again
/// where it may block: a render that long is no ordinary one (nearly all
/// take microseconds), and the worker serves other requests meanwhile.
const RENDER_SLICE: Duration = Duration::from_millis(1);

/// Renders within [`RENDER_SLICE`] on the async worker; a render that needs
/// longer runs again from the start (with `$context` as it was) on this
/// thread after handing the worker's other tasks to another thread
/// (`block_in_place`), up to the template's own limits.
fn render_bounded(
    template: &Template,
    input: &TemplateInput,
    ctx: &mut TemplateContext,
) -> Result<String, RenderError> {
    // What the cut-off attempt wrote into `$context` must not be seen twice.
    let before = template.uses_context().then(|| ctx.clone());
    match template.render_within(input, ctx, RENDER_SLICE) {
        Err(e) if e.is_out_of_slice() => {
            if let Some(before) = before {
                *ctx = before;
            }
            let on_worker = tokio::runtime::Handle::try_current()
                .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
            if on_worker {
                tokio::task::block_in_place(|| template.render(input, ctx))
            } else {
                template.render(input, ctx)
            }
        }
        done => done,
    }
}

fn render(
    template: &Template,
    input: &TemplateInput,
    ctx: &mut LazyContext<'_>,
    trace: &mut Trace,
    what: &str,
) -> Result<String, Rejection> {
    let mut unused = TemplateContext::unused();
    let ctx = if template.uses_context() { ctx.get() } else { &mut unused };
    render_bounded(template, input, ctx).map_err(|e| {
        tracing::warn!(error = %e, "{what} mapping template failed");
        trace.log(|| format!("Execution failed due to configuration error: {what} mapping template: {e}"));
        Rejection::internal()
    })
}

/// `$context` of one request, made only when a template uses it (a request
/// without such templates never pays for it; one built for the request
/// template is the one the response template sees).
struct LazyContext<'a> {
    call: Call<'a>,
    ctx: Option<TemplateContext>,
}

impl<'a> LazyContext<'a> {
    fn new(call: Call<'a>) -> Self {
        LazyContext { call, ctx: None }
    }

    fn get(&mut self) -> &mut TemplateContext {
        let Call { stage, method, req, .. } = self.call;
        let key_id = self.call.key_id();
        self.ctx.get_or_insert_with(|| TemplateContext::from_val(template_context(stage, method, req, key_id)))
    }
}

/// One routed request on its way through the pipeline.
#[derive(Clone, Copy)]
pub struct Call<'a> {
    pub functions: &'a Functions,
    /// The server's policies (`None` in a test invoke: no cache).
    pub policies: Option<&'a Policies>,
    /// The API key's grant the request was admitted with.
    pub grant: Option<&'a Grant>,
    pub stage: &'a CompiledStage,
    pub method: &'a MethodEntry,
    pub path_params: &'a [(String, String)],
    pub req: &'a GatewayRequest,
}

impl<'a> Call<'a> {
    /// What the mapping templates see, with `body` as `$input.body`.
    fn input(&self, body: String) -> TemplateInput {
        template_input(self.stage, self.req, self.path_params, body)
    }

    fn context(&self) -> LazyContext<'a> {
        LazyContext::new(*self)
    }

    /// `$context.identity.apiKeyId`.
    pub fn key_id(&self) -> Option<&'a str> {
        self.grant.map(|g| g.key.id.as_str())
    }
}

/// Runs the pipeline for a routed request.
pub async fn run(call: Call<'_>, trace: &mut Trace) -> Result<GatewayResponse, Rejection> {
    let Call { stage, method, path_params, req, .. } = call;
    trace.log(|| format!("Starting execution for request: {}", req.ids.request_id()));
    trace.log(|| format!("HTTP Method: {}, Resource Path: {}", req.method, method.spec.resource_path));
    super::validation::validate(&method.spec, req, path_params).inspect_err(|r| {
        trace.log(|| format!("Request validation failed: {}", r.message.clone().unwrap_or_default()));
    })?;
    let cache = match (call.policies, &method.policy.cache) {
        (Some(policies), Some(cache)) => Some((policies, cache)),
        _ => None,
    };
    let mut stored_under = None;
    let mut warning = false;
    if let Some((policies, cache)) = cache {
        let key = cache_key(call, cache);
        let refresh = match wants_refresh(req) {
            false => false,
            true if !cache.require_authorization || call.grant.is_some_and(|g| g.key.invalidate_cache) => {
                trace.log(|| {
                    "Cache-Control: max-age=0 from an authorized caller: the cached response is replaced".into()
                });
                true
            }
            true => match cache.unauthorized {
                UnauthorizedStrategy::FailWith403 => {
                    trace.log(|| "Cache-Control: max-age=0 without the right to invalidate: 403".into());
                    return Err(Rejection::new(ResponseType::AccessDenied, Some("Unauthorized".into())));
                }
                UnauthorizedStrategy::SucceedWithResponseHeader => {
                    warning = true;
                    false
                }
                UnauthorizedStrategy::SucceedWithoutResponseHeader => false,
            },
        };
        if !refresh && let Some(hit) = policies.cache_get(&method.policy.stage, &key).await {
            cache.stats.hit();
            trace.log(|| format!("Cache hit: {key:?}"));
            let mut response = from_cache(&hit, &req.ids);
            if warning {
                response.headers.insert(hyper::header::WARNING, HeaderValue::from_static(CACHE_WARNING));
            }
            return Ok(response);
        }
        cache.stats.miss();
        trace.log(|| format!("Cache miss: {key:?}"));
        stored_under = Some(key);
    }
    let integration = &method.spec.integration;
    // Each integration makes its endpoint request, calls the function (but
    // a mock) and shapes the response, all in this one future: a layer of
    // futures per step would copy the call's outcome up through each.
    // Mock and function responses get the ids where their headers start
    // (`integration_response`); a proxy response's headers are the function's.
    let response = match &integration.kind {
        IntegrationKind::Mock => mock(call, trace)?,
        IntegrationKind::Function { .. } => {
            let mut ctx = call.context();
            let event = function_event(call, &mut ctx, trace)?;
            let outcome = invoke(call, &event, trace).await?;
            function_response(call, outcome, &mut ctx, trace)?
        }
        IntegrationKind::FunctionProxy { .. } => {
            let event = super::proxy_event(stage, method, path_params, req, call.key_id()).to_string();
            let outcome = invoke(call, &event, trace).await?;
            let mut response = proxy_response(call, outcome, trace)?;
            set_ids(&mut response.headers, &req.ids, true);
            response
        }
    };
    trace.log(|| format!("Method completed with status: {}", response.status));
    let mut response = response;
    if let (Some((policies, cache)), Some(key)) = (cache, stored_under)
        && (200..300).contains(&response.status)
        && response.body.len() <= MAX_CACHED_BYTES
    {
        policies.cache_put(&method.policy.stage, &key, to_cache(&response), cache.ttl, cache.capacity_bytes).await;
    }
    if warning {
        response.headers.insert(hyper::header::WARNING, HeaderValue::from_static(CACHE_WARNING));
    }
    Ok(response)
}

/// The `Warning` on a response whose `Cache-Control: max-age=0` was ignored
/// (`SUCCEED_WITH_RESPONSE_HEADER`).
const CACHE_WARNING: &str = "199 - \"Cache-Control: max-age=0 ignored: not authorized to invalidate the cache\"";

/// Whether the request asks for a fresh response (`Cache-Control: max-age=0`).
fn wants_refresh(req: &GatewayRequest) -> bool {
    req.header("cache-control").is_some_and(|v| v.split(',').any(|d| d.trim().eq_ignore_ascii_case("max-age=0")))
}

/// A request's cache key: the method, the path after the stage (so the
/// resource path with its path parameters' values: a cache never answers
/// `/items/2` with `/items/1`'s response) and the method's cache-key
/// parameters, by name and value.
fn cache_key(call: Call<'_>, cache: &MethodCache) -> String {
    let Call { req, path_params, .. } = call;
    let (method, path) = (req.method.as_str(), req.path());
    let mut key = String::with_capacity(method.len() + 1 + path.len());
    key.push_str(method);
    key.push(' ');
    key.push_str(path);
    for p in &cache.key_parameters {
        match p {
            KeyParameter::Path(name) => {
                let value = path_params.iter().find(|(k, _)| k == name).map_or("", |(_, v)| v.as_str());
                key.push_str(&format!("\npath.{name}={value}"));
            }
            KeyParameter::Query(name) => {
                let values: Vec<String> = req
                    .raw_query
                    .as_deref()
                    .map(|q| {
                        form_urlencoded::parse(q.as_bytes())
                            .filter(|(k, _)| k == name)
                            .map(|(_, v)| v.into_owned())
                            .collect()
                    })
                    .unwrap_or_default();
                key.push_str(&format!("\nquerystring.{name}={}", values.join(",")));
            }
            KeyParameter::Header(name) => {
                key.push_str(&format!("\nheader.{name}={}", req.header(name).unwrap_or("")));
            }
        }
    }
    key
}

/// What a cache keeps of a response: all but the request's own ids.
fn to_cache(response: &GatewayResponse) -> CachedResponse {
    let mut headers = HeaderMap::with_capacity(response.headers.len());
    for (name, value) in &response.headers {
        if *name != REQUEST_ID && *name != APIGW_ID && *name != TRACE_ID {
            headers.append(name.clone(), value.clone());
        }
    }
    CachedResponse { status: response.status, headers, body: response.body.clone() }
}

/// A cached response for this request: its ids are this request's.
fn from_cache(hit: &CachedResponse, ids: &RequestIds) -> GatewayResponse {
    let mut headers = HeaderMap::with_capacity(hit.headers.len() + 3);
    for (name, value) in &hit.headers {
        headers.append(name.clone(), value.clone());
    }
    set_ids(&mut headers, ids, false);
    GatewayResponse { status: hit.status, headers, body: hit.body.clone() }
}

/// The request template for the request's content type, or the passthrough
/// decision. `Ok(None)`: pass the body through.
fn request_template<'a>(
    method: &'a MethodEntry,
    req: &GatewayRequest,
    trace: &mut Trace,
) -> Result<Option<&'a Template>, Rejection> {
    let integration = &method.spec.integration;
    let media = req.media_type("content-type");
    let media = media.as_deref().unwrap_or("application/json");
    if let Some(t) = integration.request_templates.get(media) {
        trace.log(|| format!("Using request template for content type {media}"));
        return Ok(Some(t));
    }
    let pass = match integration.passthrough {
        Passthrough::WhenNoMatch => true,
        Passthrough::WhenNoTemplates => integration.request_templates.is_empty(),
        Passthrough::Never => false,
    };
    if pass {
        trace.log(|| "No request template matched: passing the body through".into());
        Ok(None)
    } else {
        trace.log(|| format!("No request template for content type {media}: 415"));
        Err(Rejection::new(ResponseType::UnsupportedMediaType, None))
    }
}

/// A mock integration: the request template says the status
/// (`{"statusCode": 200}`), the integration response makes the body.
fn mock(call: Call<'_>, trace: &mut Trace) -> Result<GatewayResponse, Rejection> {
    let Call { method, req, .. } = call;
    let body = String::from_utf8_lossy(&req.body).into_owned();
    let input = call.input(body.clone());
    let mut ctx = call.context();
    let status = match request_template(method, req, trace)? {
        Some(t) => {
            let rendered = render(t, &input, &mut ctx, trace, "request")?;
            trace.log(|| format!("Endpoint request body after transformations: {rendered}"));
            mock_status(&rendered).ok_or_else(|| {
                trace.log(|| "Execution failed: the mock request template gave no integer statusCode".into());
                Rejection::internal()
            })?
        }
        None if method.spec.integration.request_templates.is_empty() => 200,
        None => mock_status(&body).ok_or_else(Rejection::internal)?,
    };
    let selector = status.to_string();
    let chosen = select_response(&method.spec.integration.responses, Some(&selector), trace)?;
    integration_response(call, chosen, String::new(), &mut ctx, trace)
}

/// The `statusCode` of a mock request template's output. API Gateway accepts
/// JSON and also the unquoted-key form `{statusCode: 200}`.
fn mock_status(text: &str) -> Option<u16> {
    if let Ok(Value::Object(o)) = serde_json::from_str::<Value>(text) {
        return match o.get("statusCode")? {
            Value::Number(n) => n.as_u64().and_then(|n| u16::try_from(n).ok()),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        };
    }
    let after = &text[text.find("statusCode")? + "statusCode".len()..];
    let after = after.trim_start_matches(['"', '\'', ' ', '\t', '\n', '\r']).strip_prefix(':')?;
    let digits: String = after.trim_start().chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// Invokes the stage's function within the integration timeout.
async fn invoke(call: Call<'_>, event: &str, trace: &mut Trace) -> Result<InvokeOutcome, Rejection> {
    let Call { functions, method, req, .. } = call;
    let Some(target) = &method.function else {
        return Err(Rejection::internal());
    };
    let qualifier = target.qualified();
    trace.log(|| format!("Endpoint request URI: function {qualifier}"));
    trace.log(|| format!("Endpoint request body after transformations: {event}"));
    let timeout = Duration::from_millis(method.spec.integration.timeout_ms);
    // Boxed: the call's future is most of a request's state, and every
    // future around it (up to the connection's) would otherwise carry it
    // inline and be copied whole at each level.
    // The guest's output is kept only for a recording trace (test invoke's
    // report shows it; execution logging, which writes the lines alone,
    // pays for it only while it is on).
    let keep_logs = trace.is_recording();
    let mut call =
        crate::boxed::boxed_in_place(|| functions.invoke_target(target, event, req.ids.request_id(), keep_logs));
    // The deadline is read before the first poll: a cold start loads the
    // version within it, and API Gateway's timeout counts that too.
    let sent = tokio::time::Instant::now();
    let deadline = sent + timeout;
    // A hot call usually completes in its first poll (the guest runs to its
    // end without yielding), so the timer — a registration in tokio's timer
    // wheel, a measurable share of a small request — is armed only when the
    // call is still pending after it. (`http::read_body` waits for a body's
    // pieces the same way.)
    let first = std::future::poll_fn(|cx| Poll::Ready(call.as_mut().poll(cx))).await;
    let outcome = match first {
        Poll::Ready(outcome) => Ok(outcome),
        // Boxed: the timer is large, and only a slow call needs it.
        Poll::Pending => Box::pin(tokio::time::timeout_at(deadline, call)).await,
    };
    trace.integration = Some(match &outcome {
        Err(_) => Integration { latency: None, status: None },
        // The call's own time, as the runtime measured it (instantiation
        // included; a version loaded for the call is not).
        Ok(Ok(o)) => Integration { latency: Some(o.duration), status: Some(200) },
        Ok(Err(e)) => {
            let status = match e {
                FunctionsError::Runtime(crate::runtime::RuntimeError::Throttled { .. }) => 429,
                _ => 500,
            };
            Integration { latency: Some(sent.elapsed()), status: Some(status) }
        }
    });
    let outcome = match outcome {
        // The integration's own limit (`timeout_ms`, API Gateway's
        // `timeoutInMillis`): 504. The call is dropped with it, and its
        // instance with the call.
        Err(_) => {
            trace.log(|| {
                format!(
                    "Execution failed due to a timeout error: the integration timeout of {} ms elapsed",
                    timeout.as_millis()
                )
            });
            return Err(Rejection::new(ResponseType::IntegrationTimeout, None));
        }
        Ok(Err(e)) => {
            tracing::warn!(function = qualifier, error = %e, request_id = req.ids.request_id(), "function invocation failed");
            trace.log(|| format!("Execution failed: the function could not be invoked: {e}"));
            let rejection = match e {
                FunctionsError::Registry(_) | FunctionsError::Runtime(_) | FunctionsError::InvalidConfig(_) => {
                    Rejection::internal()
                }
            };
            return Err(rejection);
        }
        Ok(Ok(outcome)) => outcome,
    };
    trace.log(|| {
        format!(
            "Function {qualifier} ran version {} ({} start) in {:.3} ms",
            outcome.version,
            outcome.start.as_str(),
            outcome.duration.as_secs_f64() * 1000.0
        )
    });
    trace.set_invocation(|| {
        json!({
            "event": serde_json::from_str::<Value>(event).unwrap_or(Value::Null),
            "function": qualifier,
            "version": outcome.version,
            "start": outcome.start,
            "duration_us": outcome.duration.as_micros() as u64,
            "logs": outcome.logs,
        })
    });
    // The function's own timeout is a function error like any other, as on
    // AWS: a custom integration selects a response by its message, a proxy
    // integration answers 502.
    if let Err(e) = &outcome.result
        && e.kind == FailureKind::Timeout
    {
        trace.log(|| format!("The function timed out (its timeout, not the integration's): {}", e.error_message));
    }
    Ok(outcome)
}

/// A function integration's (Lambda custom integration's) event: the
/// request template's output, else the body passed through.
fn function_event(
    call: Call<'_>,
    ctx: &mut LazyContext<'_>,
    trace: &mut Trace,
) -> Result<Cow<'static, str>, Rejection> {
    let Call { method, req, .. } = call;
    let body = String::from_utf8_lossy(&req.body).into_owned();
    let event: Cow<'static, str> = match request_template(method, req, trace)? {
        Some(t) => render(t, &call.input(body.clone()), ctx, trace, "request")?.into(),
        // No body, no template (a plain GET): the empty object, known valid.
        None if body.trim().is_empty() => Cow::Borrowed("{}"),
        None => body.into(),
    };
    if matches!(event, Cow::Owned(_)) && serde_json::from_str::<serde::de::IgnoredAny>(&event).is_err() {
        trace.log(|| format!("Endpoint request body after transformations: {event}"));
        trace.log(|| "Execution failed: the event is not valid JSON (Could not parse request body into json)".into());
        return Err(Rejection::internal());
    }
    Ok(event)
}

/// A function integration's response: the integration response its result
/// selects (by the error message for an error), applied.
fn function_response(
    call: Call<'_>,
    outcome: InvokeOutcome,
    ctx: &mut LazyContext<'_>,
    trace: &mut Trace,
) -> Result<GatewayResponse, Rejection> {
    let (output, error_message) = match outcome.result {
        Ok(output) => (output, None),
        Err(e) => (e.to_json(), Some(e.error_message)),
    };
    trace.log(|| format!("Endpoint response body before transformations: {output}"));
    let chosen = select_response(&call.method.spec.integration.responses, error_message.as_deref(), trace)?;
    integration_response(call, chosen, output, ctx, trace)
}

/// The integration response for a selector (the error message of a
/// function, the status of a mock): the first whose pattern matches the
/// whole selector, else the default. A successful function call has no
/// selector and always gets the default, as API Gateway does.
fn select_response<'a>(
    responses: &'a [IntegrationResponseSpec],
    selector: Option<&str>,
    trace: &mut Trace,
) -> Result<Option<&'a IntegrationResponseSpec>, Rejection> {
    if responses.is_empty() {
        return Ok(None);
    }
    let matched = selector.and_then(|s| responses.iter().find(|r| r.pattern.as_ref().is_some_and(|p| p.is_match(s))));
    let chosen = matched.or_else(|| responses.iter().find(|r| r.pattern.is_none()));
    match chosen {
        Some(r) => {
            trace.log(|| {
                format!(
                    "Selected integration response: status {} ({})",
                    r.status,
                    r.selection_pattern.as_ref().map(|p| format!("pattern {p}")).unwrap_or_else(|| "default".into())
                )
            });
            Ok(Some(r))
        }
        None => {
            trace.log(|| "Execution failed due to configuration error: no integration response matched and there is no default".into());
            Err(Rejection::internal())
        }
    }
}

/// Applies an integration response: mapping template (by `Accept`), header
/// mappings, and the template's `$context.responseOverride`.
fn integration_response(
    call: Call<'_>,
    chosen: Option<&IntegrationResponseSpec>,
    body: String,
    ctx: &mut LazyContext<'_>,
    trace: &mut Trace,
) -> Result<GatewayResponse, Rejection> {
    let mut status = chosen.map_or(200, |r| r.status);
    let template = match chosen {
        Some(r) if !r.templates.is_empty() => {
            let accept = call.req.media_type("accept");
            pick_template(&r.templates, accept.as_deref().filter(|m| *m != "*/*").unwrap_or("application/json"))
        }
        _ => None,
    };
    let (content_type, rendered) = match template {
        Some((media, t)) => (media, Some(render(t, &call.input(body.clone()), ctx, trace, "response")?)),
        None => ("application/json", None),
    };
    // A function's response carries its trace id; a mock's does not.
    let traced = !matches!(call.method.spec.integration.kind, IntegrationKind::Mock);
    let mut headers = integration_headers(&call.req.ids, traced);
    if content_type != "application/json" {
        match HeaderValue::from_str(content_type) {
            Ok(v) => headers.insert(CONTENT_TYPE, v),
            Err(_) => headers.remove(CONTENT_TYPE),
        };
    }
    let mapped = chosen.is_some_and(|r| !r.headers.is_empty()) || ctx.ctx.is_some();
    if let Some(r) = chosen {
        for (name, source) in &r.headers {
            let value = match source {
                HeaderSource::Static(v) => Some(v.clone()),
                HeaderSource::IntegrationHeader(_) => None,
                HeaderSource::Body => Some(body.clone()),
                HeaderSource::BodyField(field) => {
                    serde_json::from_str::<Value>(&body).ok().and_then(|b| match b.get(field) {
                        Some(Value::String(s)) => Some(s.clone()),
                        Some(Value::Null) | None => None,
                        Some(other) => Some(other.to_string()),
                    })
                }
            };
            if let Some(v) = value {
                set_header(&mut headers, name, &v);
            }
        }
    }
    // Overrides exist only where a template ran.
    if let Some(ctx) = &ctx.ctx {
        if let Some(s) = ctx.response_override_status() {
            status = s;
        }
        for (name, value) in ctx.response_override_headers() {
            set_header(&mut headers, &name, &value);
        }
    }
    if mapped {
        // The ids are API Gateway's own: a mapping or override never replaces them.
        set_ids(&mut headers, &call.req.ids, traced);
    }
    let out = rendered.unwrap_or(body);
    trace.log(|| format!("Method response body after transformations: {out}"));
    Ok(GatewayResponse { status, headers, body: Bytes::from(out) })
}

/// A function-proxy integration's (Lambda proxy's) response: the
/// function's `{statusCode, headers, body}` object (its event is the proxy
/// event v1, [`super::proxy_event`]).
fn proxy_response(call: Call<'_>, outcome: InvokeOutcome, trace: &mut Trace) -> Result<GatewayResponse, Rejection> {
    let Call { stage, req, .. } = call;
    let output = match outcome.result {
        Ok(output) => output,
        Err(e) => {
            trace.log(|| {
                format!("Lambda execution failed with status 200 due to customer function error: {}", e.error_message)
            });
            return Err(
                Rejection::new(ResponseType::IntegrationFailure, Some("Internal server error".into())).with_status(502)
            );
        }
    };
    trace.log(|| format!("Endpoint response body before transformations: {output}"));
    let binary = super::accepts_binary(stage, req);
    match super::proxy::parse_response(&output, binary) {
        Ok(r) => {
            let headers = header_map(&r.headers);
            Ok(GatewayResponse { status: r.status, headers, body: Bytes::from(r.body) })
        }
        Err(e) => {
            trace.log(|| format!("Execution failed due to configuration error: Malformed Lambda proxy response: {e}"));
            Err(Rejection::new(ResponseType::IntegrationFailure, Some("Internal server error".into())).with_status(502))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn integration_headers_hold_the_ids() {
        let ids = RequestIds::new(std::time::SystemTime::now());
        for traced in [false, true] {
            let headers = integration_headers(&ids, traced);
            assert_eq!(headers.len(), if traced { 4 } else { 3 });
            assert_eq!(headers[CONTENT_TYPE], "application/json");
            assert_eq!(headers[REQUEST_ID], ids.request_id());
            assert_eq!(headers[APIGW_ID], ids.extended_request_id());
            assert_eq!(headers.get(TRACE_ID).map(|v| v.to_str().unwrap()), traced.then(|| ids.trace_id()));
        }
        // Each response gets its own ids.
        let other = RequestIds::new(std::time::SystemTime::now());
        assert_eq!(integration_headers(&other, true)[REQUEST_ID], other.request_id());
    }

    /// A render that outlasts its slice gives the async worker up: with one
    /// worker, a task spawned after it still runs (and ends) while it renders.
    #[test]
    fn a_long_render_leaves_the_worker_to_other_tasks() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        // About 200,000 steps: far more than a slice, within the budget.
        let source = "#foreach($i in [1..400])#foreach($j in [1..200])$j#end#end";
        let template = Arc::new(Template::parse(source).unwrap());
        let ended = Arc::new(AtomicUsize::new(0));
        let (heavy_at, light_at) = runtime.block_on(async {
            let (t, e) = (template.clone(), ended.clone());
            let heavy = tokio::spawn(async move {
                let input = TemplateInput::default();
                let mut ctx = TemplateContext::new(json!({"n": 1}));
                let out = render_bounded(&t, &input, &mut ctx).expect("renders within its budget");
                assert!(out.ends_with("200"));
                e.fetch_add(1, Ordering::SeqCst)
            });
            let e = ended.clone();
            let light = tokio::spawn(async move { e.fetch_add(1, Ordering::SeqCst) });
            (heavy.await.unwrap(), light.await.unwrap())
        });
        assert_eq!((light_at, heavy_at), (0, 1), "the light task ended first, while the template rendered");
    }

    #[test]
    fn a_render_run_again_sees_context_as_it_was() {
        // The template counts into $context: run again after its slice, it
        // must count from the start, not from where the first attempt got.
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let source =
            "#foreach($i in [1..400])#foreach($j in [1..200])#set($context.n = $context.n + 1)#end#end$context.n";
        let template = Template::parse(source).unwrap();
        let out = runtime.block_on(async {
            let mut ctx = TemplateContext::new(json!({"n": 0}));
            render_bounded(&template, &TemplateInput::default(), &mut ctx).unwrap()
        });
        assert_eq!(out, "80000");
    }

    #[test]
    fn mock_status_reads_json_and_the_unquoted_form() {
        assert_eq!(mock_status(r#"{"statusCode": 200}"#), Some(200));
        assert_eq!(mock_status(r#"{"statusCode": "404"}"#), Some(404));
        assert_eq!(mock_status("{statusCode: 201}"), Some(201));
        assert_eq!(mock_status(r#"{"other": 1}"#), None);
        assert_eq!(mock_status("nonsense"), None);
    }
}
