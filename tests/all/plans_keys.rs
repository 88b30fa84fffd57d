//! Usage plans, API keys and stage caches managed with the CLI (`wasmgate
//! plan …`, `wasmgate key …`, `wasmgate cache …`) and the admin API, against
//! a real server whose gateway enforces them.

use hyper::Method;
use serde_json::{Value, json};
use wasmgate_host::policy::catalog::digest_hex;

use crate::common::{HttpResponse, TestServer, body_json, get, http};

/// API `A`, stage `s`: a mock `GET /x` that requires an API key and answers
/// `{"ok": true}`.
const API: &str = r#"
[apis.A.resources."/x".GET]
api_key_required = true
[apis.A.resources."/x".GET.integration]
type = "mock"
request_templates = { "application/json" = '{"statusCode": 200}' }
responses = [{ status = 200, templates = { "application/json" = '{"ok": true}' } }]

[apis.A.stages.s]
"#;

/// Runs the CLI; panics with its stderr unless it succeeds. Returns stdout.
fn cli_ok(server: &TestServer, args: &[&str]) -> String {
    let (code, out, err) = server.cli(args);
    assert_eq!(code, 0, "wasmgate {} failed:\n{err}\n{out}", args.join(" "));
    out
}

/// Runs the CLI expecting it to fail; returns its stderr.
fn cli_fails(server: &TestServer, args: &[&str]) -> String {
    let (code, out, err) = server.cli(args);
    assert_ne!(code, 0, "wasmgate {} should have failed:\n{out}\n{err}", args.join(" "));
    err
}

/// A 40-character key value, alone on stdout.
fn printed_value(out: &str) -> String {
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 1, "the value alone on stdout: {out:?}");
    let value = lines[0].to_string();
    assert_eq!(value.len(), 40, "{value:?}");
    assert!(value.bytes().all(|b| b.is_ascii_alphanumeric()), "{value:?}");
    value
}

async fn call(server: &TestServer, key: Option<&str>) -> HttpResponse {
    match key {
        Some(key) => http("GET", &server.url("/s/x"), &[("x-api-key", key)], "").await,
        None => get(&server.url("/s/x")).await,
    }
}

async fn assert_forbidden(server: &TestServer, key: Option<&str>, why: &str) {
    let r = call(server, key).await;
    assert_eq!(r.status, 403, "{why}: {}", r.text());
    assert_eq!(r.json(), json!({ "message": "Forbidden" }), "{why}");
}

