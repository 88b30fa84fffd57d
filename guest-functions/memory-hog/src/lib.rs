//! Memory hog: allocates 1 MiB blocks until memory runs out, unless the event
//! says `{"mb": N}`, when it allocates N MiB and returns. Shows the memory limit.

use serde_json::{Value, json};
use wasmgate_guest::{Context, Error};

fn handle(event: Value, _ctx: &Context) -> Result<Value, Error> {
    let limit = event.get("mb").and_then(Value::as_u64).unwrap_or(u64::MAX);
    let mut blocks: Vec<Vec<u8>> = Vec::new();
    while (blocks.len() as u64) < limit {
        blocks.push(std::hint::black_box(vec![1u8; 1 << 20]));
    }
    Ok(json!({ "allocated_mb": blocks.len() }))
}

wasmgate_guest::handler!(handle);
