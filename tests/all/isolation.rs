//! A misbehaving function never takes the server down: timeouts, traps,
//! panics and exhausted memory end that call (and drop its instance), while
//! other calls keep being served; concurrency limits throttle; a log output
//! that cannot keep up costs log lines, not requests.

use std::time::{Duration, Instant};

use hyper::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{ITEMS, TestServer, body_json, pool};

const MISBEHAVING: &str = r#"
[functions.Loop]
guest = "busy-loop"
timeout_ms = 300

[functions.Panic]
guest = "panic"

[functions.Hog]
guest = "memory-hog"
memory_mb = 32
"#;

#[tokio::test(flavor = "multi_thread")]
async fn a_guest_that_loops_is_killed_at_its_timeout() {
    let server = TestServer::start(&format!("{ITEMS}{MISBEHAVING}"));
    // Several looping calls at once, and the items function answering meanwhile.
    let loops: Vec<_> = (0..4)
        .map(|_| {
            let admin = server.admin.clone();
            // A loop that never ends: the call returns only if its timeout stops it.
            tokio::spawn(
                async move { admin.send(Method::POST, "/v1/functions/Loop/invocations", &[], "{}").await.unwrap() },
            )
        })
        .collect();
    for _ in 0..20 {
        let r = server.invoke("ItemsFunction:prod", r#"{"ID": 3}"#).await;
        assert_eq!(body_json(&r)["name"], "Highlighter");
    }
    for handle in loops {
        let r = handle.await.unwrap();
        assert_eq!(r.header("x-amz-function-error"), Some("Unhandled"));
        let error = body_json(&r);
        assert_eq!(error["errorType"], "Sandbox.Timedout");
        let message = error["errorMessage"].as_str().unwrap();
        assert!(
            message.starts_with("RequestId: ") && message.ends_with("Error: Task timed out after 0.30 seconds"),
            "{message}"
        );
    }
    // The timed-out instance was dropped; the function still works.
    let r = server.invoke("Loop", r#"{"loop": false}"#).await;
    assert_eq!(body_json(&r), json!({"looped": false}));
    assert_eq!(r.header("x-wasmgate-start"), Some("warm"), "no instance of a timed-out call is reused");
}

/// The engine's epoch ticker sleeps while no guest runs (an idle server does
/// not wake a thousand times a second); a call must wake it, or a loop
/// started on an idle server would never reach its timeout.
#[tokio::test(flavor = "multi_thread")]
async fn a_guest_that_loops_on_an_idle_server_is_still_killed_at_its_timeout() {
    let server = TestServer::start(&format!("{ITEMS}{MISBEHAVING}"));
    for _ in 0..2 {
        // Until the ticker has gone to sleep (100 ms without a guest).
        server.epoch_ticker_parked().await;
        let call = server.admin.send(Method::POST, "/v1/functions/Loop/invocations", &[], "{}");
        let r = tokio::time::timeout(Duration::from_secs(10), call)
            .await
            .expect("the looping call ended (at its timeout)")
            .unwrap();
        assert_eq!(body_json(&r)["errorType"], "Sandbox.Timedout");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_panic_or_trap_ends_only_that_call() {
    let server = TestServer::start(&format!("{ITEMS}{MISBEHAVING}"));
    let r = server.invoke("Panic", "{}").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("x-amz-function-error"), Some("Unhandled"));
    let error = body_json(&r);
    assert_eq!(error["errorType"], "Runtime.Panic");
    assert!(error["errorMessage"].as_str().unwrap().ends_with("the guest panicked on purpose"), "{error}");
    let r = server.invoke("Panic", r#"{"panic": false}"#).await;
    assert_eq!(body_json(&r), json!({"panicked": false}));
    assert_eq!(r.header("x-wasmgate-start"), Some("warm"), "the trapped instance was dropped");
    assert_eq!(server.invoke("ItemsFunction", r#"{"ID": 1}"#).await.status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_guest_that_eats_memory_stops_at_its_limit() {
    let server = TestServer::start(&format!("{ITEMS}{MISBEHAVING}"));
    let r = server.invoke("Hog", "{}").await;
    assert_eq!(r.header("x-amz-function-error"), Some("Unhandled"));
    let error = body_json(&r);
    assert_eq!(error["errorType"], "Runtime.OutOfMemory");
    assert!(error["errorMessage"].as_str().unwrap().contains("memory limit of 32 MB exceeded"), "{error}");
    // Within the limit it works, on a fresh instance.
    let r = server.invoke("Hog", r#"{"mb": 8}"#).await;
    assert_eq!(body_json(&r), json!({"allocated_mb": 8}));
    assert_eq!(r.header("x-wasmgate-start"), Some("warm"));
    // A bigger limit lets it allocate more.
    server.json(Method::PATCH, "/v1/functions/Hog/configuration", json!({"memory_mb": 128})).await;
    let r = server.invoke("Hog", r#"{"mb": 64}"#).await;
    assert_eq!(body_json(&r), json!({"allocated_mb": 64}));
    assert_eq!(server.invoke("ItemsFunction", r#"{"ID": 4}"#).await.status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread")]
async fn max_concurrency_throttles_the_calls_beyond_it() {
    let server = TestServer::start(
        r#"
[functions.Loop]
guest = "busy-loop"
timeout_ms = 1500
max_concurrency = 1
"#,
    );
    let admin = server.admin.clone();
    let running =
        tokio::spawn(
            async move { admin.send(Method::POST, "/v1/functions/Loop/invocations", &[], "{}").await.unwrap() },
        );
    let running_now = |s: &Value| pool(s, "Loop", "$LATEST").is_some_and(|(busy, _)| busy == 1);
    server.status_when("the first call to be running", running_now).await;
    let r = server.invoke("Loop", r#"{"loop": false}"#).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.header("x-amzn-errortype"), Some("TooManyRequestsException"));
    assert_eq!(body_json(&r)["message"], "Rate Exceeded.");
    assert_eq!(body_json(&running.await.unwrap())["errorType"], "Sandbox.Timedout");
    // Once the slot is free, calls pass again; 0 throttles everything.
    assert_eq!(body_json(&server.invoke("Loop", r#"{"loop": false}"#).await), json!({"looped": false}));
    server.json(Method::PATCH, "/v1/functions/Loop/configuration", json!({"max_concurrency": 0})).await;
    assert_eq!(server.invoke("Loop", r#"{"loop": false}"#).await.status, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_log_output_that_stops_reading_costs_log_lines_not_requests() {
    // The server's stderr is a pipe nobody reads. Each call logs its event
    // (the items function prints it): 200 of them are more than the pipe
    // and the server's log queue hold.
    let mut server = TestServer::start_with_piped_log(ITEMS);
    let event = json!({ "padding": "x".repeat(128 * 1024) }).to_string();
    for i in 0..200 {
        let call = tokio::time::timeout(Duration::from_secs(10), server.invoke("ItemsFunction", &event)).await;
        let r = call.unwrap_or_else(|_| panic!("call {i} hung: the server waits for its log output"));
        assert_eq!(r.status, StatusCode::OK, "call {i}");
        let served = tokio::time::timeout(Duration::from_secs(10), crate::common::get(&server.url("/nothing"))).await;
        assert!(served.is_ok(), "the gateway hung at call {i}");
    }
    // Once read again, the log reports what it had to drop, in whole lines.
    let mut pipe = server.log_pipe.take().expect("piped log");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(&mut pipe).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut lines = Vec::new();
    let report = loop {
        let line =
            rx.recv_timeout(deadline.saturating_duration_since(Instant::now())).expect("a report of dropped lines");
        if line.contains("log lines dropped") {
            break line;
        }
        lines.push(line);
    };
    assert!(report.contains("WARN"), "{report}");
    let dropped: u64 = report.split("dropped=").nth(1).and_then(|d| d.split_whitespace().next()?.parse().ok()).unwrap();
    assert!(dropped > 0, "{report}");
    assert!(lines.iter().all(|l| l.contains(" INFO ") || l.contains(" WARN ")), "torn lines in {lines:?}");
}
