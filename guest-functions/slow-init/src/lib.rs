//! Slow init: the first call on an instance builds a large table (an expensive
//! initialisation, like loading a model or parsing config), later calls reuse
//! it. Makes the cost of a fresh instance visible next to a reused one.

use std::sync::OnceLock;

use serde_json::{Value, json};
use wasmgate_guest::{Context, Error};

static PRIMES: OnceLock<Vec<u32>> = OnceLock::new();

fn sieve(limit: usize) -> Vec<u32> {
    let mut composite = vec![false; limit + 1];
    let mut primes = Vec::new();
    for n in 2..=limit {
        if !composite[n] {
            primes.push(n as u32);
            let mut m = n * n;
            while m <= limit {
                composite[m] = true;
                m += n;
            }
        }
    }
    primes
}

fn handle(_event: Value, _ctx: &Context) -> Result<Value, Error> {
    let mut initialised_now = false;
    let primes = PRIMES.get_or_init(|| {
        initialised_now = true;
        sieve(2_000_000)
    });
    Ok(json!({ "primes": primes.len(), "initialised_now": initialised_now }))
}

wasmgate_guest::handler!(handle);
