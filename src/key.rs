//! `wasmgate key …`: API keys, through the admin API. A key's value is
//! printed once, by `create` and `rotate`, alone on stdout (so
//! `KEY=$(wasmgate key create demo --plan P)` keeps it); what else they say
//! goes to stderr. Lists show keys masked.

use std::process::ExitCode;

use bytes::Bytes;
use clap::{Args, Subcommand};
use hyper::Method;
use serde_json::{Value, json};

use crate::client::{enc, print_json};
use crate::output::{Table, text};
use crate::plan::{Output, names};

#[derive(Subcommand)]
pub enum KeyCommand {
    /// Create an API key (prints its value, once).
    #[command(visible_alias = "create-api-key")]
    Create(CreateArgs),
    /// List API keys (values masked).
    #[command(visible_alias = "get-api-keys")]
    List(ListArgs),
    /// Show an API key (value masked).
    #[command(visible_alias = "get-api-key")]
    Get(NameArgs),
    /// Let an API key's calls through again.
    Enable(NameArgs),
    /// Refuse an API key's calls (403) until it is enabled again.
    Disable(NameArgs),
    /// Give an API key a new value (prints it, once); the old one stops working.
    Rotate(RotateArgs),
    /// Change an API key's plans or description.
    #[command(visible_alias = "update-api-key")]
    Update(UpdateArgs),
    /// Delete an API key.
    #[command(visible_alias = "delete-api-key")]
    Delete(NameArgs),
}

#[derive(Args)]
pub struct ListArgs {
    #[command(flatten)]
    out: Output,
}

#[derive(Args)]
pub struct NameArgs {
    /// API key name.
    name: String,
    #[command(flatten)]
    out: Output,
}

#[derive(Args)]
pub struct CreateArgs {
    /// API key name.
    name: String,
    /// A usage plan the key is in (repeatable; one plan per stage).
    #[arg(long = "plan", value_name = "PLAN")]
    plans: Vec<String>,
    /// The value (20 to 128 letters and digits; default: 40 generated).
    #[arg(long)]
    value: Option<String>,
    /// Description of the key.
    #[arg(long)]
    description: Option<String>,
    /// Create it disabled.
    #[arg(long)]
    disabled: bool,
    /// May refresh cached responses (`Cache-Control: max-age=0`).
    #[arg(long)]
    invalidate_cache: bool,
    #[command(flatten)]
    out: Output,
}

#[derive(Args)]
pub struct RotateArgs {
    /// API key name.
    name: String,
    /// The new value (default: 40 generated letters and digits).
    #[arg(long)]
    value: Option<String>,
    #[command(flatten)]
    out: Output,
}

#[derive(Args)]
pub struct UpdateArgs {
    /// API key name.
    name: String,
    /// Add the key to a usage plan (repeatable).
    #[arg(long = "plan", value_name = "PLAN")]
    plans: Vec<String>,
    /// Take the key out of a usage plan (repeatable).
    #[arg(long = "remove-plan", value_name = "PLAN")]
    remove_plans: Vec<String>,
    /// New description.
    #[arg(long)]
    description: Option<String>,
    /// Allow the key to refresh cached responses.
    #[arg(long, conflicts_with = "no_invalidate_cache")]
    invalidate_cache: bool,
    /// No longer allow the key to refresh cached responses.
    #[arg(long)]
    no_invalidate_cache: bool,
    #[command(flatten)]
    out: Output,
}

fn print_key(k: &Value) {
    outln!("API key {}", k["name"].as_str().unwrap_or(""));
    outln!("  id:          {}", k["id"].as_str().unwrap_or(""));
    outln!("  value:       {}", k["masked_value"].as_str().unwrap_or(""));
    outln!("  enabled:     {}", k["enabled"]);
    outln!("  plans:       {}", names(&k["plans"]));
    let description = k["description"].as_str().unwrap_or("");
    if !description.is_empty() {
        outln!("  description: {description}");
    }
    if k["invalidate_cache"] == true {
        outln!("  may invalidate cached responses");
    }
    outln!("  source:      {}", k["source"].as_str().unwrap_or(""));
    outln!("  created:     {}", k["created"].as_str().unwrap_or(""));
}

