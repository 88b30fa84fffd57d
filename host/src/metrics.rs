//! Prometheus metrics: the families wasmgate counts, built on
//! `prometheus-client`, and their text exposition for `GET /metrics`.
//!
//! Each family stands for a CloudWatch metric (the README lists them side
//! by side). What is counted on a call's path is counted through handles
//! resolved once — a loaded version holds its own ([`VersionMetrics`]) — so
//! a call never looks a label set up; what describes the server's state
//! (pools, concurrency, the registry) is read when Prometheus scrapes, by
//! a [`Collector`] the server installs ([`Metrics::set_state`]).
//!
//! Label sets stay bounded: functions and versions are the registry's, an
//! error type is the function's own (cut at 64 characters; a version is
//! counted under 32 at most, the rest under `(other)`), a start is one of
//! three, and a gateway request is counted under its method's resource
//! template (`/items/{ID}`), never its raw path: a request that matches no
//! method counts under [`UNMATCHED`].
//!
//! Every request is counted, so the request path's part is lock-free: a
//! counter is an atomic add, a duration histogram ([`Durations`]) two, and
//! a method finds its status's counter among a few slots without a lock.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::info::Info;
use prometheus_client::metrics::{MetricType, TypedMetric};
use prometheus_client::registry::Registry;

/// A label set: names and values.
pub type Labels = Vec<(&'static str, String)>;

/// The exposition's media type: OpenMetrics' text format, which
/// prometheus-client writes.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The `resource` and `method` labels of a request that matches no method
/// (its `api` and `stage` are those it reached, or empty).
pub const UNMATCHED: &str = "(unmatched)";

/// The duration histograms' buckets: the first bound, then each twice the
/// one before (10 µs to about 84 s), then `+Inf`.
const FIRST_BOUND_NS: u64 = 10_000;
const BOUNDS: usize = 24;

/// A histogram of durations, updated with two atomic adds and no lock
/// (prometheus-client's own takes a lock per observation): the buckets'
/// bounds double from 10 µs, so a duration's bucket is its bit length.
#[derive(Clone, Default)]
pub struct Durations(Arc<DurationCounts>);

#[derive(Default)]
struct DurationCounts {
    /// Observations per bucket (not cumulative); the last is `+Inf`'s.
    buckets: [AtomicU64; BOUNDS + 1],
    sum_ns: AtomicU64,
}

impl std::fmt::Debug for Durations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Durations")
    }
}

impl Durations {
    pub fn observe(&self, duration: Duration) {
        let ns = duration.as_secs().saturating_mul(1_000_000_000).saturating_add(u64::from(duration.subsec_nanos()));
        // Bucket i holds (bound(i-1), bound(i)], bound(i) = 10 µs × 2^i.
        let over = ns.saturating_sub(1) / FIRST_BOUND_NS;
        let i = ((u64::BITS - over.leading_zeros()) as usize).min(BOUNDS);
        self.0.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.0.sum_ns.fetch_add(ns, Ordering::Relaxed);
    }

    /// (sum in seconds, count, buckets with their upper bounds in seconds).
    fn snapshot(&self) -> (f64, u64, Vec<(f64, u64)>) {
        let mut buckets = Vec::with_capacity(BOUNDS + 1);
        let mut count = 0;
        for (i, b) in self.0.buckets.iter().enumerate() {
            let n = b.load(Ordering::Relaxed);
            count += n;
            let bound = if i == BOUNDS { f64::MAX } else { (FIRST_BOUND_NS << i) as f64 / 1e9 };
            buckets.push((bound, n));
        }
        (self.0.sum_ns.load(Ordering::Relaxed) as f64 / 1e9, count, buckets)
    }
}

