//! Outbound HTTP from functions: `wasi:http/outgoing-handler`, implemented
//! with `wasmtime-wasi-http`, under wasmgate's rules.
//!
//! - **Deny by default.** A function reaches only what its
//!   `allowed_outbound_hosts` lists, in Spin's spelling
//!   ([`AllowedHosts`]): `https://api.example.com`, `http://127.0.0.1:*`,
//!   `https://*.example.com`, `*://example.com:8080`. A request elsewhere
//!   fails in the guest with `HTTP-request-denied` and leaves a line in the
//!   invocation's log saying which setting to change.
//! - **Bounded.** A request waits for one of the function's outbound slots
//!   ([`OutboundOptions::max_concurrency`], shared by all its instances);
//!   a response body larger than [`OutboundOptions::max_response_bytes`]
//!   ends in an error; and the invocation's deadline covers it all — a call
//!   cut off at its deadline drops its instance, and with it the request.
//! - **Pooled.** Connections are kept alive and reused across invocations
//!   and instances (one hyper client for the runtime, HTTP/1.1 and TLS with
//!   the webpki roots).

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, SizeHint};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks};

use super::logs::LogPipe;

/// Server-wide limits on outbound requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutboundOptions {
    /// Most outbound requests of one function in flight at once (its
    /// instances share them); more wait for a slot, within their deadline.
    pub max_concurrency: u32,
    /// Largest response body a function may receive.
    pub max_response_bytes: u64,
}

impl Default for OutboundOptions {
    fn default() -> Self {
        OutboundOptions { max_concurrency: 16, max_response_bytes: 10 << 20 }
    }
}

/// One entry of `allowed_outbound_hosts`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct AllowedHost {
    /// `None`: any scheme (`*://`).
    scheme: Option<String>,
    host: HostPattern,
    port: PortPattern,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostPattern {
    Any,
    Exact(String),
    /// `*.example.com`: any subdomain (not `example.com` itself).
    Subdomains(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum PortPattern {
    /// The scheme's own port (80, 443) when none is written.
    Default,
    Any,
    Range(u16, u16),
}

/// The hosts a function may reach, parsed from its `allowed_outbound_hosts`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowedHosts(Vec<AllowedHost>);

impl AllowedHosts {
    /// Parses the entries, naming the first that is wrong and why.
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<AllowedHosts, String> {
        entries.iter().map(|e| parse_entry(e.as_ref())).collect::<Result<_, _>>().map(AllowedHosts)
    }

    /// Whether a request to `uri` is allowed.
    pub fn allows(&self, uri: &hyper::Uri) -> bool {
        let Some(scheme) = uri.scheme_str() else { return false };
        let Some(host) = uri.host() else { return false };
        let host = host.trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase();
        let port = uri.port_u16().or(match scheme {
            "http" => Some(80),
            "https" => Some(443),
            _ => None,
        });
        self.0.iter().any(|a| {
            a.scheme.as_deref().is_none_or(|s| s == scheme)
                && match &a.host {
                    HostPattern::Any => true,
                    HostPattern::Exact(h) => *h == host,
                    HostPattern::Subdomains(suffix) => {
                        host.len() > suffix.len() + 1
                            && host.ends_with(suffix.as_str())
                            && host.as_bytes()[host.len() - suffix.len() - 1] == b'.'
                    }
                }
                && match a.port {
                    PortPattern::Any => true,
                    PortPattern::Default => {
                        port == Some(match scheme {
                            "https" => 443,
                            _ => 80,
                        })
                    }
                    PortPattern::Range(lo, hi) => port.is_some_and(|p| (lo..=hi).contains(&p)),
                }
        })
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

fn parse_entry(entry: &str) -> Result<AllowedHost, String> {
    let bad = |why: &str| {
        Err(format!(
            "allowed_outbound_hosts: {entry:?} {why} (write SCHEME://HOST[:PORT], e.g. \"https://api.example.com\", \
             \"http://127.0.0.1:*\", \"https://*.example.com\")"
        ))
    };
    let Some((scheme, rest)) = entry.split_once("://") else { return bad("has no scheme") };
    let scheme = match scheme {
        "*" => None,
        "http" | "https" => Some(scheme.to_string()),
        _ => return bad("has a scheme other than http, https or *"),
    };
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.contains(['/', '?', '#', '@']) {
        return bad("has a path, query or user: only a scheme, a host and a port are allowed");
    }
    // An IPv6 literal is bracketed: `[::1]:8080`.
    let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
        match v6.split_once(']') {
            Some((h, p)) => (h.to_string(), p.strip_prefix(':')),
            None => return bad("has an unclosed '['"),
        }
    } else {
        match rest.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), Some(p)),
            None => (rest.to_string(), None),
        }
    };
    let host = host.to_ascii_lowercase();
    let host = if host == "*" {
        HostPattern::Any
    } else if let Some(suffix) = host.strip_prefix("*.") {
        if suffix.is_empty() || suffix.contains('*') {
            return bad("has a wildcard other than a leading `*.`");
        }
        HostPattern::Subdomains(suffix.to_string())
    } else if host.is_empty() || host.contains('*') {
        return bad("has no host, or a wildcard other than `*` or a leading `*.`");
    } else {
        HostPattern::Exact(host)
    };
    let port = match port {
        None => {
            if scheme.is_none() {
                return bad("needs a port with the scheme `*` (e.g. `*://example.com:*`)");
            }
            PortPattern::Default
        }
        Some("*") => PortPattern::Any,
        Some(p) => {
            let number = |s: &str| s.parse::<u16>().ok();
            match p.split_once("..") {
                Some((lo, hi)) => match (number(lo), number(hi)) {
                    (Some(lo), Some(hi)) if lo <= hi => PortPattern::Range(lo, hi),
                    _ => return bad("has a port range that is not LOW..HIGH"),
                },
                None => match number(p) {
                    Some(n) => PortPattern::Range(n, n),
                    None => return bad("has a port that is not a number, `*` or LOW..HIGH"),
                },
            }
        }
    };
    Ok(AllowedHost { scheme, host, port })
}

