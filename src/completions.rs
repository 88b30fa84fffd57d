//! `wasmgate completions`: the shell completion script of the whole
//! command tree (clap_complete), examples included.

use std::process::ExitCode;

use clap::Args;

#[derive(Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    shell: clap_complete::Shell,
}

/// Prints the completion script for `shell` (e.g. `wasmgate completions
/// bash > ~/.local/share/bash-completion/completions/wasmgate`).
pub fn completions(a: CompletionsArgs, command: &mut clap::Command) -> anyhow::Result<ExitCode> {
    // Made whole, then written as every answer is: a reader that stops
    // early (`| head`) ends the command quietly rather than in a panic of
    // the generator's.
    let mut script = Vec::new();
    clap_complete::generate(a.shell, command, "wasmgate", &mut script);
    out!("{}", String::from_utf8_lossy(&script));
    Ok(ExitCode::SUCCESS)
}
