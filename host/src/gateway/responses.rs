//! API Gateway's gateway responses: every failure of the pipeline is one of
//! these types, answered with AWS's default status, body
//! (`{"message":$context.error.messageString}`) and `x-amzn-ErrorType`, unless
//! the API customises it (status, headers, templates), with AWS's fallback
//! rules: an uncustomised type falls back to a customised `DEFAULT_4XX` /
//! `DEFAULT_5XX` of its status class; `REQUEST_TOO_LARGE` cannot be customised.

use std::collections::HashMap;

use super::request::GatewayRequest;
use super::stage::CompiledStage;

macro_rules! response_types {
    ($($variant:ident => ($name:literal, $status:expr, $message:literal, $error_type:expr)),* $(,)?) => {
        /// A gateway response type.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ResponseType { $($variant),* }

        impl ResponseType {
            /// All types.
            pub const ALL: &[ResponseType] = &[$(ResponseType::$variant),*];

            /// The name API Gateway uses (`MISSING_AUTHENTICATION_TOKEN`).
            pub fn as_str(self) -> &'static str {
                match self { $(ResponseType::$variant => $name),* }
            }

            /// The default status (`None` for DEFAULT_4XX/5XX).
            pub fn default_status(self) -> Option<u16> {
                match self { $(ResponseType::$variant => $status),* }
            }

            /// The default message.
            pub fn default_message(self) -> &'static str {
                match self { $(ResponseType::$variant => $message),* }
            }

            /// The `x-amzn-ErrorType` header AWS sends with it.
            pub fn error_type(self) -> Option<&'static str> {
                match self { $(ResponseType::$variant => $error_type),* }
            }

            pub fn parse(name: &str) -> Option<ResponseType> {
                match name { $($name => Some(ResponseType::$variant),)* _ => None }
            }
        }
    };
}

response_types! {
    AccessDenied => ("ACCESS_DENIED", Some(403), "User is not authorized to access this resource", Some("AccessDeniedException")),
    ApiConfigurationError => ("API_CONFIGURATION_ERROR", Some(500), "Internal server error", Some("InternalServerErrorException")),
    AuthorizerConfigurationError => ("AUTHORIZER_CONFIGURATION_ERROR", Some(500), "Internal server error", Some("AuthorizerConfigurationException")),
    AuthorizerFailure => ("AUTHORIZER_FAILURE", Some(500), "Internal server error", Some("AuthorizerFailureException")),
    BadRequestBody => ("BAD_REQUEST_BODY", Some(400), "Invalid request body", Some("BadRequestException")),
    BadRequestParameters => ("BAD_REQUEST_PARAMETERS", Some(400), "Missing required request parameters", Some("BadRequestException")),
    Default4xx => ("DEFAULT_4XX", None, "Bad Request", None),
    Default5xx => ("DEFAULT_5XX", None, "Internal server error", None),
    ExpiredToken => ("EXPIRED_TOKEN", Some(403), "The security token included in the request is expired", Some("ExpiredTokenException")),
    IntegrationFailure => ("INTEGRATION_FAILURE", Some(504), "Internal server error", Some("InternalServerErrorException")),
    IntegrationTimeout => ("INTEGRATION_TIMEOUT", Some(504), "Endpoint request timed out", Some("InternalServerErrorException")),
    InvalidApiKey => ("INVALID_API_KEY", Some(403), "Forbidden", Some("ForbiddenException")),
    InvalidSignature => ("INVALID_SIGNATURE", Some(403), "Signature expired", Some("InvalidSignatureException")),
    MissingAuthenticationToken => ("MISSING_AUTHENTICATION_TOKEN", Some(403), "Missing Authentication Token", Some("MissingAuthenticationTokenException")),
    QuotaExceeded => ("QUOTA_EXCEEDED", Some(429), "Limit Exceeded", Some("LimitExceededException")),
    RequestTooLarge => ("REQUEST_TOO_LARGE", Some(413), "Request Too Long", Some("RequestTooLargeException")),
    ResourceNotFound => ("RESOURCE_NOT_FOUND", Some(404), "Resource not found", Some("ResourceNotFoundException")),
    Throttled => ("THROTTLED", Some(429), "Too Many Requests", Some("TooManyRequestsException")),
    Unauthorized => ("UNAUTHORIZED", Some(401), "Unauthorized", Some("UnauthorizedException")),
    UnsupportedMediaType => ("UNSUPPORTED_MEDIA_TYPE", Some(415), "Unsupported Media Type", Some("BadRequestException")),
    WafFiltered => ("WAF_FILTERED", Some(403), "Forbidden", Some("WafFilteredException")),
}

