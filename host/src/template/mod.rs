//! Mapping templates: API Gateway's dialect of Apache Velocity 1.7 (VTL),
//! parsed once per deployment and rendered per request.
//!
//! No Rust crate implements Velocity, so this is wasmgate's own small
//! interpreter, split by concept:
//!
//! * [`lexer`]: the tokens inside directives and method calls;
//! * [`parser`]: template text, references and directives → [`ast`], with
//!   Velocity 1.7's grammar and whitespace rules (`#set` eats the spaces
//!   before it and the newline after it, block directives eat one newline,
//!   `##` eats its newline, `\` escapes …);
//! * [`eval`]: the renderer, with API Gateway's null handling (a null or
//!   undefined reference prints nothing and evaluates to `""`) and limits;
//! * [`value`]: the runtime values with Java's semantics and printing
//!   (`1 * 1.5` is `1.5`, `3 * 1.5` is `3.0`, a map prints `{k=v}`, a JSON
//!   list prints as JSON);
//! * [`methods`]: the Java `String`/`List`/`Map` methods templates call;
//! * [`apigw`]: `$input` (body, `json`, `path` via JSONPath, `params`) and
//!   `$util`; `$context` and `$stageVariables` are maps the renderer holds.
//!
//! It does not depend on the gateway, so it is tested and fuzzed alone.
//! The behaviour was checked against the real Velocity 1.7 engine with API
//! Gateway's variables emulated on top (`../shared/tools/vtl-oracle`):
//! every AWS-recorded case of the shared conformance vectors matches, and
//! so do the oracle-checked cases in `host/tests/template/cases.json`.
//!
//! ```
//! use wasmgate_host::template::{Template, TemplateContext, TemplateInput};
//!
//! let t = Template::parse(r#"{ "ID": $input.params("ID") }"#).unwrap();
//! let mut input = TemplateInput::default();
//! input.path.insert("ID".into(), "1".into());
//! let mut ctx = TemplateContext::new(serde_json::json!({"requestId": "r-1"}));
//! assert_eq!(t.render(&input, &mut ctx).unwrap(), r#"{ "ID": 1 }"#);
//! ```
//!
//! The gateway keeps one [`TemplateContext`] per request: the request
//! template and the response template share it (values set in one are read
//! in the other, as on AWS), and afterwards the gateway reads the overrides
//! ([`TemplateContext::response_override_status`],
//! [`TemplateContext::response_override_headers`],
//! [`TemplateContext::request_overrides`]).
//!
//! Limits keep a hostile template from taking the process down: 300 KB of
//! source ([`MAX_TEMPLATE_BYTES`]); 64 levels of nesting and 400 chained
//! operators per expression at parse time (deep parentheses are a parse
//! error, not a stack overflow); at render time 1000 iterations per
//! `#foreach` (API Gateway's limit: later items are skipped, as Velocity's
//! `directive.foreach.maxloops` does), a budget of 1,000,000 steps, 32
//! nested macro or `#define` calls, lists of at most 1,000,000 items and 10
//! MB of output or of any one string.
//!
//! Known differences from AWS's Velocity: integer overflow past `i64` gives
//! a double (Java gives a BigInteger); map keys are strings (`{1: "a"}.get("1")`
//! finds the entry, Java's does not); macro arguments are evaluated once
//! (Velocity passes them by name); Java arrays (`split`) print as lists;
//! regular expressions are Rust's `regex` (no look-around or
//! back-references); a few lexer-state accidents of Velocity 1.7 (e.g. `#$`
//! before some tokens, `[` right after a `#set` that follows a reference on
//! the same line) are only partly reproduced.

pub mod apigw;
pub mod ast;
pub mod eval;
pub mod lexer;
pub mod methods;
pub mod parser;
pub mod value;

use std::collections::HashMap;
use std::fmt;

use indexmap::IndexMap;
use serde_json::Value as Json;

use ast::{Macro, Node, Pos};
pub use value::Val;

/// Largest template source (API Gateway's limit).
pub const MAX_TEMPLATE_BYTES: usize = 300 * 1024;

/// A template that could not be parsed, with its position (1-based line;
/// column in bytes from the start of the line, 1-based). Displays as
/// `line L, column C: message`, so a deploy error can prefix where the
/// template lives (`method GET /items, content type application/json: …`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {column}: {message}")]
pub struct ParseError {
    pub line: u32,
    pub column: u32,
    pub message: String,
}

