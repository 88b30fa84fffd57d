//! The headers of HTTP/1.1 requests as the client sent them.
//!
//! hyper lower-cases header names (HTTP's names are case-insensitive, and
//! hyper keeps its own record of the original case private), but API Gateway
//! hands them to a proxy integration as the client sent them: `User-Agent`
//! from curl, `user-agent` from a client that writes them so.
//! [`CaseRecorder`] wraps a connection's stream and reads every request head
//! that passes through it (the header lines with `httparse`, as hyper reads
//! them), following the bodies' framing (`Content-Length`, or chunked)
//! to find the next head, and queues each head's request target and headers
//! in arrival order, names as spelled ([`RequestHeaders`]: the gateway's own
//! copy of them, so it need not copy hyper's again). The connection's
//! service takes one entry per request ([`HeaderQueue::pop`]): hyper serves
//! an HTTP/1.1 connection's requests in order, each after its whole head went
//! through the recorder.
//!
//! The record keeps the headers hyper keeps: hyper drops a repeated
//! `Content-Length` line (all must agree), and every `Content-Length` line of
//! a request that also has `Transfer-Encoding`; so does the recorder. Before
//! the gateway uses a record it checks that it is the record of the request
//! hyper handed over ([`RequestHeaders::is_record_of`]: the same request
//! target, as many headers); if not, hyper's headers are used. The property
//! tests (`host/tests/fuzz/header_case.rs`) feed the same bytes to this
//! recorder and to hyper and check that they agree on every request hyper
//! accepts — target, header count, names and values.
//!
//! Anything the recorder cannot follow — HTTP/2's preface, a head it cannot
//! parse, an upgrade — turns it off for the connection; the handler then
//! takes the headers from hyper, names as hyper gives them (for HTTP/2, that
//! is how the client sent them).

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use parking_lot::Mutex;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Most bytes of one request head the recorder buffers (hyper refuses
/// larger heads long before this).
const MAX_HEAD: usize = 1 << 20;
/// Most headers per request it reads (as hyper's default limit).
const MAX_HEADERS: usize = 100;

/// A request's headers in arrival order, all names and values in one
/// string (two allocations per request, however many headers it has).
/// Values that are not UTF-8 are kept lossily. A record of the recorder's
/// also holds the request target, at the start of the same string.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestHeaders {
    text: String,
    /// Where the request target ends in `text` (0: none recorded).
    target: u32,
    /// Per header: where its name starts, where its value starts, where it ends.
    spans: Vec<(u32, u32, u32)>,
}

impl RequestHeaders {
    /// Room for `count` headers of `bytes` bytes in all.
    pub fn with_capacity(count: usize, bytes: usize) -> Self {
        RequestHeaders { text: String::with_capacity(bytes), target: 0, spans: Vec::with_capacity(count) }
    }

    /// A record of the request to `target` (lossily as UTF-8: hyper refuses
    /// a target that is not), with room for `count` headers of `bytes`
    /// bytes in all.
    fn for_target(target: &[u8], count: usize, bytes: usize) -> Self {
        let mut text = String::with_capacity(target.len() + bytes);
        text.push_str(&String::from_utf8_lossy(target));
        let target = text.len() as u32;
        RequestHeaders { text, target, spans: Vec::with_capacity(count) }
    }

    /// The request target as the client sent it (`/items?x=1`, or
    /// `http://host/items` in absolute form), where the recorder recorded
    /// it; empty otherwise.
    pub fn target(&self) -> &str {
        &self.text[..self.target as usize]
    }

    /// Whether this is the record of the request hyper read into `parts`:
    /// the same request target, and as many headers. A cheap check (no
    /// header is looked up) that the recorder followed the connection as
    /// hyper did; the gateway uses the record only when it holds.
    pub fn is_record_of(&self, parts: &hyper::http::request::Parts) -> bool {
        self.len() == parts.headers.len() && !self.target().is_empty() && parts.uri == self.target()
    }

