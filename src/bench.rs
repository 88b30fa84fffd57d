//! `wasmgate bench`: cold, warm and hot start latencies of a function.
//!
//! The code comes from the running server (`FUNCTION[:qualifier]`, downloaded
//! through the admin API), from `--wasm FILE` or from a built-in `--guest`;
//! it is measured in this process with the same engine settings as the server.
//!
//! The function's own log (what it writes, logged under `wasmgate::function`
//! at `info` as `serve` logs it) is discarded: a run makes thousands of calls,
//! and the table is what a benchmark shows. `--show-logs` keeps it.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use bytes::Bytes;
use clap::Args;
use hyper::Method;
use wasmgate_host::runtime::FunctionConfig;
use wasmgate_host::runtime::bench::{Harness, Samples, table};

use crate::client::ClientArgs;
use crate::output::OutputArgs;

#[derive(Args)]
pub struct BenchArgs {
    /// The function to measure (its $LATEST, or FUNCTION:VERSION).
    #[arg(required_unless_present_any = ["wasm", "guest"])]
    function: Option<String>,
    /// Measure a component file instead.
    #[arg(long, conflicts_with = "guest")]
    wasm: Option<PathBuf>,
    /// Measure a built-in guest instead (e.g. items).
    #[arg(long)]
    guest: Option<String>,
    /// The event to send.
    #[arg(long, default_value = r#"{"ID": 1}"#)]
    payload: String,
    /// Compilations to time (an 18 MB Python component takes seconds each).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u16).range(1..))]
    compile_samples: u16,
    /// Instances kept at once to measure the resident memory of one.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u16).range(1..))]
    instances: u16,
    /// Samples of warm starts (hot gets ten times as many).
    #[arg(long, default_value_t = 2000)]
    samples: usize,
    #[command(flatten)]
    output: OutputArgs,
    /// Also print the function's log (discarded otherwise: one line or more per call).
    #[arg(long)]
    show_logs: bool,
    #[command(flatten)]
    client: ClientArgs,
}

impl BenchArgs {
    /// The log filter directive for the function's log during the run.
    pub fn function_log_directive(&self) -> &'static str {
        if self.show_logs { "wasmgate::function=info" } else { "wasmgate::function=off" }
    }
}

pub async fn run(args: BenchArgs) -> anyhow::Result<ExitCode> {
    let (wasm, config, name) = if let Some(path) = &args.wasm {
        (
            std::fs::read(path).with_context(|| format!("reading {}", path.display()))?,
            FunctionConfig::default(),
            path.display().to_string(),
        )
    } else if let Some(g) = &args.guest {
        let code = wasmgate_host::guests::get(g).with_context(|| format!("no built-in guest {g:?}"))?;
        (code.to_vec(), FunctionConfig::default(), format!("guest {g}"))
    } else {
        let qualified = args.function.clone().unwrap_or_default();
        let (name, version) = match qualified.split_once(':') {
            Some((n, v)) => (n.to_string(), Some(v.to_string())),
            None => (qualified.clone(), None),
        };
        let client = args.client.client()?;
        let f = client.get_json(&format!("/v1/functions/{name}")).await?;
        let mut path = format!("/v1/functions/{name}/code");
        let mut config = f["config"].clone();
        if let Some(v) = &version {
            path.push_str(&format!("?version={v}"));
            config = f["versions"][v]["config"].clone();
        }
        let code = client.call(Method::GET, &path, &[], Bytes::new()).await?.body.to_vec();
        let config: FunctionConfig = serde_json::from_value(config).unwrap_or_default();
        (code, config, qualified)
    };
    let harness = Harness::new(wasm, config, &args.payload, None).await?;
    let samples = Samples {
        compile: usize::from(args.compile_samples),
        warm: args.samples,
        hot: args.samples * 10,
        ..Samples::default()
    };
    let rows = harness.run(samples).await?;
    let resident = harness.resident_per_instance(usize::from(args.instances)).await?;
    let json = serde_json::json!({
        "rows": rows,
        "resident_bytes_per_instance": resident,
        "instances": args.instances,
    });
    if !args.output.json(&json) {
        outln!("{name}: event {}", args.payload);
        out!("{}", table(&rows));
        if let Some(bytes) = resident {
            outln!(
                "resident memory per warm instance: {:.2} MB ({} instances, each after one call)",
                bytes as f64 / 1e6,
                args.instances
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
