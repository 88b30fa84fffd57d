//! Restart time with many versions: publishes N versions of the items
//! function, each with distinct code (a custom section makes every
//! component's hash, and so its artifact, different), into a fresh data
//! directory, then measures how long a server
//! start takes until it is ready to serve (registry opened, every version
//! loaded from its cached artifact, listeners bound), and checks that the
//! restart compiled nothing.
//!
//! `cargo bench --bench restart` (N = 100; set `WASMGATE_BENCH_VERSIONS`).

use std::time::Instant;

use wasmgate_host::config;

fn main() {
    let versions: usize = std::env::var("WASMGATE_BENCH_VERSIONS").ok().and_then(|v| v.parse().ok()).unwrap_or(100);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("gateway.toml");
    let text = "[server]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\ndata_dir = \"data\"\n\n[functions.ItemsFunction]\nguest = \"items\"\n";
    std::fs::write(&path, text).expect("write config");
    let config = config::load(&path).expect("config");

    rt.block_on(async {
        let server = wasmgate_host::server::start(&config).await.expect("first start");
        let functions = server.functions.clone();
        let items = wasmgate_host::guests::get("items").expect("items guest");
        for i in 0..versions {
            functions.put_code("ItemsFunction", with_custom_section(items, i), None, None).await.expect("upload");
            functions.publish("ItemsFunction", format!("v{i}"), None).await.expect("publish");
        }
        server.shutdown().await;
    });

    let mut times = Vec::new();
    for _ in 0..5 {
        let (elapsed, stats) = rt.block_on(async {
            let started = Instant::now();
            let server = wasmgate_host::server::start(&config).await.expect("restart");
            let elapsed = started.elapsed();
            let stats = server.functions.runtime().stats();
            server.shutdown().await;
            (elapsed, stats)
        });
        assert_eq!(stats.compiles, 0, "a restart must not compile");
        assert_eq!(stats.loaded_versions, versions + 1);
        times.push(elapsed);
    }
    times.sort();
    println!(
        "restart with {versions} versions + $LATEST: ready in {:.1} ms (median of 5; min {:.1} ms, max {:.1} ms), 0 compiles",
        times[2].as_secs_f64() * 1e3,
        times[0].as_secs_f64() * 1e3,
        times[4].as_secs_f64() * 1e3
    );
}

/// The component with a custom section appended: same behaviour, other hash.
fn with_custom_section(wasm: &[u8], n: usize) -> Vec<u8> {
    let name = b"wasmgate-bench";
    let payload = n.to_le_bytes();
    let size = 1 + name.len() + payload.len();
    assert!(size < 128, "one-byte LEB128 sizes");
    let mut out = wasm.to_vec();
    out.extend_from_slice(&[0, size as u8, name.len() as u8]);
    out.extend_from_slice(name);
    out.extend_from_slice(&payload);
    out
}
