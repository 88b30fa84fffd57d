//! `wasmgate function …`: the admin API's function operations, named after
//! `aws lambda`'s (update-function-code, publish-version, create-alias, invoke …).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use base64::Engine as _;
use bytes::Bytes;
use clap::{Args, Subcommand};
use hyper::Method;
use serde_json::{Value, json};

use crate::client::{ClientArgs, enc, print_json};
use crate::output::{OutputArgs, Table, text};

#[derive(Subcommand)]
pub enum FunctionCommand {
    /// List functions.
    List(ClientOnly),
    /// Show a function with its versions and aliases.
    Get(NameArgs),
    /// Upload code as $LATEST (creates the function if it does not exist).
    #[command(visible_aliases = ["update-function-code", "create"])]
    UpdateCode(UpdateCodeArgs),
    /// Change $LATEST's configuration (only the given settings).
    #[command(visible_alias = "update-function-configuration")]
    UpdateConfig(UpdateConfigArgs),
    /// Publish $LATEST as a new immutable version (prints its number).
    #[command(visible_alias = "publish-version")]
    Publish(PublishArgs),
    /// List published versions.
    #[command(visible_alias = "list-versions")]
    Versions(NameArgs),
    /// Delete a function (with its versions and aliases), or one version.
    Delete(DeleteArgs),
    /// Invoke a function: NAME, NAME:$LATEST, NAME:7 or NAME:alias.
    Invoke(InvokeArgs),
    /// Manage aliases.
    #[command(subcommand)]
    Alias(AliasCommand),
}

#[derive(Subcommand)]
pub enum AliasCommand {
    /// List a function's aliases.
    List(NameArgs),
    /// Create or move an alias.
    Set(AliasSetArgs),
    /// Create an alias (fails if it exists).
    #[command(visible_alias = "create-alias")]
    Create(AliasSetArgs),
    /// Move an alias (fails if it does not exist).
    #[command(visible_alias = "update-alias")]
    Update(AliasSetArgs),
    /// Delete an alias.
    Delete(AliasNameArgs),
}

#[derive(Args)]
pub struct ClientOnly {
    #[command(flatten)]
    output: OutputArgs,
    #[command(flatten)]
    client: ClientArgs,
}

#[derive(Args)]
pub struct NameArgs {
    /// Function name.
    name: String,
    #[command(flatten)]
    output: OutputArgs,
    #[command(flatten)]
    client: ClientArgs,
}

#[derive(Args)]
pub struct UpdateCodeArgs {
    /// Function name.
    name: String,
    /// The component (.wasm) to upload.
    #[arg(long, required_unless_present_any = ["guest", "source"], conflicts_with_all = ["guest", "source"])]
    wasm: Option<PathBuf>,
    /// A guest built into wasmgate (e.g. items, echo) instead of a file.
    #[arg(long, conflicts_with = "source")]
    guest: Option<String>,
    /// A Python or JavaScript source to build first (as `wasmgate build`
    /// does) and upload: a file, or a directory with the handler's module.
    #[arg(long)]
    source: Option<PathBuf>,
    #[command(flatten)]
    source_args: crate::build::SourceArgs,
    /// Description of the function.
    #[arg(long)]
    description: Option<String>,
    #[command(flatten)]
    client: ClientArgs,
}

#[derive(Args)]
pub struct UpdateConfigArgs {
    /// Function name.
    name: String,
    /// Memory limit in MiB.
    #[arg(long)]
    memory_mb: Option<u32>,
    /// Timeout in milliseconds.
    #[arg(long)]
    timeout_ms: Option<u64>,
    /// Environment variable KEY=VALUE (repeatable; replaces the whole environment).
    #[arg(long = "env", value_name = "KEY=VALUE")]
    env: Vec<String>,
    /// Instances kept ready ahead of traffic.
    #[arg(long)]
    min_warm: Option<u32>,
    /// Most concurrent invocations (beyond: throttled); 0 throttles
    /// everything, `none` removes the limit.
    #[arg(long, value_name = "N|none")]
    max_concurrency: Option<Clearable>,
    /// Seconds an idle instance is kept.
    #[arg(long)]
    idle_ttl: Option<u64>,
    /// Reuse instances between calls (false: a fresh instance per call).
    #[arg(long)]
    reuse: Option<bool>,
    /// Where outbound HTTP may go: SCHEME://HOST[:PORT], e.g.
    /// https://api.example.com or 'http://127.0.0.1:*' (repeatable;
    /// replaces the whole list; `none` empties it).
    #[arg(long = "allowed-outbound-host", value_name = "URL|none")]
    allowed_outbound_hosts: Vec<String>,
    #[command(flatten)]
    client: ClientArgs,
}

