//! `wasmgate deploy`, `wasmgate deployment …` and `wasmgate test-invoke`: an
//! API's stages and deployments, through the admin API.

use std::process::ExitCode;

use clap::{Args, Subcommand};
use hyper::Method;
use serde_json::{Value, json};

use crate::client::{ClientArgs, enc};
use crate::output::{OutputArgs, Table, text};

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
    /// Deploy even when the stage already serves this very definition.
    #[arg(long)]
    force: bool,
    #[command(flatten)]
    client: ClientArgs,
}

#[derive(Subcommand)]
pub enum DeploymentCommand {
    /// List an API's deployments, which stage serves which, and each
    /// stage's history.
    List(ApiArgs),
    /// Point a stage one step back along its history (or at --to N).
    Rollback(RollbackArgs),
}

#[derive(Subcommand)]
pub enum ApiCommand {
    /// List the deployed APIs with their stages and newest deployment.
    List(ListArgs),
}

#[derive(Subcommand)]
pub enum StageCommand {
    /// List the stages (of one API, or all) and the deployment each serves.
    List(StageListArgs),
}

#[derive(Args)]
pub struct ListArgs {
    #[command(flatten)]
    output: OutputArgs,
    #[command(flatten)]
    client: ClientArgs,
}

#[derive(Args)]
pub struct StageListArgs {
    /// Only this API's stages.
    api: Option<String>,
    #[command(flatten)]
    output: OutputArgs,
    #[command(flatten)]
    client: ClientArgs,
}

#[derive(Args)]
pub struct ApiArgs {
    api: String,
    #[command(flatten)]
    output: OutputArgs,
    #[command(flatten)]
    client: ClientArgs,
}

#[derive(Args)]
pub struct RollbackArgs {
    api: String,
    #[arg(long)]
    stage: String,
    /// The deployment to go back to: its number as `deployment list` shows
    /// it (3 or #3) or its id (default: one step back along the stage's
    /// history).
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
    let body = json!({ "stage": a.stage, "description": a.description, "force": a.force });
    let d = a.client.client()?.send_json(Method::POST, &format!("/v1/apis/{}/deployments", enc(&a.api)), &body).await?;
    for function in d["created_functions"].as_array().into_iter().flatten() {
        outln!("created function {} (declared in the configuration, new to the registry)", text(function));
    }
    if d["deployed"] == json!(false) {
        outln!(
            "no changes: stage {} of {} already serves this definition (deployment #{}); nothing deployed (--force deploys it again)",
            a.stage,
            a.api,
            d["seq"]
        );
    } else {
        outln!("deployed {} to stage {}: deployment #{} ({})", a.api, a.stage, d["seq"], text(&d["id"]));
    }
    Ok(ExitCode::SUCCESS)
}

/// `#3`, the number of deployment `id` of `api` (`deployments` as the admin
/// API lists them), or the id itself when it is not among them.
fn number(deployments: &[Value], id: &str) -> String {
    deployments.iter().find(|d| d["id"] == id).map(|d| format!("#{}", d["seq"])).unwrap_or_else(|| id.to_string())
}

