//! An example at the end of every command's `--help`: one table, here, so
//! that no command lacks one (a test walks the whole command tree).

use clap::Command;

/// (the command's path, its examples).
const EXAMPLES: &[(&str, &str)] = &[
    (
        "serve",
        "wasmgate serve                      # gateway.toml in this directory\nwasmgate serve --config /etc/wasmgate/gateway.toml --listen 0.0.0.0:8080",
    ),
    ("validate", "wasmgate validate                   # and against the running server's registry, if one answers"),
    ("function list", "wasmgate function list --output json"),
    ("function get", "wasmgate function get ItemsFunction"),
    (
        "function update-code",
        "wasmgate function update-code ItemsFunction --wasm target/wasm32-wasip2/release/items.wasm\nwasmgate function update-code ItemsFunction --source examples/python-items   # built with componentize-py",
    ),
    (
        "build",
        "wasmgate build examples/python-items -o items.wasm          # lambda_function.lambda_handler\nwasmgate build src/app.mjs --handler app.main -o app.wasm --toolchains target/toolchains",
    ),
    (
        "function update-config",
        "wasmgate function update-config ItemsFunction --memory-mb 64 --timeout-ms 1000 --min-warm 2\nwasmgate function update-config ItemsFunction --max-concurrency none\nwasmgate function update-config ItemsFunction --allowed-outbound-host https://api.example.com --allowed-outbound-host 'http://127.0.0.1:*'",
    ),
    (
        "function publish",
        "wasmgate function publish ItemsFunction --description \"v2\"   # prints the version's number",
    ),
    ("function versions", "wasmgate function versions ItemsFunction"),
    ("function delete", "wasmgate function delete ItemsFunction --version 3\nwasmgate function delete OldFunction"),
    (
        "function invoke",
        "wasmgate function invoke ItemsFunction:prod --payload '{\"ID\": 1}'\nwasmgate function invoke 'ItemsFunction:$LATEST' --payload-file event.json --log",
    ),
    ("function alias list", "wasmgate function alias list ItemsFunction"),
    (
        "function alias set",
        "wasmgate function alias set ItemsFunction prod --version 2\nwasmgate function alias set ItemsFunction prod --version 2 --weight 1=10%",
    ),
    ("function alias create", "wasmgate function alias create ItemsFunction staging --version '$LATEST'"),
    ("function alias update", "wasmgate function alias update ItemsFunction prod --version 3"),
    ("function alias delete", "wasmgate function alias delete ItemsFunction staging"),
    (
        "bench",
        "wasmgate bench ItemsFunction --payload '{\"ID\": 1}'\nwasmgate bench --guest counter --output json\nwasmgate bench --wasm items.wasm --compile-samples 1 --instances 50",
    ),
    ("deploy", "wasmgate deploy ItemsAPI --stage dev --description \"new 404 body\""),
    ("deployment list", "wasmgate deployment list ItemsAPI"),
    (
        "deployment rollback",
        "wasmgate deployment rollback ItemsAPI --stage dev\nwasmgate deployment rollback ItemsAPI --stage dev --to 3",
    ),
    ("api list", "wasmgate api list"),
    ("stage list", "wasmgate stage list ItemsAPI --output json"),
    ("test-invoke", "wasmgate test-invoke ItemsAPI GET /items/{ID} --stage dev --path ID=3"),
    ("template render", "wasmgate template render --template t.vtl --body '{\"a\": 1}' --path ID=3"),
    ("plan create", "wasmgate plan create Gold --stage ItemsAPI/prod --rate 50 --burst 100 --quota 10000/MONTH"),
    ("plan list", "wasmgate plan list"),
    ("plan get", "wasmgate plan get Gold"),
    ("plan update", "wasmgate plan update Gold --stage ItemsAPI/dev --no-quota"),
    ("plan delete", "wasmgate plan delete Gold"),
    ("plan usage", "wasmgate plan usage Gold --key alice --from 2026-12-01"),
    (
        "key create",
        "KEY=$(wasmgate key create alice --plan Gold)\nwasmgate key create bob --plan Gold --value \"$IMPORTED_KEY\"",
    ),
    ("key list", "wasmgate key list"),
    ("key get", "wasmgate key get alice"),
    ("key enable", "wasmgate key enable alice"),
    ("key disable", "wasmgate key disable alice"),
    ("key rotate", "wasmgate key rotate alice"),
    ("key update", "wasmgate key update alice --plan Silver --remove-plan Gold"),
    ("key delete", "wasmgate key delete alice"),
    ("cache flush", "wasmgate cache flush ItemsAPI --stage prod"),
    ("status", "wasmgate status\nwasmgate status --output json"),
    (
        "logs",
        "wasmgate logs ItemsFunction                    # the last 10 minutes of its invocations\n\
         wasmgate logs ItemsFunction:prod --follow      # through the prod alias, as they arrive\n\
         wasmgate logs --api ItemsAPI --stage prod --since 1h --filter ' 404 '",
    ),
    (
        "completions",
        "wasmgate completions bash > ~/.local/share/bash-completion/completions/wasmgate\nwasmgate completions zsh > \"${fpath[1]}/_wasmgate\"\nwasmgate completions fish > ~/.config/fish/completions/wasmgate.fish",
    ),
];