#[derive(Args)]
pub struct PublishArgs {
    /// Function name.
    name: String,
    /// Description of the version.
    #[arg(long, default_value = "")]
    description: String,
    /// Publish only if $LATEST's code has this sha256.
    #[arg(long)]
    code_sha256: Option<String>,
    #[command(flatten)]
    client: ClientArgs,
}

#[derive(Args)]
pub struct DeleteArgs {
    /// Function name.
    name: String,
    /// Delete only this version.
    #[arg(long)]
    version: Option<String>,
    /// Delete the function even while a deployed stage calls it (those
    /// calls then answer 500).
    #[arg(long)]
    force: bool,
    #[command(flatten)]
    client: ClientArgs,
}

#[derive(Args)]
pub struct InvokeArgs {
    /// NAME, NAME:$LATEST, NAME:7 or NAME:alias.
    qualifier: String,
    /// The event (JSON).
    #[arg(long, default_value = "{}", conflicts_with = "payload_file")]
    payload: String,
    /// Read the event from a file.
    #[arg(long)]
    payload_file: Option<PathBuf>,
    /// Also print the invocation's log, as Lambda's `--log-type Tail`: its
    /// last 4 KB, START, the output, END and REPORT.
    #[arg(long)]
    log: bool,
    #[command(flatten)]
    client: ClientArgs,
}

#[derive(Args)]
pub struct AliasSetArgs {
    /// Function name.
    name: String,
    /// Alias name.
    alias: String,
    /// The version it names: $LATEST or a number.
    #[arg(long)]
    version: String,
    /// Send a share of calls to another version: VERSION=WEIGHT (e.g. 1=0.1 or 1=10%).
    #[arg(long, value_name = "VERSION=WEIGHT")]
    weight: Option<String>,
    /// Description of the alias.
    #[arg(long)]
    description: Option<String>,
    #[command(flatten)]
    client: ClientArgs,
}

#[derive(Args)]
pub struct AliasNameArgs {
    /// Function name.
    name: String,
    /// Alias name.
    alias: String,
    /// Delete the alias even while a deployed stage calls it (those calls
    /// then answer 500).
    #[arg(long)]
    force: bool,
    #[command(flatten)]
    client: ClientArgs,
}

