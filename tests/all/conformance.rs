//! AWS-recorded conformance vectors (`tests/conformance/`, a copy kept with
//! their sources, or the directory in `WASMGATE_CONFORMANCE_DIR`), run against
//! the real server:
//! Lambda proxy events as AWS builds them, how AWS treats each shape of proxy
//! response, integration responses selected by error message, and the
//! gateway errors clients see.

use std::path::PathBuf;

use serde_json::{Value, json};

use crate::common::{TestServer, body_json, get, http, strip_server};

fn vectors(name: &str) -> Value {
    let dir = std::env::var_os("WASMGATE_CONFORMANCE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/conformance"));
    let path = dir.join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "conformance vectors {} not found ({e}); set WASMGATE_CONFORMANCE_DIR to the conformance directory",
            path.display()
        )
    });
    serde_json::from_str(&text).expect("conformance JSON")
}

const PROXY_API: &str = r#"
[functions.Proxy]
guest = "proxy-echo"

[apis.Conformance]

[apis.Conformance.resources."/{proxy+}".ANY.integration]
type = "function-proxy"
function = "Proxy"

[apis.Conformance.resources."/hardcoded".ANY.integration]
type = "function-proxy"
function = "Proxy"

[apis.Conformance.stages.stage]
"#;

fn is_placeholder(v: &Value) -> bool {
    v.as_str().is_some_and(|s| s.starts_with('<') && s.ends_with('>'))
}

/// The request of a recorded case: method, path (with query), body, headers.
fn client_request(case: &Value) -> (String, String, String, Vec<(String, String)>) {
    let text = case["client_request"].as_str().unwrap();
    let (main, extra) = text.split_once("  ").unwrap_or((text, ""));
    let (method, path) = main.split_once(' ').unwrap();
    // As python-requests sends it: spaces encoded, the fragment never sent.
    let path = path.split('#').next().unwrap().replace(' ', "%20");
    let mut body = String::new();
    let mut headers = Vec::new();
    if let Some(rest) = extra.trim().strip_prefix("body=") {
        let (b, h) = rest.split_once("  headers ").unwrap_or((rest, ""));
        body = b.to_string();
        for pair in h.split(", ") {
            if let Some((k, v)) = pair.split_once(": ") {
                headers.push((k.to_string(), v.to_string()));
            }
        }
    }
    (method.to_string(), path, body, headers)
}