pub async fn deployment(cmd: DeploymentCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        DeploymentCommand::List(a) => {
            let v = a.client.client()?.get_json(&format!("/v1/apis/{}/deployments", enc(&a.api))).await?;
            if a.output.json(&v) {
                return Ok(ExitCode::SUCCESS);
            }
            let stages = v["stages"].as_array().cloned().unwrap_or_default();
            let deployments = v["deployments"].as_array().cloned().unwrap_or_default();
            let mut table = Table::new(&["#", "ID", "CREATED", "SERVED BY", "DESCRIPTION"]);
            for d in &deployments {
                let serving: Vec<String> =
                    stages.iter().filter(|s| s["deployment_id"] == d["id"]).map(|s| text(&s["stage"])).collect();
                table.row(vec![
                    format!("#{}", d["seq"]),
                    text(&d["id"]),
                    text(&d["created"]),
                    serving.join(","),
                    text(&d["description"]),
                ]);
            }
            table.print();
            for s in &stages {
                let steps: Vec<String> = s["history"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|c| {
                        let n = number(&deployments, c["deployment_id"].as_str().unwrap_or(""));
                        if c["rollback"] == json!(true) { format!("{n} (rollback)") } else { n }
                    })
                    .collect();
                outln!("stage {}: {}", text(&s["stage"]), steps.join(" → "));
            }
        }
        DeploymentCommand::Rollback(a) => {
            let client = a.client.client()?;
            let path = format!("/v1/apis/{}/stages/{}/rollback", enc(&a.api), enc(&a.stage));
            let s = client.send_json(Method::POST, &path, &json!({ "deployment_id": a.to })).await?;
            let v = client.get_json(&format!("/v1/apis/{}/deployments", enc(&a.api))).await?;
            let deployments = v["deployments"].as_array().cloned().unwrap_or_default();
            let id = s["deployment_id"].as_str().unwrap_or("?");
            outln!("stage {} now serves deployment {} ({id})", a.stage, number(&deployments, id));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The stages of the deployed APIs, as `stage list` prints them in JSON:
/// `{api, stage, deployment (its number), deployment_id, description,
/// last_updated, history}`.
fn stage_rows(apis: &Value, only: Option<&str>) -> Vec<Value> {
    let mut rows = Vec::new();
    for api in apis.as_array().into_iter().flatten() {
        if only.is_some_and(|o| api["name"] != o) {
            continue;
        }
        let deployments = api["deployments"].as_array().cloned().unwrap_or_default();
        for s in api["stages"].as_array().into_iter().flatten() {
            let d = deployments.iter().find(|d| d["id"] == s["deployment_id"]).cloned().unwrap_or_default();
            rows.push(json!({
                "api": api["name"],
                "stage": s["stage"],
                "deployment": d["seq"],
                "deployment_id": s["deployment_id"],
                "description": d["description"],
                "last_updated": s["last_updated"],
                "history": s["history"],
            }));
        }
    }
    rows
}

pub async fn api(cmd: ApiCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        ApiCommand::List(a) => {
            let apis = a.client.client()?.get_json("/v1/apis").await?;
            if a.output.json(&apis) {
                return Ok(ExitCode::SUCCESS);
            }
            let mut table = Table::new(&["API", "STAGES", "DEPLOYMENTS", "NEWEST"]);
            for api in apis.as_array().into_iter().flatten() {
                let stages: Vec<String> =
                    api["stages"].as_array().into_iter().flatten().map(|s| text(&s["stage"])).collect();
                let deployments = api["deployments"].as_array().cloned().unwrap_or_default();
                let newest =
                    deployments.last().map(|d| format!("#{} {}", d["seq"], text(&d["created"]))).unwrap_or_default();
                table.row(vec![text(&api["name"]), stages.join(","), deployments.len().to_string(), newest]);
            }
            table.print();
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn stage(cmd: StageCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        StageCommand::List(a) => {
            let apis = a.client.client()?.get_json("/v1/apis").await?;
            if let Some(api) = &a.api
                && !apis.as_array().into_iter().flatten().any(|x| x["name"] == api.as_str())
            {
                let names: Vec<String> = apis.as_array().into_iter().flatten().map(|x| text(&x["name"])).collect();
                let names = names.iter().map(String::as_str);
                let known = wasmgate_host::suggest::hint_and_list(api, "the deployed APIs", names);
                anyhow::bail!("API {api:?} is not deployed{known}");
            }
            let rows = stage_rows(&apis, a.api.as_deref());
            if a.output.json(&Value::Array(rows.clone())) {
                return Ok(ExitCode::SUCCESS);
            }
            let mut table = Table::new(&["API", "STAGE", "DEPLOYMENT", "ID", "UPDATED", "DESCRIPTION"]);
            for r in &rows {
                table.row(vec![
                    text(&r["api"]),
                    text(&r["stage"]),
                    format!("#{}", r["deployment"]),
                    text(&r["deployment_id"]),
                    text(&r["last_updated"]),
                    text(&r["description"]),
                ]);
            }
            table.print();
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
    outln!("Status: {}", r["status"]);
    outln!("Latency: {:.2} ms", r["latency_ms"].as_f64().unwrap_or(0.0));
    outln!("\nResponse headers:");
    for (name, values) in r["multi_value_headers"].as_object().cloned().unwrap_or_default() {
        for value in values.as_array().cloned().unwrap_or_default() {
            outln!("  {name}: {}", value.as_str().unwrap_or(""));
        }
    }
    outln!("\nResponse body:\n{}", r["body"].as_str().unwrap_or(""));
    if let Some(inv) = r["invocation"].as_object() {
        outln!(
            "\nFunction: {} version {} ({} start, {:.3} ms)",
            inv["function"].as_str().unwrap_or(""),
            inv["version"].as_str().unwrap_or(""),
            inv["start"].as_str().unwrap_or(""),
            inv["duration_us"].as_f64().unwrap_or(0.0) / 1000.0
        );
        outln!("Event: {}", inv["event"]);
        let logs = inv["logs"].as_str().unwrap_or("");
        if !logs.is_empty() {
            outln!("Function logs:\n{}", logs.trim_end());
        }
    }
    outln!("\nExecution log:");
    for line in r["log"].as_array().cloned().unwrap_or_default() {
        outln!("  {}", line.as_str().unwrap_or(""));
    }
    Ok(ExitCode::SUCCESS)
}
