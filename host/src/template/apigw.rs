//! API Gateway's template variables: `$input` (body, JSONPath look-ups,
//! parameters) and `$util` (escaping, JSON, URL and base64 helpers).
//! `$context` and `$stageVariables` are plain maps set up by the renderer.

use base64::Engine as _;
use indexmap::IndexMap;
use serde_json::Value as Json;
use serde_json_path::JsonPath;

use super::RenderError;
use super::ast::{Part, Pos};
use super::eval::Renderer;
use super::value::Val;

fn string_map(m: &IndexMap<String, String>) -> Val {
    Val::new_map(m.iter().map(|(k, v)| (k.clone(), Val::str(v.as_str()))).collect())
}

/// A JSONPath as API Gateway reads it: `$.a`, `$['a']`, or `a.b` (read as `$.a.b`).
fn parse_path(path: &str) -> Result<JsonPath, String> {
    let p = path.trim();
    let full = if p.starts_with('$') {
        p.to_string()
    } else if p.starts_with('[') {
        format!("${p}")
    } else {
        format!("$.{p}")
    };
    JsonPath::parse(&full).map_err(|e| format!("invalid JSONPath {path:?}: {e}"))
}

/// Whether a path can select several nodes (then the result is a list).
fn is_indefinite(path: &str) -> bool {
    path.contains("..") || path.contains('*') || path.contains('?') || path.contains(':') || path.contains(',')
}

thread_local! {
    /// Parsed JSONPaths: templates use a handful, on every request.
    static PATH_CACHE: std::cell::RefCell<std::collections::HashMap<String, JsonPath>> =
        std::cell::RefCell::new(std::collections::HashMap::new());
}

fn cached_path(path: &str) -> Result<JsonPath, String> {
    if let Some(p) = PATH_CACHE.with(|c| c.borrow().get(path).cloned()) {
        return Ok(p);
    }
    let p = parse_path(path)?;
    PATH_CACHE.with(|c| {
        let mut cache = c.borrow_mut();
        if cache.len() >= 256 {
            cache.clear();
        }
        cache.insert(path.to_string(), p.clone());
    });
    Ok(p)
}

/// Selects `path` in `json`: the value, a list for indefinite paths, `None` if missing.
fn select<'j>(json: &'j Json, path: &str) -> Result<Selected<'j>, String> {
    if path.trim() == "$" {
        return Ok(Selected::One(json));
    }
    let p = cached_path(path)?;
    let nodes = p.query(json).all();
    if is_indefinite(path) {
        return Ok(Selected::Many(nodes));
    }
    Ok(nodes.first().map_or(Selected::Missing, |v| Selected::One(v)))
}

/// What a JSONPath selected (borrowed from the parsed body).
enum Selected<'j> {
    Missing,
    One(&'j Json),
    /// An indefinite path (`..`, `*`, a slice, a union, a filter): always a list.
    Many(Vec<&'j Json>),
}

impl Renderer<'_> {
    /// The request body as JSON (parsed once); `None` when it is not JSON.
    fn body_json(&mut self) -> Option<&Json> {
        if self.body_json.is_none() {
            let body = &self.input().body;
            let text = if body.trim().is_empty() { "{}" } else { body.as_str() };
            self.body_json = Some(serde_json::from_str(text).ok());
        }
        self.body_json.as_ref().and_then(Option::as_ref)
    }
}

fn args(r: &mut Renderer<'_>, args: &[super::ast::Expr]) -> Result<Vec<Val>, RenderError> {
    args.iter().map(|a| r.expr(a)).collect()
}

fn string_arg(v: Option<&Val>) -> Option<String> {
    match v? {
        Val::Null => None,
        Val::Str(s) => Some(s.to_string()),
        other => Some(other.render()),
    }
}

