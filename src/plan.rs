//! `wasmgate plan …`: usage plans (the stages they apply to, their throttle
//! and quota) and their usage report, through the admin API.

use std::process::ExitCode;

use anyhow::{Context, bail};
use bytes::Bytes;
use clap::{Args, Subcommand};
use hyper::Method;
use serde_json::{Value, json};
use wasmgate_host::policy::catalog::Quota;
use wasmgate_host::policy::clock;

use crate::client::{ClientArgs, enc, print_json};
use crate::output::{Format, OutputArgs, Table, text};

#[derive(Subcommand)]
pub enum PlanCommand {
    /// Create a usage plan.
    #[command(visible_alias = "create-usage-plan")]
    Create(CreateArgs),
    /// List usage plans.
    #[command(visible_alias = "get-usage-plans")]
    List(ListArgs),
    /// Show a usage plan.
    #[command(visible_alias = "get-usage-plan")]
    Get(NameArgs),
    /// Change a usage plan: its stages, throttle, quota or description.
    #[command(visible_alias = "update-usage-plan")]
    Update(UpdateArgs),
    /// Delete a usage plan (bound to no stage).
    #[command(visible_alias = "delete-usage-plan")]
    Delete(NameArgs),
    /// A plan's usage per key per day: used and remaining.
    #[command(visible_alias = "get-usage")]
    Usage(UsageArgs),
}

/// `--output` and the admin API's whereabouts.
#[derive(Args)]
pub struct Output {
    #[command(flatten)]
    pub format: OutputArgs,
    #[command(flatten)]
    pub client: ClientArgs,
}

impl Output {
    /// `--output json`.
    pub fn json(&self) -> bool {
        self.format.output == Format::Json
    }
}

#[derive(Args)]
pub struct ListArgs {
    #[command(flatten)]
    out: Output,
}

#[derive(Args)]
pub struct NameArgs {
    /// Usage plan name.
    name: String,
    #[command(flatten)]
    out: Output,
}

/// A throttle: both halves or neither.
#[derive(Args)]
pub struct ThrottleArgs {
    /// Throttle: steady requests per second, per key.
    #[arg(long, requires = "burst")]
    rate: Option<f64>,
    /// Throttle: the burst (bucket size), per key.
    #[arg(long, requires = "rate")]
    burst: Option<u32>,
}

impl ThrottleArgs {
    fn to_json(&self) -> Option<Value> {
        match (self.rate, self.burst) {
            (Some(rate), Some(burst)) => Some(json!({ "rate": rate, "burst": burst })),
            _ => None,
        }
    }
}

/// A quota: `LIMIT/PERIOD` and its first period's offset.
#[derive(Args)]
pub struct QuotaArgs {
    /// Quota: LIMIT/PERIOD, e.g. 1000/DAY (periods: DAY, WEEK, MONTH; UTC calendar periods).
    #[arg(long, value_name = "LIMIT/PERIOD")]
    quota: Option<String>,
    /// Requests taken off the quota's first period.
    #[arg(long, requires = "quota", value_name = "N")]
    quota_offset: Option<u64>,
}

impl QuotaArgs {
    fn to_json(&self) -> anyhow::Result<Option<Value>> {
        let Some(text) = &self.quota else { return Ok(None) };
        let mut quota = Quota::parse(text).map_err(|e| anyhow::anyhow!("--quota {e}"))?;
        quota.offset = self.quota_offset.unwrap_or(0);
        quota.check().map_err(|e| anyhow::anyhow!("--quota-offset: {e}"))?;
        Ok(Some(serde_json::to_value(quota)?))
    }
}

#[derive(Args)]
pub struct CreateArgs {
    /// Usage plan name.
    name: String,
    /// A stage the plan applies to, API/STAGE (repeatable).
    #[arg(long = "stage", value_name = "API/STAGE")]
    stages: Vec<String>,
    #[command(flatten)]
    throttle: ThrottleArgs,
    #[command(flatten)]
    quota: QuotaArgs,
    /// Description of the plan.
    #[arg(long)]
    description: Option<String>,
    #[command(flatten)]
    out: Output,
}

