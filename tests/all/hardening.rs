//! The request path's defences: a function cannot set HTTP's framing (no
//! response splitting, over HTTP/1.1 keep-alive or HTTP/2), a deadline holds
//! while a guest waits in a host call, the function's timeout and the
//! integration's are told apart as AWS tells them, a result over Lambda's
//! 6 MB is refused, the server caps requests in flight, and a slow reader of
//! a large response gets all of it.

use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::{TestServer, body_json, http, http_with, raw_connection, read_one_response, read_until_closed};

/// A proxy function, and a custom (non-proxy) integration with templates
/// that try to set framing headers.
const SPLIT_API: &str = r#"
[functions.Proxy]
guest = "proxy-echo"

[functions.Echo]
guest = "echo"

[apis.Split]

[apis.Split.resources."/proxy".ANY.integration]
type = "function-proxy"
function = "Proxy"

[apis.Split.resources."/custom".POST.integration]
type = "function"
function = "Echo"
request_templates = { "application/json" = '{"respond": {"a": 1}}' }

[[apis.Split.resources."/custom".POST.integration.responses]]
status = 200
templates = { "application/json" = '''#set($context.responseOverride.header.Content-Length = "0")#set($context.responseOverride.header.Transfer-Encoding = "chunked")HTTP/1.1 200 OK
Content-Length: 5
X-Smuggled: yes

EVIL!''' }
headers = { "Date" = "'Thu, 01 Jan 1970 00:00:00 GMT'", "X-Kept" = "'kept'" }

[apis.Split.stages.s]
"#;

/// The planted response a function's body carries.
const PLANTED: &str = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Smuggled: yes\r\n\r\nEVIL!";

fn splitting_proxy_response() -> String {
    json!({"respond": {"statusCode": 200, "headers": {"Content-Length": "0", "Connection": "keep-alive"}, "body": PLANTED}})
        .to_string()
}

