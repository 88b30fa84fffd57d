//! `wasmgate`: the command line. Parses arguments and calls the library
//! (`wasmgate-host`); one module per subcommand. `main` owns exit codes and
//! prints the whole error chain.

/// `println!` for a command's answer, except that a reader gone (`wasmgate
/// logs F | head`) ends the command quietly, as the end of a pipe ends
/// `cat`, rather than in `println!`'s panic ([`write_out`]).
macro_rules! outln {
    () => {
        $crate::write_out(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::write_out(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// `print!` as [`outln!`] is `println!`.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::write_out(format_args!($($arg)*))
    };
}

mod api;
mod bench;
mod build;
mod cache;
mod client;
mod completions;
mod examples;
mod function;
mod key;
mod log_format;
mod log_output;
mod logs;
mod output;
mod plan;
mod serve;
mod status;
mod template;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Writes a command's answer to standard output. A reader that went away
/// (a closed pipe) ends the process with success: whoever read what they
/// wanted is no failure of the command's. Any other failure to write ends
/// it with one.
pub(crate) fn write_out(text: std::fmt::Arguments<'_>) {
    use std::io::Write as _;
    if let Err(e) = std::io::stdout().lock().write_fmt(text) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: cannot write to standard output: {e}");
        std::process::exit(1);
    }
}

/// mimalloc instead of the system allocator: a request allocates and frees
/// many small values across threads, and glibc's free lists took a tenth of
/// a request's time (`benches/README.md`, "Decisions in force").
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Self-hosted serverless APIs: REST routes to WebAssembly functions.
#[derive(Parser)]
#[command(name = "wasmgate", version, about, long_about = None)]
pub(crate) struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway and the admin API for a gateway.toml.
    Serve(serve::ServeArgs),
    /// Check a gateway.toml without serving it.
    Validate(serve::ValidateArgs),
    /// Manage and invoke functions (upload code, publish versions, aliases).
    #[command(subcommand)]
    Function(function::FunctionCommand),
    /// Build a Python or JavaScript function, written as for AWS Lambda, into a component.
    Build(build::BuildArgs),
    /// Measure cold, warm and hot starts of a function.
    Bench(bench::BenchArgs),
    /// Deploy an API's current definition to one stage.
    Deploy(api::DeployArgs),
    /// List or roll back an API's deployments.
    #[command(subcommand)]
    Deployment(api::DeploymentCommand),
    /// List the deployed APIs.
    #[command(subcommand)]
    Api(api::ApiCommand),
    /// List the stages and the deployment each serves.
    #[command(subcommand)]
    Stage(api::StageCommand),
    /// Run one method of a deployed stage and show the execution log.
    TestInvoke(api::TestInvokeArgs),
    /// Work with mapping templates (render one for a sample request).
    #[command(subcommand)]
    Template(template::TemplateCommand),
    /// Manage usage plans (stages, throttle, quota) and read their usage.
    #[command(subcommand)]
    Plan(plan::PlanCommand),
    /// Manage API keys (create, enable, disable, rotate, plans).
    #[command(subcommand)]
    Key(key::KeyCommand),
    /// Flush a stage's response cache.
    #[command(subcommand)]
    Cache(cache::CacheCommand),
    /// What the running server reports: counters, pools, caches.
    Status(status::StatusArgs),
    /// A function's recent invocations, or a stage's access lines (--follow: as they arrive).
    Logs(logs::LogsArgs),
    /// Print shell completions (bash, zsh, fish, elvish, powershell).
    Completions(completions::CompletionsArgs),
}

/// `NAME=VALUE` arguments of a repeatable flag, in order, every one kept.
pub(crate) fn name_value_list(flag: &str, items: &[String]) -> anyhow::Result<Vec<(String, String)>> {
    use anyhow::Context;
    items
        .iter()
        .map(|item| {
            item.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .with_context(|| format!("--{flag} {item:?}: use NAME=VALUE"))
        })
        .collect()
}

/// `NAME=VALUE` arguments of a repeatable flag as a map (a repeated name
/// keeps its last value).
pub(crate) fn name_value_pairs(flag: &str, items: &[String]) -> anyhow::Result<indexmap::IndexMap<String, String>> {
    Ok(name_value_list(flag, items)?.into_iter().collect())
}

/// Logs go to stderr through [`log_output`]: requests never wait for it.
/// `directive` is added to the filter (a command's own, e.g. `bench`'s for
/// the function's log). Returns the guard that writes out what is queued
/// when dropped.
fn init_logging(directive: Option<&str>) -> log_output::LogGuard {
    use tracing_subscriber::EnvFilter;
    let mut filter = EnvFilter::try_from_env("WASMGATE_LOG")
        .or_else(|_| EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| EnvFilter::new("info"));
    if let Some(directive) = directive {
        filter = filter.add_directive(directive.parse().expect("a command's log directive parses"));
    }
    // Colours only on a terminal: logs sent to a file or a collector stay plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let (writer, guard) = log_output::LogOutput::start(std::io::stderr());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .event_format(log_format::LineFormat::default())
        .with_writer(writer)
        .init();
    guard
}

fn main() -> ExitCode {
    let cli = {
        use clap::{CommandFactory, FromArgMatches};
        let matches = examples::with_examples(Cli::command()).get_matches();
        Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
    };
    let directive = match &cli.command {
        Command::Bench(args) => Some(args.function_log_directive()),
        _ => None,
    };
    let logs = init_logging(directive);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            drop(logs);
            eprintln!("error: could not start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve(args) => serve::serve(args).await,
            Command::Validate(args) => serve::validate(args).await,
            Command::Function(cmd) => function::run(cmd).await,
            Command::Build(args) => build::build(args).await.map(|()| ExitCode::SUCCESS),
            Command::Bench(args) => bench::run(args).await,
            Command::Deploy(args) => api::deploy(args).await,
            Command::Deployment(cmd) => api::deployment(cmd).await,
            Command::Api(cmd) => api::api(cmd).await,
            Command::Stage(cmd) => api::stage(cmd).await,
            Command::TestInvoke(args) => api::test_invoke(args).await,
            Command::Template(cmd) => template::run(cmd),
            Command::Plan(cmd) => plan::run(cmd).await,
            Command::Key(cmd) => key::run(cmd).await,
            Command::Cache(cmd) => cache::run(cmd).await,
            Command::Status(args) => status::status(args).await,
            Command::Logs(args) => logs::logs(args).await,
            Command::Completions(args) => {
                completions::completions(args, &mut examples::with_examples(<Cli as clap::CommandFactory>::command()))
            }
        }
    });
    // The log lines first, then the error that ends the command.
    drop(runtime);
    drop(logs);
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
