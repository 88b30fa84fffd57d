//! `TestServer`: the real `wasmgate serve` binary on `127.0.0.1:0` with a
//! temporary data directory, and helpers to drive it.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::Method;
use serde_json::Value;
use wasmgate_host::admin::client::{AdminClient, ApiResponse};

pub const BIN: &str = env!("CARGO_BIN_EXE_wasmgate");

/// A running server process and its files.
pub struct TestServer {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    pub gateway: String,
    pub admin_url: String,
    pub admin: AdminClient,
    child: Option<Child>,
    /// Send the server's stderr into a pipe (see [`TestServer::start_with_piped_log`]).
    piped_log: bool,
    /// That pipe's reading end.
    pub log_pipe: Option<ChildStderr>,
    /// The server's `WASMGATE_LOG` filter.
    log_filter: &'static str,
    /// More environment for the server process (from its next start).
    pub env: Vec<(String, String)>,
}

/// The configuration every test server starts from: `server_keys` go into
/// `[server]`, `extra` (functions, APIs …) is appended.
pub fn config_text(server_keys: &str, extra: &str) -> String {
    format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\ndata_dir = \"data\"\nshutdown_grace_ms = 5000\n{server_keys}\n{extra}"
    )
}

/// The seed's function, as the bundled gateway.toml declares it.
pub const ITEMS: &str = r#"
[functions.ItemsFunction]
guest = "items"
publish = "Initial version"
aliases = { dev = "$LATEST", prod = "1" }
"#;

impl TestServer {
    /// Starts a server with `extra` configuration (functions, APIs …).
    pub fn start(extra: &str) -> TestServer {
        TestServer::start_with("", extra)
    }

    /// Starts a server with extra `[server]` keys and `extra` configuration.
    pub fn start_with(server_keys: &str, extra: &str) -> TestServer {
        TestServer::build(server_keys, extra, false, "info")
    }

    /// Starts a server with `extra` configuration that logs as `filter`
    /// (`WASMGATE_LOG`) says, rather than everything at `info`.
    pub fn start_with_log_filter(filter: &'static str, extra: &str) -> TestServer {
        TestServer::build("", extra, false, filter)
    }

    /// Starts a server with more environment (e.g. `WASMGATE_TOOLCHAINS`).
    pub fn start_with_env(extra: &str, env: &[(&str, &str)]) -> TestServer {
        TestServer::build_with_env("", extra, false, "info", env)
    }

    /// Starts a server whose stderr (its log) goes into a pipe, in
    /// [`TestServer::log_pipe`], that nobody reads until the test does.
    pub fn start_with_piped_log(extra: &str) -> TestServer {
        TestServer::build("", extra, true, "info")
    }

    fn build(server_keys: &str, extra: &str, piped_log: bool, log_filter: &'static str) -> TestServer {
        TestServer::build_with_env(server_keys, extra, piped_log, log_filter, &[])
    }