impl TypedMetric for Durations {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for Durations {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let (sum, count, buckets) = self.snapshot();
        encoder.encode_histogram::<NoLabelSet>(sum, count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

/// The server's metric families.
pub struct Metrics {
    registry: parking_lot::Mutex<Registry>,
    api_requests: Family<Labels, Counter>,
    api_latency: Family<Labels, Durations>,
    api_integration_latency: Family<Labels, Durations>,
    invocations: Family<Labels, Counter>,
    function_errors: Family<Labels, Counter>,
    throttles: Family<Labels, Counter>,
    duration: Family<Labels, Durations>,
    /// The error types each version has been counted under, by function
    /// and version (kept across a version's reloads).
    error_types: parking_lot::Mutex<HashMap<(String, String), Arc<ErrorTypes>>>,
    state: OnceLock<()>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let invocations = Family::<Labels, Counter>::default();
        let function_errors = Family::<Labels, Counter>::default();
        let throttles = Family::<Labels, Counter>::default();
        let duration = Family::<Labels, Durations>::default();
        let api_requests = Family::<Labels, Counter>::default();
        let api_latency = Family::<Labels, Durations>::default();
        let api_integration_latency = Family::<Labels, Durations>::default();
        registry.register(
            "wasmgate_api_requests",
            "Requests to a method of a stage, by status (API Gateway's Count, 4XXError and 5XXError)",
            api_requests.clone(),
        );
        registry.register(
            "wasmgate_api_latency_seconds",
            "From a request's head to its response (API Gateway's Latency)",
            api_latency.clone(),
        );
        registry.register(
            "wasmgate_api_integration_latency_seconds",
            "A method's integration: the function's invocation, as the runtime timed it \
             (API Gateway's IntegrationLatency)",
            api_integration_latency.clone(),
        );
        registry.register(
            "wasmgate_function_invocations",
            "Invocations of a function's version, by start: cold, warm or hot (Lambda's Invocations)",
            invocations.clone(),
        );
        registry.register(
            "wasmgate_function_errors",
            "Invocations that ended in an error, by its errorType (Lambda's Errors)",
            function_errors.clone(),
        );
        registry.register(
            "wasmgate_function_throttles",
            "Invocations refused for the function's concurrency or a full instance pool (Lambda's Throttles)",
            throttles.clone(),
        );
        registry.register(
            "wasmgate_function_duration_seconds",
            "How long invocations ran, instantiation included (Lambda's Duration)",
            duration.clone(),
        );
        let build = Info::new(vec![("version", env!("CARGO_PKG_VERSION").to_string())]);
        registry.register("wasmgate_build", "The wasmgate that serves", build);
        Metrics {
            registry: parking_lot::Mutex::new(registry),
            api_requests,
            api_latency,
            api_integration_latency,
            invocations,
            function_errors,
            throttles,
            duration,
            error_types: parking_lot::Mutex::new(HashMap::new()),
            state: OnceLock::new(),
        }
    }

    /// The handles of one function version, resolved once.
    pub fn version(&self, function: &str, version: &str) -> VersionMetrics {
        let labels = |start: &str| -> Labels {
            vec![("function", function.to_string()), ("version", version.to_string()), ("start", start.to_string())]
        };
        let starts = STARTS.map(|s| self.invocations.get_or_create(&labels(s)).clone());
        let duration = self
            .duration
            .get_or_create(&vec![("function", function.to_string()), ("version", version.to_string())])
            .clone();
        let error_types =
            self.error_types.lock().entry((function.to_string(), version.to_string())).or_default().clone();
        VersionMetrics {
            starts,
            duration,
            errors: self.function_errors.clone(),
            error_types,
            function: function.into(),
            version: version.into(),
        }
    }

    /// The handles of one method of one stage (`resource` is its template,
    /// `/items/{ID}`), resolved when the stage is compiled: a redeployed
    /// method finds its counts where it left them.
    pub fn api_method(&self, api: &str, stage: &str, resource: &str, method: &str) -> ApiMethodMetrics {
        let labels: Labels = vec![
            ("api", api.to_string()),
            ("stage", stage.to_string()),
            ("resource", resource.to_string()),
            ("method", method.to_string()),
        ];
        ApiMethodMetrics(Arc::new(MethodCounts {
            latency: self.api_latency.get_or_create(&labels).clone(),
            integration: self.api_integration_latency.get_or_create(&labels).clone(),
            requests: self.api_requests.clone(),
            labels,
            statuses: Default::default(),
            more_statuses: Default::default(),
        }))
    }

    /// Where requests that match no method of a stage are counted (`api` and
    /// `stage` empty for those that reach no stage): one label set,
    /// whatever their paths.
    pub fn api_unmatched(&self, api: &str, stage: &str) -> ApiMethodMetrics {
        self.api_method(api, stage, UNMATCHED, UNMATCHED)
    }

    /// Counts a call of `function` refused by a throttle.
    pub fn throttled(&self, function: &str) {
        self.throttles.get_or_create(&vec![("function", function.to_string())]).inc();
    }

    /// Installs what reads the server's state at each scrape (once).
    pub fn set_state(&self, collector: Box<dyn Collector>) {
        if self.state.set(()).is_ok() {
            self.registry.lock().register_collector(collector);
        }
    }

    /// Everything, in OpenMetrics' text format ([`CONTENT_TYPE`]).
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry.lock());
        out
    }
}

/// One method's handles: its latency histograms and its counters by status
/// (each made the first time its status is answered).
#[derive(Clone)]
pub struct ApiMethodMetrics(Arc<MethodCounts>);