/// `command` with each (sub)command's examples after its help.
pub fn with_examples(command: Command) -> Command {
    add(command, "")
}

fn add(mut command: Command, path: &str) -> Command {
    let names: Vec<String> = command.get_subcommands().map(|c| c.get_name().to_string()).collect();
    for name in names {
        let sub_path = if path.is_empty() { name.clone() } else { format!("{path} {name}") };
        command = command.mut_subcommand(&name, |sub| add(sub, &sub_path));
    }
    match EXAMPLES.iter().find(|(p, _)| *p == path) {
        Some((_, example)) => {
            let indented: Vec<String> = example.lines().map(|l| format!("  {l}")).collect();
            command.after_help(format!("Examples:\n{}", indented.join("\n")))
        }
        None => command,
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// The commands without subcommands of their own, as paths.
    fn leaves(command: &clap::Command, path: &str, out: &mut Vec<String>) {
        let subs: Vec<_> = command.get_subcommands().filter(|c| c.get_name() != "help").collect();
        if subs.is_empty() {
            out.push(path.to_string());
        }
        for sub in subs {
            let p = if path.is_empty() { sub.get_name().to_string() } else { format!("{path} {}", sub.get_name()) };
            leaves(sub, &p, out);
        }
    }

    #[test]
    fn every_command_has_an_example_and_every_example_a_command() {
        let mut paths = Vec::new();
        leaves(&crate::Cli::command(), "", &mut paths);
        let missing: Vec<&String> = paths.iter().filter(|p| !super::EXAMPLES.iter().any(|(e, _)| e == p)).collect();
        assert!(missing.is_empty(), "commands without an example: {missing:?}");
        let stale: Vec<&str> =
            super::EXAMPLES.iter().map(|(p, _)| *p).filter(|p| !paths.iter().any(|q| q == p)).collect();
        assert!(stale.is_empty(), "examples of no command: {stale:?}");
        // Each example is the command itself, with arguments it takes.
        for (path, example) in super::EXAMPLES {
            for line in example.lines() {
                let words = shell_words(line);
                let start = words.iter().position(|w| w == "wasmgate").unwrap_or_else(|| panic!("{path}: {line}"));
                assert!(words[start..].join(" ").starts_with(&format!("wasmgate {path}")), "{path}: {line}");
                if let Err(e) = crate::Cli::command().try_get_matches_from(&words[start..]) {
                    panic!("{path}: {line}: {e}");
                }
            }
        }
    }

    /// A line's words as a POSIX shell splits them, up to a comment, a
    /// redirection or the end of a `$(…)`.
    fn shell_words(line: &str) -> Vec<String> {
        let line = line.split(" #").next().unwrap_or_default().split(" > ").next().unwrap_or_default();
        let line = line.split_once("$(").map_or(line, |(_, inner)| inner.trim_end_matches(')'));
        let (mut words, mut word, mut quote, mut any) = (Vec::new(), String::new(), None, false);
        for c in line.chars() {
            match (quote, c) {
                (None, ' ') => {
                    if any {
                        words.push(std::mem::take(&mut word));
                    }
                    any = false;
                }
                (None, '\'' | '"') => (quote, any) = (Some(c), true),
                (Some(q), c) if c == q => quote = None,
                (_, c) => (word, any) = (word + &c.to_string(), true),
            }
        }
        if any {
            words.push(word);
        }
        words
    }
}
