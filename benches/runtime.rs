//! Cold, warm and hot starts of the seed's items function (criterion).
//!
//! `cargo bench --bench runtime`. The same measurements as `wasmgate bench`,
//! through the same code as a real invocation.

use criterion::{Criterion, criterion_group, criterion_main};
use wasmgate_host::runtime::FunctionConfig;
use wasmgate_host::runtime::bench::Harness;

fn starts(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");
    let wasm = wasmgate_host::guests::get("items").expect("items guest").to_vec();
    let harness = rt
        .block_on(Harness::new(wasm, FunctionConfig::default(), r#"{"ID": 1}"#, None))
        .expect("load the items function");

    let mut group = c.benchmark_group("items");
    group.bench_function("hot (reused instance)", |b| b.iter(|| rt.block_on(harness.hot_once()).expect("call")));
    group.bench_function("warm (instantiate + call + drop)", |b| {
        b.iter(|| rt.block_on(harness.warm_once()).expect("call"))
    });
    group.bench_function("cold (cached artifact)", |b| {
        b.iter(|| rt.block_on(harness.cold_from_artifact_once()).expect("call"))
    });
    group.sample_size(10);
    group.bench_function("cold (compile)", |b| b.iter(|| harness.compile_once().expect("compile")));
    group.finish();
}

criterion_group!(benches, starts);
criterion_main!(benches);
