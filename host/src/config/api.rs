//! APIs of `gateway.toml`, validated and resolved: mapping templates parsed,
//! JSON Schema models compiled, selection patterns compiled, references
//! (functions, models, validators) checked — every error with its key and line.
//! The same resolution runs when a stored deployment is loaded.

use std::sync::Arc;

use indexmap::IndexMap;
use regex::Regex;
use toml::Spanned;

use super::ConfigError;
use super::raw::{RawApi, RawIntegration, RawMethod};
use super::resolve::Ctx;
use crate::access_log::{AccessLogSpec, Destination, Format};
use crate::gateway::responses::{Customisation, GatewayResponses, ResponseType};
use crate::policy::settings::{Cors, KeyParameter, MethodSettings, StageCache, StageSettings, UnauthorizedStrategy};
use crate::policy::store::Throttle;
use crate::template::Template;

/// The HTTP methods a resource can declare.
pub const METHODS: &[&str] = &["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "ANY"];

/// A validated API.
#[derive(Debug, Clone)]
pub struct ApiSpec {
    pub name: String,
    pub description: String,
    /// Served under `/{base_path}/{stage}/…` when set.
    pub base_path: Option<String>,
    pub hosts: Vec<String>,
    pub binary_media_types: Vec<String>,
    pub methods: Vec<Arc<MethodSpec>>,
    pub stages: IndexMap<String, StageSpec>,
    pub gateway_responses: Arc<GatewayResponses>,
    /// Resource path → its CORS.
    pub cors: IndexMap<String, Arc<Cors>>,
    /// The API as written, for deployment snapshots.
    pub raw: RawApi,
}

#[derive(Debug, Clone)]
pub struct StageSpec {
    pub description: String,
    pub variables: IndexMap<String, String>,
    /// Throttling, the cache and per-method overrides.
    pub settings: StageSettings,
    /// Its access log, if it keeps one.
    pub access_log: Option<AccessLogSpec>,
}

/// One method of one resource.
#[derive(Debug)]
pub struct MethodSpec {
    pub resource_path: String,
    pub http_method: String,
    pub api_key_required: bool,
    pub validate_body: bool,
    pub validate_parameters: bool,
    /// Required parameters as full keys (`method.request.querystring.q`), sorted.
    pub required_parameters: Vec<String>,
    /// Content type → model.
    pub request_models: IndexMap<String, Model>,
    pub integration: IntegrationSpec,
    /// What keys the stage cache besides the method and path.
    pub cache_key_parameters: Vec<KeyParameter>,
    /// The OPTIONS method "Enable CORS" adds: it answers preflights.
    pub cors_preflight: bool,
}

/// A compiled JSON Schema model.
#[derive(Clone)]
pub struct Model {
    pub name: String,
    pub validator: Arc<jsonschema::Validator>,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model").field("name", &self.name).finish()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IntegrationKind {
    /// The response comes from the integration response templates.
    Mock,
    /// A function, with request/response mapping (Lambda custom integration).
    Function { function: String },
    /// A function receiving the proxy event v1 (Lambda proxy integration).
    FunctionProxy { function: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Passthrough {
    WhenNoMatch,
    WhenNoTemplates,
    Never,
}

#[derive(Debug)]
pub struct IntegrationSpec {
    pub kind: IntegrationKind,
    pub passthrough: Passthrough,
    pub timeout_ms: u64,
    pub request_templates: IndexMap<String, Arc<Template>>,
    pub responses: Vec<IntegrationResponseSpec>,
}

#[derive(Debug)]
pub struct IntegrationResponseSpec {
    /// Matched against the whole error message (or, for mocks, the status).
    pub pattern: Option<Regex>,
    /// The pattern as written.
    pub selection_pattern: Option<String>,
    pub status: u16,
    pub templates: IndexMap<String, Arc<Template>>,
    pub headers: Vec<(String, HeaderSource)>,
}

/// Where a mapped response header's value comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderSource {
    Static(String),
    IntegrationHeader(String),
    Body,
    BodyField(String),
}

/// A function a stage's methods call: as the definition writes it, and as
/// the stage's variables make it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionCall {
    /// `ItemsFunction:${stageVariables.lambdaAlias}`.
    pub written: String,
    /// `ItemsFunction:prod`.
    pub qualified: String,
    /// `GET /items`, … (those calling it).
    pub methods: Vec<String>,
    /// The stage variables `written` uses, and their values in the stage.
    pub variables: Vec<(String, Option<String>)>,
}

impl FunctionCall {
    /// The function's name and qualifier, as the registry reads them.
    pub fn target(&self) -> crate::registry::Qualifier<'_> {
        crate::registry::Qualifier::parse(&self.qualified)
    }

    /// The function's name (without its qualifier).
    pub fn function(&self) -> &str {
        self.target().function
    }

    /// Why the call does not resolve, in one line: which methods call what,
    /// through which stage variables, and `error` (the registry's answer).
    pub fn explain(&self, error: &str) -> String {
        let mut out = format!(
            "{} call{} {}",
            self.methods.join(", "),
            if self.methods.len() == 1 { "s" } else { "" },
            self.written
        );
        let variables: Vec<String> = self
            .variables
            .iter()
            .map(|(name, value)| match value {
                Some(v) => format!("{name} = {v:?}"),
                None => format!("{name} (not set)"),
            })
            .collect();
        if !variables.is_empty() {
            out.push_str(&format!(
                ", with the stage variable{} {}",
                if variables.len() == 1 { "" } else { "s" },
                variables.join(", ")
            ));
        }
        out.push_str(": ");
        out.push_str(error);
        out
    }
}

