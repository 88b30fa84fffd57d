//! Runtime values with Java's semantics: integers (Integer/Long) and doubles
//! with Java's arithmetic and printing, strings, booleans, null, lists and
//! ordered maps (shared and mutable, as Java collections are).
//!
//! Printing follows what API Gateway prints: a map as Java's `{k=v, k2=v2}`;
//! a list made in the template as Java's `[a, b]`; a list that came from JSON
//! (`$input.path`, `$util.parseJson`) as compact JSON.

use std::fmt::Write as _;
use std::sync::Arc;

use indexmap::IndexMap;
use parking_lot::Mutex;
use serde_json::Value as Json;

/// A shared, mutable list.
#[derive(Debug, Default)]
pub struct ListData {
    pub items: Vec<Val>,
    /// Came from JSON: prints as JSON.
    pub json: bool,
}

pub type ListRef = Arc<Mutex<ListData>>;
pub type MapRef = Arc<Mutex<IndexMap<String, Val>>>;

#[derive(Debug, Clone, Default)]
pub enum Val {
    #[default]
    Null,
    Bool(bool),
    Int(i64),
    Double(f64),
    Str(Arc<str>),
    List(ListRef),
    Map(MapRef),
}

impl PartialEq for Val {
    fn eq(&self, other: &Val) -> bool {
        match (self, other) {
            (Val::Null, Val::Null) => true,
            (Val::Bool(a), Val::Bool(b)) => a == b,
            (Val::Int(a), Val::Int(b)) => a == b,
            (Val::Double(a), Val::Double(b)) => a == b,
            (Val::Int(a), Val::Double(b)) | (Val::Double(b), Val::Int(a)) => (*a as f64) == *b,
            (Val::Str(a), Val::Str(b)) => a == b,
            (Val::List(a), Val::List(b)) => {
                Arc::ptr_eq(a, b) || {
                    let (x, y) = (a.lock().items.clone(), b.lock().items.clone());
                    x == y
                }
            }
            (Val::Map(a), Val::Map(b)) => {
                Arc::ptr_eq(a, b) || {
                    let (x, y) = (a.lock().clone(), b.lock().clone());
                    x == y
                }
            }
            _ => false,
        }
    }
}

impl Val {
    pub fn str(s: impl Into<Arc<str>>) -> Val {
        Val::Str(s.into())
    }

    pub fn empty_str() -> Val {
        Val::Str(Arc::from(""))
    }

    pub fn new_list(items: Vec<Val>, json: bool) -> Val {
        Val::List(Arc::new(Mutex::new(ListData { items, json })))
    }

