//! The data directory and the admin API's exposure: one server per data
//! directory (a second is refused, naming the first, and touches nothing),
//! the directory private to its owner, an admin token open to others refused,
//! an admin listener off loopback only on request; and `wasmgate bench`
//! keeping the function's log to itself unless asked.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::{Method, StatusCode};
use wasmgate_host::admin::client::AdminClient;

use crate::common::{BIN, ITEMS, TestServer};

/// A `wasmgate serve` that started; killed (and waited for) on drop.
struct Running {
    child: Child,
    /// The admin API's address as printed (`127.0.0.1:port`, `0.0.0.0:port`).
    admin: String,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What a `wasmgate serve` did: print its addresses, or exit.
enum Serve {
    Started(Running),
    Exited { code: Option<i32>, stderr: String },
}

impl Serve {
    fn started(self) -> Running {
        match self {
            Serve::Started(r) => r,
            Serve::Exited { code, stderr } => panic!("the server exited ({code:?}) instead of serving:\n{stderr}"),
        }
    }

    /// The refusal's exit code and message.
    fn refused(self) -> (Option<i32>, String) {
        match self {
            Serve::Started(r) => panic!("the server started (admin API on {}) where it must refuse", r.admin),
            Serve::Exited { code, stderr } => (code, stderr),
        }
    }
}

/// Runs `wasmgate serve --config CONFIG ARGS…` until it either prints its
/// admin address (it serves) or exits (its stdout closes).
fn serve(config: &Path, args: &[&str]) -> Serve {
    let mut child = Command::new(BIN)
        .arg("serve")
        .arg("--config")
        .arg(config)
        .args(args)
        .env("WASMGATE_LOG", "info")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn wasmgate serve");
    // stderr is drained all along (the log must never fill the pipe).
    let mut stderr = child.stderr.take().expect("stderr");
    let log = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(line) => {
                if let Some(url) = line.strip_prefix("wasmgate: admin API listening on http://") {
                    return Serve::Started(Running { child, admin: url.to_string() });
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let status = child.wait().expect("wait for the server");
                return Serve::Exited { code: status.code(), stderr: log.join().unwrap_or_default() };
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("the server neither served nor exited; its log:\n{}", log.join().unwrap_or_default());
            }
        }
    }
}

/// A directory with a gateway.toml (`server_keys` in its `[server]`, data in `data/`).
fn setup(server_keys: &str, extra: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("gateway.toml");
    std::fs::write(&config, format!("[server]\ndata_dir = \"data\"\nlisten = \"127.0.0.1:0\"\n{server_keys}\n{extra}"))
        .expect("write config");
    (dir, config)
}

