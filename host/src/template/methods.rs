//! The Java methods templates call on strings, lists, maps and numbers, with
//! Java's semantics (`substring`, `indexOf`, `replaceAll` with a regex,
//! `split`, `put` returning the previous value …), and property access
//! (`$map.key` is `get("key")`, `$x.empty` is `isEmpty()`).

use std::sync::Arc;

use super::value::Val;

/// A map key from any value (maps are keyed by strings).
pub fn key_string(v: &Val) -> std::borrow::Cow<'_, str> {
    match v {
        Val::Str(s) => std::borrow::Cow::Borrowed(s),
        Val::Null => std::borrow::Cow::Borrowed(""),
        other => std::borrow::Cow::Owned(other.render()),
    }
}

/// `$target.name` without parentheses, by Velocity's look-up rules: a
/// map's `get("name")` (and nothing else: `$map.empty` is a key), an
/// entry's key or value, `isEmpty()` for `empty` on lists and strings,
/// `getBytes()` for `bytes` on strings; anything else is undefined.
pub fn property(target: &Val, name: &str) -> Option<Val> {
    match target {
        Val::Map(m) => m.lock().get(name).cloned(),
        Val::Loop(l) => l.lock().property(name),
        Val::Entry(e) => match name {
            "key" => Some(Val::str(e.0.as_str())),
            "value" => Some(e.1.clone()),
            _ => None,
        },
        Val::List(l) if name == "empty" => Some(Val::Bool(l.lock().items.is_empty())),
        Val::Str(s) if name == "empty" => Some(Val::Bool(s.is_empty())),
        Val::Str(s) if name == "bytes" => {
            Some(Val::new_list(s.bytes().map(|b| Val::Int(b as i8 as i64)).collect(), false))
        }
        _ => None,
    }
}

/// `$target[index]`: a map's `get`, a list's element (negative indexes
/// count from the end, as Velocity 1.7 does); out of bounds is an error.
pub fn index(target: &Val, key: &Val) -> Result<Option<Val>, String> {
    match target {
        Val::Map(m) => Ok(m.lock().get(key_string(key).as_ref()).cloned()),
        Val::List(l) => {
            let list = l.lock();
            let i = match key {
                Val::Int(i) => *i,
                _ => return Ok(None),
            };
            let len = list.items.len() as i64;
            let at = if i < 0 { len + i } else { i };
            match usize::try_from(at).ok().and_then(|at| list.items.get(at)) {
                Some(v) => Ok(Some(v.clone())),
                None => Err(format!("Index {i} out of bounds for length {len}")),
            }
        }
        _ => Ok(None),
    }
}

/// `list.get(i)`: Java's, without negative indexes.
fn list_get(items: &[Val], i: i64) -> Result<Option<Val>, String> {
    match usize::try_from(i).ok().and_then(|at| items.get(at)) {
        Some(v) => Ok(Some(v.clone())),
        None => Err(format!("Index {i} out of bounds for length {}", items.len())),
    }
}

fn arg_str(args: &[Val], i: usize) -> Option<String> {
    args.get(i).map(|v| match v {
        Val::Str(s) => s.to_string(),
        Val::Null => String::new(),
        other => other.render(),
    })
}

fn arg_int(args: &[Val], i: usize) -> Option<i64> {
    match args.get(i)? {
        Val::Int(n) => Some(*n),
        Val::Double(d) => Some(*d as i64),
        Val::Str(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Most items a list may hold, and most bytes a string method may build
/// (templates are bounded; a doubling `addAll` or `replace` must not be).
pub const MAX_ITEMS: usize = 1_000_000;
pub const MAX_STRING: usize = 10 * 1024 * 1024;

fn check_items(n: usize) -> Result<(), String> {
    if n > MAX_ITEMS { Err(format!("a list would hold more than {MAX_ITEMS} items")) } else { Ok(()) }
}

fn check_string(n: usize) -> Result<(), String> {
    if n > MAX_STRING { Err(format!("a string would be longer than {MAX_STRING} bytes")) } else { Ok(()) }
}

thread_local! {
    /// Compiled patterns: a template calls `replaceAll` in loops.
    static REGEX_CACHE: std::cell::RefCell<std::collections::HashMap<String, regex::Regex>> =
        std::cell::RefCell::new(std::collections::HashMap::new());
}

/// Java's regex dialect, close enough: `$1` group references in replacements.
fn regex(pattern: &str) -> Result<regex::Regex, String> {
    if let Some(re) = REGEX_CACHE.with(|c| c.borrow().get(pattern).cloned()) {
        return Ok(re);
    }
    let re = compile(pattern)?;
    REGEX_CACHE.with(|c| {
        let mut cache = c.borrow_mut();
        if cache.len() >= 64 {
            cache.clear();
        }
        cache.insert(pattern.to_string(), re.clone());
    });
    Ok(re)
}

fn compile(pattern: &str) -> Result<regex::Regex, String> {
    regex::Regex::new(pattern).map_err(|e| format!("invalid regular expression {pattern:?}: {e}"))
}

fn java_replacement(replacement: &str) -> String {
    // Java writes groups as `$1`; the regex crate reads `$1x` as a group named
    // "1x", so make groups explicit.
    let mut out = String::new();
    let mut chars = replacement.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(n) = chars.next() {
                    if n == '$' {
                        out.push_str("$$");
                    } else {
                        out.push(n);
                    }
                }
            }
            '$' => {
                let mut digits = String::new();
                while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                    digits.push(*d);
                    chars.next();
                }
                if digits.is_empty() {
                    out.push_str("$$");
                } else {
                    out.push_str(&format!("${{{digits}}}"));
                }
            }
            other => out.push(other),
        }
    }
    out
}

