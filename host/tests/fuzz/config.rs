//! `gateway.toml` parsing (`config::parse`, and `config::resolve_api_snapshot`
//! for a deployment's stored API): any text, TOML pieces glued at random,
//! and the project's example files mutated line by line (lines deleted,
//! repeated, swapped, replaced; values replaced; the text cut short).
//!
//! Properties: nothing panics; the text is a configuration, or an error
//! that names a line of the text (`Invalid` with its line; `Parse` with
//! toml's "line N"); the unmutated examples are configurations.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use proptest::prelude::*;
use wasmgate_host::config::{self, ConfigError};

use crate::{Target, fuzz};

const EXAMPLES: &[&str] = &[
    include_str!("../../../gateway.toml"),
    include_str!("../../../examples/items-mock.toml"),
    include_str!("../../../examples/hello-proxy.toml"),
];

/// Lines and values to put into a configuration.
const SNIPPETS: &[&str] = &[
    "[server]",
    "[functions.F]",
    "[functions.\"a b\"]",
    "[apis.A]",
    "[apis.ItemsAPI.resources.\"/x/{id}\".GET.integration]",
    "[apis.ItemsAPI.resources.\"/{proxy+}\".ANY.integration]",
    "[apis.ItemsAPI.resources.\"x\".GET.integration]",
    "[apis.ItemsAPI.resources.\"/{a}/{b+}/c\".GET.integration]",
    "[[apis.ItemsAPI.resources.\"/items\".GET.integration.responses]]",
    "[apis.ItemsAPI.stages.dev]",
    "[apis.ItemsAPI.stages.\"bad stage\"]",
    "[apis.ItemsAPI.gateway_responses.DEFAULT_4XX]",
    "[apis.ItemsAPI.gateway_responses.NOT_A_TYPE]",
    "[apis.ItemsAPI.models.M]",
    "[apis.ItemsAPI.request_validators.v]",
    "type = \"mock\"",
    "type = \"function\"",
    "type = \"function-proxy\"",
    "type = \"http\"",
    "function = \"ItemsFunction\"",
    "function = \"Nope:alias\"",
    "function = \"ItemsFunction:${stageVariables.x}\"",
    "guest = \"items\"",
    "guest = \"no-such-guest\"",
    "wasm = \"/nonexistent/f.wasm\"",
    "status = 200",
    "status = 99999",
    "status = -1",
    "selection_pattern = \"(\"",
    "selection_pattern = \"4\\\\d{2}\"",
    "passthrough_behavior = \"NEVER\"",
    "passthrough_behavior = \"SOMETIMES\"",
    "timeout_ms = 10",
    "timeout_ms = 18446744073709551616",
    "memory_mb = 0",
    "memory_mb = 128",
    "max_code_mb = 0",
    "listen = \"127.0.0.1:0\"",
    "listen = \"not an address\"",
    "admin_listen = \"[::1]:0\"",
    "data_dir = \"\"",
    "request_templates = { \"application/json\" = '#set($a' }",
    "request_templates = { \"application/json\" = '$input.json(\"$\")' }",
    "templates = { \"text/plain\" = '#foreach($i in [1..3])$i#end' }",
    "schema = '{\"type\": \"object\"}'",
    "schema = 'not json'",
    "schema = '{\"type\": 7}'",
    "request_parameters = { \"method.request.path.id\" = true }",
    "request_parameters = { \"nonsense\" = true }",
    "request_validator = \"v\"",
    "request_validator = \"missing\"",
    "request_models = { \"application/json\" = \"M\" }",
    "validate_body = true",
    "variables = { a = \"b\" }",
    "variables = { a = 1 }",
    "aliases = { dev = \"$LATEST\", prod = \"7\" }",
    "publish = \"v1\"",
    "base_path = \"v1\"",
    "base_path = \"\"",
    "hosts = [\"example.com\"]",
    "binary_media_types = [\"image/*\"]",
    "unknown_key = 1",
    "description = \"\"\"multi\nline\"\"\"",
    "x = [1, \"mixed\"]",
    "= 1",
    "[",
    "]]",
    "'''",
    "\"",
    "",
    "# a comment",
    "a.b.c = 1",
    "\u{feff}",
    "\r",
];

