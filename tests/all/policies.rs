//! Stage policies against the real server: API keys, usage plans (throttle
//! and quota), stage and method throttling, the response cache and CORS, in
//! API Gateway's order.

use std::time::{Duration, Instant};

use hyper::Method;
use serde_json::{Value, json};

use crate::common::{HttpResponse, TestServer, bundled_config_with_policies, get, http};

/// Keys the tests declare by their SHA-256 (the file never holds a value).
const KEY_ONE: &str = "TestKeyNumberOne000000001";
const KEY_ONE_SHA: &str = "d901b78876e4186afeb79161f13650833bf65ded1c06c32f1a39ea702b267ca9";
const KEY_TWO: &str = "TestKeyNumberTwo000000002";
const KEY_TWO_SHA: &str = "a58e29a8a8b87af31113070c2a7f13291d5d588a8d4f0108dad9560ef0a12dcb";
const KEY_INVALIDATOR: &str = "TestKeyInvalidator0000003";
const KEY_INVALIDATOR_SHA: &str = "f0db7c2aced9b028214f784715ec818cea232bf989b7a5b68012c790f5e963b7";

async fn get_with(url: &str, headers: &[(&str, &str)]) -> HttpResponse {
    http("GET", url, headers, "").await
}

async fn get_key(url: &str, key: &str) -> HttpResponse {
    get_with(url, &[("x-api-key", key)]).await
}

fn assert_gateway_error(r: &HttpResponse, status: u16, message: &str, error_type: &str) {
    assert_eq!(r.status, status, "{}", r.text());
    assert_eq!(r.json(), json!({ "message": message }));
    assert_eq!(r.header("x-amzn-errortype"), Some(error_type));
    // AWS's error responses carry both request ids.
    assert!(r.header("x-amzn-requestid").is_some_and(|v| !v.is_empty()), "{:?}", r.headers);
    assert!(r.header("x-amz-apigw-id").is_some_and(|v| !v.is_empty()), "{:?}", r.headers);
}

/// An API `A` with a mock `GET /m` (and `GET /n`) that answers with the
/// caller's key id, on stage `s`; `method` goes into both methods' tables,
/// `rest` after them (plans, keys, stage settings).
fn mock_api(method: &str, rest: &str) -> String {
    let one = |path: &str| {
        format!(
            r#"
[apis.A.resources."{path}".GET]
{method}
[apis.A.resources."{path}".GET.integration]
type = "mock"
request_templates = {{ "application/json" = '{{"statusCode": 200}}' }}
responses = [{{ status = 200, templates = {{ "application/json" = '{{"keyId": "$context.identity.apiKeyId", "key": "$context.identity.apiKey"}}' }} }}]
"#
        )
    };
    format!("[apis.A]\n{}{}\n{rest}", one("/m"), one("/n"))
}

fn key(name: &str, sha: &str, plans: &str, extra: &str) -> String {
    format!("\n[api_keys.{name}]\nplans = [{plans}]\nvalue_sha256 = \"{sha}\"\n{extra}\n")
}

