//! The template parser and renderer: any text, VTL token soup, and
//! templates built to run into the render limits.
//!
//! Properties: nothing panics; a parse or render error has a message and a
//! position inside the source (1-based line and column, the column at most
//! one past its line's end); a rendering is at most
//! [`MAX_OUTPUT`](wasmgate_host::template::eval::MAX_OUTPUT) bytes; and a
//! template renders the same twice (rendering never changes the template).

use std::sync::atomic::{AtomicU64, Ordering};

use proptest::prelude::*;
use serde_json::json;
use wasmgate_host::template::eval::MAX_OUTPUT;
use wasmgate_host::template::{Template, TemplateContext, TemplateInput};

use crate::{Target, fuzz};

#[path = "../template/vtl_tokens.rs"]
mod vtl_tokens;
use vtl_tokens::TOKENS;

/// Bodies the templates read (`$input.body`, `$input.json`, `$input.path`).
const BODIES: &[&str] = &[
    r#"{"a": [1, {"b": "c"}], "s": "x", "k": [1, 2.5, "x"]}"#,
    "",
    "not json",
    r#"[1, 2, 3]"#,
    r#""str""#,
    r#"{"deep": {"deeper": {"deepest": [null, true, -1e300]}}}"#,
];

/// Templates that run into the render limits: strings doubled past the
/// largest string, loops past `#foreach`'s cap, nested loops past the step
/// budget, macros past the call depth.
fn limit_template() -> impl Strategy<Value = String> {
    prop_oneof![
        (0u32..30).prop_map(|n| format!("#set($s = 'ab')#foreach($i in [1..{n}])#set($s = \"$s$s\")#end$s.length()")),
        (0u32..3000).prop_map(|n| format!("#foreach($i in [1..{n}])$i,#end")),
        (0u32..300, 0u32..300, 0u32..30).prop_map(|(a, b, c)| format!(
            "#foreach($i in [1..{a}])#foreach($j in [1..{b}])#foreach($k in [1..{c}])$k#end#end#end"
        )),
        (0u32..60).prop_map(|n| format!("#macro(m $d)#if($d > 0)#m($d - 1)#end$d#end#m({n})")),
        (0u32..40).prop_map(|n| format!("#define($d)$d$d#end{}", "#set($x = \"$d\")".repeat(n as usize))),
        (0u32..25)
            .prop_map(|n| format!("#set($l = [1])#foreach($i in [1..{n}])#set($ignored = $l.addAll($l))#end$l.size()")),
    ]
}

fn source() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "\\PC*",
        1 => prop::collection::vec(any::<char>(), 0..64).prop_map(|c| c.into_iter().collect()),
        6 => prop::collection::vec(prop::sample::select(TOKENS), 0..40).prop_map(|t| t.concat()),
        3 => (
            prop::collection::vec(prop::sample::select(TOKENS), 0..8),
            prop::collection::vec(prop::sample::select(TOKENS), 1..8),
            prop::collection::vec(prop::sample::select(TOKENS), 0..12),
        )
            .prop_map(|(pre, value, post)| format!("{}#set($a = {}){}", pre.concat(), value.concat(), post.concat())),
        1 => limit_template(),
    ]
}

/// Whether `(line, column)` is inside `source`, or one past a line's end.
fn inside(source: &str, line: u32, column: u32) -> bool {
    let Some(text) = source.split('\n').nth((line as usize).wrapping_sub(1)) else { return false };
    column >= 1 && column as usize <= text.len() + 1
}

fn render(template: &Template, body: &str) -> Result<String, wasmgate_host::template::RenderError> {
    let mut input = TemplateInput { body: body.into(), ..TemplateInput::default() };
    input.path.insert("id".into(), "7".into());
    input.querystring.insert("q".into(), "a b".into());
    input.header.insert("X-H".into(), "v".into());
    input.stage_variables.insert("s".into(), "v".into());
    let mut ctx = TemplateContext::new(json!({"requestId": "r", "identity": {"sourceIp": "1.2.3.4"}}));
    let out = template.render(&input, &mut ctx);
    let _ = ctx.response_override_status();
    let _ = ctx.response_override_headers();
    let _ = ctx.request_overrides("header");
    out
}

static PARSED: AtomicU64 = AtomicU64::new(0);
static RENDERED: AtomicU64 = AtomicU64::new(0);

#[test]
fn parse_and_render() {
    let target = Target { name: "template::parse_and_render", cases: 500 };
    let strategy = (source(), prop::sample::select(BODIES));
    let cases = fuzz(target, strategy, |(source, body)| {
        let template = match Template::parse(&source) {
            Ok(template) => template,
            Err(e) => {
                prop_assert!(!e.message.is_empty(), "an empty message: {e:?}");
                prop_assert!(inside(&source, e.line, e.column), "a parse error outside the source: {e:?}");
                return Ok(());
            }
        };
        PARSED.fetch_add(1, Ordering::Relaxed);
        let first = render(&template, body);
        match &first {
            Ok(out) => {
                RENDERED.fetch_add(1, Ordering::Relaxed);
                prop_assert!(out.len() <= MAX_OUTPUT, "{} bytes rendered", out.len());
            }
            Err(e) => {
                prop_assert!(!e.message.is_empty(), "an empty message: {e:?}");
                prop_assert!(inside(&source, e.line, e.column), "a render error outside the source: {e:?}");
            }
        }
        let second = render(&template, body);
        prop_assert_eq!(first, second, "rendered twice, differently");
        Ok(())
    });
    println!(
        "template::parse_and_render: {cases} sources, {} parsed, {} rendered",
        PARSED.load(Ordering::Relaxed),
        RENDERED.load(Ordering::Relaxed)
    );
}
