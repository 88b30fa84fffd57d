//! The router (`gateway/router.rs`) against a naive model of API Gateway's
//! matching.
//!
//! Random sets of routes (literal, `{param}` and `{proxy+}` parts, methods
//! and `ANY`, some invalid) are built; a set the router refuses must be
//! refused with an error, not a panic. Each accepted set is matched against
//! paths made from its own routes (parameters filled in, trailing and
//! doubled slashes), paths of random parts, and any text, with every
//! method. Properties:
//!
//! * matching never panics;
//! * the match is the model's: of all routes that match the path and the
//!   method, the one whose parts rank first, part by part (literal, then
//!   `{param}`, then `{proxy+}`), a specific method before `ANY` — with its
//!   resource path and its parameters;
//! * a route of literal parts matches its own path (with its method);
//! * a `{param}` captures its segment, a `{proxy+}` the rest of the path.

use std::sync::atomic::{AtomicU64, Ordering};

use proptest::prelude::*;
use wasmgate_host::gateway::router::Router;

use crate::{Target, fuzz};

const ANY_METHODS: &[&str] = &["DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT"];
const METHODS: &[&str] = &["GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH", "ANY"];
const REQUEST_METHODS: &[&str] =
    &["GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH", "ANY", "TRACE", "get", ""];
/// Literal parts; the last few are invalid.
const LITERALS: &[&str] =
    &["a", "b", "items", "ITEMS", "x-y", "v1.2", "a,b", "c:d", "_", "1", "proxy", "{", "a b", "ä"];
const VALID_LITERALS: usize = 11;
/// Values for parameters, and parts of random paths.
const VALUES: &[&str] = &["a", "b", "items", "7", "x-y", "%2F", "ä", "a b", "{id}", "..", ".", "ITEMS", "proxy", "~"];

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(&'static str),
    Param(String),
    Greedy(String),
}

#[derive(Debug, Clone)]
struct Route {
    parts: Vec<Part>,
    method: &'static str,
    /// The resource path as declared (`/a/{p1}`, sometimes `/a/{p1}/` or `//a`).
    declared: String,
}

impl Route {
    /// The trie node the route lands on: its parts, spelled canonically.
    fn key(&self) -> String {
        self.parts
            .iter()
            .map(|p| match p {
                Part::Literal(l) => l.to_string(),
                Part::Param(n) => format!("{{{n}}}"),
                Part::Greedy(n) => format!("{{{n}+}}"),
            })
            .collect::<Vec<_>>()
            .join("/")
    }
}

fn part(depth: usize) -> impl Strategy<Value = Part> {
    let name = prop_oneof![
        8 => Just(format!("p{depth}")),
        1 => prop::sample::select(&["id", "ID", "proxy", "a.b", "x-y", "", "a b"][..]).prop_map(str::to_string),
    ];
    prop_oneof![
        12 => prop::sample::select(&LITERALS[..VALID_LITERALS]).prop_map(Part::Literal),
        1 => prop::sample::select(&LITERALS[VALID_LITERALS..]).prop_map(Part::Literal),
        5 => name.clone().prop_map(Part::Param),
        2 => name.prop_map(Part::Greedy),
    ]
}

fn route() -> impl Strategy<Value = Route> {
    let parts = (0usize..5).prop_flat_map(|n| (0..n).map(part).collect::<Vec<_>>());
    (parts, prop::sample::select(METHODS), 0u8..40).prop_map(|(mut parts, method, style)| {
        // A greedy part is the last (mostly: a few stay in the middle, and are refused).
        if style != 0
            && let Some(i) = parts.iter().position(|p| matches!(p, Part::Greedy(_)))
        {
            parts.truncate(i + 1);
        }
        let mut route = Route { parts, method, declared: String::new() };
        let key = route.key();
        route.declared = match style {
            1 => format!("/{key}/"),
            2 => format!("//{key}"),
            3 => key.clone(),
            _ => format!("/{key}"),
        };
        route
    })
}

/// Whether the router should take the route by itself: an absolute path of
/// valid parts, a greedy part only at the end.
fn valid(route: &Route) -> bool {
    let name_ok = |n: &str| !n.is_empty() && n.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b));
    route.declared.starts_with('/')
        && route.parts.iter().enumerate().all(|(i, p)| match p {
            Part::Literal(l) => LITERALS[..VALID_LITERALS].contains(l),
            Part::Param(n) => name_ok(n),
            Part::Greedy(n) => name_ok(n) && i + 1 == route.parts.len(),
        })
}