#[tokio::test(flavor = "multi_thread")]
async fn the_seed_needs_a_key_of_its_plan_and_browsers_may_call_it() {
    let config = format!(
        "{}{}{}",
        bundled_config_with_policies(),
        key("demo", KEY_ONE_SHA, "\"CloudAcademyPlan\"", ""),
        key("other", KEY_TWO_SHA, "", ""),
    );
    let server = TestServer::start(&config);
    let url = server.url("/prod/items");

    // No key, an unknown key, a key in no plan of the stage: Forbidden, with
    // the allow-origin header so that a browser can read it.
    for headers in [vec![], vec![("x-api-key", "NoSuchKeyNoSuchKeyNoSuchKey")], vec![("x-api-key", KEY_TWO)]] {
        let r = get_with(&url, &headers).await;
        assert_gateway_error(&r, 403, "Forbidden", "ForbiddenException");
        assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    }
    let r = get_key(&url, KEY_ONE).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json().as_array().map(Vec::len), Some(4), "the four items: {}", r.text());
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    let r = get_key(&server.url("/dev/items/3"), KEY_ONE).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["name"], "Highlighter");

    // A preflight, as a browser sends it: no key needed.
    let preflight =
        http("OPTIONS", &url, &[("Origin", "https://app.example"), ("Access-Control-Request-Method", "GET")], "").await;
    assert_eq!(preflight.status, 200, "{}", preflight.text());
    assert_eq!(preflight.header("access-control-allow-origin"), Some("*"));
    assert_eq!(preflight.header("access-control-allow-methods"), Some("GET,OPTIONS"));
    assert_eq!(
        preflight.header("access-control-allow-headers"),
        Some("Content-Type,X-Amz-Date,Authorization,X-Api-Key,X-Amz-Security-Token")
    );
    assert_eq!(preflight.header("access-control-max-age"), Some("600"));
    // A route without CORS gets no preflight answer.
    let r = http("OPTIONS", &server.url("/prod/nothing"), &[("Origin", "https://app.example")], "").await;
    assert_eq!(r.status, 403);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_key_fills_the_identity_and_a_disabled_key_is_refused() {
    let rest = format!(
        "[apis.A.stages.s]\n[usage_plans.P]\nstages = [\"A/s\"]\n{}{}",
        key("one", KEY_ONE_SHA, "\"P\"", ""),
        key("off", KEY_TWO_SHA, "\"P\"", "enabled = false"),
    );
    let server = TestServer::start(&mock_api("api_key_required = true", &rest));
    let r = get_key(&server.url("/s/m"), KEY_ONE).await;
    assert_eq!(r.status, 200, "{}", r.text());
    // A declared key's id comes from its name (the same on every node),
    // never from its value: SHA-256 of "wasmgate api key one", 10 digits.
    assert_eq!(r.json(), json!({"keyId": "3d03319340", "key": KEY_ONE}));
    let r = get_key(&server.url("/s/m"), KEY_TWO).await;
    assert_gateway_error(&r, 403, "Forbidden", "ForbiddenException");
    // The header's name is case-insensitive, as HTTP's are.
    let r = get_with(&server.url("/s/m"), &[("X-API-Key", KEY_ONE)]).await;
    assert_eq!(r.status, 200, "{}", r.text());
}

/// Sends `GET url` with `key` until `deadline`, or until a call is refused
/// (throttled) when `until_refused`; returns the number admitted, and
/// checks every refusal is THROTTLED.
async fn admitted_until_refused(url: &str, key: &str, max: usize) -> usize {
    for i in 0..max {
        let r = get_key(url, key).await;
        if r.status == 429 {
            assert_gateway_error(&r, 429, "Too Many Requests", "TooManyRequestsException");
            return i;
        }
        assert_eq!(r.status, 200, "{}", r.text());
    }
    max
}

#[tokio::test(flavor = "multi_thread")]
async fn a_plan_throttles_each_key_its_burst_then_its_rate() {
    let rest = format!(
        "[apis.A.stages.s]\n[usage_plans.P]\nstages = [\"A/s\"]\nthrottle = {{ rate = 4, burst = 5 }}\n\
         [usage_plans.P.method_throttle.\"A/s\"]\n\"/n/GET\" = {{ rate = 0.001, burst = 2 }}\n{}{}",
        key("one", KEY_ONE_SHA, "\"P\"", ""),
        key("two", KEY_TWO_SHA, "\"P\"", ""),
    );
    let server = TestServer::start(&mock_api("api_key_required = true", &rest));
    let url = server.url("/s/m");
    // The burst, then refusals: at most what the rate refilled meanwhile.
    let started = Instant::now();
    let admitted = admitted_until_refused(&url, KEY_ONE, 100).await;
    let elapsed = started.elapsed().as_secs_f64();
    assert!(admitted >= 5, "the burst of 5 is admitted: {admitted}");
    assert!(admitted as f64 <= 5.0 + 4.0 * elapsed + 1.0, "{admitted} admitted in {elapsed:.3} s");
    // Each key has its own bucket.
    assert!(admitted_until_refused(&url, KEY_TWO, 5).await == 5);
    // The rate refills the bucket: a call is admitted again, and then the
    // admitted calls over a window keep to the rate.
    let deadline = Instant::now() + Duration::from_secs(10);
    while get_key(&url, KEY_ONE).await.status == 429 {
        assert!(Instant::now() < deadline, "the bucket never refilled");
    }
    let window = Instant::now();
    let mut admitted = 0;
    while window.elapsed() < Duration::from_millis(1500) {
        if get_key(&url, KEY_ONE).await.status == 200 {
            admitted += 1;
        }
    }
    let elapsed = window.elapsed().as_secs_f64();
    assert!(admitted as f64 <= 4.0 * elapsed + 1.0, "{admitted} admitted in {elapsed:.3} s at 4/s");
    // A method's own throttle in the plan.
    assert_eq!(admitted_until_refused(&server.url("/s/n"), KEY_TWO, 10).await, 2);
}

