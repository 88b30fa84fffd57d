//! A real Prometheus server for tests (Debian's `prometheus` package;
//! `.ci/run` installs it) scraping one target on loopback, with its
//! storage in a temporary directory; killed when dropped.
//!
//! Starting waits for its own word ("Server is ready to receive web
//! requests." in its log), never a fixed time; a query waits for a scrape
//! that began after a given moment ([`Prometheus::scraped_after`]), asking
//! Prometheus until its answer says so.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use super::common::get;

/// A `prometheus` scraping `target` (`host:port`) every 200 ms.
pub struct Prometheus {
    _dir: tempfile::TempDir,
    child: Child,
    pub url: String,
}

impl Prometheus {
    pub fn start(target: &str) -> Prometheus {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 200ms\n  scrape_timeout: 150ms\n\
                 scrape_configs:\n  - job_name: wasmgate\n    static_configs:\n      - targets: ['{target}']\n"
            ),
        )
        .expect("write prometheus.yml");
        // A port of its own: one the system hands out, let go just before.
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run prometheus (install Debian's prometheus package): {e}"));
        let mut lines = BufReader::new(child.stderr.take().expect("its log")).lines();
        let mut said = Vec::new();
        for line in lines.by_ref().map_while(Result::ok) {
            let ready = line.contains("Server is ready to receive web requests.");
            said.push(line);
            if ready {
                // Its later lines are read for as long as it runs.
                std::thread::spawn(move || lines.map_while(Result::ok).for_each(drop));
                return Prometheus { _dir: dir, child, url: format!("http://127.0.0.1:{port}") };
            }
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("prometheus stopped before it was ready; it said:\n{}", said.join("\n"));
    }

    /// The result of an instant query (`data.result`), as Prometheus' HTTP
    /// API answers it.
    pub async fn query(&self, promql: &str) -> Vec<Value> {
        let q: String = promql
            .bytes()
            .map(|b| if b.is_ascii_alphanumeric() { char::from(b).to_string() } else { format!("%{b:02X}") })
            .collect();
        let resp = get(&format!("{}/api/v1/query?query={q}", self.url)).await;
        assert_eq!(resp.status, 200, "{promql}: {}", resp.text());
        let body = resp.json();
        assert_eq!(body["status"], "success", "{promql}: {body}");
        body["data"]["result"].as_array().cloned().unwrap_or_default()
    }

    /// Waits until Prometheus holds a scrape of the target that started
    /// after `moment` (so every count made before it is in), and it
    /// succeeded.
    pub async fn scraped_after(&self, moment: SystemTime) {
        let after = moment.duration_since(UNIX_EPOCH).unwrap().as_secs_f64();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let up = self.query(r#"timestamp(up{job="wasmgate"}) and up{job="wasmgate"} == 1"#).await;
            let newest = up.first().and_then(|s| s["value"][1].as_str()).and_then(|v| v.parse::<f64>().ok());
            if newest.is_some_and(|t| t > after) {
                return;
            }
            assert!(Instant::now() < deadline, "no successful scrape of the target after {after} in 60 s: {up:?}");
            // Ask again: each question is a round trip to Prometheus, and
            // its answer is the signal (the next scrape is at most one
            // interval away).
            tokio::task::yield_now().await;
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A query's result as `labels (without Prometheus' own job and instance)
/// → value`, sorted: to compare whole with what was sent.
pub fn series(result: &[Value]) -> Vec<(Vec<(String, String)>, f64)> {
    let mut out: Vec<_> = result
        .iter()
        .map(|s| {
            let mut labels: Vec<(String, String)> = s["metric"]
                .as_object()
                .expect("labels")
                .iter()
                .filter(|(k, _)| !matches!(k.as_str(), "job" | "instance" | "__name__"))
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect();
            labels.sort();
            let value = s["value"][1].as_str().and_then(|v| v.parse().ok()).expect("a value");
            (labels, value)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}
