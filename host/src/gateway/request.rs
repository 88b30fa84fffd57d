//! A gateway request as the pipeline sees it: parsed once from the HTTP
//! request (method, path after the stage, query parameters, headers, body,
//! caller), plus the ids and time API Gateway stamps on every request.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::net::IpAddr;
use std::time::{Instant, SystemTime};

use bytes::Bytes;
use hyper::header::HeaderValue;
use indexmap::IndexMap;

/// The request's headers (made by the listener where it recorded them as sent).
pub use crate::http::header_case::RequestHeaders;

/// One request to an API's stage.
#[derive(Debug, Clone)]
pub struct GatewayRequest {
    /// The request id, extended request id and X-Ray trace id.
    pub ids: RequestIds,
    /// hyper's: the standard methods without an allocation of their own.
    pub method: hyper::Method,
    /// The request path as received, with the stage (API Gateway's `$context.path`).
    pub full_path: String,
    /// Where the path after the stage starts in `full_path` ([`Self::path`]):
    /// set by routing, a suffix of the path as received, so not a copy.
    pub path_at: usize,
    pub raw_query: Option<String>,
    /// Headers (names as the client spelled them over HTTP/1.1, lower-case
    /// over HTTP/2, as it sends them).
    pub headers: RequestHeaders,
    pub body: Bytes,
    pub source_ip: IpAddr,
    pub host: String,
    /// `HTTP/1.1` or `HTTP/2.0`.
    pub protocol: &'static str,
    pub time: SystemTime,
    /// When its head was read: the start of its latency.
    pub received: Instant,
}

/// The ids API Gateway stamps on a request: the request id (a version 4
/// UUID), the extended request id (16 characters of base64, as API Gateway's
/// look: `LWQ1aFOUIAMEYVA=`) and the X-Ray trace id
/// (`Root=1-{the time, 8 hex digits}-{24 random hex digits}`).
///
/// They live in one shared buffer: a request makes it once, and each
/// response header that carries an id is a slice of it (no copy). The text
/// is always visible ASCII (checked in [`RequestIds::of`], by construction
/// in [`RequestIds::new`]), so it is neither checked as UTF-8 nor as a
/// header value again each time it is used.
#[derive(Debug, Clone)]
pub struct RequestIds {
    text: Bytes,
    /// Where the extended request id and the trace id start in `text`.
    extended_at: usize,
    trace_at: usize,
}

impl RequestIds {
    /// Fresh ids, written in place into one buffer (no formatting machinery:
    /// this runs for every request).
    ///
    /// The random digits come from a small per-thread generator seeded from
    /// the thread's cryptographic one: the ids must be unique, not secret
    /// (API Gateway sends them to the client), and a cryptographic generator
    /// costs a visible share of a small request.
    pub fn new(time: SystemTime) -> Self {
        thread_local! {
            static RNG: std::cell::RefCell<rand::rngs::SmallRng> =
                std::cell::RefCell::new(rand::SeedableRng::from_rng(&mut rand::rng()));
        }
        RNG.with_borrow_mut(|rng| Self::generate(time, rng))
    }

