//! Shared helpers: building a request from a JSON case and rendering a
//! template (and its chained templates) the way the Velocity reference
//! renderer (`../shared/tools/vtl-oracle`) does.

use indexmap::IndexMap;
use serde_json::Value;
use wasmgate_host::template::{Template, TemplateContext, TemplateInput};

/// A string → string map from a JSON object; non-string values as JSON text.
pub fn string_map(v: Option<&Value>) -> IndexMap<String, String> {
    match v {
        Some(Value::Object(m)) => m
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string())))
            .collect(),
        _ => IndexMap::new(),
    }
}

/// A body: a JSON string is the raw body, other JSON values their text, null/absent empty.
pub fn body_of(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// The request of an oracle-style case (`args`: body, path, query, header, stage_vars).
pub fn input_of(args: &Value) -> TemplateInput {
    TemplateInput {
        body: body_of(args.get("body")),
        path: string_map(args.get("path")),
        querystring: string_map(args.get("query").or_else(|| args.get("querystring"))),
        header: string_map(args.get("header").or_else(|| args.get("headers"))),
        stage_variables: string_map(args.get("stage_vars").or_else(|| args.get("stageVariables"))),
    }
}

/// Renders a template and its `chain` (each later template sees the same
/// `$context`; its body is the step's `body`, or the previous output).
pub fn run_chain(template: &str, args: &Value) -> Result<(String, TemplateContext), String> {
    let mut input = input_of(args);
    let mut ctx = TemplateContext::new(args.get("context").cloned().unwrap_or_else(|| serde_json::json!({})));
    let mut out = render(template, &input, &mut ctx)?;
    if let Some(Value::Array(steps)) = args.get("chain") {
        for step in steps {
            let next = step.get("template").and_then(Value::as_str).ok_or("chain step without template")?;
            input.body = match step.get("body") {
                Some(b) => body_of(Some(b)),
                None => out.clone(),
            };
            out = render(next, &input, &mut ctx)?;
        }
    }
    Ok((out, ctx))
}

pub fn render(template: &str, input: &TemplateInput, ctx: &mut TemplateContext) -> Result<String, String> {
    let t = Template::parse(template).map_err(|e| format!("parse error: {e}"))?;
    t.render(input, ctx).map_err(|e| format!("render error: {e}"))
}

/// JSON equality with numbers compared by value (1 == 1.0).
pub fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(i), Some(j)) => i == j,
            _ => x.as_f64() == y.as_f64(),
        },
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_eq(a, b)),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}