type HttpsConnector = hyper_rustls::HttpsConnector<HttpConnector>;

/// The runtime's outbound side: its pooled client and each function's slots.
pub(crate) struct Outbound {
    client: Client<HttpsConnector, WasiBody>,
    options: OutboundOptions,
    slots: parking_lot::Mutex<HashMap<String, Arc<Semaphore>>>,
}

impl Outbound {
    pub(crate) fn new(options: OutboundOptions) -> Outbound {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_webpki_roots()
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new()).pool_idle_timeout(Duration::from_secs(90)).build(connector);
        Outbound { client, options, slots: parking_lot::Mutex::new(HashMap::new()) }
    }

    /// The hooks of one instance of `function`.
    pub(crate) fn hooks(self: &Arc<Self>, function: &str, allowed: Arc<AllowedHosts>, logs: LogPipe) -> OutboundHooks {
        let slots = self
            .slots
            .lock()
            .entry(function.to_string())
            .or_insert_with(|| Arc::new(Semaphore::new(self.options.max_concurrency as usize)))
            .clone();
        OutboundHooks { outbound: self.clone(), function: function.into(), allowed, slots, logs }
    }
}

/// `wasi:http`'s hooks for one instance: the allow-list, the function's
/// slots, the shared client.
pub(crate) struct OutboundHooks {
    outbound: Arc<Outbound>,
    function: Arc<str>,
    allowed: Arc<AllowedHosts>,
    slots: Arc<Semaphore>,
    logs: LogPipe,
}

type SendFuture = Box<
    dyn Future<
            Output = Result<
                (hyper::Response<WasiBody>, Box<dyn Future<Output = Result<(), HttpError>> + Send>),
                HttpError,
            >,
        > + Send,
>;

impl WasiHttpHooks for OutboundHooks {
    fn send_request(
        &mut self,
        request: hyper::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ) -> SendFuture {
        let uri = request.uri().clone();
        let origin =
            format!("{}://{}", uri.scheme_str().unwrap_or("?"), uri.authority().map(|a| a.as_str()).unwrap_or("?"));
        if !self.allowed.allows(&uri) {
            self.logs.line(&format!(
                "wasmgate: outbound request to {origin} denied: {origin} is not in {}'s allowed_outbound_hosts",
                self.function
            ));
            tracing::warn!(function = %self.function, %origin, "outbound request denied: not in allowed_outbound_hosts");
            // The body the guest streams is taken (and dropped) before the
            // answer: a guest still writing it then sees the denial itself,
            // not a broken body stream.
            return Box::new(async move {
                let mut body = request.into_body();
                while let Some(Ok(_)) = body.frame().await {}
                Err(HttpError::HttpRequestDenied)
            });
        }
        let client = self.outbound.client.clone();
        let slots = self.slots.clone();
        let max = self.outbound.options.max_response_bytes;
        let too_large = TooLarge { logs: self.logs.clone(), origin, max };
        Box::new(async move {
            let permit = slots.acquire_owned().await.map_err(|_| HttpError::ConnectionLimitReached)?;
            let head_timeout = match options.as_ref().map(|o| (o.connect_timeout, o.first_byte_timeout)) {
                Some((Some(c), Some(f))) => Some(c + f),
                Some((c, f)) => c.or(f),
                None => None,
            };
            let between_bytes = options.and_then(|o| o.between_bytes_timeout);
            let send = client.request(request);
            let response = match head_timeout {
                Some(t) => tokio::time::timeout(t, send).await.map_err(|_| HttpError::ConnectionTimeout)?,
                None => send.await,
            }
            .map_err(client_error)?;
            if let Some(length) = response.body().size_hint().exact()
                && length > max
            {
                return Err(too_large.error(Some(length)));
            }
            let response = response.map(|body| {
                LimitedBody { body, left: max, too_large, between_bytes, timer: None, _permit: permit }.boxed_unsync()
            });
            let io: Box<dyn Future<Output = Result<(), HttpError>> + Send> = Box::new(async { Ok(()) });
            Ok((response, io))
        })
    }
}

