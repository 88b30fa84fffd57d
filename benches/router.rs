//! The router with thousands of routes (criterion): `cargo bench --bench router`.
//!
//! 5,000 resources of mixed shapes — literal paths, `{param}` segments and
//! greedy `{proxy+}` — and matches of a literal path, a parameterised path, a
//! fall-back to a greedy resource, and a miss.

use criterion::{Criterion, criterion_group, criterion_main};
use wasmgate_host::gateway::router::Router;

fn routes(n: usize) -> Vec<(String, String, usize)> {
    let mut routes = Vec::new();
    for i in 0..n {
        let path = match i % 4 {
            0 => format!("/service{i}/items"),
            1 => format!("/service{i}/items/{{id}}"),
            2 => format!("/service{i}/items/{{id}}/parts/{{part}}"),
            _ => format!("/service{i}/files/{{path+}}"),
        };
        routes.push((path, "GET".to_string(), i));
    }
    routes.push(("/{proxy+}".into(), "ANY".into(), n));
    routes
}

fn router(c: &mut Criterion) {
    let router = Router::new(routes(5000)).expect("valid routes");
    let mut group = c.benchmark_group("router (5000 resources)");
    for (name, method, path) in [
        ("literal", "GET", "/service2400/items"),
        ("params", "GET", "/service2402/items/42/parts/7"),
        ("greedy", "GET", "/service2403/files/a/b/c.txt"),
        ("fallback to /{proxy+}", "POST", "/service2400/items"),
        ("miss", "TRACE", "/nothing/here"),
    ] {
        group.bench_function(name, |b| b.iter(|| std::hint::black_box(router.find(method, path)).is_some()));
    }
    group.finish();
    c.bench_function("router build (5000 resources)", |b| b.iter(|| Router::new(routes(5000)).expect("valid")));
}

criterion_group!(benches, router);
criterion_main!(benches);
