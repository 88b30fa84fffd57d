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
//! error type is the function's own (cut at 64 characters), and a start is
//! one of three.

use std::sync::{Arc, OnceLock};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

/// A label set: names and values.
pub type Labels = Vec<(&'static str, String)>;

/// Durations from 100 µs to about 100 s, doubling.
fn duration_buckets() -> impl Iterator<Item = f64> {
    exponential_buckets(0.0001, 2.0, 21)
}

fn new_histogram() -> Histogram {
    Histogram::new(duration_buckets())
}

/// The server's metric families.
pub struct Metrics {
    registry: parking_lot::Mutex<Registry>,
    invocations: Family<Labels, Counter>,
    function_errors: Family<Labels, Counter>,
    throttles: Family<Labels, Counter>,
    duration: Family<Labels, Histogram, fn() -> Histogram>,
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
        let duration = Family::<Labels, Histogram, fn() -> Histogram>::new_with_constructor(new_histogram);
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
            invocations,
            function_errors,
            throttles,
            duration,
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
        VersionMetrics {
            starts,
            duration,
            errors: self.function_errors.clone(),
            function: function.into(),
            version: version.into(),
        }
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

    /// Everything, in Prometheus' text format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry.lock());
        out
    }
}

/// One version's handles: a counter per start, its duration histogram.
#[derive(Clone)]
pub struct VersionMetrics {
    starts: [Counter; 3],
    duration: Histogram,
    errors: Family<Labels, Counter>,
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

impl VersionMetrics {
    /// Counts one invocation: its start (`cold`, `warm`, `hot`) and
    /// duration, and its error type if it failed.
    pub fn invoked(&self, start: &str, seconds: f64, error_type: Option<&str>) {
        if let Some(i) = STARTS.iter().position(|s| *s == start) {
            self.starts[i].inc();
        }
        self.duration.observe(seconds);
        if let Some(t) = error_type {
            let t: String = t.chars().take(MAX_ERROR_TYPE).collect();
            let labels =
                vec![("function", self.function.to_string()), ("version", self.version.to_string()), ("type", t)];
            self.errors.get_or_create(&labels).inc();
        }
    }
}

/// A gauge family read at scrape time: `name`, `help`, then (labels, value).
pub fn encode_gauges(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    values: &[(Labels, i64)],
) -> Result<(), std::fmt::Error> {
    let mut family = encoder.encode_descriptor(name, help, None, prometheus_client::metrics::MetricType::Gauge)?;
    for (labels, value) in values {
        ConstGauge::new(*value).encode(family.encode_family(labels)?)?;
    }
    Ok(())
}
