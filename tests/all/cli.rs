//! The function commands (upload, publish, aliases, a canary, invoke) and
//! bench against a real server, with their errors.

use serde_json::{Value, json};

use crate::common::{ITEMS, TestServer, guest, write_file};

#[test]
fn the_function_commands_and_their_errors() {
    let server = TestServer::start(ITEMS);
    let (code, out, err) = server.cli(&["function", "list"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("ItemsFunction") && out.contains("dev,prod"), "{out}");

    let (code, out, _) = server.cli(&["function", "invoke", "ItemsFunction:prod", "--payload", "{}"]);
    assert_eq!(code, 0);
    let items: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(items.as_array().unwrap().len(), 4);

    let (code, out, err) = server.cli(&["function", "invoke", "ItemsFunction:dev", "--payload", r#"{"ID": 1}"#]);
    assert_eq!(code, 0);
    assert_eq!(serde_json::from_str::<Value>(out.trim()).unwrap(), json!({"ID": 1, "name": "Pen", "price": 2.5}));
    assert!(err.contains("version $LATEST"), "{err}");

    let (code, _, err) = server.cli(&["function", "invoke", "ItemsFunction:dev", "--payload", r#"{"ID": 5}"#]);
    assert_ne!(code, 0, "a function error exits non-zero");
    assert!(err.contains("NotFoundError"), "{err}");

    let wasm = write_file(server.dir.path(), "new.wasm", guest("echo"));
    let (code, out, err) = server.cli(&["function", "update-code", "ItemsFunction", "--wasm", wasm.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("code_sha256"), "{out}");
    let (code, out, _) = server.cli(&["function", "publish", "ItemsFunction", "--description", "v2"]);
    assert_eq!(code, 0);
    assert_eq!(out.trim(), "2");
    let (code, out, _) = server.cli(&["function", "alias", "set", "ItemsFunction", "prod", "--version", "2"]);
    assert_eq!(code, 0);
    assert!(out.contains("prod → 2"), "{out}");
    let (code, out, err) =
        server.cli(&["function", "alias", "set", "ItemsFunction", "prod", "--version", "2", "--weight", "1=0.1"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("version 1 gets 0.1"), "{out}");
    // prod runs version 2 (echo), or, one call in ten, version 1 (the items);
    // the CLI says which on stderr, then the invocation's log.
    let (code, out, err) =
        server.cli(&["function", "invoke", "ItemsFunction:prod", "--payload", r#"{"x": 1}"#, "--log"]);
    assert_eq!(code, 0, "{err}");
    let answer: Value = serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{e}: {out}"));
    let (version, log) = err.split_once('\n').unwrap_or_else(|| panic!("a version line, then the log: {err}"));
    if version.starts_with("version 2 ") {
        assert_eq!(answer["event"], json!({"x": 1}), "{out}");
        let request_id = answer["context"]["requestId"].as_str().unwrap();
        assert!(log.contains(&format!("echo stdout {request_id}\n")), "{err}");
        assert!(log.contains(&format!("echo stderr {request_id}\n")), "{err}");
    } else {
        assert!(version.starts_with("version 1 "), "{err}");
        assert_eq!(answer.as_array().map(Vec::len), Some(4), "{out}");
        assert!(log.contains(r#"Event: {"x":1}"#), "{err}");
    }

    // Errors are clear and exit non-zero.
    let (code, _, err) = server.cli(&["function", "alias", "set", "ItemsFunction", "prod", "--version", "9"]);
    assert_ne!(code, 0);
    assert!(err.contains("Function not found: ItemsFunction:9"), "{err}");
    let bad = write_file(server.dir.path(), "bad.wasm", b"nope");
    let (code, _, err) = server.cli(&["function", "update-code", "ItemsFunction", "--wasm", bad.to_str().unwrap()]);
    assert_ne!(code, 0);
    assert!(err.contains("not a WebAssembly binary"), "{err}");
}

/// A reader that stops early (`wasmgate logs F | head -1`) ends the
/// command quietly and successfully, as the end of a pipe ends `cat`.
#[tokio::test(flavor = "multi_thread")]
async fn a_command_whose_reader_stops_early_ends_quietly() {
    use std::io::BufRead;
    let server = TestServer::start("[functions.Echo]\nguest = \"echo\"\n");
    // More than a pipe holds (64 KB): the command is still writing when
    // its reader goes.
    let event = json!({"log": "y".repeat(200_000)}).to_string();
    assert_eq!(server.invoke("Echo", &event).await.status, 200);
    let mut child = std::process::Command::new(crate::common::BIN)
        .args(["logs", "Echo", "--admin", &server.admin_url, "--data-dir"])
        .arg(server.data_dir())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut first).unwrap();
    assert!(first.contains(" START RequestId: "), "{first}");
    // The reader is gone (dropped with its pipe's end).
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert_eq!(err, "", "nothing said, no panic");
}

#[test]
fn bench_prints_cold_warm_and_hot_latencies() {
    let server = TestServer::start(ITEMS);
    let (code, out, err) = server.cli(&["bench", "ItemsFunction", "--samples", "50"]);
    assert_eq!(code, 0, "{err}");
    for row in ["cold (compile)", "cold (cached artifact)", "warm (fresh instance)", "hot (reused instance)"] {
        assert!(out.contains(row), "{row} missing in\n{out}");
    }
    let (code, out, err) = server.cli(&["bench", "--guest", "counter", "--samples", "20", "--output", "json"]);
    assert_eq!(code, 0, "{err}");
    let got: Value = serde_json::from_str(&out).unwrap();
    let rows = &got["rows"];
    assert_eq!(rows.as_array().unwrap().len(), 4);
    assert!(rows[3]["p50_us"].as_f64().unwrap() > 0.0);
    assert!(got["resident_bytes_per_instance"].as_u64().unwrap() > 0, "{got}");
}

#[test]
fn a_bad_configuration_is_rejected_naming_the_key_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("[server]\nlisten = \"127.0.0.1:0\"\nlistne = 1\n", "server.listne: TOML parse error", "line 3"),
        ("[functions.F]\nguest = \"items\"\ntimeout_ms = \"3s\"\n", "functions.F.timeout_ms: ", "line 3"),
        ("[functions.F]\nguest = \"itemz\"\n", "functions.F.guest: unknown guest \"itemz\"", ":2:"),
        ("[functions.F]\nguest = \"items\"\naliases = { prod = \"1\" }\n", "functions.F.aliases.prod", ":3:"),
        ("[functions.F]\nwasm = \"missing.wasm\"\n", "no such file", ":2:"),
        ("[server]\nlisten = \"nowhere\"\n", "server.listen", ":2:"),
        // A value out of range: at its key's own line, not its table's.
        (
            "[functions.F]\nguest = \"items\"\ndescription = \"d\"\n\nmemory_mb = 100000\n",
            "functions.F.memory_mb: memory_mb must be between",
            ":5:",
        ),
        (
            "[functions.F]\nguest = \"items\"\nenv = { AWS_LAMBDA_FUNCTION_NAME = \"G\" }\n",
            "reserved keys that are set by wasmgate and cannot be modified: AWS_LAMBDA_FUNCTION_NAME",
            ":3:",
        ),
        (
            "[functions.F]\nguest = \"items\"\n\n[functions.F.env]\nAWS_LAMBDA_FUNCTION_NAME = \"x\"\n",
            "functions.F.env: env: reserved keys",
            ":4:",
        ),
        (
            "[usage_plans.P]\nstages = []\n\nquota = { limit = 0, period = \"DAY\" }\n",
            "usage_plans.P.quota: a quota's limit must be at least 1",
            ":4:",
        ),
        ("[server]\nbody_read_timeout_ms = 0\n", "server.body_read_timeout_ms: must be at least 1", ":2:"),
        ("[server]\nmax_outbound_requests = 0\n", "server.max_outbound_requests: must be between 1 and 10000", ":2:"),
        ("[server]\nrecent_logs_mb = 0\n", "server.recent_logs_mb: must be between 1 and 65536", ":2:"),
        ("[server]\nmax_memory_mb = 70000\n", "server.max_memory_mb: must be between 1 and 65536", ":2:"),
        ("[server]\nmax_code_mb = 2048\n", "server.max_code_mb: must be between 1 and 1024", ":2:"),
        (
            "[server]\nmax_outbound_response_mb = 0\n",
            "server.max_outbound_response_mb: must be between 1 and 1024",
            ":2:",
        ),
        // Outbound hosts, and sources to build.
        (
            "[functions.F]\nguest = \"items\"\nallowed_outbound_hosts = [\"https://api.example.com/v1\"]\n",
            "functions.F.allowed_outbound_hosts: allowed_outbound_hosts: \"https://api.example.com/v1\" has a path",
            ":3:",
        ),
        ("[functions.F]\nsource = \"nowhere/\"\n", "functions.F.source: no such file or directory", ":2:"),
        ("[functions.F]\nsource = \".\"\n", "functions.F.source: ", ":2:"),
        (
            "[functions.F]\nsource = \".\"\nhandler = \"app\"\n",
            "functions.F.source: handler \"app\": expected MODULE.FUNCTION",
            ":3:",
        ),
        (
            "[functions.F]\nguest = \"items\"\nhandler = \"app.main\"\n",
            "functions.F.handler: `handler` names the handler of a `source`; there is none",
            ":3:",
        ),
        (
            "[functions.F]\nguest = \"items\"\nsource = \".\"\n",
            "functions.F: give one of `guest`, `wasm` and `source`, not several",
            ":1:",
        ),
    ];
    for (text, needle, line) in cases {
        let path = write_file(dir.path(), "gateway.toml", text.as_bytes());
        for cmd in ["validate", "serve"] {
            let out = std::process::Command::new(crate::common::BIN)
                .args([cmd, "--config", path.to_str().unwrap()])
                .output()
                .unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success(), "{cmd} accepted:\n{text}");
            assert!(err.contains(needle) && err.contains(line), "{cmd}: {err} lacks {needle:?} / {line:?}");
        }
    }
    let ok = write_file(dir.path(), "gateway.toml", include_bytes!("../../gateway.toml"));
    let out = std::process::Command::new(crate::common::BIN)
        .args(["validate", "--config", ok.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // It says what it checked.
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.trim_end().ends_with("ok: 1 function; API ItemsAPI: 2 methods, CORS on 2 resources, stages dev, prod"),
        "{said}"
    );
}

#[test]
fn template_render_shows_what_a_template_produces() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let out = std::process::Command::new(crate::common::BIN).args(args).current_dir(dir.path()).output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let request = write_file(dir.path(), "request.vtl", br#"{ "ID": $input.params("ID") }"#);
    let (code, out, err) = run(&["template", "render", "--template", request.to_str().unwrap(), "--path", "ID=1"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, r#"{ "ID": 1 }"#);

    let mock = write_file(
        dir.path(),
        "mock.vtl",
        b"[\n#foreach($ID in [1, 2, 3])\n#set($price = $ID * 1.5)\n#set($name = \"foo\" + $ID)\n{ \"ID\" : $ID, \"name\" : \"$name\", \"price\" : $price }#if($foreach.hasNext),#end\n#end\n]\n",
    );
    let (code, out, _) = run(&["template", "render", "--template", mock.to_str().unwrap()]);
    assert_eq!(code, 0);
    let items: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        items,
        json!([{"ID": 1, "name": "foo1", "price": 1.5}, {"ID": 2, "name": "foo2", "price": 3.0}, {"ID": 3, "name": "foo3", "price": 4.5}])
    );
    assert!(out.contains("\"price\" : 3.0"), "{out}");

    let all = write_file(
        dir.path(),
        "all.vtl",
        b"$input.json('$.a') $input.params('q') $input.params('X-H') $stageVariables.v $context.identity.sourceIp $context.stage#set($context.responseOverride.status = 201)",
    );
    let (code, out, err) = run(&[
        "template",
        "render",
        "--template",
        all.to_str().unwrap(),
        "--body",
        r#"{"a": [1, 2]}"#,
        "--query",
        "q=2",
        "--header",
        "x-h=3",
        "--stage-var",
        "v=4",
        "--context",
        "identity.sourceIp=10.0.0.1",
        "--context",
        "stage=prod",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "[1,2] 2 3 4 10.0.0.1 prod");
    assert!(err.contains("responseOverride.status = 201"), "{err}");

    // What Velocity swallows is told on stderr; the output is as it was.
    let swallowed = write_file(
        dir.path(),
        "swallowed.vtl",
        b"#foreach($i in [1..1500])#end\n$nope $!quiet #foreach($j in [1, 2])$j$missing#end",
    );
    let (code, out, err) = run(&["template", "render", "--template", swallowed.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "  12", "{out}");
    let warnings: Vec<&str> = err.lines().collect();
    assert_eq!(warnings.len(), 3, "{err}");
    assert!(warnings[0].ends_with("line 1, column 1: #foreach stopped after 1000 items (API Gateway's limit): the rest of the list was not rendered"), "{err}");
    assert!(
        warnings[1].ends_with("line 1, column 42: $nope rendered as nothing (undefined or null)")
            || warnings[1].contains("$nope rendered as nothing"),
        "{err}"
    );
    assert!(warnings[2].contains("$missing rendered as nothing (undefined or null) (2 times)"), "{err}");
    assert!(!err.contains("quiet"), "a quiet reference asks for nothing: {err}");

    let bad = write_file(dir.path(), "bad.vtl", b"ok\n#if($a\n");
    let (code, _, err) = run(&["template", "render", "--template", bad.to_str().unwrap()]);
    assert_ne!(code, 0);
    assert!(err.contains("bad.vtl: line ") && err.contains(", column "), "{err}");
}