    fn build_with_env(
        server_keys: &str,
        extra: &str,
        piped_log: bool,
        log_filter: &'static str,
        env: &[(&str, &str)],
    ) -> TestServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = dir.path().join("gateway.toml");
        std::fs::write(&config, config_text(server_keys, extra)).expect("write config");
        let mut server = TestServer {
            dir,
            config,
            gateway: String::new(),
            admin_url: String::new(),
            admin: AdminClient::new("http://127.0.0.1:1", ""),
            child: None,
            piped_log,
            log_pipe: None,
            log_filter,
            env: env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        };
        server.spawn();
        server
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// The server's log from byte `from` on, once that holds `text` (the
    /// server writes its log behind its requests, by a writer thread that a
    /// loaded machine may run late). Panics, with the log, if `text` has
    /// not come within 30 s.
    pub fn log_with(&self, from: usize, text: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let log = self.log().get(from..).unwrap_or_default().to_string();
            if log.contains(text) {
                return log;
            }
            assert!(Instant::now() < deadline, "{text:?} not in the server's log within 30 s:\n{log}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn spawn(&mut self) {
        let log = if self.piped_log {
            Stdio::piped()
        } else {
            std::fs::OpenOptions::new().create(true).append(true).open(self.log_path()).expect("log file").into()
        };
        let mut child = Command::new(BIN)
            .args(["serve", "--config"])
            .arg(&self.config)
            .env("WASMGATE_LOG", self.log_filter)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::piped())
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn wasmgate serve");
        self.log_pipe = child.stderr.take();
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(120);
        let (mut gateway, mut admin) = (None, None);
        while gateway.is_none() || admin.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some(url) = line.strip_prefix("wasmgate: gateway listening on ") {
                        gateway = Some(url.to_string());
                    }
                    if let Some(url) = line.strip_prefix("wasmgate: admin API listening on ") {
                        admin = Some(url.to_string());
                    }
                }
                Err(_) => {
                    let _ = child.kill();
                    panic!("the server did not start; its log:\n{}", self.log());
                }
            }
        }
        self.gateway = gateway.unwrap_or_default();
        self.admin_url = admin.unwrap_or_default();
        self.admin = AdminClient::from_data_dir(&self.admin_url, &self.data_dir()).expect("admin token");
        self.child = Some(child);
    }

    /// `kill -9`, no chance to clean up.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends the server a signal (`kill -s NAME`).
    pub fn signal(&self, name: &str) {
        let pid = self.child.as_ref().expect("server running").id().to_string();
        assert!(Command::new("kill").args(["-s", name, &pid]).status().expect("kill").success());
    }

    /// SIGTERM and wait for a clean exit.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        self.signal("TERM");
        self.child.take().expect("server running").wait().expect("wait for the server")
    }

    /// Stops the server as an operator does (SIGTERM, a clean exit) and
    /// starts it again.
    pub fn restart_gracefully(&mut self) {
        assert!(self.terminate().success(), "a clean exit");
        self.spawn();
    }

    /// Starts the server again on the same data directory and configuration.
    pub fn restart(&mut self) {
        self.kill9();
        self.spawn();
    }

    /// The admin API's `/v1/status` once `ready` holds for it: the server's
    /// own word that what a test waits for has happened. Panics, naming
    /// `what`, if it has not within 30 s.
    pub async fn status_when(&self, what: &str, ready: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let status = self.admin.get_json("/v1/status").await.expect("GET /v1/status");
            if ready(&status) {
                return status;
            }
            // Polled as fast as the status answers (a round trip each).
            assert!(Instant::now() < deadline, "waited 30 s for {what}; the status says {status}");
        }
    }

    /// Waits until the server's epoch ticker has gone to sleep (no guest
    /// ran for a while), as the status says.
    pub async fn epoch_ticker_parked(&self) {
        self.status_when("the epoch ticker to park", |s| s["runtime"]["epoch_ticker_parked"] == true).await;
    }

    /// Waits until `function` has at least `n` calls in flight (over all its
    /// versions), as the status says.
    pub async fn calls_in_flight(&self, function: &str, n: u64) -> Value {
        self.status_when(&format!("{n} calls of {function} in flight"), |s| busy(s, function) >= n).await
    }

    /// Invokes through the admin API.
    pub async fn invoke(&self, qualifier: &str, event: &str) -> ApiResponse {
        self.admin
            .send(Method::POST, &format!("/v1/functions/{qualifier}/invocations"), &[], Bytes::from(event.to_string()))
            .await
            .expect("invoke")
    }

    /// Uploads code as `$LATEST` (creating the function).
    pub async fn put_code(&self, name: &str, wasm: &[u8]) -> ApiResponse {
        self.admin
            .send(Method::PUT, &format!("/v1/functions/{name}/code"), &[], Bytes::copy_from_slice(wasm))
            .await
            .expect("upload")
    }

    pub async fn json(&self, method: Method, path: &str, body: Value) -> ApiResponse {
        self.admin
            .send(method, path, &[("content-type", "application/json")], Bytes::from(body.to_string()))
            .await
            .expect("admin request")
    }

    /// The server's admin token, as its data directory keeps it.
    pub fn token(&self) -> String {
        std::fs::read_to_string(self.data_dir().join("admin.token")).expect("the admin token").trim().to_string()
    }

    /// Runs the CLI in the server's directory as a user would there, with
    /// `args` alone: no `--admin` or `--data-dir` added, and none from the
    /// environment (so the CLI reads `./gateway.toml` unless told otherwise).
    pub fn cli_as_typed(&self, args: &[&str]) -> (i32, String, String) {
        let out = Command::new(BIN)
            .args(args)
            .current_dir(self.dir.path())
            .env_remove("WASMGATE_ADMIN")
            .env_remove("WASMGATE_DATA_DIR")
            .env_remove("WASMGATE_TOKEN")
            .output()
            .expect("run the CLI");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// `wasmgate function invoke QUALIFIER --payload EVENT --log`, as a user
    /// runs it: (exit code, the result or error as JSON, what it printed on
    /// stderr: the version line and the invocation's log).
    pub fn invoke_logged(&self, qualifier: &str, event: &str) -> (i32, Value, String) {
        let (code, out, err) = self.cli(&["function", "invoke", qualifier, "--payload", event, "--log"]);
        let value = serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {out}{err}"));
        (code, value, err)
    }

    /// Runs the CLI against this server; returns (exit code, stdout, stderr).
    pub fn cli(&self, args: &[&str]) -> (i32, String, String) {
        let out = Command::new(BIN)
            .args(args)
            .arg("--admin")
            .arg(&self.admin_url)
            .arg("--data-dir")
            .arg(self.data_dir())
            .current_dir(self.dir.path())
            .env("NO_COLOR", "1")
            .output()
            .expect("run the CLI");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A guest's component bytes.
pub fn guest(name: &str) -> &'static [u8] {
    wasmgate_host::guests::get(name).unwrap_or_else(|| panic!("no guest {name}"))
}

/// Writes bytes to a file in `dir` and returns its path.
pub fn write_file(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("write file");
    path
}

/// `(busy, idle)` of `function`'s `version` in a `/v1/status`: its calls
/// in flight and its idle instances (`None` while the version is not loaded).
pub fn pool(status: &Value, function: &str, version: &str) -> Option<(u64, u64)> {
    let pools = status["pools"].as_array().expect("the status lists pools");
    let pool = pools.iter().find(|p| p["function"] == function && p["version"] == version)?;
    Some((pool["busy"].as_u64().expect("busy"), pool["idle"].as_u64().expect("idle")))
}

/// The calls of `function` in flight in a `/v1/status`, over all its versions.
pub fn busy(status: &Value, function: &str) -> u64 {
    let pools = status["pools"].as_array().expect("the status lists pools");
    pools.iter().filter(|p| p["function"] == function).filter_map(|p| p["busy"].as_u64()).sum()
}

pub fn body_json(resp: &ApiResponse) -> Value {
    serde_json::from_slice(&resp.body)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&resp.body)))
}