/// How an API customises one response type.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Customisation {
    pub status: Option<u16>,
    /// Header → `'static'`, `method.request.header.X`, `method.request.path.p`,
    /// `method.request.querystring.q`, `stageVariables.x` or `context.x`.
    pub headers: Vec<(String, String)>,
    /// Content type → template (simple `$context.*` / `$stageVariables.*` substitution).
    pub templates: Vec<(String, String)>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ResponseConfigError {
    #[error("REQUEST_TOO_LARGE cannot be customised")]
    NotCustomisable,
    #[error("{0}: the status must be between 100 and 599")]
    Status(&'static str),
    #[error(
        "{kind}: header {header}: use 'static', method.request.(header|path|querystring).NAME, stageVariables.NAME or context.NAME"
    )]
    Header { kind: &'static str, header: String },
}

/// What a failure is rendered from: the request and, once routed, its stage
/// and resource. Borrowed: a gateway response looks up only what its
/// template and header mappings name (most name nothing but the message).
#[derive(Clone, Copy, Default)]
pub struct ErrorContext<'a> {
    pub request: Option<&'a GatewayRequest>,
    pub stage: Option<&'a CompiledStage>,
    /// The matched resource path and its path parameters.
    pub resource: Option<(&'a str, &'a [(String, String)])>,
}

impl<'a> ErrorContext<'a> {
    /// For a request not (yet) routed to a stage.
    pub fn for_request(req: &'a GatewayRequest) -> Self {
        ErrorContext { request: Some(req), stage: None, resource: None }
    }

    /// For a request routed to a stage (and maybe a resource).
    pub fn for_stage(
        req: &'a GatewayRequest,
        stage: &'a CompiledStage,
        resource: Option<(&'a str, &'a [(String, String)])>,
    ) -> Self {
        ErrorContext { request: Some(req), stage: Some(stage), resource }
    }

    pub fn request_id(&self) -> &'a str {
        self.request.map_or("", |r| r.ids.request_id())
    }

    /// The request id as a header value (empty without a request).
    pub fn request_id_value(&self) -> hyper::header::HeaderValue {
        self.request.map_or(hyper::header::HeaderValue::from_static(""), |r| r.ids.request_id_value())
    }

    fn stage_variable(&self, name: &str) -> Option<&'a str> {
        self.stage?.variables.get(name).map(String::as_str)
    }
}

/// A rendered gateway response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

/// An API's gateway responses: the defaults plus its customisations.
#[derive(Debug, Clone, Default)]
pub struct GatewayResponses {
    custom: HashMap<ResponseType, Customisation>,
}

const DEFAULT_TEMPLATE: &str = "{\"message\":$context.error.messageString}";

impl GatewayResponses {
    pub fn new(custom: impl IntoIterator<Item = (ResponseType, Customisation)>) -> Result<Self, ResponseConfigError> {
        let mut map = HashMap::new();
        for (kind, c) in custom {
            if kind == ResponseType::RequestTooLarge {
                return Err(ResponseConfigError::NotCustomisable);
            }
            if c.status.is_some_and(|s| !(100..=599).contains(&s)) {
                return Err(ResponseConfigError::Status(kind.as_str()));
            }
            for (header, source) in &c.headers {
                let ok = (source.len() >= 2 && source.starts_with('\'') && source.ends_with('\''))
                    || [
                        "method.request.header.",
                        "method.request.path.",
                        "method.request.querystring.",
                        "stageVariables.",
                        "context.",
                    ]
                    .iter()
                    .any(|p| source.strip_prefix(p).is_some_and(|n| !n.is_empty()));
                if !ok {
                    return Err(ResponseConfigError::Header { kind: kind.as_str(), header: header.clone() });
                }
            }
            map.insert(kind, c);
        }
        Ok(GatewayResponses { custom: map })
    }