    pub fn push(&mut self, name: &str, value: &str) {
        let start = self.text.len() as u32;
        self.text.push_str(name);
        let value_at = self.text.len() as u32;
        self.text.push_str(value);
        self.spans.push((start, value_at, self.text.len() as u32));
    }

    /// Adds a header whose value is raw bytes: ASCII as it is (nearly every
    /// value; the check costs a fraction of `str::from_utf8` on values this
    /// short), anything else lossily as UTF-8.
    pub fn push_bytes(&mut self, name: &str, value: &[u8]) {
        if value.is_ascii() {
            // SAFETY: ASCII is UTF-8.
            self.push(name, unsafe { std::str::from_utf8_unchecked(value) });
        } else {
            self.push(name, &String::from_utf8_lossy(value));
        }
    }

    /// The first value of a header (names compared case-insensitively).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v)
    }

    /// `(name, value)` pairs, in arrival order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.spans.iter().map(|&(start, value_at, end)| {
            (&self.text[start as usize..value_at as usize], &self.text[value_at as usize..end as usize])
        })
    }

    pub fn len(&self) -> usize {
        self.spans.len()
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }
}

impl<K: AsRef<str>, V: AsRef<str>> FromIterator<(K, V)> for RequestHeaders {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(pairs: I) -> Self {
        let mut headers = RequestHeaders::default();
        for (k, v) in pairs {
            headers.push(k.as_ref(), v.as_ref());
        }
        headers
    }
}

/// One connection's recorded heads, oldest first.
#[derive(Clone, Default)]
pub struct HeaderQueue(Arc<Mutex<VecDeque<RequestHeaders>>>);

impl HeaderQueue {
    /// The headers of the next request the connection serves.
    pub fn pop(&self) -> Option<RequestHeaders> {
        self.0.lock().pop_front()
    }

    fn push(&self, headers: RequestHeaders) {
        self.0.lock().push_back(headers);
    }
}

/// Where the scanner is in the byte stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading a request head.
    Head,
    /// Skipping this many bytes of a `Content-Length` body.
    Body(u64),
    /// Reading a chunk-size line.
    ChunkSize,
    /// Skipping this many bytes of chunk data.
    ChunkData(u64),
    /// Skipping the CRLF after chunk data (bytes left).
    ChunkEnd(u8),
    /// At the start of a trailer line (after the last chunk's size line).
    /// hyper ends trailer lines at CRLF only — a bare LF is part of the
    /// line — and the trailers at an empty line, so the recorder does too:
    /// were a bare LF an end, the bytes hyper takes for trailers would be
    /// read as the next request's head, and its record given to the request
    /// after (`trailer_lines_end_at_crlf_only` below).
    Trailers,
    /// Saw the CR of the empty line that ends the trailers.
    TrailersEnd,
    /// Inside a trailer line, up to its CR.
    TrailerLine,
    /// Saw a trailer line's CR.
    TrailerLineEnd,
    /// Not following this connection any more.
    Off,
}

/// Follows the requests in a stream of bytes.
struct Scanner {
    state: State,
    /// The head (or chunk-size line) read so far.
    pending: Vec<u8>,
}

impl Scanner {
    fn new() -> Self {
        Scanner { state: State::Head, pending: Vec::new() }
    }

