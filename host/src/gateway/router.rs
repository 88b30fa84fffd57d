//! The router: resource paths and methods of one deployment, matched as API
//! Gateway matches them.
//!
//! A segment trie, built once per deployment. Matching walks literal children
//! first, then a `{param}` child, then a greedy `{proxy+}`, backtracking when
//! a branch has no method for the request — so matching is on (path, method)
//! pairs: `OPTIONS /test` reaches `/{proxy+}`'s OPTIONS when `/test` only has
//! POST. On one resource a specific method beats `ANY`; `ANY` covers DELETE,
//! GET, HEAD, OPTIONS, PATCH, POST and PUT; GET does not answer HEAD. A
//! trailing slash is ignored, interior empty segments are kept, and path
//! parameter values are not percent-decoded. Allocation per match: only the
//! parameters.

use smallvec::SmallVec;

/// Methods `ANY` stands for.
const ANY_METHODS: &[&str] = &["DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT"];

/// Why a set of routes is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    #[error("resource {0:?}: paths start with '/'")]
    NotAbsolute(String),
    #[error(
        "resource {path:?}: invalid path part {segment:?} (letters, digits, '_', '-', '.', ',', ':', or a whole {{param}})"
    )]
    InvalidSegment { path: String, segment: String },
    #[error("resource {0:?}: a greedy path parameter {{name+}} must be the last part")]
    GreedyNotLast(String),
    #[error("resource {path:?}: a sibling ({other}) already has a variable path part")]
    ConflictingParam { path: String, other: String },
    #[error("resource {path:?} declares {method} twice")]
    Duplicate { path: String, method: String },
}

/// What matched.
#[derive(Debug)]
pub struct RouteMatch<'a, T> {
    pub value: &'a T,
    pub resource_path: &'a str,
    pub path_params: Vec<(String, String)>,
}

struct Methods<T> {
    resource_path: String,
    exact: Vec<(String, T)>,
    any: Option<T>,
}

impl<T> Methods<T> {
    fn new(resource_path: &str) -> Self {
        Methods { resource_path: resource_path.to_string(), exact: Vec::new(), any: None }
    }

    fn get(&self, method: &str) -> Option<&T> {
        self.exact
            .iter()
            .find(|(m, _)| m == method)
            .map(|(_, v)| v)
            .or_else(|| self.any.as_ref().filter(|_| ANY_METHODS.contains(&method)))
    }

    fn insert(&mut self, method: &str, value: T) -> Result<(), RouteError> {
        let taken = if method == "ANY" { self.any.is_some() } else { self.exact.iter().any(|(m, _)| m == method) };
        if taken {
            return Err(RouteError::Duplicate { path: self.resource_path.clone(), method: method.to_string() });
        }
        if method == "ANY" {
            self.any = Some(value);
        } else {
            self.exact.push((method.to_string(), value));
        }
        Ok(())
    }
}

struct Node<T> {
    methods: Option<Methods<T>>,
    /// A fast hasher: the keys are the API's own segments, looked up by
    /// the request's (a lookup cannot be steered into collisions).
    literals: foldhash::HashMap<String, Node<T>>,
    param: Option<(String, Box<Node<T>>)>,
    greedy: Option<(String, Methods<T>)>,
}

impl<T> Node<T> {
    fn new() -> Self {
        Node { methods: None, literals: foldhash::HashMap::default(), param: None, greedy: None }
    }
}

/// Routes of one deployment.
pub struct Router<T> {
    root: Node<T>,
}

enum Segment<'a> {
    Literal(&'a str),
    Param(&'a str),
    Greedy(&'a str),
}

fn parse_segment<'a>(path: &str, segment: &'a str) -> Result<Segment<'a>, RouteError> {
    let invalid = || RouteError::InvalidSegment { path: path.to_string(), segment: segment.to_string() };
    if let Some(inner) = segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
        let (name, greedy) = match inner.strip_suffix('+') {
            Some(n) => (n, true),
            None => (inner, false),
        };
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.') {
            return Err(invalid());
        }
        return Ok(if greedy { Segment::Greedy(name) } else { Segment::Param(name) });
    }
    let ok = !segment.is_empty() && segment.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-.,:".contains(&b));
    if ok { Ok(Segment::Literal(segment)) } else { Err(invalid()) }
}