/// Character index → byte range helpers (Java indexes are UTF-16 units;
/// these use characters, the same for the text templates handle).
fn char_slice(s: &str, start: i64, end: i64) -> Option<String> {
    let len = s.chars().count() as i64;
    if start < 0 || end > len || start > end {
        return None;
    }
    Some(s.chars().skip(start as usize).take((end - start) as usize).collect())
}

/// Java's `Integer.parseInt` (`bits` 32) / `Long.parseLong` (64): an
/// optional sign and decimal digits, nothing else.
fn java_parse_int(s: &str, bits: u32) -> Option<i64> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let v: i64 = s.parse().ok()?;
    (bits == 64 || i32::try_from(v).is_ok()).then_some(v)
}

/// Java's `Double.parseDouble` (surrounding whitespace allowed).
fn java_parse_double(s: &str) -> Option<f64> {
    let t = s.trim_matches(|c: char| c <= ' ');
    let t = t.strip_suffix(['d', 'D', 'f', 'F']).unwrap_or(t);
    if t.contains(|c: char| c.is_ascii_alphabetic() && c != 'e' && c != 'E')
        && !matches!(t, "NaN" | "Infinity" | "-Infinity" | "+Infinity")
    {
        return None;
    }
    t.parse().ok()
}

/// Calls `$target.name(args)`. `Ok(None)`: no such method (renders as nothing).
pub fn call(target: &Val, name: &str, args: &[Val]) -> Result<Option<Val>, String> {
    // Methods every object has.
    match (name, args.len()) {
        ("toString", 0) => return Ok(Some(Val::str(target.render()))),
        ("equals", 1) => {
            let same_type = std::mem::discriminant(target) == std::mem::discriminant(&args[0]);
            return Ok(Some(Val::Bool(same_type && target == &args[0])));
        }
        _ => {}
    }
    Ok(match target {
        Val::Str(s) => string_method(s, name, args)?,
        Val::List(l) => {
            // Comparisons may lock other collections (or this one): compare a copy.
            let by_value = matches!((name, args.len()), ("contains" | "indexOf" | "lastIndexOf", 1))
                || ((name, args.len()) == ("remove", 1) && !matches!(args[0], Val::Int(_)));
            if by_value {
                let items = l.lock().items.clone();
                let position = |rev: bool| {
                    let mut it = items.iter().enumerate();
                    let found = if rev { it.rfind(|(_, v)| *v == &args[0]) } else { it.find(|(_, v)| *v == &args[0]) };
                    found.map(|(i, _)| i)
                };
                return Ok(match name {
                    "contains" => Some(Val::Bool(position(false).is_some())),
                    "indexOf" => Some(Val::Int(position(false).map_or(-1, |i| i as i64))),
                    "lastIndexOf" => Some(Val::Int(position(true).map_or(-1, |i| i as i64))),
                    _ => match position(false) {
                        Some(i) => {
                            let mut list = l.lock();
                            if i < list.items.len() {
                                list.items.remove(i);
                            }
                            Some(Val::Bool(true))
                        }
                        None => Some(Val::Bool(false)),
                    },
                });
            }
            let mut list = l.lock();
            match (name, args.len()) {
                ("size", 0) => Some(Val::Int(list.items.len() as i64)),
                ("isEmpty", 0) => Some(Val::Bool(list.items.is_empty())),
                ("get", 1) => match &args[0] {
                    Val::Int(i) => list_get(&list.items, *i)?,
                    _ => None,
                },
                ("add", 1) => {
                    check_items(list.items.len() + 1)?;
                    list.items.push(args[0].clone());
                    Some(Val::Bool(true))
                }
                ("add", 2) => {
                    let i = arg_int(args, 0).ok_or("add(index, value) needs an integer index")?;
                    if i < 0 || i as usize > list.items.len() {
                        return Err(format!("index {i} out of bounds"));
                    }
                    check_items(list.items.len() + 1)?;
                    list.items.insert(i as usize, args[1].clone());
                    Some(Val::Null)
                }
                ("set", 2) => {
                    let i = arg_int(args, 0).ok_or("set(index, value) needs an integer index")?;
                    let slot = usize::try_from(i)
                        .ok()
                        .and_then(|i| list.items.get_mut(i))
                        .ok_or(format!("index {i} out of bounds"))?;
                    Some(std::mem::replace(slot, args[1].clone()))
                }
                ("remove", 1) => match &args[0] {
                    Val::Int(i) => {
                        let i = usize::try_from(*i)
                            .ok()
                            .filter(|i| *i < list.items.len())
                            .ok_or(format!("index {i} out of bounds"))?;
                        Some(list.items.remove(i))
                    }
                    _ => None,
                },
                ("addAll", 1) => {
                    let extra = match &args[0] {
                        Val::List(other) if Arc::ptr_eq(other, l) => list.items.clone(),
                        Val::List(other) => other.lock().items.clone(),
                        _ => return Ok(None),
                    };
                    check_items(list.items.len() + extra.len())?;
                    list.items.extend(extra);
                    Some(Val::Bool(true))
                }
                ("subList", 2) => {
                    let (from, to) = (arg_int(args, 0).unwrap_or(-1), arg_int(args, 1).unwrap_or(-1));
                    let len = list.items.len() as i64;
                    if from < 0 || to > len || from > to {
                        return Err(format!(
                            "java.lang.IndexOutOfBoundsException: fromIndex {from}, toIndex {to}, size {len}"
                        ));
                    }
                    // A copy (Java's is a view); it prints as Java's `[a, b]`.
                    Some(Val::new_list(list.items[from as usize..to as usize].to_vec(), false))
                }
                ("clear", 0) => {
                    list.items.clear();
                    Some(Val::Null)
                }
                _ => None,
            }
        }
        Val::Map(m) => {
            if (name, args.len()) == ("containsValue", 1) {
                let values: Vec<Val> = m.lock().values().cloned().collect();
                return Ok(Some(Val::Bool(values.iter().any(|v| v == &args[0]))));
            }
            let mut map = m.lock();
            match (name, args.len()) {
                ("size", 0) => Some(Val::Int(map.len() as i64)),
                ("isEmpty", 0) => Some(Val::Bool(map.is_empty())),
                ("get", 1) => map.get(key_string(&args[0]).as_ref()).cloned(),
                ("containsKey", 1) => Some(Val::Bool(map.contains_key(key_string(&args[0]).as_ref()))),
                ("put", 2) => map.insert(key_string(&args[0]).into_owned(), args[1].clone()),
                ("remove", 1) => map.shift_remove(key_string(&args[0]).as_ref()),
                ("keySet", 0) => Some(Val::new_list(map.keys().map(|k| Val::str(k.as_str())).collect(), false)),
                ("values", 0) => Some(Val::new_list(map.values().cloned().collect(), false)),
                ("entrySet", 0) => Some(Val::new_list(
                    map.iter().map(|(k, v)| Val::Entry(Arc::new((k.clone(), v.clone())))).collect(),
                    false,
                )),
                ("putAll", 1) => {
                    let extra = match &args[0] {
                        Val::Map(other) if Arc::ptr_eq(other, m) => return Ok(Some(Val::Null)),
                        Val::Map(other) => other.lock().clone(),
                        _ => return Ok(None),
                    };
                    map.extend(extra);
                    Some(Val::Null)
                }
                ("clear", 0) => {
                    map.clear();
                    Some(Val::Null)
                }
                _ => None,
            }
        }
        // Static methods called through an instance (`#set($Integer = 0)`,
        // `$Integer.parseInt($s)`), as Velocity allows.
        Val::Int(_) | Val::Double(_)
            if args.len() == 1 && matches!(name, "parseInt" | "parseLong" | "parseDouble" | "valueOf") =>
        {
            let text = match &args[0] {
                Val::Str(s) => s.to_string(),
                other => other.render(),
            };
            let parsed = if name == "parseDouble" || (name == "valueOf" && matches!(target, Val::Double(_))) {
                java_parse_double(&text).map(Val::Double)
            } else {
                java_parse_int(
                    &text,
                    if name == "parseInt"
                        || matches!(target, Val::Int(i) if i32::try_from(*i).is_ok()) && name == "valueOf"
                    {
                        32
                    } else {
                        64
                    },
                )
                .map(Val::Int)
            };
            Some(parsed.ok_or_else(|| format!("java.lang.NumberFormatException: For input string: \"{text}\""))?)
        }
        Val::Int(i) => match (name, args.len()) {
            ("intValue" | "longValue", 0) => Some(Val::Int(*i)),
            ("doubleValue" | "floatValue", 0) => Some(Val::Double(*i as f64)),
            ("compareTo", 1) => match &args[0] {
                Val::Int(j) => Some(Val::Int(i.cmp(j) as i64)),
                _ => None,
            },
            _ => None,
        },
        Val::Double(d) => match (name, args.len()) {
            ("intValue" | "longValue", 0) => Some(Val::Int(*d as i64)),
            ("doubleValue" | "floatValue", 0) => Some(Val::Double(*d)),
            _ => None,
        },
        Val::Bool(b) => match name {
            "booleanValue" => Some(Val::Bool(*b)),
            _ => None,
        },
        Val::Loop(l) => match (name, args.len()) {
            ("getIndex", 0) => l.lock().property("index"),
            ("getCount", 0) => l.lock().property("count"),
            ("hasNext", 0) => l.lock().property("hasNext"),
            ("isFirst", 0) => l.lock().property("first"),
            ("isLast", 0) => l.lock().property("last"),
            _ => None,
        },
        Val::Entry(e) => match name {
            "getKey" => Some(Val::str(e.0.as_str())),
            "getValue" => Some(e.1.clone()),
            _ => None,
        },
        Val::Null => None,
    })
}