    /// Consumes bytes as they are read, queueing every complete head.
    fn feed(&mut self, mut bytes: &[u8], queue: &HeaderQueue) {
        while !bytes.is_empty() {
            match self.state {
                State::Off => return,
                State::Head => {
                    // Usually the whole head comes in one read and is parsed
                    // where it is; a head split across reads is gathered first.
                    let from = self.pending.len();
                    if from > 0 {
                        self.pending.extend_from_slice(bytes);
                    }
                    let head = if from > 0 { self.pending.as_slice() } else { bytes };
                    match parse_head(head, queue) {
                        Head::Complete(len, next) => {
                            // What followed the head, in this read.
                            bytes = &bytes[len.saturating_sub(from).min(bytes.len())..];
                            self.pending.clear();
                            self.state = next;
                        }
                        Head::Partial if head.len() <= MAX_HEAD => {
                            if from == 0 {
                                self.pending.extend_from_slice(bytes);
                            }
                            return;
                        }
                        Head::Partial | Head::Unreadable => {
                            self.state = State::Off;
                            return;
                        }
                    }
                }
                State::Body(left) => {
                    let n = left.min(bytes.len() as u64);
                    bytes = &bytes[n as usize..];
                    self.state = if left == n { State::Head } else { State::Body(left - n) };
                }
                State::ChunkSize => {
                    let Some(end) = bytes.iter().position(|&b| b == b'\n') else {
                        self.pending.extend_from_slice(bytes);
                        if self.pending.len() > MAX_HEAD {
                            self.state = State::Off;
                        }
                        return;
                    };
                    self.pending.extend_from_slice(&bytes[..end]);
                    bytes = &bytes[end + 1..];
                    let line = std::mem::take(&mut self.pending);
                    let line = line.strip_suffix(b"\r").unwrap_or(&line);
                    let size = line.split(|&b| b == b';').next().unwrap_or_default();
                    self.state =
                        match std::str::from_utf8(size).ok().and_then(|s| u64::from_str_radix(s.trim(), 16).ok()) {
                            Some(0) => State::Trailers,
                            Some(n) => State::ChunkData(n),
                            None => State::Off,
                        };
                }
                State::Trailers => {
                    self.state = if bytes[0] == b'\r' { State::TrailersEnd } else { State::TrailerLine };
                    bytes = &bytes[1..];
                }
                State::TrailerLine => match bytes.iter().position(|&b| b == b'\r') {
                    Some(cr) => {
                        bytes = &bytes[cr + 1..];
                        self.state = State::TrailerLineEnd;
                    }
                    None => return,
                },
                // hyper takes nothing but LF after these CRs (and closes
                // the connection on anything else).
                State::TrailersEnd | State::TrailerLineEnd => {
                    self.state = match (self.state, bytes[0]) {
                        (State::TrailersEnd, b'\n') => State::Head,
                        (_, b'\n') => State::Trailers,
                        _ => State::Off,
                    };
                    bytes = &bytes[1..];
                }
                State::ChunkData(left) => {
                    let n = left.min(bytes.len() as u64);
                    bytes = &bytes[n as usize..];
                    self.state = if left == n { State::ChunkEnd(2) } else { State::ChunkData(left - n) };
                }
                State::ChunkEnd(left) => {
                    let n = (left as usize).min(bytes.len());
                    bytes = &bytes[n..];
                    self.state = if n == left as usize { State::ChunkSize } else { State::ChunkEnd(left - n as u8) };
                }
            }
        }
    }
}

/// What [`parse_head`] found.
enum Head {
    /// A whole head of this many bytes; the state after it.
    Complete(usize, State),
    /// Not all of it yet.
    Partial,
    /// Not an HTTP/1.1 head the recorder can follow (or HTTP/2's preface).
    Unreadable,
}

/// Headers most requests stay within: the recorder's first try reads this
/// many (a larger head is read again with room for [`MAX_HEADERS`]).
const USUAL_HEADERS: usize = 16;