    fn generate(time: SystemTime, rng: &mut impl rand::Rng) -> Self {
        const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        // Written in place into a fixed buffer.
        let mut text = [0u8; ID_LEN + EXTENDED_LEN + TRACE_LEN];
        let (request_id, rest) = text.split_at_mut(ID_LEN);
        let (extended, trace) = rest.split_at_mut(EXTENDED_LEN);
        // A version 4 UUID: 122 random bits, hyphenated 8-4-4-4-12.
        let (high, low) = (rng.next_u64(), rng.next_u64());
        let high = hex16((high & !0xf000) | 0x4000); // version 4
        let low = hex16((low & !(0b11 << 62)) | (0b10 << 62)); // RFC 4122 variant
        request_id[0..8].copy_from_slice(&high[0..8]);
        request_id[8] = b'-';
        request_id[9..13].copy_from_slice(&high[8..12]);
        request_id[13] = b'-';
        request_id[14..18].copy_from_slice(&high[12..16]);
        request_id[18] = b'-';
        request_id[19..23].copy_from_slice(&low[0..4]);
        request_id[23] = b'-';
        request_id[24..36].copy_from_slice(&low[4..16]);
        // Fifteen base64 digits (90 random bits) and the padding.
        let (mut a, mut b) = (rng.next_u64(), rng.next_u64());
        for slot in &mut extended[..10] {
            *slot = BASE64[(a & 63) as usize];
            a >>= 6;
        }
        for slot in &mut extended[10..15] {
            *slot = BASE64[(b & 63) as usize];
            b >>= 6;
        }
        extended[15] = b'=';
        let secs = time.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        let (root, digits) = trace.split_at_mut(7);
        root.copy_from_slice(b"Root=1-");
        let (epoch, random) = digits.split_at_mut(8);
        epoch.copy_from_slice(&hex8(secs as u32));
        random[0] = b'-';
        let (high, low) = random[1..].split_at_mut(8);
        high.copy_from_slice(&hex8(b as u32)); // 32 of the 34 bits the extended id left
        low.copy_from_slice(&hex16(rng.next_u64()));
        // Owned by the `Bytes` as it is: one allocation, shared by every
        // slice. (A copy into a `Vec`-backed `Bytes` allocates again when it
        // is first sliced.)
        RequestIds { text: Bytes::from_owner(text), extended_at: ID_LEN, trace_at: ID_LEN + EXTENDED_LEN }
    }

    /// Given ids (tests and fixtures).
    ///
    /// # Panics
    ///
    /// Unless every id is visible ASCII (what a header value may carry).
    pub fn of(request_id: &str, extended_request_id: &str, trace_id: &str) -> Self {
        let text = [request_id, extended_request_id, trace_id].concat();
        assert!(text.bytes().all(|b| b.is_ascii_graphic() || b == b' '), "ids must be visible ASCII: {text:?}");
        let extended_at = request_id.len();
        let trace_at = extended_at + extended_request_id.len();
        RequestIds { text: Bytes::from(text), extended_at, trace_at }
    }

    pub fn request_id(&self) -> &str {
        self.str(0..self.extended_at)
    }

    pub fn extended_request_id(&self) -> &str {
        self.str(self.extended_at..self.trace_at)
    }

    pub fn trace_id(&self) -> &str {
        self.str(self.trace_at..self.text.len())
    }

    /// The request id as a header value (shares the buffer).
    pub fn request_id_value(&self) -> HeaderValue {
        self.value(0..self.extended_at)
    }

    pub fn extended_request_id_value(&self) -> HeaderValue {
        self.value(self.extended_at..self.trace_at)
    }

    pub fn trace_id_value(&self) -> HeaderValue {
        self.value(self.trace_at..self.text.len())
    }

    fn str(&self, range: std::ops::Range<usize>) -> &str {
        debug_assert!(self.text.is_ascii());
        // SAFETY: the text is ASCII (see the type's docs), so any range of it is UTF-8.
        unsafe { std::str::from_utf8_unchecked(&self.text[range]) }
    }

    fn value(&self, range: std::ops::Range<usize>) -> HeaderValue {
        // SAFETY: the text is visible ASCII (see the type's docs), which a
        // header value may hold (debug builds check it again).
        unsafe { HeaderValue::from_maybe_shared_unchecked(self.text.slice(range)) }
    }
}

/// Lengths of the request id (a hyphenated UUID), the extended request id
/// (base64 of 11 bytes) and the trace id (`Root=1-` + 8 + `-` + 24 hex digits).
const ID_LEN: usize = 36;
const EXTENDED_LEN: usize = 16;
const TRACE_LEN: usize = 7 + 8 + 1 + 24;

/// The eight lower-case hex digits of `value`, most significant first,
/// made all at once (SWAR: each nibble spread into a byte of its own, then
/// turned into its digit in every byte together) rather than one at a time:
/// the ids are 68 digits per request.
fn hex8(value: u32) -> [u8; 8] {
    let x = u64::from(value);
    let x = ((x & 0xffff_0000) << 16) | (x & 0xffff);
    let x = ((x & 0x0000_ff00_0000_ff00) << 8) | (x & 0x0000_00ff_0000_00ff);
    let x = ((x & 0x00f0_00f0_00f0_00f0) << 4) | (x & 0x000f_000f_000f_000f);
    // Byte k holds nibble k. A nibble of 10 or more carries into bit 4 when
    // 6 is added; those bytes get `'a' - '0' - 10` = 39 more.
    let letters = ((x + 0x0606_0606_0606_0606) >> 4) & 0x0101_0101_0101_0101;
    (x + 0x3030_3030_3030_3030 + letters * 39).to_be_bytes()
}

