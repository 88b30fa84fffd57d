//! Instance pools across versions and functions: warm pools follow what
//! aliases and stages call, reserved concurrency is the function's, a
//! replaced version lets its instances go, a full pool makes room by
//! dropping the least recently used idle instance, a rollback during a slow
//! deploy is what ends up served, and a deployment that no longer resolves
//! is skipped.

use hyper::Method;
use serde_json::{Value, json};

use crate::common::{TestServer, body_json, busy, get, http, pool};

/// The admin API's status.
async fn status(server: &TestServer) -> Value {
    server.status_when("the status", |_| true).await
}

/// `(busy, idle)` of one loaded version, as the status reports it.
async fn pool_of(server: &TestServer, function: &str, version: &str) -> Option<(u64, u64)> {
    pool(&status(server).await, function, version)
}

async fn publish(server: &TestServer, function: &str) -> u64 {
    let r = server.json(Method::POST, &format!("/v1/functions/{function}/versions"), json!({})).await;
    assert!(r.status.is_success(), "{}", String::from_utf8_lossy(&r.body));
    body_json(&r)["version"].as_u64().expect("a version number")
}

async fn set_alias(server: &TestServer, function: &str, alias: &str, body: Value) {
    let r = server.json(Method::PUT, &format!("/v1/functions/{function}/aliases/{alias}"), body).await;
    assert!(r.status.is_success(), "{}", String::from_utf8_lossy(&r.body));
}

#[tokio::test(flavor = "multi_thread")]
async fn warm_pools_follow_what_aliases_call() {
    let server = TestServer::start(
        r#"
[functions.Warm]
guest = "echo"
min_warm = 2
publish = "one"
aliases = { live = "1" }
"#,
    );
    assert_eq!(pool_of(&server, "Warm", "1").await, Some((0, 2)), "the version live names is warm");
    // A second version (other configuration), then `live` moves to it.
    let r = server.json(Method::PATCH, "/v1/functions/Warm/configuration", json!({"timeout_ms": 2000})).await;
    assert!(r.status.is_success(), "{}", String::from_utf8_lossy(&r.body));
    let two = publish(&server, "Warm").await;
    assert_eq!(two, 2);
    assert_eq!(pool_of(&server, "Warm", "2").await, Some((0, 0)), "published, but nothing calls it yet");
    set_alias(&server, "Warm", "live", json!({"version": "2"})).await;
    assert_eq!(pool_of(&server, "Warm", "2").await, Some((0, 2)), "warmed before live switched to it");
    assert_eq!(pool_of(&server, "Warm", "1").await, Some((0, 0)), "nothing calls version 1: it holds no instances");
    assert_eq!(pool_of(&server, "Warm", "$LATEST").await, Some((0, 2)));
    // Five instances were made in all; two were let go.
    assert_eq!(status(&server).await["runtime"]["instances_alive"], 4);
}