/// Applies the remaining parts to a value.
fn rest(r: &mut Renderer<'_>, mut current: Val, parts: &[Part], pos: Pos) -> Result<Option<Val>, RenderError> {
    for part in parts {
        match r.part(&current, part, pos)? {
            Some(v) => current = v,
            None => return Ok(None),
        }
    }
    Ok(Some(current))
}

/// `$input…`.
pub(super) fn input(r: &mut Renderer<'_>, parts: &[Part], pos: Pos) -> Result<Option<Val>, RenderError> {
    let Some((first, more)) = parts.split_first() else {
        return Ok(None);
    };
    let value = match first {
        Part::Property(p) if p == "body" => {
            let body = &r.input().body;
            Val::str(if body.is_empty() { "{}" } else { body.as_str() })
        }
        Part::Method(m, a) => {
            let a = args(r, a)?;
            match (m.as_str(), a.len()) {
                ("body", 0) => {
                    Val::str(if r.input().body.is_empty() { "{}".to_string() } else { r.input().body.clone() })
                }
                ("params", 0) => {
                    // One map per render, as API Gateway's `$input` keeps one.
                    if let Some(p) = &r.params {
                        p.clone()
                    } else {
                        let i = r.input();
                        let mut map = IndexMap::with_capacity(3);
                        map.insert("path".to_string(), string_map(&i.path));
                        map.insert("querystring".to_string(), string_map(&i.querystring));
                        map.insert("header".to_string(), string_map(&i.header));
                        let p = Val::new_map(map);
                        r.params = Some(p.clone());
                        p
                    }
                }
                ("params", 1) => {
                    let name = string_arg(a.first()).unwrap_or_default();
                    let i = r.input();
                    let found = i
                        .path
                        .get(&name)
                        .or_else(|| i.querystring.get(&name))
                        .or_else(|| i.header.iter().find(|(k, _)| k.eq_ignore_ascii_case(&name)).map(|(_, v)| v));
                    Val::str(found.map(String::as_str).unwrap_or(""))
                }
                ("path", 1) => {
                    let path = string_arg(a.first()).unwrap_or_default();
                    let Some(json) = r.body_json() else { return Ok(None) };
                    match select(json, &path).map_err(|m| RenderError::at(pos, m))? {
                        Selected::One(v) => Val::from_json(v),
                        Selected::Many(nodes) => Val::new_list(nodes.into_iter().map(Val::from_json).collect(), true),
                        Selected::Missing => return Ok(None),
                    }
                }
                ("json", 1) => {
                    let path = string_arg(a.first()).unwrap_or_default();
                    let mut out = String::new();
                    match r.body_json() {
                        Some(json) => match select(json, &path).map_err(|m| RenderError::at(pos, m))? {
                            Selected::One(v) => write_json(v, &mut out),
                            Selected::Many(nodes) => {
                                out.push('[');
                                for (i, v) in nodes.into_iter().enumerate() {
                                    if i > 0 {
                                        out.push(',');
                                    }
                                    write_json(v, &mut out);
                                }
                                out.push(']');
                            }
                            Selected::Missing => out.push_str("\"\""),
                        },
                        None => out.push_str("\"\""),
                    }
                    Val::str(out)
                }
                _ => return Ok(None),
            }
        }
        _ => return Ok(None),
    };
    rest(r, value, more, pos)
}

