//! The second baseline of the load benchmark: a bare hyper server that calls
//! the seed's items function for every request, through wasmgate's runtime
//! alone (a loaded version, its instance pool, limits and log capture), and
//! returns the function's output — "a bare hyper + wasmtime loop", with no
//! gateway in between. `benches/load.sh` measures it in the same run as
//! wasmgate and the bare hyper server, so the gateway's own cost shows.
//!
//! `cargo run --release --example hyper_wasmtime -- [ADDR] [--fresh] [--max-instances N]`
//! (default 127.0.0.1:0; `--fresh`: a fresh instance per request;
//! `--max-instances`: a smaller instance pool, which reserves less address
//! space, as `benches/instructions.sh` needs under valgrind); prints
//! `listening on http://ADDR`.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Response, StatusCode, header};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use wasmgate_host::runtime::bench::Harness;
use wasmgate_host::runtime::{EngineOptions, FunctionConfig};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut fresh = false;
    let mut engine = EngineOptions::default();
    let mut addr = "127.0.0.1:0".to_string();
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        match arg.as_str() {
            "--fresh" => fresh = true,
            "--max-instances" => engine.max_instances = rest.next().ok_or("--max-instances needs a number")?.parse()?,
            other if other.starts_with("--") => return Err(format!("unknown option {other}").into()),
            other => addr = other.to_string(),
        }
    }
    let wasm = wasmgate_host::guests::get("items").ok_or("the items guest is not embedded")?.to_vec();
    let harness = Arc::new(Harness::with_engine(wasm, FunctionConfig::default(), "{}", None, engine).await?);
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("listening on http://{}", listener.local_addr()?);
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        let harness = harness.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |_req| {
                let harness = harness.clone();
                async move {
                    let (status, body) = match harness.call(fresh).await.map(|o| o.result) {
                        Ok(Ok(output)) => (StatusCode::OK, output),
                        Ok(Err(e)) => (StatusCode::BAD_GATEWAY, e.to_json()),
                        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
                    };
                    let mut resp = Response::new(Full::new(Bytes::from(body)));
                    *resp.status_mut() = status;
                    resp.headers_mut()
                        .insert(header::CONTENT_TYPE, header::HeaderValue::from_static("application/json"));
                    Ok::<_, Infallible>(resp)
                }
            });
            let _ = auto::Builder::new(TokioExecutor::new()).serve_connection(TokioIo::new(stream), service).await;
        });
    }
}
