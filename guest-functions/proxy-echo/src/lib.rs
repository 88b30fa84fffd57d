//! Proxy echo: a function-proxy (Lambda proxy) function that answers with
//! the event it received as the body — the proxy event v1 exactly as the
//! gateway built it. A JSON body `{"respond": X}` makes it return `X` itself
//! as its proxy response instead (to test how the gateway treats any shape of
//! response), and `{"fail": "message"}` makes it fail.

use serde_json::{Value, json};
use wasmgate_guest::{Context, Error};

fn handle(event: Value, _ctx: &Context) -> Result<Value, Error> {
    let body: Option<Value> = event.get("body").and_then(Value::as_str).and_then(|b| serde_json::from_str(b).ok());
    if let Some(body) = &body {
        if let Some(respond) = body.get("respond") {
            return Ok(respond.clone());
        }
        if let Some(message) = body.get("fail").and_then(Value::as_str) {
            return Err(Error::new("ProxyError", message));
        }
    }
    Ok(json!({
        "statusCode": 200,
        "headers": { "Content-Type": "application/json", "x-proxy-echo": "1" },
        "body": event.to_string(),
    }))
}

wasmgate_guest::handler!(handle);
