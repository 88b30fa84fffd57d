//! One invocation: take or make an instance, run `handle` under the
//! function's timeout and memory limit, capture its logs, classify the result,
//! and park or drop the instance.
//!
//! Failures are reported as Lambda reports them (`errorType`/`errorMessage`):
//! a timeout is `Sandbox.Timedout` "Task timed out after N seconds"; a trap is
//! `Runtime.Trap`, a Rust panic `Runtime.Panic` (with the panic message from
//! the guest's stderr), an exhausted memory limit `Runtime.OutOfMemory`, a
//! result over Lambda's 6 MB `Function.ResponseSizeTooLarge`.
//!
//! The deadline holds wherever the guest is. Epoch interruption stops a guest
//! that runs wasm past it; a guest waiting in a host call (a WASI sleep or
//! poll, an outbound request) is not running wasm, so the call's future is
//! also raced against a timer for the same deadline, and dropped when it
//! fires: the call ends, its instance is dropped (a call cut off mid-way
//! leaves no instance to reuse), and its concurrency slot is free at the
//! deadline. The timer is armed only when the call does not finish in its
//! first poll, which a hot call nearly always does.

use std::future::Future;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use super::RuntimeError;
use super::bindings::wasmgate::function::types;
use super::pool::{Instance, LoadedVersion};
use crate::registry::VersionRef;

/// The data of one instance's store.
pub struct HostState {
    pub(crate) wasi: WasiCtx,
    pub(crate) table: ResourceTable,
    pub(crate) http: WasiHttpCtx,
    /// Outbound HTTP's rules for this instance (its function's allow-list and slots).
    pub(crate) outbound: super::outbound::OutboundHooks,
    pub(crate) limits: Limits,
    /// When the current call (or instantiation) must stop.
    pub(crate) deadline: Instant,
    /// Set by the epoch callback when it interrupted the guest.
    pub(crate) timed_out: bool,
    /// The stack trace the guest reported for the error it is returning
    /// (`wasmgate:function/report`).
    pub(crate) stack_trace: Vec<String>,
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl WasiHttpView for HostState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView { ctx: &mut self.http, table: &mut self.table, hooks: &mut self.outbound }
    }
}

impl super::bindings::wasmgate::function::report::Host for HostState {
    fn stack_trace(&mut self, frames: Vec<String>) {
        // Bounded like the log: a guest cannot grow the host's memory through it.
        let mut size = 0;
        self.stack_trace = frames
            .into_iter()
            .take_while(|f| {
                size += f.len();
                size <= MAX_STACK_TRACE_BYTES
            })
            .collect();
    }
}

/// Most bytes of stack trace kept for one error.
const MAX_STACK_TRACE_BYTES: usize = 64 * 1024;

/// The memory limit of one instance, remembering whether the guest hit it.
pub(crate) struct Limits {
    memory_bytes: usize,
    pub(crate) memory_exceeded: bool,
    /// The most memory the instance has had (Lambda's Max Memory Used).
    pub(crate) memory_used: usize,
}

impl Limits {
    pub(crate) fn new(memory_mb: u32) -> Self {
        Limits { memory_bytes: (memory_mb as usize) << 20, memory_exceeded: false, memory_used: 0 }
    }
}

impl ResourceLimiter for Limits {
    fn memory_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired > self.memory_bytes {
            self.memory_exceeded = true;
            return Ok(false);
        }
        self.memory_used = self.memory_used.max(desired);
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= 1_000_000)
    }
}

/// What the caller asks for.
#[derive(Debug, Clone)]
pub struct InvokeRequest<'a> {
    /// The event, JSON text.
    pub event: &'a str,
    /// The invocation's id (tags its logs; the guest sees it).
    pub request_id: &'a str,
    /// What the caller named: `fn`, `fn:7`, `fn:prod` …
    pub invoked_qualifier: &'a str,
    /// Hand the guest's output back in [`InvokeOutcome::logs`] (a test
    /// invoke, `LogType: Tail`). Without it the output is read out of the
    /// instance only where something else needs it as text — a failure's
    /// classification, or the guest log at `info` — and otherwise goes
    /// straight from the instance's buffer to the function's recent logs:
    /// copying it out is an allocation and a copy on every call.
    pub keep_logs: bool,
    /// The version was loaded for this call: a cold start.
    pub cold: bool,
}

