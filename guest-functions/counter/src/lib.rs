//! Counter: a global that counts the calls this instance has served. A reused
//! ("hot") instance keeps its globals, so the count grows; a fresh one starts at 1.

use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{Value, json};
use wasmgate_guest::{Context, Error};

static CALLS: AtomicU64 = AtomicU64::new(0);

fn handle(_event: Value, ctx: &Context) -> Result<Value, Error> {
    let count = CALLS.fetch_add(1, Ordering::Relaxed) + 1;
    Ok(json!({ "count": count, "version": ctx.function_version }))
}

wasmgate_guest::handler!(handle);
