//! The AWS-recorded conformance vectors (`vtl_cases.json` in the project's
//! `tests/conformance/`), interpreted per case kind as the reference
//! renderer's `conformance.py` does:
//!
//! * `response_template`: the template over `input_body`;
//! * `request_then_response_template`: the request template over the
//!   client's body, then the response template over its output (an echo
//!   backend), sharing `$context`;
//! * `request_template`, `template`, `util_function`: one template, with
//!   path and query parameters taken from `resource` and `request_path`;
//! * `mock_integration`: the request template, then the integration
//!   response's `application/json` template over an empty body, sharing
//!   `$context`; the status and headers the templates override are checked
//!   too, so a case without a response template still runs;
//! * `lambda_aws_integration`: the request template when the Lambda echoes
//!   its event, or the response template over the Lambda's result.
//!
//! Every `aws_validated: true` case must match; others are reported only.
//! The data is read from `$WASMGATE_CONFORMANCE_DIR`, or from the copy in
//! the project's `tests/conformance/` (with its sources).

use std::path::PathBuf;

use serde_json::{Value, json};
use wasmgate_host::template::{TemplateContext, TemplateInput};

use crate::support::{json_eq, render, string_map};

fn data_file() -> PathBuf {
    let dir = match std::env::var_os("WASMGATE_CONFORMANCE_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/conformance"),
    };
    dir.join("vtl_cases.json")
}

/// `{name}` segments of the resource matched against the request path.
fn path_params(resource: Option<&str>, request_path: Option<&str>) -> Value {
    let (Some(resource), Some(request)) = (resource, request_path) else { return json!({}) };
    let request = request.split('?').next().unwrap_or("");
    let mut out = serde_json::Map::new();
    for (r, v) in resource.trim_matches('/').split('/').zip(request.trim_matches('/').split('/')) {
        if let Some(name) = r.strip_prefix('{').and_then(|r| r.strip_suffix('}')) {
            out.insert(name.trim_end_matches('+').to_string(), Value::String(v.to_string()));
        }
    }
    Value::Object(out)
}

/// The query string of the request path (first value wins, not decoded).
fn query_params(request_path: Option<&str>) -> Value {
    let mut out = serde_json::Map::new();
    if let Some((_, q)) = request_path.and_then(|p| p.split_once('?')) {
        for kv in q.split('&') {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            out.entry(k.to_string()).or_insert_with(|| Value::String(v.to_string()));
        }
    }
    Value::Object(out)
}

/// Top-level variables (`$x`, which the gateway never provides) as
/// `#set`s of single-quoted literals in front of the template; a `#set`
/// prints nothing.
fn with_vars(vars: Option<&Value>, template: String) -> Result<String, String> {
    let Some(Value::Object(vars)) = vars else { return Ok(template) };
    let mut out = String::new();
    for (name, value) in vars {
        let Some(s) = value.as_str() else { return Err(format!("variable ${name} is not a string")) };
        out.push_str(&format!("#set(${name} = '{}')", s.replace('\'', "''")));
    }
    Ok(out + &template)
}

/// What a case expects of the final output.
enum Expected {
    Exact(String),
    Json(Value),
    Stripped(String),
}

/// A runnable case: templates rendered in order, each over its body.
struct Plan {
    steps: Vec<(String, String)>,
    input: TemplateInput,
    context: Value,
    expected: Option<Expected>,
    /// Status and headers set through `$context.responseOverride` (mock cases).
    expected_status: Option<u16>,
    expected_headers: Vec<(String, String)>,
    default_status: Option<u16>,
}

fn text(c: &Value, key: &str) -> Option<String> {
    c.get(key).and_then(Value::as_str).map(str::to_string)
}

