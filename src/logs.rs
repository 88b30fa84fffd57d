//! `wasmgate logs`: a function's recent invocations (Lambda's START, END and
//! REPORT lines around its output) or a stage's access lines, from the
//! server's memory; `--follow` goes on printing what arrives, as `aws logs
//! tail --follow` does.

use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use clap::Args;

use crate::client::{ClientArgs, enc};

#[derive(Args)]
#[command(group = clap::ArgGroup::new("what").required(true).args(["function", "api"]))]
pub struct LogsArgs {
    /// The function, as FUNCTION or FUNCTION:QUALIFIER (the invocations made
    /// through an alias, or of a version).
    function: Option<String>,
    /// An API: with --stage, the stage's access lines.
    #[arg(long, requires = "stage")]
    api: Option<String>,
    /// The stage of --api.
    #[arg(long, requires = "api")]
    stage: Option<String>,
    /// Keep printing lines as they arrive (Ctrl-C ends it).
    #[arg(short, long)]
    follow: bool,
    /// How far back to start: a duration (10m, 1h30m, 2d) or a time
    /// (2026-12-07T18:00:00Z).
    #[arg(long, default_value = "10m", value_parser = parse_since)]
    since: SystemTime,
    /// Only lines that contain this text (an invocation's START, END and
    /// REPORT lines come with any of its lines that does).
    #[arg(long)]
    filter: Option<String>,
    #[command(flatten)]
    client: ClientArgs,
}

/// `--since`: a duration before now, or a time.
fn parse_since(text: &str) -> Result<SystemTime, String> {
    if let Ok(ago) = humantime::parse_duration(text) {
        return Ok(SystemTime::now().checked_sub(ago).unwrap_or(UNIX_EPOCH));
    }
    humantime::parse_rfc3339_weak(text)
        .map_err(|_| format!("{text:?} is neither a duration (10m, 1h30m, 2d) nor a time (2026-12-07T18:00:00Z)"))
}

/// How long one read waits for lines while following (the server's limit is 20 s).
const FOLLOW_WAIT_SECS: u64 = 10;

pub async fn logs(args: LogsArgs) -> anyhow::Result<ExitCode> {
    let path = match (&args.function, &args.api, &args.stage) {
        (Some(function), _, _) => format!("/v1/functions/{}/logs", enc(function)),
        (None, Some(api), Some(stage)) => format!("/v1/apis/{}/stages/{}/logs", enc(api), enc(stage)),
        _ => anyhow::bail!("name a function, or an API with --api and --stage"),
    };
    let client = args.client.client()?;
    let since = args.since.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis());
    let filter = args.filter.as_deref().map(|f| format!("&filter={}", enc(f))).unwrap_or_default();
    let mut after = 0u64;
    let mut first = true;
    loop {
        // The first read answers at once; a follower's next ones wait for lines.
        let wait = if first { 0 } else { FOLLOW_WAIT_SECS };
        first = false;
        let page = client.get_json(&format!("{path}?since={since}&after={after}&wait={wait}{filter}")).await?;
        for event in page["events"].as_array().into_iter().flatten() {
            let ms = event["timestamp"].as_u64().unwrap_or_default();
            let time = humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(ms));
            outln!("{time} {}", event["message"].as_str().unwrap_or_default());
        }
        if !args.follow {
            return Ok(ExitCode::SUCCESS);
        }
        after = page["next"].as_u64().context("the server's answer has no `next`")?;
    }
}