fn client_error(e: hyper_util::client::legacy::Error) -> HttpError {
    use std::error::Error as _;
    if e.is_connect() {
        let mut source = e.source();
        while let Some(s) = source {
            if let Some(io) = s.downcast_ref::<std::io::Error>() {
                return match io.kind() {
                    std::io::ErrorKind::ConnectionRefused => HttpError::ConnectionRefused,
                    std::io::ErrorKind::TimedOut => HttpError::ConnectionTimeout,
                    _ => HttpError::DestinationUnavailable,
                };
            }
            source = s.source();
        }
        let text = format!("{e:#}");
        return if text.contains("dns") { HttpError::DestinationNotFound } else { HttpError::DestinationUnavailable };
    }
    let mut source = e.source();
    while let Some(s) = source {
        if let Some(h) = s.downcast_ref::<hyper::Error>() {
            return if h.is_incomplete_message() {
                HttpError::HttpResponseIncomplete
            } else {
                HttpError::HttpProtocolError
            };
        }
        source = s.source();
    }
    HttpError::InternalError(Some(e.to_string()))
}

/// A response over the size limit: the error the guest gets, and the line
/// its log gets.
struct TooLarge {
    logs: LogPipe,
    origin: String,
    max: u64,
}

impl TooLarge {
    fn error(&self, length: Option<u64>) -> HttpError {
        let size = length.map_or_else(|| "more".to_string(), |n| format!("{n} bytes"));
        self.logs.line(&format!(
            "wasmgate: outbound response from {} refused: {size} is over the server's max_outbound_response_mb = {}",
            self.origin,
            self.max >> 20
        ));
        HttpError::HttpResponseBodySize(length)
    }
}

/// A response body that ends in an error once it has delivered more than
/// the limit, or when it pauses longer than the guest's between-bytes
/// timeout; it holds the function's outbound slot until it is done.
struct LimitedBody {
    body: hyper::body::Incoming,
    left: u64,
    too_large: TooLarge,
    between_bytes: Option<Duration>,
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
    _permit: OwnedSemaphorePermit,
}

impl Body for LimitedBody {
    type Data = Bytes;
    type Error = HttpError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, HttpError>>> {
        let this = &mut *self;
        match Pin::new(&mut this.body).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                this.timer = None;
                if let Some(data) = frame.data_ref() {
                    let n = data.len() as u64;
                    if n > this.left {
                        this.left = 0;
                        return Poll::Ready(Some(Err(this.too_large.error(None))));
                    }
                    this.left -= n;
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(HttpError::from(e)))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => {
                if let Some(limit) = this.between_bytes {
                    let timer = this.timer.get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
                    if timer.as_mut().poll(cx).is_ready() {
                        return Poll::Ready(Some(Err(HttpError::ConnectionReadTimeout)));
                    }
                }
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allows(entries: &[&str], url: &str) -> bool {
        AllowedHosts::parse(entries).unwrap().allows(&url.parse().unwrap())
    }

    #[test]
    fn hosts_are_matched_as_spin_spells_them() {
        assert!(allows(&["https://api.example.com"], "https://api.example.com/items"));
        assert!(allows(&["https://api.example.com"], "https://API.example.com:443/"));
        assert!(!allows(&["https://api.example.com"], "http://api.example.com/"));
        assert!(!allows(&["https://api.example.com"], "https://api.example.com:8443/"));
        assert!(!allows(&["https://api.example.com"], "https://evil.com/?api.example.com"));
        assert!(allows(&["http://127.0.0.1:*"], "http://127.0.0.1:41234/x"));
        assert!(!allows(&["http://127.0.0.1:*"], "http://localhost:41234/x"));
        assert!(allows(&["https://*.example.com"], "https://a.b.example.com/"));
        assert!(!allows(&["https://*.example.com"], "https://example.com/"));
        assert!(!allows(&["https://*.example.com"], "https://badexample.com/"));
        assert!(allows(&["*://example.com:8000..8010"], "http://example.com:8005/"));
        assert!(!allows(&["*://example.com:8000..8010"], "https://example.com:8011/"));
        assert!(allows(&["http://[::1]:8080"], "http://[::1]:8080/"));
        assert!(allows(&["*://*:*"], "http://anything:1/"));
        assert!(!allows(&[], "http://127.0.0.1/"));
    }

    #[test]
    fn a_bad_entry_is_named_with_the_reason() {
        for (entry, why) in [
            ("api.example.com", "has no scheme"),
            ("ftp://x.com", "scheme other than"),
            ("https://x.com/path", "has a path"),
            ("https://x.*.com", "wildcard"),
            ("http://x.com:http", "not a number"),
            ("http://x.com:9..1", "LOW..HIGH"),
            ("*://x.com", "needs a port"),
        ] {
            let err = AllowedHosts::parse(&[entry]).unwrap_err();
            assert!(err.contains(entry) && err.contains(why), "{entry}: {err}");
        }
    }
}
