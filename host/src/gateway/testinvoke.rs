//! Test invoke: runs one method of a deployed stage as the console's TEST
//! button does, and returns the response together with the execution log
//! (the event the template made, the function's version, start and logs, the
//! integration response chosen, latencies).

use std::time::{Instant, SystemTime};

use indexmap::IndexMap;
use serde::Deserialize;
use serde_json::{Value, json};

use super::Gateway;
use super::pipeline::Trace;
use super::request::GatewayRequest;

/// What to send.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestInvoke {
    pub stage: String,
    pub method: String,
    /// The resource path, e.g. `/items/{ID}`.
    pub resource_path: String,
    #[serde(default)]
    pub path: IndexMap<String, String>,
    /// Query string parameters: `{"name": "value"}`, or a list of values
    /// for a name given more than once (`{"lang": ["en", "fr"]}`).
    #[serde(default)]
    pub query: MultiValues,
    /// Headers, as the query string parameters.
    #[serde(default)]
    pub headers: MultiValues,
    #[serde(default)]
    pub body: Option<String>,
}

/// Names with one value or several, in the order given: `{"name": "value"}`
/// or `{"name": ["value", …]}` (API Gateway's `multiValueHeaders` shape).
#[derive(Debug, Default)]
pub struct MultiValues(pub Vec<(String, String)>);

impl<'de> Deserialize<'de> for MultiValues {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum OneOrMany {
            One(String),
            Many(Vec<String>),
        }
        let map = IndexMap::<String, OneOrMany>::deserialize(d)?;
        let mut pairs = Vec::with_capacity(map.len());
        for (name, values) in map {
            match values {
                OneOrMany::One(v) => pairs.push((name, v)),
                OneOrMany::Many(vs) => pairs.extend(vs.into_iter().map(|v| (name.clone(), v))),
            }
        }
        Ok(MultiValues(pairs))
    }
}

/// Fills a resource path's `{param}` and `{param+}` segments.
fn concrete_path(resource: &str, params: &IndexMap<String, String>) -> Result<String, String> {
    let mut out = String::new();
    for segment in resource.split('/').filter(|s| !s.is_empty()) {
        out.push('/');
        match segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            Some(name) => {
                let name = name.trim_end_matches('+');
                let value = params
                    .get(name)
                    .ok_or_else(|| format!("missing path parameter {name:?} (give --path {name}=VALUE)"))?;
                out.push_str(value);
            }
            None => out.push_str(segment),
        }
    }
    if out.is_empty() {
        out.push('/');
    }
    Ok(out)
}

/// Runs the test invocation.
pub async fn run(gateway: &Gateway, api: &str, t: TestInvoke) -> Result<Value, String> {
    let served = gateway.served();
    let served_api = served.api(api)?;
    served_api.stage(&t.stage)?;
    let path = concrete_path(&t.resource_path, &t.path)?;
    let prefix = served_api.base_path.as_ref().map(|b| format!("/{b}")).unwrap_or_default();
    let query = (!t.query.0.is_empty())
        .then(|| form_urlencoded::Serializer::new(String::new()).extend_pairs(t.query.0.iter()).finish());
    let method = hyper::Method::from_bytes(t.method.to_ascii_uppercase().as_bytes())
        .map_err(|_| format!("{:?} is not an HTTP method", t.method))?;
    let time = SystemTime::now();
    let mut req = GatewayRequest {
        ids: super::request::RequestIds::new(time),
        method,
        full_path: format!("{prefix}/{}{path}", t.stage),
        path_at: 0,
        raw_query: query,
        headers: t.headers.0.iter().map(|(k, v)| (k, v)).collect(),
        body: bytes::Bytes::from(t.body.unwrap_or_default()),
        source_ip: "127.0.0.1".parse().expect("an IP address"),
        host: served_api.hosts.first().cloned().unwrap_or_else(|| "test-invoke".into()),
        protocol: "HTTP/1.1",
        received: std::time::Instant::now(),
        time,
    };
    let started = Instant::now();
    let mut trace = Trace::enabled();
    let resp = gateway.dispatch(&mut req, &mut trace, false).await;
    let latency = started.elapsed();
    let recording = trace.into_recording().expect("the trace was enabled");
    // As API Gateway's TestInvokeMethod answers: `headers` with a name's
    // values joined, `multiValueHeaders` with each header line's value.
    let mut multi_value_headers: IndexMap<String, Vec<String>> = IndexMap::new();
    for (name, value) in &resp.headers {
        multi_value_headers.entry(name.to_string()).or_default().push(String::from_utf8_lossy(value.as_bytes()).into());
    }
    let headers: serde_json::Map<String, Value> =
        multi_value_headers.iter().map(|(name, values)| (name.clone(), Value::String(values.join(", ")))).collect();
    Ok(json!({
        "status": resp.status,
        "headers": headers,
        "multi_value_headers": multi_value_headers,
        "body": String::from_utf8_lossy(&resp.body),
        "latency_ms": latency.as_secs_f64() * 1000.0,
        "log": recording.lines,
        "invocation": recording.invocation,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_path_parameters() {
        let params: IndexMap<String, String> =
            [("ID".to_string(), "3".to_string()), ("proxy".into(), "a/b".into())].into();
        assert_eq!(concrete_path("/items/{ID}", &params).unwrap(), "/items/3");
        assert_eq!(concrete_path("/{proxy+}", &params).unwrap(), "/a/b");
        assert_eq!(concrete_path("/", &params).unwrap(), "/");
        assert!(concrete_path("/x/{other}", &params).is_err());
    }

    #[test]
    fn query_and_headers_take_one_value_or_several() {
        let t: TestInvoke = serde_json::from_value(json!({
            "stage": "dev", "method": "GET", "resource_path": "/",
            "query": { "lang": ["en", "fr"], "x": "1" },
            "headers": { "X-One": "a" },
        }))
        .unwrap();
        let pairs = |v: &MultiValues| v.0.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>();
        assert_eq!(pairs(&t.query), ["lang=en", "lang=fr", "x=1"]);
        assert_eq!(pairs(&t.headers), ["X-One=a"]);
        assert!(
            serde_json::from_value::<TestInvoke>(json!({
                "stage": "dev", "method": "GET", "resource_path": "/", "query": { "x": 1 },
            }))
            .is_err()
        );
    }
}