/// The names of the stage variables `text` uses (`${stageVariables.NAME}`).
fn stage_variable_names(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("${stageVariables.") {
        let after = &rest[start + "${stageVariables.".len()..];
        let Some(end) = after.find('}') else { break };
        names.push(after[..end].to_string());
        rest = &after[end + 1..];
    }
    names
}

impl ApiSpec {
    /// The functions `stage`'s methods call, one entry per qualifier the
    /// stage's variables make, in the order of the methods.
    pub fn function_calls(&self, stage: &str) -> Vec<FunctionCall> {
        let Some(spec) = self.stages.get(stage) else { return Vec::new() };
        let mut calls: Vec<FunctionCall> = Vec::new();
        for m in &self.methods {
            let (IntegrationKind::Function { function } | IntegrationKind::FunctionProxy { function }) =
                &m.integration.kind
            else {
                continue;
            };
            let qualified = substitute_stage_variables(function, &spec.variables);
            let method = format!("{} {}", m.http_method, m.resource_path);
            match calls.iter_mut().find(|c| c.qualified == qualified) {
                Some(call) => call.methods.push(method),
                None => calls.push(FunctionCall {
                    written: function.clone(),
                    qualified,
                    methods: vec![method],
                    variables: stage_variable_names(function)
                        .into_iter()
                        .map(|name| {
                            let value = spec.variables.get(&name).cloned();
                            (name, value)
                        })
                        .collect(),
                }),
            }
        }
        calls
    }
}

/// Which functions exist (to check function integrations against).
pub type KnownFunctions<'a> = &'a dyn Fn(&str) -> bool;

