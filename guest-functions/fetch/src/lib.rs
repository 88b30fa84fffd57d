//! Fetch: outbound HTTP from a Rust function, through the standard
//! `wasi:http/outgoing-handler` (with `wstd`'s client). The event names the
//! request — `{"url": "http://…", "method": "POST", "body": "…"}` — and
//! the answer is `{"status", "body"}`; a request wasmgate refuses or that
//! fails is the error `HttpError` with `wasi:http`'s reason.

use serde_json::{Value, json};
use wasmgate_guest::{Context, Error};
use wstd::http::{Body, Client, Request};

fn handle(event: Value, _ctx: &Context) -> Result<Value, Error> {
    let url = event.get("url").and_then(Value::as_str).ok_or_else(|| Error::new("InvalidEvent", "no url"))?;
    let method = event.get("method").and_then(Value::as_str).unwrap_or("GET");
    let body = event.get("body").and_then(Value::as_str).unwrap_or("").to_string();
    let http_error = |e: &dyn std::fmt::Display| Error::new("HttpError", e.to_string());
    wstd::runtime::block_on(async move {
        let request = Request::builder()
            .method(method)
            .uri(url)
            .body(Body::from(body))
            .map_err(|e| http_error(&e))?;
        let response = Client::new().send(request).await.map_err(|e| http_error(&e))?;
        let status = response.status().as_u16();
        let mut body = response.into_body();
        let contents = body.contents().await.map_err(|e| http_error(&e))?;
        Ok(json!({ "status": status, "body": String::from_utf8_lossy(contents) }))
    })
}

wasmgate_guest::handler!(handle);
