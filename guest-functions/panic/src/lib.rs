//! Panic: panics (a trap for the host) unless the event says `{"panic": false}`.

use serde_json::{Value, json};
use wasmgate_guest::{Context, Error};

fn handle(event: Value, _ctx: &Context) -> Result<Value, Error> {
    if event.get("panic") == Some(&Value::Bool(false)) {
        return Ok(json!({ "panicked": false }));
    }
    panic!("the guest panicked on purpose");
}

wasmgate_guest::handler!(handle);