#[derive(Debug, Clone)]
enum Edit {
    Delete(usize),
    Repeat(usize),
    Swap(usize, usize),
    Replace(usize, &'static str),
    Insert(usize, &'static str),
    Value(usize, &'static str),
    Cut(usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    let at = any::<usize>();
    let snippet = prop::sample::select(SNIPPETS);
    prop_oneof![
        at.prop_map(Edit::Delete),
        at.prop_map(Edit::Repeat),
        (at, at).prop_map(|(a, b)| Edit::Swap(a, b)),
        (at, snippet.clone()).prop_map(|(a, s)| Edit::Replace(a, s)),
        (at, snippet.clone()).prop_map(|(a, s)| Edit::Insert(a, s)),
        (at, snippet).prop_map(|(a, s)| Edit::Value(a, s)),
        at.prop_map(Edit::Cut),
    ]
}

fn mutate(text: &str, edits: &[Edit]) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    for edit in edits {
        let n = lines.len().max(1);
        match *edit {
            Edit::Delete(i) if !lines.is_empty() => {
                lines.remove(i % n);
            }
            Edit::Repeat(i) if !lines.is_empty() => {
                let line = lines[i % n].clone();
                lines.insert(i % n, line);
            }
            Edit::Swap(a, b) if !lines.is_empty() => lines.swap(a % n, b % n),
            Edit::Replace(i, s) if !lines.is_empty() => lines[i % n] = s.to_string(),
            Edit::Insert(i, s) => lines.insert(i % (lines.len() + 1), s.to_string()),
            Edit::Value(i, s) if !lines.is_empty() => {
                let line = &mut lines[i % n];
                let value = s.split_once(" = ").map_or(s, |(_, v)| v);
                if let Some((key, _)) = line.split_once('=') {
                    *line = format!("{key}= {value}");
                }
            }
            Edit::Cut(at) => {
                let mut text = lines.join("\n");
                let mut at = at % (text.len() + 1);
                while !text.is_char_boundary(at) {
                    at -= 1;
                }
                text.truncate(at);
                lines = text.lines().map(str::to_string).collect();
            }
            _ => {}
        }
    }
    lines.join("\n")
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => (prop::sample::select(EXAMPLES), prop::collection::vec(edit(), 0..5))
            .prop_map(|(text, edits)| mutate(text, &edits)),
        2 => prop::collection::vec(prop::sample::select(SNIPPETS), 0..24).prop_map(|s| s.join("\n")),
        1 => "\\PC*",
        1 => "[\\[\\]{}=\"'., a-z0-9\\n#]{0,80}",
    ]
}

/// The line an error names, if any: toml's "line N", or `Invalid`'s.
fn line_named(e: &ConfigError) -> Option<usize> {
    match e {
        ConfigError::Invalid { line, .. } => Some(*line),
        ConfigError::Parse { message, .. } => {
            let at = message.find("line ")? + "line ".len();
            let digits: String = message[at..].chars().take_while(char::is_ascii_digit).collect();
            digits.parse().ok()
        }
        ConfigError::Read { .. } => None,
    }
}

static OK: AtomicU64 = AtomicU64::new(0);
static INVALID: AtomicU64 = AtomicU64::new(0);
static SYNTAX: AtomicU64 = AtomicU64::new(0);

#[test]
fn parse_any_text() {
    for example in EXAMPLES {
        config::parse(example, Path::new("/nonexistent/fuzz/gateway.toml")).expect("the examples are configurations");
    }
    let target = Target { name: "config::parse_any_text", cases: 2500 };
    let cases = fuzz(target, text(), |text| {
        let lines = text.split('\n').count();
        let checked = |e: &ConfigError| -> Result<(), TestCaseError> {
            let line = line_named(e);
            prop_assert!(
                line.is_some_and(|l| (1..=lines).contains(&l)),
                "the error names no line of the text's {lines}: {e}"
            );
            Ok(())
        };
        match config::parse(&text, Path::new("/nonexistent/fuzz/gateway.toml")) {
            Ok(_) => {
                OK.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                match e {
                    ConfigError::Invalid { .. } => INVALID.fetch_add(1, Ordering::Relaxed),
                    _ => SYNTAX.fetch_add(1, Ordering::Relaxed),
                };
                checked(&e)?;
            }
        }
        // The same text as a deployment's stored API.
        if let Err(e) = config::resolve_api_snapshot("A", &text) {
            checked(&e)?;
        }
        Ok(())
    });
    println!(
        "config::parse_any_text: {cases} texts: {} configurations, {} invalid values, {} parse errors",
        OK.load(Ordering::Relaxed),
        INVALID.load(Ordering::Relaxed),
        SYNTAX.load(Ordering::Relaxed)
    );
}
