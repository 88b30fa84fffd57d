//! Echo: returns the event, the context and the environment it ran with, and
//! writes a line to stdout and one to stderr (to show log capture). An event
//! `{"fail": "message"}` fails with that message; `{"respond": X}` returns X;
//! `{"log": "text"}` also writes `before text` / `after` with `print!`,
//! `wasmgate_guest::log!` and `println!` (the SDK's logging, in order).

use serde_json::{Value, json};
use wasmgate_guest::{Context, Error};

fn handle(event: Value, ctx: &Context) -> Result<Value, Error> {
    println!("echo stdout {}", ctx.request_id);
    eprintln!("echo stderr {}", ctx.request_id);
    if let Some(text) = event.get("log").and_then(Value::as_str) {
        print!("before ");
        wasmgate_guest::log!("{text}");
        println!("after");
    }
    if let Some(msg) = event.get("fail").and_then(Value::as_str) {
        return Err(Error::new("EchoError", msg));
    }
    if let Some(respond) = event.get("respond") {
        return Ok(respond.clone());
    }
    let env: serde_json::Map<String, Value> = std::env::vars().map(|(k, v)| (k, Value::String(v))).collect();
    Ok(json!({
        "event": event,
        "context": {
            "requestId": ctx.request_id,
            "functionName": ctx.function_name,
            "functionVersion": ctx.function_version,
            "invokedQualifier": ctx.invoked_qualifier,
            "memoryLimitMb": ctx.memory_limit_mb,
            "remainingTimeMs": ctx.remaining_time_ms,
            "deadlineMs": ctx.deadline_ms,
        },
        "env": env,
    }))
}

wasmgate_guest::handler!(handle);
