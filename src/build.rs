//! `wasmgate build`: a Python or JavaScript function, written as for AWS
//! Lambda, built into a component with the language's toolchain
//! (`wasmgate_host::build`); also the build step of `function update-code
//! --source`. Says what it runs and how long it took: a build takes seconds.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use wasmgate_host::build::{BuildOptions, TOOLCHAINS_ENV};

#[derive(Args)]
pub struct BuildArgs {
    /// A .py, .mjs or .js file, or a directory with the handler's module
    /// (lambda_function.py, index.mjs or index.js) and the modules it imports.
    source: PathBuf,
    /// Where to write the component.
    #[arg(short, long, value_name = "FILE.wasm")]
    output: PathBuf,
    #[command(flatten)]
    source_args: SourceArgs,
}

/// How a source is built: shared by `build` and `function update-code --source`.
#[derive(Args, Clone, Default)]
pub struct SourceArgs {
    /// The handler, MODULE.FUNCTION (Lambda's Handler setting). Default:
    /// lambda_function.lambda_handler (Python), index.handler (JavaScript);
    /// for a single file, its own module.
    #[arg(long, value_name = "MODULE.FUNCTION")]
    pub handler: Option<String>,
    /// The directory the toolchains are installed in (tools/install-toolchains.sh
    /// lays one out); else they are looked for on PATH.
    #[arg(long, value_name = "DIR", env = TOOLCHAINS_ENV)]
    pub toolchains: Option<PathBuf>,
}

pub async fn build(a: BuildArgs) -> anyhow::Result<()> {
    let wasm = build_with_progress(&a.source, &a.source_args).await?;
    write_replacing(&a.output, &wasm)?;
    eprintln!("wrote {}", a.output.display());
    Ok(())
}

/// Builds `source`, telling the user on stderr what runs and what it took.
pub async fn build_with_progress(source: &Path, args: &SourceArgs) -> anyhow::Result<Vec<u8>> {
    let opts = BuildOptions { handler: args.handler.clone(), toolchains: args.toolchains.clone() };
    let plan = wasmgate_host::build::plan(source, &opts)?;
    eprintln!(
        "building {} ({}, handler {}) with {}…",
        source.display(),
        plan.source.language,
        plan.source.handler,
        plan.toolchain
    );
    let built = tokio::task::spawn_blocking(move || wasmgate_host::build::build(&plan))
        .await
        .context("the build stopped")??;
    eprintln!("built {} in {:.1} s", megabytes(built.wasm.len()), built.elapsed.as_secs_f64());
    Ok(built.wasm)
}

pub fn megabytes(bytes: usize) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

/// Writes `bytes` to `path` whole: a temporary file beside it, renamed.
fn write_replacing(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().with_context(|| format!("{}: not a file name", path.display()))?;
    let tmp = dir.join(format!(".{}.tmp-{}", name.to_string_lossy(), std::process::id()));
    std::fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display())).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}
