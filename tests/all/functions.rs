//! The registry and runtime through the admin API: the seed's events,
//! qualifiers, versions, aliases, weighted aliases, hot reuse and warm pools.

use hyper::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{ITEMS, TestServer, body_json, guest, pool};

#[tokio::test(flavor = "multi_thread")]
async fn the_seed_events_answer_as_the_seed_does() {
    let server = TestServer::start(ITEMS);
    let all = server.invoke("ItemsFunction:prod", "{}").await;
    assert_eq!(all.status, StatusCode::OK);
    assert_eq!(all.header("x-amz-executed-version"), Some("1"));
    assert_eq!(
        body_json(&all),
        json!([
            {"ID": 1, "name": "Pen", "price": 2.5},
            {"ID": 2, "name": "Pencil", "price": 1.5},
            {"ID": 3, "name": "Highlighter", "price": 3.0},
            {"ID": 4, "name": "Ruler", "price": 5.0},
        ])
    );
    let one = server.invoke("ItemsFunction:dev", r#"{"ID": 1}"#).await;
    assert_eq!(one.header("x-amz-executed-version"), Some("$LATEST"));
    assert_eq!(body_json(&one), json!({"ID": 1, "name": "Pen", "price": 2.5}));
    assert!(one.header("x-amz-function-error").is_none());

    let missing = server.invoke("ItemsFunction:dev", r#"{"ID": 5}"#).await;
    assert_eq!(missing.status, StatusCode::OK, "Lambda reports function errors with 200");
    assert_eq!(missing.header("x-amz-function-error"), Some("Unhandled"));
    let error = body_json(&missing);
    assert_eq!(error["errorType"], "NotFoundError");
    assert_eq!(error["errorMessage"], "NotFoundError");
}

#[tokio::test(flavor = "multi_thread")]
async fn qualifiers_versions_and_aliases_follow_lambdas_rules() {
    let server = TestServer::start(ITEMS);
    // Every qualifier form.
    for (q, version) in [
        ("ItemsFunction", "$LATEST"),
        ("ItemsFunction:$LATEST", "$LATEST"),
        ("ItemsFunction:1", "1"),
        ("ItemsFunction:prod", "1"),
        ("ItemsFunction:dev", "$LATEST"),
    ] {
        let r = server.invoke(q, r#"{"ID": 2}"#).await;
        assert_eq!(r.status, StatusCode::OK, "{q}");
        assert_eq!(r.header("x-amz-executed-version"), Some(version), "{q}");
    }
    for q in ["ItemsFunction:7", "ItemsFunction:nope", "Nothing", "Nothing:prod"] {
        let r = server.invoke(q, "{}").await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{q}");
        assert_eq!(r.header("x-amzn-errortype"), Some("ResourceNotFoundException"));
        assert!(body_json(&r)["message"].as_str().unwrap().starts_with("Function not found"), "{q}");
    }

    // New code: a new $LATEST; dev follows it at once, prod stays on 1.
    let r = server.put_code("ItemsFunction", guest("echo")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", String::from_utf8_lossy(&r.body));
    let dev = server.invoke("ItemsFunction:dev", r#"{"ID": 2}"#).await;
    assert_eq!(body_json(&dev)["event"], json!({"ID": 2}), "dev runs the new code");
    assert_ne!(dev.header("x-wasmgate-start"), Some("cold"), "the new code was loaded before the switch");
    let prod = server.invoke("ItemsFunction:prod", r#"{"ID": 2}"#).await;
    assert_eq!(body_json(&prod)["name"], "Pencil", "prod still runs version 1");

    // Publish: version 2; publishing unchanged code returns it again.
    let v2 = server.json(Method::POST, "/v1/functions/ItemsFunction/versions", json!({"description": "v2"})).await;
    assert_eq!(v2.status, StatusCode::CREATED);
    assert_eq!(body_json(&v2)["version"], 2);
    assert_eq!(body_json(&v2)["description"], "v2");
    assert_eq!(body_json(&v2)["code_sha256"].as_str().unwrap().len(), 64);
    let again =
        server.json(Method::POST, "/v1/functions/ItemsFunction/versions", json!({"description": "again"})).await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(body_json(&again)["version"], 2);
    // A precondition on the code hash.
    let wrong = server.json(Method::POST, "/v1/functions/ItemsFunction/versions", json!({"code_sha256": "00"})).await;
    assert_eq!(wrong.status, StatusCode::BAD_REQUEST);
    assert!(body_json(&wrong)["message"].as_str().unwrap().contains("is different from current CodeSHA256"));

    // Move prod to 2: warmed before the switch.
    let moved = server.json(Method::PUT, "/v1/functions/ItemsFunction/aliases/prod", json!({"version": "2"})).await;
    assert_eq!(moved.status, StatusCode::OK, "{}", String::from_utf8_lossy(&moved.body));
    let prod = server.invoke("ItemsFunction:prod", r#"{"ID": 2}"#).await;
    assert_eq!(prod.header("x-amz-executed-version"), Some("2"));
    assert_ne!(prod.header("x-wasmgate-start"), Some("cold"));
    assert_eq!(body_json(&prod)["context"]["functionVersion"], "2");
    assert_eq!(body_json(&prod)["context"]["invokedQualifier"], "ItemsFunction:prod");
    // Name, version and memory come through the instance's environment (as
    // in Lambda); the SDK's context carries them all the same.
    assert_eq!(body_json(&prod)["context"]["functionName"], "ItemsFunction");
    assert_eq!(body_json(&prod)["context"]["memoryLimitMb"], 128);
    assert_eq!(body_json(&prod)["env"]["AWS_LAMBDA_FUNCTION_VERSION"], "2");
    assert_eq!(body_json(&dev)["context"]["functionVersion"], "$LATEST");

    // Alias rules.
    let r = server.json(Method::POST, "/v1/functions/ItemsFunction/aliases/prod", json!({"version": "1"})).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "create refuses an existing alias");
    let r = server.json(Method::PATCH, "/v1/functions/ItemsFunction/aliases/live", json!({"version": "1"})).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "update refuses a missing alias");
    let r = server.json(Method::PUT, "/v1/functions/ItemsFunction/aliases/123", json!({"version": "1"})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "an all-digit alias name");
    let r = server.json(Method::PUT, "/v1/functions/ItemsFunction/aliases/x", json!({"version": "9"})).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "a missing version");
    let r = server
        .json(
            Method::PUT,
            "/v1/functions/ItemsFunction/aliases/x",
            json!({"version": "$LATEST", "additional_version_weights": {"1": 0.5}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(body_json(&r)["message"].as_str().unwrap().contains("$LATEST is not supported"));
    let r = server
        .json(
            Method::PUT,
            "/v1/functions/ItemsFunction/aliases/x",
            json!({"version": "2", "additional_version_weights": {"2": 0.5}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "additional version equal to the primary");
    let r = server
        .json(
            Method::PUT,
            "/v1/functions/ItemsFunction/aliases/x",
            json!({"version": "2", "additional_version_weights": {"1": 1.5}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "weight above 1");
    let r =
        server.json(Method::PUT, "/v1/functions/ItemsFunction/aliases/x", json!({"version": "2", "bogus": 1})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "unknown field");

    // Deleting a version an alias uses is refused; $LATEST cannot be deleted alone.
    let r = server.admin.send(Method::DELETE, "/v1/functions/ItemsFunction/versions/2", &[], "").await.unwrap();
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(body_json(&r)["message"], "Unable to delete version because the following aliases reference it: [prod]");
    let r = server.admin.send(Method::DELETE, "/v1/functions/ItemsFunction/versions/$LATEST", &[], "").await.unwrap();
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    // Version 1 is unused now: it can go, and its number is never reused.
    let r = server.admin.send(Method::DELETE, "/v1/functions/ItemsFunction/versions/1", &[], "").await.unwrap();
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(server.invoke("ItemsFunction:1", "{}").await.status, StatusCode::NOT_FOUND);
    server.put_code("ItemsFunction", guest("items")).await;
    let v3 = server.json(Method::POST, "/v1/functions/ItemsFunction/versions", json!({})).await;
    assert_eq!(body_json(&v3)["version"], 3);

    // Delete an alias, then the function with everything it has.
    let r = server.admin.send(Method::DELETE, "/v1/functions/ItemsFunction/aliases/dev", &[], "").await.unwrap();
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(server.invoke("ItemsFunction:dev", "{}").await.status, StatusCode::NOT_FOUND);
    let r = server.admin.send(Method::DELETE, "/v1/functions/ItemsFunction", &[], "").await.unwrap();
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    for q in ["ItemsFunction", "ItemsFunction:prod", "ItemsFunction:2"] {
        assert_eq!(server.invoke(q, "{}").await.status, StatusCode::NOT_FOUND, "{q}");
    }
    let list = server.admin.get_json("/v1/functions").await.unwrap();
    assert_eq!(list["functions"], json!([]));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_weighted_alias_splits_calls_by_its_weight() {
    let server = TestServer::start("");
    server.put_code("Echo", guest("echo")).await;
    let v1 = server.json(Method::POST, "/v1/functions/Echo/versions", json!({})).await;
    assert_eq!(body_json(&v1)["version"], 1);
    // Same code, other configuration: a new version.
    let r = server.json(Method::PATCH, "/v1/functions/Echo/configuration", json!({"env": {"RELEASE": "2"}})).await;
    assert_eq!(r.status, StatusCode::OK);
    let v2 = server.json(Method::POST, "/v1/functions/Echo/versions", json!({})).await;
    assert_eq!(body_json(&v2)["version"], 2);
    let r = server
        .json(
            Method::PUT,
            "/v1/functions/Echo/aliases/prod",
            json!({"version": "2", "additional_version_weights": {"1": 0.1}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", String::from_utf8_lossy(&r.body));

    const CALLS: usize = 2000;
    let mut ones = 0;
    for _ in 0..CALLS {
        let r = server.invoke("Echo:prod", "{}").await;
        let ran = r.header("x-amz-executed-version").unwrap().to_string();
        let body = body_json(&r);
        // The context tells the guest which version ran.
        assert_eq!(body["context"]["functionVersion"], ran.as_str());
        assert_eq!(body["env"]["RELEASE"].as_str().is_some(), ran == "2");
        if ran == "1" {
            ones += 1;
        }
    }
    // Binomial(2000, 0.1): mean 200, standard deviation 13.4; six deviations either side.
    assert!((120..=280).contains(&ones), "version 1 ran {ones} of {CALLS} times, expected about 200");
}

#[tokio::test(flavor = "multi_thread")]
async fn instances_are_reused_hot_unless_reuse_is_off() {
    let server = TestServer::start("");
    server.put_code("Counter", guest("counter")).await;
    let first = server.invoke("Counter", "{}").await;
    assert_eq!(body_json(&first)["count"], 1);
    assert_eq!(first.header("x-wasmgate-start"), Some("warm"));
    for n in 2..=5 {
        let r = server.invoke("Counter", "{}").await;
        assert_eq!(r.header("x-wasmgate-start"), Some("hot"));
        assert_eq!(body_json(&r)["count"], n, "globals persist on a reused instance");
    }
    let r = server.json(Method::PATCH, "/v1/functions/Counter/configuration", json!({"reuse": false})).await;
    assert_eq!(body_json(&r)["reuse"], false);
    for _ in 0..3 {
        let r = server.invoke("Counter", "{}").await;
        assert_eq!(r.header("x-wasmgate-start"), Some("warm"));
        assert_eq!(body_json(&r)["count"], 1, "a fresh instance every call");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn min_warm_instances_are_made_ahead_of_traffic_and_idle_ones_expire() {
    let server = TestServer::start("");
    server.put_code("Counter", guest("counter")).await;
    let r =
        server.json(Method::PATCH, "/v1/functions/Counter/configuration", json!({"min_warm": 3, "reuse": false})).await;
    assert_eq!(r.status, StatusCode::OK);
    // Made before the configuration switched: three instances wait, idle.
    let status = server.admin.get_json("/v1/status").await.unwrap();
    assert_eq!(pool(&status, "Counter", "$LATEST"), Some((0, 3)), "{status}");
    // The first calls take them: fresh (never used, so a warm start), and
    // a fresh one each time: reuse is off.
    for _ in 0..3 {
        let r = server.invoke("Counter", "{}").await;
        assert_eq!(r.header("x-wasmgate-start"), Some("warm"), "a pre-made instance's first call");
        assert_eq!(body_json(&r)["count"], 1, "and a fresh one: reuse is off");
    }

    // idle_ttl = 1 s with reuse: the idle instance is dropped, the next call is warm.
    let r = server
        .json(
            Method::PATCH,
            "/v1/functions/Counter/configuration",
            json!({"min_warm": 0, "reuse": true, "idle_ttl": 1}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    server.invoke("Counter", "{}").await;
    assert_eq!(server.invoke("Counter", "{}").await.header("x-wasmgate-start"), Some("hot"));
    // The server evicts once a second: wait until its pool says the instance is gone.
    server.status_when("Counter's idle instance to expire", |s| pool(s, "Counter", "$LATEST") == Some((0, 0))).await;
    let r = server.invoke("Counter", "{}").await;
    assert_eq!(r.header("x-wasmgate-start"), Some("warm"), "the idle instance expired");
    assert_eq!(body_json(&r)["count"], 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn guest_logs_are_captured_per_invocation() {
    let server = TestServer::start("");
    server.put_code("Echo", guest("echo")).await;
    let r = server
        .admin
        .send(Method::POST, "/v1/functions/Echo/invocations", &[("x-amz-log-type", "Tail")], r#"{"a": 1}"#)
        .await
        .unwrap();
    let request_id = r.header("x-amzn-requestid").unwrap().to_string();
    use base64::Engine as _;
    let tail = base64::engine::general_purpose::STANDARD.decode(r.header("x-amz-log-result").unwrap()).unwrap();
    let tail = String::from_utf8(tail).unwrap();
    assert!(tail.contains(&format!("echo stdout {request_id}")), "{tail}");
    assert!(tail.contains(&format!("echo stderr {request_id}")), "{tail}");
    assert_eq!(body_json(&r)["context"]["requestId"], request_id.as_str());
    // As Lambda's tail: the invocation's START, its output, END and REPORT.
    let lines: Vec<&str> = tail.lines().collect();
    assert_eq!(lines[0], format!("START RequestId: {request_id} Version: $LATEST"), "{tail}");
    assert_eq!(lines[lines.len() - 2], format!("END RequestId: {request_id}"), "{tail}");
    let report: Vec<&str> = lines[lines.len() - 1].split('\t').collect();
    assert_eq!(report[0], format!("REPORT RequestId: {request_id}"), "{tail}");
    assert!(report[1].starts_with("Duration: ") && report[2].starts_with("Billed Duration: "), "{tail}");
    assert_eq!(report[3], "Memory Size: 128 MB", "{tail}");
    assert!(report[5].starts_with("Start: "), "{tail}");
    assert!(tail.ends_with('\n'), "{tail:?}");
    // And the server log tags the lines with request id, function and version.
    let log = server.log_with(0, &format!("echo stdout {request_id}"));
    let line = log.lines().find(|l| l.contains(&format!("echo stdout {request_id}"))).expect("logged");
    assert!(line.contains(&request_id) && line.contains("Echo") && line.contains("$LATEST"), "{line}");
    // Written to a file, not a terminal: plain text, no colour codes.
    assert!(!log.contains('\u{1b}'), "{line:?}");
    // A second call's log holds only its own lines.
    let r2 = server
        .admin
        .send(Method::POST, "/v1/functions/Echo/invocations", &[("x-amz-log-type", "Tail")], "{}")
        .await
        .unwrap();
    let tail2 = base64::engine::general_purpose::STANDARD.decode(r2.header("x-amz-log-result").unwrap()).unwrap();
    assert!(!String::from_utf8(tail2).unwrap().contains(&request_id));
}

/// The SDK's `log!` writes its line whole, however long (WASI takes 4096
/// bytes per write), in order with what `print!` and `println!` wrote.
#[tokio::test(flavor = "multi_thread")]
async fn the_sdks_log_writes_whole_lines_in_order() {
    let server = TestServer::start("");
    server.put_code("Echo", guest("echo")).await;
    let text: String = (0..1000).map(|i| format!("{i:>9} ")).collect();
    let r = server.invoke("Echo", &json!({"log": text}).to_string()).await;
    assert_eq!(r.status, StatusCode::OK);
    let request_id = r.header("x-amzn-requestid").unwrap().to_string();
    let log = server.log_with(0, "after");
    let lines: Vec<&str> = log.lines().filter(|l| l.contains(&request_id)).collect();
    let logged = lines.iter().position(|l| l.contains(&format!("before {text}"))).expect("the whole line, once");
    assert!(lines[logged + 1..].iter().any(|l| l.contains("after")), "{lines:#?}");
    assert!(lines[..logged].iter().any(|l| l.contains("echo stdout")), "{lines:#?}");
}

/// A call that does not keep its guest's output, on a server that does not
/// log it, reads none of it: the output is dropped, neither logged nor
/// carried over into the next call's log tail.
#[tokio::test(flavor = "multi_thread")]
async fn guest_output_nobody_asks_for_is_dropped() {
    let server = TestServer::start_with_log_filter("info,wasmgate::function=warn", "");
    server.put_code("Echo", guest("echo")).await;
    let path = "/v1/functions/Echo/invocations";
    let quiet = server.admin.send(Method::POST, path, &[], r#"{"a": 1}"#).await.unwrap();
    assert_eq!(quiet.status, StatusCode::OK);
    assert_eq!(quiet.header("x-amz-log-result"), None, "no tail asked for");
    let quiet_id = quiet.header("x-amzn-requestid").unwrap().to_string();
    let r = server.admin.send(Method::POST, path, &[("x-amz-log-type", "Tail")], "{}").await.unwrap();
    let request_id = r.header("x-amzn-requestid").unwrap().to_string();
    use base64::Engine as _;
    let tail = base64::engine::general_purpose::STANDARD.decode(r.header("x-amz-log-result").unwrap()).unwrap();
    let tail = String::from_utf8(tail).unwrap();
    assert!(tail.contains(&format!("echo stdout {request_id}")), "{tail}");
    assert!(!tail.contains(&quiet_id), "the earlier call's output was dropped: {tail}");
    // The server logs at `info`, but not the guests' lines: a line logged
    // after both calls is there, theirs are not.
    server.json(Method::POST, "/v1/functions/Echo/versions", json!({})).await;
    let log = server.log_with(0, "published version");
    assert!(log.contains("published version"), "{log}");
    assert!(!log.contains("echo stdout"), "{log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_gets_a_clear_error_and_nothing_is_stored() {
    let server = TestServer::start("");
    // Malformed wasm.
    let r = server.put_code("Bad", b"definitely not wasm").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(body_json(&r)["message"].as_str().unwrap().contains("not a WebAssembly binary"));
    // A truncated component.
    let items = guest("items");
    let r = server.put_code("Bad", &items[..items.len() / 2]).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(body_json(&r)["message"].as_str().unwrap().starts_with("invalid function code"));
    // A core module, not a component.
    let r = server.put_code("Bad", b"\0asm\x01\0\0\0").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(body_json(&r)["message"].as_str().unwrap().contains("core WebAssembly module"));
    // Nothing stored.
    let list = server.admin.get_json("/v1/functions").await.unwrap();
    assert_eq!(list["functions"], json!([]));
    let code_dir = server.data_dir().join("code");
    assert_eq!(std::fs::read_dir(code_dir).unwrap().count(), 0);

    // Bad JSON event; unknown configuration key; bad values.
    server.put_code("Echo", guest("echo")).await;
    let r = server.invoke("Echo", "{not json").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.header("x-amzn-errortype"), Some("InvalidRequestContentException"));
    let r = server.json(Method::PATCH, "/v1/functions/Echo/configuration", json!({"memory": 5})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(body_json(&r)["message"].as_str().unwrap().contains("unknown field `memory`"));
    let r = server.json(Method::PATCH, "/v1/functions/Echo/configuration", json!({"memory_mb": 0})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(body_json(&r)["message"].as_str().unwrap().contains("memory_mb"));
    // The runtime's own variables (the guest reads its name and version
    // there) cannot be overridden, as in Lambda.
    let r = server
        .json(Method::PATCH, "/v1/functions/Echo/configuration", json!({"env": {"AWS_LAMBDA_FUNCTION_VERSION": "9"}}))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(body_json(&r)["message"].as_str().unwrap().contains("reserved keys"), "{}", body_json(&r));
    assert!(body_json(&r)["message"].as_str().unwrap().contains("AWS_LAMBDA_FUNCTION_VERSION"));
    let r = server.admin.send(Method::POST, "/v1/functions/Echo/versions", &[], "[1,2").await.unwrap();
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = server.put_code("bad%20name!", guest("echo")).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);

    // An oversized event.
    let big = format!("\"{}\"", "x".repeat(7 * 1024 * 1024));
    let r = server.invoke("Echo", &big).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(r.header("x-amzn-errortype"), Some("RequestTooLargeException"));

    // No token, wrong token.
    let anon = wasmgate_host::admin::client::AdminClient::new(&server.admin_url, "wrong");
    let r = anon.send(Method::GET, "/v1/functions", &[], "").await.unwrap();
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    // The token file is private.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(server.data_dir().join("admin.token")).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[tokio::test(flavor = "multi_thread")]
async fn oversized_uploads_are_refused_with_413() {
    let server = TestServer::start_with("max_code_mb = 1\n", "");
    let big = vec![0u8; 2 << 20];
    let r = server.put_code("Big", &big).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(body_json(&r)["type"], "RequestTooLargeException");
    assert_eq!(server.admin.get_json("/v1/functions").await.unwrap()["functions"], Value::Array(vec![]));
}