    pub fn new_map(map: IndexMap<String, Val>) -> Val {
        Val::Map(Arc::new(Mutex::new(map)))
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Val::Null)
    }

    /// Velocity 1.7's truth: null and `false` are false, everything else true
    /// (an empty string too).
    pub fn truthy(&self) -> bool {
        !matches!(self, Val::Null | Val::Bool(false))
    }

    pub fn as_number(&self) -> Option<f64> {
        match self {
            Val::Int(i) => Some(*i as f64),
            Val::Double(d) => Some(*d),
            _ => None,
        }
    }

    /// Java's `toString()`, as a template renders the value.
    pub fn render(&self) -> String {
        let mut out = String::new();
        self.write_to(&mut out, 0);
        out
    }

    fn write_to(&self, out: &mut String, depth: usize) {
        if depth > 64 {
            out.push_str("...");
            return;
        }
        match self {
            Val::Null => out.push_str("null"),
            Val::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Val::Int(i) => {
                let _ = write!(out, "{i}");
            }
            Val::Double(d) => out.push_str(&java_double(*d)),
            Val::Str(s) => out.push_str(s),
            Val::List(l) => {
                let Some(list) = l.try_lock() else {
                    out.push_str("(this Collection)");
                    return;
                };
                if list.json {
                    out.push_str(&self_to_json_locked(&list.items, depth).to_string());
                    return;
                }
                out.push('[');
                for (i, v) in list.items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    v.write_to(out, depth + 1);
                }
                out.push(']');
            }
            Val::Map(m) => {
                let Some(map) = m.try_lock() else {
                    out.push_str("(this Map)");
                    return;
                };
                out.push('{');
                for (i, (k, v)) in map.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    out.push_str(k);
                    out.push('=');
                    v.write_to(out, depth + 1);
                }
                out.push('}');
            }
        }
    }

    /// The value as JSON (for `$input.json` and conversions out).
    pub fn to_json(&self) -> Json {
        self.to_json_depth(0)
    }

    fn to_json_depth(&self, depth: usize) -> Json {
        if depth > 64 {
            return Json::Null;
        }
        match self {
            Val::Null => Json::Null,
            Val::Bool(b) => Json::Bool(*b),
            Val::Int(i) => Json::from(*i),
            Val::Double(d) => serde_json::Number::from_f64(*d).map(Json::Number).unwrap_or(Json::Null),
            Val::Str(s) => Json::String(s.to_string()),
            Val::List(l) => match l.try_lock() {
                Some(list) => self_to_json_locked(&list.items, depth),
                None => Json::Null,
            },
            Val::Map(m) => match m.try_lock() {
                Some(map) => Json::Object(map.iter().map(|(k, v)| (k.clone(), v.to_json_depth(depth + 1))).collect()),
                None => Json::Null,
            },
        }
    }

    /// A value from JSON: objects become maps, arrays JSON lists.
    pub fn from_json(json: &Json) -> Val {
        match json {
            Json::Null => Val::Null,
            Json::Bool(b) => Val::Bool(*b),
            Json::Number(n) => match n.as_i64() {
                Some(i) => Val::Int(i),
                None => Val::Double(n.as_f64().unwrap_or(0.0)),
            },
            Json::String(s) => Val::str(s.as_str()),
            Json::Array(a) => Val::new_list(a.iter().map(Val::from_json).collect(), true),
            Json::Object(o) => Val::new_map(o.iter().map(|(k, v)| (k.clone(), Val::from_json(v))).collect()),
        }
    }
}

fn self_to_json_locked(items: &[Val], depth: usize) -> Json {
    Json::Array(items.iter().map(|v| v.to_json_depth(depth + 1)).collect())
}

/// Java's `Double.toString`: `1.5`, `3.0`, `1.0E7`, `1.0E-4`.
pub fn java_double(d: f64) -> String {
    if d.is_nan() {
        return "NaN".into();
    }
    if d.is_infinite() {
        return if d > 0.0 { "Infinity".into() } else { "-Infinity".into() };
    }
    if d == 0.0 {
        return if d.is_sign_negative() { "-0.0".into() } else { "0.0".into() };
    }
    let abs = d.abs();
    if (1e-3..1e7).contains(&abs) {
        let s = format!("{d}");
        if s.contains('.') { s } else { format!("{s}.0") }
    } else {
        // Shortest round-trip digits in scientific form: 1e7 → 1.0E7.
        let s = format!("{d:e}");
        let (mantissa, exponent) = s.split_once('e').unwrap_or((&s, "0"));
        let mantissa = if mantissa.contains('.') { mantissa.to_string() } else { format!("{mantissa}.0") };
        format!("{mantissa}E{exponent}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_print_as_java() {
        assert_eq!(java_double(1.5), "1.5");
        assert_eq!(java_double(3.0), "3.0");
        assert_eq!(java_double(4.5), "4.5");
        assert_eq!(java_double(1e7), "1.0E7");
        assert_eq!(java_double(1.25e-4), "1.25E-4");
        assert_eq!(java_double(0.001), "0.001");
        assert_eq!(java_double(-2.0), "-2.0");
    }

    #[test]
    fn maps_and_lists_print_as_api_gateway_does() {
        let json: Json = serde_json::from_str(r#"{"foo":"bar","n":[{"a":1}],"m":{"x":1.0}}"#).unwrap();
        assert_eq!(Val::from_json(&json).render(), r#"{foo=bar, n=[{"a":1}], m={x=1.0}}"#);
        let list = Val::new_list(vec![Val::Int(1), Val::str("a")], false);
        assert_eq!(list.render(), "[1, a]");
    }
}
