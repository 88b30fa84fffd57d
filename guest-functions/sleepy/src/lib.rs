//! Sleepy: waits in a host call, not in wasm. `{"sleep_ms": N}` sleeps N
//! milliseconds (`std::thread::sleep`: a WASI clock subscription the guest
//! blocks on in `poll`, where epoch interruption cannot reach it) and then
//! answers `{"slept_ms": N}`; `{"bytes": N}` answers a string of N bytes
//! (a result of any size).

use serde_json::{Value, json};
use wasmgate_guest::{Context, Error};

fn handle(event: Value, _ctx: &Context) -> Result<Value, Error> {
    if let Some(n) = event.get("bytes").and_then(Value::as_u64) {
        return Ok(Value::String("x".repeat(n as usize)));
    }
    let ms = event.get("sleep_ms").and_then(Value::as_u64).unwrap_or(0);
    std::thread::sleep(std::time::Duration::from_millis(ms));
    Ok(json!({ "slept_ms": ms }))
}

wasmgate_guest::handler!(handle);
