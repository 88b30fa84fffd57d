//! `wasmgate status`: what the running server reports of itself — its
//! runtime counters, each loaded version's pool, the policy store and each
//! stage's cache.

use std::process::ExitCode;

use clap::Args;

use crate::client::ClientArgs;
use crate::output::{OutputArgs, Table, text};

#[derive(Args)]
pub struct StatusArgs {
    #[command(flatten)]
    output: OutputArgs,
    #[command(flatten)]
    client: ClientArgs,
}

pub async fn status(a: StatusArgs) -> anyhow::Result<ExitCode> {
    let s = a.client.client()?.get_json("/v1/status").await?;
    if a.output.json(&s) {
        return Ok(ExitCode::SUCCESS);
    }
    let r = &s["runtime"];
    outln!("wasmgate {} at {}", text(&s["version"]), a.client.client()?.base());
    outln!(
        "functions {}, versions loaded {}, instances {} of {}, compiles {}, artifact loads {}",
        s["functions"],
        r["loaded_versions"],
        r["instances_alive"],
        r["max_instances"],
        r["compiles"],
        r["artifact_loads"]
    );
    outln!("policy store: {}", text(&s["policies"]["store"]));
    outln!();
    let mut pools = Table::new(&["FUNCTION", "VERSION", "BUSY", "IDLE"]);
    for p in s["pools"].as_array().into_iter().flatten() {
        pools.row(vec![text(&p["function"]), text(&p["version"]), p["busy"].to_string(), p["idle"].to_string()]);
    }
    pools.print();
    let caches: Vec<_> = s["policies"]["cache"].as_array().into_iter().flatten().collect();
    if !caches.is_empty() {
        outln!();
        let mut table = Table::new(&["CACHED STAGE", "HITS", "MISSES"]);
        for c in caches {
            table.row(vec![text(&c["stage"]), c["hits"].to_string(), c["misses"].to_string()]);
        }
        table.print();
    }
    Ok(ExitCode::SUCCESS)
}