pub(super) fn resolve_api(
    cx: &Ctx<'_>,
    name: &str,
    api: &Spanned<RawApi>,
    known_functions: KnownFunctions<'_>,
) -> Result<ApiSpec, ConfigError> {
    let key = format!("apis.{name}");
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
        return cx.err(api.span(), key, "API names use letters, digits, '-' and '_'");
    }
    let raw = api.get_ref();
    let base_path = match &raw.base_path {
        None => None,
        Some(b) => {
            let p = b.get_ref().trim_matches('/');
            if p.is_empty() || p.contains('/') || !p.bytes().all(|c| c.is_ascii_alphanumeric() || b"-_.".contains(&c)) {
                return cx.err(
                    b.span(),
                    format!("{key}.base_path"),
                    "one path segment of letters, digits, '-', '_' or '.'",
                );
            }
            Some(p.to_string())
        }
    };

    let mut models = IndexMap::new();
    for (model_name, m) in &raw.models {
        let mkey = format!("{key}.models.{model_name}");
        if !model_name.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return cx.err(m.span(), mkey, "model names are alphanumeric");
        }
        let schema: serde_json::Value = match serde_json::from_str(m.get_ref().schema.get_ref()) {
            Ok(s) => s,
            Err(e) => return cx.err(m.get_ref().schema.span(), format!("{mkey}.schema"), format!("not JSON: {e}")),
        };
        let validator = match jsonschema::draft4::new(&schema) {
            Ok(v) => v,
            Err(e) => {
                return cx.err(
                    m.get_ref().schema.span(),
                    format!("{mkey}.schema"),
                    format!("not a valid JSON Schema (draft 4): {e}"),
                );
            }
        };
        models.insert(model_name.clone(), Model { name: model_name.clone(), validator: Arc::new(validator) });
    }

    let mut methods = Vec::new();
    for (path, resource) in &raw.resources {
        let rkey = format!("{key}.resources.\"{path}\"");
        if !path.starts_with('/') {
            return cx.err(resource.span(), rkey, "resource paths start with '/'");
        }
        for (http_method, m) in resource.get_ref() {
            let mkey = format!("{rkey}.{http_method}");
            if !METHODS.contains(&http_method.as_str()) {
                return cx.err(
                    m.span(),
                    mkey,
                    format!("unknown method {http_method:?} (use one of {})", METHODS.join(", ")),
                );
            }
            methods.push(Arc::new(resolve_method(cx, &mkey, path, http_method, m, raw, &models, known_functions)?));
        }
    }
    // "Enable CORS": an OPTIONS method on each CORS resource that has none.
    let mut cors = IndexMap::new();
    for (path, c) in &raw.cors {
        let ckey = format!("{key}.cors.\"{path}\"");
        if !raw.resources.contains_key(path) {
            return cx.err(c.span(), ckey, format!("no resource {path:?} in this API"));
        }
        let resolved = resolve_cors(cx, &ckey, c)?;
        if !methods.iter().any(|m| &m.resource_path == path && m.http_method == "OPTIONS") {
            methods.push(Arc::new(preflight_method(path)));
        }
        cors.insert(path.clone(), Arc::new(resolved));
    }
    // The router checks paths (shapes, duplicates) the way API Gateway does.
    if let Err(e) = crate::gateway::router::Router::new(
        methods.iter().map(|m| (m.resource_path.clone(), m.http_method.clone(), ())),
    ) {
        return cx.err(api.span(), format!("{key}.resources"), e.to_string());
    }

    let mut stages = IndexMap::new();
    for (stage, s) in &raw.stages {
        let skey = format!("{key}.stages.{stage}");
        if stage.is_empty()
            || stage.len() > 128
            || !stage.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return cx.err(s.span(), skey, "stage names use 1 to 128 letters, digits, '-' or '_'");
        }
        for (var, value) in &s.get_ref().variables {
            let ok_name =
                !var.is_empty() && var.len() <= 64 && var.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
            if !ok_name || value.len() > 512 {
                return cx.err(
                    s.span(),
                    format!("{skey}.variables.{var}"),
                    "variable names are 1–64 letters, digits or '_'; values at most 512 characters",
                );
            }
        }
        let settings = resolve_stage_settings(cx, &skey, s.get_ref(), &methods)?;
        let access_log = match &s.get_ref().access_log {
            Some(a) => Some(resolve_access_log(cx, &format!("{skey}.access_log"), a)?),
            None => None,
        };
        stages.insert(
            stage.clone(),
            StageSpec {
                description: s.get_ref().description.clone().unwrap_or_default(),
                variables: s.get_ref().variables.clone(),
                settings,
                access_log,
            },
        );
    }
    // Function qualifiers with stage variables must name an existing function in every stage.
    for m in &methods {
        if let IntegrationKind::Function { function } | IntegrationKind::FunctionProxy { function } =
            &m.integration.kind
        {
            for (stage, s) in &stages {
                let resolved = substitute_stage_variables(function, &s.variables);
                if resolved.contains("${") || resolved.ends_with(':') {
                    return cx.err(
                        api.span(),
                        format!("{key}.resources.\"{}\".{}.integration.function", m.resource_path, m.http_method),
                        format!("{function:?} needs a stage variable that stage {stage:?} does not define"),
                    );
                }
            }
        }
    }

    let mut custom = Vec::new();
    for (kind, r) in &raw.gateway_responses {
        let gkey = format!("{key}.gateway_responses.{kind}");
        let Some(t) = ResponseType::parse(kind) else {
            return cx.err(r.span(), gkey, "unknown gateway response type");
        };
        let r = r.get_ref();
        custom.push((
            t,
            Customisation {
                status: r.status,
                headers: r.headers.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
                templates: r.templates.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            },
        ));
    }
    let gateway_responses = match GatewayResponses::new(custom) {
        Ok(g) => g,
        Err(e) => return cx.err(api.span(), format!("{key}.gateway_responses"), e.to_string()),
    };

    Ok(ApiSpec {
        name: name.to_string(),
        description: raw.description.clone().unwrap_or_default(),
        base_path,
        hosts: raw.hosts.iter().map(|h| h.to_ascii_lowercase()).collect(),
        binary_media_types: raw.binary_media_types.clone(),
        methods,
        stages,
        gateway_responses: Arc::new(gateway_responses),
        cors,
        raw: raw.clone(),
    })
}