/// How many statuses a method finds without a lock (each of a method's
/// statuses takes a slot the first time it is answered; past these, a
/// status's counter is looked up under a lock).
const STATUS_SLOTS: usize = 8;

struct MethodCounts {
    latency: Durations,
    integration: Durations,
    requests: Family<Labels, Counter>,
    labels: Labels,
    statuses: [OnceLock<(u16, Counter)>; STATUS_SLOTS],
    more_statuses: parking_lot::Mutex<Vec<(u16, Counter)>>,
}

impl std::fmt::Debug for ApiMethodMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ApiMethodMetrics({:?})", self.0.labels)
    }
}

impl ApiMethodMetrics {
    /// Counts one request: its status and latency and, if it reached a
    /// function, the integration's latency.
    pub fn record(&self, status: u16, latency: Duration, integration: Option<Duration>) {
        let counts = &*self.0;
        counts.latency.observe(latency);
        if let Some(d) = integration {
            counts.integration.observe(d);
        }
        for slot in &counts.statuses {
            // An empty slot is claimed for this status; one that another
            // request claimed first for another status is passed over.
            let (s, counter) = slot.get_or_init(|| (status, self.new_counter(status)));
            if *s == status {
                counter.inc();
                return;
            }
        }
        self.count_more(status);
    }

    #[cold]
    fn count_more(&self, status: u16) {
        let mut more = self.0.more_statuses.lock();
        match more.iter().find(|(s, _)| *s == status) {
            Some((_, counter)) => {
                counter.inc();
            }
            None => {
                let counter = self.new_counter(status);
                counter.inc();
                more.push((status, counter));
            }
        }
    }

    fn new_counter(&self, status: u16) -> Counter {
        let mut labels = self.0.labels.clone();
        labels.push(("status", status.to_string()));
        self.0.requests.get_or_create(&labels).clone()
    }
}

/// One version's handles: a counter per start, its duration histogram.
#[derive(Clone)]
pub struct VersionMetrics {
    starts: [Counter; 3],
    duration: Durations,
    errors: Family<Labels, Counter>,
    error_types: Arc<ErrorTypes>,
    function: Arc<str>,
    version: Arc<str>,
}

impl std::fmt::Debug for VersionMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "VersionMetrics({}:{})", self.function, self.version)
    }
}

/// The starts an invocation can have, as the runtime names them.
const STARTS: [&str; 3] = ["cold", "warm", "hot"];

/// Most characters of an error type kept as a label value.
const MAX_ERROR_TYPE: usize = 64;

/// Most error types a version is counted under. An error type is the
/// function's own text (its `errorType`): one that names each error
/// differently would otherwise add a series per error, without bound, to
/// the server's memory and every scrape. A version's errors of further
/// types are counted under [`OTHER_ERROR_TYPE`].
const MAX_ERROR_TYPES: usize = 32;
pub const OTHER_ERROR_TYPE: &str = "(other)";

/// The error types a version has been counted under.
#[derive(Default)]
struct ErrorTypes(parking_lot::Mutex<Vec<String>>);

impl ErrorTypes {
    /// The label an error of type `error_type` is counted under: its type
    /// (cut at [`MAX_ERROR_TYPE`] characters), or [`OTHER_ERROR_TYPE`] once
    /// [`MAX_ERROR_TYPES`] others are counted.
    fn label(&self, error_type: &str) -> String {
        let t: String = error_type.chars().take(MAX_ERROR_TYPE).collect();
        let mut seen = self.0.lock();
        if seen.contains(&t) {
            return t;
        }
        if seen.len() < MAX_ERROR_TYPES {
            seen.push(t.clone());
            return t;
        }
        OTHER_ERROR_TYPE.to_string()
    }
}

impl VersionMetrics {
    /// Counts one invocation: its start (`cold`, `warm`, `hot`) and
    /// duration, and its error type if it failed.
    pub fn invoked(&self, start: &str, duration: Duration, error_type: Option<&str>) {
        if let Some(i) = STARTS.iter().position(|s| *s == start) {
            self.starts[i].inc();
        }
        self.duration.observe(duration);
        if let Some(t) = error_type {
            let t = self.error_types.label(t);
            let labels =
                vec![("function", self.function.to_string()), ("version", self.version.to_string()), ("type", t)];
            self.errors.get_or_create(&labels).inc();
        }
    }
}

