//! The component toolchains for Python and JavaScript functions
//! (componentize-py, componentize-js), at the pinned versions: installed by
//! `tools/install-toolchains.sh` into `target/toolchains` the first time a
//! test needs them (`.ci/run` installs them ahead), or taken from
//! `WASMGATE_TOOLCHAINS`. And the functions the tests build with them, each
//! built once per test run by `wasmgate build` (what a user runs).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

use super::common::BIN;

/// The workspace's root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The toolchains' directory, installed if need be.
pub fn dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        if let Some(dir) = std::env::var_os("WASMGATE_TOOLCHAINS") {
            return PathBuf::from(dir);
        }
        let dir = root().join("target").join("toolchains");
        std::fs::create_dir_all(&dir).expect("target/toolchains");
        // One installer at a time across test processes; a second finds
        // both installed and does nothing.
        let lock = std::fs::File::create(dir.join(".lock")).expect("lock file");
        lock.lock().expect("lock target/toolchains");
        let out = Command::new(root().join("tools/install-toolchains.sh"))
            .arg(&dir)
            .output()
            .expect("run tools/install-toolchains.sh");
        assert!(
            out.status.success(),
            "tools/install-toolchains.sh failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        dir
    })
}

/// Runs `wasmgate build` with the toolchains; (exit code, stdout, stderr).
pub fn wasmgate_build(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN)
        .arg("build")
        .args(args)
        .arg("--toolchains")
        .arg(dir())
        .current_dir(root())
        .output()
        .expect("run wasmgate build");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The component built from `source` (relative to the workspace), built
/// once per test run and kept under `target/`.
pub fn built(source: &str) -> PathBuf {
    static BUILT: OnceLock<Mutex<HashMap<String, PathBuf>>> = OnceLock::new();
    let built = BUILT.get_or_init(Default::default);
    // Held through the build: two tests wanting the same source wait for one build.
    let mut built = built.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(path) = built.get(source) {
        return path.clone();
    }
    let out_dir = root().join("target").join("test-functions");
    std::fs::create_dir_all(&out_dir).expect("target/test-functions");
    // `wasmgate build -o` replaces its output whole (a temporary file renamed).
    let out = out_dir.join(format!("{}.wasm", source.replace(['/', '.'], "_")));
    let (code, stdout, stderr) = wasmgate_build(&[source, "-o", out.to_str().expect("utf-8 path")]);
    assert_eq!(code, 0, "wasmgate build {source} failed:\n{stdout}{stderr}");
    built.insert(source.to_string(), out.clone());
    out
}
