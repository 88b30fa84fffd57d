//! `wasmgate deploy`, `wasmgate deployment …` and `wasmgate test-invoke`: an
//! API's stages and deployments, through the admin API.

use std::process::ExitCode;

use clap::{Args, Subcommand};
use hyper::Method;
use serde_json::{Value, json};

use crate::client::ClientArgs;

#[derive(Args)]
pub struct DeployArgs {
    /// The API (as named in the server's gateway.toml).
    api: String,
    /// The stage to deploy to (other stages are left as they are).
    #[arg(long)]
    stage: String,
    /// Description of the deployment.
    #[arg(long)]
    description: Option<String>,
    #[command(flatten)]
    client: ClientArgs,
}

#[derive(Subcommand)]
pub enum DeploymentCommand {
    /// List an API's deployments and which stage serves which.
    List(ApiArgs),
    /// Point a stage back at its previous deployment (or --to ID).
    Rollback(RollbackArgs),
}

#[derive(Args)]
pub struct ApiArgs {
    api: String,
    #[command(flatten)]
    client: ClientArgs,
}

#[derive(Args)]
pub struct RollbackArgs {
    api: String,
    #[arg(long)]
    stage: String,
    /// The deployment to go back to (default: the stage's previous one).
    #[arg(long)]
    to: Option<String>,
    #[command(flatten)]
    client: ClientArgs,
}

#[derive(Args)]
pub struct TestInvokeArgs {
    /// The API.
    api: String,
    /// The HTTP method.
    method: String,
    /// The resource path, e.g. /items/{ID}.
    resource_path: String,
    /// The stage whose deployment runs.
    #[arg(long)]
    stage: String,
    #[command(flatten)]
    params: RequestParams,
    /// The request body.
    #[arg(long)]
    body: Option<String>,
    #[command(flatten)]
    client: ClientArgs,
}

/// The parameters of a sample request (`test-invoke`, `template render`).
#[derive(Args)]
pub struct RequestParams {
    /// A path parameter NAME=VALUE (repeatable).
    #[arg(long = "path", value_name = "NAME=VALUE")]
    pub path: Vec<String>,
    /// A query string parameter NAME=VALUE (repeatable; a repeated name is sent
    /// with each value, as `?a=1&a=2`, and a template reads its last, as API Gateway's).
    #[arg(long = "query", value_name = "NAME=VALUE")]
    pub query: Vec<String>,
    /// A header NAME=VALUE (repeatable; a repeated name is sent on a line per value).
    #[arg(long = "header", value_name = "NAME=VALUE")]
    pub header: Vec<String>,
}

/// `NAME=VALUE` pairs as a JSON object.
fn pairs(flag: &str, items: &[String]) -> anyhow::Result<Value> {
    Ok(serde_json::to_value(crate::name_value_pairs(flag, items)?)?)
}

/// NAME=VALUE items as `{"NAME": ["VALUE", …]}`: a name given more than once
/// keeps every value (a query string's `?lang=en&lang=fr`, a repeated header).
fn multi_pairs(flag: &str, items: &[String]) -> anyhow::Result<Value> {
    let mut map: indexmap::IndexMap<String, Vec<String>> = indexmap::IndexMap::new();
    for (name, value) in crate::name_value_list(flag, items)? {
        map.entry(name).or_default().push(value);
    }
    Ok(serde_json::to_value(map)?)
}

pub async fn deploy(a: DeployArgs) -> anyhow::Result<ExitCode> {
    let body = json!({ "stage": a.stage, "description": a.description });
    let d = a.client.client()?.send_json(Method::POST, &format!("/v1/apis/{}/deployments", a.api), &body).await?;
    println!("deployed {} to stage {}: deployment {} (#{})", a.api, a.stage, d["id"].as_str().unwrap_or("?"), d["seq"]);
    Ok(ExitCode::SUCCESS)
}

pub async fn deployment(cmd: DeploymentCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        DeploymentCommand::List(a) => {
            let v = a.client.client()?.get_json(&format!("/v1/apis/{}/deployments", a.api)).await?;
            let stages = v["stages"].as_array().cloned().unwrap_or_default();
            println!("{:<4} {:<12} {:<26} {:<16} DESCRIPTION", "#", "ID", "CREATED", "STAGES");
            for d in v["deployments"].as_array().cloned().unwrap_or_default() {
                let id = d["id"].as_str().unwrap_or("");
                let serving: Vec<&str> =
                    stages.iter().filter(|s| s["deployment_id"] == id).filter_map(|s| s["stage"].as_str()).collect();
                println!(
                    "{:<4} {:<12} {:<26} {:<16} {}",
                    d["seq"],
                    id,
                    d["created"].as_str().unwrap_or(""),
                    serving.join(","),
                    d["description"].as_str().unwrap_or("")
                );
            }
        }
        DeploymentCommand::Rollback(a) => {
            let path = format!("/v1/apis/{}/stages/{}/rollback", a.api, a.stage);
            let s = a.client.client()?.send_json(Method::POST, &path, &json!({ "deployment_id": a.to })).await?;
            println!("stage {} now serves deployment {}", a.stage, s["deployment_id"].as_str().unwrap_or("?"));
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn test_invoke(a: TestInvokeArgs) -> anyhow::Result<ExitCode> {
    let body = json!({
        "stage": a.stage,
        "method": a.method,
        "resource_path": a.resource_path,
        "path": pairs("path", &a.params.path)?,
        "query": multi_pairs("query", &a.params.query)?,
        "headers": multi_pairs("header", &a.params.header)?,
        "body": a.body,
    });
    let r = a.client.client()?.send_json(Method::POST, &format!("/v1/apis/{}/test-invoke", a.api), &body).await?;
    println!("Status: {}", r["status"]);
    println!("Latency: {:.2} ms", r["latency_ms"].as_f64().unwrap_or(0.0));
    println!("\nResponse headers:");
    for (name, values) in r["multi_value_headers"].as_object().cloned().unwrap_or_default() {
        for value in values.as_array().cloned().unwrap_or_default() {
            println!("  {name}: {}", value.as_str().unwrap_or(""));
        }
    }
    println!("\nResponse body:\n{}", r["body"].as_str().unwrap_or(""));
    if let Some(inv) = r["invocation"].as_object() {
        println!(
            "\nFunction: {} version {} ({} start, {} µs)",
            inv["function"].as_str().unwrap_or(""),
            inv["version"].as_str().unwrap_or(""),
            inv["start"].as_str().unwrap_or(""),
            inv["duration_us"]
        );
        println!("Event: {}", inv["event"]);
        let logs = inv["logs"].as_str().unwrap_or("");
        if !logs.is_empty() {
            println!("Function logs:\n{}", logs.trim_end());
        }
    }
    println!("\nExecution log:");
    for line in r["log"].as_array().cloned().unwrap_or_default() {
        println!("  {}", line.as_str().unwrap_or(""));
    }
    Ok(ExitCode::SUCCESS)
}
