//! Builds the guest functions in `../guest-functions` for `wasm32-wasip2` and
//! embeds them into the library (see `src/guests.rs`).
//!
//! The guests are a separate cargo workspace with their own target directory
//! (`target/guest-functions` under the workspace root), so this nested build is
//! incremental and never fights the host build over its lock. If the
//! `wasm32-wasip2` target is missing (rustup's auto-install may be off), it is
//! added through rustup, and the build says so.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

const GUESTS: &[&str] = &[
    "items",
    "echo",
    "counter",
    "busy-loop",
    "panic",
    "memory-hog",
    "slow-init",
    "proxy-echo",
    "hello-proxy",
    "sleepy",
    "fetch",
];
const TARGET: &str = "wasm32-wasip2";

fn main() {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let root = manifest_dir.parent().expect("host/ has a parent").to_path_buf();
    let guests_dir = root.join("guest-functions");
    let target_dir = root.join("target").join("guest-functions");

    println!("cargo:rerun-if-changed={}", guests_dir.join("Cargo.toml").display());
    println!("cargo:rerun-if-changed={}", guests_dir.join("Cargo.lock").display());
    println!("cargo:rerun-if-changed={}", manifest_dir.join("wit").display());
    for entry in std::fs::read_dir(&guests_dir).expect("guest-functions/ exists") {
        let dir = entry.expect("readable guest-functions/").path();
        if dir.is_dir() {
            println!("cargo:rerun-if-changed={}", dir.join("src").display());
            println!("cargo:rerun-if-changed={}", dir.join("Cargo.toml").display());
        }
    }

    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    ensure_target();

    let mut cmd = Command::new(&cargo);
    cmd.current_dir(&guests_dir).args(["build", "--release", "--target", TARGET, "--target-dir"]).arg(&target_dir);
    // The outer build's settings are for the host, not for the guests.
    for var in [
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTFLAGS",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "CARGO_BUILD_RUSTFLAGS",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_MAKEFLAGS",
        "CARGO_PRIMARY_PACKAGE",
        "CARGO_LLVM_COV",
        "LLVM_PROFILE_FILE",
    ] {
        cmd.env_remove(var);
    }
    let status = cmd.status().unwrap_or_else(|e| panic!("could not run {cargo}: {e}"));
    if !status.success() {
        panic!("building the guest functions in {} for {TARGET} failed (see the output above)", guests_dir.display());
    }

    let out = target_dir.join(TARGET).join("release");
    let mut code = String::from(
        "/// Guest functions built from `guest-functions/`, by name.\npub const GUESTS: &[(&str, &[u8])] = &[\n",
    );
    for guest in GUESTS {
        let file = out.join(format!("{}.wasm", guest.replace('-', "_")));
        assert!(file.exists(), "guest {guest} was not built: {} is missing", file.display());
        code.push_str(&format!("    ({guest:?}, include_bytes!({:?})),\n", file.display().to_string()));
    }
    code.push_str("];\n");
    let dest = Path::new(&env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("guests.rs");
    std::fs::write(dest, code).expect("write guests.rs");
}

/// Makes sure the standard library for `wasm32-wasip2` is installed, adding it
/// through rustup when it is not.
fn ensure_target() {
    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let sysroot = Command::new(&rustc)
        .args(["--print", "sysroot"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    if let Some(sysroot) = &sysroot
        && sysroot.join("lib/rustlib").join(TARGET).exists()
    {
        return;
    }
    println!("cargo:warning=the {TARGET} target is missing: adding it with `rustup target add {TARGET}`");
    let status = Command::new("rustup").args(["target", "add", TARGET]).status();
    match status {
        Ok(s) if s.success() => {}
        Ok(s) => panic!("`rustup target add {TARGET}` failed ({s}); install the target and build again"),
        Err(e) => panic!(
            "the {TARGET} target is missing and rustup could not be run ({e}); install it with `rustup target add {TARGET}`"
        ),
    }
}