fn body_text(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

fn expected_of(c: &Value) -> Option<Expected> {
    if let Some(s) = text(c, "expected_output") {
        return Some(Expected::Exact(s));
    }
    for key in ["expected_output_json", "expected_body_json"] {
        if let Some(v) = c.get(key).filter(|v| !v.is_null()) {
            return Some(Expected::Json(v.clone()));
        }
    }
    if let Some(s) = text(c, "expected_output_stripped") {
        return Some(Expected::Stripped(s));
    }
    text(c, "expected_body_raw").map(Expected::Exact)
}

/// How to run a case, or why it cannot be run.
fn plan(c: &Value) -> Result<Plan, String> {
    let kind = c["kind"].as_str().unwrap_or("");
    let resource = c.get("resource").and_then(Value::as_str);
    let request_path = c.get("request_path").and_then(Value::as_str);
    let mut input = TemplateInput {
        path: string_map(Some(&path_params(resource, request_path))),
        querystring: string_map(Some(&query_params(request_path))),
        stage_variables: string_map(c.get("stage_variables")),
        ..TemplateInput::default()
    };
    let mut p = Plan {
        steps: Vec::new(),
        input: TemplateInput::default(),
        context: c.get("context").cloned().unwrap_or_else(|| json!({})),
        expected: expected_of(c),
        expected_status: None,
        expected_headers: Vec::new(),
        default_status: None,
    };
    match kind {
        "response_template" => {
            input = TemplateInput::default();
            p.steps.push((text(c, "template").ok_or("no template")?, body_text(c.get("input_body"))));
        }
        "request_then_response_template" => {
            input = TemplateInput::default();
            p.steps.push((
                text(c, "request_template").ok_or("no request template")?,
                body_text(c.get("client_request_body")),
            ));
            // Echo backend: the response template's body is the rendered request.
            p.steps.push((text(c, "response_template").ok_or("no response template")?, "\u{0}echo".into()));
        }
        "request_template" | "template" | "util_function" => {
            let t = text(c, "template").or_else(|| text(c, "expression")).ok_or("no template")?;
            p.steps.push((with_vars(c.get("vars"), t)?, body_text(c.get("client_request_body"))));
        }
        "mock_integration" => {
            let Some(request) = text(c, "request_template") else {
                return Err(
                    "template only approximated (response_template_approx); the canary stage-variable merge is not VTL"
                        .into(),
                );
            };
            input.header = string_map(c.get("request_headers"));
            p.steps.push((request, String::new()));
            let templates = &c["integration_response"]["responseTemplates"];
            if let Some(t) = templates.get("application/json").and_then(Value::as_str) {
                p.steps.push((t.to_string(), String::new()));
            } else {
                // No response template: the MOCK response body is empty.
                p.expected = text(c, "expected_body_raw").map(Expected::Exact);
            }
            p.expected_status = c.get("expected_status").and_then(Value::as_u64).and_then(|s| u16::try_from(s).ok());
            p.default_status = c["integration_response"]["statusCode"].as_str().and_then(|s| s.parse().ok());
            if let Some(Value::Object(h)) = c.get("expected_headers") {
                p.expected_headers = h.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string())).collect();
            }
        }
        "lambda_aws_integration" => {
            let code = text(c, "lambda_code_python").unwrap_or_default();
            if let Some(ct) = text(c, "client_content_type") {
                input.header.insert("Content-Type".into(), ct);
            }
            if code.contains("return event") && c.get("response_template").is_none() {
                p.steps.push((
                    text(c, "request_template").ok_or("no request template")?,
                    body_text(c.get("client_request_body")),
                ));
            } else if let Some(t) = text(c, "response_template") {
                // The handler returns statusCode 200 and a body chosen by httpStatus.
                let request: Value =
                    serde_json::from_str(&body_text(c.get("client_request_body"))).map_err(|e| e.to_string())?;
                let status: i64 = match &request["httpStatus"] {
                    Value::String(s) => s.parse().map_err(|_| "httpStatus is not a number")?,
                    v => v.as_i64().ok_or("no httpStatus")?,
                };
                let body = if status >= 400 { "customerror" } else { "noerror" };
                p.steps.push((t, format!(r#"{{"statusCode": 200, "body": "{body}"}}"#)));
            } else {
                return Err("needs a Lambda".into());
            }
        }
        other => return Err(format!("unknown kind {other:?}")),
    }
    if p.expected.is_none() && p.expected_status.is_none() {
        return Err("no expected output".into());
    }
    p.input = input;
    Ok(p)
}

/// Runs a plan: `Ok(())` or what differs.
fn run(p: &Plan) -> Result<(), String> {
    let mut ctx = TemplateContext::new(p.context.clone());
    let mut input = p.input.clone();
    let mut out = String::new();
    for (template, body) in &p.steps {
        input.body = if body == "\u{0}echo" { out.clone() } else { body.clone() };
        out = render(template, &input, &mut ctx)?;
    }
    if p.steps.len() == 1 && p.default_status.is_some() {
        // A mock without a response template: the body is empty.
        out.clear();
    }
    match &p.expected {
        Some(Expected::Exact(want)) if &out != want => return Err(format!("expected {want:?}\n      got {out:?}")),
        Some(Expected::Stripped(want)) if out.trim() != want.trim() => {
            return Err(format!("expected (trimmed) {want:?}\n      got {out:?}"));
        }
        Some(Expected::Json(want)) => match serde_json::from_str::<Value>(&out) {
            Ok(got) if json_eq(want, &got) => {}
            Ok(_) | Err(_) => return Err(format!("expected JSON {want}\n      got {out:?}")),
        },
        _ => {}
    }
    if let Some(want) = p.expected_status {
        let got = ctx.response_override_status().or(p.default_status);
        if got != Some(want) {
            return Err(format!("expected status {want}, got {got:?}"));
        }
    }
    let headers = ctx.response_override_headers();
    for (name, value) in &p.expected_headers {
        if !headers.iter().any(|(k, v)| k.eq_ignore_ascii_case(name) && v == value) {
            return Err(format!("expected header {name}: {value}, got {headers:?}"));
        }
    }
    Ok(())
}

#[test]
fn aws_recorded_vtl_cases() {
    let file = data_file();
    let text = std::fs::read_to_string(&file).unwrap_or_else(|e| {
        panic!(
            "cannot read the conformance vectors {}: {e}\n\
             set WASMGATE_CONFORMANCE_DIR to the directory holding vtl_cases.json",
            file.display()
        )
    });
    let doc: Value = serde_json::from_str(&text).expect("vtl_cases.json is JSON");
    let cases = doc["cases"].as_array().expect("vtl_cases.json has a `cases` list");
    let (mut validated_pass, mut validated_total, mut other_pass, mut other_total) = (0, 0, 0, 0);
    let mut failures = Vec::new();
    for c in cases {
        let id = c["id"].as_str().unwrap_or("?");
        let validated = c["aws_validated"] == Value::Bool(true);
        let plan = match plan(c) {
            Ok(p) => p,
            Err(why) => {
                println!("SKIP {id} ({}): {why}", c["kind"].as_str().unwrap_or("?"));
                continue;
            }
        };
        let result = run(&plan);
        if validated {
            validated_total += 1;
        } else {
            other_total += 1;
        }
        match result {
            Ok(()) => {
                if validated {
                    validated_pass += 1;
                } else {
                    other_pass += 1;
                }
                println!("PASS {id}");
            }
            Err(diff) if validated => {
                println!("FAIL {id}: {diff}");
                failures.push(format!("{id}: {diff}"));
            }
            Err(diff) => println!("DIFF {id} (aws_validated = {}): {diff}", c["aws_validated"]),
        }
    }
    println!(
        "aws_validated: {validated_pass}/{validated_total} pass; other cases: {other_pass}/{other_total} match (reported only)"
    );
    assert!(validated_total > 0, "no aws_validated case could be run");
    assert!(failures.is_empty(), "{} aws_validated case(s) differ:\n{}", failures.len(), failures.join("\n"));
}