async fn assert_admitted(server: &TestServer, key: &str, why: &str) {
    let r = call(server, Some(key)).await;
    assert_eq!(r.status, 200, "{why}: {}", r.text());
    assert_eq!(r.json(), json!({ "ok": true }), "{why}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_key_made_with_the_cli_opens_the_method_until_disabled_rotated_or_deleted() {
    let server = TestServer::start(API);
    let out = cli_ok(&server, &["plan", "create", "P", "--stage", "A/s", "--rate", "100", "--burst", "200"]);
    assert!(out.contains("A/s") && out.contains("100 req/s, burst 200"), "{out}");

    let (code, out, err) = server.cli(&["key", "create", "demo", "--plan", "P"]);
    assert_eq!(code, 0, "{err}");
    let value = printed_value(&out);
    assert!(err.contains("demo") && err.contains("shown only now"), "the rest goes to stderr: {err}");

    assert_forbidden(&server, None, "no key").await;
    assert_admitted(&server, &value, "the new key").await;

    cli_ok(&server, &["key", "disable", "demo"]);
    assert_forbidden(&server, Some(&value), "a disabled key").await;
    cli_ok(&server, &["key", "enable", "demo"]);
    assert_admitted(&server, &value, "enabled again").await;

    let (code, out, err) = server.cli(&["key", "rotate", "demo"]);
    assert_eq!(code, 0, "{err}");
    let rotated = printed_value(&out);
    assert_ne!(rotated, value);
    assert_forbidden(&server, Some(&value), "the value before the rotation").await;
    assert_admitted(&server, &rotated, "the rotated value").await;

    // A chosen value on rotation.
    let chosen = "Chosen0Value0For0The0Key0Rotation000000x";
    let out = cli_ok(&server, &["key", "rotate", "demo", "--value", chosen]);
    assert_eq!(out.trim(), chosen);
    assert_forbidden(&server, Some(&rotated), "the value before the second rotation").await;
    assert_admitted(&server, chosen, "the chosen value").await;

    let out = cli_ok(&server, &["key", "get", "demo"]);
    assert!(out.contains("Chos****") && out.contains("P"), "{out}");
    assert!(!out.contains(chosen), "{out}");

    cli_ok(&server, &["key", "delete", "demo"]);
    assert_forbidden(&server, Some(chosen), "a deleted key").await;
    let err = cli_fails(&server, &["key", "get", "demo"]);
    assert!(err.contains("no API key \"demo\""), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn key_lists_mask_values_and_values_are_checked_and_unique() {
    let server = TestServer::start(API);
    cli_ok(&server, &["plan", "create", "P", "--stage", "A/s"]);
    let chosen = "ListMe0000000000000000000000000000000001";
    cli_ok(&server, &["key", "create", "chosen", "--plan", "P", "--value", chosen, "--description", "mine"]);
    let generated = printed_value(&cli_ok(&server, &["key", "create", "generated"]));

    let out = cli_ok(&server, &["key", "list"]);
    assert!(out.contains("chosen") && out.contains("generated") && out.contains("mine"), "{out}");
    assert!(out.contains(&format!("List{}", "*".repeat(36))), "the masked value: {out}");
    assert!(out.contains(&format!("{}{}", &generated[..4], "*".repeat(36))), "{out}");
    for secret in [chosen.to_string(), generated.clone(), digest_hex(chosen), digest_hex(&generated)] {
        assert!(!out.contains(&secret), "the list shows {secret}: {out}");
    }
    let out = cli_ok(&server, &["key", "list", "--output", "json"]);
    let list: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(list["api_keys"].as_array().map(Vec::len), Some(2), "{out}");
    for secret in [chosen.to_string(), generated.clone(), digest_hex(chosen), digest_hex(&generated)] {
        assert!(!out.contains(&secret), "the JSON list shows {secret}: {out}");
    }
    let keys = server.admin.get_json("/v1/apikeys/chosen").await.expect("GET the key");
    assert!(keys.get("value").is_none() && keys.get("sha256").is_none(), "{keys}");

    // 19 characters: refused, saying what a value must be.
    let err = cli_fails(&server, &["key", "create", "short", "--value", "TooShort00000000000"]);
    assert!(err.contains("20 to 128 letters and digits") && err.contains("19 characters"), "{err}");
    let err = cli_fails(&server, &["key", "create", "symbols", "--value", "has-symbols-0000000000000"]);
    assert!(err.contains("not all letters and digits"), "{err}");
    // Values are unique.
    let err = cli_fails(&server, &["key", "create", "twin", "--value", chosen]);
    assert!(err.contains("another key has this value"), "{err}");
    assert!(!err.contains("\"chosen\""), "the other key is not named: {err}");
    let err = cli_fails(&server, &["key", "create", "chosen"]);
    assert!(err.contains("already exists"), "{err}");
    let out = cli_ok(&server, &["key", "list", "--output", "json"]);
    let list: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(list["api_keys"].as_array().map(Vec::len), Some(2), "nothing refused was kept: {out}");

    // A key may be in one plan per stage.
    cli_ok(&server, &["plan", "create", "Q", "--stage", "A/s"]);
    let err = cli_fails(&server, &["key", "update", "chosen", "--plan", "Q"]);
    assert!(err.contains("one plan per stage"), "{err}");
    let out = cli_ok(&server, &["key", "update", "chosen", "--remove-plan", "P", "--plan", "Q"]);
    assert!(out.contains("plans:       Q"), "{out}");
    let err = cli_fails(&server, &["key", "update", "chosen", "--remove-plan", "P"]);
    assert!(err.contains("not in usage plan \"P\""), "{err}");
    let err = cli_fails(&server, &["key", "update", "chosen", "--plan", "NoSuchPlan"]);
    assert!(err.contains("no usage plan \"NoSuchPlan\""), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_plan_bound_to_a_stage_is_deleted_only_once_unbound() {
    let server = TestServer::start(API);
    cli_ok(&server, &["plan", "create", "P", "--stage", "A/s", "--description", "bound"]);
    let (code, _, err) = server.cli(&["plan", "delete", "P"]);
    assert_ne!(code, 0, "a bound plan is not deleted");
    assert!(err.contains("wasmgate plan update P --remove-stage A/s"), "the message says how to unbind: {err}");
    let out = cli_ok(&server, &["plan", "list"]);
    assert!(out.contains("P") && out.contains("A/s"), "{out}");

    let out = cli_ok(&server, &["plan", "update", "P", "--remove-stage", "A/s"]);
    assert!(out.contains("stages:      -"), "{out}");
    let err = cli_fails(&server, &["plan", "update", "P", "--remove-stage", "A/s"]);
    assert!(err.contains("not bound to A/s"), "{err}");
    let out = cli_ok(&server, &["plan", "delete", "P"]);
    assert!(out.contains("deleted usage plan P"), "{out}");
    let err = cli_fails(&server, &["plan", "get", "P"]);
    assert!(err.contains("no usage plan \"P\""), "{err}");
    let out = cli_ok(&server, &["plan", "list"]);
    assert!(out.contains("no usage plans"), "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn plan_usage_shows_what_was_used_and_what_remains_today() {
    let server = TestServer::start(API);
    let out = cli_ok(&server, &["plan", "create", "Q", "--stage", "A/s", "--quota", "10/DAY"]);
    assert!(out.contains("10/DAY"), "{out}");
    let value = printed_value(&cli_ok(&server, &["key", "create", "counted", "--plan", "Q"]));
    for i in 0..3 {
        assert_admitted(&server, &value, &format!("call {i}")).await;
    }
    // Refused calls use no quota.
    assert_forbidden(&server, None, "no key").await;

    let out = cli_ok(&server, &["plan", "usage", "Q"]);
    // "usage plan Q, FROM to TO (UTC)": the last seven days through today.
    let header = out.lines().next().unwrap_or_default();
    let (_, dates) = header.split_once(", ").unwrap_or_else(|| panic!("a header line: {out}"));
    let today = dates.split_whitespace().nth(2).unwrap_or_else(|| panic!("{out}")).to_string();
    assert!(out.contains("API key counted"), "{out}");
    let rows: Vec<Vec<&str>> = out
        .lines()
        .filter(|l| l.len() > 10 && l.as_bytes()[4] == b'-' && l.as_bytes()[7] == b'-')
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows.len(), 7, "a row a day: {out}");
    assert_eq!(rows.last().unwrap(), &vec![today.as_str(), "3", "7"], "{out}");
    for row in &rows[..6] {
        assert_eq!(&row[1..], ["0", "10"], "{out}");
    }

    // One day, one key, as JSON: GetUsage's shape.
    let out = cli_ok(
        &server,
        &["plan", "usage", "Q", "--key", "counted", "--from", &today, "--to", &today, "--output", "json"],
    );
    let report: Value = serde_json::from_str(&out).unwrap();
    let key_id = report["items"].as_object().and_then(|o| o.keys().next().cloned()).unwrap();
    assert_eq!(report["items"][&key_id], json!([[3, 7]]), "{out}");
    assert_eq!(report["keyNames"][&key_id], "counted", "{out}");
    assert_eq!((report["startDate"].as_str(), report["endDate"].as_str()), (Some(&*today), Some(&*today)));

    let err = cli_fails(&server, &["plan", "usage", "Q", "--from", "yesterday"]);
    assert!(err.contains("YYYY-MM-DD"), "{err}");
    let err = cli_fails(&server, &["plan", "usage", "Q", "--key", "nobody"]);
    assert!(err.contains("\"nobody\""), "{err}");
    let err = cli_fails(&server, &["plan", "usage", "Nope"]);
    assert!(err.contains("no usage plan \"Nope\""), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn cache_flush_names_a_served_stage() {
    let server = TestServer::start(API);
    let err = cli_fails(&server, &["cache", "flush", "A", "--stage", "nope"]);
    assert!(err.contains("Invalid stage identifier specified") && err.contains("\"nope\""), "{err}");
    let err = cli_fails(&server, &["cache", "flush", "B", "--stage", "s"]);
    assert!(err.contains("Invalid API identifier specified"), "{err}");
    let r = server.json(Method::DELETE, "/v1/apis/A/stages/nope/cache", json!({})).await;
    assert_eq!(r.status, 404);
    assert_eq!(body_json(&r)["type"], "NotFoundException");

    let out = cli_ok(&server, &["cache", "flush", "A", "--stage", "s"]);
    assert!(out.contains("flushed the cache of A/s"), "{out}");

    let status = server.admin.get_json("/v1/status").await.unwrap();
    assert_eq!(status["policies"]["store"], "embedded", "{status}");
    assert!(status["policies"]["cache"].is_array(), "{status}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_admin_api_manages_plans_and_keys_in_api_gateways_terms() {
    let server = TestServer::start(API);
    let plan = json!({
        "name": "Gold",
        "description": "gold",
        "stages": ["A/s"],
        "throttle": { "rate": 5.0, "burst": 10 },
        "quota": { "limit": 1000, "offset": 10, "period": "month" },
        "method_throttle": { "A/s": { "/x/GET": { "rate": 1.0, "burst": 2 } } },
    });
    let r = server.json(Method::POST, "/v1/usageplans", plan).await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let created = body_json(&r);
    assert_eq!(created["stages"], json!(["A/s"]));
    assert_eq!(created["quota"], json!({ "limit": 1000, "offset": 10, "period": "MONTH" }));
    assert_eq!(created["method_throttle"], json!({ "A/s": { "/x/GET": { "rate": 1.0, "burst": 2 } } }));

    let r = server.json(Method::POST, "/v1/usageplans", json!({ "name": "Gold" })).await;
    assert_eq!((r.status.as_u16(), body_json(&r)["type"].clone()), (409, json!("ConflictException")));
    let r = server.json(Method::POST, "/v1/usageplans", json!({ "name": "Bad", "stages": ["nostage"] })).await;
    assert_eq!((r.status.as_u16(), body_json(&r)["type"].clone()), (400, json!("BadRequestException")));
    let bad_method = json!({ "name": "Bad", "stages": ["A/s"], "method_throttle": { "A/t": {} } });
    let r = server.json(Method::POST, "/v1/usageplans", bad_method).await;
    assert_eq!(r.status, 400, "{}", String::from_utf8_lossy(&r.body));
    let r = server.json(Method::PATCH, "/v1/usageplans/None", json!({ "description": "x" })).await;
    assert_eq!((r.status.as_u16(), body_json(&r)["type"].clone()), (404, json!("NotFoundException")));

    // null removes; an absent field stays.
    let r =
        server.json(Method::PATCH, "/v1/usageplans/Gold", json!({ "throttle": null, "description": "no cap" })).await;
    let patched = body_json(&r);
    assert_eq!(r.status, 200, "{patched}");
    assert_eq!(patched["throttle"], Value::Null);
    assert_eq!(patched["quota"]["limit"], 1000);
    assert_eq!(patched["description"], "no cap");
    let r = server.json(Method::PATCH, "/v1/usageplans/Gold", json!({ "quota": null })).await;
    assert_eq!(body_json(&r)["quota"], Value::Null);

    let r = server.json(Method::POST, "/v1/apikeys", json!({ "name": "k", "plans": ["Gold"], "enabled": false })).await;
    assert_eq!(r.status, 201);
    let key = body_json(&r);
    let value = key["value"].as_str().unwrap().to_string();
    assert_eq!(key["enabled"], false);
    assert_forbidden(&server, Some(&value), "created disabled").await;
    let r = server.json(Method::PATCH, "/v1/apikeys/k", json!({ "enabled": true })).await;
    assert_eq!(body_json(&r)["enabled"], true);
    assert!(body_json(&r).get("value").is_none());
    assert_admitted(&server, &value, "enabled").await;
    let plan = server.admin.get_json("/v1/usageplans/Gold").await.expect("GET the plan");
    assert_eq!(plan["keys"], json!(["k"]));

    let r = server.json(Method::POST, "/v1/apikeys/k/rotate", json!({ "value": "short" })).await;
    assert_eq!(r.status, 400);
    assert_admitted(&server, &value, "a refused rotation changes nothing").await;
    let r = server.json(Method::DELETE, "/v1/apikeys/k", json!({})).await;
    assert_eq!(r.status, 204);
    let r = server.json(Method::DELETE, "/v1/apikeys/k", json!({})).await;
    assert_eq!((r.status.as_u16(), body_json(&r)["type"].clone()), (404, json!("NotFoundException")));
}