/// One response read off a raw connection, as its head and its body.
async fn next_response(stream: &mut tokio::net::TcpStream, pending: &mut Vec<u8>) -> (String, String) {
    let response = read_one_response(stream, pending).await;
    let (head, body) = response.split_once("\r\n\r\n").expect("a response head");
    (head.to_string(), body.to_string())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_proxy_function_cannot_plant_a_response_on_a_keep_alive_connection() {
    let server = TestServer::start(SPLIT_API);
    let mut stream = raw_connection(&server).await;
    let body = splitting_proxy_response();
    let first = format!(
        "POST /s/proxy HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    // The second request follows on the same connection, as a browser's would.
    stream.write_all(first.as_bytes()).await.unwrap();
    stream.write_all(b"GET /s/proxy HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let mut pending = Vec::new();
    let (head, body) = next_response(&mut stream, &mut pending).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(body, PLANTED, "the whole body is the first response's: {head}");
    let lower = head.to_ascii_lowercase();
    assert!(lower.contains("x-amzn-remapped-content-length: 0"), "{head}");
    assert!(lower.contains("x-amzn-remapped-connection: keep-alive"), "{head}");
    assert!(lower.contains(&format!("content-length: {}", PLANTED.len())), "{head}");

    let (second, event) = next_response(&mut stream, &mut pending).await;
    assert!(second.starts_with("HTTP/1.1 200"), "{second}");
    assert!(!second.to_ascii_lowercase().contains("x-smuggled"), "a planted response was read: {second}");
    assert!(second.to_ascii_lowercase().contains("x-proxy-echo: 1"), "the function's own answer: {second}");
    let event: Value = serde_json::from_str(&event).unwrap();
    assert_eq!(event["httpMethod"], "GET");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_proxy_function_cannot_set_framing_over_http2() {
    let server = TestServer::start(SPLIT_API);
    let body = splitting_proxy_response();
    let r = http_with(true, "POST", &server.url("/s/proxy"), &[("content-type", "application/json")], body).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), PLANTED);
    assert_eq!(r.header("x-amzn-remapped-content-length"), Some("0"));
    assert_eq!(r.header("x-amzn-remapped-connection"), Some("keep-alive"));
    // The connection serves the next stream.
    let next = http_with(true, "GET", &server.url("/s/proxy"), &[], "").await;
    assert_eq!(next.status, 200);
    assert!(next.header("x-smuggled").is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn templates_and_header_mappings_cannot_set_framing() {
    let server = TestServer::start(SPLIT_API);
    let mut stream = raw_connection(&server).await;
    let request = "POST /s/custom HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}";
    stream.write_all(request.as_bytes()).await.unwrap();
    stream.write_all(b"GET /s/proxy HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let mut pending = Vec::new();
    let (head, body) = next_response(&mut stream, &mut pending).await;
    let lower = head.to_ascii_lowercase();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(body.ends_with("EVIL!"), "the whole template output: {head}");
    assert!(lower.contains("x-amzn-remapped-content-length: 0"), "{head}");
    assert!(lower.contains("x-amzn-remapped-transfer-encoding: chunked"), "{head}");
    assert!(lower.contains("x-amzn-remapped-date: thu, 01 jan 1970"), "{head}");
    assert!(lower.contains("x-kept: kept"), "{head}");
    let (second, _) = next_response(&mut stream, &mut pending).await;
    assert!(second.to_ascii_lowercase().contains("x-proxy-echo: 1"), "{second}");
    assert!(!second.to_ascii_lowercase().contains("x-smuggled"), "{second}");
}

/// The sleepy guest behind each kind of integration, with a 300 ms function
/// timeout and one call at a time.
const SLEEPY_API: &str = r#"
[functions.Sleepy]
guest = "sleepy"
timeout_ms = 300
max_concurrency = 1

[functions.Patient]
guest = "sleepy"
timeout_ms = 5000

[apis.Waits]

[apis.Waits.resources."/proxy".POST.integration]
type = "function-proxy"
function = "Sleepy"

[apis.Waits.resources."/custom".POST.integration]
type = "function"
function = "Sleepy"

[apis.Waits.resources."/selected".POST.integration]
type = "function"
function = "Sleepy"

[[apis.Waits.resources."/selected".POST.integration.responses]]
status = 200

[[apis.Waits.resources."/selected".POST.integration.responses]]
selection_pattern = '.*Task timed out.*'
status = 408
templates = { "application/json" = '''{"timedOut": "$input.path('$.errorMessage')"}''' }

[apis.Waits.resources."/patient".POST.integration]
type = "function"
function = "Patient"

[apis.Waits.resources."/integration".POST.integration]
type = "function"
function = "Patient"
timeout_ms = 100

[apis.Waits.stages.s]
"#;

fn error_of(r: &wasmgate_host::admin::client::ApiResponse) -> (String, String) {
    let body = body_json(r);
    (
        body["errorType"].as_str().unwrap_or_default().to_string(),
        body["errorMessage"].as_str().unwrap_or_default().to_string(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_guest_waiting_in_a_host_call_is_stopped_at_its_deadline() {
    let server = TestServer::start(SLEEPY_API);
    // The admin Invoke: no integration timeout around it, only the function's.
    let r = server.invoke("Sleepy", r#"{"sleep_ms": 600000}"#).await;
    assert_eq!(r.header("x-amz-function-error"), Some("Unhandled"), "{}", String::from_utf8_lossy(&r.body));
    let (error_type, message) = error_of(&r);
    assert_eq!(error_type, "Sandbox.Timedout");
    assert!(message.ends_with("Task timed out after 0.30 seconds"), "{message}");
    // Its slot is free (max_concurrency = 1): the next call runs, and it
    // runs on a fresh instance, the cut-off one having been dropped.
    let next = server.invoke("Sleepy", r#"{"sleep_ms": 1}"#).await;
    assert!(next.header("x-amz-function-error").is_none(), "{}", String::from_utf8_lossy(&next.body));
    assert_eq!(body_json(&next), json!({"slept_ms": 1}));
    assert_eq!(next.header("x-wasmgate-start"), Some("warm"));

    // Through the gateway, the same: the proxy integration answers 502.
    let r = http("POST", &server.url("/s/proxy"), &[], r#"{"sleep_ms": 600000}"#).await;
    assert_eq!(r.status, 502, "{}", r.text());
    assert_eq!(r.json(), json!({"message": "Internal server error"}));
    let next = server.invoke("Sleepy", r#"{"sleep_ms": 1}"#).await;
    assert!(
        next.header("x-amz-function-error").is_none(),
        "the slot is free again: {}",
        String::from_utf8_lossy(&next.body)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_function_timeout_is_a_function_error_and_the_integration_timeout_a_504() {
    let server = TestServer::start(SLEEPY_API);
    let event = r#"{"sleep_ms": 600000}"#;
    // Non-proxy, no response matches: the default response, 200 with the error.
    let r = http("POST", &server.url("/s/custom"), &[("content-type", "application/json")], event).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["errorType"], "Sandbox.Timedout");
    assert!(r.json()["errorMessage"].as_str().unwrap().ends_with("Task timed out after 0.30 seconds"));
    // Non-proxy, a selection pattern on the message.
    let r = http("POST", &server.url("/s/selected"), &[("content-type", "application/json")], event).await;
    assert_eq!(r.status, 408, "{}", r.text());
    assert!(r.json()["timedOut"].as_str().unwrap().contains("Task timed out after 0.30 seconds"), "{}", r.text());
    // Proxy: 502.
    let r = http("POST", &server.url("/s/proxy"), &[], event).await;
    assert_eq!(r.status, 502);
    // The integration's own timeout (100 ms, before the function's 5 s): 504.
    let r = http("POST", &server.url("/s/integration"), &[("content-type", "application/json")], event).await;
    assert_eq!(r.status, 504, "{}", r.text());
    assert_eq!(r.json(), json!({"message": "Endpoint request timed out"}));
    assert_eq!(r.header("x-amzn-errortype"), Some("InternalServerErrorException"));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_execution_log_says_which_timeout_fired() {
    let server = TestServer::start(SLEEPY_API);
    let invoke = |resource: &str| json!({"stage": "s", "method": "POST", "resource_path": resource, "body": r#"{"sleep_ms": 600000}"#});
    let r = server.json(hyper::Method::POST, "/v1/apis/Waits/test-invoke", invoke("/custom")).await;
    let log = body_json(&r)["log"].to_string();
    assert!(log.contains("The function timed out (its timeout, not the integration's)"), "{log}");
    let r = server.json(hyper::Method::POST, "/v1/apis/Waits/test-invoke", invoke("/integration")).await;
    let log = body_json(&r)["log"].to_string();
    assert!(log.contains("the integration timeout of 100 ms elapsed"), "{log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_result_over_6_mb_is_refused_as_lambda_refuses_it() {
    let server = TestServer::start(SLEEPY_API);
    let r = server.invoke("Patient", r#"{"bytes": 6300000}"#).await;
    assert_eq!(r.header("x-amz-function-error"), Some("Unhandled"));
    assert_eq!(
        body_json(&r),
        json!({
            "errorMessage": "Response payload size exceeded maximum allowed payload size (6291556 bytes).",
            "errorType": "Function.ResponseSizeTooLarge",
            "stackTrace": [],
        })
    );
    // Just under the limit passes (the JSON string's quotes count).
    let r = server.invoke("Patient", r#"{"bytes": 6291554}"#).await;
    assert!(r.header("x-amz-function-error").is_none());
    assert_eq!(r.body.len(), 6291556);
}

#[tokio::test(flavor = "multi_thread")]
async fn requests_over_the_in_flight_cap_are_refused_and_the_server_goes_on() {
    let server = TestServer::start_with("max_requests_in_flight = 2\n", SLEEPY_API);
    let url = server.url("/s/patient");
    let json_type = [("content-type", "application/json")];
    // Two calls in flight, each until its guest has slept 3 s …
    let held: Vec<_> = (0..2)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move { http("POST", &url, &json_type, r#"{"sleep_ms": 3000}"#).await })
        })
        .collect();
    // … and seen to have started.
    server.calls_in_flight("Patient", 2).await;
    let refused = http("POST", &url, &json_type, r#"{"sleep_ms": 1}"#).await;
    assert_eq!(refused.status, 429, "{}", refused.text());
    assert_eq!(refused.json(), json!({"message": "Too Many Requests"}));
    assert_eq!(refused.header("x-amzn-errortype"), Some("TooManyRequestsException"));
    for call in held {
        let r = call.await.unwrap();
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.json(), json!({"slept_ms": 3000}));
    }
    // The server goes on serving.
    let after = http("POST", &url, &json_type, r#"{"sleep_ms": 1}"#).await;
    assert_eq!(after.status, 200, "{}", after.text());
}

const LARGE_API: &str = r#"
[functions.Large]
guest = "sleepy"

[apis.Large]

[apis.Large.resources."/large".POST.integration]
type = "function"
function = "Large"

[apis.Large.stages.s]
"#;

#[tokio::test(flavor = "multi_thread")]
async fn a_slow_reader_of_a_large_response_gets_all_of_it() {
    // An idle connection is closed after 300 ms. This client asks for a
    // 5.5 MB response (its receive buffer kept small, so the server's writes
    // wait on it), reads its first bytes, then reads nothing more until the
    // timeout has passed — until the server closes a connection opened
    // after the response had started and left idle — and then the rest.
    let server = TestServer::start_with("header_read_timeout_ms = 300\n", LARGE_API);
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(32 << 10).unwrap();
    let addr = server.gateway.trim_start_matches("http://").parse().unwrap();
    let mut stream = socket.connect(addr).await.unwrap();
    let size = 5_500_000;
    let body = format!(r#"{{"bytes": {size}}}"#);
    let request = format!(
        "POST /s/large HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut first = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(30), stream.read(&mut first)).await.unwrap().unwrap();
    let mut pending = first[..n].to_vec();
    assert!(pending.starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&pending));
    let mut idle = raw_connection(&server).await;
    let (rest, _) = read_until_closed(&mut idle, "a connection that sent nothing stayed open").await;
    assert!(rest.is_empty(), "unexpected bytes: {rest}");
    let (_, body) = next_response(&mut stream, &mut pending).await;
    assert_eq!(body.len(), size + 2, "the whole body, its quotes included");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_instance_made_ahead_of_traffic_has_a_warm_first_call() {
    let server = TestServer::start(
        r#"
[functions.Ready]
guest = "echo"
min_warm = 1
"#,
    );
    let first = server.invoke("Ready", "{}").await;
    assert_eq!(first.header("x-wasmgate-start"), Some("warm"), "its first call is not a reuse");
    let second = server.invoke("Ready", "{}").await;
    assert_eq!(second.header("x-wasmgate-start"), Some("hot"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_grow_the_guest_survived_does_not_label_a_later_trap() {
    let server = TestServer::start(
        r#"
[functions.Hog]
guest = "memory-hog"
memory_mb = 32
"#,
    );
    // The guest asks for more than its limit, is refused, copes, and returns.
    let r = server.invoke("Hog", r#"{"try_mb": 64}"#).await;
    assert_eq!(body_json(&r), json!({"reserved": false}), "{}", String::from_utf8_lossy(&r.body));
    // The same instance then traps for another reason.
    let r = server.invoke("Hog", r#"{"trap": true}"#).await;
    assert_eq!(r.header("x-wasmgate-start"), Some("hot"));
    let (error_type, message) = error_of(&r);
    assert_eq!(error_type, "Runtime.Trap", "{message}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_event_over_6_mb_is_refused_as_lambda_refuses_it() {
    let server = TestServer::start(SPLIT_API);
    // 7 MB of body: within API Gateway's 10 MB, over Lambda's 6 MB event.
    let body = format!(r#"{{"pad": "{}"}}"#, "x".repeat(7 << 20));
    let r = http("POST", &server.url("/s/proxy"), &[("content-type", "application/json")], body).await;
    assert_eq!(r.status, 500, "{}", r.text());
    assert_eq!(r.json(), json!({"message": "Internal server error"}));
    // Just under it is served.
    let body = format!(r#"{{"pad": "{}"}}"#, "x".repeat(5 << 20));
    let r = http("POST", &server.url("/s/proxy"), &[("content-type", "application/json")], body).await;
    assert_eq!(r.status, 200);
}