/// A response from the gateway.
#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: hyper::HeaderMap,
    pub body: Bytes,
}

impl HttpResponse {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Every line of header `name`, in the order sent (a `Set-Cookie` per cookie).
    pub fn header_lines(&self, name: &str) -> Vec<&str> {
        self.headers.get_all(name).iter().filter_map(|v| v.to_str().ok()).collect()
    }
}

/// Sends one HTTP/1.1 request (or HTTP/2 with prior knowledge when `h2`).
pub async fn http_with(
    h2: bool,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
) -> HttpResponse {
    use http_body_util::{BodyExt, Full};
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .http2_only(h2)
        .build_http::<Full<Bytes>>();
    let mut req = hyper::Request::builder().method(method).uri(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = client.request(req.body(Full::new(body.into())).expect("request")).await.expect("send request");
    let (parts, body) = resp.into_parts();
    let body = body.collect().await.expect("read body").to_bytes();
    HttpResponse { status: parts.status.as_u16(), headers: parts.headers, body }
}

pub async fn http(method: &str, url: &str, headers: &[(&str, &str)], body: impl Into<Bytes>) -> HttpResponse {
    http_with(false, method, url, headers, body).await
}

pub async fn get(url: &str) -> HttpResponse {
    http("GET", url, &[], Bytes::new()).await
}

/// The bundled `gateway.toml` without its `[server]` table and without its
/// stage policies (API keys, throttles, the cache, CORS): the tests that use
/// it are about routing, integrations and deploys. `policies.rs` tests the
/// file whole ([`bundled_config_with_policies`]).
pub fn bundled_config() -> String {
    let policies = ["api_key_required", "throttle =", "cache =", "cors ="];
    bundled_config_with_policies()
        .lines()
        .filter(|line| !policies.iter().any(|p| line.trim_start().starts_with(p)))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The bundled `gateway.toml` without its `[server]` table.
pub fn bundled_config_with_policies() -> String {
    strip_server(include_str!("../../gateway.toml"))
}

/// A configuration file's text without its `[server]` table.
pub fn strip_server(text: &str) -> String {
    let mut out = String::new();
    let mut in_server = false;
    for line in text.lines() {
        if line.starts_with('[') {
            in_server = line.trim() == "[server]";
        }
        if !in_server {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

impl TestServer {
    /// A URL on the gateway.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.gateway)
    }

    /// Replaces the configuration file (for a later deploy).
    pub fn rewrite_config(&self, extra: &str) {
        std::fs::write(&self.config, config_text("", extra)).expect("rewrite config");
    }
}

/// A plain TCP connection to the gateway, for requests written byte by byte.
pub async fn raw_connection(server: &TestServer) -> tokio::net::TcpStream {
    tokio::net::TcpStream::connect(server.gateway.trim_start_matches("http://")).await.unwrap()
}

/// Reads until the server closes the connection (panicking with `open` if
/// it has not within 10 s): what came, and how long that took.
pub async fn read_until_closed(stream: &mut tokio::net::TcpStream, open: &str) -> (String, std::time::Duration) {
    use tokio::io::AsyncReadExt;
    let started = std::time::Instant::now();
    let mut buf = Vec::new();
    let read = tokio::time::timeout(std::time::Duration::from_secs(10), stream.read_to_end(&mut buf)).await;
    assert!(read.is_ok(), "{open}");
    (String::from_utf8_lossy(&buf).into_owned(), started.elapsed())
}

/// Reads one HTTP/1.1 response (headers and a `Content-Length` body) off a raw stream.
pub async fn read_response(stream: &mut tokio::net::TcpStream) -> String {
    read_one_response(stream, &mut Vec::new()).await
}

/// Reads one whole response (head and `Content-Length` body). Bytes read past
/// it — the start of a pipelined next response — stay in `pending`.
pub async fn read_one_response(stream: &mut tokio::net::TcpStream, pending: &mut Vec<u8>) -> String {
    use tokio::io::AsyncReadExt;
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(head_end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&pending[..head_end]).to_string();
            let length = head
                .lines()
                .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_string()))
                .and_then(|v| v.parse::<usize>().ok())
                .unwrap_or(0);
            let end = head_end + 4 + length;
            if pending.len() >= end {
                let response: Vec<u8> = pending.drain(..end).collect();
                return String::from_utf8_lossy(&response).to_string();
            }
        }
        let n = stream.read(&mut chunk).await.unwrap();
        assert!(n > 0, "connection closed before a whole response: {}", String::from_utf8_lossy(pending));
        pending.extend_from_slice(&chunk[..n]);
    }
}