/// A template that failed while rendering (a Java exception in a method,
/// invalid JSON for `$util.parseJson`, a limit), with the position of the
/// reference or directive that failed. Displays like [`ParseError`]. API
/// Gateway answers such a failure with a 500.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {column}: {message}")]
pub struct RenderError {
    pub line: u32,
    pub column: u32,
    pub message: String,
    /// The render ran out of its time slice ([`Template::render_within`]),
    /// not out of a limit: it may be run again where time is no concern.
    out_of_slice: bool,
}

impl RenderError {
    pub(crate) fn at(pos: Pos, message: impl Into<String>) -> Self {
        RenderError { line: pos.line, column: pos.column, message: message.into(), out_of_slice: false }
    }

    fn slice_over(pos: Pos, slice: std::time::Duration) -> Self {
        let message = format!("the template took more than its slice of {} µs", slice.as_micros());
        RenderError { out_of_slice: true, ..RenderError::at(pos, message) }
    }

    /// Whether the render stopped because its time slice was over.
    pub fn is_out_of_slice(&self) -> bool {
        self.out_of_slice
    }
}

/// Either failure, for [`render_once`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("parse error at {0}")]
    Parse(#[from] ParseError),
    #[error("render error at {0}")]
    Render(#[from] RenderError),
}

/// A parsed template: built once per deployment, shared between requests
/// (`Send + Sync`; wrap it in an `Arc`), rendered per request. Rendering
/// never changes it: literals such as `[]` and `{}` make new values each time.
pub struct Template {
    nodes: Vec<Node>,
    macros: HashMap<String, Macro>,
    source_len: usize,
    /// Whether the source mentions `context` (see [`Template::uses_context`]).
    uses_context: bool,
}

impl fmt::Debug for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Template").field("bytes", &self.source_len).finish_non_exhaustive()
    }
}

/// What the request carries into a template.
#[derive(Debug, Clone, Default)]
pub struct TemplateInput {
    /// The raw body: the client's for a request template, the integration's
    /// for a response template. `$input.body` prints an empty one as `{}`;
    /// `$input.json`/`$input.path` read it as JSON (not JSON: `""`/null).
    pub body: String,
    /// Path parameters, `$input.params('name')` looks here first.
    pub path: IndexMap<String, String>,
    /// Query-string parameters (one value each), looked at second.
    pub querystring: IndexMap<String, String>,
    /// Headers (names matched case-insensitively by `$input.params`), last.
    pub header: IndexMap<String, String>,
    /// `$stageVariables`; an undefined one prints as nothing.
    pub stage_variables: IndexMap<String, String>,
}

/// `$context`: a mutable tree built from the request's values (`requestId`,
/// `httpMethod`, `resourcePath`, `stage`, `identity.sourceIp`,
/// `authorizer.*`, `error.messageString` …) plus empty
/// `requestOverride.{header,path,querystring}` and `responseOverride.header`
/// maps, as on AWS. One request keeps one: what the request template sets,
/// the response template reads. Afterwards the gateway reads the overrides.
#[derive(Debug)]
pub struct TemplateContext {
    root: Val,
}

impl Clone for TemplateContext {
    /// A deep copy: rendering into the copy leaves the original as it was.
    fn clone(&self) -> Self {
        TemplateContext { root: Val::from_json(&self.root.to_json()) }
    }
}

fn child_map(parent: &Val, key: &str) -> Val {
    let Val::Map(m) = parent else { return Val::Null };
    let mut map = m.lock();
    match map.get(key) {
        Some(v @ Val::Map(_)) => v.clone(),
        _ => {
            let v = Val::new_map(IndexMap::new());
            map.insert(key.to_string(), v.clone());
            v
        }
    }
}

impl TemplateContext {
    /// A context from the request's `$context` values (a JSON object).
    pub fn new(context: Json) -> Self {
        Self::from_val(Val::from_json(&context))
    }

    /// A context for a template that does not use one
    /// ([`Template::uses_context`]): nothing in it, nothing built.
    pub fn unused() -> Self {
        TemplateContext { root: Val::Null }
    }

    /// A context from `$context` as template values (a map).
    pub fn from_val(root: Val) -> Self {
        let root = match root {
            v @ Val::Map(_) => v,
            _ => Val::new_map(IndexMap::new()),
        };
        let request = child_map(&root, "requestOverride");
        for k in ["header", "path", "querystring"] {
            child_map(&request, k);
        }
        let response = child_map(&root, "responseOverride");
        child_map(&response, "header");
        TemplateContext { root }
    }

    fn value(&self, path: &str) -> Option<Val> {
        let mut current = self.root.clone();
        for key in path.split('.') {
            let next = match &current {
                Val::Map(m) => m.lock().get(key).cloned(),
                _ => None,
            };
            current = next?;
        }
        Some(current)
    }