/// Which start an invocation had.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StartKind {
    /// The version had to be loaded first.
    Cold,
    /// A fresh instance of a loaded version.
    Warm,
    /// A reused instance.
    Hot,
}

impl StartKind {
    pub fn as_str(self) -> &'static str {
        match self {
            StartKind::Cold => "cold",
            StartKind::Warm => "warm",
            StartKind::Hot => "hot",
        }
    }
}

/// How a function failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum FailureKind {
    /// The function returned an error.
    Handled,
    /// The guest trapped.
    Trap,
    /// The guest panicked (a trap after a Rust panic message).
    Panic,
    /// The call ran past `timeout_ms`.
    Timeout,
    /// The guest needed more memory than `memory_mb`.
    OutOfMemory,
    /// The result was larger than Lambda's limit ([`MAX_RESULT_BYTES`]).
    ResponseTooLarge,
}

/// Lambda's limit on a synchronous invocation's event (6 MB): a larger one
/// is refused before any instance is taken.
pub const MAX_EVENT_BYTES: usize = 6_291_456;

/// Lambda's limit on a synchronous invocation's result (6 MB, as AWS
/// reports it in `Function.ResponseSizeTooLarge`).
pub const MAX_RESULT_BYTES: usize = 6_291_556;

/// Runs `call` until `deadline`: `None` if the deadline passed first (the
/// call's future is then dropped, wherever the guest was). The timer is
/// armed only when the first poll leaves the call pending.
pub(crate) async fn until_deadline<T>(call: impl Future<Output = T>, deadline: Instant) -> Option<T> {
    let mut call = std::pin::pin!(call);
    let first = std::future::poll_fn(|cx| Poll::Ready(call.as_mut().poll(cx))).await;
    match first {
        Poll::Ready(out) => Some(out),
        // Boxed: the timer is large, and only a call still pending needs it.
        Poll::Pending => Box::pin(tokio::time::timeout_at(deadline.into(), call)).await.ok(),
    }
}

/// A function's error, as Lambda reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FunctionError {
    #[serde(skip)]
    pub kind: FailureKind,
    #[serde(rename = "errorType")]
    pub error_type: String,
    #[serde(rename = "errorMessage")]
    pub error_message: String,
    /// Lambda's `stackTrace`: what the guest reported
    /// (`wasmgate:function/report`), else empty.
    #[serde(rename = "stackTrace")]
    pub stack_trace: Vec<String>,
}

impl FunctionError {
    /// The call ran past the function's timeout: Lambda's `Sandbox.Timedout`.
    pub fn timed_out(request_id: &str, timeout_ms: u64) -> Self {
        FunctionError {
            kind: FailureKind::Timeout,
            error_type: "Sandbox.Timedout".into(),
            error_message: format!(
                "RequestId: {request_id} Error: Task timed out after {:.2} seconds",
                timeout_ms as f64 / 1000.0
            ),
            stack_trace: Vec::new(),
        }
    }

    /// The result was over [`MAX_RESULT_BYTES`], as Lambda words it.
    pub fn too_large() -> Self {
        FunctionError {
            kind: FailureKind::ResponseTooLarge,
            error_type: "Function.ResponseSizeTooLarge".into(),
            error_message: format!(
                "Response payload size exceeded maximum allowed payload size ({MAX_RESULT_BYTES} bytes)."
            ),
            stack_trace: Vec::new(),
        }
    }

    /// Lambda's error payload: `{"errorMessage", "errorType", "stackTrace"}`.
    pub fn to_json(&self) -> String {
        serde_json::json!({
            "errorMessage": self.error_message,
            "errorType": self.error_type,
            "stackTrace": self.stack_trace,
        })
        .to_string()
    }
}

