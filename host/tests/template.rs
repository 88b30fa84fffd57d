//! The template engine's test binary (`cargo test -p wasmgate-host --test template`):
//!
//! * `unit`: one test per construct, exact outputs, and the public API,
//!   positions of errors and limits;
//! * `seed`: the seed project's three templates, byte for byte;
//! * `cases`: the table in `template/cases.json`, whose expected outputs
//!   were produced by the Velocity 1.7 reference renderer;
//! * `conformance`: every case of the AWS-recorded `vtl_cases.json`
//!   (AWS-validated ones must match), read from the project's
//!   `tests/conformance/` or `$WASMGATE_CONFORMANCE_DIR`;
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