/// The sixteen lower-case hex digits of `value` (see [`hex8`]).
fn hex16(value: u64) -> [u8; 16] {
    let mut out = [0u8; 16];
    out[..8].copy_from_slice(&hex8((value >> 32) as u32));
    out[8..].copy_from_slice(&hex8(value as u32));
    out
}

impl GatewayRequest {
    /// The path after the stage, as received (not decoded).
    pub fn path(&self) -> &str {
        self.full_path.get(self.path_at..).unwrap_or("")
    }

    /// The first value of a header (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name)
    }

    /// Query parameters, form-decoded; a repeated name keeps its last value
    /// (as API Gateway's single-value maps do).
    pub fn query(&self) -> IndexMap<String, String> {
        let mut map = IndexMap::new();
        if let Some(q) = &self.raw_query {
            for (k, v) in form_urlencoded::parse(q.as_bytes()) {
                map.insert(k.into_owned(), v.into_owned());
            }
        }
        map
    }

    /// Headers as a map (a repeated name keeps its last value).
    pub fn header_map(&self) -> IndexMap<String, String> {
        self.headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    /// The media type of a header without parameters, lower-cased
    /// (`application/json; charset=utf-8` → `application/json`).
    /// Borrowed when the client sent it in lower case already.
    pub fn media_type(&self, header: &str) -> Option<Cow<'_, str>> {
        let value = self.header(header)?;
        let first = value.split(',').next().unwrap_or("");
        let mime = first.split(';').next().unwrap_or("").trim();
        if mime.is_empty() {
            None
        } else if mime.bytes().any(|b| b.is_ascii_uppercase()) {
            Some(Cow::Owned(mime.to_ascii_lowercase()))
        } else {
            Some(Cow::Borrowed(mime))
        }
    }

    pub fn epoch_ms(&self) -> u64 {
        self.time.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
    }

    /// `requestTime` in API Gateway's CLF form: `24/Nov/2026:20:11:32 +0000`.
    pub fn clf_time(&self) -> String {
        let mut text = String::with_capacity(26);
        self.write_clf_time(&mut text);
        text
    }

    /// [`Self::clf_time`] added to `out`, made once a second per thread:
    /// the requests of one second share it (the templates' `$context` and
    /// the access logs ask for it on every request).
    pub fn write_clf_time(&self, out: &mut String) {
        thread_local! {
            static MADE: std::cell::RefCell<(u64, String)> = const { std::cell::RefCell::new((u64::MAX, String::new())) };
        }
        let second = self.time.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        MADE.with_borrow_mut(|(made_at, text)| {
            if *made_at != second {
                *made_at = second;
                text.clear();
                format_clf_time(self.time, text);
            }
            out.push_str(text);
        });
    }
}