/// The answer of create or rotate: the value alone on stdout, the rest on stderr.
fn print_value(k: &Value, what: &str, json: bool) {
    if json {
        print_json(k);
        return;
    }
    outln!("{}", k["value"].as_str().unwrap_or(""));
    eprintln!(
        "{what} API key {} (id {}, plans: {}); the value above is shown only now",
        k["name"].as_str().unwrap_or(""),
        k["id"].as_str().unwrap_or(""),
        names(&k["plans"]),
    );
}

pub async fn run(cmd: KeyCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        KeyCommand::Create(a) => {
            let mut body = json!({
                "name": a.name,
                "plans": a.plans,
                "enabled": !a.disabled,
                "invalidate_cache": a.invalidate_cache,
            });
            if let Some(v) = &a.value {
                body["value"] = json!(v);
            }
            if let Some(d) = &a.description {
                body["description"] = json!(d);
            }
            let k = a.out.client.client()?.send_json(Method::POST, "/v1/apikeys", &body).await?;
            print_value(&k, "created", a.out.json());
        }
        KeyCommand::List(a) => {
            let v = a.out.client.client()?.get_json("/v1/apikeys").await?;
            if a.out.json() {
                print_json(&v);
                return Ok(ExitCode::SUCCESS);
            }
            let keys = v["api_keys"].as_array().cloned().unwrap_or_default();
            if keys.is_empty() {
                outln!("no API keys");
                return Ok(ExitCode::SUCCESS);
            }
            let mut table = Table::new(&["NAME", "ID", "ENABLED", "VALUE", "PLANS", "SOURCE", "DESCRIPTION"]);
            for k in keys {
                table.row(vec![
                    text(&k["name"]),
                    text(&k["id"]),
                    if k["enabled"] == true { "yes" } else { "no" }.to_string(),
                    text(&k["masked_value"]),
                    names(&k["plans"]),
                    text(&k["source"]),
                    text(&k["description"]),
                ]);
            }
            table.print();
        }
        KeyCommand::Get(a) => {
            let k = a.out.client.client()?.get_json(&format!("/v1/apikeys/{}", enc(&a.name))).await?;
            if a.out.json() {
                print_json(&k);
            } else {
                print_key(&k);
            }
        }
        KeyCommand::Enable(a) => set_enabled(a, true).await?,
        KeyCommand::Disable(a) => set_enabled(a, false).await?,
        KeyCommand::Rotate(a) => {
            let path = format!("/v1/apikeys/{}/rotate", enc(&a.name));
            let k = a.out.client.client()?.send_json(Method::POST, &path, &json!({ "value": a.value })).await?;
            print_value(&k, "rotated", a.out.json());
        }
        KeyCommand::Update(a) => {
            let mut body = serde_json::Map::new();
            if !a.plans.is_empty() {
                body.insert("add_plans".into(), json!(a.plans));
            }
            if !a.remove_plans.is_empty() {
                body.insert("remove_plans".into(), json!(a.remove_plans));
            }
            if let Some(d) = &a.description {
                body.insert("description".into(), json!(d));
            }
            if a.invalidate_cache || a.no_invalidate_cache {
                body.insert("invalidate_cache".into(), json!(a.invalidate_cache));
            }
            if body.is_empty() {
                anyhow::bail!(
                    "nothing to change: give --plan, --remove-plan, --description, --invalidate-cache or --no-invalidate-cache"
                );
            }
            let path = format!("/v1/apikeys/{}", enc(&a.name));
            let k = a.out.client.client()?.send_json(Method::PATCH, &path, &Value::Object(body)).await?;
            if a.out.json() {
                print_json(&k);
            } else {
                print_key(&k);
            }
        }
        KeyCommand::Delete(a) => {
            let path = format!("/v1/apikeys/{}", enc(&a.name));
            a.out.client.client()?.call(Method::DELETE, &path, &[], Bytes::new()).await?;
            if !a.out.json() {
                outln!("deleted API key {}", a.name);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn set_enabled(a: NameArgs, enabled: bool) -> anyhow::Result<()> {
    let path = format!("/v1/apikeys/{}", enc(&a.name));
    let k = a.out.client.client()?.send_json(Method::PATCH, &path, &json!({ "enabled": enabled })).await?;
    if a.out.json() {
        print_json(&k);
    } else {
        outln!("API key {} {}", a.name, if enabled { "enabled" } else { "disabled" });
    }
    Ok(())
}
