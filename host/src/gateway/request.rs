//! A gateway request as the pipeline sees it: parsed once from the HTTP
//! request (method, path after the stage, query parameters, headers, body,
//! caller), plus the ids and time API Gateway stamps on every request.

use std::net::IpAddr;
use std::time::SystemTime;

use bytes::Bytes;
use indexmap::IndexMap;

/// One request to an API's stage.
#[derive(Debug, Clone)]
pub struct GatewayRequest {
    pub request_id: String,
    pub extended_request_id: String,
    /// The X-Ray trace id API Gateway adds (`Root=1-…`).
    pub trace_id: String,
    pub method: String,
    /// The request path as received, with the stage (API Gateway's `$context.path`).
    pub full_path: String,
    /// The path after the stage, as received (not decoded).
    pub path: String,
    pub raw_query: Option<String>,
    /// Headers (names as the client spelled them over HTTP/1.1, lower-case
    /// over HTTP/2, as it sends them).
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
    pub source_ip: IpAddr,
    pub host: String,
    /// `HTTP/1.1` or `HTTP/2.0`.
    pub protocol: &'static str,
    pub time: SystemTime,
}

/// Fresh ids for a request, as API Gateway stamps them: the request id (a
/// UUID), the extended request id (10 characters) and the X-Ray trace id
/// (`Root=1-{the time, 8 hex digits}-{24 random hex digits}`). From the
/// thread's user-space generator (no system call), written digit by digit
/// (no formatting machinery: this runs for every request).
pub fn new_ids(time: SystemTime) -> (String, String, String) {
    use rand::Rng;
    const EXTENDED: &[u8; 63] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789=";
    let mut rng = rand::rng();
    let uuid = uuid::Builder::from_random_bytes(rng.random()).into_uuid();
    let request_id = uuid.hyphenated().encode_lower(&mut uuid::Uuid::encode_buffer()).to_owned();
    let mut n: u64 = rng.random();
    let mut extended = String::with_capacity(10);
    for _ in 0..10 {
        extended.push(EXTENDED[(n % 63) as usize] as char);
        n /= 63;
    }
    let secs = time.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let mut trace_id = String::with_capacity(40);
    trace_id.push_str("Root=1-");
    push_hex(&mut trace_id, u128::from(secs as u32), 8);
    trace_id.push('-');
    push_hex(&mut trace_id, rng.random::<u128>(), 24);
    (request_id, extended, trace_id)
}

/// Appends the low `digits` hex digits of `value`, lower-case.
fn push_hex(out: &mut String, value: u128, digits: u32) {
    for i in (0..digits).rev() {
        out.push(b"0123456789abcdef"[((value >> (4 * i)) & 0xf) as usize] as char);
    }
}

impl GatewayRequest {
    /// The first value of a header (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
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
        self.headers.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }

    /// The media type of a header without parameters, lower-cased
    /// (`application/json; charset=utf-8` → `application/json`).
    pub fn media_type(&self, header: &str) -> Option<String> {
        let value = self.header(header)?;
        let first = value.split(',').next().unwrap_or("");
        let mime = first.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        (!mime.is_empty()).then_some(mime)
    }

    /// `requestTime` in API Gateway's CLF form: `24/Nov/2026:20:11:32 +0000`.
    pub fn clf_time(&self) -> String {
        let rfc = humantime::format_rfc3339_seconds(self.time).to_string(); // 2026-11-24T20:11:32Z
        let (date, time) = rfc.trim_end_matches('Z').split_once('T').unwrap_or(("1970-01-01", "00:00:00"));
        let mut parts = date.split('-');
        let (y, m, d) = (parts.next().unwrap_or("1970"), parts.next().unwrap_or("01"), parts.next().unwrap_or("01"));
        const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
        let month = m.parse::<usize>().ok().and_then(|n| MONTHS.get(n.wrapping_sub(1))).unwrap_or(&"Jan");
        format!("{d}/{month}/{y}:{time} +0000")
    }

    pub fn epoch_ms(&self) -> u64 {
        self.time.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> GatewayRequest {
        GatewayRequest {
            request_id: "r".into(),
            extended_request_id: "e".into(),
            trace_id: "Root=1-00000000-000000000000000000000000".into(),
            method: "GET".into(),
            full_path: "/dev/items".into(),
            path: "/items".into(),
            raw_query: Some("a=1&b=x+y&a=2".into()),
            headers: vec![("content-type".into(), "Application/JSON; charset=utf-8".into())],
            body: Bytes::new(),
            source_ip: "127.0.0.1".parse().unwrap(),
            host: "localhost".into(),
            protocol: "HTTP/1.1",
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
        let (id, extended, trace) = new_ids(time);
        let (id2, _, trace2) = new_ids(time);
        assert_eq!(id.len(), 36);
        assert_eq!(uuid::Uuid::parse_str(&id).unwrap().get_version_num(), 4);
        assert_eq!(extended.len(), 10);
        assert!(trace.starts_with("Root=1-5759e988-"), "{trace}");
        assert_eq!(trace.len(), "Root=1-5759e988-bd862e3fe1be46a994272793".len());
        assert!(trace[16..].bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)), "{trace}");
        assert!(extended.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'='), "{extended}");
        assert!(id != id2 && trace != trace2);
    }
}
