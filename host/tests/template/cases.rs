//! The table-driven suite: `cases.json` next to this file holds templates,
//! requests and the exact output the Velocity 1.7 reference renderer
//! produced for each (re-check them with
//! `../shared/tools/vtl-oracle/run --cases host/tests/template/cases.json`).

use serde_json::Value;

use crate::support::run_chain;

#[test]
fn oracle_checked_cases() {
    let text = include_str!("cases.json");
    let doc: Value = serde_json::from_str(text).expect("cases.json is JSON");
    let cases = doc["cases"].as_array().expect("cases.json has a `cases` list");
    assert!(cases.len() >= 80, "at least 80 cases, found {}", cases.len());
    let mut failures = Vec::new();
    for case in cases {
        let id = case["id"].as_str().unwrap_or("?");
        let template = case["template"].as_str().expect("template");
        let args = case.get("args").cloned().unwrap_or(Value::Null);
        let got = run_chain(template, &args);
        let expect_error = case.get("expected_error").and_then(Value::as_bool).unwrap_or(false);
        match (&got, expect_error) {
            (Ok((out, _)), false) if Some(out.as_str()) == case["expected"].as_str() => {}
            (Err(_), true) => {}
            _ => failures.push(format!(
                "{id}\n  template {template:?}\n  expected {}\n  got      {:?}",
                if expect_error { "an error".to_string() } else { case["expected"].to_string() },
                got.as_ref().map(|(o, _)| o)
            )),
        }
    }
    assert!(failures.is_empty(), "{} of {} cases differ:\n{}", failures.len(), cases.len(), failures.join("\n"));
}