pub async fn run(cmd: FunctionCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        FunctionCommand::List(a) => {
            let list = a.client.client()?.get_json("/v1/functions").await?;
            if a.output.json(&list) {
                return Ok(ExitCode::SUCCESS);
            }
            let functions = list["functions"].as_array().cloned().unwrap_or_default();
            if functions.is_empty() {
                outln!("no functions");
                return Ok(ExitCode::SUCCESS);
            }
            let mut table = Table::new(&["NAME", "VERSIONS", "ALIASES", "CODE", "LAST MODIFIED"]);
            for f in functions {
                let aliases: Vec<String> = f["aliases"].as_array().into_iter().flatten().map(text).collect();
                table.row(vec![
                    text(&f["name"]),
                    f["versions"].to_string(),
                    aliases.join(","),
                    short_hash(&f["code_sha256"]),
                    text(&f["last_modified"]),
                ]);
            }
            table.print();
        }
        FunctionCommand::Get(a) => {
            let f = a.client.client()?.get_json(&format!("/v1/functions/{}", enc(&a.name))).await?;
            if a.output.json(&f) {
                return Ok(ExitCode::SUCCESS);
            }
            print_function(&f);
        }
        FunctionCommand::UpdateCode(a) => {
            let mut path = format!("/v1/functions/{}/code", enc(&a.name));
            if let Some(d) = &a.description {
                path.push_str(&format!("?description={}", enc(d)));
            }
            let client = a.client.client()?;
            let wasm = [("content-type", "application/wasm")];
            // The code: streamed from its file (never read whole here), or bytes in hand.
            enum Code<'a> {
                File(&'a std::path::Path),
                Bytes(Bytes),
            }
            let code = match (&a.wasm, &a.guest, &a.source) {
                (Some(file), _, _) => Code::File(file),
                (None, Some(g), _) => Code::Bytes(Bytes::from_static(
                    wasmgate_host::guests::get(g).with_context(|| format!("no built-in guest {g:?}"))?,
                )),
                (None, None, Some(source)) => {
                    Code::Bytes(Bytes::from(crate::build::build_with_progress(source, &a.source_args).await?))
                }
                (None, None, None) => bail!("give --wasm FILE, --source PATH or --guest NAME"),
            };
            let size = match &code {
                Code::File(file) => std::fs::metadata(file).map_or(0, |m| m.len() as usize),
                Code::Bytes(b) => b.len(),
            };
            // The server compiles the code before it answers: say so, and
            // how long it took (a Python component takes seconds).
            eprintln!("uploading {} to {} and compiling it…", crate::build::megabytes(size), a.name);
            let resp = match code {
                Code::File(file) => client.call_with_file(Method::PUT, &path, &wasm, file).await?,
                Code::Bytes(b) => client.call(Method::PUT, &path, &wasm, b).await?,
            };
            if let Some(ms) = resp.header("x-wasmgate-compile-ms") {
                eprintln!("compiled in {ms} ms");
            }
            let f = resp.json();
            outln!(
                "{} $LATEST code_sha256 {}",
                f["name"].as_str().unwrap_or(&a.name),
                f["code_sha256"].as_str().unwrap_or("")
            );
        }
        FunctionCommand::UpdateConfig(a) => {
            let mut patch = serde_json::Map::new();
            let mut put = |k: &str, v: Value| {
                patch.insert(k.into(), v);
            };
            if let Some(v) = a.memory_mb {
                put("memory_mb", json!(v));
            }
            if let Some(v) = a.timeout_ms {
                put("timeout_ms", json!(v));
            }
            if !a.env.is_empty() {
                put("env", serde_json::to_value(crate::name_value_pairs("env", &a.env)?)?);
            }
            if let Some(v) = a.min_warm {
                put("min_warm", json!(v));
            }
            if let Some(Clearable(v)) = a.max_concurrency {
                put("max_concurrency", json!(v));
            }
            if let Some(v) = a.idle_ttl {
                put("idle_ttl", json!(v));
            }
            if let Some(v) = a.reuse {
                put("reuse", json!(v));
            }
            match a.allowed_outbound_hosts.as_slice() {
                [] => {}
                [none] if none == "none" => put("allowed_outbound_hosts", json!([])),
                hosts => put("allowed_outbound_hosts", json!(hosts)),
            }
            let path = format!("/v1/functions/{}/configuration", enc(&a.name));
            print_json(&a.client.client()?.send_json(Method::PATCH, &path, &Value::Object(patch)).await?);
        }
        FunctionCommand::Publish(a) => {
            let path = format!("/v1/functions/{}/versions", enc(&a.name));
            let body = json!({ "description": a.description, "code_sha256": a.code_sha256 });
            let bytes = serde_json::to_vec(&body)?;
            let r =
                a.client.client()?.call(Method::POST, &path, &[("content-type", "application/json")], bytes).await?;
            let version = r.json()["version"].clone();
            outln!("{version}");
            if r.status == hyper::StatusCode::OK {
                eprintln!(
                    "nothing published: version {version} already has $LATEST's code and configuration (the existing version is returned, as Lambda does)"
                );
            }
        }
        FunctionCommand::Versions(a) => {
            let v = a.client.client()?.get_json(&format!("/v1/functions/{}/versions", enc(&a.name))).await?;
            if a.output.json(&v) {
                return Ok(ExitCode::SUCCESS);
            }
            print_versions(v["versions"].as_array().into_iter().flatten());
        }
        FunctionCommand::Delete(a) => {
            let force = if a.force { "?force=true" } else { "" };
            let (path, what) = match &a.version {
                Some(v) => (
                    format!("/v1/functions/{}/versions/{}", enc(&a.name), enc(v)),
                    format!("version {v} of {}", a.name),
                ),
                None => (format!("/v1/functions/{}{force}", enc(&a.name)), format!("function {}", a.name)),
            };
            a.client.client()?.call(Method::DELETE, &path, &[], Bytes::new()).await?;
            outln!("deleted {what}");
        }
        FunctionCommand::Invoke(a) => return invoke(a).await,
        FunctionCommand::Alias(cmd) => alias(cmd).await?,
    }
    Ok(ExitCode::SUCCESS)
}

