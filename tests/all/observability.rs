//! What an operator watches: `/healthz`, `/readyz` and `/metrics` on the
//! admin listener, against a real server after a known mix of calls.

use serde_json::json;

use super::common::{TestServer, get, http};
use super::prometheus::{Prometheus, series};

/// The value of one sample line of `/metrics` (`name{labels}`), if present.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test(flavor = "multi_thread")]
async fn health_and_readiness_answer_without_a_token() {
    let server = TestServer::start("[functions.echo]\nguest = \"echo\"\n");
    let health = get(&format!("{}/healthz", server.admin_url)).await;
    assert_eq!((health.status, health.json()), (200, json!({"status": "ok"})));
    let ready = get(&format!("{}/readyz", server.admin_url)).await;
    assert_eq!(ready.status, 200);
    assert_eq!(ready.json(), json!({"ready": true, "checks": {"listeners": true, "registry": true, "stages": true}}));
    // The rest of the admin API still wants the token.
    assert_eq!(get(&format!("{}/v1/status", server.admin_url)).await.status, 401);
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_count_invocations_by_start_error_and_throttle() {
    let server = TestServer::start(
        "[functions.echo]\nguest = \"echo\"\n[functions.panic]\nguest = \"panic\"\n\
         [functions.sleepy]\nguest = \"sleepy\"\nmax_concurrency = 0\n",
    );
    // echo: a warm start, then two hot ones; then new code, loaded at
    // upload: a warm start again, counted under the same $LATEST.
    for _ in 0..3 {
        assert_eq!(server.invoke("echo", "{}").await.status, 200);
    }
    let (code, out, err) = server.cli(&["function", "update-code", "echo", "--guest", "counter"]);
    assert_eq!(code, 0, "{out}{err}");
    server.invoke("echo", "{}").await;
    // panic: a function error; sleepy: throttled (no concurrency at all).
    server.invoke("panic", "{}").await;
    assert_eq!(server.invoke("sleepy", "{}").await.status, 429);

    let metrics = get(&format!("{}/metrics", server.admin_url)).await;
    assert_eq!(metrics.status, 200);
    assert!(metrics.header("content-type").unwrap().starts_with("application/openmetrics-text; version=1.0.0"));
    let text = metrics.text();
    let count = |series: &str| sample(&text, series).unwrap_or_else(|| panic!("no {series} in\n{text}"));
    let inv = |start: &str| {
        count(&format!(r#"wasmgate_function_invocations_total{{function="echo",version="$LATEST",start="{start}"}}"#))
    };
    assert_eq!((inv("warm"), inv("hot"), inv("cold")), (2.0, 2.0, 0.0), "{text}");
    assert_eq!(count(r#"wasmgate_function_duration_seconds_count{function="echo",version="$LATEST"}"#), 4.0);
    assert_eq!(
        count(r#"wasmgate_function_errors_total{function="panic",version="$LATEST",type="Runtime.Panic"}"#),
        1.0
    );
    assert_eq!(count(r#"wasmgate_function_throttles_total{function="sleepy"}"#), 1.0);
    assert_eq!(count(r#"wasmgate_function_concurrent_executions{function="echo"}"#), 0.0);
    assert!(count("wasmgate_pool_instances_alive{}") >= 1.0, "{text}");
    assert_eq!(count(r#"wasmgate_pool_idle_instances{function="echo",version="$LATEST"}"#), 1.0);
    assert!(text.contains(r#"wasmgate_build_info{version=""#), "{text}");
    assert!(count("wasmgate_process_start_time_seconds{}") > 1.7e9);

    // With metrics_token, /metrics wants the admin token too.
    let guarded = TestServer::start_with("metrics_token = true", "");
    let url = format!("{}/metrics", guarded.admin_url);
    assert_eq!(get(&url).await.status, 401);
    let bearer = format!("Bearer {}", guarded.token());
    assert_eq!(http("GET", &url, &[("authorization", &bearer)], bytes::Bytes::new()).await.status, 200);
}

/// While the server starts (here: building a Python function from its
/// source, seconds), /healthz answers, /readyz says 503 and which checks
/// pass, and the admin API asks to wait; once ready, /readyz is 200.
#[tokio::test(flavor = "multi_thread")]
async fn readiness_waits_for_the_registry_and_the_stages() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let source = super::toolchains::root().join("examples/python-items");
    let config = super::common::write_file(
        dir.path(),
        "gateway.toml",
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\ndata_dir = \"data\"\n\
             [functions.py]\nsource = {:?}\n",
            source.to_str().unwrap()
        )
        .as_bytes(),
    );
    let mut child = std::process::Command::new(super::common::BIN)
        .args(["serve", "--config", config.to_str().unwrap()])
        .env("WASMGATE_TOOLCHAINS", super::toolchains::dir())
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The admin listener's address, from the log line written when it is bound.
    let mut log = BufReader::new(child.stderr.take().unwrap()).lines();
    let admin = loop {
        let line = log.next().expect("the server's log ended").unwrap();
        if let Some(at) = line.find("admin=") {
            let addr = line[at + 6..].split_whitespace().next().unwrap().to_string();
            break format!("http://{addr}");
        }
    };
    let ready = get(&format!("{admin}/readyz")).await;
    assert_eq!(ready.status, 503, "{}", ready.text());
    assert_eq!(ready.json()["ready"], json!(false));
    assert_eq!(ready.json()["checks"]["stages"], json!(false));
    assert_eq!(get(&format!("{admin}/healthz")).await.status, 200);
    let status = get(&format!("{admin}/v1/status")).await;
    assert_eq!(status.status, 503, "{}", status.text());
    assert!(status.text().contains("GET /readyz says when it is ready"), "{}", status.text());
    // Ready: the CLI's line on stdout.
    let mut out = BufReader::new(child.stdout.take().unwrap()).lines();
    while !out.next().expect("the server stopped").unwrap().starts_with("wasmgate: admin API listening on ") {}
    let ready = get(&format!("{admin}/readyz")).await;
    assert_eq!((ready.status, ready.json()["ready"].clone()), (200, json!(true)));
    let _ = child.kill();
    let _ = child.wait();
}

/// A real Prometheus scrapes a running server through a known mix of
/// requests to the seed's API; its own query API then shows exactly the
/// counts and label values sent.
///
/// The mix: `GET /prod/items` three times (one call of version 1, two
/// cache hits), `GET /dev/items/2` (200), `/dev/items/9` (the function's
/// NotFoundError, 404 through the selection pattern), `/dev/items` without
/// a key (403), `/prod/nothing` (403, no such resource), then a new
/// configuration for `$LATEST` and `/dev/items/2` again. wasmgate loads a
/// new configuration before it switches to it, so the first call after the
/// update is a fresh instance — Lambda's cold start, counted as `warm`
/// (wasmgate's `cold` is a call that had to load its version first).
#[tokio::test(flavor = "multi_thread")]
async fn prometheus_scrapes_exactly_the_requests_sent() {
    let server = TestServer::start(&super::common::bundled_config_with_policies());
    let (code, key, err) = server.cli(&["key", "create", "demo", "--plan", "CloudAcademyPlan"]);
    assert_eq!(code, 0, "{err}");
    let key = key.trim().to_string();
    let prometheus = Prometheus::start(server.admin_url.trim_start_matches("http://"));

    let call = |path: &'static str, with_key: bool| {
        let (url, key) = (server.url(path), key.clone());
        async move {
            let headers: Vec<(&str, &str)> = if with_key { vec![("x-api-key", key.as_str())] } else { vec![] };
            http("GET", &url, &headers, bytes::Bytes::new()).await.status
        }
    };
    for _ in 0..3 {
        assert_eq!(call("/prod/items", true).await, 200);
    }
    assert_eq!(call("/dev/items/2", true).await, 200);
    assert_eq!(call("/dev/items/9", true).await, 404);
    assert_eq!(call("/dev/items", false).await, 403);
    assert_eq!(call("/prod/nothing", true).await, 403);
    let (code, out, err) = server.cli(&["function", "update-config", "ItemsFunction", "--memory-mb", "256"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(call("/dev/items/2", true).await, 200);
    prometheus.scraped_after(std::time::SystemTime::now()).await;

    let labels = |pairs: &[(&str, &str)]| {
        let mut v: Vec<(String, String)> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        v.sort();
        v
    };
    let method = |stage: &str, resource: &str, status: &str| {
        labels(&[("api", "ItemsAPI"), ("stage", stage), ("resource", resource), ("method", "GET"), ("status", status)])
    };
    let unmatched = labels(&[
        ("api", "ItemsAPI"),
        ("stage", "prod"),
        ("resource", "(unmatched)"),
        ("method", "(unmatched)"),
        ("status", "403"),
    ]);
    let mut expected = vec![
        (method("dev", "/items", "403"), 1.0),
        (method("dev", "/items/{ID}", "200"), 2.0),
        (method("dev", "/items/{ID}", "404"), 1.0),
        (method("prod", "/items", "200"), 3.0),
        (unmatched, 1.0),
    ];
    expected.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(series(&prometheus.query("wasmgate_api_requests_total").await), expected);

    // Latency: every request of a method; the integration's: those that
    // reached the function (not the cache hits, not the refusal).
    let counts = |family: &'static str| {
        let prometheus = &prometheus;
        async move {
            series(&prometheus.query(&format!(r#"{family}_count{{api="ItemsAPI"}} > 0"#)).await)
                .into_iter()
                .map(|(l, v)| {
                    let get = |name: &str| l.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()).unwrap();
                    (format!("{} {}", get("stage"), get("resource")), v)
                })
                .collect::<std::collections::BTreeMap<_, _>>()
                .into_iter()
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        counts("wasmgate_api_latency_seconds").await,
        vec![
            ("dev /items".to_string(), 1.0),
            ("dev /items/{ID}".to_string(), 3.0),
            ("prod (unmatched)".to_string(), 1.0),
            ("prod /items".to_string(), 3.0),
        ]
    );
    assert_eq!(
        counts("wasmgate_api_integration_latency_seconds").await,
        vec![("dev /items/{ID}".to_string(), 3.0), ("prod /items".to_string(), 1.0)]
    );
    let cache = |family: &'static str| {
        let prometheus = &prometheus;
        async move { series(&prometheus.query(family).await) }
    };
    let prod = labels(&[("api", "ItemsAPI"), ("stage", "prod")]);
    assert_eq!(cache("wasmgate_api_cache_hits_total").await, vec![(prod.clone(), 2.0)]);
    assert_eq!(cache("wasmgate_api_cache_misses_total").await, vec![(prod, 1.0)]);

    let invocations = series(&prometheus.query("wasmgate_function_invocations_total > 0").await);
    let start =
        |version: &str, start: &str| labels(&[("function", "ItemsFunction"), ("version", version), ("start", start)]);
    assert_eq!(
        invocations,
        vec![(start("$LATEST", "hot"), 1.0), (start("$LATEST", "warm"), 2.0), (start("1", "warm"), 1.0)]
    );
    assert_eq!(
        series(&prometheus.query("wasmgate_function_errors_total").await),
        vec![(labels(&[("function", "ItemsFunction"), ("version", "$LATEST"), ("type", "NotFoundError")]), 1.0)]
    );
}

/// The API the access-log tests call: the items function on
/// `/items/{ID}` (its NotFoundError a 404), on one stage per format.
fn logged_api(stages: &str) -> String {
    format!(
        r#"{items}
[apis.Logged.resources."/items/{{ID}}".GET.integration]
type = "function"
function = "ItemsFunction"
request_templates = {{ "application/json" = '{{ "ID": $input.params("ID") }}' }}

[[apis.Logged.resources."/items/{{ID}}".GET.integration.responses]]
status = 200

[[apis.Logged.resources."/items/{{ID}}".GET.integration.responses]]
selection_pattern = "NotFoundError"
status = 404
{stages}"#,
        items = super::common::ITEMS
    )
}

/// The lines of an access-log file once it holds `n` (its writer is a
/// thread of the server's: the lines arrive just after the responses).
fn access_lines(path: &std::path::Path, n: usize) -> Vec<String> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let lines: Vec<String> = text.lines().map(str::to_string).collect();
        if lines.len() >= n {
            assert_eq!(lines.len(), n, "{text}");
            return lines;
        }
        assert!(std::time::Instant::now() < deadline, "{} has {} lines, not {n}:\n{text}", path.display(), lines.len());
        std::thread::yield_now();
    }
}

/// An access-log file is opened again by its name on SIGUSR1, as nginx's
/// are: logrotate renames it and signals; the lines before stay in the
/// renamed file, those after go to a new one, and none is lost.
#[tokio::test(flavor = "multi_thread")]
async fn access_log_files_are_reopened_on_sigusr1() {
    let server = TestServer::start(&logged_api(
        "[apis.Logged.stages.s]\naccess_log = { format = '$context.requestId $context.status', file = 's.log' }\n\
         [apis.Logged.stages.t]\naccess_log = { format = '$context.requestId $context.status', file = 's.log' }\n",
    ));
    let request = |stage: &'static str| {
        let url = server.url(&format!("/{stage}/items/2"));
        async move {
            let resp = http("GET", &url, &[], bytes::Bytes::new()).await;
            assert_eq!(resp.status, 200);
            format!("{} 200", resp.header("x-amzn-requestid").unwrap())
        }
    };
    let path = server.data_dir().join("logs").join("s.log");
    let before = vec![request("s").await, request("t").await];
    assert_eq!(access_lines(&path, 2), before);
    let rotated = path.with_extension("log.1");
    std::fs::rename(&path, &rotated).unwrap();
    // Written after the rename, before the signal: the renamed file's.
    let late = request("s").await;
    let from = server.log().len();
    server.signal("USR1");
    server.log_with(from, "the access log file is reopened");
    let after = vec![request("t").await, request("s").await];
    assert_eq!(access_lines(&path, 2), after, "the new file: the lines after the signal");
    let mut old = before;
    old.push(late);
    assert_eq!(access_lines(&rotated, 3), old, "the renamed file: the lines before");
    assert_eq!(
        server.log().matches("the access log file is reopened").count(),
        1,
        "a file shared by two stages is one file"
    );
}

/// `requestTime` as API Gateway writes it: `07/Dec/2026:18:49:38 +0000`.
fn is_clf_time(text: &str) -> bool {
    let b = text.as_bytes();
    text.len() == 26
        && b[2] == b'/'
        && b[6] == b'/'
        && b[11] == b':'
        && text.ends_with(" +0000")
        && ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"].contains(&&text[3..6])
}

/// Each of the console's presets, and a format of one's own, against the
/// values of known requests: ids from the response's headers, the status,
/// the length of the body, the resource's template.
#[tokio::test(flavor = "multi_thread")]
async fn access_logs_write_each_preset_and_a_custom_format() {
    let custom = "$context.requestId $context.httpMethod $context.path $context.resourcePath $context.status \
                  $context.integrationStatus $context.error.responseType \"$context.error.message\" \
                  $context.responseLength $context.identity.userAgent $context.identity.apiKeyId \
                  $context.integration.requestId";
    let stages: String = ["CLF", "JSON", "XML", "CSV"]
        .iter()
        .map(|f| {
            format!(
                "[apis.Logged.stages.{}]\naccess_log = {{ format = \"{f}\", file = \"{f}.log\" }}\n",
                f.to_lowercase()
            )
        })
        .chain([format!(
            "[apis.Logged.stages.custom]\naccess_log = {{ format = '{custom}', file = \"custom.log\" }}\n"
        )])
        .collect();
    let server = TestServer::start(&logged_api(&stages));
    let logs = server.data_dir().join("logs");
    let send = |path: String| {
        let url = server.url(&path);
        async move {
            let resp = http("GET", &url, &[("user-agent", "probe \"1\"")], bytes::Bytes::new()).await;
            let ids = (
                resp.header("x-amzn-requestid").unwrap().to_string(),
                resp.header("x-amz-apigw-id").unwrap().to_string(),
            );
            (resp.status, resp.text().len(), ids)
        }
    };

    // CLF: 200 and 404.
    let ok = send("/clf/items/2".into()).await;
    let missing = send("/clf/items/9".into()).await;
    assert_eq!((ok.0, missing.0), (200, 404));
    let lines = access_lines(&logs.join("CLF.log"), 2);
    for (line, (status, length, (id, ext))) in lines.iter().zip([ok, missing]) {
        let (head, rest) = line.split_once(" [").unwrap();
        let (time, tail) = rest.split_once("] ").unwrap();
        assert_eq!(head, "127.0.0.1 - -", "{line}");
        assert!(is_clf_time(time), "{line}");
        assert_eq!(tail, format!("\"GET /items/{{ID}} HTTP/1.1\" {status} {length} {id} {ext}"));
    }

    // JSON: a 200, one object a line.
    let (status, length, (id, ext)) = send("/json/items/1".into()).await;
    let line = &access_lines(&logs.join("JSON.log"), 1)[0];
    let mut object: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
    assert!(is_clf_time(object["requestTime"].as_str().unwrap()), "{line}");
    object["requestTime"] = json!("T");
    assert_eq!(
        object,
        json!({"requestId": id, "extendedRequestId": ext, "ip": "127.0.0.1", "caller": "-", "user": "-",
               "requestTime": "T", "httpMethod": "GET", "resourcePath": "/items/{ID}", "status": status.to_string(),
               "protocol": "HTTP/1.1", "responseLength": length.to_string()})
    );

    // XML: a path that matches no method has no resource path.
    let (status, length, (id, ext)) = send("/xml/nothing".into()).await;
    assert_eq!(status, 403);
    let line = &access_lines(&logs.join("XML.log"), 1)[0];
    let at = line.find("<requestTime>").unwrap() + "<requestTime>".len();
    let time = &line[at..at + 26];
    assert!(is_clf_time(time), "{line}");
    assert_eq!(
        line.replace(time, "T"),
        format!(
            "<request id=\"{id}\"> <extendedRequestId>{ext}</extendedRequestId> <ip>127.0.0.1</ip> \
             <caller>-</caller> <user>-</user> <requestTime>T</requestTime> <httpMethod>GET</httpMethod> \
             <resourcePath>-</resourcePath> <status>{status}</status> <protocol>HTTP/1.1</protocol> \
             <responseLength>{length}</responseLength> </request>"
        )
    );

    // CSV.
    let (status, length, (id, ext)) = send("/csv/items/3".into()).await;
    let line = &access_lines(&logs.join("CSV.log"), 1)[0];
    let fields: Vec<&str> = line.split(',').collect();
    assert!(is_clf_time(fields[3]), "{line}");
    assert_eq!(
        [&fields[..3], &fields[4..]].concat(),
        ["127.0.0.1", "-", "-", "GET", "/items/{ID}", "HTTP/1.1", &status.to_string(), &length.to_string(), &id, &ext]
    );

    // A format of one's own, with the access-log-only variables: the
    // function's answer (200 from the function service, its error a 404),
    // a gateway error, a value escaped so that the line stays one line.
    let found = send("/custom/items/4".into()).await;
    let not_found = send("/custom/items/9".into()).await;
    let unmatched = send("/custom/items".into()).await;
    let lines = access_lines(&logs.join("custom.log"), 3);
    let expect = |(status, length, (id, _)): &(u16, usize, (String, String)),
                  resource: &str,
                  path: &str,
                  integration: &str,
                  error: &str,
                  message: &str| {
        // The integration's request id: the function ran with the request's.
        let invoked = if integration == "-" { "-" } else { id };
        format!(
            "{id} GET {path} {resource} {status} {integration} {error} \"{message}\" {length} probe \\\"1\\\" - {invoked}"
        )
    };
    assert_eq!(lines[0], expect(&found, "/items/{ID}", "/custom/items/4", "200", "-", "-"));
    assert_eq!(lines[1], expect(&not_found, "/items/{ID}", "/custom/items/9", "200", "-", "-"));
    assert_eq!(
        lines[2],
        expect(&unmatched, "-", "/custom/items", "-", "MISSING_AUTHENTICATION_TOKEN", "Missing Authentication Token")
    );

    // A server that stops writes every line it made before it goes.
    for _ in 0..50 {
        assert_eq!(send("/csv/items/1".into()).await.0, 200);
    }
    let mut server = server;
    assert!(server.terminate().success());
    let text = std::fs::read_to_string(logs.join("CSV.log")).unwrap();
    assert_eq!(text.lines().count(), 51, "{text}");
}

/// Without a file, a stage's lines go to the server's log; a format that
/// names a variable API Gateway does not define is refused by `validate`
/// with its line.
#[tokio::test(flavor = "multi_thread")]
async fn access_logs_go_to_the_servers_log_and_bad_formats_are_refused() {
    let server = TestServer::start(&logged_api("[apis.Logged.stages.s]\naccess_log = { format = \"CLF\" }\n"));
    let resp = http("GET", &server.url("/s/items/2"), &[], bytes::Bytes::new()).await;
    let id = resp.header("x-amzn-requestid").unwrap().to_string();
    let clf = "\"GET /items/{ID} HTTP/1.1\" 200";
    let log = server.log_with(0, clf);
    let line = log.lines().find(|l| l.contains(clf)).unwrap();
    assert!(line.contains(&id), "{line}");
    assert!(line.contains("wasmgate::access_log") && line.contains("stage=Logged/s"), "{line}");

    let bad = logged_api(
        "[apis.Logged.stages.s]\naccess_log = { format = \"$context.requestId $context.integrationLatncy\" }\n",
    );
    let dir = tempfile::tempdir().unwrap();
    let config = super::common::write_file(dir.path(), "gateway.toml", bad.as_bytes());
    let out = std::process::Command::new(super::common::BIN)
        .args(["validate", "--config", config.to_str().unwrap()])
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    let line = bad.lines().position(|l| l.contains("integrationLatncy")).unwrap() + 1;
    assert!(err.contains(&format!("gateway.toml:{line}")), "{err}");
    assert!(
        err.contains("$context.integrationLatncy is not a variable an access log can show (did you mean $context.integrationLatency?)"),
        "{err}"
    );
}

/// `wasmgate logs FUNCTION --follow` as a user runs it: started first, then
/// requests sent; each invocation's START, output, END and REPORT lines
/// arrive while it runs.
#[tokio::test(flavor = "multi_thread")]
async fn logs_follow_prints_invocations_as_they_arrive() {
    use std::io::{BufRead, BufReader};
    let server = TestServer::start(&logged_api(
        "[apis.Logged.stages.s]\naccess_log = { format = '$context.requestId $context.status' }\n",
    ));
    let follow = |args: &[&str]| {
        let mut child = std::process::Command::new(super::common::BIN)
            .arg("logs")
            .args(args)
            .args(["--follow", "--admin", &server.admin_url, "--data-dir"])
            .arg(server.data_dir())
            .env("NO_COLOR", "1")
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        // Each line as it comes, without its time.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                let (time, message) = line.split_once(' ').unwrap();
                assert!(time.ends_with('Z') && time.len() == 24, "{line}");
                if tx.send(message.to_string()).is_err() {
                    break;
                }
            }
        });
        (child, rx)
    };
    let next = |rx: &std::sync::mpsc::Receiver<String>| {
        rx.recv_timeout(std::time::Duration::from_secs(30)).expect("a line within 30 s")
    };
    let (mut function, lines) = follow(&["ItemsFunction"]);
    let (mut stage, access) = follow(&["--api", "Logged", "--stage", "s"]);
    for id in [2, 9] {
        let resp = http("GET", &server.url(&format!("/s/items/{id}")), &[], bytes::Bytes::new()).await;
        let request_id = resp.header("x-amzn-requestid").unwrap().to_string();
        // The function's: its own request id (the invocation's), then its
        // output, END and REPORT.
        let start = next(&lines);
        assert!(start.starts_with("START RequestId: ") && start.ends_with(" Version: $LATEST"), "{start}");
        let invocation = start["START RequestId: ".len()..].split(' ').next().unwrap().to_string();
        assert!(next(&lines).starts_with("Event: "));
        assert_eq!(next(&lines), format!("END RequestId: {invocation}"));
        let report = next(&lines);
        let fields: Vec<&str> = report.split('\t').collect();
        assert_eq!(fields[0], format!("REPORT RequestId: {invocation}"), "{report}");
        assert!(fields[1].starts_with("Duration: ") && fields[1].ends_with(" ms"), "{report}");
        assert_eq!(fields[3], "Memory Size: 128 MB", "{report}");
        assert!(fields[4].starts_with("Max Memory Used: "), "{report}");
        assert_eq!(fields[5], if id == 2 { "Start: warm" } else { "Start: hot" }, "{report}");
        // The stage's access line.
        assert_eq!(next(&access), format!("{request_id} {}", if id == 2 { 200 } else { 404 }));
    }
    for child in [&mut function, &mut stage] {
        let _ = child.kill();
        let _ = child.wait();
    }

    // Without --follow: what is kept, selected by qualifier and by text.
    let (code, out, err) = server.cli(&["logs", "ItemsFunction", "--filter", "\"ID\":9"]);
    assert_eq!(code, 0, "{err}");
    let messages: Vec<&str> = out.lines().map(|l| l.split_once(' ').unwrap().1).collect();
    assert_eq!(messages.len(), 4, "one invocation's four lines: {out}");
    assert!(messages[1].contains("\"ID\":9"), "{out}");
    let (code, out, _) = server.cli(&["logs", "ItemsFunction:1", "--since", "1h"]);
    assert_eq!((code, out.as_str()), (0, ""), "no call ran version 1");
    let (code, _, err) = server.cli(&["logs", "ItemsFunction:nope"]);
    assert_ne!(code, 0);
    assert!(err.contains("nope"), "{err}");
    let (code, _, err) = server.cli(&["logs", "--api", "Logged", "--stage", "t"]);
    assert_ne!(code, 0);
    assert!(err.contains("no deployed stage \"t\""), "{err}");

    // A read waiting for the next entry does not hold the server's stop
    // up: it answers, empty, as the server stops (a read still waiting when
    // the grace, 5 s here, ran out would be cut off without an answer).
    let mut server = server;
    let admin = server.admin_url.trim_start_matches("http://").to_string();
    let request = format!(
        "GET /v1/functions/ItemsFunction/logs?after=1000000&wait=20 HTTP/1.1\r\nhost: {admin}\r\n\
         authorization: Bearer {}\r\nconnection: close\r\n\r\n",
        server.token()
    );
    let mut conn = std::net::TcpStream::connect(&admin).unwrap();
    std::io::Write::write_all(&mut conn, request.as_bytes()).unwrap();
    let asked = std::time::Instant::now();
    let waiting = std::thread::spawn(move || {
        let mut answer = String::new();
        std::io::Read::read_to_string(&mut conn, &mut answer).unwrap();
        (answer, asked.elapsed())
    });
    // The waiting read's connection was accepted before this one's.
    assert_eq!(get(&format!("{}/healthz", server.admin_url)).await.status, 200);
    assert!(server.terminate().success());
    let (answer, took) = waiting.join().unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains(r#""events":[]"#), "{answer}");
    assert!(took < std::time::Duration::from_secs(20), "answered as the server stopped, not after its wait: {took:?}");
}

/// `[server] recent_logs_mb` bounds what `wasmgate logs` keeps of all
/// functions and stages together: past it, the oldest invocations go,
/// though their function's own bound (4 MB) is far from reached.
#[tokio::test(flavor = "multi_thread")]
async fn the_recent_logs_hold_no_more_than_the_servers_budget() {
    let server = TestServer::start_with("recent_logs_mb = 1", "[functions.Echo]\nguest = \"echo\"\n");
    let text = "y".repeat(200_000);
    // 2.4 MB of output in all: 1 MB holds at most five of them.
    for i in 0..12 {
        let resp = server.invoke("Echo", &json!({"log": format!("{i} {text}")}).to_string()).await;
        assert_eq!(resp.status, 200, "{:?}", resp.json());
    }
    let (code, out, err) = server.cli(&["logs", "Echo"]);
    assert_eq!(code, 0, "{err}");
    let kept: Vec<usize> =
        out.lines().filter_map(|l| l.split_once(" before ")?.1.split(' ').next()?.parse().ok()).collect();
    let starts = out.lines().filter(|l| l.contains(" START RequestId: ")).count();
    assert_eq!(starts, kept.len(), "whole invocations");
    assert!((1..=5).contains(&kept.len()), "{} of 12 invocations kept", kept.len());
    let newest: Vec<usize> = (12 - kept.len()..12).collect();
    assert_eq!(kept, newest, "the newest are kept, in order");
    let newest = out.lines().rev().find(|l| l.contains(" before ")).unwrap();
    assert!(newest.contains(&format!("before 11 {text}")), "its output whole");
    // What they hold, as the metrics show it: within the budget, and more
    // than what was kept.
    let metrics = get(&format!("{}/metrics", server.admin_url)).await.text();
    let held = sample(&metrics, "wasmgate_recent_logs_bytes{}").expect("the recent logs' gauge");
    assert!(held <= (1 << 20) as f64 && held >= (kept.len() * 200_000) as f64, "{held}");
}