/// `$util…`.
pub(super) fn util(r: &mut Renderer<'_>, parts: &[Part], pos: Pos) -> Result<Option<Val>, RenderError> {
    let Some((Part::Method(m, a), more)) = parts.split_first() else {
        return Ok(None);
    };
    let a = args(r, a)?;
    let arg = string_arg(a.first());
    let value = match m.as_str() {
        "escapeJavaScript" => match arg {
            Some(s) => Val::str(escape_javascript(&s)),
            None => Val::Null,
        },
        "parseJson" => match arg {
            Some(s) => match serde_json::from_str::<Json>(&s) {
                Ok(j) => Val::from_json(&j),
                Err(e) => return Err(RenderError::at(pos, format!("$util.parseJson: invalid JSON: {e}"))),
            },
            None => Val::Null,
        },
        "urlEncode" => Val::str(arg.map(|s| url_encode(&s)).unwrap_or_default()),
        "urlDecode" => match arg {
            Some(s) => Val::str(url_decode(&s).map_err(|m| RenderError::at(pos, format!("$util.urlDecode: {m}")))?),
            None => Val::empty_str(),
        },
        "base64Encode" => {
            Val::str(arg.map(|s| base64::engine::general_purpose::STANDARD.encode(s)).unwrap_or_default())
        }
        "base64Decode" => match arg {
            Some(s) => match base64_decode(s.trim()) {
                Ok(bytes) => Val::str(String::from_utf8_lossy(&bytes).into_owned()),
                Err(e) => return Err(RenderError::at(pos, format!("$util.base64Decode: {e}"))),
            },
            None => Val::empty_str(),
        },
        _ => return Ok(None),
    };
    if more.is_empty() {
        return Ok(Some(value));
    }
    rest(r, value, more, pos)
}

/// Compact JSON of a selected value, numbers as Java prints them (`1.0E7`).
fn write_json(v: &Json, out: &mut String) {
    match v {
        Json::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => out.push_str(&i.to_string()),
            (None, Some(u)) => out.push_str(&u.to_string()),
            _ => out.push_str(&super::value::java_double(n.as_f64().unwrap_or(0.0))),
        },
        Json::String(s) => super::value::quote_json(s, out),
        Json::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json(item, out);
            }
            out.push(']');
        }
        Json::Object(map) => {
            out.push('{');
            for (i, (k, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                super::value::quote_json(k, out);
                out.push(':');
                write_json(item, out);
            }
            out.push('}');
        }
        Json::Null | Json::Bool(_) => out.push_str(&v.to_string()),
    }
}

/// commons-lang 2.6 `StringEscapeUtils.escapeJavaScript`.
pub fn escape_javascript(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '/' => out.push_str("\\/"),
            '\u{8}' => out.push_str("\\b"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\u{c}' => out.push_str("\\f"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04X}", c as u32)),
            c if (c as u32) > 0x7f => {
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    out.push_str(&format!("\\u{:04X}", unit));
                }
            }
            c => out.push(c),
        }
    }
    out
}

/// `java.net.URLEncoder.encode(s, "UTF-8")`.
pub fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'.' | b'-' | b'*' | b'_' => out.push(b as char),
            b' ' => out.push('+'),
            other => out.push_str(&format!("%{other:02X}")),
        }
    }
    out
}

/// `java.net.URLDecoder.decode(s, "UTF-8")`: `+` is a space, `%XX` a byte;
/// a malformed escape is an error, as Java's is an exception.
pub fn url_decode(s: &str) -> Result<String, String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' => {
                let hex = b.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(byte) => out.push(byte),
                    None => return Err("URLDecoder: Illegal hex characters in escape (%) pattern".into()),
                }
                i += 3;
            }
            other => {
                out.push(other);
                i += 1;
            }
        }
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// Java's basic `Base64` decoder: the standard alphabet, padding optional.
fn base64_decode(s: &str) -> Result<Vec<u8>, String> {
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    const JAVA: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    JAVA.decode(s).map_err(|e| format!("Illegal base64 input: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helpers_match_java() {
        assert_eq!(escape_javascript("it's \"a\"/b\n\u{e9}"), "it\\'s \\\"a\\\"\\/b\\n\\u00E9");
        assert_eq!(url_encode(r#"{"some": "value"}"#), "%7B%22some%22%3A+%22value%22%7D");
        assert_eq!(url_decode("a+b%2Bc&d=e").unwrap(), "a b+c&d=e");
        assert!(url_decode("%zz").is_err());
        assert_eq!(base64_decode("aGk").unwrap(), b"hi");
    }
}