#[derive(Args)]
pub struct UpdateArgs {
    /// Usage plan name.
    name: String,
    /// Add a stage, API/STAGE (repeatable).
    #[arg(long = "stage", value_name = "API/STAGE")]
    stages: Vec<String>,
    /// Remove a stage, API/STAGE (repeatable).
    #[arg(long = "remove-stage", value_name = "API/STAGE")]
    remove_stages: Vec<String>,
    #[command(flatten)]
    throttle: ThrottleArgs,
    /// Remove the plan's throttle.
    #[arg(long, conflicts_with_all = ["rate", "burst"])]
    no_throttle: bool,
    #[command(flatten)]
    quota: QuotaArgs,
    /// Remove the plan's quota.
    #[arg(long, conflicts_with = "quota")]
    no_quota: bool,
    /// New description of the plan.
    #[arg(long)]
    description: Option<String>,
    #[command(flatten)]
    out: Output,
}

#[derive(Args)]
pub struct UsageArgs {
    /// Usage plan name.
    name: String,
    /// Only this API key (by name).
    #[arg(long)]
    key: Option<String>,
    /// First day, YYYY-MM-DD (UTC; default: six days before --to).
    #[arg(long, value_name = "YYYY-MM-DD")]
    from: Option<String>,
    /// Last day, YYYY-MM-DD (UTC; default: today).
    #[arg(long, value_name = "YYYY-MM-DD")]
    to: Option<String>,
    #[command(flatten)]
    out: Output,
}

/// A JSON list of strings as `a, b` (`-` when empty).
pub(crate) fn names(value: &Value) -> String {
    let list: Vec<&str> = value.as_array().map(|a| a.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
    if list.is_empty() { "-".into() } else { list.join(", ") }
}

fn throttle_text(t: &Value) -> String {
    match t["rate"].as_f64() {
        Some(rate) => format!("{rate} req/s, burst {}", t["burst"]),
        None => "-".into(),
    }
}

fn quota_text(q: &Value) -> String {
    if q.is_null() {
        return "-".into();
    }
    let offset = q["offset"].as_u64().unwrap_or(0);
    let offset = if offset > 0 { format!(" (offset {offset})") } else { String::new() };
    format!("{}/{}{offset}", q["limit"], q["period"].as_str().unwrap_or("?"))
}

fn print_plan(p: &Value) {
    outln!("usage plan {}", p["name"].as_str().unwrap_or(""));
    let description = p["description"].as_str().unwrap_or("");
    if !description.is_empty() {
        outln!("  description: {description}");
    }
    outln!("  stages:      {}", names(&p["stages"]));
    outln!("  throttle:    {}", throttle_text(&p["throttle"]));
    outln!("  quota:       {}", quota_text(&p["quota"]));
    for (stage, methods) in p["method_throttle"].as_object().into_iter().flatten() {
        for (method, t) in methods.as_object().into_iter().flatten() {
            outln!("  throttle of {stage} {method}: {}", throttle_text(t));
        }
    }
    outln!("  keys:        {}", names(&p["keys"]));
    outln!("  source:      {}", p["source"].as_str().unwrap_or(""));
    outln!("  created:     {}", p["created"].as_str().unwrap_or(""));
}

fn check_day(flag: &str, day: &Option<String>) -> anyhow::Result<()> {
    if let Some(text) = day
        && clock::parse_day(text).is_none()
    {
        bail!("--{flag} {text:?}: use a date as YYYY-MM-DD");
    }
    Ok(())
}

pub async fn run(cmd: PlanCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        PlanCommand::Create(a) => {
            let mut body = json!({ "name": a.name, "stages": a.stages });
            if let Some(t) = a.throttle.to_json() {
                body["throttle"] = t;
            }
            if let Some(q) = a.quota.to_json()? {
                body["quota"] = q;
            }
            if let Some(d) = &a.description {
                body["description"] = json!(d);
            }
            let p = a.out.client.client()?.send_json(Method::POST, "/v1/usageplans", &body).await?;
            if a.out.json() {
                print_json(&p);
            } else {
                print_plan(&p);
            }
        }
        PlanCommand::List(a) => {
            let v = a.out.client.client()?.get_json("/v1/usageplans").await?;
            if a.out.json() {
                print_json(&v);
                return Ok(ExitCode::SUCCESS);
            }
            let plans = v["usage_plans"].as_array().cloned().unwrap_or_default();
            if plans.is_empty() {
                outln!("no usage plans");
                return Ok(ExitCode::SUCCESS);
            }
            let mut table = Table::new(&["NAME", "STAGES", "THROTTLE", "QUOTA", "KEYS", "SOURCE"]);
            for p in plans {
                table.row(vec![
                    text(&p["name"]),
                    names(&p["stages"]),
                    throttle_text(&p["throttle"]),
                    quota_text(&p["quota"]),
                    names(&p["keys"]),
                    text(&p["source"]),
                ]);
            }
            table.print();
        }
        PlanCommand::Get(a) => {
            let p = a.out.client.client()?.get_json(&format!("/v1/usageplans/{}", enc(&a.name))).await?;
            if a.out.json() {
                print_json(&p);
            } else {
                print_plan(&p);
            }
        }
        PlanCommand::Update(a) => {
            let mut body = serde_json::Map::new();
            if !a.stages.is_empty() {
                body.insert("add_stages".into(), json!(a.stages));
            }
            if !a.remove_stages.is_empty() {
                body.insert("remove_stages".into(), json!(a.remove_stages));
            }
            if let Some(t) = a.throttle.to_json() {
                body.insert("throttle".into(), t);
            } else if a.no_throttle {
                body.insert("throttle".into(), Value::Null);
            }
            if let Some(q) = a.quota.to_json()? {
                body.insert("quota".into(), q);
            } else if a.no_quota {
                body.insert("quota".into(), Value::Null);
            }
            if let Some(d) = &a.description {
                body.insert("description".into(), json!(d));
            }
            if body.is_empty() {
                bail!(
                    "nothing to change: give --stage, --remove-stage, --rate and --burst, --no-throttle, --quota, --no-quota or --description"
                );
            }
            let path = format!("/v1/usageplans/{}", enc(&a.name));
            let p = a.out.client.client()?.send_json(Method::PATCH, &path, &Value::Object(body)).await?;
            if a.out.json() {
                print_json(&p);
            } else {
                print_plan(&p);
            }
        }
        PlanCommand::Delete(a) => {
            let path = format!("/v1/usageplans/{}", enc(&a.name));
            a.out.client.client()?.call(Method::DELETE, &path, &[], Bytes::new()).await?;
            if !a.out.json() {
                outln!("deleted usage plan {}", a.name);
            }
        }
        PlanCommand::Usage(a) => usage(a).await?,
    }
    Ok(ExitCode::SUCCESS)
}