/// The headers the recording's client sent: its defaults, then the case's own.
fn recorded_headers(extra: &[(String, String)]) -> Vec<(&str, &str)> {
    let mut headers: Vec<(&str, &str)> = vec![
        ("User-Agent", "python-requests/testing"),
        ("tEsT-HEADeR", "aValUE"),
        ("Accept", "*/*"),
        ("Accept-Encoding", "gzip, deflate"),
    ];
    if !extra.iter().any(|(k, _)| k.eq_ignore_ascii_case("authorization")) {
        headers.push(("authorization", "random-value"));
    }
    headers.extend(extra.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    headers
}

#[tokio::test(flavor = "multi_thread")]
async fn proxy_events_match_the_recorded_aws_events() {
    let server = TestServer::start(PROXY_API);
    let data = vectors("proxy_events_real_aws.json");
    let cases = data["cases"].as_array().unwrap();
    let mut failures = Vec::new();
    for case in cases {
        let id = case["id"].as_str().unwrap();
        let (method, path, body, extra_headers) = client_request(case);
        let headers = recorded_headers(&extra_headers);
        let r = http(&method, &server.url(&path), &headers, body.clone()).await;
        assert_eq!(r.status, 200, "{id}: {}", r.text());
        let got = r.json();
        let want = &case["event"];
        let mut check = |field: &str, got: &Value, want: &Value| {
            if !is_placeholder(want) && got != want {
                failures.push(format!("{id}: {field}: got {got}, AWS sent {want}"));
            }
        };
        for field in [
            "httpMethod",
            "path",
            "pathParameters",
            "queryStringParameters",
            "multiValueQueryStringParameters",
            "resource",
            "stageVariables",
            "isBase64Encoded",
        ] {
            check(field, &got[field], &want[field]);
        }
        // The recording parsed a JSON body; on the wire it is a string.
        let got_body = match &got["body"] {
            Value::String(s) if want["body"].is_object() => serde_json::from_str(s).unwrap_or(Value::Null),
            other => other.clone(),
        };
        check("body", &got_body, &want["body"]);
        for field in ["path", "resourcePath", "httpMethod", "stage", "protocol", "accountId"] {
            if field != "accountId" {
                check(
                    &format!("requestContext.{field}"),
                    &got["requestContext"][field],
                    &want["requestContext"][field],
                );
            }
        }
        check(
            "requestContext.identity.userAgent",
            &got["requestContext"]["identity"]["userAgent"],
            &want["requestContext"]["identity"]["userAgent"],
        );
        // Every field AWS sends is there (with the same JSON type), and no other.
        for (key, value) in want.as_object().unwrap() {
            match got.get(key) {
                None => failures.push(format!("{id}: missing field {key}")),
                Some(g)
                    if !value.is_null()
                        && !g.is_null()
                        && std::mem::discriminant(g) != std::mem::discriminant(value)
                        && !is_placeholder(value)
                        && key != "body" =>
                {
                    failures.push(format!("{id}: {key} has another type: {g}"))
                }
                _ => {}
            }
        }
        for key in want["requestContext"].as_object().unwrap().keys() {
            if got["requestContext"].get(key).is_none() {
                failures.push(format!("{id}: missing requestContext.{key}"));
            }
        }
        // Client headers arrive (names compare case-insensitively: HTTP/1.1
        // and HTTP/2 servers see them lower-cased, and the event title-cases them).
        let got_headers = got["headers"].as_object().unwrap();
        for (name, value) in want["headers"].as_object().unwrap() {
            let client_sent =
                ["accept", "accept-encoding", "authorization", "user-agent", "test-header", "content-type"];
            if client_sent.contains(&name.to_ascii_lowercase().as_str()) {
                let found = got_headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v);
                if found != Some(value) {
                    failures.push(format!("{id}: header {name}: got {found:?}, AWS sent {value}"));
                }
            }
        }
        for added in ["X-Forwarded-For", "X-Forwarded-Proto", "X-Amzn-Trace-Id"] {
            if !got_headers.contains_key(added) {
                failures.push(format!("{id}: the gateway did not add {added}"));
            }
        }
    }
    assert!(failures.is_empty(), "{} mismatches:\n{}", failures.len(), failures.join("\n"));
    // The event deserializes into the aws_lambda_events shape guests use: the
    // Rust runtime's own fixtures have the same top-level fields (a guest
    // typed with that crate reads them: see `hello_proxy_reads_…` below).
    let fixture = vectors("rust-runtime-fixture-example-apigw-request.json");
    let r = get(&server.url("/stage/anything?a=b")).await.json();
    for key in fixture.as_object().unwrap().keys() {
        assert!(r.get(key).is_some(), "the event lacks {key}, which aws_lambda_events reads");
    }
}

/// examples/hello-proxy.toml, its stage named as the recordings' is.
fn hello_api() -> String {
    strip_server(include_str!("../../examples/hello-proxy.toml"))
        .replace("[apis.Hello.stages.dev]", "[apis.Hello.stages.stage]")
}