impl<T> Router<T> {
    /// Builds the router from (resource path, method or `ANY`, value).
    pub fn new(routes: impl IntoIterator<Item = (String, String, T)>) -> Result<Router<T>, RouteError> {
        let mut root = Node::new();
        for (path, method, value) in routes {
            if !path.starts_with('/') {
                return Err(RouteError::NotAbsolute(path));
            }
            let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
            let mut node = &mut root;
            let mut value = Some(value);
            for (i, raw) in segments.iter().enumerate() {
                match parse_segment(&path, raw)? {
                    Segment::Literal(l) => node = node.literals.entry(l.to_string()).or_insert_with(Node::new),
                    Segment::Param(name) => {
                        if let Some((other, _)) = &node.param
                            && other != name
                        {
                            return Err(RouteError::ConflictingParam {
                                path: path.clone(),
                                other: format!("{{{other}}}"),
                            });
                        }
                        if let Some((other, _)) = &node.greedy {
                            return Err(RouteError::ConflictingParam {
                                path: path.clone(),
                                other: format!("{{{other}+}}"),
                            });
                        }
                        node = &mut node.param.get_or_insert_with(|| (name.to_string(), Box::new(Node::new()))).1;
                    }
                    Segment::Greedy(name) => {
                        if i + 1 != segments.len() {
                            return Err(RouteError::GreedyNotLast(path.clone()));
                        }
                        if let Some((other, _)) = &node.param {
                            return Err(RouteError::ConflictingParam {
                                path: path.clone(),
                                other: format!("{{{other}}}"),
                            });
                        }
                        if let Some((other, _)) = &node.greedy
                            && other != name
                        {
                            return Err(RouteError::ConflictingParam {
                                path: path.clone(),
                                other: format!("{{{other}+}}"),
                            });
                        }
                        let (_, methods) = node.greedy.get_or_insert_with(|| (name.to_string(), Methods::new(&path)));
                        if let Some(v) = value.take() {
                            methods.insert(&method, v)?;
                        }
                        break;
                    }
                }
            }
            if let Some(v) = value {
                node.methods.get_or_insert_with(|| Methods::new(&path)).insert(&method, v)?;
            }
        }
        Ok(Router { root })
    }

    /// Matches a request. `path` is the path after the stage, as received.
    pub fn find(&self, method: &str, path: &str) -> Option<RouteMatch<'_, T>> {
        let trimmed = path.trim_start_matches('/');
        let trimmed = trimmed.strip_suffix('/').unwrap_or(trimmed);
        // On the stack for paths of up to 16 segments.
        let segments: SmallVec<[&str; 16]> =
            if trimmed.is_empty() { SmallVec::new() } else { segments(trimmed).collect() };
        let mut params = Vec::new();
        let (methods, value) = walk(&self.root, &segments, 0, trimmed, method, &mut params)?;
        Some(RouteMatch { value, resource_path: &methods.resource_path, path_params: params })
    }
}

/// Where the first `/` of `path` is. A plain byte scan: on the short paths
/// requests have it costs a fraction of `str::find`'s searcher, and the
/// request path runs it a few times per request.
pub(crate) fn first_slash(path: &str) -> Option<usize> {
    path.bytes().position(|b| b == b'/')
}

/// The segments of `path` between its slashes (as `str::split('/')`).
fn segments(path: &str) -> impl Iterator<Item = &str> {
    let mut rest = Some(path);
    std::iter::from_fn(move || {
        let left = rest?;
        Some(match first_slash(left) {
            Some(i) => {
                rest = Some(&left[i + 1..]);
                &left[..i]
            }
            None => {
                rest = None;
                left
            }
        })
    })
}

/// Byte offset of segment `i` in `path` (segments split by '/').
fn offset_of(segments: &[&str], i: usize) -> usize {
    segments[..i].iter().map(|s| s.len() + 1).sum()
}

