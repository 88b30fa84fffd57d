//! The headers of a response that a function or a template made: checked
//! for HTTP (a name or value that cannot go on the wire is left out) and
//! kept away from HTTP's framing.
//!
//! hyper writes a `Content-Length` or `Transfer-Encoding` that the
//! application sets as it is: a function answering `Content-Length: 0`
//! with a body would have the body read as the *next* response on a
//! keep-alive connection (response splitting). API Gateway never lets a
//! backend set such headers: it renames them `x-amzn-Remapped-<name>`
//! (`AWS-BEHAVIOUR.md` §2.5), and so does wasmgate, for the proxy
//! response's `headers` and `multiValueHeaders`, an integration response's
//! header mappings, `$context.responseOverride.header.*` and customised
//! gateway responses alike — every header that is not the server's own
//! goes through [`header_pair`].
//!
//! The names are AWS's list, plus what else frames or ends a connection
//! in HTTP/1.1 (`Transfer-Encoding`, `TE`, `Keep-Alive`,
//! `Proxy-Connection`), none of which may be sent in HTTP/2 either.

use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};

/// Headers a response from a function or template never sets: each is
/// sent as `x-amzn-Remapped-<name>` instead.
const REMAPPED: [HeaderName; 18] = [
    header::AUTHORIZATION,
    header::CONNECTION,
    header::CONTENT_LENGTH,
    HeaderName::from_static("content-md5"),
    header::DATE,
    header::EXPECT,
    header::HOST,
    header::MAX_FORWARDS,
    header::PROXY_AUTHENTICATE,
    header::SERVER,
    header::TRAILER,
    header::UPGRADE,
    header::USER_AGENT,
    header::WWW_AUTHENTICATE,
    header::TRANSFER_ENCODING,
    header::TE,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
];

/// The name a header from a function or template is sent under: its own,
/// or `x-amzn-remapped-<name>` for one of [`REMAPPED`].
fn remapped(name: HeaderName) -> HeaderName {
    if !REMAPPED.contains(&name) {
        return name;
    }
    let renamed = format!("x-amzn-remapped-{}", name.as_str());
    tracing::debug!(header = name.as_str(), "header remapped: a response never sets HTTP's framing");
    HeaderName::from_bytes(renamed.as_bytes()).unwrap_or(name)
}

/// `name` and `value` as HTTP's, if both are valid there, under the name
/// the response may carry ([`remapped`]); a value a function or template
/// made that cannot be sent (a control character, say) is left out, as it
/// cannot go on the wire.
pub fn header_pair(name: &str, value: &str) -> Option<(HeaderName, HeaderValue)> {
    match (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_str(value)) {
        (Ok(n), Ok(v)) => Some((remapped(n), v)),
        _ => {
            tracing::debug!(header = name, "header left out: not a valid HTTP header");
            None
        }
    }
}

/// Sets `name` to `value` (replacing what was there), if both are valid in HTTP.
pub fn set_header(headers: &mut HeaderMap, name: &str, value: &str) {
    if let Some((n, v)) = header_pair(name, value) {
        headers.insert(n, v);
    }
}

/// A header map of `pairs` (those valid in HTTP); a name given more than
/// once is sent on a line per value.
pub fn header_map(pairs: &[(String, String)]) -> HeaderMap {
    let mut headers = HeaderMap::with_capacity(pairs.len());
    for (n, v) in pairs.iter().filter_map(|(name, value)| header_pair(name, value)) {
        headers.append(n, v);
    }
    headers
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framing_headers_are_remapped_and_others_kept() {
        let pairs: Vec<(String, String)> = [
            ("Content-Length", "0"),
            ("transfer-encoding", "chunked"),
            ("Connection", "close"),
            ("WWW-Authenticate", "Basic"),
            ("X-Custom", "1"),
            ("Set-Cookie", "a=1"),
            ("Set-Cookie", "b=2"),
            ("bad\nname", "x"),
            ("X-Bad-Value", "a\r\nb"),
        ]
        .into_iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
        let map = header_map(&pairs);
        assert!(map.get(header::CONTENT_LENGTH).is_none());
        assert!(map.get(header::TRANSFER_ENCODING).is_none());
        assert!(map.get(header::CONNECTION).is_none());
        assert_eq!(map["x-amzn-remapped-content-length"], "0");
        assert_eq!(map["x-amzn-remapped-transfer-encoding"], "chunked");
        assert_eq!(map["x-amzn-remapped-connection"], "close");
        assert_eq!(map["x-amzn-remapped-www-authenticate"], "Basic");
        assert_eq!(map["x-custom"], "1");
        assert_eq!(map.get_all(header::SET_COOKIE).iter().count(), 2);
        assert_eq!(map.len(), 7, "the invalid name and value are left out: {map:?}");

        let mut set = HeaderMap::new();
        set_header(&mut set, "content-length", "5");
        assert_eq!(set.len(), 1);
        assert_eq!(set["x-amzn-remapped-content-length"], "5");
    }
}
