//! The HTTP/1.1 header recorder (`http/header_case.rs`) against hyper.
//!
//! Each case is one connection: a few pipelined requests, valid and
//! slightly malformed (odd whitespace and line ends, obs-fold, bad bytes,
//! many headers, mixed case, absolute-form and `*` targets, bodies by
//! `Content-Length` or chunked with extensions and trailers, conflicting
//! framing), sometimes with a few bytes flipped, inserted or deleted, and
//! delivered in pieces cut at random. The bytes go through the recorder to
//! a real hyper server connection, built as the listener builds it
//! (`hyper_util`'s auto builder, same HTTP/1 settings), over an in-memory
//! stream; the service takes one record per request, as the listener's does.
//!
//! Properties, for every request hyper accepts:
//!
//! * when it has a record, the record is of this request
//!   (`RequestHeaders::is_record_of`, the gateway's own check: the same
//!   target, as many headers), and agrees with hyper fully: the same
//!   header names (case-insensitively; hyper lower-cases them) with the
//!   same values in the same order;
//! * it has no record only when the recorder stopped following the
//!   connection (an `Upgrade`, or bytes hyper also refused).
//!
//! And nothing panics, whatever the bytes.

use std::convert::Infallible;
use std::fmt::Debug;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll, Wake, Waker};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use parking_lot::Mutex;
use proptest::prelude::*;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use wasmgate_host::http::header_case::{CaseRecorder, RequestHeaders};

use crate::{Target, fuzz};

// ---- the requests ----

const METHODS: &[&str] =
    &["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "TRACE", "M-SEARCH", "get", "PURGE"];
const ODD_METHODS: &[&str] = &["CONNECT", "GE(T", "", "PRI"];
const SEGMENTS: &[&str] =
    &["a", "items", "%2F", "\u{e4}", "x.y", "~u", "{id}", "..", "", "a;b", "!$&'()*+,=:@", "%zz", "7"];
const QUERIES: &[&str] = &["a=1", "a=1&b=2", "", "x=%20", "a=\u{e4}", "q=a?b", "a=1&a=2", "=", "&&"];
const ODD_TARGETS: &[&[u8]] = &[b"", b"/a b", b"/\xff", b"//", b"a", b"/\x7f", b"/\"<>"];
/// Hosts; the last few are refused.
const HOSTS: &[&str] =
    &["example.com", "Example.COM", "127.0.0.1", "[::1]", "user@host", "h:8080", "a_b.c", "h:99999", "h:"];
const VALID_HOSTS: usize = 7;
const SCHEMES: &[&str] = &["http", "HTTP", "https", "ftp", "h2c"];
const ODD_VERSIONS: &[&str] = &["HTTP/1.2", "HTTP/2.0", "http/1.1", "HTTP/1.1 "];
const NAMES: &[&str] = &[
    "Host",
    "host",
    "HOST",
    "User-Agent",
    "user-agent",
    "X-Custom-Header",
    "x-CUSTOM-header",
    "Accept",
    "Content-Type",
    "X-Forwarded-For",
    "Cookie",
    "Set-Cookie",
    "X-Amz-Date",
    "Authorization",
    "TE",
    "Trailer",
    "Cache-Control",
    "!#$%&'*+-.^_`|~",
    "X_Under",
    "Expect",
    "Keep-Alive",
    "Proxy-Connection",
];
const ODD_NAMES: &[&str] = &["Bad Name", "", "\u{dc}ml", "X:Y", "X\t"];
const VALUES: &[&[u8]] = &[
    b"",
    b"x",
    b"text/html; q=0.9",
    b" spaced ",
    b"a,b",
    b"caf\xc3\xa9",
    b"\xff\xfe",
    b"\"quoted\"",
    b"1",
    b"*/*",
    b"100-continue",
    b"close",
    b"keep-alive",
    b"websocket",
    b"chunked",
    b"5",
    b"\t tabbed\t",
];
const ODD_VALUES: &[&[u8]] = &[b"a\rb", b"nul\0", b"del\x7f", b"ctl\x01", b"\r", b"a\x0bb"];

#[derive(Debug, Clone)]
struct Header {
    name: String,
    /// What follows the name: the colon and whitespace (or something odd).
    sep: &'static str,
    value: Vec<u8>,
    /// An obs-fold continuation line.
    fold: Option<&'static str>,
    eol: &'static str,
}

#[derive(Debug, Clone)]
struct Chunk {
    data: Vec<u8>,
    /// How the size is spelled: 0 lower-case hex, 1 upper-case, 2 leading zeros.
    spelling: u8,
    ext: &'static str,
    eol: &'static str,
}

#[derive(Debug, Clone)]
enum Body {
    None,
    /// `Content-Length`, spelled `spelling` (0 plain, 1 leading zeros, 2 `+N`, 3 wrong), with its data.
    Length {
        data: Vec<u8>,
        spelling: u8,
        twice: Option<bool>,
    },
    Chunked {
        te: &'static str,
        chunks: Vec<Chunk>,
        last_ext: &'static str,
        trailers: Vec<(String, &'static str)>,
        also_length: bool,
    },
}

#[derive(Debug, Clone)]
struct Req {
    lead: &'static str,
    method: &'static str,
    sp1: &'static str,
    target: Vec<u8>,
    sp2: &'static str,
    version: &'static str,
    eol: &'static str,
    headers: Vec<Header>,
    /// Where among the headers the framing headers go, and how they are spelled.
    framing_at: usize,
    framing_case: u8,
    body: Body,
    end_eol: &'static str,
}

#[derive(Debug, Clone)]
enum Edit {
    Flip(usize, u8),
    Insert(usize, u8),
    Delete(usize),
}

#[derive(Debug, Clone)]
struct Conn {
    reqs: Vec<Req>,
    edits: Vec<Edit>,
    /// Where the stream is cut into reads.
    cuts: Vec<usize>,
    /// Whether the service reads the request bodies (else hyper drains or
    /// closes, as when the gateway refuses a request before its body).
    read_bodies: bool,
}

/// `clean`, or in an odd request now and then one of `oddities`.
fn or_odd<T: Clone + Debug + 'static>(
    odd: bool,
    clean: BoxedStrategy<T>,
    oddities: BoxedStrategy<T>,
) -> BoxedStrategy<T> {
    if odd { prop_oneof![6 => clean, 1 => oddities].boxed() } else { clean }
}

fn eol(odd: bool) -> BoxedStrategy<&'static str> {
    let clean = prop_oneof![10 => Just("\r\n"), 1 => Just("\n")].boxed();
    or_odd(odd, clean, prop::sample::select(&["\r", "\r\r\n", "\n\r"][..]).boxed())
}

