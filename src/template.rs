//! `wasmgate template render`: what a mapping template produces for a sample
//! request — the console's TEST button for templates.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use serde_json::{Map, Value};
use wasmgate_host::template::{Template, TemplateContext, TemplateInput};

#[derive(Subcommand)]
pub enum TemplateCommand {
    /// Render a template for a sample request and print the result.
    Render(RenderArgs),
}

#[derive(Args)]
pub struct RenderArgs {
    /// The template file (`-` reads standard input).
    #[arg(long)]
    template: PathBuf,
    /// The body (`$input.body`, `$input.path(…)`, `$input.json(…)`).
    #[arg(long, default_value = "")]
    body: String,
    #[command(flatten)]
    params: crate::api::RequestParams,
    /// A stage variable NAME=VALUE (repeatable).
    #[arg(long = "stage-var", value_name = "NAME=VALUE")]
    stage_var: Vec<String>,
    /// A `$context` value KEY=VALUE, dotted keys for nesting (identity.sourceIp=…).
    #[arg(long = "context", value_name = "KEY=VALUE")]
    context: Vec<String>,
}

use crate::name_value_pairs as pairs;

/// `$context` for the sample request: API Gateway's usual values, then the
/// ones given.
fn context(items: &[String]) -> anyhow::Result<Value> {
    let mut root = serde_json::json!({
        "requestId": "00000000-0000-0000-0000-000000000000",
        "httpMethod": "GET",
        "stage": "test",
        "resourcePath": "/",
        "path": "/test/",
        "apiId": "testapi",
        "identity": { "sourceIp": "127.0.0.1", "userAgent": "wasmgate template render" },
    });
    for (key, value) in pairs("context", items)? {
        let mut node = &mut root;
        let parts: Vec<&str> = key.split('.').collect();
        for (i, part) in parts.iter().enumerate() {
            let map: &mut Map<String, Value> = match node {
                Value::Object(m) => m,
                other => {
                    *other = Value::Object(Map::new());
                    other.as_object_mut().expect("just made an object")
                }
            };
            if i + 1 == parts.len() {
                map.insert(part.to_string(), Value::String(value.clone()));
                break;
            }
            node = map.entry(part.to_string()).or_insert_with(|| Value::Object(Map::new()));
        }
    }
    Ok(root)
}

pub fn run(cmd: TemplateCommand) -> anyhow::Result<ExitCode> {
    let TemplateCommand::Render(a) = cmd;
    let source = if a.template.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin()).context("reading the template from standard input")?
    } else {
        std::fs::read_to_string(&a.template).with_context(|| format!("reading {}", a.template.display()))?
    };
    let name = a.template.display();
    let template = match Template::parse(&source) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {name}: {e}");
            return Ok(ExitCode::FAILURE);
        }
    };
    let input = TemplateInput {
        body: a.body,
        path: pairs("path", &a.params.path)?,
        querystring: pairs("query", &a.params.query)?,
        header: pairs("header", &a.params.header)?,
        stage_variables: pairs("stage-var", &a.stage_var)?,
    };
    let mut ctx = TemplateContext::new(context(&a.context)?);
    match template.render_explained(&input, &mut ctx) {
        Ok((out, notes)) => {
            out!("{out}");
            // What Velocity swallowed, once per place (a loop repeats them).
            let mut told: Vec<(String, usize)> = Vec::new();
            for note in notes {
                let note = note.to_string();
                match told.iter_mut().find(|(n, _)| *n == note) {
                    Some((_, times)) => *times += 1,
                    None => told.push((note, 1)),
                }
            }
            for (note, times) in told {
                let times = if times > 1 { format!(" ({times} times)") } else { String::new() };
                eprintln!("warning: {name}: {note}{times}");
            }
            if let Some(status) = ctx.response_override_status() {
                eprintln!("responseOverride.status = {status}");
            }
            for (k, v) in ctx.response_override_headers() {
                eprintln!("responseOverride.header.{k} = {v}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("error: {name}: {e}");
            Ok(ExitCode::FAILURE)
        }
    }
}
