//! Runtime values with Java's semantics, as Velocity sees API Gateway's
//! objects: integers (Java's Integer/Long, held as `i64`) and doubles with
//! Java's arithmetic and printing, strings, booleans, null, lists, ordered
//! maps (shared and mutable, as Java collections are) and map entries.
//!
//! Printing follows what API Gateway prints: a map as Java's `{k=v, k2=v2}`,
//! a list made in the template as Java's `[a, b]`, a list that came from
//! JSON (`$input.path`, `$util.parseJson`) as compact JSON, a double as
//! Java's `Double.toString` (`1.5`, `3.0`, `1.0E7`).

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

/// Deepest nesting printed or converted (a list can contain itself).
const MAX_PRINT_DEPTH: usize = 64;
/// Printing stops past this many bytes (a list of itself twice, nested, is
/// exponentially long); the renderer's output limit then fails the render.
pub const MAX_PRINT: usize = 10 * 1024 * 1024 + 1;
/// Most values one comparison or conversion visits.
const MAX_VISITS: usize = 1_000_000;

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
    /// A `Map.Entry` from `entrySet()`: `.key`, `.value`, prints `k=v`.
    Entry(Arc<(String, Val)>),
    /// `$foreach`: the loop's position (`index`, `count`, `hasNext`, `first`, `last`).
    Loop(Arc<Mutex<LoopState>>),
}

/// Where a `#foreach` is: the 0-based index of the current item, of `total`.
#[derive(Debug, Default, Clone, Copy)]
pub struct LoopState {
    pub index: usize,
    pub total: usize,
}

impl LoopState {
    /// A property of `$foreach`.
    pub fn property(&self, name: &str) -> Option<Val> {
        Some(match name {
            "index" => Val::Int(self.index as i64),
            "count" => Val::Int(self.index as i64 + 1),
            "hasNext" => Val::Bool(self.index + 1 < self.total),
            "first" => Val::Bool(self.index == 0),
            "last" => Val::Bool(self.index + 1 == self.total),
            _ => return None,
        })
    }
}

impl PartialEq for Val {
    /// Java's `equals` (numbers of different types compare by value).
    fn eq(&self, other: &Val) -> bool {
        eq_depth(self, other, 0, &mut 0)
    }
}

