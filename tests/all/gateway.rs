//! The REST gateway against the real server: the seed's walkthrough (function
//! and mock variants), routes, integrations and their errors, request
//! validation, gateway responses, deployments, HTTP hygiene.

use serde_json::{Value, json};

use crate::common::{
    HttpResponse, TestServer, body_json, bundled_config, get, guest, http, http_with, raw_connection,
    read_one_response, read_response, read_until_closed, strip_server,
};

fn items(r: &HttpResponse) -> Value {
    r.json()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_seed_walkthrough_runs_on_functions() {
    let server = TestServer::start(&bundled_config());
    let r = get(&server.url("/prod/items")).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert!(r.header("x-amzn-requestid").is_some() && r.header("x-amz-apigw-id").is_some());
    assert_eq!(items(&r).as_array().unwrap().len(), 4);
    assert_eq!(items(&r)[0], json!({"ID": 1, "name": "Pen", "price": 2.5}));

    let r = get(&server.url("/dev/items/2")).await;
    assert_eq!((r.status, r.json()), (200, json!({"ID": 2, "name": "Pencil", "price": 1.5})));

    let r = get(&server.url("/dev/items/9")).await;
    assert_eq!(r.status, 404, "NotFoundError is mapped to 404: {}", r.text());
    assert_eq!(r.json(), json!({"message": "Item 9 not found", "errorType": "NotFoundError"}));

    for path in ["/prod/nothing", "/prod", "/prod/items/1/2", "/nostage/items", "/"] {
        let r = get(&server.url(path)).await;
        assert_eq!(r.status, 403, "{path}");
        assert_eq!(r.text(), r#"{"message":"Missing Authentication Token"}"#, "{path}");
        assert_eq!(r.header("x-amzn-errortype"), Some("MissingAuthenticationTokenException"));
    }
    let r = http("POST", &server.url("/prod/items"), &[], "{}").await;
    assert_eq!(r.status, 403, "a known path with an unknown method");

    // dev follows $LATEST, prod follows its alias; an alias move takes effect at once.
    server.put_code("ItemsFunction", guest("echo")).await;
    let r = get(&server.url("/dev/items/3")).await;
    assert_eq!(r.json()["event"], json!({"ID": 3}), "dev runs the new $LATEST");
    assert_eq!(get(&server.url("/prod/items/3")).await.json()["name"], "Highlighter", "prod stays on version 1");
    let v2 = server.json(hyper::Method::POST, "/v1/functions/ItemsFunction/versions", json!({})).await;
    assert_eq!(body_json(&v2)["version"], 2);
    server.json(hyper::Method::PUT, "/v1/functions/ItemsFunction/aliases/prod", json!({"version": "2"})).await;
    let r = get(&server.url("/prod/items/3")).await;
    assert_eq!(r.json()["context"]["functionVersion"], "2");
    assert_eq!(r.json()["context"]["invokedQualifier"], "ItemsFunction:prod", "the stage variable chose the alias");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_mock_variant_answers_from_templates() {
    let text = strip_server(include_str!("../../examples/items-mock.toml"));
    let server = TestServer::start(&text);
    let r = get(&server.url("/dev/items")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json(),
        json!([
            {"ID": 1, "name": "foo1", "price": 1.5},
            {"ID": 2, "name": "foo2", "price": 3.0},
            {"ID": 3, "name": "foo3", "price": 4.5},
        ])
    );
    assert!(r.text().contains("\"price\" : 3.0"), "Java prints 2 * 1.5 as 3.0: {}", r.text());
    let r = get(&server.url("/dev/items/7")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json(), json!({"ID": 7, "name": "foo7", "price": 10.5}));
    assert!(r.header("x-amzn-trace-id").is_none(), "mock responses carry no trace id");
}

/// examples/hello-proxy.toml: a guest typed with `aws_lambda_events` reads
/// each part of the proxy event, and its typed response's
/// `multiValueHeaders` arrive as a header line per value.
#[tokio::test(flavor = "multi_thread")]
async fn the_typed_proxy_example_reads_the_event_field_by_field() {
    let text = strip_server(include_str!("../../examples/hello-proxy.toml"));
    let server = TestServer::start(&text);
    // A request with a bit of everything, read field by field.
    let r = http(
        "GET",
        &server.url("/dev/hello/Ada?lang=en&lang=fr&x=1"),
        &[("user-agent", "hello-test/1"), ("x-multi", "a"), ("x-multi", "b")],
        bytes::Bytes::new(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.header_lines("set-cookie"), ["greeted=1", "theme=light"], "multiValueHeaders from the typed response");
    let got = r.json();
    let read = &got["request"];
    assert_eq!(got["message"], "Hello, Ada!");
    assert_eq!(read["method"], "GET");
    assert_eq!(read["path"], "/hello/Ada");
    assert_eq!(read["resource"], "/hello/{name}");
    assert_eq!(read["resourcePath"], "/hello/{name}");
    assert_eq!(read["pathParameters"], json!({ "name": "Ada" }));
    assert_eq!(read["query"], json!({ "lang": ["en", "fr"], "x": ["1"] }));
    assert_eq!(read["stageVariables"], json!({ "greeting": "hello", "colour": "blue" }));
    assert_eq!(read["userAgent"], "hello-test/1");
    assert_eq!(read["headerValues"], json!(["a", "b"]));
    assert_eq!(read["body"], Value::Null);
    assert_eq!(read["isBase64Encoded"], false);
    assert_eq!(read["stage"], "dev");
    assert_eq!(read["requestId"].as_str(), r.header("x-amzn-requestid"));
    assert_eq!(read["sourceIp"], "127.0.0.1");
    assert!(read["requestTimeEpoch"].as_i64().unwrap() > 1_600_000_000_000, "{read}");
    assert_eq!(got["unknownFields"], json!(crate::conformance::HELLO_UNKNOWN_FIELDS));

    // Over HTTP/2 too: a header field per cookie, the repeated header's values in order.
    let r = http_with(
        true,
        "GET",
        &server.url("/dev/hello/Ada"),
        &[("x-multi", "a"), ("x-multi", "b")],
        bytes::Bytes::new(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header_lines("set-cookie"), ["greeted=1", "theme=light"], "over HTTP/2");
    assert_eq!(r.json()["request"]["headerValues"], json!(["a", "b"]));

    let r = get(&server.url("/dev/anything/else?name=Bo")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["message"], "Hello, Bo!");
    assert_eq!(r.json()["request"]["pathParameters"], json!({ "proxy": "anything/else" }));

    // test-invoke sends a repeated query parameter and header with every
    // value, and shows each response header line.
    let (code, out, err) = server.cli(&[
        "test-invoke",
        "Hello",
        "GET",
        "/hello/{name}",
        "--stage",
        "dev",
        "--path",
        "name=Ada",
        "--query",
        "lang=en",
        "--query",
        "lang=fr",
        "--header",
        "x-multi=a",
        "--header",
        "x-multi=b",
    ]);
    assert_eq!(code, 0, "{err}");
    for needle in [
        "Status: 200",
        "  set-cookie: greeted=1\n  set-cookie: theme=light\n",
        r#""query":{"lang":["en","fr"]}"#,
        r#""headerValues":["a","b"]"#,
    ] {
        assert!(out.contains(needle), "{needle:?} missing in:\n{out}");
    }
}

const ROUTES: &str = r#"
[functions.Echo]
guest = "echo"

[functions.Proxy]
guest = "proxy-echo"

[apis.Routes]

[apis.Routes.resources."/".GET.integration]
type = "mock"
request_templates = { "application/json" = '{"statusCode": 200}' }
responses = [{ status = 200, templates = { "application/json" = '{"resource": "/"}' } }]

[apis.Routes.resources."/items".GET.integration]
type = "mock"
request_templates = { "application/json" = '{"statusCode": 200}' }
responses = [{ status = 200, templates = { "application/json" = '{"resource": "/items", "method": "$context.httpMethod"}' } }]

[apis.Routes.resources."/items".ANY.integration]
type = "mock"
request_templates = { "application/json" = '{"statusCode": 200}' }
responses = [{ status = 200, templates = { "application/json" = '{"resource": "/items ANY", "method": "$context.httpMethod"}' } }]

[apis.Routes.resources."/items/{ID}".GET.integration]
type = "mock"
request_templates = { "application/json" = '{"statusCode": 200}' }
responses = [{ status = 200, templates = { "application/json" = '''{"resource": "$context.resourcePath", "id": "$input.params('ID')"}''' } }]

[apis.Routes.resources."/files/{path+}".ANY.integration]
type = "function-proxy"
function = "Proxy"

[apis.Routes.resources."/echo".POST.integration]
type = "function"
function = "Echo:${stageVariables.alias}"

[apis.Routes.stages.v1]
variables = { alias = "$LATEST" }

[apis.Other]
base_path = "other"

[apis.Other.resources."/hello".GET.integration]
type = "mock"
request_templates = { "application/json" = '{"statusCode": 200}' }
responses = [{ status = 200, templates = { "application/json" = '{"api": "Other", "stage": "$context.stage"}' } }]

[apis.Other.stages.v1]

[apis.Hosted]
hosts = ["api.example.test"]

[apis.Hosted.resources."/hello".GET.integration]
type = "mock"
request_templates = { "application/json" = '{"statusCode": 200}' }
responses = [{ status = 200, templates = { "application/json" = '{"api": "Hosted"}' } }]

[apis.Hosted.stages.live]
"#;

#[tokio::test(flavor = "multi_thread")]
async fn every_route_type_matches_as_api_gateway_does() {
    let server = TestServer::start(ROUTES);
    assert_eq!(get(&server.url("/v1")).await.json(), json!({"resource": "/"}));
    assert_eq!(get(&server.url("/v1/")).await.json(), json!({"resource": "/"}));
    assert_eq!(get(&server.url("/v1/items")).await.json(), json!({"resource": "/items", "method": "GET"}));
    assert_eq!(get(&server.url("/v1/items/")).await.json()["resource"], "/items", "a trailing slash is ignored");
    let r = http("DELETE", &server.url("/v1/items"), &[], "").await;
    assert_eq!(r.json(), json!({"resource": "/items ANY", "method": "DELETE"}), "ANY answers other methods");
    assert_eq!(get(&server.url("/v1/items/42")).await.json(), json!({"resource": "/items/{ID}", "id": "42"}));
    assert_eq!(get(&server.url("/v1/items/42/x")).await.status, 403);

    // Greedy path parameter through a proxy integration.
    let r = http("PUT", &server.url("/v1/files/a/b//c.txt?x=1&x=2"), &[("x-custom", "v")], "payload").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("x-proxy-echo"), Some("1"));
    let event = r.json();
    assert_eq!(event["resource"], "/files/{path+}");
    assert_eq!(event["pathParameters"], json!({"path": "a/b//c.txt"}));
    assert_eq!(event["httpMethod"], "PUT");
    assert_eq!(event["queryStringParameters"], json!({"x": "2"}));
    assert_eq!(event["multiValueQueryStringParameters"], json!({"x": ["1", "2"]}));
    assert_eq!(event["body"], "payload");
    assert_eq!(event["headers"]["x-custom"], "v", "names as the client sent them");
    assert_eq!(event["requestContext"]["stage"], "v1");
    assert_eq!(event["stageVariables"], json!({"alias": "$LATEST"}));

    // Several APIs on one server: by base path and by host.
    assert_eq!(get(&server.url("/other/v1/hello")).await.json(), json!({"api": "Other", "stage": "v1"}));
    let r = http("GET", &server.url("/live/hello"), &[("host", "api.example.test")], "").await;
    assert_eq!(r.json(), json!({"api": "Hosted"}));
    assert_eq!(get(&server.url("/live/hello")).await.status, 403, "without the host it is another API's path");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_proxy_event_spells_header_names_as_the_client_sent_them() {
    use tokio::io::AsyncWriteExt;
    let server = TestServer::start(ROUTES);
    let mut stream = raw_connection(&server).await;
    // Two requests in one write (pipelined), the first with a body that
    // looks like a request head; then a chunked one.
    let fake = "GET /x HTTP/1.1\r\nX-Not-A-Header: 1\r\n\r\n";
    let first = format!(
        "PUT /v1/files/a HTTP/1.1\r\nHost: x\r\nX-Mixed-Case: 1\r\nuser-agent: raw-client\r\nContent-Length: {}\r\n\r\n{fake}",
        fake.len()
    );
    let second = "PUT /v1/files/b HTTP/1.1\r\nHOST: x\r\nX-SHOUT: 2\r\nContent-Length: 0\r\n\r\n";
    stream.write_all(format!("{first}{second}").as_bytes()).await.unwrap();
    let third =
        "PUT /v1/files/c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nx-Third: 3\r\n\r\n4\r\nbody\r\n0\r\n\r\n";
    let mut events = Vec::new();
    // The two pipelined responses may arrive in one read.
    let mut pending = Vec::new();
    for extra in [None, None, Some(third)] {
        if let Some(req) = extra {
            stream.write_all(req.as_bytes()).await.unwrap();
        }
        let resp = read_one_response(&mut stream, &mut pending).await;
        assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
        let body = resp.split_once("\r\n\r\n").unwrap().1;
        events.push(serde_json::from_str::<Value>(body).unwrap());
    }
    let names = |e: &Value| e["headers"].as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(events[0]["pathParameters"]["path"], "a");
    assert_eq!(events[0]["body"], fake);
    assert!(names(&events[0]).contains(&"X-Mixed-Case".to_string()), "{:?}", names(&events[0]));
    assert_eq!(events[0]["headers"]["user-agent"], "raw-client");
    assert_eq!(events[0]["multiValueHeaders"]["X-Mixed-Case"], json!(["1"]));
    assert!(!names(&events[0]).iter().any(|n| n.eq_ignore_ascii_case("x-not-a-header")));
    assert_eq!(events[1]["pathParameters"]["path"], "b");
    assert_eq!(events[1]["headers"]["X-SHOUT"], "2");
    assert_eq!(events[1]["headers"]["HOST"], "x");
    assert_eq!(events[2]["pathParameters"]["path"], "c");
    assert_eq!(events[2]["body"], "body");
    assert_eq!(events[2]["headers"]["x-Third"], "3");
    // Over HTTP/2 names arrive lower-cased, as the client sends them.
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .http2_only(true)
        .build_http::<http_body_util::Full<bytes::Bytes>>();
    let req = hyper::Request::put(server.url("/v1/files/h2"))
        .header("X-Upper", "4")
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .unwrap();
    let resp = client.request(req).await.unwrap();
    let body = http_body_util::BodyExt::collect(resp.into_body()).await.unwrap().to_bytes();
    let event: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(event["headers"]["x-upper"], "4");
}

const ERRORS: &str = r#"
[functions.Echo]
guest = "echo"
aliases = { nope = "$LATEST" }

[functions.Loop]
guest = "busy-loop"
timeout_ms = 2000

[functions.Proxy]
guest = "proxy-echo"

[apis.Errors]

[apis.Errors.request_validators.all]
validate_body = true
validate_parameters = true

[apis.Errors.models.Item]
schema = '{"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}, "price": {"type": "number"}}}'

[apis.Errors.resources."/never".POST.integration]
type = "function"
function = "Echo"
passthrough_behavior = "NEVER"
request_templates = { "application/json" = '''{"json": $input.json('$')}''' }

[apis.Errors.resources."/no-templates".POST.integration]
type = "function"
function = "Echo"
passthrough_behavior = "WHEN_NO_TEMPLATES"
request_templates = { "application/json" = '{}' }

[apis.Errors.resources."/passthrough".POST.integration]
type = "function"
function = "Echo"

[apis.Errors.resources."/slow".GET.integration]
type = "function"
function = "Loop"
timeout_ms = 300

[apis.Errors.resources."/slow-function".GET.integration]
type = "function"
function = "Loop"
request_templates = { "application/json" = '{}' }

[apis.Errors.resources."/fail".GET.integration]
type = "function"
function = "Echo"
request_templates = { "application/json" = '''{"fail": "$input.params('message')"}''' }
responses = [
  { status = 200 },
  { selection_pattern = ".*four hundred.*", status = 405 },
  { selection_pattern = ".+", status = 502, headers = { "x-error" = "integration.response.body.errorType", "x-static" = "'yes'", "x-amzn-RequestId" = "'mapped'" } },
]

[apis.Errors.resources."/override".GET.integration]
type = "function"
function = "Echo"
responses = [{ status = 200, templates = { "application/json" = '''#set($context.responseOverride.status = 418)#set($context.responseOverride.header['x-teapot'] = "short")$input.json('$.event')''' } }]

[apis.Errors.resources."/proxy".POST.integration]
type = "function-proxy"
function = "Proxy"

[apis.Errors.resources."/missing-function".GET.integration]
type = "function"
function = "Echo:${stageVariables.alias}"

[apis.Errors.resources."/validated".POST]
request_validator = "all"
request_parameters = { "method.request.querystring.qs1" = true, "method.request.header.x-header-param" = true, "method.request.querystring.optional" = false }
request_models = { "application/json" = "Item" }

[apis.Errors.resources."/validated".POST.integration]
type = "mock"
request_templates = { "application/json" = '{"statusCode": 200}' }
responses = [{ status = 201, templates = { "application/json" = '{"ok": true}' } }]

[apis.Errors.resources."/bad-template".GET.integration]
type = "mock"
request_templates = { "application/json" = '{"statusCode": 200}' }
responses = [{ status = 200, templates = { "application/json" = '''$input.path('$[?')''' } }]

[apis.Errors.stages.test]
variables = { alias = "nope" }

[apis.Errors.gateway_responses.UNSUPPORTED_MEDIA_TYPE]
status = 400
headers = { "x-why" = "'no template'" }
templates = { "application/json" = '{"error": $context.error.messageString, "type": "$context.error.responseType"}' }

[apis.Errors.gateway_responses.DEFAULT_4XX]
headers = { "Access-Control-Allow-Origin" = "'*'" }
"#;

#[tokio::test(flavor = "multi_thread")]
async fn integrations_and_their_errors_follow_api_gateway() {
    let server = TestServer::start(ERRORS);
    let url = |p: &str| server.url(&format!("/test{p}"));

    // Passthrough: NEVER without a matching template → 415 (customised to 400 here).
    let r = http("POST", &url("/never"), &[("content-type", "text/plain")], "x").await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json(), json!({"error": "Unsupported Media Type", "type": "UNSUPPORTED_MEDIA_TYPE"}));
    assert_eq!(r.header("x-why"), Some("no template"));
    let r = http("POST", &url("/never"), &[("content-type", "application/json; charset=utf-8")], r#"{"a":1}"#).await;
    assert_eq!(r.json()["event"], json!({"json": {"a": 1}}), "the template for the media type, parameters ignored");
    let r = http("POST", &url("/no-templates"), &[("content-type", "text/plain")], "x").await;
    assert_eq!(r.status, 400, "WHEN_NO_TEMPLATES with templates defined");
    let r = http("POST", &url("/passthrough"), &[("content-type", "text/plain")], r#"{"raw": true}"#).await;
    assert_eq!(r.json()["event"], json!({"raw": true}), "WHEN_NO_MATCH passes the body through");
    let r = http("POST", &url("/passthrough"), &[], "").await;
    assert_eq!(r.json()["event"], json!({}), "no body: the empty object");
    let r = http("POST", &url("/passthrough"), &[("content-type", "text/plain")], "{not json").await;
    assert_eq!(
        (r.status, r.text().as_str()),
        (500, r#"{"message":"Internal server error"}"#),
        "a body that is not JSON"
    );

    // Timeouts: the integration's → 504; the function's own is a function
    // error, answered by the default integration response (200, Lambda's
    // error payload), as on AWS.
    let r = get(&url("/slow")).await;
    assert_eq!(r.status, 504, "{}", r.text());
    assert_eq!(r.text(), r#"{"message":"Endpoint request timed out"}"#);
    assert_eq!(r.header("x-amzn-errortype"), Some("InternalServerErrorException"));
    let r = get(&url("/slow-function")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["errorType"], "Sandbox.Timedout");
    assert!(r.json()["errorMessage"].as_str().unwrap().ends_with("Task timed out after 2.00 seconds"), "{}", r.text());

    // Function errors select integration responses by message, as in the recorded vectors.
    let r = get(&url("/fail?message=")).await;
    assert_eq!(r.status, 200, "no error: the default response");
    let r = get(&url("/fail?message=Error:+Raising+four+hundred+now")).await;
    assert_eq!(r.status, 405);
    assert_eq!(r.json()["errorMessage"], "Error: Raising four hundred now");
    let r = get(&url("/fail?message=boom")).await;
    assert_eq!(r.status, 502);
    assert_eq!(r.json(), json!({"errorMessage": "boom", "errorType": "EchoError", "stackTrace": []}));
    assert_eq!(r.header("x-error"), Some("EchoError"));
    assert_eq!(r.header("x-static"), Some("yes"));
    // The request id is API Gateway's own: a header mapping does not replace it.
    let id = r.header("x-amzn-requestid").expect("a request id");
    assert!(id.len() == 36 && id != "mapped", "{id}");
    assert!(r.header("x-amzn-trace-id").is_some());

    // $context.responseOverride from a response template.
    let r = get(&url("/override")).await;
    assert_eq!(r.status, 418);
    assert_eq!(r.header("x-teapot"), Some("short"));

    // Proxy: a malformed response or a function error → 502; a valid one passes.
    let r = http(
        "POST",
        &url("/proxy"),
        &[],
        r#"{"respond": {"statusCode": "201", "body": "made", "headers": {"h": true}}}"#,
    )
    .await;
    assert_eq!((r.status, r.text().as_str(), r.header("h")), (201, "made", Some("true")));
    for bad in [
        r#"{"respond": {}}"#,
        r#"{"respond": "justAString"}"#,
        r#"{"respond": {"statusCode": 200, "wrongValue": 1}}"#,
        r#"{"fail": "x"}"#,
    ] {
        let r = http("POST", &url("/proxy"), &[], bad).await;
        assert_eq!(r.status, 502, "{bad}");
        assert_eq!(r.text(), r#"{"message":"Internal server error"}"#);
    }

    // A stage variable naming an alias that does not exist (any more: a
    // deploy refuses one that does not) → 500.
    let (code, _, err) = server.cli(&["function", "alias", "delete", "Echo", "nope", "--force"]);
    assert_eq!(code, 0, "{err}");
    let r = get(&url("/missing-function")).await;
    assert_eq!(r.status, 500);
    assert_eq!(r.text(), r#"{"message":"Internal server error"}"#);

    // A template that fails at run time → 500.
    assert_eq!(get(&url("/bad-template")).await.status, 500);

    // Request validation: parameters first, then the body against the model.
    let r = http("POST", &url("/validated"), &[], r#"{"price": 1}"#).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.text(), r#"{"message":"Missing required request parameters: [x-header-param, qs1]"}"#);
    assert_eq!(r.header("x-amzn-errortype"), Some("BadRequestException"));
    assert_eq!(r.header("access-control-allow-origin"), Some("*"), "DEFAULT_4XX customisation applies");
    let r = http("POST", &url("/validated?qs1=1"), &[], r#"{"name": "x"}"#).await;
    assert_eq!(r.text(), r#"{"message":"Missing required request parameters: [x-header-param]"}"#);
    let r = http("POST", &url("/validated?qs1=1"), &[("x-header-param", "y")], r#"{"price": 1}"#).await;
    assert_eq!((r.status, r.text().as_str()), (400, r#"{"message":"Invalid request body"}"#));
    let r = http("POST", &url("/validated?qs1=1"), &[("x-header-param", "y")], "not json").await;
    assert_eq!(r.status, 400);
    let r = http("POST", &url("/validated?qs1=1"), &[("x-header-param", "y")], "").await;
    assert_eq!(r.status, 400, "an empty body is validated as {{}}");
    let r =
        http("POST", &url("/validated?qs1=1"), &[("x-header-param", "y")], r#"{"name": "pen", "price": 2.5}"#).await;
    assert_eq!((r.status, r.json()), (201, json!({"ok": true})));
}

/// With `wasmgate::execution` at `debug`, each request's execution log (what
/// test-invoke shows) goes to the server's log, tagged with the request id,
/// as API Gateway's execution logging writes it; by default it does not.
#[tokio::test(flavor = "multi_thread")]
async fn execution_logging_writes_each_requests_execution_log() {
    let server = TestServer::start_with_log_filter("warn,wasmgate::execution=debug", &bundled_config());
    // `{ "ID": abc }` is not JSON: a 500 whose cause only the execution log tells.
    let failed = get(&server.url("/dev/items/abc")).await;
    assert_eq!(failed.status, 500);
    let failed_id = failed.header("x-amzn-requestid").unwrap().to_string();
    let ok = get(&server.url("/dev/items/2")).await;
    assert_eq!(ok.status, 200);
    let ok_id = ok.header("x-amzn-requestid").unwrap().to_string();
    // The execution log is written once the request is answered, after the
    // function's own lines: wait for its last line, only this request's.
    let log = server.log_with(0, "Method completed with status: 200");
    let lines_of = |id: &str| log.lines().filter(|l| l.contains(id)).collect::<Vec<_>>().join("\n");
    let failed_lines = lines_of(&failed_id);
    assert!(failed_lines.contains("Endpoint request body after transformations: { \"ID\": abc }"), "{log}");
    assert!(failed_lines.contains("the event is not valid JSON"), "{log}");
    let ok_lines = lines_of(&ok_id);
    for needle in
        ["HTTP Method: GET, Resource Path: /items/{ID}", "ran version $LATEST", "Method completed with status: 200"]
    {
        assert!(ok_lines.contains(needle), "{needle:?} missing in:\n{log}");
    }

    let quiet = TestServer::start(&bundled_config());
    let r = get(&quiet.url("/dev/items/2")).await;
    // The access line is the request's last: the function's own lines
    // (with the request id too) come before it.
    let log = quiet.log_with(0, "wasmgate::access");
    assert!(log.contains(r.header("x-amzn-requestid").unwrap()), "{log}");
    assert!(!log.contains("wasmgate::execution"), "no execution log by default: {log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn http_hygiene_body_limit_and_h2c() {
    let server = TestServer::start(&bundled_config());
    let big = vec![b'x'; 10 * 1024 * 1024 + 1];
    let r = http("POST", &server.url("/prod/items"), &[], big).await;
    assert_eq!(r.status, 413);
    assert_eq!(r.text(), r#"{"message":"Request Too Long"}"#);
    // A body declared too large is refused before it is sent: no `100
    // Continue` for a client that waits for one, and no wait for the bytes
    // of one declaring more than the server would ever read.
    for head in [
        "POST /prod/items HTTP/1.1\r\nHost: x\r\nContent-Length: 20000000\r\nExpect: 100-continue\r\n\r\n",
        "POST /prod/items HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999\r\n\r\n",
    ] {
        use tokio::io::AsyncWriteExt;
        let mut stream = raw_connection(&server).await;
        stream.write_all(head.as_bytes()).await.unwrap();
        let response = tokio::time::timeout(std::time::Duration::from_secs(5), read_response(&mut stream))
            .await
            .unwrap_or_else(|_| panic!("no answer to {head:?}"));
        assert!(response.starts_with("HTTP/1.1 413"), "{head:?}: {response}");
        assert!(response.ends_with(r#"{"message":"Request Too Long"}"#), "{response}");
    }
    let r = http_with(true, "GET", &server.url("/dev/items/1"), &[], "").await;
    assert_eq!((r.status, r.json()["name"].clone()), (200, json!("Pen")), "HTTP/2 over cleartext");
}

#[test]
fn api_configuration_errors_name_the_key_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let base = "[functions.F]\nguest = \"echo\"\n\n[apis.A]\n[apis.A.stages.s]\n";
    let cases = [
        (
            "[apis.A.resources.\"/x\".GET.integration]\ntype = \"function\"\nfunction = \"ItemsFuncton\"\n",
            "apis.A.resources.\"/x\".GET.integration.function: unknown function \"ItemsFuncton\"",
            ":8:",
        ),
        (
            "[apis.A.resources.\"/x\".GET]\nrequest_models = { \"application/json\" = \"Nope\" }\nintegration = { type = \"mock\" }\n",
            "unknown model \"Nope\"",
            ":7:",
        ),
        (
            "[apis.A.resources.\"/x\".GET.integration]\ntype = \"mock\"\nrequest_templates = { \"application/json\" = '#if($a' }\n",
            "mapping template: line 1, column",
            ":8:",
        ),
        (
            "[apis.A.resources.\"/x\".FETCH.integration]\ntype = \"mock\"\n",
            "unknown method \"FETCH\"",
            "apis.A.resources",
        ),
        ("[apis.A.resources.\"/x\".GET.integration]\ntype = \"lambda\"\n", "unknown integration type", ":7:"),
        ("[apis.A.resources.\"/a{b}\".GET.integration]\ntype = \"mock\"\n", "invalid path part", "apis.A.resources"),
        (
            "[apis.A.resources.\"/x\".GET.integration]\ntype = \"function\"\nfunction = \"F:${stageVariables.alias}\"\n",
            "needs a stage variable that stage \"s\" does not define",
            "apis.A",
        ),
        ("[apis.A.resources.\"/x\".GET.integration]\ntype = \"mock\"\nbogus = 1\n", "unknown field `bogus`", "line 8"),
        (
            "[apis.A.resources.\"/x\".GET.integration]\ntype = \"mock\"\nresponses = [{ status = \"x\" }]\n",
            "apis.A.resources.\"/x\".GET.integration.responses[0].status: ",
            "line 8",
        ),
        ("[apis.A.gateway_responses.NOT_A_TYPE]\nstatus = 400\n", "unknown gateway response type", ":6:"),
    ];
    for (extra, needle, line) in cases {
        let path = crate::common::write_file(dir.path(), "gateway.toml", format!("{base}{extra}").as_bytes());
        let out = std::process::Command::new(crate::common::BIN)
            .args(["validate", "--config", path.to_str().unwrap()])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "accepted:\n{extra}");
        assert!(err.contains(needle) && err.contains(line), "{err} lacks {needle:?} / {line:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_slow_to_send_its_headers_is_disconnected() {
    use tokio::io::AsyncWriteExt;
    let server = TestServer::start_with("header_read_timeout_ms = 500\n", &bundled_config());
    let mut stream = raw_connection(&server).await;
    // Half a request, then nothing.
    stream.write_all(b"GET /prod/items HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    let (_, waited) = read_until_closed(&mut stream, "the connection stayed open").await;
    assert!(waited >= std::time::Duration::from_millis(400), "closed after the timeout, not before");
    // Other clients are served meanwhile and after.
    assert_eq!(get(&server.url("/prod/items")).await.status, 200);
}

/// RFC 9112 §3.2: an HTTP/1.1 request without `Host` is answered 400. An
/// empty `Host`, HTTP/1.0 without one, and an absolute URI's authority in
/// its place are fine.
#[tokio::test(flavor = "multi_thread")]
async fn an_http11_request_without_host_is_answered_400() {
    use tokio::io::AsyncWriteExt;
    let server = TestServer::start_with("", &bundled_config());
    let mut stream = raw_connection(&server).await;
    stream.write_all(b"GET /prod/items HTTP/1.1\r\n\r\n").await.unwrap();
    let response = read_response(&mut stream).await;
    assert!(response.starts_with("HTTP/1.1 400 "), "{response}");
    assert!(response.to_ascii_lowercase().contains("x-amzn-requestid: "), "{response}");
    assert!(response.ends_with(r#"{"message":"Bad Request"}"#), "{response}");
    // The refusal has its access line, as every response does.
    let request_id = response
        .lines()
        .find_map(|l| l.to_ascii_lowercase().strip_prefix("x-amzn-requestid: ").map(str::to_string))
        .unwrap();
    let log = server.log_with(0, &request_id);
    let line = log.lines().find(|l| l.contains(&request_id)).expect("an access line");
    assert!(line.contains("wasmgate::access") && line.contains("400"), "{line}");
    let served = [
        "GET /prod/items HTTP/1.1\r\nHost:\r\n\r\n",
        "GET /prod/items HTTP/1.0\r\n\r\n",
        "GET http://example.test/prod/items HTTP/1.1\r\n\r\n",
    ];
    for request in served {
        let mut stream = raw_connection(&server).await;
        stream.write_all(request.as_bytes()).await.unwrap();
        let response = read_response(&mut stream).await;
        assert!(response.starts_with("HTTP/1.") && response.contains(" 200 "), "{request:?}: {response}");
        assert!(response.contains("Pencil"), "{request:?}: {response}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_that_stops_sending_its_body_is_answered_408_and_disconnected() {
    use tokio::io::AsyncWriteExt;
    let server = TestServer::start_with("body_read_timeout_ms = 500\n", &bundled_config());
    // A whole head announcing 100 bytes of body, ten of them, then nothing.
    let mut stream = raw_connection(&server).await;
    stream.write_all(b"POST /prod/items HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789").await.unwrap();
    let (response, _) = read_until_closed(&mut stream, "the connection stayed open with its body unfinished").await;
    assert!(response.starts_with("HTTP/1.1 408 "), "{response}");
    // DEFAULT_4XX, API Gateway's type for a 4xx without a type of its own (no x-amzn-ErrorType).
    assert!(response.to_ascii_lowercase().contains("x-amzn-requestid: "), "{response}");
    assert!(response.ends_with(r#"{"message":"Request Timeout"}"#), "{response}");

    // A body that keeps coming is read whole, however long it takes (the
    // timeout is a pause between pieces, not a limit on the whole body, nor
    // answered before it): a byte at a time, one after another, until the timeout
    // has passed — until a body that stopped after this one started is
    // answered 408 — then the rest.
    let mut stream = raw_connection(&server).await;
    stream.set_nodelay(true).unwrap();
    let length = 8 << 20;
    let head = format!("POST /prod/items HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\n\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(b"x").await.unwrap();
    let mut stopped = raw_connection(&server).await;
    stopped.write_all(b"POST /prod/items HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123").await.unwrap();
    let stopped = tokio::spawn(async move { read_until_closed(&mut stopped, "a stopped body was not answered").await });
    let mut sent = 1;
    while !stopped.is_finished() {
        stream.write_all(b"x").await.unwrap();
        sent += 1;
        assert!(sent < length, "the whole body went before the stopped one was answered");
        tokio::task::yield_now().await;
    }
    assert!(stopped.await.unwrap().0.starts_with("HTTP/1.1 408 "));
    stream.write_all(&vec![b'x'; length - sent]).await.unwrap();
    let response = read_response(&mut stream).await;
    // Whole, so routed: no POST method on /items.
    assert!(response.starts_with("HTTP/1.1 403 "), "{response}");

    // The admin API's bodies have the same limit.
    let admin = server.admin_url.trim_start_matches("http://").to_string();
    let token = server.token();
    let mut stream = tokio::net::TcpStream::connect(admin).await.unwrap();
    let head = format!(
        "PUT /v1/functions/F/code HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Length: 100\r\n\r\n0123",
        token
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let (response, _) =
        read_until_closed(&mut stream, "the admin connection stayed open with its body unfinished").await;
    assert!(response.starts_with("HTTP/1.1 408 "), "{response}");
    assert!(response.contains("RequestTimeoutException"), "{response}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_idle_keep_alive_connection_is_closed_but_a_slow_request_in_flight_is_not() {
    use tokio::io::AsyncWriteExt;
    let server = TestServer::start_with("header_read_timeout_ms = 500\n", &bundled_config());

    // A request whose body arrives after the timeout: in flight, so served.
    let mut slow = raw_connection(&server).await;
    slow.write_all(b"GET /prod/items HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n").await.unwrap();
    // The timeout has passed once the server closes a connection opened
    // after that head, on which nothing was sent.
    let mut idle = raw_connection(&server).await;
    let (rest, _) = read_until_closed(&mut idle, "a connection that sent nothing stayed open").await;
    assert!(rest.is_empty(), "unexpected bytes: {rest}");
    slow.write_all(b"{}").await.unwrap();
    let first = read_response(&mut slow).await;
    assert!(first.starts_with("HTTP/1.1 200"), "{first}");
    assert!(first.contains("Pencil"), "{first}");

    // The same connection kept alive serves more requests, and stays open
    // while it is used: requests one after another until a connection
    // opened meanwhile and left idle is closed, and one more after that.
    let mut idle = raw_connection(&server).await;
    let idle_closed =
        tokio::spawn(async move { read_until_closed(&mut idle, "a connection that sent nothing stayed open").await });
    let mut served = 0;
    loop {
        slow.write_all(b"GET /prod/items HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
        let response = read_response(&mut slow).await;
        assert!(response.starts_with("HTTP/1.1 200"), "request {served} on a used connection: {response}");
        served += 1;
        if idle_closed.is_finished() {
            break;
        }
    }
    assert!(idle_closed.await.unwrap().0.is_empty());
    slow.write_all(b"GET /prod/items HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let response = read_response(&mut slow).await;
    assert!(response.starts_with("HTTP/1.1 200"), "after {served} requests, once the idle one was closed: {response}");
    // … and, left idle, is closed.
    let (rest, _) = read_until_closed(&mut slow, "the idle connection stayed open").await;
    assert!(rest.is_empty(), "unexpected bytes: {rest}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_idle_http2_connection_is_sent_goaway_and_closed_but_a_slow_stream_is_not() {
    use http_body_util::Empty;
    use std::time::Duration;
    // A method whose call outlasts the idle timeout (the loop times out at 1 s).
    let config = format!(
        "{}\n[functions.Loop]\nguest = \"busy-loop\"\ntimeout_ms = 1000\n\n\
         [apis.ItemsAPI.resources.\"/loop\".GET.integration]\ntype = \"function\"\nfunction = \"Loop\"\n",
        bundled_config()
    );
    let server = TestServer::start_with("header_read_timeout_ms = 500\n", &config);
    let stream = hyper_util::rt::TokioIo::new(raw_connection(&server).await);
    let (mut sender, conn) = hyper::client::conn::http2::handshake::<_, _, Empty<bytes::Bytes>>(
        hyper_util::rt::TokioExecutor::new(),
        stream,
    )
    .await
    .expect("h2c handshake");
    let closed = tokio::spawn(conn);
    let get = |path: &str| hyper::Request::get(server.url(path)).body(Empty::new()).unwrap();

    // A stream in flight longer than the timeout is answered, not cut.
    let resp = sender.send_request(get("/prod/loop")).await.expect("the slow stream was answered");
    // The function's timeout, after 1 s: a function error, in the default response.
    assert_eq!(resp.status(), 200);
    let body = http_body_util::BodyExt::collect(resp.into_body()).await.expect("the slow stream's body").to_bytes();
    let error: Value = serde_json::from_slice(&body).expect("JSON");
    assert_eq!(error["errorType"], "Sandbox.Timedout", "{error}");
    // Used, it stays open: requests one after another until a connection
    // opened meanwhile and left idle is closed, and one more after that.
    let mut idle = raw_connection(&server).await;
    let idle_closed =
        tokio::spawn(async move { read_until_closed(&mut idle, "a connection that sent nothing stayed open").await });
    let mut served = 0;
    loop {
        let resp = sender.send_request(get("/dev/items/2")).await;
        assert_eq!(resp.unwrap_or_else(|e| panic!("request {served}: {e}")).status(), 200);
        served += 1;
        if idle_closed.is_finished() {
            break;
        }
    }
    assert!(idle_closed.await.unwrap().0.is_empty());
    let resp = sender.send_request(get("/dev/items/2")).await;
    assert_eq!(
        resp.unwrap_or_else(|e| panic!("after {served} requests, once the idle one was closed: {e}")).status(),
        200
    );

    // Left idle, the server says GOAWAY and the connection ends cleanly.
    let ended = tokio::time::timeout(Duration::from_secs(10), closed)
        .await
        .expect("the idle HTTP/2 connection stayed open")
        .unwrap();
    ended.expect("a graceful close, not an error");
    assert!(sender.send_request(get("/dev/items/2")).await.is_err(), "the connection still took a request");
}
