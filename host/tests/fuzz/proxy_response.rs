//! A function's proxy response (`gateway/proxy.rs` `parse_response`): any
//! text, any JSON, and JSON shaped like a proxy response with every field
//! sometimes of the wrong type.
//!
//! Properties: nothing panics; the answer is the model's — the same
//! acceptance, and for an accepted response: the status (100–599; 200 when
//! absent), the headers (`multiValueHeaders` first, then `headers`; one
//! line per value; names as first spelled, grouped case-insensitively in
//! order of first appearance; values as given, numbers and booleans
//! printed; `Content-Type: application/json` added when absent) and the
//! body (base64-decoded only when flagged and the client accepts binary).

use base64::Engine as _;
use proptest::prelude::*;
use serde_json::{Map, Value, json};
use wasmgate_host::gateway::proxy::parse_response;

use crate::{Target, fuzz};

const NAMES: &[&str] = &[
    "Content-Type",
    "content-type",
    "Set-Cookie",
    "set-cookie",
    "X-Custom",
    "x-CUSTOM",
    "Location",
    "",
    "X Space",
    "Ünï",
    "statusCode",
];
const STRINGS: &[&str] =
    &["", "v", "a, b", "text/plain", "caf\u{e9}", " padded ", "eA==", "not base64!", "200", " 404 "];

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        prop::sample::select(STRINGS).prop_map(|s| json!(s)),
        "\\PC{0,12}".prop_map(Value::String),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        (-1e20f64..1e20).prop_map(|f| json!(f)),
        Just(json!(u64::MAX)),
    ]
}

/// Any JSON value, a few levels deep.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![Just(Value::Null), scalar()];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(NAMES).prop_map(str::to_string), inner), 0..4)
                .prop_map(|entries| Value::Object(entries.into_iter().collect())),
        ]
    })
}

fn status() -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        Just(None),
        Just(Some(Value::Null)),
        (0i64..1000).prop_map(|n| Some(json!(n))),
        (100u16..600).prop_map(|n| Some(json!(n))),
        (100u16..600).prop_map(|n| Some(json!(n))),
        (100u16..600).prop_map(|n| Some(json!(n))),
        (0i64..1000).prop_map(|n| Some(json!(format!(" {n} ")))),
        (100u16..600).prop_map(|n| Some(json!(n.to_string()))),
        Just(Some(json!(200.0))),
        Just(Some(json!(-200))),
        Just(Some(json!("2e2"))),
        Just(Some(json!(65736))),
        any_json().prop_map(Some),
    ]
}

fn header_map(values: BoxedStrategy<Value>) -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        1 => Just(None),
        1 => Just(Some(Value::Null)),
        6 => prop::collection::vec((prop::sample::select(NAMES).prop_map(str::to_string), values), 0..6)
            .prop_map(|entries| Some(Value::Object(entries.into_iter().collect()))),
        1 => any_json().prop_map(Some),
    ]
}

fn response() -> impl Strategy<Value = Value> {
    let value = prop_oneof![8 => scalar(), 1 => any_json()].boxed();
    let values = prop_oneof![
        8 => prop::collection::vec(prop_oneof![6 => scalar(), 1 => any_json()], 0..4).prop_map(Value::Array),
        1 => Just(Value::Null),
        1 => scalar(),
    ]
    .boxed();
    let body = prop_oneof![
        1 => Just(None),
        1 => Just(Some(Value::Null)),
        3 => prop::sample::select(STRINGS).prop_map(|s| Some(json!(s))),
        3 => prop::collection::vec(any::<u8>(), 0..16)
            .prop_map(|b| Some(json!(base64::engine::general_purpose::STANDARD.encode(b)))),
        1 => any_json().prop_map(Some),
    ];
    let flag = prop_oneof![
        3 => Just(None),
        3 => any::<bool>().prop_map(|b| Some(json!(b))),
        1 => any_json().prop_map(Some),
    ];
    let extra =
        prop_oneof![9 => Just(None), 1 => prop::sample::select(&["unknown", "StatusCode", ""][..]).prop_map(Some)];
    (status(), header_map(value), header_map(values), body, flag, extra).prop_map(
        |(status, headers, multi, body, flag, extra)| {
            let mut obj = Map::new();
            let mut put = |k: &str, v: Option<Value>| {
                if let Some(v) = v {
                    obj.insert(k.to_string(), v);
                }
            };
            put("statusCode", status);
            put("headers", headers);
            put("multiValueHeaders", multi);
            put("body", body);
            put("isBase64Encoded", flag);
            if let Some(k) = extra {
                put(k, Some(json!(1)));
            }
            Value::Object(obj)
        },
    )
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => response().prop_map(|v| v.to_string()),
        1 => any_json().prop_map(|v| v.to_string()),
        1 => "\\PC*",
        1 => response().prop_map(|v| {
            // Cut short, or with a duplicate key.
            let text = v.to_string();
            let half = text.len() / 2;
            if half % 2 == 0 { text[..text.floor_char_boundary(half)].to_string() } else { text.replacen('{', "{\"body\": 1, ", 1) }
        }),
    ]
}