#[allow(clippy::too_many_arguments)]
fn resolve_method(
    cx: &Ctx<'_>,
    key: &str,
    path: &str,
    http_method: &str,
    m: &Spanned<RawMethod>,
    api: &RawApi,
    models: &IndexMap<String, Model>,
    known_functions: KnownFunctions<'_>,
) -> Result<MethodSpec, ConfigError> {
    let raw = m.get_ref();
    let (mut validate_body, mut validate_parameters) = (false, false);
    if let Some(v) = &raw.request_validator {
        match api.request_validators.get(v.get_ref()) {
            Some(found) => {
                validate_body = found.get_ref().validate_body;
                validate_parameters = found.get_ref().validate_parameters;
            }
            None => {
                return cx.err(
                    v.span(),
                    format!("{key}.request_validator"),
                    format!("unknown request validator {:?}", v.get_ref()),
                );
            }
        }
    }
    let mut required_parameters = Vec::new();
    for (param, required) in &raw.request_parameters {
        let ok = ["method.request.path.", "method.request.querystring.", "method.request.header."]
            .iter()
            .any(|p| param.strip_prefix(p).is_some_and(|n| !n.is_empty()));
        if !ok {
            return cx.err(
                required.span(),
                format!("{key}.request_parameters.\"{param}\""),
                "use method.request.path.NAME, method.request.querystring.NAME or method.request.header.NAME",
            );
        }
        if *required.get_ref() {
            required_parameters.push(param.clone());
        }
    }
    required_parameters.sort();
    let mut request_models = IndexMap::new();
    for (ct, model) in &raw.request_models {
        match models.get(model.get_ref()) {
            Some(found) => {
                request_models.insert(ct.to_ascii_lowercase(), found.clone());
            }
            None => {
                return cx.err(
                    model.span(),
                    format!("{key}.request_models.\"{ct}\""),
                    format!("unknown model {:?}", model.get_ref()),
                );
            }
        }
    }
    let integration = resolve_integration(cx, &format!("{key}.integration"), &raw.integration, known_functions)?;
    let mut cache_key_parameters = Vec::new();
    for p in &raw.integration.get_ref().cache_key_parameters {
        match KeyParameter::parse(p.get_ref()) {
            Some(k) => cache_key_parameters.push(k),
            None => {
                return cx.err(
                    p.span(),
                    format!("{key}.integration.cache_key_parameters"),
                    format!(
                        "{:?}: use method.request.path.NAME, method.request.querystring.NAME or method.request.header.NAME",
                        p.get_ref()
                    ),
                );
            }
        }
    }
    Ok(MethodSpec {
        resource_path: path.to_string(),
        http_method: http_method.to_string(),
        api_key_required: raw.api_key_required.unwrap_or(false),
        validate_body,
        validate_parameters,
        required_parameters,
        request_models,
        integration,
        cache_key_parameters,
        cors_preflight: false,
    })
}

fn template(cx: &Ctx<'_>, key: String, source: &Spanned<String>) -> Result<Arc<Template>, ConfigError> {
    match Template::parse(source.get_ref()) {
        Ok(t) => Ok(Arc::new(t)),
        Err(e) => {
            // The template's own line and column, plus the line of the key.
            cx.err(source.span(), key, format!("mapping template: {e}"))
        }
    }
}