/// Equality that gives up (false) on structures nested too deeply or
/// containing themselves, and never waits for a lock.
fn eq_depth(a: &Val, b: &Val, depth: usize, visits: &mut usize) -> bool {
    *visits += 1;
    if depth > MAX_PRINT_DEPTH || *visits > MAX_VISITS {
        return false;
    }
    match (a, b) {
        (Val::Null, Val::Null) => true,
        (Val::Bool(a), Val::Bool(b)) => a == b,
        (Val::Int(a), Val::Int(b)) => a == b,
        (Val::Double(a), Val::Double(b)) => a == b,
        (Val::Int(a), Val::Double(b)) | (Val::Double(b), Val::Int(a)) => (*a as f64) == *b,
        (Val::Str(a), Val::Str(b)) => a == b,
        (Val::List(x), Val::List(y)) => {
            if Arc::ptr_eq(x, y) {
                return true;
            }
            let (Some(xs), Some(ys)) = (x.try_lock().map(|l| l.items.clone()), y.try_lock().map(|l| l.items.clone()))
            else {
                return false;
            };
            xs.len() == ys.len() && xs.iter().zip(&ys).all(|(a, b)| eq_depth(a, b, depth + 1, visits))
        }
        (Val::Map(x), Val::Map(y)) => {
            if Arc::ptr_eq(x, y) {
                return true;
            }
            let (Some(xs), Some(ys)) = (x.try_lock().map(|m| m.clone()), y.try_lock().map(|m| m.clone())) else {
                return false;
            };
            xs.len() == ys.len() && xs.iter().all(|(k, v)| ys.get(k).is_some_and(|w| eq_depth(v, w, depth + 1, visits)))
        }
        (Val::Entry(x), Val::Entry(y)) => x.0 == y.0 && eq_depth(&x.1, &y.1, depth + 1, visits),
        (Val::Loop(x), Val::Loop(y)) => Arc::ptr_eq(x, y),
        _ => false,
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

    /// Velocity 1.7's truth: null and `false` are false, everything else
    /// true (an empty string, an empty list and 0 too).
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

    /// Java's `toString()`, as a template renders the value (null as `null`;
    /// the renderer prints a null reference as nothing).
    pub fn render(&self) -> String {
        let mut out = String::new();
        self.write_to(&mut out);
        out
    }

    /// Appends Java's `toString()` to `out`.
    pub fn write_to(&self, out: &mut String) {
        self.write_depth(out, 0);
    }

    fn write_depth(&self, out: &mut String, depth: usize) {
        if out.len() > MAX_PRINT {
            return;
        }
        if depth > MAX_PRINT_DEPTH {
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
                    write_json_items(&list.items, out, depth);
                    return;
                }
                out.push('[');
                for (i, v) in list.items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    v.write_depth(out, depth + 1);
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
                    v.write_depth(out, depth + 1);
                }
                out.push('}');
            }
            Val::Loop(l) => {
                let s = *l.lock();
                let _ = write!(out, "{{index={}, count={}, hasNext={}}}", s.index, s.index + 1, s.index + 1 < s.total);
            }
            Val::Entry(e) => {
                out.push_str(&e.0);
                out.push('=');
                e.1.write_depth(out, depth + 1);
            }
        }
    }

    /// Compact JSON text, numbers printed as Java prints them (what
    /// `$input.json` and a JSON list's `toString()` give).
    pub fn to_json_text(&self) -> String {
        let mut out = String::new();
        self.write_json(&mut out, 0);
        out
    }

    fn write_json(&self, out: &mut String, depth: usize) {
        if out.len() > MAX_PRINT {
            return;
        }
        if depth > MAX_PRINT_DEPTH {
            out.push_str("null");
            return;
        }
        match self {
            Val::Null => out.push_str("null"),
            Val::Bool(_) | Val::Int(_) | Val::Double(_) => self.write_depth(out, depth),
            Val::Str(s) => quote_json(s, out),
            Val::List(l) => match l.try_lock() {
                Some(list) => write_json_items(&list.items, out, depth),
                None => out.push_str("null"),
            },
            Val::Map(m) => match m.try_lock() {
                Some(map) => {
                    out.push('{');
                    for (i, (k, v)) in map.iter().enumerate() {
                        if i > 0 {
                            out.push(',');
                        }
                        quote_json(k, out);
                        out.push(':');
                        v.write_json(out, depth + 1);
                    }
                    out.push('}');
                }
                None => out.push_str("null"),
            },
            Val::Entry(_) | Val::Loop(_) => quote_json(&self.render(), out),
        }
    }

    /// The value as a `serde_json` value (for reading `$context` back).
    pub fn to_json(&self) -> Json {
        self.to_json_depth(0, &mut 0)
    }

    fn to_json_depth(&self, depth: usize, visits: &mut usize) -> Json {
        *visits += 1;
        if depth > MAX_PRINT_DEPTH || *visits > MAX_VISITS {
            return Json::Null;
        }
        match self {
            Val::Null => Json::Null,
            Val::Bool(b) => Json::Bool(*b),
            Val::Int(i) => Json::from(*i),
            Val::Double(d) => serde_json::Number::from_f64(*d).map(Json::Number).unwrap_or(Json::Null),
            Val::Str(s) => Json::String(s.to_string()),
            Val::List(l) => match l.try_lock() {
                Some(list) => Json::Array(list.items.iter().map(|v| v.to_json_depth(depth + 1, visits)).collect()),
                None => Json::Null,
            },
            Val::Map(m) => match m.try_lock() {
                Some(map) => {
                    Json::Object(map.iter().map(|(k, v)| (k.clone(), v.to_json_depth(depth + 1, visits))).collect())
                }
                None => Json::Null,
            },
            Val::Entry(_) | Val::Loop(_) => Json::String(self.render()),
        }
    }

    /// A value from JSON: objects become maps, arrays JSON lists, integers
    /// `Int`, other numbers `Double`.
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

fn write_json_items(items: &[Val], out: &mut String, depth: usize) {
    out.push('[');
    for (i, v) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        v.write_json(out, depth + 1);
    }
    out.push(']');
}

/// A JSON string literal (`"`, `\`, the usual short escapes, other control
/// characters as `\u00xx`; everything else as is).
pub fn quote_json(s: &str, out: &mut String) {
    out.push('"');
    escape_json(s, out);
    out.push('"');
}

/// What goes between a JSON string literal's quotes.
pub fn escape_json(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
}

/// Java's `Double.toString`: `1.5`, `3.0`, `1.0E7`, `1.0E-4`, `NaN`.
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
        assert_eq!(java_double(1e7), "1.0E7");
        assert_eq!(java_double(1.25e-4), "1.25E-4");
        assert_eq!(java_double(0.001), "0.001");
        assert_eq!(java_double(-2.0), "-2.0");
        assert_eq!(java_double(1.5e8), "1.5E8");
    }

    #[test]
    fn maps_and_lists_print_as_api_gateway_does() {
        let json: Json = serde_json::from_str(r#"{"foo":"bar","n":[{"a":1}],"m":{"x":1.0}}"#).unwrap();
        assert_eq!(Val::from_json(&json).render(), r#"{foo=bar, n=[{"a":1}], m={x=1.0}}"#);
        let list = Val::new_list(vec![Val::Int(1), Val::str("a")], false);
        assert_eq!(list.render(), "[1, a]");
    }
}
