//! The property-based fuzz suite (proptest, stable Rust):
//!
//! ```text
//! cargo test -p wasmgate-host --test fuzz                      # a few seconds per target
//! WASMGATE_FUZZ_SECS=600 nice -n 19 \
//!   cargo test -p wasmgate-host --test fuzz -- --nocapture --exact header_case::against_hyper
//! ```
//!
//! The second command runs one target for 10 minutes: batches of cases, new
//! random seeds for each, until the time is up; then it prints
//! `header_case::against_hyper: N cases, 0 failures` (a failure stops the
//! run, and proptest prints the smallest input it shrank it to). Without
//! `WASMGATE_FUZZ_SECS` every target runs a fixed number of cases
//! ([`Target::cases`], a few seconds in the dev profile). The results of the
//! long runs are in `benches/RELIABILITY.md`.
//!
//! A module per target, one `#[test]` per target:
//!
//! * [`template`]: the template parser and renderer — no panic, errors
//!   name a line and column within the source, output within
//!   [`MAX_OUTPUT`](wasmgate_host::template::eval::MAX_OUTPUT), rendering
//!   twice renders the same;
//! * [`router`]: the router against a naive model of API Gateway's matching
//!   (every route and method, every path);
//! * [`config`]: `gateway.toml` — any text, and mutations of the examples,
//!   give a configuration or an error that names its line;
//! * [`proxy_response`]: a function's proxy response, against a model of
//!   its validation (status, headers as given, body);
//! * [`header_case`]: the header recorder against hyper, on the same bytes
//!   of (pipelined, split, slightly malformed) HTTP/1.1 requests.

use std::fmt::Debug;
use std::time::{Duration, Instant};

use proptest::strategy::Strategy;
use proptest::test_runner::{Config, TestCaseError, TestError, TestRunner};

mod config;
mod header_case;
mod proxy_response;
mod router;
mod template;

/// One fuzz target: its name, and how many cases `cargo test` runs.
pub struct Target {
    pub name: &'static str,
    pub cases: u32,
}

/// How long to run each target (`WASMGATE_FUZZ_SECS`), if not by count.
fn budget() -> Option<Duration> {
    let secs = std::env::var("WASMGATE_FUZZ_SECS").ok()?;
    let secs: u64 = secs.trim().parse().expect("WASMGATE_FUZZ_SECS is a number of seconds");
    Some(Duration::from_secs(secs))
}

/// Runs `test` on values of `strategy`: `target.cases` of them, or batches
/// of that many (each with a fresh random seed) for `WASMGATE_FUZZ_SECS`.
/// Prints the count; a failure panics with proptest's shrunk input.
/// Returns the number of cases run.
pub fn fuzz<S>(target: Target, strategy: S, test: impl Fn(S::Value) -> Result<(), TestCaseError>) -> u64
where
    S: Strategy,
    S::Value: Debug,
{
    let budget = budget();
    let started = Instant::now();
    let ran = std::cell::Cell::new(0u64);
    let mut reported = started;
    loop {
        let config = Config {
            cases: target.cases,
            failure_persistence: None,
            // Shrinking a failure of a slow target must not take the run's time.
            max_shrink_time: 120_000,
            ..Config::default()
        };
        let mut runner = TestRunner::new(config);
        let result = runner.run(&strategy, |value| {
            ran.set(ran.get() + 1);
            test(value)
        });
        match result {
            Ok(()) => {}
            Err(TestError::Fail(reason, value)) => {
                println!("{}: {} cases, 1 failure", target.name, ran.get());
                panic!("{}: {reason}\nminimal failing input: {value:#?}", target.name);
            }
            Err(e) => {
                println!("{}: {} cases, 1 failure", target.name, ran.get());
                panic!("{}: {e}", target.name);
            }
        }
        let Some(budget) = budget else { break };
        if started.elapsed() >= budget {
            break;
        }
        if reported.elapsed() >= Duration::from_secs(60) {
            reported = Instant::now();
            eprintln!("{}: {} cases so far ({:.0} s)", target.name, ran.get(), started.elapsed().as_secs_f64());
        }
    }
    println!("{}: {} cases, 0 failures ({:.1} s)", target.name, ran.get(), started.elapsed().as_secs_f64());
    ran.get()
}