/// A key's bucket keeps its tokens while the catalog changes around it (a
/// key created, a plan's description edited), and a plan whose throttle
/// changes throttles by the new one at once, from a full bucket.
#[tokio::test(flavor = "multi_thread")]
async fn a_bucket_outlives_catalog_changes_until_its_throttle_changes() {
    let server = TestServer::start(&mock_api("api_key_required = true", "[apis.A.stages.s]\n"));
    let url = server.url("/s/m");
    let plan = json!({ "name": "P", "stages": ["A/s"], "throttle": { "rate": 0.001, "burst": 2 } });
    assert_eq!(server.json(Method::POST, "/v1/usageplans", plan).await.status, 201);
    let one = json!({ "name": "one", "plans": ["P"], "value": KEY_ONE });
    assert_eq!(server.json(Method::POST, "/v1/apikeys", one).await.status, 201);
    assert_eq!(admitted_until_refused(&url, KEY_ONE, 10).await, 2);

    let two = json!({ "name": "two", "plans": ["P"], "value": KEY_TWO });
    assert_eq!(server.json(Method::POST, "/v1/apikeys", two).await.status, 201);
    let r = server.json(Method::PATCH, "/v1/usageplans/P", json!({ "description": "edited" })).await;
    assert_eq!(r.status, 200);
    assert_eq!(admitted_until_refused(&url, KEY_ONE, 10).await, 0, "the bucket kept its state");
    assert_eq!(admitted_until_refused(&url, KEY_TWO, 10).await, 2, "each key has its own");

    let throttle = json!({ "throttle": { "rate": 0.001, "burst": 3 } });
    assert_eq!(server.json(Method::PATCH, "/v1/usageplans/P", throttle).await.status, 200);
    assert_eq!(admitted_until_refused(&url, KEY_ONE, 10).await, 3, "the new burst, from a full bucket");
}