fn target(odd: bool) -> BoxedStrategy<Vec<u8>> {
    let path = prop::collection::vec(prop::sample::select(SEGMENTS), 0..5).prop_map(|s| format!("/{}", s.join("/")));
    let query = prop_oneof![3 => Just(String::new()), 2 => prop::sample::select(QUERIES).prop_map(|q| format!("?{q}"))];
    let fragment = prop_oneof![8 => Just(""), 1 => Just("#frag"), 1 => Just("#")];
    let origin = (path.clone(), query.clone(), fragment).prop_map(|(p, q, f)| format!("{p}{q}{f}").into_bytes());
    let hosts = if odd { HOSTS } else { &HOSTS[..VALID_HOSTS] };
    let absolute =
        (prop::sample::select(SCHEMES), prop::sample::select(hosts), prop_oneof![Just(String::new()), path], query)
            .prop_map(|(s, h, p, q)| format!("{s}://{h}{p}{q}").into_bytes());
    let clean = prop_oneof![
        36 => origin,
        9 => absolute,
        2 => Just(b"*".to_vec()),
        2 => prop::sample::select(hosts).prop_map(|h| format!("{h}:443").into_bytes()),
    ];
    or_odd(odd, clean.boxed(), prop::sample::select(ODD_TARGETS).prop_map(<[u8]>::to_vec).boxed())
}