/// Every file and directory under `dir`.
fn tree(dir: &Path) -> BTreeSet<PathBuf> {
    let mut found = BTreeSet::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).expect("read dir").flatten() {
            let path = entry.path();
            if path.is_dir() {
                todo.push(path.clone());
            }
            found.insert(path);
        }
    }
    found
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).expect("metadata").permissions().mode() & 0o777
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// A loopback address for the admin API printed as `host:port`.
fn loopback(admin: &str) -> String {
    let port = admin.rsplit(':').next().expect("a port");
    format!("http://127.0.0.1:{port}")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_server_on_the_same_data_dir_is_refused_and_the_first_keeps_serving() {
    let (dir, config) = setup("admin_listen = \"127.0.0.1:0\"", ITEMS);
    let data = dir.path().join("data");
    let first = serve(&config, &[]).started();
    let admin = AdminClient::from_data_dir(&format!("http://{}", first.admin), &data).expect("admin token");

    // A code blob written but not committed yet: what a second server's
    // start-up sweep would delete.
    let pending = data.join("code").join(format!("{}.wasm", "0".repeat(64)));
    std::fs::write(&pending, b"\0asm").expect("write a blob");
    let before = tree(&data);

    let (code, stderr) = serve(&config, &[]).refused();
    assert_ne!(code, Some(0), "{stderr}");
    let expected =
        format!("data directory {} is in use by another wasmgate server (pid {}", data.display(), first.child.id());
    assert!(stderr.contains(&expected), "{stderr}\nlacks {expected:?}");
    assert!(stderr.contains(&first.admin), "the refusal names the holder's admin API:\n{stderr}");
    assert!(stderr.contains("--data-dir"), "{stderr}");

    // Nothing was deleted, and the first server still answers.
    let after = tree(&data);
    let missing: Vec<_> = before.difference(&after).collect();
    assert!(missing.is_empty(), "deleted by the refused server: {missing:?}");
    assert!(pending.exists());
    let resp = admin
        .send(Method::POST, "/v1/functions/ItemsFunction:dev/invocations", &[], Bytes::from_static(b"{\"ID\": 1}"))
        .await
        .expect("invoke");
    assert_eq!(resp.status, StatusCode::OK, "{:?}", resp.body);

    // Once the holder is gone (even by kill -9), the directory is free again.
    drop(first);
    drop(serve(&config, &[]).started());
}

#[test]
fn the_data_dir_is_created_private_to_its_owner() {
    let (dir, config) = setup("admin_listen = \"127.0.0.1:0\"", "");
    let data = dir.path().join("data");
    assert!(!data.exists());
    let _server = serve(&config, &[]).started();
    assert_eq!(mode(&data), 0o700, "{}", data.display());
    assert_eq!(mode(&data.join("admin.token")), 0o600);
}

#[test]
fn an_admin_token_open_to_others_is_refused_by_the_server_and_the_cli() {
    let (dir, config) = setup("admin_listen = \"127.0.0.1:0\"", ITEMS);
    let data = dir.path().join("data");
    let token = data.join("admin.token");
    let server = serve(&config, &[]).started();
    chmod(&token, 0o644);
    let advice = format!("chmod 600 {}", token.display());

    // The CLI will not use it …
    let out = Command::new(BIN)
        .args(["function", "list", "--admin", &format!("http://{}", server.admin), "--data-dir"])
        .arg(&data)
        .current_dir(dir.path())
        .output()
        .expect("run the CLI");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the CLI used a token readable by others:\n{stderr}");
    assert!(stderr.contains(&advice), "{stderr}\nlacks {advice:?}");

    // … nor will a server starting on it.
    drop(server);
    let (code, stderr) = serve(&config, &[]).refused();
    assert_ne!(code, Some(0));
    assert!(stderr.contains(&advice), "{stderr}\nlacks {advice:?}");
    assert!(stderr.contains("group or others"), "{stderr}");

    // Followed, the advice works.
    chmod(&token, 0o600);
    drop(serve(&config, &[]).started());
}

#[tokio::test(flavor = "multi_thread")]
async fn an_admin_listener_off_loopback_needs_the_opt_in() {
    // The key: refused without it …
    let (dir, config) = setup("admin_listen = \"0.0.0.0:0\"", "");
    let (code, stderr) = serve(&config, &[]).refused();
    assert_ne!(code, Some(0));
    for needle in
        ["0.0.0.0:0", "not a loopback address", "clear text", "admin_allow_remote = true", "--admin-allow-remote"]
    {
        assert!(stderr.contains(needle), "{stderr}\nlacks {needle:?}");
    }
    assert!(!dir.path().join("data").exists(), "the refused server created its data directory");

    // … served with it (only loopback traffic is sent to it).
    let (dir, config) = setup("admin_listen = \"0.0.0.0:0\"\nadmin_allow_remote = true", "");
    let server = serve(&config, &[]).started();
    assert!(server.admin.starts_with("0.0.0.0:"), "{}", server.admin);
    let admin = AdminClient::from_data_dir(&loopback(&server.admin), &dir.path().join("data")).expect("token");
    admin.get_json("/v1/functions").await.expect("the admin API answers");
    drop(server);

    // The flag, likewise.
    let (_dir, config) = setup("admin_listen = \"127.0.0.1:0\"", "");
    let (code, stderr) = serve(&config, &["--admin-listen", "0.0.0.0:0"]).refused();
    assert_ne!(code, Some(0));
    assert!(stderr.contains("--admin-allow-remote"), "{stderr}");
    let server = serve(&config, &["--admin-listen", "0.0.0.0:0", "--admin-allow-remote"]).started();
    assert!(server.admin.starts_with("0.0.0.0:"), "{}", server.admin);
    drop(server);

    // The key's value is checked as every key's is.
    let (_dir, config) = setup("admin_listen = \"127.0.0.1:0\"\nadmin_allow_remote = \"yes\"", "");
    let (code, stderr) = serve(&config, &[]).refused();
    assert_ne!(code, Some(0));
    assert!(stderr.contains("server.admin_allow_remote") && stderr.contains("line 5"), "{stderr}");
}

#[test]
fn bench_prints_its_table_without_the_function_log_unless_asked() {
    let server = TestServer::start(ITEMS);
    let rows = ["cold (compile)", "cold (cached artifact)", "warm (fresh instance)", "hot (reused instance)"];

    let (code, out, err) = server.cli(&["bench", "ItemsFunction", "--samples", "20"]);
    assert_eq!(code, 0, "{err}");
    for row in rows {
        assert!(out.contains(row), "{row} missing in\n{out}");
    }
    let events = out.matches("Event:").count() + err.matches("Event:").count();
    assert_eq!(events, 0, "the function's log was printed:\n{}", err.lines().take(5).collect::<Vec<_>>().join("\n"));

    let (code, out, err) = server.cli(&["bench", "ItemsFunction", "--samples", "20", "--show-logs"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(rows[3]), "{out}");
    assert!(err.contains("Event:"), "--show-logs shows the function's log:\n{err}");
}