    /// Whether the API customised this type (directly).
    pub fn is_customised(&self, kind: ResponseType) -> bool {
        self.custom.contains_key(&kind)
    }

    /// The customisation that applies: the type's own, else its class's default.
    fn customisation(&self, kind: ResponseType, status: u16) -> Option<&Customisation> {
        if kind == ResponseType::RequestTooLarge {
            return None;
        }
        self.custom.get(&kind).or_else(|| {
            let class = if status >= 500 { ResponseType::Default5xx } else { ResponseType::Default4xx };
            self.custom.get(&class)
        })
    }

    /// Renders `kind` for a request. `message` replaces the default message
    /// (e.g. "Missing required request parameters: [a, b]").
    pub fn render(&self, kind: ResponseType, message: Option<&str>, ctx: &ErrorContext) -> RenderedResponse {
        let default_status = kind.default_status().unwrap_or(if kind == ResponseType::Default5xx { 500 } else { 400 });
        let custom = self.customisation(kind, default_status);
        // A customised DEFAULT_4XX/5XX status applies to the whole class; the type's own wins.
        let status = self
            .custom
            .get(&kind)
            .and_then(|c| c.status)
            .or_else(|| custom.and_then(|c| c.status))
            .unwrap_or(default_status);
        let message = message.unwrap_or(kind.default_message());
        let template = custom
            .and_then(|c| c.templates.iter().find(|(ct, _)| ct == "application/json").or_else(|| c.templates.first()))
            .map(|(_, t)| t.as_str())
            .unwrap_or(DEFAULT_TEMPLATE);
        let body = substitute(template, kind, message, ctx);
        let mut headers = vec![("Content-Type".to_string(), "application/json".to_string())];
        if let Some(error_type) = kind.error_type() {
            headers.push(("x-amzn-ErrorType".into(), error_type.into()));
        }
        for (name, source) in custom.map(|c| c.headers.as_slice()).unwrap_or_default() {
            if let Some(value) = header_value(source, ctx) {
                headers.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
                headers.push((name.clone(), value));
            }
        }
        RenderedResponse { status, headers, body }
    }
}

fn header_value(source: &str, ctx: &ErrorContext) -> Option<String> {
    if let Some(v) = source.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')) {
        return Some(v.to_string());
    }
    if let Some(h) = source.strip_prefix("method.request.header.") {
        return ctx.request?.header(h).map(str::to_string);
    }
    if let Some(p) = source.strip_prefix("method.request.path.") {
        return ctx.resource?.1.iter().find(|(k, _)| k == p).map(|(_, v)| v.clone());
    }
    if let Some(q) = source.strip_prefix("method.request.querystring.") {
        return ctx.request?.query().swap_remove(q);
    }
    if let Some(v) = source.strip_prefix("stageVariables.") {
        return ctx.stage_variable(v).map(str::to_string);
    }
    let c = source.strip_prefix("context.")?;
    context_value(c, ctx)
}

/// `$context.NAME` of a gateway response (undefined: `None`). `requestId`,
/// `stage` and `resourcePath` are always defined (empty before routing).
fn context_value(name: &str, ctx: &ErrorContext) -> Option<String> {
    let req = ctx.request;
    let stage = ctx.stage;
    Some(match name {
        "requestId" => ctx.request_id().to_string(),
        "stage" => stage.map_or("", |s| s.stage.as_str()).to_string(),
        "resourcePath" => ctx.resource.map_or("", |(path, _)| path).to_string(),
        "extendedRequestId" => req?.ids.extended_request_id().to_string(),
        "httpMethod" => req?.method.to_string(),
        "path" => req?.full_path.clone(),
        "identity.sourceIp" => req?.source_ip.to_string(),
        "deploymentId" => stage?.deployment_id.clone(),
        _ => return None,
    })
}