fn resolve_integration(
    cx: &Ctx<'_>,
    key: &str,
    i: &Spanned<RawIntegration>,
    known_functions: KnownFunctions<'_>,
) -> Result<IntegrationSpec, ConfigError> {
    let raw = i.get_ref();
    let function = |required: bool| -> Result<Option<String>, ConfigError> {
        match &raw.function {
            None if required => cx.err(i.span(), format!("{key}.function"), "a function integration needs `function`"),
            None => Ok(None),
            Some(_) if !required => {
                cx.err(i.span(), format!("{key}.function"), "a mock integration takes no `function`")
            }
            Some(f) => {
                let name = f.get_ref().split(':').next().unwrap_or_default();
                if !known_functions(name) {
                    return cx.err(f.span(), format!("{key}.function"), format!("unknown function {name:?}"));
                }
                Ok(Some(f.get_ref().clone()))
            }
        }
    };
    let kind = match raw.kind.get_ref().as_str() {
        "mock" => {
            function(false)?;
            IntegrationKind::Mock
        }
        "function" => IntegrationKind::Function { function: function(true)?.unwrap_or_default() },
        "function-proxy" => {
            if !raw.request_templates.is_empty() || !raw.responses.is_empty() {
                return cx.err(i.span(), key, "a function-proxy integration has no templates or integration responses (the function makes the response)");
            }
            IntegrationKind::FunctionProxy { function: function(true)?.unwrap_or_default() }
        }
        other => {
            return cx.err(
                raw.kind.span(),
                format!("{key}.type"),
                format!("unknown integration type {other:?} (mock, function, function-proxy)"),
            );
        }
    };
    let passthrough = match raw.passthrough_behavior.as_ref().map(|p| (p.get_ref().as_str(), p.span())) {
        None | Some(("WHEN_NO_MATCH", _)) => Passthrough::WhenNoMatch,
        Some(("WHEN_NO_TEMPLATES", _)) => Passthrough::WhenNoTemplates,
        Some(("NEVER", _)) => Passthrough::Never,
        Some((other, span)) => {
            return cx.err(
                span,
                format!("{key}.passthrough_behavior"),
                format!("{other:?}: use WHEN_NO_MATCH, WHEN_NO_TEMPLATES or NEVER"),
            );
        }
    };
    let timeout_ms = match &raw.timeout_ms {
        None => 29_000,
        Some(t) if (50..=29_000).contains(t.get_ref()) => *t.get_ref(),
        Some(t) => return cx.err(t.span(), format!("{key}.timeout_ms"), "must be between 50 and 29000"),
    };
    let mut request_templates = IndexMap::new();
    for (ct, t) in &raw.request_templates {
        request_templates
            .insert(ct.to_ascii_lowercase(), template(cx, format!("{key}.request_templates.\"{ct}\""), t)?);
    }
    let mut responses = Vec::new();
    for (n, r) in raw.responses.iter().enumerate() {
        let rkey = format!("{key}.responses[{n}]");
        let r = r.get_ref();
        if !(100..=599).contains(r.status.get_ref()) {
            return cx.err(r.status.span(), format!("{rkey}.status"), "an HTTP status between 100 and 599");
        }
        let pattern = match &r.selection_pattern {
            None => None,
            Some(p) if p.get_ref().is_empty() => None,
            // Checked as written (the error's caret points into it), then
            // anchored: a pattern matches the whole error message.
            Some(p) => match Regex::new(p.get_ref()).and_then(|_| Regex::new(&format!("^(?:{})$", p.get_ref()))) {
                Ok(re) => Some(re),
                Err(e) => return cx.err(p.span(), format!("{rkey}.selection_pattern"), format!("invalid regex: {e}")),
            },
        };
        let mut templates = IndexMap::new();
        for (ct, t) in &r.templates {
            templates.insert(ct.to_ascii_lowercase(), template(cx, format!("{rkey}.templates.\"{ct}\""), t)?);
        }
        let mut headers = Vec::new();
        for (name, source) in &r.headers {
            let s = source.get_ref();
            let src = if let Some(v) = s.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')) {
                HeaderSource::Static(v.to_string())
            } else if let Some(h) = s.strip_prefix("integration.response.header.") {
                HeaderSource::IntegrationHeader(h.to_string())
            } else if s == "integration.response.body" {
                HeaderSource::Body
            } else if let Some(f) = s.strip_prefix("integration.response.body.") {
                HeaderSource::BodyField(f.to_string())
            } else {
                return cx.err(
                    source.span(),
                    format!("{rkey}.headers.\"{name}\""),
                    "use 'static value', integration.response.header.NAME, integration.response.body or integration.response.body.FIELD",
                );
            };
            if ["content-length", "transfer-encoding", "connection"].contains(&name.to_ascii_lowercase().as_str()) {
                return cx.err(source.span(), format!("{rkey}.headers.\"{name}\""), "this header cannot be mapped");
            }
            headers.push((name.clone(), src));
        }
        let selection_pattern = pattern.as_ref().and(r.selection_pattern.as_ref()).map(|p| p.get_ref().clone());
        responses.push(IntegrationResponseSpec {
            pattern,
            selection_pattern,
            status: *r.status.get_ref(),
            templates,
            headers,
        });
    }
    Ok(IntegrationSpec { kind, passthrough, timeout_ms, request_templates, responses })
}

