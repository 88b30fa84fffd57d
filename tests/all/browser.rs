//! CORS as a real browser sees it: headless Chromium (Debian's `chromium`
//! package; `.ci/run` installs it) loads a page from another origin whose
//! script calls the gateway with `fetch`, with and without the API key, and
//! writes what it could read into the page. The test reads the page's DOM
//! (`--dump-dom`) and the gateway's access log, which shows the preflights
//! the browser sent.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::TestServer;

const CHROMIUM: &str = "/usr/bin/chromium";

/// How long Chromium may take, start to finish, before it is killed.
const CHROMIUM_TIMEOUT: Duration = Duration::from_secs(60);

/// The key the page sends, declared by its SHA-256 (`printf %s KEY | sha256sum`).
const KEY: &str = "TestBrowserKey0000000000000000001";
const KEY_SHA: &str = "3c537bddfc4aa35dad6065f37dc9df31f78f3faa1d34e8dde272ec5ba35dcb7c";

/// API `B` on stage `s`: four `GET` methods that need the key, each a mock
/// answering `{"keyId": …, "key": …, "resource": …}` (the key the caller
/// sent and the gateway accepted). `/items` has CORS as "Enable
/// CORS" sets it up (any origin); `/plain` has none; `/listed` allows only
/// the page's origin, with credentials and an exposed header; `/elsewhere`
/// allows only `http://localhost:PORT` — the page's port under another host
/// name, which is another origin.
fn config(page_origin: &str, page_port: u16) -> String {
    let method = |path: &str, name: &str| {
        format!(
            r#"
[apis.B.resources."{path}".GET]
api_key_required = true
[apis.B.resources."{path}".GET.integration]
type = "mock"
request_templates = {{ "application/json" = '{{"statusCode": 200}}' }}
responses = [{{ status = 200, templates = {{ "application/json" = '{{"keyId": "$context.identity.apiKeyId", "key": "$context.identity.apiKey", "resource": "{name}"}}' }} }}]
"#
        )
    };
    format!(
        r#"{}{}{}{}
[apis.B.cors."/items"]

[apis.B.cors."/listed"]
allow_origins = ["{page_origin}"]
allow_credentials = true
expose_headers = ["x-amzn-requestid"]

[apis.B.cors."/elsewhere"]
allow_origins = ["http://localhost:{page_port}"]

[apis.B.stages.s]

[usage_plans.P]
stages = ["B/s"]

[api_keys.browser]
plans = ["P"]
value_sha256 = "{KEY_SHA}"
"#,
        method("/items", "items"),
        method("/plain", "plain"),
        method("/listed", "listed"),
        method("/elsewhere", "elsewhere"),
    )
}

/// The page: one `fetch` after another, each result (what the script could
/// read, or the error the browser gave it) listed in the page and, when all
/// are in, written as JSON into `<pre id="results">`.
fn page(api: &str) -> String {
    format!(
        r#"<!doctype html>
<html>
<head><meta charset="utf-8"><title>wasmgate CORS</title></head>
<body>
<h1>wasmgate from another origin</h1>
<ul id="log"></ul>
<pre id="results">pending</pre>
<script>
const API = {api};
const KEY = {key};
async function call(name, path, init) {{
  let result;
  try {{
    const r = await fetch(API + path, init);
    const body = await r.text();
    result = {{ name, ok: true, status: r.status, body,
      contentType: r.headers.get("content-type"),
      requestId: r.headers.get("x-amzn-requestid") }};
  }} catch (e) {{
    result = {{ name, ok: false, error: e.name + ": " + e.message }};
  }}
  const li = document.createElement("li");
  li.textContent = name + ": " + (result.ok ? result.status + " " + result.body : result.error);
  document.getElementById("log").appendChild(li);
  return result;
}}
(async () => {{
  const results = {{ origin: location.origin, calls: [] }};
  try {{
    const key = {{ "x-api-key": KEY }};
    results.calls.push(await call("no_key", "/s/items", {{}}));
    results.calls.push(await call("key", "/s/items", {{ headers: key }}));
    results.calls.push(await call("no_cors_key", "/s/plain", {{ headers: key }}));
    results.calls.push(await call("no_cors_no_key", "/s/plain", {{}}));
    results.calls.push(await call("listed", "/s/listed", {{ headers: key, credentials: "include" }}));
    results.calls.push(await call("elsewhere", "/s/elsewhere", {{ headers: key }}));
  }} catch (e) {{
    results.failure = String(e);
  }}
  document.getElementById("results").textContent = JSON.stringify(results);
}})();
</script>
</body>
</html>
"#,
        api = json!(api),
        key = json!(KEY),
    )
}

/// A one-page HTTP server on `127.0.0.1:0`: `/` is the page, anything else
/// (a favicon) 404. Each connection gets its own thread, so that a browser's
/// speculative connection that never sends holds up nothing.
struct PageServer {
    port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl PageServer {
    fn bind() -> (TcpListener, u16) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the page server");
        let port = listener.local_addr().expect("page server address").port();
        (listener, port)
    }