/// A counter family read at scrape time (counts kept elsewhere): `name`
/// (the text format adds `_total`), `help`, then (labels, value).
pub fn encode_counters(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    values: &[(Labels, u64)],
) -> Result<(), std::fmt::Error> {
    let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (labels, value) in values {
        ConstCounter::new(*value).encode(family.encode_family(labels)?)?;
    }
    Ok(())
}

/// A gauge family read at scrape time: `name`, `help`, then (labels, value).
pub fn encode_gauges(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    values: &[(Labels, i64)],
) -> Result<(), std::fmt::Error> {
    let mut family = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (labels, value) in values {
        ConstGauge::new(*value).encode(family.encode_family(labels)?)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_duration_lands_in_the_first_bucket_that_holds_it() {
        let d = Durations::default();
        for us in [0, 10, 11, 20, 21, 40, 100_000_000] {
            d.observe(Duration::from_micros(us));
        }
        let (sum, count, buckets) = d.snapshot();
        assert_eq!(count, 7);
        assert!((sum - 100.000_102).abs() < 1e-9, "{sum}");
        let at = |bound: f64| buckets.iter().find(|(b, _)| (*b - bound).abs() < 1e-12).map(|(_, n)| *n);
        // (0, 10 µs]: 0 and 10; (10, 20]: 11 and 20; (20, 40]: 21 and 40.
        assert_eq!((at(0.00001), at(0.00002), at(0.00004)), (Some(2), Some(2), Some(2)));
        assert_eq!(buckets.last(), Some(&(f64::MAX, 1)), "100 s is past the last bound");
        assert_eq!(buckets.len(), BOUNDS + 1);
        assert!((buckets[BOUNDS - 1].0 - 83.886_08).abs() < 1e-9);
    }

    #[test]
    fn a_method_counts_each_status_once_however_many_it_answers() {
        let metrics = Metrics::new();
        let method = metrics.api_method("A", "s", "/items/{ID}", "GET");
        // More statuses than the lock-free slots hold.
        for status in (200..212).chain(200..212) {
            method.record(status, Duration::from_micros(5), None);
        }
        let text = metrics.encode();
        for status in 200..212 {
            let series = format!(
                r#"wasmgate_api_requests_total{{api="A",stage="s",resource="/items/{{ID}}",method="GET",status="{status}"}} 2"#
            );
            assert!(text.contains(&series), "{series} in\n{text}");
        }
        assert!(text.contains(
            r#"wasmgate_api_latency_seconds_count{api="A",stage="s",resource="/items/{ID}",method="GET"} 24"#
        ));
        // The same method again (a redeploy) counts on.
        metrics.api_method("A", "s", "/items/{ID}", "GET").record(200, Duration::ZERO, Some(Duration::ZERO));
        let text = metrics.encode();
        assert!(text.contains(r#"method="GET",status="200"} 3"#), "{text}");
        assert!(text.contains(
            r#"wasmgate_api_integration_latency_seconds_count{api="A",stage="s",resource="/items/{ID}",method="GET"} 1"#
        ));
    }

    #[test]
    fn a_versions_error_types_are_bounded() {
        let metrics = Metrics::new();
        let error = |n: usize| format!("Error{n}");
        let version = metrics.version("f", "1");
        for n in 0..MAX_ERROR_TYPES + 8 {
            version.invoked("hot", Duration::ZERO, Some(&error(n)));
        }
        // A reload of the version finds the types it was counted under.
        let reloaded = metrics.version("f", "1");
        reloaded.invoked("hot", Duration::ZERO, Some(&error(0)));
        reloaded.invoked("hot", Duration::ZERO, Some(&error(MAX_ERROR_TYPES + 8)));
        // Another version has types of its own.
        metrics.version("f", "2").invoked("hot", Duration::ZERO, Some(&error(99)));
        let text = metrics.encode();
        let series = |version: &str, t: &str, n: u64| {
            format!(r#"wasmgate_function_errors_total{{function="f",version="{version}",type="{t}"}} {n}"#)
        };
        assert!(text.contains(&series("1", "Error0", 2)), "{text}");
        for n in 1..MAX_ERROR_TYPES {
            assert!(text.contains(&series("1", &error(n), 1)), "{n} in\n{text}");
        }
        assert!(!text.contains(&format!("type=\"{}\"", error(MAX_ERROR_TYPES))), "{text}");
        assert!(text.contains(&series("1", OTHER_ERROR_TYPE, 9)), "{text}");
        assert!(text.contains(&series("2", "Error99", 1)), "{text}");
        let long = "E".repeat(100);
        metrics.version("f", "2").invoked("hot", Duration::ZERO, Some(&long));
        assert!(metrics.encode().contains(&series("2", &"E".repeat(MAX_ERROR_TYPE), 1)));
    }
}
