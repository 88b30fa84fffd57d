//! Two gateway processes sharing one real `redis-server` (`[server]
//! shared_store`): quotas, throttles and the cache hold across both, and
//! they go on serving while Redis is away.

use serde_json::{Value, json};

use crate::common::{HttpResponse, TestServer, http};

#[path = "../../host/tests/support/redis_server.rs"]
mod redis_server;
use redis_server::RedisServer;

const KEY: &str = "SharedStoreTestKey000000001";
const KEY_SHA: &str = "2f80d8abf3eb5cf5a07f467095248fdea2e0bddda1f59a40f7b523d626e897e2";

/// API `A` on stage `s`: `GET /q` (key, quota) and `GET /t` (key, its own
/// throttle in the plan), mock integrations; `GET /c` calls the counter
/// guest, cached by the stage.
fn config() -> String {
    format!(
        r#"
[functions.Counter]
guest = "counter"

[apis.A.resources."/q".GET]
api_key_required = true
[apis.A.resources."/q".GET.integration]
type = "mock"
request_templates = {{ "application/json" = '{{"statusCode": 200}}' }}
responses = [{{ status = 200, templates = {{ "application/json" = '{{"ok": true}}' }} }}]

[apis.A.resources."/t".GET]
api_key_required = true
[apis.A.resources."/t".GET.integration]
type = "mock"
request_templates = {{ "application/json" = '{{"statusCode": 200}}' }}
responses = [{{ status = 200, templates = {{ "application/json" = '{{"ok": true}}' }} }}]

[apis.A.resources."/c".GET.integration]
type = "function"
function = "Counter"

[apis.A.stages.s]
cache = {{ ttl = 300 }}
[apis.A.stages.s.methods."/q/GET"]
caching = false
[apis.A.stages.s.methods."/t/GET"]
caching = false

[usage_plans.P]
stages = ["A/s"]
quota = {{ limit = 20, period = "DAY" }}
[usage_plans.P.method_throttle."A/s"]
"/t/GET" = {{ rate = 0.001, burst = 7 }}

[api_keys.shared]
plans = ["P"]
value_sha256 = "{KEY_SHA}"
"#
    )
}

fn nodes(redis: &RedisServer) -> (TestServer, TestServer) {
    let server = format!("shared_store = \"{}\"\n", redis.url());
    (TestServer::start_with(&server, &config()), TestServer::start_with(&server, &config()))
}

async fn call(node: &TestServer, path: &str) -> HttpResponse {
    http("GET", &node.url(path), &[("x-api-key", KEY)], "").await
}

/// Sends `n` calls of `path`, alternating between the nodes, all at once;
/// returns how many each status got.
async fn burst(a: &TestServer, b: &TestServer, path: &str, n: usize) -> (usize, usize) {
    let calls = (0..n).map(|i| {
        let url = if i % 2 == 0 { a.url(path) } else { b.url(path) };
        tokio::spawn(async move { http("GET", &url, &[("x-api-key", KEY)], "").await })
    });
    let mut admitted = 0;
    let mut refused = 0;
    for call in calls.collect::<Vec<_>>() {
        let r = call.await.expect("a call");
        match r.status {
            200 => admitted += 1,
            429 => refused += 1,
            other => panic!("{other}: {}", r.text()),
        }
    }
    (admitted, refused)
}

/// The usage report of plan `P` for today, from `node`.
async fn used_today(node: &TestServer) -> u64 {
    let report = node.admin.get_json("/v1/usageplans/P/usage").await.expect("usage");
    let days = report["items"].as_object().and_then(|items| items.values().next()).cloned().unwrap_or(Value::Null);
    days.as_array().and_then(|d| d.last()).and_then(|d| d[0].as_u64()).unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread")]
async fn two_nodes_share_quota_throttle_and_cache() {
    let redis = RedisServer::start();
    let (a, b) = nodes(&redis);
    // One bucket for both nodes: its burst of 7 of 20 calls made at once
    // (a rate of one call in 1000 s refills none during the test). The 13
    // throttled calls use no quota.
    let (admitted, refused) = burst(&a, &b, "/s/t", 20).await;
    assert_eq!((admitted, refused), (7, 13));
    assert_eq!(call(&a, "/s/t").await.json(), json!({"message": "Too Many Requests"}));
    // A quota of 20 over both nodes: 13 left, and exactly 13 of 40 calls
    // made at once are admitted.
    let (admitted, refused) = burst(&a, &b, "/s/q", 40).await;
    assert_eq!((admitted, refused), (13, 27));
    assert_eq!(call(&b, "/s/q").await.json(), json!({"message": "Limit Exceeded"}));
    assert_eq!(used_today(&a).await, 20);
    assert_eq!(used_today(&b).await, 20);

    // A response cached by one node is a hit on the other: B's function is
    // never called.
    let first = http("GET", &a.url("/s/c"), &[], "").await;
    let second = http("GET", &b.url("/s/c"), &[], "").await;
    assert_eq!(first.status, 200);
    assert_eq!(first.json(), second.json());
    let stats = |s: Value| s["policies"]["cache"][0].clone();
    assert_eq!(stats(b.admin.get_json("/v1/status").await.unwrap()), json!({"stage": "A/s", "hits": 1, "misses": 0}));
    assert_eq!(stats(a.admin.get_json("/v1/status").await.unwrap()), json!({"stage": "A/s", "hits": 0, "misses": 1}));
    assert_eq!(b.admin.get_json("/v1/status").await.unwrap()["policies"]["store"], "redis");
    // The stage's capacity_mb is Redis's to bound, and the log says so.
    a.log_with(0, "capacity_mb is not applied with a shared store");
}

#[tokio::test(flavor = "multi_thread")]
async fn nodes_go_on_while_redis_is_away_and_catch_up_when_it_returns() {
    let mut redis = RedisServer::start();
    let (a, b) = nodes(&redis);
    // Spend the shared throttle's burst (7 calls of the quota).
    assert_eq!(burst(&a, &b, "/s/t", 10).await, (7, 3));
    redis.kill();
    // Throttles fail open (the burst is spent, yet calls are admitted) and
    // quotas are counted by each node alone: 20 on A.
    let (admitted, refused) = burst(&a, &a, "/s/t", 25).await;
    assert_eq!((admitted, refused), (20, 5), "A's own count of the quota refuses past 20");
    assert_eq!(call(&b, "/s/q").await.status, 200);
    // The log is written behind the requests: wait for the line.
    let log = a.log_with(0, "shared store unreachable");
    assert_eq!(log.matches("shared store unreachable").count(), 1, "logged once");
    // Redis returns (empty): each node adds what it counted meanwhile.
    redis.launch();
    a.log_with(0, "shared store reachable again");
    b.log_with(0, "shared store reachable again");
    assert_eq!(used_today(&a).await, 20 + 1, "A's 20 and B's 1 (the empty Redis lost the first 7)");
    assert_eq!(used_today(&b).await, 21);
    // And the quota is back to being shared: spent, on both nodes.
    assert_eq!(call(&a, "/s/q").await.status, 429);
    assert_eq!(call(&b, "/s/q").await.status, 429);
}
