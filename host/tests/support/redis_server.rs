//! A real `redis-server` for tests (Debian's `redis-server` package;
//! `.ci/run` installs it), on a unix socket in a temporary directory,
//! killed when dropped. Shared by the host's `redis_store` tests and the
//! gateway's `shared_store` tests (`#[path]`).
//!
//! Starting waits for the server's own word — "ready to accept
//! connections" on its standard output — never a fixed time.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

/// A `redis-server`, killed when dropped.
pub struct RedisServer {
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl RedisServer {
    pub fn start() -> RedisServer {
        let mut redis = RedisServer::not_started();
        redis.launch();
        redis
    }

    /// Its socket's place, with nothing listening there until [`Self::launch`].
    pub fn not_started() -> RedisServer {
        RedisServer { dir: tempfile::tempdir().expect("a temporary directory"), child: None }
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("redis.sock")
    }

    /// `redis+unix:///…/redis.sock`.
    pub fn url(&self) -> String {
        format!("redis+unix://{}", self.socket().display())
    }

    /// Starts the server (again, empty) on the same socket; returns once it
    /// says it accepts connections.
    pub fn launch(&mut self) {
        let mut child = Command::new("redis-server")
            .args(["--port", "0", "--unixsocket"])
            .arg(self.socket())
            .args(["--unixsocketperm", "700", "--save", "", "--appendonly", "no", "--logfile", "", "--dir"])
            .arg(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run redis-server (install Debian's redis-server package): {e}"));
        let stdout = child.stdout.take().expect("redis-server's output");
        let mut lines = BufReader::new(stdout).lines();
        let mut said = Vec::new();
        for line in lines.by_ref().map_while(Result::ok) {
            let ready = line.to_ascii_lowercase().contains("ready to accept connections");
            said.push(line);
            if ready {
                // Its later lines are read (and dropped) for as long as it
                // runs: a closed pipe would end it at its next line.
                std::thread::spawn(move || lines.map_while(Result::ok).for_each(drop));
                self.child = Some(child);
                return;
            }
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("redis-server stopped before it was ready; it said:\n{}", said.join("\n"));
    }

    /// Kills the server (SIGKILL: no goodbye to its clients) and waits for
    /// it to be gone.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}
