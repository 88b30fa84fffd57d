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
    // Written whole, once: a reader that stops early (`| head`) ends the
    // command quietly rather than in a panic of the generator's.
    let mut script = Vec::new();
    clap_complete::generate(a.shell, command, "wasmgate", &mut script);
    match std::io::Write::write_all(&mut std::io::stdout().lock(), &script) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(ExitCode::SUCCESS),
    }
}
