//! Durability: acknowledged changes survive `kill -9`, interrupted ones are
//! never half-visible, bootstrap never overwrites run-time changes, and a
//! restart loads compiled artifacts instead of compiling.

use std::collections::HashMap;
use std::time::Duration;

use hyper::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{ITEMS, TestServer, body_json, guest, pool};

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_during_uploads_and_publishes_leaves_a_consistent_registry() {
    let mut server = TestServer::start("");
    let guests = ["echo", "counter", "items"];
    // Writers keep changing functions; record every acknowledged change.
    let acknowledged = std::sync::Arc::new(parking_lot::Mutex::new(HashMap::<String, Vec<u64>>::new()));
    // Versions each writer has had acknowledged.
    let (published, mut progress) = tokio::sync::watch::channel([0usize; 3]);
    let published = std::sync::Arc::new(published);
    let mut writers = Vec::new();
    for w in 0..3 {
        let admin = server.admin.clone();
        let acked = acknowledged.clone();
        let published = published.clone();
        writers.push(tokio::spawn(async move {
            for i in 0.. {
                let name = format!("F{w}");
                let code = guest(guests[(i + w) % guests.len()]);
                let Ok(r) = admin.send(Method::PUT, &format!("/v1/functions/{name}/code"), &[], code).await else {
                    break;
                };
                if r.status != StatusCode::OK {
                    break;
                }
                let env = json!({"env": {"N": i.to_string()}});
                let Ok(r) = admin
                    .send(Method::PATCH, &format!("/v1/functions/{name}/configuration"), &[], env.to_string())
                    .await
                else {
                    break;
                };
                if r.status != StatusCode::OK {
                    break;
                }
                let Ok(r) = admin.send(Method::POST, &format!("/v1/functions/{name}/versions"), &[], "{}").await else {
                    break;
                };
                if !r.status.is_success() {
                    break;
                }
                let v = serde_json::from_slice::<Value>(&r.body).unwrap()["version"].as_u64().unwrap();
                acked.lock().entry(name.clone()).or_default().push(v);
                published.send_modify(|n| n[w] += 1);
                let body = json!({"version": v.to_string()}).to_string();
                if admin.send(Method::PUT, &format!("/v1/functions/{name}/aliases/live"), &[], body).await.is_err() {
                    break;
                }
            }
        }));
    }
    // Once every writer has published a few versions, and while they go on.
    let written = progress.wait_for(|n| n.iter().all(|&n| n >= 5));
    tokio::time::timeout(Duration::from_secs(60), written).await.expect("the writers stopped making progress").unwrap();
    server.kill9();
    for w in writers {
        let _ = w.await;
    }
    let acknowledged = acknowledged.lock().clone();

    server.restart();
    let state = server.admin.get_json("/v1/functions").await.unwrap();
    for f in state["functions"].as_array().unwrap() {
        let name = f["name"].as_str().unwrap();
        let full = server.admin.get_json(&format!("/v1/functions/{name}")).await.unwrap();
        // Every acknowledged version is there.
        let versions: Vec<u64> = full["versions"].as_object().unwrap().keys().map(|k| k.parse().unwrap()).collect();
        for v in acknowledged.get(name).into_iter().flatten() {
            assert!(versions.contains(v), "{name}: acknowledged version {v} lost after kill -9");
        }
        // Every piece of code referenced is stored and runs.
        let code = server.admin.call(Method::GET, &format!("/v1/functions/{name}/code"), &[], "").await.unwrap();
        assert_eq!(wasmgate_host::registry::code::sha256_hex(&code.body), full["code_sha256"].as_str().unwrap());
        for v in &versions {
            let r = server.invoke(&format!("{name}:{v}"), "{}").await;
            assert_eq!(r.status, StatusCode::OK, "{name}:{v}: {}", String::from_utf8_lossy(&r.body));
        }
        // Aliases point at versions that exist.
        if let Some(live) = full["aliases"].get("live") {
            let target: u64 = live["version"].as_str().unwrap().parse().unwrap();
            assert!(versions.contains(&target), "{name}: alias live → {target} which does not exist");
            assert_eq!(server.invoke(&format!("{name}:live"), "{}").await.status, StatusCode::OK);
        }
    }
    // Acknowledged functions exist.
    for name in acknowledged.keys() {
        assert!(
            state["functions"].as_array().unwrap().iter().any(|f| f["name"] == name.as_str()),
            "{name} lost after kill -9"
        );
    }
    // No stray code blobs are left behind.
    let referenced: usize = state["functions"].as_array().unwrap().len();
    let blobs = std::fs::read_dir(server.data_dir().join("code")).unwrap().count();
    assert!(blobs <= guests.len(), "{blobs} code blobs for {referenced} functions sharing {} codes", guests.len());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restart_recompiles_nothing_and_keeps_run_time_changes() {
    let mut server = TestServer::start(ITEMS);
    // Run-time changes the configuration does not know about.
    server.put_code("ItemsFunction", guest("echo")).await;
    let v2 = server.json(Method::POST, "/v1/functions/ItemsFunction/versions", json!({"description": "v2"})).await;
    assert_eq!(body_json(&v2)["version"], 2);
    server.json(Method::PUT, "/v1/functions/ItemsFunction/aliases/prod", json!({"version": "2"})).await;
    server.admin.send(Method::DELETE, "/v1/functions/ItemsFunction/aliases/dev", &[], "").await.unwrap();
    for i in 0..10 {
        server
            .json(Method::PATCH, "/v1/functions/ItemsFunction/configuration", json!({"env": {"I": i.to_string()}}))
            .await;
        server.json(Method::POST, "/v1/functions/ItemsFunction/versions", json!({})).await;
    }
    let before = server.admin.get_json("/v1/functions/ItemsFunction").await.unwrap();
    assert_eq!(before["versions"].as_object().unwrap().len(), 12);

    let log_before = server.log().len();
    server.restart();
    let status = server.admin.get_json("/v1/status").await.unwrap();
    assert_eq!(status["runtime"]["compiles"], 0, "a restart compiles nothing: {status}");
    assert!(status["runtime"]["artifact_loads"].as_u64().unwrap() >= 1);
    assert_eq!(status["runtime"]["loaded_versions"], 13, "every version is loaded and ready: {status}");
    let log = server.log_with(log_before, "from=\"cached artifact\"");
    assert!(log.contains("from=\"cached artifact\""), "the log says where versions came from:\n{log}");
    assert!(!log.contains("from=\"compile\"") && !log.contains("compiled component"), "{log}");

    // Bootstrap did not run again: the moved and deleted aliases stay as they were.
    let after = server.admin.get_json("/v1/functions/ItemsFunction").await.unwrap();
    assert_eq!(after["aliases"]["prod"]["version"], "2");
    assert!(after["aliases"].get("dev").is_none());
    assert_eq!(after["versions"], before["versions"]);
    let r = server.invoke("ItemsFunction:prod", r#"{"ID": 1}"#).await;
    assert_eq!(body_json(&r)["event"], json!({"ID": 1}), "prod runs version 2 (echo)");
    assert_ne!(r.header("x-wasmgate-start"), Some("cold"));
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_finishes_requests_in_flight() {
    let mut server = TestServer::start(
        r#"
[functions.Loop]
guest = "busy-loop"
timeout_ms = 1000
"#,
    );
    let admin = server.admin.clone();
    let in_flight =
        tokio::spawn(async move { admin.send(Method::POST, "/v1/functions/Loop/invocations", &[], "{}").await });
    let running_now = |s: &Value| pool(s, "Loop", "$LATEST").is_some_and(|(busy, _)| busy == 1);
    server.status_when("the call to be running", running_now).await;
    let status = server.terminate();
    assert!(status.success(), "clean exit: {status:?}");
    let r = in_flight.await.unwrap().expect("the call in flight got its answer");
    assert_eq!(body_json(&r)["errorType"], "Sandbox.Timedout");
}
