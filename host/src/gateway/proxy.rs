//! The function-proxy integration's wire formats: the Lambda proxy event v1
//! API Gateway sends (field for field, so guests can use the
//! `aws_lambda_events` types) and the `{statusCode, headers,
//! multiValueHeaders, body, isBase64Encoded}` response, validated as API
//! Gateway validates it (a malformed one is a 502).

use base64::Engine as _;
use indexmap::IndexMap;
use serde_json::{Map, Value, json};

use super::pipeline::template_context;
use super::request::GatewayRequest;
use super::stage::{CompiledStage, MethodEntry};

fn null_if_empty(map: Map<String, Value>) -> Value {
    if map.is_empty() { Value::Null } else { Value::Object(map) }
}

/// Builds the proxy event v1 for a routed request. `binary`: the request's
/// content type is one of the API's binary media types (the body is then
/// base64 with `isBase64Encoded: true`).
pub fn build_event(
    stage: &CompiledStage,
    method: &MethodEntry,
    path_params: &[(String, String)],
    req: &GatewayRequest,
    binary: bool,
    key_id: Option<&str>,
) -> Value {
    let mut headers = Map::new();
    let mut multi_headers: Map<String, Value> = Map::new();
    let mut add = |name: String, value: String| {
        headers.insert(name.clone(), Value::String(value.clone()));
        match multi_headers.get_mut(&name) {
            Some(Value::Array(values)) => values.push(Value::String(value)),
            _ => {
                multi_headers.insert(name, json!([value]));
            }
        }
    };
    for (name, value) in req.headers.iter() {
        if name.eq_ignore_ascii_case("content-length") || name.eq_ignore_ascii_case("connection") {
            continue;
        }
        // As the client spelled it, as API Gateway passes it on.
        add(name.to_string(), value.to_string());
    }
    if req.header("x-forwarded-for").is_none() {
        add("X-Forwarded-For".into(), req.source_ip.to_string());
    }
    if req.header("x-forwarded-proto").is_none() {
        add("X-Forwarded-Proto".into(), "http".into());
    }
    if req.header("x-amzn-trace-id").is_none() {
        add("X-Amzn-Trace-Id".into(), req.ids.trace_id().to_string());
    }

    let mut query = Map::new();
    let mut multi_query: Map<String, Value> = Map::new();
    if let Some(q) = &req.raw_query {
        for (k, v) in form_urlencoded::parse(q.as_bytes()) {
            query.insert(k.to_string(), Value::String(v.to_string()));
            match multi_query.get_mut(k.as_ref()) {
                Some(Value::Array(values)) => values.push(Value::String(v.into_owned())),
                _ => {
                    multi_query.insert(k.into_owned(), json!([v]));
                }
            }
        }
    }
    let path_parameters: Map<String, Value> =
        path_params.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect();
    let stage_variables: Map<String, Value> =
        stage.variables.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect();
    let body = if req.body.is_empty() {
        Value::Null
    } else if binary {
        Value::String(base64::engine::general_purpose::STANDARD.encode(&req.body))
    } else {
        Value::String(String::from_utf8_lossy(&req.body).into_owned())
    };
    // `/stage//x` is `/x` in `path`; the stage-qualified path keeps it as sent.
    let path = match req.path() {
        "" => "/".to_string(),
        after => format!("/{}", after.trim_start_matches('/')),
    };

    let mut context = template_context(stage, method, req, key_id).to_json();
    if let Some(identity) = context.get_mut("identity").and_then(Value::as_object_mut) {
        for key in [
            "accessKey",
            "cognitoAuthenticationProvider",
            "cognitoAuthenticationType",
            "cognitoIdentityId",
            "cognitoIdentityPoolId",
            "principalOrgId",
        ] {
            identity.entry(key).or_insert(Value::Null);
        }
        // As AWS's recorded events: present only for a request made with a key.
        if key_id.is_none() {
            identity.remove("apiKey");
            identity.remove("apiKeyId");
        }
    }

    json!({
        "body": body,
        "headers": null_if_empty(headers),
        "httpMethod": req.method.as_str(),
        "isBase64Encoded": binary && !req.body.is_empty(),
        "multiValueHeaders": null_if_empty(multi_headers),
        "multiValueQueryStringParameters": null_if_empty(multi_query),
        "path": path,
        "pathParameters": null_if_empty(path_parameters),
        "queryStringParameters": null_if_empty(query),
        "requestContext": context,
        "resource": method.spec.resource_path,
        "stageVariables": null_if_empty(stage_variables),
    })
}