/// Replaces `${stageVariables.NAME}` with the stage's value (empty when undefined).
pub fn substitute_stage_variables(text: &str, variables: &IndexMap<String, String>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${stageVariables.") {
        out.push_str(&rest[..start]);
        let after = &rest[start + "${stageVariables.".len()..];
        match after.find('}') {
            Some(end) => {
                out.push_str(variables.get(&after[..end]).map(String::as_str).unwrap_or(""));
                rest = &after[end + 1..];
            }
            None => {
                out.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// The OPTIONS method "Enable CORS" adds to a resource (a mock; the gateway
/// answers preflights from the resource's CORS settings).
fn preflight_method(path: &str) -> MethodSpec {
    MethodSpec {
        resource_path: path.to_string(),
        http_method: "OPTIONS".into(),
        api_key_required: false,
        validate_body: false,
        validate_parameters: false,
        required_parameters: Vec::new(),
        request_models: IndexMap::new(),
        integration: IntegrationSpec {
            kind: IntegrationKind::Mock,
            passthrough: Passthrough::WhenNoMatch,
            timeout_ms: 29_000,
            request_templates: IndexMap::new(),
            responses: Vec::new(),
        },
        cache_key_parameters: Vec::new(),
        cors_preflight: true,
    }
}

pub(super) fn resolve_throttle(
    cx: &Ctx<'_>,
    key: &str,
    t: &Spanned<crate::config::raw::RawThrottle>,
) -> Result<Throttle, ConfigError> {
    let throttle = Throttle { rate: t.get_ref().rate, burst: t.get_ref().burst };
    match throttle.check() {
        Ok(()) => Ok(throttle),
        Err(e) => cx.err(t.span(), key, e),
    }
}

/// A stage's access log: its format (a preset's name or `$context`
/// variables) and its file, if not the server's log.
fn resolve_access_log(
    cx: &Ctx<'_>,
    key: &str,
    raw: &Spanned<crate::config::raw::RawAccessLog>,
) -> Result<AccessLogSpec, ConfigError> {
    let r = raw.get_ref();
    let format = match Format::parse(r.format.get_ref()) {
        Ok(f) => f,
        Err(e) => return cx.err(r.format.span(), format!("{key}.format"), e.to_string()),
    };
    let destination = match &r.file {
        None => Destination::Server,
        Some(file) => {
            let path = std::path::Path::new(file.get_ref());
            let bad = file.get_ref().is_empty()
                || path.components().any(|c| matches!(c, std::path::Component::ParentDir))
                || file.get_ref().ends_with('/');
            if bad {
                return cx.err(
                    file.span(),
                    format!("{key}.file"),
                    "name a file: an absolute path, or a path within the data directory's logs/ without '..'",
                );
            }
            Destination::File(path.to_path_buf())
        }
    };
    Ok(AccessLogSpec { format, destination })
}

/// A stage's throttle, cache and method settings; method keys
/// (`"/items/GET"`) must name a method of the API.
fn resolve_stage_settings(
    cx: &Ctx<'_>,
    skey: &str,
    raw: &crate::config::raw::RawStage,
    methods: &[Arc<MethodSpec>],
) -> Result<StageSettings, ConfigError> {
    let mut settings = StageSettings::default();
    if let Some(t) = &raw.throttle {
        settings.throttle = Some(resolve_throttle(cx, &format!("{skey}.throttle"), t)?);
    }
    if let Some(c) = &raw.cache {
        let ckey = format!("{skey}.cache");
        let c_ref = c.get_ref();
        let mut cache = StageCache { enabled: c_ref.enabled, ..StageCache::default() };
        if let Some(mb) = &c_ref.capacity_mb {
            if *mb.get_ref() == 0 || *mb.get_ref() > 65536 {
                return cx.err(mb.span(), format!("{ckey}.capacity_mb"), "must be between 1 and 65536 (MB)");
            }
            cache.capacity_bytes = mb.get_ref() * 1024 * 1024;
        }
        if let Some(ttl) = &c_ref.ttl {
            if *ttl.get_ref() > 3600 {
                return cx.err(ttl.span(), format!("{ckey}.ttl"), "must be between 0 and 3600 seconds (0: no caching)");
            }
            cache.ttl = *ttl.get_ref();
        }
        if let Some(r) = c_ref.require_authorization {
            cache.require_authorization = r;
        }
        if let Some(strategy) = &c_ref.unauthorized_strategy {
            cache.unauthorized = match UnauthorizedStrategy::parse(strategy.get_ref()) {
                Some(s) => s,
                None => {
                    return cx.err(
                        strategy.span(),
                        format!("{ckey}.unauthorized_strategy"),
                        format!("use one of {}", UnauthorizedStrategy::NAMES.join(", ")),
                    );
                }
            };
        }
        settings.cache = cache;
    }
    for (name, m) in &raw.methods {
        let mkey = format!("{skey}.methods.\"{name}\"");
        let known = name
            .rsplit_once('/')
            .is_some_and(|(path, method)| methods.iter().any(|x| x.resource_path == path && x.http_method == method));
        if !known {
            return cx.err(
                m.span(),
                mkey,
                format!("{name:?} is not a method of this API: name one as RESOURCE/METHOD, e.g. /items/GET"),
            );
        }
        let m_ref = m.get_ref();
        let throttle = match &m_ref.throttle {
            Some(t) => Some(resolve_throttle(cx, &format!("{mkey}.throttle"), t)?),
            None => None,
        };
        if let Some(ttl) = &m_ref.cache_ttl
            && *ttl.get_ref() > 3600
        {
            return cx.err(ttl.span(), format!("{mkey}.cache_ttl"), "must be between 0 and 3600 seconds");
        }
        settings.methods.insert(
            name.clone(),
            MethodSettings {
                throttle,
                caching: m_ref.caching,
                cache_ttl: m_ref.cache_ttl.as_ref().map(|t| *t.get_ref()),
            },
        );
    }
    Ok(settings)
}

fn resolve_cors(cx: &Ctx<'_>, key: &str, c: &Spanned<crate::config::raw::RawCors>) -> Result<Cors, ConfigError> {
    let raw = c.get_ref();
    let mut cors = Cors::default();
    if let Some(origins) = &raw.allow_origins {
        if origins.is_empty() {
            return cx.err(c.span(), format!("{key}.allow_origins"), "list at least one origin, or \"*\"");
        }
        for o in origins {
            if o != "*" && !(o.starts_with("http://") || o.starts_with("https://")) {
                return cx.err(
                    c.span(),
                    format!("{key}.allow_origins"),
                    format!("{o:?} is not an origin (scheme://host[:port]) or \"*\""),
                );
            }
        }
        cors.allow_origins = origins.iter().map(|o| o.trim_end_matches('/').to_string()).collect();
    }
    if let Some(methods) = &raw.allow_methods {
        for m in methods {
            if m != "*" && !METHODS.contains(&m.as_str()) {
                return cx.err(c.span(), format!("{key}.allow_methods"), format!("unknown method {m:?}"));
            }
        }
        cors.allow_methods = methods.clone();
    }
    if let Some(headers) = &raw.allow_headers {
        cors.allow_headers = headers.join(",");
    }
    if let Some(headers) = &raw.expose_headers {
        cors.expose_headers = Some(headers.join(","));
    }
    cors.max_age = raw.max_age;
    cors.allow_credentials = raw.allow_credentials.unwrap_or(false);
    if cors.allow_credentials && cors.allow_origins.iter().any(|o| o == "*") {
        return cx.err(
            c.span(),
            format!("{key}.allow_credentials"),
            "browsers refuse credentials with an allowed origin of \"*\": list the origins in allow_origins",
        );
    }
    cors.on_errors = raw.on_errors.unwrap_or(true);
    Ok(cors)
}
