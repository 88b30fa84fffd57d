//! Stages and deployments: a deploy changes one stage only, a rollback goes
//! back, and neither a deploy nor an alias move drops a request in flight.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use hyper::Method;
use serde_json::{Value, json};

use crate::common::{TestServer, body_json, bundled_config, get};

const NOT_FOUND_V1: &str =
    r#"{"message": "Item $input.params('ID') not found", "errorType": "$input.path('$.errorType')"}"#;
const NOT_FOUND_V2: &str = r#"{"message": "No item $input.params('ID')"}"#;

#[tokio::test(flavor = "multi_thread")]
async fn a_deploy_changes_one_stage_and_a_rollback_restores_it() {
    let mut server = TestServer::start(&bundled_config());
    assert_eq!(get(&server.url("/dev/items/9")).await.json()["message"], "Item 9 not found");
    server.rewrite_config(&bundled_config().replace(NOT_FOUND_V1, NOT_FOUND_V2));

    let (code, out, err) = server.cli(&[
        "deploy",
        "ItemsAPI",
        "--stage",
        "dev",
        "--description",
        "shorter 404",
        "--config",
        server.config.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("deployed ItemsAPI to stage dev"), "{out}");
    assert_eq!(
        get(&server.url("/dev/items/9")).await.json(),
        json!({"message": "No item 9"}),
        "dev serves the new deployment"
    );
    assert_eq!(get(&server.url("/prod/items/9")).await.json()["message"], "Item 9 not found", "prod is untouched");

    let (code, out, _) = server.cli(&["deployment", "list", "ItemsAPI"]);
    assert_eq!(code, 0);
    assert_eq!(out.lines().filter(|l| l.starts_with('#')).count(), 4, "a header and three deployments:\n{out}");
    assert!(out.contains("shorter 404"), "{out}");

    // A restart serves the same deployments (not the configuration file).
    server.restart();
    assert_eq!(get(&server.url("/dev/items/9")).await.json(), json!({"message": "No item 9"}));

    let (code, out, err) = server.cli(&["deployment", "rollback", "ItemsAPI", "--stage", "dev"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("stage dev now serves"), "{out}");
    assert_eq!(get(&server.url("/dev/items/9")).await.json()["message"], "Item 9 not found");

    // A broken configuration is refused and changes nothing.
    server.rewrite_config(&bundled_config().replace("ItemsFunction:${stageVariables.lambdaAlias}", "Nope"));
    let (code, _, err) =
        server.cli(&["deploy", "ItemsAPI", "--stage", "dev", "--config", server.config.to_str().unwrap()]);
    assert_ne!(code, 0);
    assert!(err.contains("unknown function \"Nope\""), "{err}");
    assert_eq!(get(&server.url("/dev/items/1")).await.status, 200);
    let r = server.json(Method::POST, "/v1/apis/ItemsAPI/deployments", json!({"stage": "qa"})).await;
    assert_eq!(r.status, 400, "{}", String::from_utf8_lossy(&r.body));
}

#[tokio::test(flavor = "multi_thread")]
async fn deploys_and_alias_moves_under_load_drop_no_request() {
    let server = TestServer::start(&bundled_config());
    // Version 2 of the function: same items, another configuration.
    server.json(Method::PATCH, "/v1/functions/ItemsFunction/configuration", json!({"env": {"V": "2"}})).await;
    let v2 = server.json(Method::POST, "/v1/functions/ItemsFunction/versions", json!({})).await;
    assert_eq!(body_json(&v2)["version"], 2);

    let old = json!({"ID": 1, "name": "Pen", "price": 2.5});
    let wrapped = json!({"wrapped": {"ID": 1, "name": "Pen", "price": 2.5}});
    let with_wrapper = bundled_config().replace(
        "[[apis.ItemsAPI.resources.\"/items/{ID}\".GET.integration.responses]]\nstatus = 200\n",
        "[[apis.ItemsAPI.resources.\"/items/{ID}\".GET.integration.responses]]\nstatus = 200\ntemplates = { \"application/json\" = '{\"wrapped\": $input.body}' }\n",
    );
    assert_ne!(with_wrapper, bundled_config());

    let stop = Arc::new(AtomicBool::new(false));
    // Requests each client has had answered.
    let (answered, mut progress) = tokio::sync::watch::channel([0usize; 4]);
    let answered = Arc::new(answered);
    let mut clients = Vec::new();
    for (k, stage) in ["dev", "prod", "dev", "prod"].into_iter().enumerate() {
        let url = server.url(&format!("/{stage}/items/1"));
        let stop = stop.clone();
        let answered = answered.clone();
        clients.push(tokio::spawn(async move {
            let mut seen: Vec<(u16, Value)> = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let r = get(&url).await;
                let body = serde_json::from_slice(&r.body).unwrap_or(Value::String(r.text()));
                seen.push((r.status, body));
                answered.send_modify(|n| n[k] += 1);
            }
            seen
        }));
    }
    for i in 0..6 {
        let text = if i % 2 == 0 { &with_wrapper } else { &bundled_config() };
        server.rewrite_config(text);
        let r = server.json(Method::POST, "/v1/apis/ItemsAPI/deployments", json!({"stage": "dev"})).await;
        assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
        let target = if i % 2 == 0 { "2" } else { "1" };
        let r = server.json(Method::PUT, "/v1/functions/ItemsFunction/aliases/prod", json!({"version": target})).await;
        assert_eq!(r.status, 200);
        // Under load before the next change: every client has had requests
        // answered that it sent after this one (its first may predate it).
        let before = *progress.borrow_and_update();
        let after_the_change = progress.wait_for(|n| n.iter().zip(before).all(|(n, before)| *n >= before + 6));
        tokio::time::timeout(std::time::Duration::from_secs(30), after_the_change)
            .await
            .expect("the clients stopped getting answers")
            .unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    // (Six answers a round per client: over a hundred requests in all.)
    for c in clients {
        for (status, body) in c.await.unwrap() {
            assert_eq!(status, 200, "a request failed during a deploy: {body}");
            assert!(body == old || body == wrapped, "neither the old nor the new response: {body}");
        }
    }
}

#[test]
fn test_invoke_shows_response_and_execution_log() {
    let server = TestServer::start(&bundled_config());
    let (code, out, err) =
        server.cli(&["test-invoke", "ItemsAPI", "GET", "/items/{ID}", "--stage", "dev", "--path", "ID=3"]);
    assert_eq!(code, 0, "{err}");
    for needle in [
        "Status: 200",
        r#"{"ID":3,"name":"Highlighter","price":3.0}"#,
        r#"Event: {"ID":3}"#,
        "Function: ItemsFunction:dev version $LATEST",
        r#"Event: {"ID":3}"#,
        "Selected integration response: status 200 (default)",
        "Endpoint request body after transformations",
        "Method completed with status: 200",
    ] {
        assert!(out.contains(needle), "{needle:?} missing in:\n{out}");
    }
    let (code, out, _) =
        server.cli(&["test-invoke", "ItemsAPI", "GET", "/items/{ID}", "--stage", "prod", "--path", "ID=8"]);
    assert_eq!(code, 0);
    assert!(out.contains("Status: 404") && out.contains("pattern NotFoundError"), "{out}");
    // A method in lower case is the same method; one that is not a token is an error.
    let (code, out, _) = server.cli(&["test-invoke", "ItemsAPI", "get", "/items", "--stage", "prod"]);
    assert_eq!(code, 0);
    assert!(out.contains("Status: 200"), "{out}");
    let (code, _, err) = server.cli(&["test-invoke", "ItemsAPI", "G T", "/items", "--stage", "prod"]);
    assert_ne!(code, 0);
    assert!(err.contains(r#""G T" is not an HTTP method"#), "{err}");
}