fn header(odd: bool) -> BoxedStrategy<Header> {
    let name = prop_oneof![
        30 => prop::sample::select(NAMES).prop_map(str::to_string),
        12 => "[A-Za-z0-9!#$%&'*+.^_`|~-]{1,16}",
        1 => prop::sample::select(&["Connection", "Upgrade"][..]).prop_map(str::to_string),
    ];
    let odd_name = prop_oneof![
        prop::sample::select(ODD_NAMES).prop_map(str::to_string),
        prop::sample::select(&["Content-Length", "Transfer-Encoding"][..]).prop_map(str::to_string),
    ];
    let sep = prop_oneof![6 => Just(": "), 3 => Just(":"), 1 => Just(":  "), 1 => Just(":\t"), 1 => Just(": \t ")];
    let value = prop_oneof![
        30 => prop::sample::select(VALUES).prop_map(<[u8]>::to_vec),
        12 => "[ -~]{0,30}".prop_map(String::into_bytes),
        6 => prop::collection::vec(prop_oneof![0x20u8..0x7f, 0x80u8..=0xff, Just(b'\t')], 0..12),
        2 => (10usize..2000).prop_map(|n| vec![b'v'; n]),
    ];
    let fold =
        or_odd(odd, Just(None).boxed(), prop::sample::select(&[" folded", "\tfolded"][..]).prop_map(Some).boxed());
    (
        or_odd(odd, name.boxed(), odd_name.boxed()),
        or_odd(odd, sep.boxed(), Just(" : ").boxed()),
        or_odd(odd, value.boxed(), prop::sample::select(ODD_VALUES).prop_map(<[u8]>::to_vec).boxed()),
        fold,
        eol(odd),
    )
        .prop_map(|(name, sep, value, fold, eol)| Header { name, sep, value, fold, eol })
        .boxed()
}

fn headers(odd: bool) -> BoxedStrategy<Vec<Header>> {
    // hyper takes at most 100.
    let most = if odd { 110 } else { 100 };
    prop_oneof![
        12 => prop::collection::vec(header(odd), 0..8),
        1 => (90usize..=most).prop_map(|n| {
            (0..n)
                .map(|i| Header {
                    name: format!("X-Many-{i}"),
                    sep: ": ",
                    value: i.to_string().into_bytes(),
                    fold: None,
                    eol: "\r\n",
                })
                .collect()
        }),
    ]
    .boxed()
}

fn chunk(odd: bool) -> BoxedStrategy<Chunk> {
    let ext = prop_oneof![8 => Just(""), 1 => Just(";a=b"), 1 => Just(" ;x"), 1 => Just("\t;y=\"q\""), 1 => Just("  ")];
    let ext = or_odd(odd, ext.boxed(), Just(";\n").boxed());
    // hyper takes only CRLF after a chunk's size.
    let eol = or_odd(odd, Just("\r\n").boxed(), eol(true));
    (prop::collection::vec(any::<u8>(), 1..40), 0u8..3, ext, eol)
        .prop_map(|(data, spelling, ext, eol)| Chunk { data, spelling, ext, eol })
        .boxed()
}

fn body(odd: bool) -> BoxedStrategy<Body> {
    let te = prop_oneof![8 => Just("chunked"), 1 => Just("Chunked"), 1 => Just("gzip, chunked")];
    let te = or_odd(odd, te.boxed(), prop::sample::select(&["chunked, gzip", "xchunked", "identity"][..]).boxed());
    // hyper ends trailer lines at CRLF only.
    let trailer = or_odd(
        odd,
        ("X-Trailer: [a-z]{0,5}", Just("\r\n")).boxed(),
        prop_oneof![
            ("X-Trailer: [a-z]{0,5}", Just("\n")),
            ("[ -~]{0,12}", eol(true)),
            // A request head inside the trailers (hyper reads it as trailer lines).
            (
                prop::sample::select(&["GET /t HTTP/1.1", "\nGET /t HTTP/1.1", "Host: t"][..]).prop_map(str::to_string),
                eol(true)
            ),
        ]
        .boxed(),
    );
    let spelling =
        or_odd(odd, prop_oneof![8 => Just(0u8), 1 => Just(1)].boxed(), prop::sample::select(&[2u8, 3][..]).boxed());
    let twice = or_odd(odd, prop_oneof![8 => Just(None), 1 => Just(Some(true))].boxed(), Just(Some(false)).boxed());
    prop_oneof![
        6 => Just(Body::None),
        4 => (prop::collection::vec(any::<u8>(), 0..64), spelling, twice)
            .prop_map(|(data, spelling, twice)| Body::Length { data, spelling, twice }),
        4 => (
            te,
            prop::collection::vec(chunk(odd), 0..4),
            prop_oneof![4 => Just(""), 1 => Just(";last")],
            prop_oneof![4 => Just(vec![]), 1 => prop::collection::vec(trailer, 1..3)],
            prop::bool::weighted(0.1),
        )
            .prop_map(|(te, chunks, last_ext, trailers, also_length)| Body::Chunked { te, chunks, last_ext, trailers, also_length }),
    ]
    .boxed()
}

