//! Functions written as Lambda users write them, in Python and JavaScript:
//! built from source with the languages' component toolchains (`wasmgate
//! build`, `function update-code --source`, `source =` in the file),
//! uploaded through the CLI, and served through the gateway — the seed's
//! own function, its error mapped by the selection pattern, its log, and
//! Lambda's context.

use serde_json::{Value, json};

use super::common::{TestServer, bundled_config, get};
use super::toolchains;

/// The four items as Python's `json.dumps` writes them.
const PYTHON_ITEMS: &str = r#"[{"ID": 1, "name": "Pen", "price": 2.5}, {"ID": 2, "name": "Pencil", "price": 1.5}, {"ID": 3, "name": "Highlighter", "price": 3.0}, {"ID": 4, "name": "Ruler", "price": 5.0}]"#;

/// The seed's API on a server whose `ItemsFunction` then gets `source`'s
/// code through `function update-code --source`, as a user would.
fn seed_api_with(source: &str) -> TestServer {
    let server = TestServer::start(&bundled_config());
    let toolchains = toolchains::dir().to_str().expect("utf-8").to_string();
    let root = toolchains::root();
    let source = root.join(source);
    let (code, out, err) = server.cli(&[
        "function",
        "update-code",
        "ItemsFunction",
        "--source",
        source.to_str().expect("utf-8"),
        "--toolchains",
        &toolchains,
    ]);
    assert_eq!(code, 0, "update-code --source failed:\n{out}{err}");
    // The CLI says what it does while it waits: the build, the upload, the compile.
    for step in ["building", "built", "uploading", "compiled in"] {
        assert!(err.contains(step), "no {step:?} in the CLI's progress:\n{err}");
    }
    server
}