/// Parses a request head at the start of `buf`; when it is whole, queues
/// its target and headers and says how its body is framed.
///
/// Only the header lines are parsed (as hyper parses them: `httparse`,
/// default settings, at most [`MAX_HEADERS`]): hyper reads and checks the
/// request line, and refuses the request if it is not one — a second parse
/// of it here cost ~230 instructions per request. Of the request line the
/// recorder takes the target: between its first space and its last, as in
/// every line hyper accepts (`GET /items HTTP/1.1`, single spaces).
fn parse_head(buf: &[u8], queue: &HeaderQueue) -> Head {
    // Blank lines between requests are allowed (RFC 9112 §2.2).
    let skip = buf.iter().take_while(|&&b| b == b'\r' || b == b'\n').count();
    let buf = &buf[skip..];
    if buf.starts_with(b"PRI * HTTP/2.0") {
        return Head::Unreadable;
    }
    let Some(line_end) = buf.iter().position(|&b| b == b'\n') else {
        return Head::Partial;
    };
    let line = &buf[..line_end];
    let target = match (line.iter().position(|&b| b == b' '), line.iter().rposition(|&b| b == b' ')) {
        (Some(first), Some(last)) if first < last => &line[first + 1..last],
        _ => return Head::Unreadable,
    };
    let lines = &buf[line_end + 1..];
    let mut usual = [httparse::EMPTY_HEADER; USUAL_HEADERS];
    let mut many = Vec::new();
    let parsed = match httparse::parse_headers(lines, &mut usual) {
        Err(httparse::Error::TooManyHeaders) => {
            many.resize(MAX_HEADERS, httparse::EMPTY_HEADER);
            httparse::parse_headers(lines, &mut many)
        }
        other => other,
    };
    let (len, found) = match parsed {
        Ok(httparse::Status::Complete((len, found))) => (skip + line_end + 1 + len, found),
        Ok(httparse::Status::Partial) => return Head::Partial,
        Err(_) => return Head::Unreadable,
    };
    let mut chunked = false;
    let mut encoded = false;
    let mut length = None;
    let mut upgrade = false;
    for h in found {
        if h.name.eq_ignore_ascii_case("transfer-encoding") {
            encoded = true;
            chunked = h.value.trim_ascii().to_ascii_lowercase().ends_with(b"chunked");
        } else if h.name.eq_ignore_ascii_case("content-length") {
            // hyper refuses a request whose lengths differ: the first will do.
            if length.is_none() {
                length = Some(std::str::from_utf8(h.value).ok().and_then(|v| v.trim().parse().ok()).unwrap_or(0u64));
            }
        } else if h.name.eq_ignore_ascii_case("upgrade") {
            upgrade = true;
        }
    }
    // The headers hyper keeps: one `Content-Length` line (the first), none
    // beside a `Transfer-Encoding`.
    let mut length_kept = encoded;
    let mut kept = |h: &httparse::Header<'_>| {
        if !h.name.eq_ignore_ascii_case("content-length") {
            return true;
        }
        !std::mem::replace(&mut length_kept, true)
    };
    let bytes = found.iter().map(|h| h.name.len() + h.value.len()).sum();
    let mut headers = RequestHeaders::for_target(target, found.len(), bytes);
    for h in found {
        if kept(h) {
            headers.push_bytes(h.name, h.value);
        }
    }
    queue.push(headers);
    let next = match () {
        _ if upgrade => State::Off,
        _ if chunked => State::ChunkSize,
        _ => match length {
            Some(length) if length > 0 => State::Body(length),
            _ => State::Head,
        },
    };
    Head::Complete(len, next)
}

/// A connection's stream that records request heads on their way to hyper.
pub struct CaseRecorder<S> {
    inner: S,
    scanner: Scanner,
    queue: HeaderQueue,
}