async fn usage(a: UsageArgs) -> anyhow::Result<()> {
    check_day("from", &a.from)?;
    check_day("to", &a.to)?;
    let mut query = Vec::new();
    if let Some(from) = &a.from {
        query.push(format!("startDate={}", enc(from)));
    }
    if let Some(to) = &a.to {
        query.push(format!("endDate={}", enc(to)));
    }
    if let Some(key) = &a.key {
        query.push(format!("key={}", enc(key)));
    }
    let mut path = format!("/v1/usageplans/{}/usage", enc(&a.name));
    if !query.is_empty() {
        path.push('?');
        path.push_str(&query.join("&"));
    }
    let report = a.out.client.client()?.get_json(&path).await?;
    if a.out.json() {
        print_json(&report);
        return Ok(());
    }
    let start = report["startDate"].as_str().unwrap_or("");
    let end = report["endDate"].as_str().unwrap_or("");
    let first = clock::parse_day(start).with_context(|| format!("the server's startDate {start:?}"))?;
    outln!("usage plan {}, {start} to {end} (UTC)", report["usagePlanId"].as_str().unwrap_or(&a.name));
    let items = report["items"].as_object().cloned().unwrap_or_default();
    if items.is_empty() {
        outln!("no API keys in this plan");
        return Ok(());
    }
    for (id, rows) in items {
        let name = report["keyNames"][&id].as_str().unwrap_or("?");
        outln!("\nAPI key {name} ({id})");
        let mut table = Table::new(&["DATE", "USED", "REMAINING"]);
        for (i, row) in rows.as_array().into_iter().flatten().enumerate() {
            let remaining = match &row[1] {
                Value::Null => "-".to_string(),
                n => n.to_string(),
            };
            table.row(vec![clock::format_day(first + i as i64), row[0].to_string(), remaining]);
        }
        table.print();
    }
    Ok(())
}