/// JSON string literal of `s` (with quotes).
fn quoted(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

/// Gateway response templates are simple substitution, not full VTL.
fn substitute(template: &str, kind: ResponseType, message: &str, ctx: &ErrorContext) -> String {
    let mut out = String::with_capacity(template.len() + message.len());
    let mut rest = template;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let (formal, after) = match after.strip_prefix('{') {
            Some(a) => (true, a),
            None => (false, after),
        };
        let len = after.bytes().take_while(|b| b.is_ascii_alphanumeric() || *b == b'.' || *b == b'_').count();
        let name = after[..len].trim_end_matches('.');
        let mut consumed = name.len();
        if formal {
            if after[consumed..].starts_with('}') {
                consumed += 1;
            } else {
                out.push('$');
                rest = &rest[i + 1..];
                continue;
            }
        }
        let value = match name {
            "context.error.messageString" => Some(quoted(message)),
            "context.error.message" => Some(message.to_string()),
            "context.error.responseType" => Some(kind.as_str().to_string()),
            n if n.starts_with("context.") => Some(context_value(&n["context.".len()..], ctx).unwrap_or_default()),
            n if n.starts_with("stageVariables.") => {
                Some(ctx.stage_variable(&n["stageVariables.".len()..]).unwrap_or_default().to_string())
            }
            _ => None,
        };
        match value {
            Some(v) => {
                out.push_str(&v);
                rest = &after[consumed..];
            }
            None => {
                out.push('$');
                rest = &rest[i + 1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::request::RequestIds;

    const CONFIG: &str = r#"
[apis.Pets.resources."/pets/{petId}".GET.integration]
type = "mock"

[apis.Pets.stages.dev]
variables = { a = "b" }
"#;

    /// A request for `/dev/pets/7?q=x` with `Accept: text/html`, routed.
    struct Fixture {
        req: GatewayRequest,
        stage: CompiledStage,
        params: Vec<(String, String)>,
    }

    fn fixture() -> Fixture {
        let config = crate::config::parse(CONFIG, std::path::Path::new("gateway.toml")).expect("a valid config");
        let api = std::sync::Arc::new(config.apis.into_iter().next().expect("one API"));
        let stage = CompiledStage::new(api, "dev", "d1", &super::super::stage::Unserved::default())
            .expect("the dev stage")
            .expect("it compiles");
        let req = GatewayRequest {
            ids: RequestIds::of("req-1", "ext", ""),
            method: hyper::Method::GET,
            full_path: "/dev/pets/7".into(),
            path_at: "/dev".len(),
            raw_query: Some("q=x".into()),
            headers: [("Accept", "text/html")].into_iter().collect(),
            body: bytes::Bytes::new(),
            source_ip: "127.0.0.1".parse().expect("an address"),
            host: "localhost".into(),
            protocol: "HTTP/1.1",
            received: std::time::Instant::now(),
            time: std::time::SystemTime::UNIX_EPOCH,
        };
        Fixture { req, stage, params: vec![("petId".into(), "7".into())] }
    }

    impl Fixture {
        fn ctx(&self) -> ErrorContext<'_> {
            ErrorContext::for_stage(&self.req, &self.stage, Some(("/pets/{petId}", &self.params)))
        }
    }

    #[test]
    fn defaults_match_aws() {
        let f = fixture();
        let ctx = || f.ctx();
        let r = GatewayResponses::default();
        let m = r.render(ResponseType::MissingAuthenticationToken, None, &ctx());
        assert_eq!(m.status, 403);
        assert_eq!(m.body, r#"{"message":"Missing Authentication Token"}"#);
        assert!(m.headers.contains(&("x-amzn-ErrorType".into(), "MissingAuthenticationTokenException".into())));
        let t = r.render(ResponseType::IntegrationTimeout, None, &ctx());
        assert_eq!((t.status, t.body.as_str()), (504, r#"{"message":"Endpoint request timed out"}"#));
        let p =
            r.render(ResponseType::BadRequestParameters, Some("Missing required request parameters: [qs1]"), &ctx());
        assert_eq!(p.body, r#"{"message":"Missing required request parameters: [qs1]"}"#);
        for kind in ResponseType::ALL {
            assert_eq!(ResponseType::parse(kind.as_str()), Some(*kind));
        }
    }

    #[test]
    fn customisation_and_class_fallback() {
        let f = fixture();
        let ctx = || f.ctx();
        let r = GatewayResponses::new([
            (
                ResponseType::MissingAuthenticationToken,
                Customisation {
                    status: Some(404),
                    headers: vec![
                        ("Access-Control-Allow-Origin".into(), "'a.b.c'".into()),
                        ("x-request-header".into(), "method.request.header.Accept".into()),
                        ("x-request-path".into(), "method.request.path.petId".into()),
                        ("x-request-query".into(), "method.request.querystring.q".into()),
                    ],
                    templates: vec![(
                        "application/json".into(),
                        "{\"message\": $context.error.messageString, \"type\": \"$context.error.responseType\", \"stage\": \"$context.stage\", \"var\": \"$stageVariables.a\", \"at\": \"$context.httpMethod $context.resourcePath $context.requestId\"}".into(),
                    )],
                },
            ),
            (ResponseType::Default4xx, Customisation { status: Some(418), ..Default::default() }),
        ])
        .unwrap();
        let m = r.render(ResponseType::MissingAuthenticationToken, None, &ctx());
        assert_eq!(m.status, 404);
        assert_eq!(
            m.body,
            r#"{"message": "Missing Authentication Token", "type": "MISSING_AUTHENTICATION_TOKEN", "stage": "dev", "var": "b", "at": "GET /pets/{petId} req-1"}"#
        );
        for (k, v) in [
            ("Access-Control-Allow-Origin", "a.b.c"),
            ("x-request-header", "text/html"),
            ("x-request-path", "7"),
            ("x-request-query", "x"),
        ] {
            assert!(m.headers.contains(&(k.to_string(), v.to_string())), "{k}");
        }
        // Another 4XX falls back to the customised DEFAULT_4XX status; 5XX are untouched.
        assert_eq!(r.render(ResponseType::BadRequestBody, None, &ctx()).status, 418);
        assert_eq!(r.render(ResponseType::IntegrationTimeout, None, &ctx()).status, 504);
        // REQUEST_TOO_LARGE cannot be customised.
        assert_eq!(
            GatewayResponses::new([(ResponseType::RequestTooLarge, Customisation::default())]).unwrap_err(),
            ResponseConfigError::NotCustomisable
        );
        assert_eq!(r.render(ResponseType::RequestTooLarge, None, &ctx()).status, 413);
    }

    #[test]
    fn before_routing_stage_and_resource_path_are_empty() {
        let f = fixture();
        let r = GatewayResponses::new([(
            ResponseType::MissingAuthenticationToken,
            Customisation {
                headers: vec![
                    ("x-stage".into(), "context.stage".into()),
                    ("x-deployment".into(), "context.deploymentId".into()),
                ],
                templates: vec![("application/json".into(), "[$context.stage|$context.resourcePath]".into())],
                ..Default::default()
            },
        )])
        .unwrap();
        let m = r.render(ResponseType::MissingAuthenticationToken, None, &ErrorContext::for_request(&f.req));
        assert_eq!(m.body, "[|]");
        assert!(m.headers.contains(&("x-stage".into(), String::new())), "{:?}", m.headers);
        assert!(!m.headers.iter().any(|(k, _)| k == "x-deployment"), "{:?}", m.headers);
    }
}
