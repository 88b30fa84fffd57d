//! The gateway's own cost per request (criterion): `cargo bench --bench gateway`.
//!
//! The bundled `gateway.toml` served from a temporary data directory, and
//! requests handed straight to `Gateway::dispatch` — routing, the stage's
//! pipeline, the function call and the integration response, without the
//! socket and HTTP parsing that the load benchmark (`benches/load.sh`) adds.
//! Next to them, the items function called directly (the guest's own share).

use std::net::{IpAddr, Ipv4Addr};
use std::time::SystemTime;

use criterion::{Criterion, criterion_group, criterion_main};
use wasmgate_host::gateway::pipeline::Trace;
use wasmgate_host::gateway::request::{GatewayRequest, RequestIds};

fn request(path: &str) -> GatewayRequest {
    GatewayRequest {
        ids: RequestIds::of(
            "c0ffee00-0000-4000-8000-000000000000",
            "abcdefghij",
            "Root=1-00000000-000000000000000000000000",
        ),
        method: hyper::Method::GET,
        full_path: path.into(),
        path_at: 0,
        raw_query: None,
        headers: [("host", "localhost:8080"), ("accept", "*/*")].into_iter().collect(),
        body: bytes::Bytes::new(),
        source_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
        host: "localhost".into(),
        protocol: "HTTP/1.1",
        received: std::time::Instant::now(),
        time: SystemTime::now(),
    }
}

fn gateway(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");
    let dir = tempfile::tempdir().expect("temporary directory");
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(root.join("gateway.toml")).expect("bundled gateway.toml");
    // The seed's API without its stage policies (keys, throttles, the
    // cache, CORS: `benches/policies.rs` measures those), so that these
    // figures keep measuring the same work as their history.
    let policies = ["api_key_required", "throttle =", "cache =", "cors ="];
    let text = text
        .lines()
        .filter(|l| !policies.iter().any(|p| l.trim_start().starts_with(p)))
        .map(|l| match l.split_once('=').map(|(k, _)| k.trim()) {
            Some("listen") => "listen = \"127.0.0.1:0\"".to_string(),
            Some("admin_listen") => "admin_listen = \"127.0.0.1:0\"".to_string(),
            Some("data_dir") => format!("data_dir = {:?}", dir.path().join("data")),
            _ => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n");
    let config = wasmgate_host::config::parse(&text, &root.join("gateway.toml")).expect("valid gateway.toml");
    let server = rt.block_on(wasmgate_host::server::start(&config)).expect("server starts");
    let gw = server.gateway.clone();

    let mut group = c.benchmark_group("gateway");
    for (name, path) in [
        ("GET /prod/items (function)", "/prod/items"),
        ("GET /dev/items/2 (function, request template)", "/dev/items/2"),
        ("GET /dev/items/9 (function error → 404)", "/dev/items/9"),
        ("GET /prod/nothing (403)", "/prod/nothing"),
    ] {
        let template = request(path);
        let resp = rt.block_on(gw.dispatch(&mut template.clone(), &mut Trace::default(), true));
        let expected = if path == "/prod/nothing" {
            403
        } else if path.ends_with('9') {
            404
        } else {
            200
        };
        assert_eq!(resp.status, expected, "{path}");
        group.bench_function(name, |b| {
            b.iter(|| {
                let mut req = template.clone();
                rt.block_on(gw.dispatch(&mut req, &mut Trace::default(), true)).status
            })
        });
    }
    let functions = server.functions.clone();
    group.bench_function("ItemsFunction:prod alone (the guest's share)", |b| {
        b.iter(|| rt.block_on(functions.invoke("ItemsFunction:prod", "{}", "bench", false)).expect("invoke").version)
    });
    group.finish();
    rt.block_on(server.shutdown());
}

/// A proxy response's headers merged into one line per value: the time per
/// header stays the same from 100 headers to 10,000 (a merge that looked up
/// each name among those before it grew with the square of their number).
fn proxy_headers(c: &mut Criterion) {
    let mut group = c.benchmark_group("proxy response headers");
    for n in [100, 1_000, 10_000] {
        let headers: serde_json::Map<String, serde_json::Value> =
            (0..n).map(|i| (format!("X-Header-{i}"), serde_json::Value::String(i.to_string()))).collect();
        let multi: serde_json::Map<String, serde_json::Value> =
            (0..n).map(|i| (format!("x-header-{i}"), serde_json::json!(["first"]))).collect();
        let output = serde_json::json!({"statusCode": 200, "headers": headers, "multiValueHeaders": multi}).to_string();
        group.throughput(criterion::Throughput::Elements(n as u64));
        group.bench_function(format!("{n} headers"), |b| {
            b.iter(|| wasmgate_host::gateway::proxy::parse_response(&output, false).expect("valid").headers.len())
        });
    }
    group.finish();
}

criterion_group!(benches, gateway, proxy_headers);
criterion_main!(benches);