#[tokio::test(flavor = "multi_thread")]
async fn the_seeds_python_function_serves_the_seeds_api() {
    let server = seed_api_with("examples/python-items");

    let list = get(&server.url("/dev/items")).await;
    assert_eq!((list.status, list.text()), (200, PYTHON_ITEMS.to_string()));
    let one = get(&server.url("/dev/items/3")).await;
    assert_eq!((one.status, one.json()), (200, json!({"ID": 3, "name": "Highlighter", "price": 3.0})));
    // `raise Exception("NotFoundError")`: errorType `Exception`, as on AWS,
    // and the selection pattern on the message maps it to 404.
    let missing = get(&server.url("/dev/items/9")).await;
    assert_eq!(missing.status, 404, "{}", missing.text());
    assert_eq!(missing.json(), json!({"message": "Item 9 not found", "errorType": "Exception"}));

    // The invocation's log: the handler's print, then Lambda's error lines.
    let (code, error, err) = server.invoke_logged("ItemsFunction", r#"{"ID": 9}"#);
    assert_eq!(code, 2, "{error}{err}");
    assert_eq!(
        (error["errorType"].as_str(), error["errorMessage"].as_str()),
        (Some("Exception"), Some("NotFoundError"))
    );
    // The stack trace as Lambda's Python runtime formats it.
    let trace: Vec<&str> =
        error["stackTrace"].as_array().expect("stackTrace").iter().filter_map(Value::as_str).collect();
    assert_eq!(trace.len(), 1, "{trace:?}");
    assert!(trace[0].starts_with("  File \"/var/task/lambda_function.py\", line "), "{trace:?}");
    assert!(trace[0].ends_with(", in lambda_handler\n    raise Exception(\"NotFoundError\")\n"), "{trace:?}");
    assert!(err.contains("Event: {'ID': 9}"), "{err}");
    assert!(err.contains("[ERROR] Exception: NotFoundError\nTraceback (most recent call last):"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_seeds_javascript_twin_serves_the_seeds_api() {
    let server = seed_api_with("examples/js-items");

    let list = get(&server.url("/dev/items")).await;
    assert_eq!(list.status, 200, "{}", list.text());
    assert_eq!(
        list.json(),
        json!([
            {"ID": 1, "name": "Pen", "price": 2.5},
            {"ID": 2, "name": "Pencil", "price": 1.5},
            {"ID": 3, "name": "Highlighter", "price": 3},
            {"ID": 4, "name": "Ruler", "price": 5}
        ])
    );
    let one = get(&server.url("/dev/items/2")).await;
    assert_eq!((one.status, one.json()), (200, json!({"ID": 2, "name": "Pencil", "price": 1.5})));
    let missing = get(&server.url("/dev/items/9")).await;
    assert_eq!(missing.status, 404, "{}", missing.text());
    assert_eq!(missing.json(), json!({"message": "Item 9 not found", "errorType": "Error"}));

    let (code, error, err) = server.invoke_logged("ItemsFunction", r#"{"ID": 9}"#);
    assert_eq!(code, 2, "{error}{err}");
    assert_eq!((error["errorType"].as_str(), error["errorMessage"].as_str()), (Some("Error"), Some("NotFoundError")));
    assert!(err.contains(r#"Event: {"ID":9}"#), "{err}");
}

/// Lambda's context object, field by field, and a handler's own exception
/// class as the error type.
#[tokio::test(flavor = "multi_thread")]
async fn python_and_javascript_handlers_see_lambdas_context() {
    let python = toolchains::built("tests/functions/probe.py");
    let js = toolchains::built("tests/functions/probe.mjs");
    let server = TestServer::start(
        "[functions.py]\nguest = \"echo\"\nmemory_mb = 256\n[functions.js]\nguest = \"echo\"\nmemory_mb = 256\n",
    );
    for (name, wasm) in [("py", &python), ("js", &js)] {
        let (code, out, err) = server.cli(&["function", "update-code", name, "--wasm", wasm.to_str().unwrap()]);
        assert_eq!(code, 0, "{out}{err}");
        let (code, out, err) = server.cli(&["function", "publish", name]);
        assert_eq!(code, 0, "{out}{err}");
        let (code, out, err) = server.cli(&["function", "alias", "set", name, "live", "--version", "1"]);
        assert_eq!(code, 0, "{out}{err}");
    }

    let resp = server.invoke("py:live", r#"{"op": "context"}"#).await;
    let request_id = resp.header("x-amzn-requestid").expect("request id").to_string();
    let ctx = super::common::body_json(&resp);
    assert_eq!(ctx["aws_request_id"], json!(request_id));
    assert_eq!(ctx["function_name"], json!("py"));
    assert_eq!(ctx["function_version"], json!("1"));
    assert_eq!(ctx["invoked_function_arn"], json!("arn:aws:lambda:local:000000000000:function:py:live"));
    assert_eq!(ctx["memory_limit_in_mb"], json!("256"));
    assert_eq!(ctx["log_group_name"], json!("/aws/lambda/py"));
    let stream = ctx["log_stream_name"].as_str().expect("log stream");
    assert!(is_log_stream(stream, "1"), "{stream}");
    let remaining = ctx["remaining_ms"].as_u64().expect("remaining ms");
    assert!(remaining > 0 && remaining <= 3000, "{remaining}");

    let resp = server.invoke("js:live", r#"{"op": "context"}"#).await;
    let request_id = resp.header("x-amzn-requestid").expect("request id").to_string();
    let ctx = super::common::body_json(&resp);
    assert_eq!(ctx["awsRequestId"], json!(request_id));
    assert_eq!(ctx["functionName"], json!("js"));
    assert_eq!(ctx["functionVersion"], json!("1"));
    assert_eq!(ctx["invokedFunctionArn"], json!("arn:aws:lambda:local:000000000000:function:js:live"));
    assert_eq!(ctx["memoryLimitInMB"], json!("256"));
    assert_eq!(ctx["logGroupName"], json!("/aws/lambda/js"));
    assert!(is_log_stream(ctx["logStreamName"].as_str().expect("log stream"), "1"), "{ctx}");
    let remaining = ctx["remainingMs"].as_u64().expect("remaining ms");
    assert!(remaining > 0 && remaining <= 3000, "{remaining}");

    // A handler's own exception class is the error type; the message is str(e) / e.message.
    for (name, trace_start) in [("py", "  File \"/var/task/probe.py\", line "), ("js", "ItemMissing: no item 7")] {
        let resp = server.invoke(name, r#"{"op": "raise", "id": 7}"#).await;
        assert_eq!(resp.header("x-amz-function-error"), Some("Unhandled"));
        let error = super::common::body_json(&resp);
        assert_eq!(
            (error["errorType"].as_str(), error["errorMessage"].as_str()),
            (Some("ItemMissing"), Some("no item 7"))
        );
        let first = error["stackTrace"][0].as_str().unwrap_or_default();
        assert!(first.starts_with(trace_start), "{name}: {error}");
    }
    // `wasmgate bench` measures them as it does Rust functions.
    for (name, wasm) in [("py", &python), ("js", &js)] {
        let event = r#"{"op": "context"}"#;
        let (code, out, err) = server.cli(&[
            "bench",
            "--wasm",
            wasm.to_str().unwrap(),
            "--payload",
            event,
            "--samples",
            "5",
            "--instances",
            "2",
            "--compile-samples",
            "1",
        ]);
        assert_eq!(code, 0, "{name}: {out}{err}");
        for row in ["cold (compile)", "cold (cached artifact)", "warm (fresh instance)", "hot (reused instance)"] {
            assert!(out.contains(row), "{name}: {row} missing in\n{out}");
        }
        assert!(out.contains("resident memory per warm instance: "), "{name}: {out}");
    }
    // A result Python's json cannot encode fails as Lambda's Runtime.MarshalError.
    let error = super::common::body_json(&server.invoke("py", r#"{"op": "unserialisable"}"#).await);
    assert_eq!(error["errorType"], json!("Runtime.MarshalError"));
    assert!(error["errorMessage"].as_str().unwrap().starts_with("Unable to marshal response: "), "{error}");
}

/// Lambda's log stream name: `YYYY/MM/DD/[VERSION]` and 32 hex digits.
fn is_log_stream(name: &str, version: &str) -> bool {
    let Some((date, rest)) = name.split_once("/[") else { return false };
    let Some(id) = rest.strip_prefix(&format!("{version}]")) else { return false };
    date.len() == 10 && date.split('/').count() == 3 && id.len() == 32 && id.chars().all(|c| c.is_ascii_hexdigit())
}

/// `[functions.NAME] source = …` builds at the first start: the example
/// file serves the seed's API with the seed's Python function as it is.
#[tokio::test(flavor = "multi_thread")]
async fn a_source_in_the_file_is_built_at_the_first_start() {
    let example = std::fs::read_to_string(toolchains::root().join("examples/python-items.toml")).unwrap();
    let example_dir = toolchains::root().join("examples");
    let extra = super::common::strip_server(&example)
        .replace("source = \"python-items\"", &format!("source = {:?}", example_dir.join("python-items")));
    let server = TestServer::start_with_env(&extra, &[("WASMGATE_TOOLCHAINS", toolchains::dir().to_str().unwrap())]);
    assert!(server.log().contains("built a function from its source"), "{}", server.log());
    let list = get(&server.url("/prod/items")).await;
    assert_eq!((list.status, list.text()), (200, PYTHON_ITEMS.to_string()));
    let missing = get(&server.url("/prod/items/9")).await;
    assert_eq!((missing.status, missing.json()["errorType"].as_str()), (404, Some("Exception")));

    // Both examples are valid as they stand (their sources found, their
    // handlers' modules there; the toolchains are needed only to build).
    for example in ["examples/python-items.toml", "examples/js-items.toml"] {
        let out = std::process::Command::new(super::common::BIN)
            .args(["validate", "--config", example])
            .current_dir(toolchains::root())
            .env("WASMGATE_ADMIN", "http://127.0.0.1:1")
            .output()
            .unwrap();
        assert!(out.status.success(), "{example}: {}", String::from_utf8_lossy(&out.stderr));
    }
}

/// What a user sees when something is missing or wrong, and a handler
/// named by `--handler`.
#[test]
fn builds_say_what_is_wrong_and_take_lambdas_handler_setting() {
    let dir = tempfile::tempdir().unwrap();
    // No toolchain: the error names the version and the command that installs it.
    let source = dir.path().join("lambda_function.py");
    std::fs::write(&source, "def lambda_handler(event, context):\n    return 1\n").unwrap();
    let out = std::process::Command::new(super::common::BIN)
        .args(["build", source.to_str().unwrap(), "-o", dir.path().join("f.wasm").to_str().unwrap()])
        .env("PATH", "/nonexistent")
        .env_remove("WASMGATE_TOOLCHAINS")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("componentize-py 0.25.1 is needed to build Python functions"), "{err}");
    assert!(err.contains("pip install componentize-py==0.25.1"), "{err}");

    // A handler the module does not have: the build fails naming it.
    std::fs::write(&source, "def handler(event, context):\n    return 1\n").unwrap();
    let (code, out, err) =
        toolchains::wasmgate_build(&[source.to_str().unwrap(), "-o", dir.path().join("f.wasm").to_str().unwrap()]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.contains("Runtime.HandlerNotFound: Handler 'lambda_handler' missing on module 'lambda_function'"),
        "{err}"
    );
    assert!(!dir.path().join("f.wasm").exists());

    // Another handler, named as Lambda's Handler setting names it, in a
    // directory whose modules import each other.
    let app = dir.path().join("app");
    std::fs::create_dir(&app).unwrap();
    std::fs::write(app.join("prices.py"), "def total(items):\n    return sum(i['price'] for i in items)\n").unwrap();
    std::fs::write(
        app.join("main.py"),
        "import prices\n\ndef run(event, context):\n    return prices.total(event['items'])\n",
    )
    .unwrap();
    let wasm = dir.path().join("app.wasm");
    let (code, out, err) =
        toolchains::wasmgate_build(&[app.to_str().unwrap(), "--handler", "main.run", "-o", wasm.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(err.contains("(Python, handler main.run) with componentize-py 0.25.1"), "{err}");
    let server = TestServer::start("[functions.app]\nguest = \"echo\"\n");
    let (code, out, err) = server.cli(&["function", "update-code", "app", "--wasm", wasm.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, total, err) = server.invoke_logged("app", r#"{"items": [{"price": 2.5}, {"price": 1.5}]}"#);
    assert_eq!((code, total), (0, json!(4.0)), "{err}");

    // Not a source the builder knows.
    let other = dir.path().join("main.rb");
    std::fs::write(&other, "").unwrap();
    let (code, _, err) = toolchains::wasmgate_build(&[other.to_str().unwrap(), "-o", "f.wasm"]);
    assert_eq!(code, 1);
    assert!(err.contains("not a Python (.py) or JavaScript (.mjs, .js) source file"), "{err}");
}