    /// Any value by dotted path (`responseOverride.status`,
    /// `requestOverride.header.X-Foo`), as JSON; `None` when absent.
    pub fn get(&self, path: &str) -> Option<Json> {
        self.value(path).map(|v| v.to_json())
    }

    /// `$context.responseOverride.status`, if a template set a valid one:
    /// an integer (or a string holding one) from 100 to 599. API Gateway
    /// ignores anything else.
    pub fn response_override_status(&self) -> Option<u16> {
        let status: i64 = match self.value("responseOverride.status")? {
            Val::Int(i) => i,
            Val::Str(s) => s.trim().parse().ok()?,
            _ => return None,
        };
        u16::try_from(status).ok().filter(|s| (100..=599).contains(s))
    }

    /// The entries of a map in the tree, values printed as a template
    /// prints them; null values are left out.
    fn string_pairs(&self, path: &str) -> Vec<(String, String)> {
        match self.value(path) {
            Some(Val::Map(m)) => {
                let entries: Vec<(String, Val)> = m.lock().iter().map(|(k, v)| (k.clone(), v.clone())).collect();
                entries.into_iter().filter(|(_, v)| !v.is_null()).map(|(k, v)| (k, v.render())).collect()
            }
            _ => Vec::new(),
        }
    }

    /// `$context.responseOverride.header.*`, in the order they were set.
    pub fn response_override_headers(&self) -> Vec<(String, String)> {
        self.string_pairs("responseOverride.header")
    }

    /// `$context.requestOverride.{kind}.*` for `kind` `header`, `path` or
    /// `querystring`, in the order they were set.
    pub fn request_overrides(&self, kind: &str) -> Vec<(String, String)> {
        self.string_pairs(&format!("requestOverride.{kind}"))
    }
}

impl Template {
    /// Parses a template (at most [`MAX_TEMPLATE_BYTES`]). Fails where API
    /// Gateway's Velocity 1.7 fails to parse, with the line and column.
    pub fn parse(source: &str) -> Result<Template, ParseError> {
        if source.len() > MAX_TEMPLATE_BYTES {
            return Err(ParseError {
                line: 1,
                column: 1,
                message: format!("the template is larger than {MAX_TEMPLATE_BYTES} bytes"),
            });
        }
        let mut parser = parser::Parser::new(source);
        let nodes = parser.parse()?;
        Ok(Template {
            nodes,
            macros: std::mem::take(&mut parser.macros),
            source_len: source.len(),
            uses_context: source.contains("context"),
        })
    }

    /// Whether rendering may read or write `$context`. A template can reach
    /// `$context` only by naming it (`$context`, `${context}`, or an alias
    /// set from one), so one whose source never spells `context` cannot, and
    /// the gateway need not build `$context` for it — the seed's request
    /// template `{ "ID": $input.params("ID") }` is such a one. (Conservative:
    /// the word in plain text counts too.)
    pub fn uses_context(&self) -> bool {
        self.uses_context
    }

    /// Renders the template for one request. `context` is shared with the
    /// other template of the same request (see [`TemplateContext`]).
    pub fn render(&self, input: &TemplateInput, context: &mut TemplateContext) -> Result<String, RenderError> {
        eval::Renderer::new(self, input, context, None).run()
    }

    /// Renders as [`Template::render`] does, and tells what Velocity does
    /// without a word: a `#foreach` cut at its limit, a reference that
    /// rendered as nothing (for `template render`; the output is the same).
    pub fn render_explained(
        &self,
        input: &TemplateInput,
        context: &mut TemplateContext,
    ) -> Result<(String, Vec<eval::Note>), RenderError> {
        eval::Renderer::new(self, input, context, None).explained()
    }

    /// Renders as [`Template::render`] does, but gives up once it has run
    /// for `slice` (an error for which [`RenderError::is_out_of_slice`]):
    /// a caller on an async worker renders within a short slice, and runs a
    /// render that needs longer again where it may block (nearly every
    /// template needs microseconds; a loop over a large body may need its
    /// whole step budget). The clock is read every 256 steps. What the cut-off
    /// render wrote into `context` stays there: keep a copy to run again from.
    pub fn render_within(
        &self,
        input: &TemplateInput,
        context: &mut TemplateContext,
        slice: std::time::Duration,
    ) -> Result<String, RenderError> {
        eval::Renderer::new(self, input, context, Some(slice)).run()
    }
}

/// Parses and renders in one go (for one-off templates and tests).
pub fn render_once(
    source: &str,
    input: &TemplateInput,
    context: &mut TemplateContext,
) -> Result<String, TemplateError> {
    Ok(Template::parse(source)?.render(input, context)?)
}