    fn start(listener: TcpListener, html: String) -> PageServer {
        let port = listener.local_addr().expect("page server address").port();
        let stop = Arc::new(AtomicBool::new(false));
        let html = Arc::new(html);
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stopped.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let html = html.clone();
                std::thread::spawn(move || answer(stream, &html));
            }
        });
        PageServer { port, stop, thread: Some(thread) }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }
}

impl Drop for PageServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop, which then sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Answers one HTTP/1.1 request on `stream` and closes it.
fn answer(mut stream: TcpStream, html: &str) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut head = Vec::new();
    let mut chunk = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&chunk[..n]),
        }
    }
    let head = String::from_utf8_lossy(&head);
    let target = head.split_whitespace().nth(1).unwrap_or("");
    let (status, body) = if target == "/" { ("200 OK", html) } else { ("404 Not Found", "not found") };
    let content_type = if target == "/" { "text/html; charset=utf-8" } else { "text/plain" };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes());
}

/// Chromium's output: the page's DOM (stdout) and its own log (stderr).
struct Dump {
    dom: String,
    stderr: String,
}

/// Runs headless Chromium on `url` with a fresh profile and returns the DOM
/// it dumps once the page's script is idle. `--virtual-time-budget` is what
/// lets the script's `fetch`es finish first: virtual time stands still
/// while a fetch is pending, and the dump comes when the budget is spent.
/// Killed (its whole process group) if it runs past [`CHROMIUM_TIMEOUT`].
fn chromium_dump_dom(url: &str) -> Dump {
    assert!(
        std::path::Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: this test drives a real browser; install Debian's chromium \
         (`apt-get install --no-install-recommends chromium`, as .ci/run does)"
    );
    let profile = tempfile::tempdir().expect("a temporary profile");
    let child = Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-quic",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            "--run-all-compositor-stages-before-draw",
            "--virtual-time-budget=10000",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("--dump-dom")
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group: a timeout kills the browser and its helpers.
        .process_group(0)
        .spawn()
        .unwrap_or_else(|e| panic!("run {CHROMIUM}: {e}"));
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let output = match rx.recv_timeout(CHROMIUM_TIMEOUT) {
        Ok(output) => output.expect("wait for chromium"),
        Err(_) => {
            // The group still exists (its members hold our pipes open), so
            // its id is still ours to signal.
            let _ = Command::new("kill").args(["-KILL", "--", &format!("-{pid}")]).status();
            let stderr = rx
                .recv_timeout(Duration::from_secs(10))
                .ok()
                .and_then(Result::ok)
                .map(|o| String::from_utf8_lossy(&o.stderr).into_owned())
                .unwrap_or_default();
            panic!("chromium ran past {CHROMIUM_TIMEOUT:?} on {url}; killed. Its stderr:\n{stderr}");
        }
    };
    let dom = String::from_utf8_lossy(&output.stdout).into_owned();
    // Without a D-Bus (a container, CI) Chromium complains of it at length.
    let stderr: String = String::from_utf8_lossy(&output.stderr)
        .lines()
        .filter(|line| !line.contains(":ERROR:dbus/"))
        .map(|line| format!("{line}\n"))
        .collect();
    assert!(output.status.success(), "chromium failed ({}); stderr:\n{stderr}\nstdout:\n{dom}", output.status);
    Dump { dom, stderr }
}

/// The JSON the page wrote into `<pre id="results">`, as Chromium dumped it
/// (a text node: only `&`, `<`, `>` and no-break spaces are escaped).
fn results(dump: &Dump) -> Value {
    let open = "<pre id=\"results\">";
    let text = dump
        .dom
        .find(open)
        .map(|at| &dump.dom[at + open.len()..])
        .and_then(|rest| rest.find("</pre>").map(|end| &rest[..end]))
        .unwrap_or_else(|| panic!("no results in the page; DOM:\n{}\nstderr:\n{}", dump.dom, dump.stderr));
    let text = text.replace("&lt;", "<").replace("&gt;", ">").replace("&nbsp;", "\u{a0}").replace("&amp;", "&");
    serde_json::from_str(&text).unwrap_or_else(|e| {
        panic!("the page's results are not JSON ({e}): {text}\nDOM:\n{}\nstderr:\n{}", dump.dom, dump.stderr)
    })
}

/// `(method, path, status)` of each access line in the gateway's log, in order.
fn access_lines(log: &str) -> Vec<(String, String, u16)> {
    log.lines()
        .filter(|line| line.contains("wasmgate::access"))
        .map(|line| {
            let field = |name: &str| {
                line.split_whitespace()
                    .find_map(|word| word.strip_prefix(name).and_then(|rest| rest.strip_prefix('=')))
                    .map(|v| v.trim_matches('"').to_string())
                    .unwrap_or_else(|| panic!("no {name} in the access line: {line}"))
            };
            (field("method"), field("path"), field("status").parse().expect("a status"))
        })
        .collect()
}