impl<S> CaseRecorder<S> {
    /// Wraps `inner`; the recorded headers come out of the returned queue.
    /// When not `enabled` the bytes pass through unread.
    pub fn new(inner: S, enabled: bool) -> (Self, HeaderQueue) {
        let queue = HeaderQueue::default();
        let mut scanner = Scanner::new();
        if !enabled {
            scanner.state = State::Off;
        }
        (CaseRecorder { inner, scanner, queue: queue.clone() }, queue)
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for CaseRecorder<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        ready!(Pin::new(&mut self.inner).poll_read(cx, buf))?;
        let me = &mut *self;
        me.scanner.feed(&buf.filled()[before..], &me.queue);
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for CaseRecorder<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(queue: &HeaderQueue) -> Vec<Vec<String>> {
        std::iter::from_fn(|| queue.pop()).map(|h| h.iter().map(|(name, _)| name.to_string()).collect()).collect()
    }

    fn scan(pieces: &[&[u8]]) -> (Vec<Vec<String>>, State) {
        let queue = HeaderQueue::default();
        let mut scanner = Scanner::new();
        for p in pieces {
            scanner.feed(p, &queue);
        }
        (names(&queue), scanner.state)
    }

    #[test]
    fn records_heads_across_bodies_and_reads() {
        let stream: &[u8] = b"GET /a HTTP/1.1\r\nHost: x\r\nuser-agent: t\r\n\r\n\
            POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 19\r\nX-Mixed-Case: 1\r\n\r\nGET /c HTTP/1.1\r\n\r\n\
            POST /d HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nGET /\r\n0\r\nTrailer-X: 1\r\n\r\n\
            \r\nGET /e HTTP/1.1\r\nACCEPT: */*\r\n\r\n";
        let want = vec![
            vec!["Host".to_string(), "user-agent".into()],
            vec!["Host".into(), "Content-Length".into(), "X-Mixed-Case".into()],
            vec!["Transfer-Encoding".into()],
            vec!["ACCEPT".into()],
        ];
        // Whole, and byte by byte.
        assert_eq!(scan(&[stream]), (want.clone(), State::Head));
        let bytes: Vec<&[u8]> = stream.chunks(1).collect();
        assert_eq!(scan(&bytes), (want, State::Head));
    }

    #[test]
    fn turns_off_for_http2_and_garbage() {
        assert_eq!(scan(&[b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"]), (vec![], State::Off));
        assert_eq!(scan(&[b"GET / HTTP/1.1\r\nBad Header\r\n\r\n"]).1, State::Off);
        let (got, state) = scan(&[b"GET / HTTP/1.1\r\nUpgrade: websocket\r\n\r\nbinary"]);
        assert_eq!((got.len(), state), (1, State::Off));
    }

    /// Past the usual number of headers the head is read again with room
    /// for all that hyper accepts; past those the recorder stops.
    #[test]
    fn reads_heads_with_many_headers() {
        let head = |count: usize| {
            let lines: String = (0..count).map(|i| format!("X-Header-{i}: {i}\r\n")).collect();
            format!("GET / HTTP/1.1\r\n{lines}\r\nGET /next HTTP/1.1\r\nHost: h\r\n\r\n")
        };
        let many = head(USUAL_HEADERS * 3);
        let want: Vec<String> = (0..USUAL_HEADERS * 3).map(|i| format!("X-Header-{i}")).collect();
        assert_eq!(scan(&[many.as_bytes()]), (vec![want, vec!["Host".to_string()]], State::Head));
        assert_eq!(scan(&[head(MAX_HEADERS + 1).as_bytes()]), (vec![], State::Off));
    }

    /// Each record holds its request's target, and the headers hyper keeps:
    /// one `Content-Length` line, none beside `Transfer-Encoding`.
    #[test]
    fn records_targets_and_the_headers_hyper_keeps() {
        let queue = HeaderQueue::default();
        let mut scanner = Scanner::new();
        scanner.feed(
            b"GET /a?b=1#f HTTP/1.1\r\nHost: h\r\n\r\n\
            POST http://H/x HTTP/1.1\r\nContent-Length: 1\r\nX: 1\r\ncontent-length: 01\r\n\r\nb\
            POST /c HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n\
            OPTIONS * HTTP/1.1\r\ncontent-length: 0\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n",
            &queue,
        );
        let records: Vec<(String, Vec<(String, String)>)> = std::iter::from_fn(|| queue.pop())
            .map(|h| (h.target().to_string(), h.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()))
            .collect();
        let pairs = |p: &[(&str, &str)]| p.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<Vec<_>>();
        assert_eq!(
            records,
            [
                ("/a?b=1#f".to_string(), pairs(&[("Host", "h")])),
                ("http://H/x".to_string(), pairs(&[("Content-Length", "1"), ("X", "1")])),
                ("/c".to_string(), pairs(&[("Transfer-Encoding", "chunked")])),
                ("*".to_string(), pairs(&[("Transfer-Encoding", "chunked")])),
            ]
        );
        assert_eq!(scanner.state, State::Head);
    }

    /// A record is used for the request hyper read only when it has that
    /// request's target and as many headers.
    #[test]
    fn a_record_is_of_the_request_with_its_target_and_header_count() {
        let queue = HeaderQueue::default();
        Scanner::new().feed(b"GET /a?b=1#f HTTP/1.1\r\nHost: h\r\nX-A: 1\r\n\r\n", &queue);
        let record = queue.pop().expect("a record");
        let parts = |uri: &str, headers: &[&str]| {
            let mut req = hyper::Request::builder().uri(uri);
            for h in headers {
                req = req.header(*h, "1");
            }
            req.body(()).expect("a request").into_parts().0
        };
        assert!(record.is_record_of(&parts("/a?b=1", &["host", "x-a"])));
        assert!(!record.is_record_of(&parts("/a?b=2", &["host", "x-a"])), "another target");
        assert!(!record.is_record_of(&parts("/a", &["host", "x-a"])), "another target");
        assert!(!record.is_record_of(&parts("/a?b=1", &["host"])), "another count");
        let unrecorded: RequestHeaders = [("Host", "h"), ("X-A", "1")].into_iter().collect();
        assert!(!unrecorded.is_record_of(&parts("/a?b=1", &["host", "x-a"])), "no target recorded");
        let queue = HeaderQueue::default();
        Scanner::new().feed(b"GET HTTP://Example.com:80?q HTTP/1.1\r\n\r\n", &queue);
        assert!(queue.pop().expect("a record").is_record_of(&parts("http://example.com:80/?q", &[])));
    }

    /// hyper ends trailer lines at CRLF only: after a bare LF (ending a
    /// trailer line, or as the whole line) what follows is still trailer to
    /// hyper, up to the next empty CRLF line. Read as a head, it would be
    /// queued, and its record taken for the request after — with the same
    /// target and header count, the gateway would have used its headers
    /// (`Host: evil`) for that request (`Host: good`).
    #[test]
    fn trailer_lines_end_at_crlf_only() {
        let stream: &[u8] = b"POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: 1\n\r\n\
            GET /next HTTP/1.1\r\nHost: evil\r\n\r\n\
            POST /b HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\nGET /next HTTP/1.1\r\nHost: evil\r\n\r\n\
            GET /next HTTP/1.1\r\nHost: good\r\n\r\n";
        let records = |pieces: &[&[u8]]| {
            let queue = HeaderQueue::default();
            let mut scanner = Scanner::new();
            for p in pieces {
                scanner.feed(p, &queue);
            }
            let records: Vec<(String, Vec<String>)> = std::iter::from_fn(|| queue.pop())
                .map(|h| (h.target().to_string(), h.iter().map(|(k, v)| format!("{k}: {v}")).collect()))
                .collect();
            (records, scanner.state)
        };
        let want = vec![
            ("/a".to_string(), vec!["Transfer-Encoding: chunked".to_string()]),
            ("/b".to_string(), vec!["Transfer-Encoding: chunked".to_string()]),
            ("/next".to_string(), vec!["Host: good".to_string()]),
        ];
        assert_eq!(records(&[stream]), (want.clone(), State::Head));
        let bytes: Vec<&[u8]> = stream.chunks(1).collect();
        assert_eq!(records(&bytes), (want, State::Head));
        // A CR in a trailer line that no LF follows: hyper gives up, so does the recorder.
        let (_, state) = records(&[b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: 1\rY\r\n\r\n"]);
        assert_eq!(state, State::Off);
    }

    #[test]
    fn keeps_values_in_arrival_order() {
        let queue = HeaderQueue::default();
        let mut scanner = Scanner::new();
        scanner.feed(b"GET / HTTP/1.1\r\nX-A: 1\r\nHost: h\r\nx-a:  2 \r\nX-Bin: caf\xc3\xa9 \xff\r\n\r\n", &queue);
        let headers = queue.pop().expect("one head");
        let got: Vec<(&str, &str)> = headers.iter().collect();
        assert_eq!(got, [("X-A", "1"), ("Host", "h"), ("x-a", "2"), ("X-Bin", "caf\u{e9} \u{fffd}")]);
    }
}