/// `time` in CLF form, added to `out`.
fn format_clf_time(time: SystemTime, out: &mut String) {
    let rfc = humantime::format_rfc3339_seconds(time).to_string(); // 2026-11-24T20:11:32Z
    let (date, clock) = rfc.trim_end_matches('Z').split_once('T').unwrap_or(("1970-01-01", "00:00:00"));
    let mut parts = date.split('-');
    let (y, m, d) = (parts.next().unwrap_or("1970"), parts.next().unwrap_or("01"), parts.next().unwrap_or("01"));
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let month = m.parse::<usize>().ok().and_then(|n| MONTHS.get(n.wrapping_sub(1))).unwrap_or(&"Jan");
    let _ = write!(out, "{d}/{month}/{y}:{clock} +0000");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> GatewayRequest {
        GatewayRequest {
            ids: RequestIds::of("r", "e", "Root=1-00000000-000000000000000000000000"),
            method: hyper::Method::GET,
            full_path: "/dev/items".into(),
            path_at: "/dev".len(),
            raw_query: Some("a=1&b=x+y&a=2".into()),
            headers: [("content-type", "Application/JSON; charset=utf-8")].into_iter().collect(),
            body: Bytes::new(),
            source_ip: "127.0.0.1".parse().unwrap(),
            host: "localhost".into(),
            protocol: "HTTP/1.1",
            received: std::time::Instant::now(),
            time: SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_583_349_317),
        }
    }

    #[test]
    fn parses_what_templates_need() {
        let r = request();
        assert_eq!(r.query().get("a").map(String::as_str), Some("2"));
        assert_eq!(r.query().get("b").map(String::as_str), Some("x y"));
        assert_eq!(r.media_type("Content-Type").as_deref(), Some("application/json"));
        assert_eq!(r.clf_time(), "04/Mar/2020:19:15:17 +0000");
        assert_eq!(r.epoch_ms(), 1_583_349_317_000);
    }

    #[test]
    fn ids_have_api_gateways_shapes() {
        let time = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(0x5759_e988);
        let ids = RequestIds::new(time);
        let (id, extended, trace) = (ids.request_id(), ids.extended_request_id(), ids.trace_id());
        let other = RequestIds::new(time);
        let (id2, trace2) = (other.request_id(), other.trace_id());
        assert_eq!(id.len(), 36);
        let uuid = uuid::Uuid::parse_str(id).unwrap();
        assert_eq!((uuid.get_version_num(), uuid.get_variant()), (4, uuid::Variant::RFC4122), "{id}");
        assert_eq!(uuid.hyphenated().to_string(), id, "lower-case, hyphenated");
        assert_eq!(extended.len(), 16);
        assert!(extended.ends_with('='), "{extended}");
        assert!(trace.starts_with("Root=1-5759e988-"), "{trace}");
        assert_eq!(trace.len(), "Root=1-5759e988-bd862e3fe1be46a994272793".len());
        assert!(trace[16..].bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)), "{trace}");
        assert!(extended[..15].bytes().all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/'), "{extended}");
        assert!(id != id2 && trace != trace2);
        // The header values are the same text.
        assert_eq!(ids.request_id_value(), id);
        assert_eq!(ids.extended_request_id_value(), extended);
        assert_eq!(ids.trace_id_value(), trace);
        let given = RequestIds::of("r-1", "ext", "");
        assert_eq!((given.request_id(), given.extended_request_id(), given.trace_id()), ("r-1", "ext", ""));
    }

    /// Every bit that is not the UUID's version and variant is random: over
    /// many ids each position takes every digit it may.
    #[test]
    fn ids_use_every_digit_in_every_position() {
        let time = SystemTime::now();
        let ids: Vec<RequestIds> = (0..2000).map(|_| RequestIds::new(time)).collect();
        let digits = |pick: &dyn Fn(&RequestIds) -> &str, at: usize| {
            ids.iter().map(|i| pick(i).as_bytes()[at]).collect::<std::collections::BTreeSet<u8>>().len()
        };
        for at in (0..36).filter(|at| ![8, 13, 18, 23].contains(at)) {
            let want = match at {
                14 => 1, // the version, 4
                19 => 4, // the variant, 8 to b
                _ => 16,
            };
            assert_eq!(digits(&|i| i.request_id(), at), want, "request id position {at}");
        }
        for at in 0..15 {
            assert!(digits(&|i| i.extended_request_id(), at) > 60, "extended id position {at}");
        }
        for at in 16..40 {
            assert_eq!(digits(&|i| i.trace_id(), at), 16, "trace id position {at}");
        }
    }

    #[test]
    fn hex_digits_are_formats() {
        for v in [0, 1, 9, 10, 15, 16, 0xdead_beef, 0x0123_4567, 0x89ab_cdef, u32::MAX] {
            assert_eq!(hex8(v), *format!("{v:08x}").as_bytes(), "{v:#x}");
        }
        for v in [0, 0x0123_4567_89ab_cdef, 0xfedc_ba98_7654_3210, u64::MAX] {
            assert_eq!(hex16(v), *format!("{v:016x}").as_bytes(), "{v:#x}");
        }
    }

    #[test]
    #[should_panic(expected = "visible ASCII")]
    fn given_ids_must_be_visible_ascii() {
        RequestIds::of("r\n1", "e", "t");
    }
}
