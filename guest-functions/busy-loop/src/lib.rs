//! Busy loop: never returns unless the event says `{"loop": false}`. Shows that
//! a timeout kills the call and the server keeps serving.

use serde_json::{Value, json};
use wasmgate_guest::{Context, Error};

fn handle(event: Value, _ctx: &Context) -> Result<Value, Error> {
    if event.get("loop") == Some(&Value::Bool(false)) {
        return Ok(json!({ "looped": false }));
    }
    let mut x: u64 = 0;
    loop {
        x = std::hint::black_box(x.wrapping_add(1));
    }
}

wasmgate_guest::handler!(handle);
