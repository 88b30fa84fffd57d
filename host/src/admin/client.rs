//! A small client of the admin API, used by the CLI and the tests.

use std::path::Path;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, StatusCode, header};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// What went wrong talking to the admin API.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("invalid admin URL {0:?}")]
    Url(String),
    #[error("could not reach the admin API at {url}: {message} (is `wasmgate serve` running?)")]
    Connect { url: String, message: String },
    #[error("{message}")]
    Api { status: u16, kind: String, message: String },
    #[error("reading {path}: {message}")]
    File { path: String, message: String },
    #[error(
        "{url} is wasmgate's gateway, not its admin API: point --admin at the server's admin_listen address \
         (127.0.0.1:9090 by default)"
    )]
    Gateway { url: String },
}

/// A response of the admin API.
#[derive(Debug)]
pub struct ApiResponse {
    pub status: StatusCode,
    pub headers: hyper::HeaderMap,
    pub body: Bytes,
}

impl ApiResponse {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// The admin API's client: base URL and bearer token.
#[derive(Clone)]
pub struct AdminClient {
    base: String,
    token: String,
    http: Client<HttpConnector, BoxBody<Bytes, std::io::Error>>,
}

impl AdminClient {
    pub fn new(base: &str, token: &str) -> Self {
        AdminClient {
            base: base.trim_end_matches('/').to_string(),
            token: token.to_string(),
            http: Client::builder(TokioExecutor::new()).build_http(),
        }
    }

    /// The admin API's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// A client whose token comes from the data directory (refused when
    /// the token file is open to group or others: [`super::token`]).
    pub fn from_data_dir(base: &str, data_dir: &Path) -> Result<Self, super::token::TokenError> {
        Ok(AdminClient::new(base, &super::token::read(data_dir)?))
    }

    /// Sends a request; any status is returned as is.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Result<ApiResponse, ClientError> {
        let body = Full::new(body.into()).map_err(|never| match never {}).boxed();
        self.send_body(method, path, headers, body).await
    }

    /// Sends a file as the body, read as it is sent (a code upload of
    /// hundreds of megabytes is never whole in this process), and turns a
    /// non-2xx answer into [`ClientError::Api`].
    pub async fn call_with_file(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        file: &Path,
    ) -> Result<ApiResponse, ClientError> {
        let open = |e: std::io::Error| ClientError::File { path: file.display().to_string(), message: e.to_string() };
        let f = tokio::fs::File::open(file).await.map_err(open)?;
        let length = f.metadata().await.map_err(open)?.len().to_string();
        let mut all: Vec<(&str, &str)> = headers.to_vec();
        all.push(("content-length", &length));
        let body = FileBody { file: f, buf: vec![0; 64 << 10].into_boxed_slice() }.boxed();
        let resp = self.send_body(method, path, &all, body).await?;
        self.checked(resp)
    }

    async fn send_body(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: BoxBody<Bytes, std::io::Error>,
    ) -> Result<ApiResponse, ClientError> {
        let url = format!("{}{}", self.base, path);
        let mut builder =
            Request::builder().method(method).uri(&url).header(header::AUTHORIZATION, format!("Bearer {}", self.token));
        for (k, v) in headers {
            builder = builder.header(*k, *v);
        }
        let req = builder.body(body).map_err(|_| ClientError::Url(url.clone()))?;
        let resp = self
            .http
            .request(req)
            .await
            .map_err(|e| ClientError::Connect { url: self.base.clone(), message: format!("{e}") })?;
        let (parts, body) = resp.into_parts();
        let body = body
            .collect()
            .await
            .map_err(|e| ClientError::Connect { url: self.base.clone(), message: e.to_string() })?
            .to_bytes();
        Ok(ApiResponse { status: parts.status, headers: parts.headers, body })
    }

    /// Sends a request and turns a non-2xx answer into [`ClientError::Api`].
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Result<ApiResponse, ClientError> {
        let resp = self.send(method, path, headers, body).await?;
        self.checked(resp)
    }

    /// `resp` if it is a success, else its error.
    fn checked(&self, resp: ApiResponse) -> Result<ApiResponse, ClientError> {
        if resp.status.is_success() {
            return Ok(resp);
        }
        let json = resp.json();
        // The admin API's errors carry their `type`; API Gateway's (the
        // gateway's own answers) only a message and `x-amzn-ErrorType`.
        if json.get("type").is_none() && resp.header("x-amzn-errortype").is_some() {
            return Err(ClientError::Gateway { url: self.base.clone() });
        }
        let message = json["message"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| format!("{} {}", resp.status, String::from_utf8_lossy(&resp.body)));
        let kind = json["type"].as_str().unwrap_or_default().to_string();
        Err(ClientError::Api { status: resp.status.as_u16(), kind, message })
    }

    /// GET returning JSON.
    pub async fn get_json(&self, path: &str) -> Result<serde_json::Value, ClientError> {
        Ok(self.call(Method::GET, path, &[], Bytes::new()).await?.json())
    }

    /// A method with a JSON body, returning JSON.
    pub async fn send_json(
        &self,
        method: Method,
        path: &str,
        body: &serde_json::Value,
    ) -> Result<serde_json::Value, ClientError> {
        let bytes = serde_json::to_vec(body).unwrap_or_default();
        Ok(self.call(method, path, &[("content-type", "application/json")], bytes).await?.json())
    }
}

/// A file as a request body, a chunk at a time.
struct FileBody {
    file: tokio::fs::File,
    buf: Box<[u8]>,
}

impl hyper::body::Body for FileBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, std::io::Error>>> {
        use std::task::Poll;
        let this = self.get_mut();
        let mut read = tokio::io::ReadBuf::new(&mut this.buf);
        match tokio::io::AsyncRead::poll_read(std::pin::Pin::new(&mut this.file), cx, &mut read) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Err(e)) => Poll::Ready(Some(Err(e))),
            Poll::Ready(Ok(())) if read.filled().is_empty() => Poll::Ready(None),
            Poll::Ready(Ok(())) => {
                Poll::Ready(Some(Ok(hyper::body::Frame::data(Bytes::copy_from_slice(read.filled())))))
            }
        }
    }
}