/// A set of routes. Mostly one the router accepts: invalid routes, routes
/// whose variable part differs from a sibling's, and repeated (resource,
/// method) pairs are left out; one set in ten keeps them all.
fn routes() -> impl Strategy<Value = Vec<Route>> {
    (prop::collection::vec(route(), 1..12), 0u8..10).prop_map(|(routes, keep_all)| {
        if keep_all == 0 {
            return routes;
        }
        let mut seen = std::collections::HashSet::new();
        // The variable part (spelled) under each prefix.
        let mut variables = std::collections::HashMap::new();
        let mut kept = Vec::new();
        'routes: for r in routes {
            if !valid(&r) || !seen.insert((r.key(), r.method)) {
                continue;
            }
            let mut prefix = String::new();
            let mut claims = Vec::new();
            for p in &r.parts {
                let spelled = match p {
                    Part::Literal(l) => l.to_string(),
                    Part::Param(n) => format!("{{{n}}}"),
                    Part::Greedy(n) => format!("{{{n}+}}"),
                };
                if !matches!(p, Part::Literal(_)) {
                    match variables.get(&prefix) {
                        Some(v) if *v != spelled => continue 'routes,
                        Some(_) => {}
                        None => claims.push((prefix.clone(), spelled.clone())),
                    }
                }
                prefix = format!("{prefix}/{spelled}");
            }
            variables.extend(claims);
            kept.push(r);
        }
        kept
    })
}

/// A request path made from a route: parameters filled with `values`.
fn path_of(route: &Route, values: &[&str], style: u8) -> String {
    let mut at = 0;
    let mut next = || {
        at += 1;
        values[at % values.len()]
    };
    let parts: Vec<String> = route
        .parts
        .iter()
        .map(|p| match p {
            Part::Literal(l) => l.to_string(),
            Part::Param(_) => next().to_string(),
            // Several segments, perhaps an empty one inside.
            Part::Greedy(_) => match style % 3 {
                0 => next().to_string(),
                1 => format!("{}/{}", next(), next()),
                _ => format!("{}//{}/{}", next(), next(), next()),
            },
        })
        .collect();
    let path = parts.join("/");
    match style % 4 {
        0 => format!("/{path}"),
        1 => format!("/{path}/"),
        2 => format!("//{path}"),
        _ => path,
    }
}