/// A request: four in five are well formed (as far as hyper goes); the
/// others have oddities here and there.
fn request() -> impl Strategy<Value = Req> {
    prop_oneof![4 => Just(false), 1 => Just(true)].prop_flat_map(|odd| {
        let lead = prop_oneof![12 => Just(""), 1 => Just("\r\n"), 1 => Just("\n"), 1 => Just("\r\n\r\n")];
        let method = or_odd(odd, prop::sample::select(METHODS).boxed(), prop::sample::select(ODD_METHODS).boxed());
        let sp = or_odd(odd, Just(" ").boxed(), prop::sample::select(&["  ", "\t"][..]).boxed());
        let version = or_odd(
            odd,
            prop_oneof![8 => Just("HTTP/1.1"), 1 => Just("HTTP/1.0")].boxed(),
            prop::sample::select(ODD_VERSIONS).boxed(),
        );
        let end_eol = or_odd(odd, prop_oneof![10 => Just("\r\n"), 1 => Just("\n")].boxed(), Just("\r").boxed());
        (
            (lead, method, sp.clone(), target(odd), sp, version, eol(odd)),
            (headers(odd), any::<usize>(), 0u8..4, body(odd), end_eol),
        )
            .prop_map(
                |(
                    (lead, method, sp1, target, sp2, version, eol),
                    (headers, framing_at, framing_case, body, end_eol),
                )| Req {
                    lead,
                    method,
                    sp1,
                    target,
                    sp2,
                    version,
                    eol,
                    headers,
                    framing_at,
                    framing_case,
                    body,
                    end_eol,
                },
            )
    })
}

fn conn() -> impl Strategy<Value = Conn> {
    let edit = prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(at, b)| Edit::Flip(at, b)),
        (any::<usize>(), prop::sample::select(&b"\r\n :\t\0\x80aZ0;"[..])).prop_map(|(at, b)| Edit::Insert(at, b)),
        any::<usize>().prop_map(Edit::Delete),
    ];
    (
        prop::collection::vec(request(), 1..5),
        prop_oneof![8 => Just(vec![]), 1 => prop::collection::vec(edit, 1..4)],
        prop::collection::vec(any::<usize>(), 0..6),
        prop::bool::weighted(0.8),
    )
        .prop_map(|(reqs, edits, cuts, read_bodies)| Conn { reqs, edits, cuts, read_bodies })
}

/// `name` spelled in one of four cases.
fn spelled(name: &str, case: u8) -> String {
    match case {
        0 => name.to_string(),
        1 => name.to_ascii_lowercase(),
        2 => name.to_ascii_uppercase(),
        _ => name.chars().enumerate().map(|(i, c)| if i % 2 == 0 { c.to_ascii_lowercase() } else { c }).collect(),
    }
}

impl Req {
    fn bytes(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.lead.as_bytes());
        out.extend_from_slice(self.method.as_bytes());
        out.extend_from_slice(self.sp1.as_bytes());
        out.extend_from_slice(&self.target);
        out.extend_from_slice(self.sp2.as_bytes());
        out.extend_from_slice(self.version.as_bytes());
        out.extend_from_slice(self.eol.as_bytes());
        let mut framing: Vec<(String, Vec<u8>)> = Vec::new();
        let mut body = Vec::new();
        let length_name = spelled("Content-Length", self.framing_case);
        match &self.body {
            Body::None => {}
            Body::Length { data, spelling, twice } => {
                let n = data.len();
                let value = match spelling {
                    0 => n.to_string(),
                    1 => format!("00{n}"),
                    2 => format!("+{n}"),
                    _ => (n + 1).to_string(),
                };
                framing.push((length_name.clone(), value.into_bytes()));
                match twice {
                    Some(true) => framing.push((length_name, format!("0{n}").into_bytes())),
                    Some(false) => framing.push((length_name, (n + 2).to_string().into_bytes())),
                    None => {}
                }
                body.extend_from_slice(data);
            }
            Body::Chunked { te, chunks, last_ext, trailers, also_length } => {
                if *also_length {
                    framing.push((length_name, b"3".to_vec()));
                }
                framing.push((spelled("Transfer-Encoding", self.framing_case), te.as_bytes().to_vec()));
                for c in chunks {
                    let size = match c.spelling {
                        0 => format!("{:x}", c.data.len()),
                        1 => format!("{:X}", c.data.len()),
                        _ => format!("000{:x}", c.data.len()),
                    };
                    body.extend_from_slice(format!("{size}{}{}", c.ext, c.eol).as_bytes());
                    body.extend_from_slice(&c.data);
                    body.extend_from_slice(b"\r\n");
                }
                body.extend_from_slice(format!("0{last_ext}\r\n").as_bytes());
                for (line, eol) in trailers {
                    body.extend_from_slice(line.as_bytes());
                    body.extend_from_slice(eol.as_bytes());
                }
                body.extend_from_slice(b"\r\n");
            }
        }
        let at = self.framing_at % (self.headers.len() + 1);
        let mut lines = self.headers.clone();
        for (i, (name, value)) in framing.into_iter().enumerate() {
            lines.insert(at + i, Header { name, sep: ": ", value, fold: None, eol: "\r\n" });
        }
        for h in lines {
            out.extend_from_slice(h.name.as_bytes());
            out.extend_from_slice(h.sep.as_bytes());
            out.extend_from_slice(&h.value);
            if let Some(fold) = h.fold {
                out.extend_from_slice(h.eol.as_bytes());
                out.extend_from_slice(fold.as_bytes());
            }
            out.extend_from_slice(h.eol.as_bytes());
        }
        out.extend_from_slice(self.end_eol.as_bytes());
        out.extend_from_slice(&body);
    }
}