/// An accepted response: status, header lines, body.
type Accepted = (u16, Vec<(String, String)>, Vec<u8>);

/// What `parse_response` should answer: `None` for a malformed response.
fn model(text: &str, binary: bool) -> Option<Accepted> {
    let Ok(Value::Object(obj)) = serde_json::from_str::<Value>(text) else { return None };
    const KNOWN: &[&str] = &["statusCode", "headers", "multiValueHeaders", "body", "isBase64Encoded"];
    if obj.is_empty() || obj.keys().any(|k| !KNOWN.contains(&k.as_str())) {
        return None;
    }
    let status = match obj.get("statusCode") {
        None | Some(Value::Null) => 200,
        Some(Value::Number(n)) => u16::try_from(n.as_u64()?).ok()?,
        Some(Value::String(s)) => s.trim().parse().ok()?,
        Some(_) => return None,
    };
    if !(100..=599).contains(&status) {
        return None;
    }
    let scalar = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    // (name as first spelled, values), in order of first appearance.
    let mut groups: Vec<(String, Vec<String>)> = Vec::new();
    let mut add = |name: &str, value: String| match groups.iter_mut().find(|(n, _)| n.eq_ignore_ascii_case(name)) {
        Some((_, values)) => values.push(value),
        None => groups.push((name.to_string(), vec![value])),
    };
    match obj.get("multiValueHeaders") {
        None | Some(Value::Null) => {}
        Some(Value::Object(m)) => {
            for (name, values) in m {
                match values {
                    Value::Array(list) => list.iter().filter_map(scalar).for_each(|v| add(name, v)),
                    Value::Null => {}
                    _ => return None,
                }
            }
        }
        Some(_) => return None,
    }
    match obj.get("headers") {
        None | Some(Value::Null) => {}
        Some(Value::Object(m)) => {
            for (name, value) in m {
                if let Some(v) = scalar(value) {
                    add(name, v);
                }
            }
        }
        Some(_) => return None,
    }
    let base64 = match obj.get("isBase64Encoded") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return None,
    };
    let body = match obj.get("body") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) if base64 && binary => base64::engine::general_purpose::STANDARD.decode(s).ok()?,
        Some(Value::String(s)) => s.clone().into_bytes(),
        Some(_) => return None,
    };
    let typed = groups.iter().any(|(n, _)| n.eq_ignore_ascii_case("content-type"));
    let mut headers: Vec<(String, String)> =
        groups.into_iter().flat_map(|(n, values)| values.into_iter().map(move |v| (n.clone(), v))).collect();
    if !typed {
        headers.push(("Content-Type".into(), "application/json".into()));
    }
    Some((status, headers, body))
}

#[test]
fn against_a_model() {
    let target = Target { name: "proxy_response::against_a_model", cases: 4000 };
    let accepted = std::cell::Cell::new(0u64);
    let cases = fuzz(target, (text(), any::<bool>()), |(text, binary)| {
        let got = parse_response(&text, binary);
        let want = model(&text, binary);
        match (got, want) {
            (Ok(got), Some((status, headers, body))) => {
                accepted.set(accepted.get() + 1);
                prop_assert!((100..=599).contains(&got.status));
                prop_assert_eq!(got.status, status);
                prop_assert_eq!(got.headers, headers);
                prop_assert_eq!(got.body, body);
            }
            (Err(e), None) => prop_assert!(!e.to_string().is_empty()),
            (got, want) => prop_assert!(false, "{text:?} (binary: {binary}): got {got:?}, the model {want:?}"),
        }
        Ok(())
    });
    println!("proxy_response::against_a_model: {cases} responses, {} accepted", accepted.get());
}