/// What an invocation produced.
#[derive(Debug, Clone)]
pub struct InvokeOutcome {
    /// The result (JSON text) or the function's error.
    pub result: Result<String, FunctionError>,
    /// The version that ran (`$LATEST` or a number).
    pub version: VersionRef,
    pub start: StartKind,
    /// Time from taking the call to its end (instantiation included).
    pub duration: Duration,
    /// What the guest wrote to stdout and stderr, when the request kept
    /// its logs ([`InvokeRequest::keep_logs`]) or the call failed; else empty.
    pub logs: String,
    /// The instance's memory at the end of the call (Lambda's Max Memory
    /// Used: an instance's memory never shrinks).
    pub memory_used_bytes: u64,
    /// The function's memory size, as configured for the call.
    pub memory_mb: u32,
}

fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

impl LoadedVersion {
    /// Runs one invocation of this version.
    pub async fn invoke(self: &Arc<Self>, req: InvokeRequest<'_>) -> Result<InvokeOutcome, RuntimeError> {
        if req.event.len() > MAX_EVENT_BYTES {
            return Err(RuntimeError::EventTooLarge { size: req.event.len() });
        }
        let _busy = self.enter()?;
        // The epoch ticker runs while a guest does (its timeout depends on it).
        let _running = self.activity.enter();
        let started = Instant::now();
        let spec = self.spec();
        let timeout = Duration::from_millis(spec.config.timeout_ms);
        let (mut instance, start) = match self.take_idle() {
            // An instance made ahead of traffic but never used is still
            // fresh: a hot start only when it has served before.
            Some((i, served)) => (i, if served { StartKind::Hot } else { StartKind::Warm }),
            None => {
                // Boxed: instantiation's future is as large as the rest of
                // the call's together, and inline it would make every hot
                // call's future (copied into its box on every request) twice
                // the size.
                (crate::boxed::boxed_in_place(|| self.instantiate()).await?, StartKind::Warm)
            }
        };
        if !spec.config.reuse && spec.config.min_warm > 0 {
            // Top the pool of fresh instances up again, off this call's path.
            self.refill_in_background();
        }

        // Counted from the call itself: a fresh instance's set-up is not the function's time.
        let deadline = if start == StartKind::Hot { started } else { Instant::now() } + timeout;
        {
            let state = instance.store.data_mut();
            state.deadline = deadline;
            state.timed_out = false;
            // A grow refused in an earlier call that the guest survived says
            // nothing about this call's failure.
            state.limits.memory_exceeded = false;
            if !state.stack_trace.is_empty() {
                state.stack_trace.clear();
            }
        }
        instance.store.set_epoch_deadline(1);
        // The function's name, version and memory size are in the instance's
        // environment (`pool::LoadedVersion::instantiate`), as in Lambda.
        let ctx = types::Context {
            request_id: req.request_id,
            invoked_qualifier: req.invoked_qualifier,
            remaining_time_ms: spec.config.timeout_ms,
            deadline_ms: unix_ms(SystemTime::now() + timeout),
        };
        let call = until_deadline(instance.handler.call_handle(&mut instance.store, req.event, ctx), deadline).await;
        let logged = tracing::enabled!(target: "wasmgate::function", tracing::Level::INFO);
        let as_text = req.keep_logs || logged || !matches!(call, Some(Ok(Ok(_))));
        let logs = if as_text { instance.logs.drain() } else { String::new() };
        let memory_used_bytes = instance.store.data().limits.memory_used as u64;
        let result = match call {
            Some(Ok(Ok(output))) if output.len() > MAX_RESULT_BYTES => Err(FunctionError::too_large()),
            Some(Ok(Ok(output))) => Ok(output),
            Some(Ok(Err(e))) => Err(FunctionError {
                kind: FailureKind::Handled,
                error_type: e.error_type,
                error_message: e.error_message,
                stack_trace: std::mem::take(&mut instance.store.data_mut().stack_trace),
            }),
            Some(Err(trap)) => Err(self.classify_failure(&instance, &trap, &logs, req.request_id)),
            // Cut off while it waited in a host call.
            None => Err(FunctionError::timed_out(req.request_id, spec.config.timeout_ms)),
        };
        // Only an instance that returned (a result, or an error of its own)
        // is reused; one that trapped, or was cut off, is dropped.
        let clean = match &result {
            Ok(_) => true,
            Err(e) => matches!(e.kind, FailureKind::Handled | FailureKind::ResponseTooLarge),
        };
        if logged {
            log_guest_output(&logs, req.request_id, spec.function.as_str(), &spec.version.to_string());
        }
        // One clock read serves both the call's duration and the instance's
        // idle time (a clock read is a visible share of a hot call).
        let ended = Instant::now();
        let duration = ended - started;
        let start = if req.cold { StartKind::Cold } else { start };
        let kept = |output: &[u8]| {
            let invocation = crate::recent_logs::Invocation {
                request_id: req.request_id,
                version: spec.version,
                start: start.as_str(),
                duration,
                memory_mb: spec.config.memory_mb,
                memory_used_bytes,
                output,
            };
            self.recent_logs().invocation(invocation, req.invoked_qualifier, ended)
        };
        if as_text {
            kept(logs.as_bytes());
        } else {
            instance.logs.drain_into(kept);
        }
        if clean && spec.config.reuse {
            self.park(instance, ended);
        } else {
            drop::<Instance>(instance);
        }
        Ok(InvokeOutcome {
            result,
            version: spec.version,
            start,
            duration,
            logs,
            memory_used_bytes,
            memory_mb: spec.config.memory_mb,
        })
    }

