//! Outbound HTTP from functions (`wasi:http/outgoing-handler`), against a
//! real HTTP server on loopback: allowed and denied by the function's
//! `allowed_outbound_hosts` (versioned with it), cut off by the
//! invocation's deadline with its slot freed, bounded in response size and
//! in requests in flight, pooled — from Rust, Python and JavaScript.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;
use serde_json::{Value, json};
use tokio::sync::Notify;

use super::common::{TestServer, body_json};
use super::toolchains;

/// A loopback HTTP server the functions call.
struct Upstream {
    port: u16,
    /// TCP connections accepted.
    connections: Arc<AtomicUsize>,
    /// Requests received (any path).
    requests: Arc<AtomicUsize>,
    /// A second port whose requests are never answered: how many arrived,
    /// and a signal each time the caller gives one up (closes its connection).
    slow_port: u16,
    slow_arrived: Arc<AtomicUsize>,
    slow_dropped: Arc<Notify>,
}

type UpstreamBody = http_body_util::combinators::BoxBody<Bytes, Infallible>;

async fn upstream() -> Upstream {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let connections = Arc::new(AtomicUsize::new(0));
    let requests = Arc::new(AtomicUsize::new(0));
    let (c, r) = (connections.clone(), requests.clone());
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            c.fetch_add(1, Ordering::SeqCst);
            let r = r.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let r = r.clone();
                    async move {
                        r.fetch_add(1, Ordering::SeqCst);
                        let body: UpstreamBody = match req.uri().path() {
                            "/hello" => Full::new(Bytes::from("hello from upstream")).boxed(),
                            "/echo" => {
                                let got = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                                Full::new(got).boxed()
                            }
                            // 2 MiB with a Content-Length.
                            "/large" => Full::new(Bytes::from(vec![b'x'; 2 << 20])).boxed(),
                            // 2 MiB in chunks, no length ahead.
                            "/large-chunked" => {
                                let chunks = (0..32)
                                    .map(|_| Ok::<_, Infallible>(Frame::data(Bytes::from(vec![b'y'; 64 << 10]))));
                                StreamBody::new(futures_util::stream::iter(chunks)).boxed()
                            }
                            _ => Full::new(Bytes::from("not here")).boxed(),
                        };
                        Ok::<_, Infallible>(hyper::Response::new(body))
                    }
                });
                let io = hyper_util::rt::TokioIo::new(stream);
                let _ = hyper::server::conn::http1::Builder::new()
                    .timer(hyper_util::rt::TokioTimer::new())
                    .serve_connection(io, service)
                    .await;
            });
        }
    });
    // The slow port: reads the request, never answers, and says when the
    // caller closes the connection.
    let slow = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let slow_port = slow.local_addr().unwrap().port();
    let slow_arrived = Arc::new(AtomicUsize::new(0));
    let slow_dropped = Arc::new(Notify::new());
    let (a, d) = (slow_arrived.clone(), slow_dropped.clone());
    tokio::spawn(async move {
        loop {
            let (mut stream, _) = slow.accept().await.unwrap();
            let (a, d) = (a.clone(), d.clone());
            tokio::spawn(async move {
                use tokio::io::AsyncReadExt;
                let mut buf = [0u8; 4096];
                let mut counted = false;
                while let Ok(n) = stream.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    if !counted {
                        counted = true;
                        a.fetch_add(1, Ordering::SeqCst);
                    }
                }
                d.notify_one();
            });
        }
    });
    Upstream { port, connections, requests, slow_port, slow_arrived, slow_dropped }
}

impl Upstream {
    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn slow_url(&self) -> String {
        format!("http://127.0.0.1:{}/slow", self.slow_port)
    }
}

fn fetch_event(url: &str) -> String {
    json!({ "url": url }).to_string()
}

const LOOPBACK: &str = r#"allowed_outbound_hosts = ["http://127.0.0.1:*"]"#;

