//! The CLI's error messages, pinned: each case runs `wasmgate` as a user
//! types it against a real server, and its stderr must equal
//! `tests/ui/<case>.err` (as Spin's `tests/ui`). What changes from run to
//! run — the server's addresses, the temporary directory — is replaced by
//! `[ADMIN]`, `[GATEWAY]` and `[DIR]` first. A message changed on purpose
//! is written anew with `WASMGATE_BLESS=1 cargo test --test all ui::`.

use std::path::{Path, PathBuf};

use crate::common::{TestServer, bundled_config, write_file};

/// The directory of the pinned messages.
fn ui_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ui")
}

/// `text` with what differs between runs replaced.
fn normalize(server: &TestServer, text: &str) -> String {
    let dir = server.dir.path().display().to_string();
    text.replace(&server.admin_url, "[ADMIN]").replace(&server.gateway, "[GATEWAY]").replace(&dir, "[DIR]")
}

/// Compares (or, blessing, writes) each case's stderr; reports every
/// difference at once.
fn check(cases: &[(&str, String)]) {
    let bless = std::env::var_os("WASMGATE_BLESS").is_some();
    let mut wrong = Vec::new();
    for (name, stderr) in cases {
        let path = ui_dir().join(format!("{name}.err"));
        if bless {
            std::fs::create_dir_all(ui_dir()).unwrap();
            std::fs::write(&path, stderr).unwrap();
            continue;
        }
        let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        if &expected != stderr {
            wrong.push(format!("{name}:\n--- expected ({})\n{expected}--- got\n{stderr}", path.display()));
        }
    }
    assert!(wrong.is_empty(), "{}\n(WASMGATE_BLESS=1 writes what was got)", wrong.join("\n"));
}

/// Runs the CLI against `server`; it must fail. Returns its stderr, normalized.
fn fails(server: &TestServer, args: &[&str]) -> String {
    let (code, out, err) = server.cli(args);
    assert_ne!(code, 0, "{args:?} succeeded: {out}");
    normalize(server, &err)
}

/// [`fails`], with `args` alone (no `--admin` or `--data-dir` added).
fn fails_as_typed(server: &TestServer, args: &[&str]) -> String {
    let (code, out, err) = server.cli_as_typed(args);
    assert_ne!(code, 0, "{args:?} succeeded: {out}");
    normalize(server, &err)
}

#[test]
fn error_messages_say_what_to_do_next() {
    let server = TestServer::start_with("max_code_mb = 1", &bundled_config());
    let big = write_file(server.dir.path(), "big.wasm", &vec![0u8; 3 << 20]);
    let not_json = "{\"ID\": 1,\n bad}";
    let mut cases = vec![
        ("unknown_function", fails(&server, &["function", "invoke", "ItemsFuncton:prod"])),
        ("empty_qualifier", fails(&server, &["function", "invoke", "ItemsFunction:"])),
        ("unknown_qualifier", fails(&server, &["function", "invoke", "ItemsFunction:production"])),
        ("misspelt_alias", fails(&server, &["function", "invoke", "ItemsFunction:prd"])),
        ("alias_delete_unknown", fails(&server, &["function", "alias", "delete", "ItemsFunction", "prd"])),
        ("payload_not_json", fails(&server, &["function", "invoke", "ItemsFunction:dev", "--payload", not_json])),
        ("memory_too_small", fails(&server, &["function", "update-config", "ItemsFunction", "--memory-mb", "1"])),
        (
            "weight_format",
            fails(
                &server,
                &["function", "alias", "set", "ItemsFunction", "prod", "--version", "1", "--weight", "2=ten"],
            ),
        ),
        (
            "max_concurrency_format",
            fails(&server, &["function", "update-config", "ItemsFunction", "--max-concurrency", "lots"]),
        ),
        ("delete_in_use", fails(&server, &["function", "delete", "ItemsFunction"])),
        ("alias_delete_in_use", fails(&server, &["function", "alias", "delete", "ItemsFunction", "prod"])),
        ("code_too_large", fails(&server, &["function", "update-code", "Big", "--wasm", big.to_str().unwrap()])),
        ("rollback_nothing_earlier", fails(&server, &["deployment", "rollback", "ItemsAPI", "--stage", "dev"])),
        ("rollback_unknown_stage", fails(&server, &["deployment", "rollback", "ItemsAPI", "--stage", "production"])),
        (
            "rollback_unknown_number",
            fails(&server, &["deployment", "rollback", "ItemsAPI", "--stage", "dev", "--to", "9"]),
        ),
        ("deploy_unknown_api", fails(&server, &["deploy", "ItemAPI", "--stage", "dev"])),
        ("rollback_unknown_api", fails(&server, &["deployment", "rollback", "ItemAPI", "--stage", "dev"])),
        ("deployment_list_unknown_api", fails(&server, &["deployment", "list", "ItemAPI"])),
        ("cache_flush_unknown_stage", fails(&server, &["cache", "flush", "ItemsAPI", "--stage", "prd"])),
        ("test_invoke_unknown_api", fails(&server, &["test-invoke", "ItemAPI", "GET", "/items", "--stage", "dev"])),
        ("stage_list_unknown_api", fails(&server, &["stage", "list", "ItemAPI"])),
        ("unknown_plan", fails(&server, &["plan", "get", "CloudAcademyPln"])),
        ("unknown_plan_of_a_key", fails(&server, &["key", "create", "k", "--plan", "CloudAcademy"])),
        (
            "admin_is_the_gateway",
            fails_as_typed(&server, &["function", "list", "--admin", &server.gateway, "--token", &server.token()]),
        ),
    ];
    server.rewrite_config(
        &bundled_config()
            .replace("variables = { lambdaAlias = \"prod\" }", "variables = { lambdaAlias = \"production\" }"),
    );
    cases.push(("deploy_unresolved_alias", fails(&server, &["deploy", "ItemsAPI", "--stage", "prod"])));
    cases.push((
        "validate_unresolved_alias",
        fails(&server, &["validate", "--config", server.config.to_str().unwrap()]),
    ));
    let config = server.config.to_str().unwrap();
    let alone = fails_as_typed(&server, &["validate", "--config", config, "--admin", "127.0.0.1:1", "--token", "x"]);
    cases.push(("validate_file_alone_unresolved_alias", alone));
    let pattern = bundled_config().replace("selection_pattern = \"NotFoundError\"", "selection_pattern = \"4\\\\d{2\"");
    server.rewrite_config(&pattern);
    cases.push(("selection_pattern", fails(&server, &["validate", "--config", server.config.to_str().unwrap()])));
    // A function the file declares, created once and deleted since: the
    // deploy that needs it says how to create it again.
    server.rewrite_config(&bundled_config());
    let (code, _, err) = server.cli(&["function", "delete", "ItemsFunction", "--force"]);
    assert_eq!(code, 0, "{err}");
    cases.push(("deploy_deleted_function", fails(&server, &["deploy", "ItemsAPI", "--stage", "dev"])));
    check(&cases);
}