    fn classify_failure(
        &self,
        instance: &Instance,
        error: &wasmtime::Error,
        logs: &str,
        request_id: &str,
    ) -> FunctionError {
        let state = instance.store.data();
        let spec = self.spec();
        if state.timed_out {
            return FunctionError::timed_out(request_id, spec.config.timeout_ms);
        }
        if state.limits.memory_exceeded {
            return FunctionError {
                kind: FailureKind::OutOfMemory,
                error_type: "Runtime.OutOfMemory".into(),
                error_message: format!(
                    "RequestId: {request_id} Error: Runtime exited: memory limit of {} MB exceeded",
                    spec.config.memory_mb
                ),
                stack_trace: Vec::new(),
            };
        }
        if let Some(panic) = panic_message(logs) {
            return FunctionError {
                kind: FailureKind::Panic,
                error_type: "Runtime.Panic".into(),
                error_message: format!("RequestId: {request_id} Error: {panic}"),
                stack_trace: Vec::new(),
            };
        }
        let trap = match error.downcast_ref::<wasmtime::Trap>() {
            Some(t) => t.to_string(),
            None => format!("{error:#}"),
        };
        FunctionError {
            kind: FailureKind::Trap,
            error_type: "Runtime.Trap".into(),
            error_message: format!("RequestId: {request_id} Error: wasm trap: {trap}"),
            stack_trace: Vec::new(),
        }
    }
}

/// The message of a Rust panic, from the lines std prints to stderr:
/// `thread '…' panicked at src/lib.rs:1:2:` then the message.
fn panic_message(logs: &str) -> Option<String> {
    let mut lines = logs.lines();
    lines.find(|l| l.contains("panicked at"))?;
    let message: Vec<&str> = lines.take_while(|l| !l.starts_with("note: ")).collect();
    Some(message.join("\n").trim().to_string()).filter(|m| !m.is_empty())
}

/// Writes the guest's output to the log, a line per entry (the caller has
/// asked whether `info` is enabled, once, rather than once per line).
fn log_guest_output(logs: &str, request_id: &str, function: &str, version: &str) {
    for line in logs.lines() {
        // The line as the message (first, as a formatted one would be), without formatting it.
        tracing::info!(target: "wasmgate::function", message = line, request_id, function, version);
    }
}

#[cfg(test)]
mod tests {
    use super::panic_message;

    #[test]
    fn finds_the_panic_message() {
        let logs = "before\nthread '<unnamed>' panicked at src/lib.rs:11:5:\nboom\nnote: run with `RUST_BACKTRACE=1`\n";
        assert_eq!(panic_message(logs).as_deref(), Some("boom"));
        assert_eq!(panic_message("no panic here"), None);
    }
}