/// A recorded AWS event made whole: each placeholder the recording put in
/// place of a value (`"<uuid:1>"`) becomes a value of the type AWS sends
/// there, so that typed code can read the event.
fn fill_placeholders(value: &mut Value, key: &str, in_multi_values: bool) {
    match value {
        Value::String(_) if is_placeholder(value) => {
            *value = match key {
                "requestTimeEpoch" => json!(1_700_000_000_000_i64),
                _ if in_multi_values => json!(["x"]),
                _ => json!("x"),
            };
        }
        Value::Object(map) => {
            let multi = key == "multiValueHeaders" || key == "multiValueQueryStringParameters";
            for (k, v) in map.iter_mut() {
                fill_placeholders(v, k, multi);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| fill_placeholders(v, key, false)),
        _ => {}
    }
}

/// `hello-proxy` is written against `aws_lambda_events`' types, as a Lambda
/// function in Rust is. It reads each event wasmgate builds for the recorded
/// requests, and finds in it exactly the fields it finds in API Gateway's
/// event for the same request that its types do not model (it reports them).
#[tokio::test(flavor = "multi_thread")]
async fn hello_proxy_reads_the_events_as_it_reads_api_gateways() {
    let server = TestServer::start(&hello_api());
    let data = vectors("proxy_events_real_aws.json");
    let mut failures = Vec::new();
    let mut aws_unknown = None;
    for case in data["cases"].as_array().unwrap() {
        let id = case["id"].as_str().unwrap();
        let mut event = case["event"].clone();
        fill_placeholders(&mut event, "", false);
        // The recording parsed a JSON body; on the wire it is a string.
        if event["body"].is_object() {
            event["body"] = Value::String(event["body"].to_string());
        }
        let direct = server.invoke("Hello", &event.to_string()).await;
        assert_eq!(direct.status, 200, "{id}: AWS's event: {}", String::from_utf8_lossy(&direct.body));
        let direct: Value = match body_json(&direct)["body"].as_str() {
            Some(body) => serde_json::from_str(body).unwrap(),
            None => panic!("{id}: AWS's event not read: {}", String::from_utf8_lossy(&direct.body)),
        };
        let want = direct["unknownFields"].clone();

        let (method, path, body, extra_headers) = client_request(case);
        let r = http(&method, &server.url(&path), &recorded_headers(&extra_headers), body).await;
        if r.status != 200 {
            failures.push(format!("{id}: status {}: {}", r.status, r.text()));
            continue;
        }
        let got = r.json();
        if got["unknownFields"] != want {
            failures.push(format!("{id}: fields not modelled: {} (in AWS's event: {want})", got["unknownFields"]));
        }
        if got["request"]["method"] != direct["request"]["method"]
            || got["request"]["path"] != direct["request"]["path"]
        {
            failures.push(format!("{id}: read {} (from AWS's event: {})", got["request"], direct["request"]));
        }
        aws_unknown.get_or_insert(want);
    }
    assert!(failures.is_empty(), "{} mismatches:\n{}", failures.len(), failures.join("\n"));

    // The example's own request, through its own config: tests/all/gateway.rs.
    assert_eq!(aws_unknown, Some(json!(HELLO_UNKNOWN_FIELDS)), "AWS's events carry these the types do not model");
}

/// What API Gateway's proxy events carry that `aws_lambda_events` does not
/// model (the recorded events and wasmgate's alike).
pub const HELLO_UNKNOWN_FIELDS: [&str; 3] =
    ["requestContext.deploymentId", "requestContext.extendedRequestId", "requestContext.identity.principalOrgId"];

#[tokio::test(flavor = "multi_thread")]
async fn proxy_responses_are_treated_as_aws_treats_them() {
    let server = TestServer::start(PROXY_API);
    let data = vectors("proxy_response_format_real_aws.json");
    let mut failures = Vec::new();
    for case in data["cases"].as_array().unwrap() {
        let id = case["id"].as_str().unwrap();
        let body = json!({ "respond": case["lambda_returns"] }).to_string();
        let r = http("POST", &server.url("/stage/hardcoded"), &[("content-type", "application/json")], body).await;
        let want_status = case["expected_status"].as_u64().unwrap() as u16;
        if r.status != want_status {
            failures.push(format!("{id}: status {} (AWS: {want_status}): {}", r.status, r.text()));
            continue;
        }
        let content = &case["expected"]["content"];
        let got = match content {
            Value::String(_) => Value::String(r.text()),
            _ => serde_json::from_slice(&r.body).unwrap_or(Value::Null),
        };
        if &got != content {
            failures.push(format!("{id}: body {got} (AWS: {content})"));
        }
        if let Some(headers) = case["expected"]["headers"].as_object() {
            for (name, value) in headers {
                let skip = is_placeholder(value)
                    || ["Connection", "Via", "X-Cache", "Date"].contains(&name.as_str())
                    || name.starts_with("X-Amz-Cf");
                if skip {
                    continue;
                }
                // The recording's client (python-requests) shows a header
                // sent on several lines as one, its values joined by ", ".
                let lines = r.header_lines(name);
                let found = (!lines.is_empty()).then(|| lines.join(", "));
                if found.as_deref() != value.as_str() {
                    failures.push(format!("{id}: header {name}: {found:?} (AWS: {value})"));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{} mismatches:\n{}", failures.len(), failures.join("\n"));
}

const SELECTION_API: &str = r#"
[functions.Echo]
guest = "echo"

[apis.Selection]

[apis.Selection.resources."/{statusCode}".GET.integration]
type = "function"
function = "Echo"
request_templates = { "application/json" = '''#set($code = $input.params('statusCode'))#if($code == "200"){"respond": "Pass"}#elseif($code == "400"){"fail": "Error: Raising four hundred from within the Lambda function"}#else{"fail": "Error: Raising five hundred from within the Lambda function"}#end''' }
responses = [
  { status = 200, selection_pattern = "" },
  { status = 405, selection_pattern = ".*four hundred.*" },
  { status = 502, selection_pattern = ".+" },
  { status = 504, selection_pattern = "200" },
]

[apis.Selection.stages.dev]
"#;

#[tokio::test(flavor = "multi_thread")]
async fn integration_responses_are_selected_by_the_error_message() {
    let server = TestServer::start(SELECTION_API);
    let data = vectors("lambda_nonproxy_selection_patterns.json");
    for case in data["cases"].as_array().unwrap() {
        let path = case["request"].as_str().unwrap().trim_start_matches("GET ");
        let r = get(&server.url(path)).await;
        assert_eq!(r.status as u64, case["expected_status"].as_u64().unwrap(), "{path}: {}", r.text());
        let want = &case["expected_body"];
        let got: Value = serde_json::from_slice(&r.body).unwrap();
        match want {
            // The error payload passes through; its errorMessage is the function's.
            Value::Object(w) => assert_eq!(got["errorMessage"], w["errorMessage"], "{path}"),
            other => assert_eq!(&got, other, "{path}"),
        }
    }
}

const ERRORS_API: &str = r#"
[functions.Echo]
guest = "echo"

[functions.Loop]
guest = "busy-loop"
timeout_ms = 5000

[functions.Throttled]
guest = "proxy-echo"
max_concurrency = 0

[functions.Proxy]
guest = "proxy-echo"

[apis.Errors]

[apis.Errors.request_validators.all]
validate_body = true
validate_parameters = true

[apis.Errors.models.AB]
schema = '{"$schema": "http://json-schema.org/draft-04/schema#", "type": "object", "properties": {"a": {"type": "number"}, "b": {"type": "number"}}, "required": ["a", "b"]}'

[apis.Errors.resources."/existing".GET.integration]
type = "mock"
request_templates = { "application/json" = '{"statusCode": 200}' }

[apis.Errors.resources."/validated".GET]
request_validator = "all"
request_parameters = { "method.request.querystring.qs1" = true, "method.request.header.x-header-param" = true }
request_models = { "application/json" = "AB" }
integration = { type = "mock", request_templates = { "application/json" = '{"statusCode": 200}' } }

[apis.Errors.resources."/validated".POST]
request_validator = "all"
request_parameters = { "method.request.path.issuer" = true, "method.request.querystring.qs1" = true, "method.request.header.x-header-param" = true }
request_models = { "application/json" = "AB" }
integration = { type = "mock", request_templates = { "application/json" = '{"statusCode": 200}' } }

[apis.Errors.resources."/slow".GET.integration]
type = "function"
function = "Loop"
timeout_ms = 500

[apis.Errors.resources."/proxy-fails".POST.integration]
type = "function-proxy"
function = "Proxy"

[apis.Errors.resources."/proxy-throttled".GET.integration]
type = "function-proxy"
function = "Throttled"

[apis.Errors.stages.dev]
"#;

#[tokio::test(flavor = "multi_thread")]
async fn gateway_errors_match_the_recorded_ones() {
    let server = TestServer::start(ERRORS_API);
    let data = vectors("gateway_errors.json");
    let mut ran = 0;
    for case in data["cases"].as_array().unwrap() {
        let id = case["id"].as_str().unwrap();
        let r = match id {
            "unknown-path" => get(&server.url("/dev/random-non-existing")).await,
            "wrong-method" => http("POST", &server.url("/dev/existing"), &[], "").await,
            // The recorded POST requires a path parameter its resource does not
            // have, so it is always missing; the GET does not require it.
            "missing-all-required-request-params-post" => {
                http("POST", &server.url("/dev/validated"), &[], r#"{"a": 1}"#).await
            }
            "missing-required-headers-request-params-get" => get(&server.url("/dev/validated?qs1=x")).await,
            "missing-required-qs-request-params-get" => {
                http("GET", &server.url("/dev/validated"), &[("x-header-param", "y")], "").await
            }
            // An empty body is validated as `{}`, which lacks the required a and b.
            "invalid-request-body" => {
                http("GET", &server.url("/dev/validated?qs1=x"), &[("x-header-param", "y")], "").await
            }
            "integration-timeout" => get(&server.url("/dev/slow")).await,
            "lambda-function-error-proxy" => {
                http("POST", &server.url("/dev/proxy-fails"), &[], r#"{"fail": "boom"}"#).await
            }
            id if id.starts_with("lambda-invoke-rejected-proxy") => get(&server.url("/dev/proxy-throttled")).await,
            other => {
                println!(
                    "skipped {other}: {}",
                    case["setup"].as_str().unwrap_or("not expressible in wasmgate's configuration")
                );
                continue;
            }
        };
        ran += 1;
        let want_status = case["status"].as_u64().unwrap() as u16;
        let want_body = &case["body"];
        assert_eq!(r.status, want_status, "{id}: {}", r.text());
        assert_eq!(&r.json(), want_body, "{id}");
        if let Some(t) = case.get("x-amzn-ErrorType").and_then(Value::as_str) {
            assert_eq!(r.header("x-amzn-errortype"), Some(t), "{id}");
        }
    }
    assert!(ran >= 9, "ran {ran} cases");

    // The default gateway responses: statuses and the default template.
    use wasmgate_host::gateway::responses::{ErrorContext, GatewayResponses, ResponseType};
    let defaults = GatewayResponses::default();
    for d in data["default_gateway_responses_real_aws"].as_array().unwrap() {
        let kind = ResponseType::parse(d["responseType"].as_str().unwrap()).expect("a known type");
        if d["defaultResponse"] == true {
            assert_eq!(d["responseTemplates"]["application/json"], "{\"message\":$context.error.messageString}");
        }
        // The recording customised MISSING_AUTHENTICATION_TOKEN to 404; its default is 403.
        let want = match (kind, d["statusCode"].as_str()) {
            (ResponseType::MissingAuthenticationToken, _) => Some(403),
            (_, s) => s.map(|s| s.parse::<u16>().unwrap()),
        };
        assert_eq!(kind.default_status(), want, "{kind:?}");
        let rendered = defaults.render(kind, None, &ErrorContext::default());
        assert_eq!(
            rendered.body,
            format!("{{\"message\":{}}}", serde_json::to_string(kind.default_message()).unwrap())
        );
    }
}