/// What the model expects: (route index of the resource's methods, method entry, params).
type Expected = (String, &'static str, Vec<(String, String)>);

/// API Gateway's matching, naively: every route tried, the best kept.
fn model(routes: &[Route], method: &str, path: &str) -> Option<Expected> {
    let trimmed = path.trim_start_matches('/');
    let trimmed = trimmed.strip_suffix('/').unwrap_or(trimmed);
    let segments: Vec<&str> = if trimmed.is_empty() { Vec::new() } else { trimmed.split('/').collect() };
    let mut best: Option<((Vec<u8>, u8), Expected)> = None;
    for route in routes {
        // `ANY` stands for the usual methods (a request's method `ANY` is none of them).
        let method_rank = match route.method {
            "ANY" if ANY_METHODS.contains(&method) => 1,
            "ANY" => continue,
            m if m == method => 0,
            _ => continue,
        };
        let mut ranks = Vec::new();
        let mut params = Vec::new();
        let mut matched = true;
        let mut greedy = false;
        for (i, part) in route.parts.iter().enumerate() {
            match part {
                Part::Greedy(name) => {
                    if i >= segments.len() {
                        matched = false;
                    } else {
                        ranks.push(2);
                        params.push((name.clone(), segments[i..].join("/")));
                    }
                    greedy = true;
                    break;
                }
                _ if i >= segments.len() => {
                    matched = false;
                    break;
                }
                Part::Literal(l) if *l == segments[i] => ranks.push(0),
                Part::Param(name) if !segments[i].is_empty() => {
                    ranks.push(1);
                    params.push((name.clone(), segments[i].to_string()));
                }
                _ => {
                    matched = false;
                    break;
                }
            }
        }
        if !matched || (!greedy && route.parts.len() != segments.len()) {
            continue;
        }
        let key = (ranks, method_rank);
        if best.as_ref().is_none_or(|(b, _)| key < *b) {
            best = Some((key, (route.key(), route.method, params)));
        }
    }
    best.map(|(_, expected)| expected)
}

#[derive(Debug, Clone)]
struct Case {
    routes: Vec<Route>,
    values: Vec<&'static str>,
    styles: Vec<u8>,
    random_paths: Vec<String>,
    methods: Vec<&'static str>,
}

fn case() -> impl Strategy<Value = Case> {
    let random_path = prop_oneof![
        3 => (prop::collection::vec(prop::sample::select(VALUES), 0..6), 0u8..4).prop_map(|(parts, style)| {
            let path = parts.join("/");
            match style {
                0 => format!("/{path}"),
                1 => format!("/{path}/"),
                2 => format!("//{path}//"),
                _ => path,
            }
        }),
        1 => "\\PC{0,24}",
        1 => "[/a{}+-]{0,12}",
    ];
    (
        routes(),
        prop::collection::vec(prop::sample::select(VALUES), 1..8),
        prop::collection::vec(0u8..12, 1..6),
        prop::collection::vec(random_path, 0..8),
        prop::collection::vec(prop::sample::select(REQUEST_METHODS), 1..4),
    )
        .prop_map(|(routes, values, styles, random_paths, methods)| Case {
            routes,
            values,
            styles,
            random_paths,
            methods,
        })
}

static BUILT: AtomicU64 = AtomicU64::new(0);
static REFUSED: AtomicU64 = AtomicU64::new(0);
static MATCHES: AtomicU64 = AtomicU64::new(0);
static LOOKUPS: AtomicU64 = AtomicU64::new(0);

#[test]
fn against_a_model() {
    let target = Target { name: "router::against_a_model", cases: 3000 };
    let cases = fuzz(target, case(), |case| {
        let built =
            Router::new(case.routes.iter().map(|r| (r.declared.clone(), r.method.to_string(), (r.key(), r.method))));
        let router = match built {
            Ok(router) => router,
            Err(e) => {
                REFUSED.fetch_add(1, Ordering::Relaxed);
                prop_assert!(!e.to_string().is_empty());
                return Ok(());
            }
        };
        BUILT.fetch_add(1, Ordering::Relaxed);
        // The resource path a node reports: that of the first route declared on it.
        let declared_first = |key: &str| case.routes.iter().find(|r| r.key() == key).map(|r| r.declared.clone());
        let check = |method: &str, path: &str| -> Result<(), TestCaseError> {
            let found = router.find(method, path);
            let expected = model(&case.routes, method, path);
            LOOKUPS.fetch_add(1, Ordering::Relaxed);
            MATCHES.fetch_add(u64::from(found.is_some()), Ordering::Relaxed);
            match (&found, &expected) {
                (None, None) => {}
                (Some(found), Some((key, entry, params))) => {
                    prop_assert_eq!(found.value, &(key.clone(), *entry), "{} {:?}", method, path);
                    prop_assert_eq!(
                        Some(found.resource_path.to_string()),
                        declared_first(key),
                        "{} {:?}",
                        method,
                        path
                    );
                    prop_assert_eq!(&found.path_params, params, "{} {:?}", method, path);
                }
                _ => prop_assert!(
                    false,
                    "{method} {path:?}: found {:?}, the model {expected:?}",
                    found.as_ref().map(|f| f.value)
                ),
            }
            Ok(())
        };
        for (i, route) in case.routes.iter().enumerate() {
            let style = case.styles[i % case.styles.len()];
            let values: Vec<&str> = case.values.iter().copied().cycle().skip(i).take(case.values.len()).collect();
            let path = path_of(route, &values, style);
            let method = if route.method == "ANY" { ANY_METHODS[i % ANY_METHODS.len()] } else { route.method };
            check(method, &path)?;
            let found = router.find(method, &path);
            prop_assert!(found.is_some(), "{method} {path:?}: its own route {:?} does not match", route.declared);
            let found = found.expect("checked");
            let literal = route.parts.iter().all(|p| matches!(p, Part::Literal(_)));
            if literal {
                // A route of literals matches its own path: only it can.
                prop_assert_eq!(&found.value.0, &route.key(), "{} {:?}", method, path);
            }
            if found.value == &(route.key(), route.method) {
                // Its parameters are the path's segments (the rest, for a greedy one).
                let names: Vec<&String> = route
                    .parts
                    .iter()
                    .filter_map(|p| match p {
                        Part::Param(n) | Part::Greedy(n) => Some(n),
                        Part::Literal(_) => None,
                    })
                    .collect();
                prop_assert_eq!(found.path_params.iter().map(|(n, _)| n).collect::<Vec<_>>(), names);
                for (value, part) in found
                    .path_params
                    .iter()
                    .map(|(_, v)| v)
                    .zip(route.parts.iter().filter(|p| !matches!(p, Part::Literal(_))))
                {
                    match part {
                        Part::Param(_) => prop_assert!(!value.is_empty() && !value.contains('/'), "{value:?}"),
                        _ => prop_assert!(!value.is_empty() && path.contains(value.as_str()), "{value:?} of {path:?}"),
                    }
                }
            }
            for method in &case.methods {
                check(method, &path)?;
            }
        }
        for path in &case.random_paths {
            for method in &case.methods {
                check(method, path)?;
            }
        }
        Ok(())
    });
    println!(
        "router::against_a_model: {cases} cases: {} route sets built, {} refused; {} look-ups, {} matched",
        BUILT.load(Ordering::Relaxed),
        REFUSED.load(Ordering::Relaxed),
        LOOKUPS.load(Ordering::Relaxed),
        MATCHES.load(Ordering::Relaxed)
    );
}