async fn invoke(a: InvokeArgs) -> anyhow::Result<ExitCode> {
    let (payload, source) = match &a.payload_file {
        Some(p) => (std::fs::read(p).with_context(|| format!("reading {}", p.display()))?, p.display().to_string()),
        None => (a.payload.clone().into_bytes(), "--payload".to_string()),
    };
    // Checked here, where the line and column point into what was typed.
    if let (false, Err(e)) = (payload.is_empty(), serde_json::from_slice::<Value>(&payload)) {
        bail!("{source} is not JSON: {e}");
    }
    let path = format!("/v1/functions/{}/invocations", enc(&a.qualifier));
    let headers: &[(&str, &str)] = if a.log { &[("x-amz-log-type", "Tail")] } else { &[] };
    let resp = a.client.client()?.call(Method::POST, &path, headers, Bytes::from(payload)).await?;
    outln!("{}", String::from_utf8_lossy(&resp.body));
    let micros: f64 = resp.header("x-wasmgate-duration-us").and_then(|us| us.parse().ok()).unwrap_or(0.0);
    eprintln!(
        "version {} ({} start, {:.3} ms)",
        resp.header("x-amz-executed-version").unwrap_or("?"),
        resp.header("x-wasmgate-start").unwrap_or("?"),
        micros / 1000.0,
    );
    if let Some(log) = resp.header("x-amz-log-result") {
        let text = base64::engine::general_purpose::STANDARD.decode(log).unwrap_or_default();
        eprint!("{}", String::from_utf8_lossy(&text));
    }
    if resp.header("x-amz-function-error").is_some() {
        let error = resp.json();
        eprintln!(
            "error {}: {}",
            error["errorType"].as_str().unwrap_or("?"),
            error["errorMessage"].as_str().unwrap_or("?")
        );
        return Ok(ExitCode::from(2));
    }
    Ok(ExitCode::SUCCESS)
}

async fn alias(cmd: AliasCommand) -> anyhow::Result<()> {
    let (a, method) = match cmd {
        AliasCommand::List(a) => {
            let v = a.client.client()?.get_json(&format!("/v1/functions/{}/aliases", enc(&a.name))).await?;
            if !a.output.json(&v) {
                print_aliases(v["aliases"].as_array().into_iter().flatten());
            }
            return Ok(());
        }
        AliasCommand::Delete(a) => {
            let force = if a.force { "?force=true" } else { "" };
            let path = format!("/v1/functions/{}/aliases/{}{force}", enc(&a.name), enc(&a.alias));
            a.client.client()?.call(Method::DELETE, &path, &[], Bytes::new()).await?;
            outln!("deleted alias {}", a.alias);
            return Ok(());
        }
        AliasCommand::Set(a) => (a, Method::PUT),
        AliasCommand::Create(a) => (a, Method::POST),
        AliasCommand::Update(a) => (a, Method::PATCH),
    };
    let mut weights = serde_json::Map::new();
    if let Some(w) = &a.weight {
        let (v, weight) =
            w.split_once('=').with_context(|| format!("--weight {w:?}: use VERSION=WEIGHT, e.g. 1=0.1"))?;
        let weight = parse_weight(weight).with_context(|| {
            format!("--weight {w:?}: give the share of calls version {v} gets as 0.1 or 10% (VERSION=WEIGHT)")
        })?;
        weights.insert(v.to_string(), json!(weight));
    }
    let body = json!({ "version": a.version, "additional_version_weights": weights, "description": a.description });
    let path = format!("/v1/functions/{}/aliases/{}", enc(&a.name), enc(&a.alias));
    let alias = a.client.client()?.send_json(method, &path, &body).await?;
    let extra = match alias["additional_version"].as_array() {
        Some(p) => format!(" (version {} gets {})", p[0], p[1]),
        None => String::new(),
    };
    outln!("{} → {}{extra}", alias["name"].as_str().unwrap_or(""), alias["version"].as_str().unwrap_or(""));
    Ok(())
}

