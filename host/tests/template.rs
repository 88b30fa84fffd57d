//! The template engine's test binary (`cargo test -p wasmgate-host --test template`):
//!
//! * `unit`: one test per construct, exact outputs, and the public API,
//!   positions of errors and limits;
//! * `seed`: the seed project's three templates, byte for byte;
//! * `cases`: the table in `template/cases.json`, whose expected outputs
//!   were produced by the Velocity 1.7 reference renderer;
//! * `conformance`: every case of the shared `vtl_cases.json` (AWS-recorded
//!   ones must match), read from `$WASMGATE_CONFORMANCE_DIR` or
//!   `../../shared/conformance` next to this crate;
//! * `fuzz`: property tests that no input panics.

#[path = "template/support.rs"]
mod support;

#[path = "template/cases.rs"]
mod cases;

#[path = "template/conformance.rs"]
mod conformance;

#[path = "template/seed.rs"]
mod seed;

#[path = "template/unit.rs"]
mod unit;

#[path = "template/fuzz.rs"]
mod fuzz;
