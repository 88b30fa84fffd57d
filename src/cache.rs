//! `wasmgate cache …`: a stage's response cache, through the admin API.

use std::process::ExitCode;

use bytes::Bytes;
use clap::{Args, Subcommand};
use hyper::Method;

use crate::client::{ClientArgs, enc};

#[derive(Subcommand)]
pub enum CacheCommand {
    /// Drop every cached response of a stage (API Gateway's FlushStageCache).
    #[command(visible_alias = "flush-stage-cache")]
    Flush(FlushArgs),
}

#[derive(Args)]
pub struct FlushArgs {
    /// The API.
    api: String,
    /// The stage whose cache is flushed.
    #[arg(long)]
    stage: String,
    #[command(flatten)]
    client: ClientArgs,
}

pub async fn run(cmd: CacheCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        CacheCommand::Flush(a) => {
            let path = format!("/v1/apis/{}/stages/{}/cache", enc(&a.api), enc(&a.stage));
            a.client.client()?.call(Method::DELETE, &path, &[], Bytes::new()).await?;
            outln!("flushed the cache of {}/{}", a.api, a.stage);
        }
    }
    Ok(ExitCode::SUCCESS)
}
