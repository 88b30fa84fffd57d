//! Mapping templates: API Gateway's dialect of Apache Velocity 1.7 (VTL),
//! parsed once per deployment and rendered per request.
//!
//! No Rust crate implements Velocity, so this is wasmgate's own small
//! interpreter: [`lexer`] (expression tokens) → [`parser`] (text, directives,
//! references; Velocity's whitespace rules) → [`ast`] → [`eval`] (Velocity
//! 1.7 semantics with API Gateway's null handling), over [`value`]s with
//! Java's arithmetic and printing, the Java [`methods`] templates call, and
//! API Gateway's variables in [`apigw`]. It does not depend on the gateway, so
//! it can be tested and fuzzed alone; `wasmgate template render` runs it on a
//! sample request.
//!
//! ```
//! use wasmgate_host::template::{Template, TemplateContext, TemplateInput};
//!
//! let t = Template::parse(r#"{ "ID": $input.params("ID") }"#).unwrap();
//! let mut input = TemplateInput::default();
//! input.path.insert("ID".into(), "1".into());
//! let mut ctx = TemplateContext::new(serde_json::json!({}));
//! assert_eq!(t.render(&input, &mut ctx).unwrap(), r#"{ "ID": 1 }"#);
//! ```
//!
//! Limits keep a hostile template from taking the process down: 300 KB of
//! source, nesting depth, 1000 iterations per `#foreach` (API Gateway's limit;
//! later items are skipped, as Velocity's `maxloops` does), a step budget,
//! macro depth, and 10 MB of output.

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
use value::Val;

/// Largest template source (API Gateway's limit).
pub const MAX_TEMPLATE_BYTES: usize = 300 * 1024;

/// A template that could not be parsed, with its position.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {column}: {message}")]
pub struct ParseError {
    pub line: u32,
    pub column: u32,
    pub message: String,
}

/// A template that failed while rendering, with the position of the cause.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {column}: {message}")]
pub struct RenderError {
    pub line: u32,
    pub column: u32,
    pub message: String,
}

impl RenderError {
    pub(crate) fn at(pos: Pos, message: impl Into<String>) -> Self {
        RenderError { line: pos.line, column: pos.column, message: message.into() }
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

/// A parsed template: cheap to share, rendered per request.
pub struct Template {
    nodes: Vec<Node>,
    macros: HashMap<String, Macro>,
    source_len: usize,
}

impl fmt::Debug for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Template").field("bytes", &self.source_len).finish_non_exhaustive()
    }
}

/// What the request carries into a template.
#[derive(Debug, Clone, Default)]
pub struct TemplateInput {
    /// The raw body (request or integration response); empty renders as `{}`.
    pub body: String,
    pub path: IndexMap<String, String>,
    pub querystring: IndexMap<String, String>,
    pub header: IndexMap<String, String>,
    pub stage_variables: IndexMap<String, String>,
}

/// `$context`: shared by the request and response templates of one request;
/// afterwards the gateway reads the overrides a template set.
#[derive(Debug, Clone)]
pub struct TemplateContext {
    root: Val,
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
        let root = match Val::from_json(&context) {
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

    /// A value by dotted path (`responseOverride.status`).
    pub fn get(&self, path: &str) -> Option<Json> {
        let mut current = self.root.clone();
        for key in path.split('.') {
            let next = match &current {
                Val::Map(m) => m.lock().get(key).cloned(),
                _ => None,
            };
            current = next?;
        }
        Some(current.to_json())
    }

    /// `$context.responseOverride.status`, if a template set a valid one
    /// (API Gateway ignores non-integers and values outside 100–599).
    pub fn response_override_status(&self) -> Option<u16> {
        let status = match self.get("responseOverride.status")? {
            Json::Number(n) => n.as_u64()?,
            Json::String(s) => s.trim().parse().ok()?,
            _ => return None,
        };
        u16::try_from(status).ok().filter(|s| (100..=599).contains(s))
    }

    fn string_pairs(&self, path: &str) -> Vec<(String, String)> {
        match self.get(path) {
            Some(Json::Object(m)) => m
                .into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string())))
                .collect(),
            _ => Vec::new(),
        }
    }

    /// `$context.responseOverride.header.*`.
    pub fn response_override_headers(&self) -> Vec<(String, String)> {
        self.string_pairs("responseOverride.header")
    }

    /// `$context.requestOverride.{header,path,querystring}.*`.
    pub fn request_overrides(&self, kind: &str) -> Vec<(String, String)> {
        self.string_pairs(&format!("requestOverride.{kind}"))
    }
}

impl Template {
    /// Parses a template.
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
        Ok(Template { nodes, macros: std::mem::take(&mut parser.macros), source_len: source.len() })
    }

    /// Renders the template for one request.
    pub fn render(&self, input: &TemplateInput, context: &mut TemplateContext) -> Result<String, RenderError> {
        eval::Renderer::new(self, input, context).run()
    }
}

/// Parses and renders in one go.
pub fn render_once(
    source: &str,
    input: &TemplateInput,
    context: &mut TemplateContext,
) -> Result<String, TemplateError> {
    Ok(Template::parse(source)?.render(input, context)?)
}