impl Conn {
    /// The connection's bytes, in the pieces the server reads.
    fn reads(&self) -> Vec<Vec<u8>> {
        let mut bytes = Vec::new();
        for req in &self.reqs {
            req.bytes(&mut bytes);
        }
        for edit in &self.edits {
            match *edit {
                Edit::Flip(at, b) if !bytes.is_empty() => {
                    let at = at % bytes.len();
                    bytes[at] = b;
                }
                Edit::Insert(at, b) => bytes.insert(at % (bytes.len() + 1), b),
                Edit::Delete(at) if !bytes.is_empty() => {
                    bytes.remove(at % bytes.len());
                }
                _ => {}
            }
        }
        let mut cuts: Vec<usize> = self.cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
        cuts.sort_unstable();
        cuts.dedup();
        let mut reads = Vec::new();
        let mut from = 0;
        for cut in cuts.into_iter().chain([bytes.len()]) {
            if cut > from {
                reads.push(bytes[from..cut].to_vec());
                from = cut;
            }
        }
        reads
    }
}

// ---- the connection ----

/// A client's side in memory: reads come in the given pieces, then nothing
/// (pending) until `eof` is set; writes are kept.
struct Stream {
    reads: std::collections::VecDeque<Vec<u8>>,
    eof: Arc<AtomicBool>,
}