#[tokio::test(flavor = "multi_thread")]
async fn a_function_reaches_only_the_hosts_it_lists() {
    let up = upstream().await;
    let server = TestServer::start(&format!(
        // Long timeouts: nothing here is about time, and a loaded machine is slow.
        "[functions.fetch]\nguest = \"fetch\"\n{LOOPBACK}\ntimeout_ms = 30000\n\
         [functions.closed]\nguest = \"fetch\"\ntimeout_ms = 30000\n"
    ));

    let resp = server.invoke("fetch", &fetch_event(&up.url("/hello"))).await;
    assert_eq!(body_json(&resp), json!({"status": 200, "body": "hello from upstream"}));
    let echo = json!({"url": up.url("/echo"), "method": "POST", "body": "ping"}).to_string();
    assert_eq!(body_json(&server.invoke("fetch", &echo).await), json!({"status": 200, "body": "ping"}));

    // Not listed: the guest's request fails, and the log says which setting to change.
    let before = up.requests.load(Ordering::SeqCst);
    let (code, error, err) = server.invoke_logged("closed", &fetch_event(&up.url("/hello")));
    assert_eq!(code, 2, "{error}{err}");
    assert_eq!(error["errorType"], json!("HttpError"));
    assert!(error["errorMessage"].as_str().unwrap().contains("HttpRequestDenied"), "{error}");
    let origin = format!("http://127.0.0.1:{}", up.port);
    assert!(
        err.contains(&format!(
            "wasmgate: outbound request to {origin} denied: {origin} is not in closed's allowed_outbound_hosts"
        )),
        "{err}"
    );
    assert_eq!(up.requests.load(Ordering::SeqCst), before, "a denied request never leaves");
    // Another port of a listed host, or another host, is not listed either.
    let narrow = server.cli(&["function", "update-config", "closed", "--allowed-outbound-host", "http://127.0.0.1:1"]);
    assert_eq!(narrow.0, 0, "{narrow:?}");
    let denied = body_json(&server.invoke("closed", &fetch_event(&up.url("/hello"))).await);
    assert!(denied["errorMessage"].as_str().unwrap().contains("HttpRequestDenied"), "{denied}");

    // Allowed by update-config, and versioned with the function: version 1
    // keeps its list when $LATEST's is cleared.
    let (code, out, err) =
        server.cli(&["function", "update-config", "closed", "--allowed-outbound-host", "http://127.0.0.1:*"]);
    assert_eq!(code, 0, "{out}{err}");
    let resp = server.invoke("closed", &fetch_event(&up.url("/hello"))).await;
    assert_eq!(body_json(&resp)["status"], json!(200));
    assert_eq!(server.cli(&["function", "publish", "closed"]).0, 0);
    let (code, out, err) = server.cli(&["function", "update-config", "closed", "--allowed-outbound-host", "none"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(body_json(&server.invoke("closed:1", &fetch_event(&up.url("/hello"))).await)["status"], json!(200));
    let latest = body_json(&server.invoke("closed", &fetch_event(&up.url("/hello"))).await);
    assert!(latest["errorMessage"].as_str().unwrap().contains("HttpRequestDenied"), "{latest}");
    let (_, got, _) = server.cli(&["function", "get", "closed", "--output", "json"]);
    let got: Value = serde_json::from_str(&got).unwrap();
    assert_eq!(got["versions"]["1"]["config"]["allowed_outbound_hosts"], json!(["http://127.0.0.1:*"]), "{got}");
    assert_eq!(got["config"]["allowed_outbound_hosts"], json!([]), "{got}");

    // A bad entry is refused, naming it.
    let (code, _, err) = server.cli(&["function", "update-config", "closed", "--allowed-outbound-host", "127.0.0.1"]);
    assert_eq!(code, 1);
    assert!(err.contains("\"127.0.0.1\" has no scheme"), "{err}");

    // Connections are pooled: every request above went over one.
    assert_eq!(up.connections.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_outbound_request_ends_at_the_invocations_deadline_and_frees_its_slot() {
    let up = upstream().await;
    let server = TestServer::start(&format!(
        "[functions.fetch]\nguest = \"fetch\"\n{LOOPBACK}\ntimeout_ms = 500\nmax_concurrency = 1\n"
    ));
    let resp = server.invoke("fetch", &fetch_event(&up.slow_url())).await;
    let error = body_json(&resp);
    assert_eq!(error["errorType"], json!("Sandbox.Timedout"), "{error}");
    // The request is given up (the upstream sees it dropped) …
    up.slow_dropped.notified().await;
    // … and the function's one slot is free again.
    let resp = server.invoke("fetch", &fetch_event(&up.url("/hello"))).await;
    assert_eq!(body_json(&resp)["status"], json!(200));
}

#[tokio::test(flavor = "multi_thread")]
async fn outbound_responses_and_requests_in_flight_are_bounded() {
    let up = upstream().await;
    let server = TestServer::start_with(
        "max_outbound_response_mb = 1\nmax_outbound_requests = 1",
        // Version 1 holds the slot for 5 s, $LATEST waits for it 1 s: the
        // second call's deadline comes well before the first frees the slot.
        &format!("[functions.fetch]\nguest = \"fetch\"\n{LOOPBACK}\ntimeout_ms = 5000\npublish = \"holds the slot\"\n"),
    );
    let (code, out, err) = server.cli(&["function", "update-config", "fetch", "--timeout-ms", "1000"]);
    assert_eq!(code, 0, "{out}{err}");
    // Over the limit with a Content-Length (refused at its head), and
    // streamed without one (cut off once over): an error in the guest, and
    // the log says which limit.
    for (path, size) in [("/large", "2097152 bytes"), ("/large-chunked", "more")] {
        let (code, error, err) = server.invoke_logged("fetch", &fetch_event(&up.url(path)));
        assert_eq!(code, 2, "{path}: {error}{err}");
        assert_eq!(error["errorType"], json!("HttpError"), "{path}: {error}");
        let line = format!(
            "wasmgate: outbound response from http://127.0.0.1:{} refused: {size} is over the server's max_outbound_response_mb = 1",
            up.port
        );
        assert!(err.contains(&line), "{path}: {err}");
    }

    // One request of the function in flight: a second call waits for the
    // slot, and its deadline comes first; its request never goes out.
    let before = up.requests.load(Ordering::SeqCst);
    let slow = {
        let admin = server.admin.clone();
        let event = fetch_event(&up.slow_url());
        tokio::spawn(async move {
            admin.send(hyper::Method::POST, "/v1/functions/fetch:1/invocations", &[], Bytes::from(event)).await.unwrap()
        })
    };
    // Wait until the first request is at the upstream.
    while up.slow_arrived.load(Ordering::SeqCst) == 0 {
        tokio::task::yield_now().await;
    }
    let second = body_json(&server.invoke("fetch", &fetch_event(&up.url("/hello"))).await);
    assert_eq!(second["errorType"], json!("Sandbox.Timedout"), "{second}");
    assert_eq!(up.requests.load(Ordering::SeqCst), before, "the second request waited for a slot, and never went");
    let first = body_json(&slow.await.unwrap());
    assert_eq!(first["errorType"], json!("Sandbox.Timedout"), "{first}");
    // Both gone, the slot is free.
    assert_eq!(body_json(&server.invoke("fetch", &fetch_event(&up.url("/hello"))).await)["status"], json!(200));
}

#[tokio::test(flavor = "multi_thread")]
async fn python_and_javascript_functions_send_outbound_requests() {
    let up = upstream().await;
    let python = toolchains::built("tests/functions/probe.py");
    let js = toolchains::built("tests/functions/probe.mjs");
    let server = TestServer::start(&format!(
        "[functions.py]\nguest = \"echo\"\n{LOOPBACK}\n[functions.js]\nguest = \"echo\"\n{LOOPBACK}\n"
    ));
    for (name, wasm) in [("py", &python), ("js", &js)] {
        let (code, out, err) = server.cli(&["function", "update-code", name, "--wasm", wasm.to_str().unwrap()]);
        assert_eq!(code, 0, "{out}{err}");
    }
    for name in ["py", "js"] {
        let event = json!({"op": "fetch", "url": up.url("/hello")}).to_string();
        let got = body_json(&server.invoke(name, &event).await);
        assert_eq!(got, json!({"status": 200, "body": "hello from upstream"}), "{name}");
        let event =
            json!({"op": "fetch", "url": up.url("/echo"), "method": "POST", "body": "from a function"}).to_string();
        let got = body_json(&server.invoke(name, &event).await);
        assert_eq!(got, json!({"status": 200, "body": "from a function"}), "{name}");
        // A host not listed: an error in the guest (Python's names the
        // wasi:http code; JavaScript's fetch, as in a browser, only says it
        // failed) and the log line that says why.
        let event = json!({"op": "fetch", "url": "http://localhost:9/"}).to_string();
        let (code, got, err) = server.invoke_logged(name, &event);
        assert_eq!(code, 0, "{got}{err}");
        let expected = if name == "py" { "HttpRequestDenied" } else { "TypeError: NetworkError" };
        assert!(got["error"].as_str().unwrap_or_default().starts_with(expected), "{name}: {got}");
        let line = format!(
            "wasmgate: outbound request to http://localhost:9 denied: http://localhost:9 is not in {name}'s allowed_outbound_hosts"
        );
        assert!(err.contains(&line), "{name}: {err}");
    }
}