fn walk<'a, T>(
    node: &'a Node<T>,
    segments: &[&str],
    i: usize,
    path: &str,
    method: &str,
    params: &mut Vec<(String, String)>,
) -> Option<(&'a Methods<T>, &'a T)> {
    if i == segments.len() {
        let methods = node.methods.as_ref()?;
        return methods.get(method).map(|v| (methods, v));
    }
    let segment = segments[i];
    if let Some(child) = node.literals.get(segment)
        && let Some(found) = walk(child, segments, i + 1, path, method, params)
    {
        return Some(found);
    }
    if !segment.is_empty()
        && let Some((name, child)) = &node.param
    {
        params.push((name.clone(), segment.to_string()));
        if let Some(found) = walk(child, segments, i + 1, path, method, params) {
            return Some(found);
        }
        params.pop();
    }
    if let Some((name, methods)) = &node.greedy
        && let Some(v) = methods.get(method)
    {
        params.push((name.clone(), path[offset_of(segments, i)..].to_string()));
        return Some((methods, v));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn router(routes: &[(&str, &str)]) -> Router<String> {
        Router::new(routes.iter().map(|(p, m)| (p.to_string(), m.to_string(), format!("{m} {p}")))).unwrap()
    }

    fn find<'a>(r: &'a Router<String>, method: &str, path: &str) -> Option<(&'a str, Vec<(String, String)>)> {
        r.find(method, path).map(|m| (m.value.as_str(), m.path_params))
    }

    #[test]
    fn literal_beats_param_beats_greedy_with_backtracking() {
        let r = router(&[("/part1", "GET"), ("/part1/hardcoded-value", "GET"), ("/{param+}", "GET")]);
        assert_eq!(find(&r, "GET", "/part1").unwrap().0, "GET /part1");
        assert_eq!(find(&r, "GET", "/part1/hardcoded-value").unwrap().0, "GET /part1/hardcoded-value");
        let (v, p) = find(&r, "GET", "/part1/random-value").unwrap();
        assert_eq!(v, "GET /{param+}");
        assert_eq!(p, vec![("param".to_string(), "part1/random-value".to_string())]);
    }

    #[test]
    fn matching_is_on_path_and_method() {
        let r = router(&[("/test", "POST"), ("/{proxy+}", "OPTIONS")]);
        assert_eq!(find(&r, "OPTIONS", "/test").unwrap().0, "OPTIONS /{proxy+}");
        assert_eq!(find(&r, "POST", "/test").unwrap().0, "POST /test");
        assert!(find(&r, "GET", "/test").is_none());
    }

    #[test]
    fn any_and_specific_methods() {
        let r = router(&[("/items", "ANY"), ("/items", "GET")]);
        assert_eq!(find(&r, "GET", "/items").unwrap().0, "GET /items");
        assert_eq!(find(&r, "DELETE", "/items").unwrap().0, "ANY /items");
        assert!(find(&r, "TRACE", "/items").is_none());
        let g = router(&[("/x", "GET")]);
        assert!(find(&g, "HEAD", "/x").is_none(), "GET does not answer HEAD");
    }

    #[test]
    fn params_slashes_and_encoding() {
        let r = router(&[("/", "GET"), ("/items/{ID}", "GET"), ("/hardcoded", "GET"), ("/files/{proxy+}", "ANY")]);
        assert_eq!(find(&r, "GET", "").unwrap().0, "GET /");
        for path in ["a", "a/b", "a//b", "/a/", "ä/ö/", "", "//"] {
            assert_eq!(segments(path).collect::<Vec<_>>(), path.split('/').collect::<Vec<_>>(), "{path:?}");
            assert_eq!(first_slash(path), path.find('/'), "{path:?}");
        }
        assert_eq!(find(&r, "GET", "/").unwrap().0, "GET /");
        assert_eq!(find(&r, "GET", "/items/2").unwrap().1, vec![("ID".to_string(), "2".to_string())]);
        assert_eq!(find(&r, "GET", "/items/2/").unwrap().1, vec![("ID".to_string(), "2".to_string())]);
        assert_eq!(find(&r, "GET", "/items/a%2Fb").unwrap().1[0].1, "a%2Fb", "not decoded");
        assert!(find(&r, "GET", "/items/2/3").is_none());
        // A trailing slash is ignored and interior empty segments are kept
        // (AWS-BEHAVIOUR §1.5): `/items//` is `/items`, an empty segment and
        // the trailing slash. No `{ID}` matches the empty segment (a path
        // parameter is never empty), and it is not collapsed into `/items`.
        assert!(find(&r, "GET", "/items//").is_none(), "{{ID}} is never empty");
        assert!(find(&r, "GET", "/items//2").is_none(), "an interior empty segment is kept");
        let items = router(&[("/items", "GET"), ("/items/{ID}", "GET")]);
        assert_eq!(find(&items, "GET", "/items/").unwrap().0, "GET /items");
        assert!(find(&items, "GET", "/items//").is_none(), "one trailing slash is ignored, not two");
        assert_eq!(find(&r, "GET", "//hardcoded").unwrap().0, "GET /hardcoded");
        let (_, p) = find(&r, "PUT", "/files/a//b/c/").unwrap();
        assert_eq!(p, vec![("proxy".to_string(), "a//b/c".to_string())]);
        assert!(find(&r, "GET", "/files").is_none(), "a greedy parameter needs one segment");
    }

    #[test]
    fn invalid_routes_are_refused() {
        let err = |routes: &[(&str, &str)]| {
            Router::new(routes.iter().map(|(p, m)| (p.to_string(), m.to_string(), ()))).err().expect("refused")
        };
        assert!(matches!(err(&[("items", "GET")]), RouteError::NotAbsolute(_)));
        assert!(matches!(err(&[("/a{b}", "GET")]), RouteError::InvalidSegment { .. }));
        assert!(matches!(err(&[("/{p+}/x", "GET")]), RouteError::GreedyNotLast(_)));
        assert!(matches!(err(&[("/{a}", "GET"), ("/{b}", "GET")]), RouteError::ConflictingParam { .. }));
        assert!(matches!(err(&[("/x", "GET"), ("/x/", "GET")]), RouteError::Duplicate { .. }));
    }
}