/// A valid proxy response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyResponse {
    pub status: u16,
    /// A pair per header line: a name the function gave several values has several.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// Why a proxy response is malformed (the client gets 502).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MalformedResponse {
    #[error("the function's output is not a JSON object")]
    NotAnObject,
    #[error("the output has none of statusCode, headers, multiValueHeaders, body")]
    Empty,
    #[error("unknown field {0:?}")]
    UnknownField(String),
    #[error("statusCode must be an integer between 100 and 599")]
    Status,
    #[error("{0} must be an object")]
    NotAMap(&'static str),
    #[error("multiValueHeaders values must be lists")]
    NotAList,
    #[error("body must be a string")]
    Body,
    #[error("isBase64Encoded must be a boolean")]
    Base64Flag,
    #[error("the body is not valid base64")]
    Base64,
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Validates a function's proxy response. `binary`: the client's first
/// `Accept` type is a binary media type, so a base64 body is decoded.
pub fn parse_response(output: &str, binary: bool) -> Result<ProxyResponse, MalformedResponse> {
    let Ok(Value::Object(obj)) = serde_json::from_str::<Value>(output) else {
        return Err(MalformedResponse::NotAnObject);
    };
    const KNOWN: &[&str] = &["statusCode", "headers", "multiValueHeaders", "body", "isBase64Encoded"];
    if let Some(unknown) = obj.keys().find(|k| !KNOWN.contains(&k.as_str())) {
        return Err(MalformedResponse::UnknownField(unknown.clone()));
    }
    if obj.is_empty() {
        return Err(MalformedResponse::Empty);
    }
    let status = match obj.get("statusCode") {
        None | Some(Value::Null) => 200,
        Some(Value::Number(n)) => n.as_u64().and_then(|n| u16::try_from(n).ok()).ok_or(MalformedResponse::Status)?,
        Some(Value::String(s)) => s.trim().parse::<u16>().map_err(|_| MalformedResponse::Status)?,
        Some(_) => return Err(MalformedResponse::Status),
    };
    if !(100..=599).contains(&status) {
        return Err(MalformedResponse::Status);
    }
    // multiValueHeaders first (their casing wins), then headers appended.
    // Keyed by the lower-cased name: each header is one look-up, so a
    // response with many headers costs in proportion to their number.
    let mut headers: IndexMap<String, (String, Vec<String>)> = IndexMap::new();
    let mut push = |name: &str, value: String| match headers.get_mut(name.to_ascii_lowercase().as_str()) {
        Some((_, values)) => values.push(value),
        None => {
            headers.insert(name.to_ascii_lowercase(), (name.to_string(), vec![value]));
        }
    };
    match obj.get("multiValueHeaders") {
        None | Some(Value::Null) => {}
        Some(Value::Object(m)) => {
            for (name, values) in m {
                match values {
                    Value::Array(list) => list.iter().filter_map(scalar).for_each(|v| push(name, v)),
                    Value::Null => {}
                    _ => return Err(MalformedResponse::NotAList),
                }
            }
        }
        Some(_) => return Err(MalformedResponse::NotAMap("multiValueHeaders")),
    }
    match obj.get("headers") {
        None | Some(Value::Null) => {}
        Some(Value::Object(m)) => {
            for (name, value) in m {
                if let Some(v) = scalar(value) {
                    push(name, v);
                }
            }
        }
        Some(_) => return Err(MalformedResponse::NotAMap("headers")),
    }
    let base64 = match obj.get("isBase64Encoded") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(MalformedResponse::Base64Flag),
    };
    let body = match obj.get("body") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) if base64 && binary => {
            base64::engine::general_purpose::STANDARD.decode(s).map_err(|_| MalformedResponse::Base64)?
        }
        Some(Value::String(s)) => s.clone().into_bytes(),
        Some(_) => return Err(MalformedResponse::Body),
    };
    // One header line per value, as API Gateway sends them: a client that
    // folds repeated lines sees `value1, value2`, as AWS's recordings show,
    // and each `Set-Cookie` stays a cookie of its own (folded, the cookies
    // would read as one).
    let typed = headers.contains_key("content-type");
    let mut headers: Vec<(String, String)> =
        headers.into_values().flat_map(|(name, values)| values.into_iter().map(move |v| (name.clone(), v))).collect();
    if !typed {
        headers.push(("Content-Type".into(), "application/json".into()));
    }
    Ok(ProxyResponse { status, headers, body })
}
