//! wasmgate's library: everything but argument parsing.
//!
//! # Layout
//!
//! - [`config`]: `gateway.toml`, parsed strictly and resolved; errors name key and line.
//! - [`registry`]: functions, `$LATEST`, versions, aliases; the durable store (SQLite + content-addressed code).
//! - [`runtime`]: the wasmtime engine, compile and artifact cache, instance pools, invocation under limits, logs.
//! - [`functions`]: registry and runtime together — upload, publish, alias, invoke — with warm-before-switch.
//! - [`bootstrap`]: creating `gateway.toml`'s functions once.
//! - [`build`]: Python and JavaScript functions built into components with the languages' toolchains and the adapters in `guest-functions/`.
//! - [`gateway`]: the gateway listener: routes, stage pipeline, integrations.
//! - [`admin`]: the admin HTTP API and its client (the CLI's backend).
//! - [`policy`]: stage policies — API keys, usage plans (throttle, quota), stage throttling, the response cache, CORS — and the store they keep counters and cached responses in (embedded or Redis).
//! - [`metrics`]: Prometheus metrics (families, per-version and per-method handles, the text exposition).
//! - [`access_log`]: stages' access logs: formats of `$context` variables (API Gateway's presets), files and their writers.
//! - [`recent_logs`]: each function's invocations and each stage's access lines, kept in memory for `wasmgate logs`.
//! - [`http`]: accept loop, HTTP/1.1 + h2c, graceful shutdown, body limits.
//! - [`server`]: starts all of the above for `wasmgate serve`.
//! - [`template`]: mapping templates (API Gateway's VTL): parsed once, rendered per request.
//! - [`guests`]: the guest functions of `guest-functions/`, embedded.
//! - [`suggest`]: "did you mean …?" for names not found.
//! - `boxed`: boxing a large future in place, without a copy.

pub mod access_log;
pub mod admin;
pub mod bootstrap;
pub(crate) mod boxed;
pub mod build;
pub mod config;
pub mod fsutil;
pub mod functions;
pub mod gateway;
pub mod guests;
pub mod http;
pub mod metrics;
pub mod policy;
pub mod recent_logs;
pub mod registry;
pub mod runtime;
pub mod server;
pub mod suggest;
pub mod template;
