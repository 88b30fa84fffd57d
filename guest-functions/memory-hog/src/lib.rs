//! Memory hog: allocates 1 MiB blocks until memory runs out, unless the event
//! says `{"mb": N}`, when it allocates N MiB and returns. Shows the memory limit.
//! `{"try_mb": N}` asks for N MiB at once and copes when it is refused
//! (`{"reserved": false}`); `{"trap": true}` traps (`unreachable`).

use serde_json::{Value, json};
use wasmgate_guest::{Context, Error};

fn handle(event: Value, _ctx: &Context) -> Result<Value, Error> {
    if let Some(mb) = event.get("try_mb").and_then(Value::as_u64) {
        let mut block: Vec<u8> = Vec::new();
        let reserved = block.try_reserve_exact((mb as usize) << 20).is_ok();
        return Ok(json!({ "reserved": reserved }));
    }
    if event.get("trap").is_some() {
        core::arch::wasm32::unreachable();
    }
    let limit = event.get("mb").and_then(Value::as_u64).unwrap_or(u64::MAX);
    let mut blocks: Vec<Vec<u8>> = Vec::new();
    while (blocks.len() as u64) < limit {
        blocks.push(std::hint::black_box(vec![1u8; 1 << 20]));
    }
    Ok(json!({ "allocated_mb": blocks.len() }))
}

wasmgate_guest::handler!(handle);