#[tokio::test(flavor = "multi_thread")]
async fn reserved_concurrency_is_the_functions_whichever_version_runs() {
    let server = TestServer::start(
        r#"
[functions.Once]
guest = "sleepy"
max_concurrency = 1
publish = "one"
"#,
    );
    let r = server.json(Method::PATCH, "/v1/functions/Once/configuration", json!({"timeout_ms": 4000})).await;
    assert!(r.status.is_success());
    assert_eq!(publish(&server, "Once").await, 2);
    // A call on version 1 …
    let admin = server.admin.clone();
    let running = tokio::spawn(async move {
        admin
            .send(Method::POST, "/v1/functions/Once:1/invocations", &[], bytes::Bytes::from(r#"{"sleep_ms": 2500}"#))
            .await
            .unwrap()
    });
    server.calls_in_flight("Once", 1).await;
    // … leaves no room for one on version 2.
    let throttled = server.invoke("Once:2", r#"{"sleep_ms": 1}"#).await;
    assert_eq!(throttled.status, 429, "{}", String::from_utf8_lossy(&throttled.body));
    assert_eq!(throttled.header("x-amzn-errortype"), Some("TooManyRequestsException"));
    assert_eq!(body_json(&running.await.unwrap()), json!({"slept_ms": 2500}));
    assert_eq!(body_json(&server.invoke("Once:2", r#"{"sleep_ms": 1}"#).await), json!({"slept_ms": 1}));
}

const STAGED: &str = r#"
[functions.Staged]
guest = "echo"

[apis.Staged]

[apis.Staged.resources."/e".GET.integration]
type = "function"
function = "Staged"

[apis.Staged.stages.s]
"#;

#[tokio::test(flavor = "multi_thread")]
async fn a_replaced_version_lets_its_idle_instances_go() {
    let server = TestServer::start(STAGED);
    // The stage's call leaves an idle instance, held by the stage's
    // resolution of its target as well as by the pool.
    assert_eq!(get(&server.url("/s/e")).await.status, 200);
    assert_eq!(status(&server).await["runtime"]["instances_alive"], 1);
    // $LATEST gets a new configuration: the replaced one's instance goes at once.
    let r = server.json(Method::PATCH, "/v1/functions/Staged/configuration", json!({"timeout_ms": 2000})).await;
    assert!(r.status.is_success());
    assert_eq!(status(&server).await["runtime"]["instances_alive"], 0);
    assert_eq!(get(&server.url("/s/e")).await.status, 200);
    assert_eq!(status(&server).await["runtime"]["instances_alive"], 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_pool_drops_the_least_recently_used_idle_instance() {
    // Room for three instances, four functions.
    let server = TestServer::start_with(
        "max_instances = 3\n",
        r#"
[functions.A]
guest = "echo"
[functions.B]
guest = "echo"
[functions.C]
guest = "echo"
[functions.D]
guest = "echo"
[functions.Slow]
guest = "sleepy"
timeout_ms = 5000
"#,
    );
    for name in ["A", "B", "C", "D", "A", "B"] {
        let r = server.invoke(name, "{}").await;
        assert!(r.header("x-amz-function-error").is_none(), "{name}: {}", String::from_utf8_lossy(&r.body));
        assert!(r.status.is_success(), "{name}: {}", String::from_utf8_lossy(&r.body));
    }
    // D pushed out A (the least recently used), A then C, B then D.
    assert_eq!(status(&server).await["runtime"]["instances_alive"], 3);
    assert_eq!(pool_of(&server, "C", "$LATEST").await.map(|p| p.1), Some(0));
    // Every slot busy with a call: a throttling error, as Lambda's, and the
    // busy calls finish.
    let calls: Vec<_> = (0..3)
        .map(|_| {
            let admin = server.admin.clone();
            tokio::spawn(async move {
                admin
                    .send(
                        Method::POST,
                        "/v1/functions/Slow/invocations",
                        &[],
                        bytes::Bytes::from(r#"{"sleep_ms": 2000}"#),
                    )
                    .await
                    .unwrap()
            })
        })
        .collect();
    // In flight and instantiated: the three calls hold every instance, so
    // none of the earlier idle ones is left for A.
    server
        .status_when("three Slow calls holding every instance", |s| {
            let idle: u64 = s["pools"].as_array().expect("pools").iter().filter_map(|p| p["idle"].as_u64()).sum();
            busy(s, "Slow") >= 3 && idle == 0 && s["runtime"]["instances_alive"] == 3
        })
        .await;
    let refused = server.invoke("A", "{}").await;
    assert_eq!(refused.status, 429, "{}", String::from_utf8_lossy(&refused.body));
    for call in calls {
        assert_eq!(body_json(&call.await.unwrap()), json!({"slept_ms": 2000}));
    }
    assert!(server.invoke("A", "{}").await.status.is_success());
}

const MOCK_API: &str = r#"
[apis.Served]

[apis.Served.resources."/which".GET.integration]
type = "mock"
request_templates = { "application/json" = '{"statusCode": 200}' }
responses = [{ status = 200, templates = { "application/json" = '$context.deploymentId' } }]

[apis.Served.stages.s]
"#;

/// The deployment id the registry names for `api`'s `stage` (from `GET /v1/apis`).
fn find_stage_deployment(apis: &Value, api: &str, stage: &str) -> Option<String> {
    let api = apis.as_array()?.iter().find(|a| a["name"] == api)?;
    let stage = api["stages"].as_array()?.iter().find(|s| s["stage"] == stage)?;
    stage["deployment_id"].as_str().map(str::to_string)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deployment_that_no_longer_resolves_is_skipped_and_the_rest_served() {
    let two_apis = format!(
        "{MOCK_API}\n{}",
        MOCK_API.replace("[apis.Served]", "[apis.Other]\nbase_path = \"other\"").replace("apis.Served", "apis.Other")
    );
    let mut server = TestServer::start(&two_apis);
    assert_eq!(get(&server.url("/s/which")).await.status, 200);
    server.kill9();
    // A deployment the registry holds but that no longer resolves (as one
    // written by another version of wasmgate might not).
    let db = rusqlite::Connection::open(server.data_dir().join("registry.db")).expect("the registry's database");
    let changed = db
        .execute("UPDATE deployments SET definition = 'resources = 1' WHERE api = 'Other'", [])
        .expect("update the deployment");
    assert_eq!(changed, 1);
    drop(db);
    server.restart();
    // The server started, serves the other API, and says what it skipped.
    assert_eq!(get(&server.url("/s/which")).await.status, 200);
    assert_eq!(get(&server.url("/other/s/which")).await.status, 403);
    let log = server.log_with(0, "stage not served");
    assert!(log.contains("stage not served") && log.contains("Other"), "{log}");
    // And deploys go on.
    let r = server.json(Method::POST, "/v1/apis/Served/deployments", json!({"stage": "s"})).await;
    assert!(r.status.is_success(), "{}", String::from_utf8_lossy(&r.body));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rollback_during_a_slow_deploy_is_what_ends_up_served() {
    // An API large enough that serving a new deployment of it takes a while
    // (each resource's templates are parsed, its models compiled), and a
    // rollback to a deployment already served, which is quick.
    let mut api = String::from(MOCK_API);
    for i in 0..400 {
        api.push_str(&format!(
            "\n[apis.Served.resources.\"/r{i}/{{id}}\".POST.integration]\ntype = \"mock\"\nrequest_templates = {{ \"application/json\" = '''#set($x = $input.path('$.a'))#foreach($i in [1..3])$i#end{{\"statusCode\": 200}}''' }}\nresponses = [{{ status = 200, templates = {{ \"application/json\" = '''#if($x)$x#else none#end $context.requestId''' }} }}]\n"
        ));
    }
    let server = TestServer::start(&api);
    let first =
        find_stage_deployment(&body_json(&server.json(Method::GET, "/v1/apis", Value::Null).await), "Served", "s")
            .expect("the first deployment");
    let admin = server.admin.clone();
    let deploy = tokio::spawn(async move {
        // The same definition: forced, or it would be no deploy at all.
        let body = json!({"stage": "s", "force": true}).to_string();
        admin
            .send(
                Method::POST,
                "/v1/apis/Served/deployments",
                &[("content-type", "application/json")],
                bytes::Bytes::from(body),
            )
            .await
            .unwrap()
    });
    // As soon as the registry names the new deployment (the deploy is
    // building what it will serve), roll back to the first.
    loop {
        let apis = body_json(&server.json(Method::GET, "/v1/apis", Value::Null).await);
        if find_stage_deployment(&apis, "Served", "s").is_some_and(|d| d != first) {
            break;
        }
        assert!(!deploy.is_finished(), "the deploy ended before the registry was seen to name it");
    }
    let rollback =
        server.json(Method::POST, "/v1/apis/Served/stages/s/rollback", json!({"deployment_id": first.clone()})).await;
    assert!(rollback.status.is_success(), "{}", String::from_utf8_lossy(&rollback.body));
    assert!(deploy.await.unwrap().status.is_success());
    let apis = body_json(&server.json(Method::GET, "/v1/apis", Value::Null).await);
    assert_eq!(find_stage_deployment(&apis, "Served", "s").as_deref(), Some(first.as_str()));
    let served = http("GET", &server.url("/s/which"), &[], "").await.text();
    assert_eq!(served, first, "the gateway serves what the registry names");
}