/// The first 12 hex digits of a SHA-256 (as `git log --oneline` shortens).
fn short_hash(sha: &Value) -> String {
    text(sha).chars().take(12).collect()
}

/// A function as `function get` prints it: its settings, then its versions
/// and aliases.
fn print_function(f: &Value) {
    let c = &f["config"];
    let concurrency =
        if c["max_concurrency"].is_null() { "none".to_string() } else { c["max_concurrency"].to_string() };
    let mut table = Table::new(&["FUNCTION", &text(&f["name"])]);
    for (name, value) in [
        ("description", text(&f["description"])),
        ("code", format!("{} ({} bytes)", short_hash(&f["code_sha256"]), f["code_size"])),
        ("memory", format!("{} MB", c["memory_mb"])),
        ("timeout", format!("{} ms", c["timeout_ms"])),
        ("min warm", c["min_warm"].to_string()),
        ("max concurrency", concurrency),
        // In seconds, as `--idle-ttl` takes it.
        ("idle ttl", format!("{} s", c["idle_ttl"].as_u64().unwrap_or(0))),
        ("reuse", c["reuse"].to_string()),
        ("env", c["env"].as_object().map(|e| e.keys().cloned().collect::<Vec<_>>().join(", ")).unwrap_or_default()),
        (
            "outbound",
            match c["allowed_outbound_hosts"].as_array() {
                Some(hosts) if !hosts.is_empty() => {
                    hosts.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(", ")
                }
                _ => "none allowed".to_string(),
            },
        ),
        ("created", text(&f["created"])),
        ("last modified", text(&f["last_modified"])),
    ] {
        table.row(vec![name.to_string(), value]);
    }
    table.print();
    outln!();
    print_versions(f["versions"].as_object().into_iter().flat_map(|m| m.values()));
    outln!();
    print_aliases(f["aliases"].as_object().into_iter().flat_map(|m| m.values()));
}

fn print_versions<'a>(versions: impl Iterator<Item = &'a Value>) {
    let mut table = Table::new(&["VERSION", "CREATED", "CODE", "MEMORY", "TIMEOUT", "DESCRIPTION"]);
    for v in versions {
        table.row(vec![
            v["version"].to_string(),
            text(&v["created"]),
            short_hash(&v["code_sha256"]),
            format!("{} MB", v["config"]["memory_mb"]),
            format!("{} ms", v["config"]["timeout_ms"]),
            text(&v["description"]),
        ]);
    }
    table.print();
}

fn print_aliases<'a>(aliases: impl Iterator<Item = &'a Value>) {
    let mut table = Table::new(&["ALIAS", "VERSION", "WEIGHTED", "DESCRIPTION"]);
    for al in aliases {
        let weighted = match al["additional_version"].as_array() {
            Some(pair) => format!("{} gets {}", pair[0], pair[1]),
            None => String::new(),
        };
        table.row(vec![text(&al["name"]), text(&al["version"]), weighted, text(&al["description"])]);
    }
    table.print();
}

/// A number, or `none` to clear the setting.
#[derive(Clone, Copy, Debug)]
pub struct Clearable(Option<u32>);

impl std::str::FromStr for Clearable {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s.eq_ignore_ascii_case("none") {
            return Ok(Clearable(None));
        }
        s.parse()
            .map(|n| Clearable(Some(n)))
            .map_err(|_| format!("{s:?} is not a number (or none, to remove the limit)"))
    }
}

/// A share of calls: `0.1` or `10%`.
fn parse_weight(text: &str) -> Option<f64> {
    let text = text.trim();
    match text.strip_suffix('%') {
        Some(percent) => percent.trim().parse::<f64>().ok().map(|p| p / 100.0),
        None => text.parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_weight_is_a_fraction_or_a_percentage() {
        assert_eq!(super::parse_weight("0.1"), Some(0.1));
        assert_eq!(super::parse_weight("10%"), Some(0.1));
        assert_eq!(super::parse_weight("12.5 %"), Some(0.125));
        assert_eq!(super::parse_weight("ten"), None);
    }
}
