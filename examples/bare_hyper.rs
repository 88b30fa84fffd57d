//! The baseline of the load benchmark: a bare hyper server answering every
//! request with the same bytes wasmgate returns for `GET /prod/items` (body
//! and headers), so the two can be compared in one run (`benches/load.sh`).
//!
//! `cargo run --release --example bare_hyper -- [ADDR]` (default 127.0.0.1:0);
//! prints `listening on http://ADDR`.

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Response, header};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;

const BODY: &str = r#"[{"ID":1,"name":"Pen","price":2.5},{"ID":2,"name":"Pencil","price":1.5},{"ID":3,"name":"Highlighter","price":3.0},{"ID":4,"name":"Ruler","price":5.0}]"#;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:0".into());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("listening on http://{}", listener.local_addr()?);
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let service = hyper::service::service_fn(|_req| async {
                let mut resp = Response::new(Full::new(Bytes::from_static(BODY.as_bytes())));
                let h = resp.headers_mut();
                h.insert(header::CONTENT_TYPE, header::HeaderValue::from_static("application/json"));
                h.insert("x-amzn-requestid", header::HeaderValue::from_static("00000000-0000-0000-0000-000000000000"));
                h.insert("x-amz-apigw-id", header::HeaderValue::from_static("0000000000"));
                h.insert("x-amzn-trace-id", header::HeaderValue::from_static("Root=1-0000000000"));
                Ok::<_, Infallible>(resp)
            });
            let _ = auto::Builder::new(TokioExecutor::new()).serve_connection(TokioIo::new(stream), service).await;
        });
    }
}