impl AsyncRead for Stream {
    fn poll_read(mut self: Pin<&mut Self>, _cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let Some(piece) = self.reads.front_mut() else {
            // No waker kept: `settle` polls again after setting `eof`.
            return if self.eof.load(Ordering::Relaxed) { Poll::Ready(Ok(())) } else { Poll::Pending };
        };
        let n = piece.len().min(buf.remaining());
        buf.put_slice(&piece[..n]);
        piece.drain(..n);
        if piece.is_empty() {
            self.reads.pop_front();
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Stream {
    fn poll_write(self: Pin<&mut Self>, _cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

struct Woken(AtomicBool);

impl Wake for Woken {
    fn wake(self: Arc<Self>) {
        self.0.store(true, Ordering::Relaxed);
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Polls `fut` until it finishes or waits for something that never comes
/// (pending, and nothing woke it). Whether it finished.
fn settle<F: Future>(mut fut: Pin<&mut F>) -> bool {
    let woken = Arc::new(Woken(AtomicBool::new(false)));
    let waker = Waker::from(woken.clone());
    let mut cx = Context::from_waker(&waker);
    for _ in 0..1_000_000 {
        woken.0.store(false, Ordering::Relaxed);
        if fut.as_mut().poll(&mut cx).is_ready() {
            return true;
        }
        if !woken.0.load(Ordering::Relaxed) {
            return false;
        }
    }
    panic!("the connection never settles");
}

/// One request as hyper handed it to the service, with the record the
/// service took for it.
struct Served {
    parts: hyper::http::request::Parts,
    record: Option<RequestHeaders>,
}

/// Serves `reads` on a hyper connection built as the listener builds it,
/// through the recorder; the requests hyper served, in order.
fn serve(builder: &auto::Builder<TokioExecutor>, reads: Vec<Vec<u8>>, read_bodies: bool) -> Vec<Served> {
    let eof = Arc::new(AtomicBool::new(false));
    let stream = Stream { reads: reads.into(), eof: eof.clone() };
    let (stream, recorded) = CaseRecorder::new(stream, true);
    let served = Arc::new(Mutex::new(Vec::new()));
    let service = {
        let served = served.clone();
        hyper::service::service_fn(move |req: Request<Incoming>| {
            let (parts, body) = req.into_parts();
            served.lock().push(Served { parts, record: recorded.pop() });
            async move {
                if read_bodies {
                    let _ = body.collect().await;
                }
                Ok::<_, Infallible>(Response::new(Full::new(Bytes::new())))
            }
        })
    };
    let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
    let mut conn = std::pin::pin!(conn);
    if !settle(conn.as_mut()) {
        // Everything read: now the client goes away.
        eof.store(true, Ordering::Relaxed);
        settle(conn.as_mut());
    }
    std::mem::take(&mut *served.lock())
}

/// `(name, values in order)` per header name, names lower-cased, sorted by
/// name (hyper's map keeps the order of a name's values, not of the names).
fn grouped<'a>(pairs: impl Iterator<Item = (&'a str, String)>) -> Vec<(String, Vec<String>)> {
    let mut groups: Vec<(String, Vec<String>)> = Vec::new();
    for (name, value) in pairs {
        let name = name.to_ascii_lowercase();
        match groups.iter_mut().find(|(n, _)| *n == name) {
            Some((_, values)) => values.push(value),
            None => groups.push((name, vec![value])),
        }
    }
    groups.sort_by(|a, b| a.0.cmp(&b.0));
    groups
}

static SERVED: AtomicU64 = AtomicU64::new(0);
static RECORDED: AtomicU64 = AtomicU64::new(0);
static HEADERS: AtomicU64 = AtomicU64::new(0);

#[test]
fn against_hyper() {
    let runtime = tokio::runtime::Builder::new_current_thread().build().expect("a runtime");
    let _entered = runtime.enter();
    // As `http::serve` builds its connections.
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().header_read_timeout(None).keep_alive(true).writev(false);
    let target = Target { name: "header_case::against_hyper", cases: 2500 };
    let cases = fuzz(target, conn(), |conn| {
        let served = serve(&builder, conn.reads(), conn.read_bodies);
        let mut stopped = false;
        for (i, Served { parts, record }) in served.iter().enumerate() {
            SERVED.fetch_add(1, Ordering::Relaxed);
            let Some(record) = record else {
                // The recorder stopped following the connection: it had
                // no record for an earlier request either, or it saw an
                // upgrade.
                let upgrade = served[..i].iter().any(|s| s.parts.headers.contains_key(hyper::header::UPGRADE));
                prop_assert!(stopped || upgrade, "request {i} ({} {}) has no record", parts.method, parts.uri);
                stopped = true;
                continue;
            };
            prop_assert!(!stopped, "request {i} has a record after one without");
            RECORDED.fetch_add(1, Ordering::Relaxed);
            HEADERS.fetch_add(record.len() as u64, Ordering::Relaxed);
            prop_assert!(
                record.is_record_of(parts),
                "request {i}: hyper read {} {} with {} headers, the recorder {:?} with {}",
                parts.method,
                parts.uri,
                parts.headers.len(),
                record.target(),
                record.len()
            );
            let hypers = grouped(
                parts.headers.iter().map(|(k, v)| (k.as_str(), String::from_utf8_lossy(v.as_bytes()).into_owned())),
            );
            let records = grouped(record.iter().map(|(k, v)| (k, v.to_string())));
            prop_assert_eq!(records, hypers, "request {}: {} {}", i, parts.method, parts.uri);
            if record.iter().any(|(k, _)| k.eq_ignore_ascii_case("upgrade")) {
                stopped = true;
            }
        }
        Ok(())
    });
    println!(
        "header_case::against_hyper: {cases} connections: {} requests served by hyper, {} with a record ({} headers), all agreeing",
        SERVED.load(Ordering::Relaxed),
        RECORDED.load(Ordering::Relaxed),
        HEADERS.load(Ordering::Relaxed)
    );
}