fn string_method(s: &Arc<str>, name: &str, args: &[Val]) -> Result<Option<Val>, String> {
    let a0 = || arg_str(args, 0).unwrap_or_default();
    Ok(match (name, args.len()) {
        ("length", 0) => Some(Val::Int(s.encode_utf16().count() as i64)),
        ("isEmpty", 0) => Some(Val::Bool(s.is_empty())),
        ("trim", 0) => Some(Val::str(s.trim_matches(|c: char| c <= ' '))),
        ("toLowerCase", 0) => Some(Val::str(s.to_lowercase())),
        ("toUpperCase", 0) => Some(Val::str(s.to_uppercase())),
        ("contains", 1) => Some(Val::Bool(s.contains(a0().as_str()))),
        ("startsWith", 1) => Some(Val::Bool(s.starts_with(a0().as_str()))),
        ("endsWith", 1) => Some(Val::Bool(s.ends_with(a0().as_str()))),
        ("equalsIgnoreCase", 1) => Some(Val::Bool(s.to_lowercase() == a0().to_lowercase())),
        ("concat", 1) => {
            let other = a0();
            check_string(s.len() + other.len())?;
            Some(Val::str(format!("{s}{other}")))
        }
        ("indexOf", 1) => Some(Val::Int(s.find(a0().as_str()).map_or(-1, |b| s[..b].chars().count() as i64))),
        ("lastIndexOf", 1) => Some(Val::Int(s.rfind(a0().as_str()).map_or(-1, |b| s[..b].chars().count() as i64))),
        ("indexOf", 2) => {
            let from = arg_int(args, 1).unwrap_or(0).max(0) as usize;
            let start = s.char_indices().nth(from).map_or(s.len(), |(b, _)| b);
            Some(Val::Int(s[start..].find(a0().as_str()).map_or(-1, |b| s[..start + b].chars().count() as i64)))
        }
        ("lastIndexOf", 2) => {
            let from = arg_int(args, 1).unwrap_or(0);
            if from < 0 {
                return Ok(Some(Val::Int(-1)));
            }
            let needle = a0();
            let end = s.char_indices().nth(from as usize).map_or(s.len(), |(b, _)| b);
            let limit = (end + needle.len()).min(s.len());
            let limit = (0..=limit).rev().find(|i| s.is_char_boundary(*i)).unwrap_or(0);
            Some(Val::Int(s[..limit].rfind(needle.as_str()).map_or(-1, |b| s[..b].chars().count() as i64)))
        }
        ("charAt", 1) => {
            let i = arg_int(args, 0).ok_or("charAt needs an integer")?;
            let c = usize::try_from(i)
                .ok()
                .and_then(|i| s.chars().nth(i))
                .ok_or(format!("String index out of range: {i}"))?;
            Some(Val::str(c.to_string()))
        }
        ("substring", 1 | 2) => {
            let len = s.chars().count() as i64;
            let start = arg_int(args, 0).ok_or("substring needs integers")?;
            let end = if args.len() == 2 { arg_int(args, 1).ok_or("substring needs integers")? } else { len };
            let out = char_slice(s, start, end)
                .ok_or(format!("String index out of range: begin {start}, end {end}, length {len}"))?;
            Some(Val::str(out))
        }
        ("replace", 2) => {
            let (from, to) = (a0(), arg_str(args, 1).unwrap_or_default());
            // Every position may match an empty `from`.
            let matches = if from.is_empty() { s.chars().count() + 1 } else { s.matches(from.as_str()).count() };
            check_string(s.len() + matches.saturating_mul(to.len()))?;
            Some(Val::str(s.replace(from.as_str(), &to)))
        }
        ("replaceAll", 2) => {
            let re = regex(&a0())?;
            let replacement = arg_str(args, 1).unwrap_or_default();
            // A replacement can repeat the match (`$0$0`): bound the worst case.
            let matches = re.find_iter(s).count();
            let worst = replacement.len().saturating_mul(s.len().max(1));
            check_string(s.len().saturating_add(matches.saturating_mul(worst)))?;
            Some(Val::str(re.replace_all(s, java_replacement(&replacement).as_str()).into_owned()))
        }
        ("replaceFirst", 2) => {
            let re = regex(&a0())?;
            Some(Val::str(re.replace(s, java_replacement(&arg_str(args, 1).unwrap_or_default()).as_str()).into_owned()))
        }
        ("matches", 1) => {
            let re = regex(&format!("^(?:{})$", a0()))?;
            Some(Val::Bool(re.is_match(s)))
        }
        ("split", 1 | 2) => {
            let re = regex(&a0())?;
            let limit = if args.len() == 2 { arg_int(args, 1).unwrap_or(0) } else { 0 };
            let mut parts: Vec<&str> =
                if limit > 0 { re.splitn(s, limit as usize).collect() } else { re.split(s).collect() };
            // Java never starts with an empty string from a zero-width match at 0.
            if parts.first().is_some_and(|p| p.is_empty()) && re.find(s).is_some_and(|m| m.start() == 0 && m.end() == 0)
            {
                parts.remove(0);
            }
            check_items(parts.len())?;
            if limit == 0 {
                // Java drops trailing empty strings.
                while parts.last().is_some_and(|p| p.is_empty()) {
                    parts.pop();
                }
            }
            Some(Val::new_list(parts.into_iter().map(Val::str).collect(), false))
        }
        ("compareTo", 1) => Some(Val::Int(match s.as_ref().cmp(a0().as_str()) {
            std::cmp::Ordering::Less => -1,
            std::cmp::Ordering::Equal => 0,
            std::cmp::Ordering::Greater => 1,
        })),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(x: &str) -> Val {
        Val::str(x)
    }

    fn call_s(target: &str, name: &str, args: &[Val]) -> String {
        call(&s(target), name, args).unwrap().unwrap().render()
    }

    #[test]
    fn string_methods_follow_java() {
        assert_eq!(call_s("hello", "substring", &[Val::Int(1), Val::Int(3)]), "el");
        assert_eq!(call_s("hello", "indexOf", &[s("l")]), "2");
        assert_eq!(call_s("a-b-c", "replaceAll", &[s("-"), s("+")]), "a+b+c");
        assert_eq!(call_s("a1b22", "replaceAll", &[s("([0-9]+)"), s("<$1>")]), "a<1>b<22>");
        assert_eq!(call_s("a,b,,", "split", &[s(",")]), "[a, b]");
        assert_eq!(call_s("  x ", "trim", &[]), "x");
        assert_eq!(call_s("abc", "matches", &[s("[a-c]+")]), "true");
        assert!(call(&s("abc"), "substring", &[Val::Int(5)]).is_err());
        assert!(call(&s("abc"), "nope", &[]).unwrap().is_none());
    }

    #[test]
    fn collections_mutate_in_place() {
        let m = Val::new_map(Default::default());
        assert!(call(&m, "put", &[s("a"), Val::Int(1)]).unwrap().is_none());
        assert_eq!(call(&m, "put", &[s("a"), Val::Int(2)]).unwrap(), Some(Val::Int(1)));
        assert_eq!(m.render(), "{a=2}");
        let l = Val::new_list(vec![], false);
        call(&l, "add", &[s("x")]).unwrap();
        assert_eq!(call(&l, "size", &[]).unwrap(), Some(Val::Int(1)));
        assert_eq!(property(&l, "empty"), Some(Val::Bool(false)));
    }
}
