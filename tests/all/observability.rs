//! What an operator watches: `/healthz`, `/readyz` and `/metrics` on the
//! admin listener, against a real server after a known mix of calls.

use serde_json::json;

use super::common::{TestServer, get, http};

/// The value of one sample line of `/metrics` (`name{labels}`), if present.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test(flavor = "multi_thread")]
async fn health_and_readiness_answer_without_a_token() {
    let server = TestServer::start("[functions.echo]\nguest = \"echo\"\n");
    let health = get(&format!("{}/healthz", server.admin_url)).await;
    assert_eq!((health.status, health.json()), (200, json!({"status": "ok"})));
    let ready = get(&format!("{}/readyz", server.admin_url)).await;
    assert_eq!(ready.status, 200);
    assert_eq!(ready.json(), json!({"ready": true, "checks": {"listeners": true, "registry": true, "stages": true}}));
    // The rest of the admin API still wants the token.
    assert_eq!(get(&format!("{}/v1/status", server.admin_url)).await.status, 401);
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_count_invocations_by_start_error_and_throttle() {
    let server = TestServer::start(
        "[functions.echo]\nguest = \"echo\"\n[functions.panic]\nguest = \"panic\"\n\
         [functions.sleepy]\nguest = \"sleepy\"\nmax_concurrency = 0\n",
    );
    // echo: a warm start, then two hot ones; then new code, loaded at
    // upload: a warm start again, counted under the same $LATEST.
    for _ in 0..3 {
        assert_eq!(server.invoke("echo", "{}").await.status, 200);
    }
    let (code, out, err) = server.cli(&["function", "update-code", "echo", "--guest", "counter"]);
    assert_eq!(code, 0, "{out}{err}");
    server.invoke("echo", "{}").await;
    // panic: a function error; sleepy: throttled (no concurrency at all).
    server.invoke("panic", "{}").await;
    assert_eq!(server.invoke("sleepy", "{}").await.status, 429);

    let metrics = get(&format!("{}/metrics", server.admin_url)).await;
    assert_eq!(metrics.status, 200);
    assert!(metrics.header("content-type").unwrap().starts_with("text/plain; version=0.0.4"));
    let text = metrics.text();
    let count = |series: &str| sample(&text, series).unwrap_or_else(|| panic!("no {series} in\n{text}"));
    let inv = |start: &str| {
        count(&format!(r#"wasmgate_function_invocations_total{{function="echo",version="$LATEST",start="{start}"}}"#))
    };
    assert_eq!((inv("warm"), inv("hot"), inv("cold")), (2.0, 2.0, 0.0), "{text}");
    assert_eq!(count(r#"wasmgate_function_duration_seconds_count{function="echo",version="$LATEST"}"#), 4.0);
    assert_eq!(
        count(r#"wasmgate_function_errors_total{function="panic",version="$LATEST",type="Runtime.Panic"}"#),
        1.0
    );
    assert_eq!(count(r#"wasmgate_function_throttles_total{function="sleepy"}"#), 1.0);
    assert_eq!(count(r#"wasmgate_function_concurrent_executions{function="echo"}"#), 0.0);
    assert!(count("wasmgate_pool_instances_alive{}") >= 1.0, "{text}");
    assert_eq!(count(r#"wasmgate_pool_idle_instances{function="echo",version="$LATEST"}"#), 1.0);
    assert!(text.contains(r#"wasmgate_build_info{version=""#), "{text}");
    assert!(count("wasmgate_process_start_time_seconds{}") > 1.7e9);

    // With metrics_token, /metrics wants the admin token too.
    let guarded = TestServer::start_with("metrics_token = true", "");
    let url = format!("{}/metrics", guarded.admin_url);
    assert_eq!(get(&url).await.status, 401);
    let bearer = format!("Bearer {}", guarded.token());
    assert_eq!(http("GET", &url, &[("authorization", &bearer)], bytes::Bytes::new()).await.status, 200);
}

/// While the server starts (here: building a Python function from its
/// source, seconds), /healthz answers, /readyz says 503 and which checks
/// pass, and the admin API asks to wait; once ready, /readyz is 200.
#[tokio::test(flavor = "multi_thread")]
async fn readiness_waits_for_the_registry_and_the_stages() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let source = super::toolchains::root().join("examples/python-items");
    let config = super::common::write_file(
        dir.path(),
        "gateway.toml",
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\ndata_dir = \"data\"\n\
             [functions.py]\nsource = {:?}\n",
            source.to_str().unwrap()
        )
        .as_bytes(),
    );
    let mut child = std::process::Command::new(super::common::BIN)
        .args(["serve", "--config", config.to_str().unwrap()])
        .env("WASMGATE_TOOLCHAINS", super::toolchains::dir())
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The admin listener's address, from the log line written when it is bound.
    let mut log = BufReader::new(child.stderr.take().unwrap()).lines();
    let admin = loop {
        let line = log.next().expect("the server's log ended").unwrap();
        if let Some(at) = line.find("admin=") {
            let addr = line[at + 6..].split_whitespace().next().unwrap().to_string();
            break format!("http://{addr}");
        }
    };
    let ready = get(&format!("{admin}/readyz")).await;
    assert_eq!(ready.status, 503, "{}", ready.text());
    assert_eq!(ready.json()["ready"], json!(false));
    assert_eq!(ready.json()["checks"]["stages"], json!(false));
    assert_eq!(get(&format!("{admin}/healthz")).await.status, 200);
    let status = get(&format!("{admin}/v1/status")).await;
    assert_eq!(status.status, 503, "{}", status.text());
    assert!(status.text().contains("GET /readyz says when it is ready"), "{}", status.text());
    // Ready: the CLI's line on stdout.
    let mut out = BufReader::new(child.stdout.take().unwrap()).lines();
    while !out.next().expect("the server stopped").unwrap().starts_with("wasmgate: admin API listening on ") {}
    let ready = get(&format!("{admin}/readyz")).await;
    assert_eq!((ready.status, ready.json()["ready"].clone()), (200, json!(true)));
    let _ = child.kill();
    let _ = child.wait();
}
