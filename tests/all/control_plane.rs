//! The control plane as an operator uses it: the `wasmgate` binary run as a
//! user types it against a real server, the exit status and what it prints.
//! The file and the registry agree; destructive commands are safe.

use crate::common::{ITEMS, TestServer, bundled_config, http};

/// The seed's API with `prod`'s `lambdaAlias` set to `alias`.
fn api_with_prod_alias(alias: &str) -> String {
    bundled_config()
        .replace("variables = { lambdaAlias = \"prod\" }", &format!("variables = {{ lambdaAlias = \"{alias}\" }}"))
}

/// The deployments `deployment list` prints (rows `#1 …`, not its header `#  ID …`).
fn deployments(list: &str) -> usize {
    list.lines().filter(|l| l.starts_with('#') && l[1..].starts_with(|c: char| c.is_ascii_digit())).count()
}

fn ok(out: (i32, String, String)) -> String {
    let (code, stdout, stderr) = out;
    assert_eq!(code, 0, "exit {code}\nstdout:\n{stdout}\nstderr:\n{stderr}");
    stdout
}

fn fails(out: (i32, String, String)) -> String {
    let (code, stdout, stderr) = out;
    assert_ne!(code, 0, "succeeded:\n{stdout}");
    stderr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deploy_naming_an_alias_that_does_not_exist_is_refused_and_the_stage_keeps_serving() {
    let server = TestServer::start(&bundled_config());
    assert_eq!(http("GET", &server.url("/prod/items"), &[], "").await.status, 200);

    server.rewrite_config(&api_with_prod_alias("production"));
    let err = fails(server.cli(&["deploy", "ItemsAPI", "--stage", "prod"]));
    for needle in ["prod", "lambdaAlias", "\"production\"", "ItemsFunction:production", "aliases: dev, prod"] {
        assert!(err.contains(needle), "{needle:?} missing from:\n{err}");
    }
    // Nothing was deployed: prod still serves its deployment.
    assert_eq!(http("GET", &server.url("/prod/items"), &[], "").await.status, 200);
    let out = ok(server.cli(&["deployment", "list", "ItemsAPI"]));
    assert_eq!(deployments(&out), 2, "the two initial deployments:\n{out}");

    // `validate` asks the running server too.
    let err = fails(server.cli(&["validate", "--config", server.config.to_str().unwrap()]));
    assert!(err.contains("ItemsFunction:production") && err.contains("aliases: dev, prod"), "{err}");
    // Without a server (this file's admin_listen is port 0), it checks the
    // calls against what the file declares, and says it checked the file alone.
    let (code, _, err) = server.cli_as_typed(&["validate"]);
    assert_ne!(code, 0);
    assert!(err.contains("checked the file alone") && err.contains("declares no such alias"), "{err}");
    server.rewrite_config(&bundled_config());
    let (code, out, err) = server.cli_as_typed(&["validate"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("checked the file alone"), "{err}");
    assert!(out.contains("ok:"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_function_added_to_the_file_is_created_by_the_deploy_that_needs_it() {
    let server = TestServer::start(&bundled_config());
    let echo = "\n[functions.EchoFunction]\nguest = \"echo\"\n\n[apis.ItemsAPI.resources.\"/echo\".POST.integration]\ntype = \"function\"\nfunction = \"EchoFunction\"\n";
    server.rewrite_config(&format!("{}{echo}", bundled_config()));
    let out = ok(server.cli(&["deploy", "ItemsAPI", "--stage", "dev"]));
    assert!(out.contains("created function EchoFunction"), "{out}");
    let r = http("POST", &server.url("/dev/echo"), &[], r#"{"a": 1}"#).await;
    assert_eq!(r.status, 200, "{}", r.text());
    // A function made with update-code is one `validate` knows.
    let wasm = crate::common::write_file(server.dir.path(), "echo.wasm", crate::common::guest("echo"));
    ok(server.cli(&["function", "update-code", "Other", "--wasm", wasm.to_str().unwrap()]));
    let other = "\n[apis.ItemsAPI.resources.\"/other\".POST.integration]\ntype = \"function\"\nfunction = \"Other\"\n";
    server.rewrite_config(&format!("{}{echo}{other}", bundled_config()));
    ok(server.cli(&["validate", "--config", server.config.to_str().unwrap()]));
}

#[test]
fn deleting_a_function_a_stage_calls_needs_force() {
    let server = TestServer::start(&bundled_config());
    let err = fails(server.cli(&["function", "delete", "ItemsFunction"]));
    for needle in ["ItemsAPI/dev", "ItemsAPI/prod", "--force"] {
        assert!(err.contains(needle), "{needle:?} missing from:\n{err}");
    }
    ok(server.cli(&["function", "get", "ItemsFunction"]));
    ok(server.cli(&["function", "delete", "ItemsFunction", "--force"]));
    fails(server.cli(&["function", "get", "ItemsFunction"]));
}

#[test]
fn rollback_steps_back_along_the_stage_history() {
    let server = TestServer::start(&bundled_config());
    // #1 dev, #2 prod (the first serve); #3 and #4 dev.
    for description in ["three", "four"] {
        ok(server.cli(&["deploy", "ItemsAPI", "--stage", "dev", "--description", description, "--force"]));
    }
    let serves = |server: &TestServer| {
        let out = ok(server.cli(&["stage", "list", "--output", "json"]));
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        v.as_array().unwrap().iter().find(|s| s["stage"] == "dev").unwrap()["deployment"].as_u64().unwrap()
    };
    assert_eq!(serves(&server), 4);
    ok(server.cli(&["deployment", "rollback", "ItemsAPI", "--stage", "dev"]));
    assert_eq!(serves(&server), 3);
    ok(server.cli(&["deployment", "rollback", "ItemsAPI", "--stage", "dev"]));
    assert_eq!(serves(&server), 1, "a second rollback goes further back, never forward");
    let err = fails(server.cli(&["deployment", "rollback", "ItemsAPI", "--stage", "dev"]));
    assert!(err.contains("no earlier deployment"), "{err}");
    // --to takes the number the list shows.
    ok(server.cli(&["deployment", "rollback", "ItemsAPI", "--stage", "dev", "--to", "4"]));
    assert_eq!(serves(&server), 4);
    let err = fails(server.cli(&["deployment", "rollback", "ItemsAPI", "--stage", "dev", "--to", "9"]));
    assert!(err.contains("#9") || err.contains("9"), "{err}");
}

#[test]
fn a_deploy_or_publish_that_changes_nothing_says_so() {
    let server = TestServer::start(&bundled_config());
    let out = ok(server.cli(&["deploy", "ItemsAPI", "--stage", "dev"]));
    assert!(out.contains("no changes"), "{out}");
    let list = ok(server.cli(&["deployment", "list", "ItemsAPI"]));
    assert_eq!(deployments(&list), 2, "{list}");
    let out = ok(server.cli(&["deploy", "ItemsAPI", "--stage", "dev", "--force"]));
    assert!(out.contains("#3"), "{out}");
    let (code, out, err) = server.cli(&["function", "publish", "ItemsFunction"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "1", "the number alone on stdout, for scripts");
    assert!(err.contains("nothing published: version 1 already has"), "{err}");
}

#[test]
fn with_admin_and_a_token_the_cli_never_reads_a_broken_configuration() {
    let server = TestServer::start(ITEMS);
    // Mid-edit: a template that does not parse, and then not even TOML.
    let broken_template = "\n[apis.A.resources.\"/x\".GET.integration]\ntype = \"mock\"\nrequest_templates = { \"application/json\" = '#if(' }\n";
    std::fs::write(&server.config, format!("{}{broken_template}", std::fs::read_to_string(&server.config).unwrap()))
        .unwrap();
    ok(server.cli(&["function", "list"]));
    ok(server.cli(&["function", "invoke", "ItemsFunction:prod", "--payload", "{}"]));
    std::fs::write(
        &server.config,
        format!("{}\n[apis.A\nbroken = \n", std::fs::read_to_string(&server.config).unwrap()),
    )
    .unwrap();
    let token = server.token();
    let admin = server.admin_url.trim_start_matches("http://").to_string();
    for args in [
        vec!["function", "list", "--admin", admin.as_str(), "--token", &token],
        vec!["function", "list", "--admin", server.admin_url.as_str(), "--data-dir", "data"],
    ] {
        let (code, out, err) = server.cli_as_typed(&args);
        assert_eq!(code, 0, "{args:?}: {err}");
        assert!(out.contains("ItemsFunction"), "{out}");
        assert!(err.is_empty(), "the file is not read at all: {err}");
    }
    // Without --admin, only the [server] table is read: the broken rest is a warning.
    let (code, _, err) = server.cli_as_typed(&["function", "list", "--data-dir", "data"]);
    assert!(err.contains("warning: gateway.toml") && err.contains("only its [server] table was read"), "{err}");
    // (its admin_listen is port 0 here: nothing answers there)
    assert_ne!(code, 0);
    assert!(err.contains("could not reach the admin API"), "{err}");
}

#[test]
fn the_gateway_s_address_given_as_the_admin_api_is_named_as_such() {
    let server = TestServer::start(ITEMS);
    let token = server.token();
    let (code, _, err) = server.cli_as_typed(&["function", "list", "--admin", &server.gateway, "--token", &token]);
    assert_ne!(code, 0);
    assert!(err.contains("is wasmgate's gateway, not its admin API"), "{err}");
}

#[test]
fn a_serve_that_cannot_listen_changes_nothing() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let config = crate::common::write_file(
        dir.path(),
        "gateway.toml",
        format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\nadmin_listen = \"127.0.0.1:0\"\ndata_dir = \"data\"\n{ITEMS}"
        )
        .as_bytes(),
    );
    let out = std::process::Command::new(crate::common::BIN)
        .args(["serve", "--config", config.to_str().unwrap()])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains(&format!("could not listen on 127.0.0.1:{port}")), "{err}");
    assert!(!err.contains("bootstrapped"), "the registry was touched: {err}");
    assert!(!dir.path().join("data").exists(), "the data directory it made is left behind");
}

#[test]
fn what_the_cli_reads_prints_as_a_table_or_as_json() {
    let server = TestServer::start(&bundled_config());
    for args in [
        vec!["function", "list"],
        vec!["function", "get", "ItemsFunction"],
        vec!["function", "versions", "ItemsFunction"],
        vec!["function", "alias", "list", "ItemsFunction"],
        vec!["deployment", "list", "ItemsAPI"],
        vec!["api", "list"],
        vec!["stage", "list"],
        vec!["plan", "list"],
        vec!["key", "list"],
        vec!["status"],
    ] {
        let text = ok(server.cli(&args));
        assert!(!text.trim().is_empty(), "{args:?} printed nothing");
        let mut json_args = args.clone();
        json_args.extend(["--output", "json"]);
        let json = ok(server.cli(&json_args));
        serde_json::from_str::<serde_json::Value>(&json).unwrap_or_else(|e| panic!("{args:?}: {e}:\n{json}"));
    }
    // A table's columns line up, whatever the widths of their cells.
    let list = ok(server.cli(&["stage", "list"]));
    let lines: Vec<&str> = list.lines().collect();
    let column = |line: &str| line.find("#").unwrap();
    assert_eq!(column(lines[1]), column(lines[2]), "{list}");
    assert_eq!(lines[0].find("DEPLOYMENT"), Some(column(lines[1])), "{list}");
    // The status of a fresh server: its pools, its policy store.
    let status = ok(server.cli(&["status"]));
    assert!(status.contains("ItemsFunction") && status.contains("policy store: embedded"), "{status}");
    // A setting can be cleared.
    let set = ok(server.cli(&["function", "update-config", "ItemsFunction", "--max-concurrency", "3"]));
    assert!(set.contains("\"max_concurrency\": 3"), "{set}");
    let cleared = ok(server.cli(&["function", "update-config", "ItemsFunction", "--max-concurrency", "none"]));
    assert!(cleared.contains("\"max_concurrency\": null"), "{cleared}");
    // Durations in milliseconds, everywhere.
    let (code, _, err) = server.cli(&["function", "invoke", "ItemsFunction:dev", "--payload", "{}"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains(" ms)") && !err.contains("µs"), "{err}");
}

#[test]
fn shell_completions_are_printed_for_each_shell() {
    for (shell, marker) in [("bash", "_wasmgate()"), ("zsh", "#compdef wasmgate"), ("fish", "complete -c wasmgate")] {
        let out = std::process::Command::new(crate::common::BIN).args(["completions", shell]).output().unwrap();
        assert!(out.status.success(), "{shell}");
        let script = String::from_utf8_lossy(&out.stdout);
        assert!(script.contains(marker), "{shell}: {}", &script[..script.len().min(200)]);
        assert!(script.contains("rollback"), "{shell}: the subcommands are in it");
    }
}

/// The CLI's peak resident memory (VmHWM, in kB), read from /proc while it
/// runs, the last reading before it exits. Linux only.
#[cfg(target_os = "linux")]
fn peak_rss_kb(child: &mut std::process::Child) -> u64 {
    let mut peak = 0;
    loop {
        if let Ok(status) = std::fs::read_to_string(format!("/proc/{}/status", child.id())) {
            let hwm = status
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
                .unwrap_or(0);
            peak = peak.max(hwm);
        }
        if child.try_wait().expect("wait for the CLI").is_some() {
            return peak;
        }
        std::thread::yield_now();
    }
}

#[cfg(target_os = "linux")]
#[test]
fn an_upload_is_streamed_from_its_file_not_read_whole() {
    // The server takes uploads this large (and reads each whole: it
    // compiles it); the CLI must not hold the file.
    let server = TestServer::start_with("max_code_mb = 512", ITEMS);
    let path = server.dir.path().join("big.wasm");
    let file = std::fs::File::create(&path).unwrap();
    file.set_len(256 << 20).unwrap();
    drop(file);
    let mut child = std::process::Command::new(crate::common::BIN)
        .args(["function", "update-code", "Big", "--wasm", path.to_str().unwrap()])
        .args(["--admin", &server.admin_url, "--data-dir", server.data_dir().to_str().unwrap()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let peak = peak_rss_kb(&mut child);
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    // Not a component: refused, once the server has it all.
    assert!(err.contains("not a WebAssembly binary"), "{err}");
    assert!(peak > 0, "no reading of the CLI's memory");
    assert!(peak < 96 * 1024, "the CLI peaked at {peak} kB sending a 256 MB file");
}