#[test]
fn a_browser_on_another_origin_reads_what_cors_allows_and_preflights_the_key() {
    let started = Instant::now();
    let (listener, page_port) = PageServer::bind();
    let page_origin = format!("http://127.0.0.1:{page_port}");
    let server = TestServer::start(&config(&page_origin, page_port));
    let api = server.url("");
    assert!(api.starts_with("http://127.0.0.1:") && !api.starts_with(&page_origin), "{api} vs {page_origin}");
    let pages = PageServer::start(listener, page(&api));

    let dump = chromium_dump_dom(&pages.url());
    let results = results(&dump);
    let context = || format!("results: {results:#}\nDOM:\n{}\nchromium's stderr:\n{}", dump.dom, dump.stderr);
    assert_eq!(results["origin"], page_origin, "{}", context());
    assert!(results.get("failure").is_none(), "{}", context());
    let calls = results["calls"].as_array().unwrap_or_else(|| panic!("no calls: {}", context()));
    let call = |name: &str| -> &Value {
        calls.iter().find(|c| c["name"] == name).unwrap_or_else(|| panic!("no call {name}: {}", context()))
    };
    let body = |c: &Value| -> Value {
        serde_json::from_str(c["body"].as_str().unwrap_or_default())
            .unwrap_or_else(|e| panic!("{} answered no JSON ({e}): {}", c["name"], context()))
    };
    let blocked = |c: &Value| c["ok"] == false && c["error"].as_str().is_some_and(|e| e.starts_with("TypeError"));
    // The gateway knew the key: the identity names it.
    let granted = |c: &Value, resource: &str| {
        let b = body(c);
        assert_eq!((&b["key"], &b["resource"]), (&json!(KEY), &json!(resource)), "{}", context());
        assert!(b["keyId"].as_str().is_some_and(|id| !id.is_empty()), "no key id: {}", context());
    };

    // (1) No key: the gateway's 403 carries Access-Control-Allow-Origin, so
    // the script reads its status and body rather than a network error.
    let c = call("no_key");
    assert_eq!((&c["ok"], &c["status"]), (&json!(true), &json!(403)), "{}", context());
    assert_eq!(body(c), json!({"message": "Forbidden"}), "{}", context());
    assert!(c["contentType"].as_str().is_some_and(|t| t.starts_with("application/json")), "{}", context());
    // (2) The key in x-api-key (not a simple header: a preflight first).
    let c = call("key");
    assert_eq!((&c["ok"], &c["status"]), (&json!(true), &json!(200)), "{}", context());
    granted(c, "items");
    // Not exposed on this resource: the browser hides it from the script.
    assert_eq!(c["requestId"], Value::Null, "{}", context());
    // (3) A resource without CORS: the browser blocks the call, whether its
    // preflight is refused (with the key) or its answer lacks the header.
    assert!(blocked(call("no_cors_key")), "{}", context());
    assert!(blocked(call("no_cors_no_key")), "{}", context());
    // (4) An allowed origin, listed: echoed, with credentials, and the
    // exposed header readable.
    let c = call("listed");
    assert_eq!((&c["ok"], &c["status"]), (&json!(true), &json!(200)), "{}", context());
    granted(c, "listed");
    let listed_request_id = c["requestId"].as_str().unwrap_or_else(|| panic!("x-amzn-requestid: {}", context()));
    assert!(!listed_request_id.is_empty(), "{}", context());
    // (5) Only http://localhost:PORT allowed: the page's origin is another.
    assert!(blocked(call("elsewhere")), "{}", context());

    // The gateway's side: what the browser sent, in order. A preflight
    // (OPTIONS, no key) before each call with the key, none before the
    // simple ones; no GET after a refused preflight.
    let log = server.log_with(0, "path=/s/elsewhere");
    let expected = [
        ("GET", "/s/items", 403),
        ("OPTIONS", "/s/items", 200),
        ("GET", "/s/items", 200),
        ("OPTIONS", "/s/plain", 403),
        ("GET", "/s/plain", 403),
        ("OPTIONS", "/s/listed", 200),
        ("GET", "/s/listed", 200),
        ("OPTIONS", "/s/elsewhere", 200),
    ];
    let expected: Vec<(String, String, u16)> =
        expected.iter().map(|(m, p, s)| (m.to_string(), p.to_string(), *s)).collect();
    assert_eq!(access_lines(&log), expected, "the gateway's log:\n{log}\n{}", context());
    // The request id the script read is that of the GET the gateway logged.
    let listed_line = log
        .lines()
        .find(|l| l.contains("wasmgate::access") && l.contains("method=GET") && l.contains("path=/s/listed"))
        .expect("the listed GET's access line");
    assert!(listed_line.contains(listed_request_id), "{listed_request_id} not in {listed_line}");

    drop(pages);
    eprintln!("the browser test took {:?}", started.elapsed());
}