#[tokio::test(flavor = "multi_thread")]
async fn stage_and_method_throttles_hold_for_every_caller() {
    let rest = "[apis.A.stages.s]\nthrottle = { rate = 0.001, burst = 2 }\n\
                [apis.A.stages.s.methods.\"/n/GET\"]\nthrottle = { rate = 0.001, burst = 4 }\n";
    let server = TestServer::start(&mock_api("", rest));
    assert_eq!(admitted_until_refused(&server.url("/s/m"), "", 10).await, 2);
    assert_eq!(admitted_until_refused(&server.url("/s/n"), "", 10).await, 4);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_quota_holds_across_a_restart_and_starts_again_with_its_period() {
    let rest = format!(
        "[apis.A.stages.s]\n[usage_plans.P]\nstages = [\"A/s\"]\nquota = {{ limit = 3, period = \"DAY\" }}\n{}",
        key("one", KEY_ONE_SHA, "\"P\"", ""),
    );
    let mut server = TestServer::start(&mock_api("api_key_required = true", &rest));
    let url = || server.url("/s/m");
    for _ in 0..3 {
        assert_eq!(get_key(&url(), KEY_ONE).await.status, 200);
    }
    assert_gateway_error(&get_key(&url(), KEY_ONE).await, 429, "Limit Exceeded", "LimitExceededException");
    // Stopped and started again: every call is still counted.
    server.restart_gracefully();
    let url = server.url("/s/m");
    assert_gateway_error(&get_key(&url, KEY_ONE).await, 429, "Limit Exceeded", "LimitExceededException");
    // The next day (the clock moved on): a new period.
    server.env.push(("WASMGATE_CLOCK_OFFSET_SECS".into(), "86400".into()));
    server.restart_gracefully();
    let url = server.url("/s/m");
    for _ in 0..3 {
        assert_eq!(get_key(&url, KEY_ONE).await.status, 200);
    }
    assert_gateway_error(&get_key(&url, KEY_ONE).await, 429, "Limit Exceeded", "LimitExceededException");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_throttled_call_uses_no_quota() {
    let rest = format!(
        "[apis.A.stages.s]\nthrottle = {{ rate = 0.001, burst = 2 }}\n\
         [usage_plans.P]\nstages = [\"A/s\"]\nquota = {{ limit = 3, period = \"WEEK\" }}\n{}",
        key("one", KEY_ONE_SHA, "\"P\"", ""),
    );
    let mut server = TestServer::start(&mock_api("api_key_required = true", &rest));
    // Two admitted; three throttled (by the stage, after the key's checks).
    assert_eq!(admitted_until_refused(&server.url("/s/m"), KEY_ONE, 2).await, 2);
    for _ in 0..3 {
        let r = get_key(&server.url("/s/m"), KEY_ONE).await;
        assert_gateway_error(&r, 429, "Too Many Requests", "TooManyRequestsException");
    }
    // A restart fills the stage's bucket again; the quota has one call left.
    server.restart_gracefully();
    assert_eq!(get_key(&server.url("/s/m"), KEY_ONE).await.status, 200);
    assert_gateway_error(&get_key(&server.url("/s/m"), KEY_ONE).await, 429, "Limit Exceeded", "LimitExceededException");
}

/// An API `C` whose `GET /c` calls the counter guest (`{"count": N}`, N
/// growing with each call the function serves), key required, plan `P` on
/// stage `s` whose settings are `stage`.
fn counter_api(stage: &str, method_extra: &str) -> String {
    format!(
        r#"
[functions.Counter]
guest = "counter"

[apis.C.resources."/c".GET]
api_key_required = true
{method_extra}
[apis.C.resources."/c".GET.integration]
type = "function"
function = "Counter"
cache_key_parameters = ["method.request.querystring.type", "method.request.header.x-tenant"]

[apis.C.resources."/c/{{id}}".GET]
api_key_required = true
[apis.C.resources."/c/{{id}}".GET.integration]
type = "function"
function = "Counter"

[apis.C.resources."/c".POST]
api_key_required = true
[apis.C.resources."/c".POST.integration]
type = "function"
function = "Counter"

[apis.C.stages.s]
{stage}

[usage_plans.P]
stages = ["C/s"]
{}{}"#,
        key("one", KEY_ONE_SHA, "\"P\"", ""),
        key("inv", KEY_INVALIDATOR_SHA, "\"P\"", "invalidate_cache = true"),
    )
}

async fn count(url: &str, headers: &[(&str, &str)]) -> (u64, HttpResponse) {
    let mut all = headers.to_vec();
    if !headers.iter().any(|(k, _)| *k == "x-api-key") {
        all.push(("x-api-key", KEY_ONE));
    }
    let r = get_with(url, &all).await;
    assert_eq!(r.status, 200, "{}", r.text());
    (r.json()["count"].as_u64().expect("a count"), r)
}

async fn cache_stats(server: &TestServer) -> Value {
    let status = server.admin.get_json("/v1/status").await.expect("status");
    let stages = status["policies"]["cache"].as_array().cloned().unwrap_or_default();
    stages.into_iter().find(|s| s["stage"] == "C/s").unwrap_or(Value::Null)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cache_answers_without_calling_the_function() {
    let server = TestServer::start(&counter_api("cache = { ttl = 300 }", ""));
    let url = |q: &str| server.url(&format!("/s/c{q}"));
    assert_eq!(count(&url("?type=a&x=1"), &[]).await.0, 1);
    // A parameter outside the key is ignored; one in it is a new entry.
    assert_eq!(count(&url("?type=a&x=2"), &[]).await.0, 1);
    assert_eq!(count(&url("?type=b"), &[]).await.0, 2);
    assert_eq!(count(&url("?type=a"), &[("x-tenant", "t1")]).await.0, 3);
    assert_eq!(count(&url("?type=a&x=3"), &[]).await.0, 1);
    // Path parameters are always in the key.
    assert_eq!(count(&server.url("/s/c/1"), &[]).await.0, 4);
    assert_eq!(count(&server.url("/s/c/2"), &[]).await.0, 5);
    assert_eq!(count(&server.url("/s/c/1"), &[]).await.0, 4);
    // Only GETs are cached.
    let post_url = server.url("/s/c");
    let first = http("POST", &post_url, &[("x-api-key", KEY_ONE)], "{}").await.json()["count"].as_u64();
    let second = http("POST", &post_url, &[("x-api-key", KEY_ONE)], "{}").await.json()["count"].as_u64();
    assert_ne!(first, second);
    // A cached answer carries its own request id.
    let (_, a) = count(&url("?type=a"), &[]).await;
    let (_, b) = count(&url("?type=a"), &[]).await;
    assert_ne!(a.header("x-amzn-requestid"), b.header("x-amzn-requestid"));

    // Cache-Control: max-age=0 from a key without the right: served from the
    // cache, with a warning (SUCCEED_WITH_RESPONSE_HEADER, the default).
    let (n, r) = count(&url("?type=a"), &[("cache-control", "max-age=0")]).await;
    assert_eq!(n, 1);
    assert!(r.header("warning").is_some_and(|w| w.contains("max-age=0")), "{:?}", r.headers);
    // From a key that may invalidate: fetched again, and the entry replaced.
    let (n, r) = count(&url("?type=a"), &[("x-api-key", KEY_INVALIDATOR), ("cache-control", "max-age=0")]).await;
    assert!(n > 5, "a fresh call: {n}");
    assert!(r.header("warning").is_none());
    assert_eq!(count(&url("?type=a"), &[]).await.0, n);

    let stats = cache_stats(&server).await;
    assert!(stats["hits"].as_u64() >= Some(6) && stats["misses"].as_u64() >= Some(5), "{stats}");

    // Flushed from the admin API: every entry goes.
    let r = server.json(Method::DELETE, "/v1/apis/C/stages/s/cache", json!({})).await;
    assert!(r.status.is_success(), "{}", String::from_utf8_lossy(&r.body));
    assert!(count(&url("?type=a"), &[]).await.0 > n);
}

#[tokio::test(flavor = "multi_thread")]
async fn cached_entries_expire_and_methods_choose() {
    let server = TestServer::start(&counter_api(
        "cache = { ttl = 1, unauthorized_strategy = \"FAIL_WITH_403\" }\n\
         [apis.C.stages.s.methods.\"/c/{id}/GET\"]\ncaching = false\n",
        "",
    ));
    let url = server.url("/s/c?type=t");
    let (first, _) = count(&url, &[]).await;
    // Within the TTL the entry answers; after it, the function does. (Polled
    // until the answer changes: the TTL is the only thing that changes it.)
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (n, _) = count(&url, &[]).await;
        if n != first {
            break;
        }
        assert!(Instant::now() < deadline, "the entry never expired");
    }
    // A method opted out of the stage's cache.
    let a = count(&server.url("/s/c/1"), &[]).await.0;
    assert_ne!(count(&server.url("/s/c/1"), &[]).await.0, a);
    // FAIL_WITH_403 for an unauthorised invalidation.
    let r = get_with(&url, &[("x-api-key", KEY_ONE), ("cache-control", "max-age=0")]).await;
    assert_eq!(r.status, 403, "{}", r.text());
    let r = get_with(&url, &[("x-api-key", KEY_INVALIDATOR), ("cache-control", "max-age=0")]).await;
    assert_eq!(r.status, 200, "{}", r.text());
}

#[tokio::test(flavor = "multi_thread")]
async fn responses_over_a_megabyte_are_not_cached() {
    let config = r#"
[functions.Big]
guest = "sleepy"

[apis.B.resources."/big".GET.integration]
type = "function"
function = "Big"
request_templates = { "application/json" = '{"bytes": 1100000}' }

[apis.B.resources."/small".GET.integration]
type = "function"
function = "Big"
request_templates = { "application/json" = '{"bytes": 1000}' }

[apis.B.stages.s]
cache = { ttl = 300, unauthorized_strategy = "SUCCEED_WITHOUT_RESPONSE_HEADER" }
"#;
    let server = TestServer::start(config);
    for _ in 0..2 {
        assert_eq!(get(&server.url("/s/big")).await.status, 200);
        assert_eq!(get(&server.url("/s/small")).await.status, 200);
    }
    let status = server.admin.get_json("/v1/status").await.expect("status");
    let stats = status["policies"]["cache"].as_array().and_then(|a| a.iter().find(|s| s["stage"] == "B/s").cloned());
    assert_eq!(stats, Some(json!({"stage": "B/s", "hits": 1, "misses": 3})));
    // Without the right to invalidate and SUCCEED_WITHOUT_RESPONSE_HEADER: no warning.
    let r = get_with(&server.url("/s/small"), &[("cache-control", "max-age=0")]).await;
    assert!(r.header("warning").is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn cors_follows_its_settings() {
    let config = format!(
        "{}\n[apis.A.cors.\"/m\"]\nallow_origins = [\"https://app.example\"]\nallow_credentials = true\n\
         expose_headers = [\"x-amzn-requestid\"]\n",
        mock_api("api_key_required = true", "[apis.A.stages.s]\n[usage_plans.P]\nstages = [\"A/s\"]\n")
    );
    let server = TestServer::start(&config);
    let url = server.url("/s/m");
    let r =
        http("OPTIONS", &url, &[("Origin", "https://app.example"), ("Access-Control-Request-Method", "GET")], "").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("access-control-allow-origin"), Some("https://app.example"));
    assert_eq!(r.header("access-control-allow-credentials"), Some("true"));
    assert_eq!(r.header("vary"), Some("Origin"));
    // Another origin is not allowed.
    let r = http("OPTIONS", &url, &[("Origin", "https://evil.example")], "").await;
    assert_eq!(r.header("access-control-allow-origin"), None);
    // The gateway's own error (no key) carries the allow-origin header.
    let r = get_with(&url, &[("Origin", "https://app.example")]).await;
    assert_eq!(r.status, 403);
    assert_eq!(r.header("access-control-allow-origin"), Some("https://app.example"));
    assert_eq!(r.header("access-control-expose-headers"), Some("x-amzn-requestid"));
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_policy_settings_are_errors_with_their_line() {
    let cases = [
        ("[apis.A.stages.s]\nthrottle = { rate = 0, burst = 1 }\n", "apis.A.stages.s.throttle"),
        ("[apis.A.stages.s]\ncache = { ttl = 4000 }\n", "apis.A.stages.s.cache.ttl"),
        ("[apis.A.stages.s]\ncache = { unauthorized_strategy = \"IGNORE\" }\n", "unauthorized_strategy"),
        ("[apis.A.stages.s.methods.\"/x/GET\"]\ncaching = true\n", "is not a method of this API"),
        ("[apis.A.stages.s]\n[usage_plans.P]\nstages = [\"A/t\"]\n", "usage_plans.P.stages"),
        (
            "[apis.A.stages.s]\n[usage_plans.P]\nquota = { limit = 5, period = \"YEAR\" }\n",
            "usage_plans.P.quota.period",
        ),
        ("[apis.A.stages.s]\n[api_keys.k]\nplans = []\n", "never written in the file"),
        ("[apis.A.stages.s]\n[api_keys.k]\nvalue_env = \"WASMGATE_TEST_UNSET_KEY\"\n", "is not set"),
        ("[apis.A.stages.s]\n[api_keys.k]\nvalue_sha256 = \"abc\"\n", "64 hex digits"),
        ("[apis.A.stages.s]\n[apis.A.cors.\"/zzz\"]\n", "no resource"),
        ("[apis.A.stages.s]\naccess_log = { format = \"$context.status\" }\n", "API Gateway requires one"),
        (
            "[apis.A.stages.s]\naccess_log = { format = \"CLF\", file = \"../x.log\" }\n",
            "apis.A.stages.s.access_log.file",
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    for (rest, expected) in cases {
        let path = dir.path().join("gateway.toml");
        std::fs::write(&path, mock_api("", rest)).unwrap();
        let out = std::process::Command::new(crate::common::BIN)
            .args(["validate", "--config"])
            .arg(&path)
            .output()
            .expect("run validate");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{rest}: accepted");
        assert!(stderr.contains(expected), "{rest}: {stderr}");
        assert!(stderr.contains("gateway.toml:"), "names the line: {stderr}");
    }
}
