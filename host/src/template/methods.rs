//! The Java methods templates call on strings, lists, maps and numbers, with
//! Java's semantics (`substring`, `indexOf`, `replaceAll` with a regex,
//! `split`, `put` returning the previous value …), and property access
//! (`$map.key` is `get("key")`, `$x.empty` is `isEmpty()`).

use std::sync::Arc;

use super::value::Val;

/// A map key from any value (maps are keyed by strings).
pub fn key_string(v: &Val) -> String {
    match v {
        Val::Str(s) => s.to_string(),
        Val::Null => String::new(),
        other => other.render(),
    }
}

/// `$target.name` without parentheses.
pub fn property(target: &Val, name: &str) -> Option<Val> {
    match target {
        Val::Map(m) => {
            let map = m.lock();
            match map.get(name) {
                Some(v) => Some(v.clone()),
                None if name == "empty" => Some(Val::Bool(map.is_empty())),
                None => None,
            }
        }
        Val::List(l) if name == "empty" => Some(Val::Bool(l.lock().items.is_empty())),
        Val::Str(s) if name == "empty" => Some(Val::Bool(s.is_empty())),
        Val::Str(s) if name == "bytes" => {
            Some(Val::new_list(s.bytes().map(|b| Val::Int(b as i8 as i64)).collect(), false))
        }
        _ => None,
    }
}

/// `$target[index]`.
pub fn index(target: &Val, key: &Val) -> Option<Val> {
    match target {
        Val::Map(m) => m.lock().get(&key_string(key)).cloned(),
        Val::List(l) => {
            let list = l.lock();
            let i = match key {
                Val::Int(i) => *i,
                Val::Str(s) => s.trim().parse().ok()?,
                _ => return None,
            };
            // Negative indexes count from the end (Velocity 1.7 does not; AWS's examples never use them).
            let len = list.items.len() as i64;
            let i = if i < 0 { len + i } else { i };
            list.items.get(usize::try_from(i).ok()?).cloned()
        }
        _ => None,
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

/// Java's regex dialect, close enough: `$1` group references in replacements.
fn regex(pattern: &str) -> Result<regex::Regex, String> {
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
            let mut list = l.lock();
            match (name, args.len()) {
                ("size", 0) => Some(Val::Int(list.items.len() as i64)),
                ("isEmpty", 0) => Some(Val::Bool(list.items.is_empty())),
                ("get", 1) => {
                    drop(list);
                    return Ok(index(target, &args[0]));
                }
                ("contains", 1) => Some(Val::Bool(list.items.contains(&args[0]))),
                ("indexOf", 1) => {
                    Some(Val::Int(list.items.iter().position(|v| v == &args[0]).map_or(-1, |i| i as i64)))
                }
                ("add", 1) => {
                    list.items.push(args[0].clone());
                    Some(Val::Bool(true))
                }
                ("add", 2) => {
                    let i = arg_int(args, 0).ok_or("add(index, value) needs an integer index")?;
                    if i < 0 || i as usize > list.items.len() {
                        return Err(format!("index {i} out of bounds"));
                    }
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
                    v => match list.items.iter().position(|x| x == v) {
                        Some(i) => {
                            list.items.remove(i);
                            Some(Val::Bool(true))
                        }
                        None => Some(Val::Bool(false)),
                    },
                },
                ("addAll", 1) => {
                    let extra = match &args[0] {
                        Val::List(other) if Arc::ptr_eq(other, l) => list.items.clone(),
                        Val::List(other) => other.lock().items.clone(),
                        _ => return Ok(None),
                    };
                    list.items.extend(extra);
                    Some(Val::Bool(true))
                }
                ("clear", 0) => {
                    list.items.clear();
                    Some(Val::Null)
                }
                _ => None,
            }
        }
        Val::Map(m) => {
            let mut map = m.lock();
            match (name, args.len()) {
                ("size", 0) => Some(Val::Int(map.len() as i64)),
                ("isEmpty", 0) => Some(Val::Bool(map.is_empty())),
                ("get", 1) => map.get(&key_string(&args[0])).cloned(),
                ("containsKey", 1) => Some(Val::Bool(map.contains_key(&key_string(&args[0])))),
                ("containsValue", 1) => Some(Val::Bool(map.values().any(|v| v == &args[0]))),
                ("put", 2) => map.insert(key_string(&args[0]), args[1].clone()),
                ("remove", 1) => map.shift_remove(&key_string(&args[0])),
                ("keySet", 0) => Some(Val::new_list(map.keys().map(|k| Val::str(k.as_str())).collect(), false)),
                ("values", 0) => Some(Val::new_list(map.values().cloned().collect(), false)),
                ("entrySet", 0) => Some(Val::new_list(
                    map.iter()
                        .map(|(k, v)| {
                            let mut e = indexmap::IndexMap::new();
                            e.insert("key".to_string(), Val::str(k.as_str()));
                            e.insert("value".to_string(), v.clone());
                            Val::new_map(e)
                        })
                        .collect(),
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
        Val::Int(i) => match name {
            "intValue" | "longValue" => Some(Val::Int(*i)),
            "doubleValue" | "floatValue" => Some(Val::Double(*i as f64)),
            _ => None,
        },
        Val::Double(d) => match name {
            "intValue" | "longValue" => Some(Val::Int(*d as i64)),
            "doubleValue" | "floatValue" => Some(Val::Double(*d)),
            _ => None,
        },
        Val::Bool(b) => match name {
            "booleanValue" => Some(Val::Bool(*b)),
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
        ("concat", 1) => Some(Val::str(format!("{s}{}", a0()))),
        ("indexOf", 1) => Some(Val::Int(s.find(a0().as_str()).map_or(-1, |b| s[..b].chars().count() as i64))),
        ("lastIndexOf", 1) => Some(Val::Int(s.rfind(a0().as_str()).map_or(-1, |b| s[..b].chars().count() as i64))),
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
        ("replace", 2) => Some(Val::str(s.replace(a0().as_str(), &arg_str(args, 1).unwrap_or_default()))),
        ("replaceAll", 2) => {
            let re = regex(&a0())?;
            Some(Val::str(
                re.replace_all(s, java_replacement(&arg_str(args, 1).unwrap_or_default()).as_str()).into_owned(),
            ))
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
