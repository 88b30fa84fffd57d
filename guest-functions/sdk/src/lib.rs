//! `wasmgate-guest`: write a wasmgate function in a few lines of Rust.
//!
//! A function receives an event (any `serde` type), the invocation's
//! [`Context`], and returns a result (any `serde` type) or an [`Error`] —
//! Lambda's `errorType`/`errorMessage` pair:
//!
//! ```ignore
//! use wasmgate_guest::{Context, Error};
//!
//! fn handle(event: serde_json::Value, _ctx: &Context) -> Result<serde_json::Value, Error> {
//!     Ok(event)
//! }
//! wasmgate_guest::handler!(handle);
//! ```
//!
//! Standard output and standard error become the invocation's log. The
//! [`log!`] macro writes a line there as `println!` does, for a third of the
//! host calls.

#[doc(hidden)]
// Generated: the export's lowered signature takes the context record's
// fields one by one.
#[allow(clippy::too_many_arguments)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../../host/wit",
        world: "handler",
        pub_export_macro: true,
        export_macro_name: "__export_handler",
        default_bindings_module: "wasmgate_guest::bindings",
    });
}

use bindings::wasmgate::function::types;
use serde::{Serialize, de::DeserializeOwned};

pub use serde;
pub use serde_json;

/// What the runtime tells the function about this invocation.
#[derive(Debug, Clone)]
pub struct Context {
    /// Unique id of this invocation.
    pub request_id: String,
    /// The function's name.
    pub function_name: &'static str,
    /// The version that runs: `$LATEST` or a number.
    pub function_version: &'static str,
    /// What the caller asked for (`name`, `name:7`, `name:prod` …).
    pub invoked_qualifier: String,
    /// The memory limit in MiB.
    pub memory_limit_mb: u32,
    /// Milliseconds left when the invocation started.
    pub remaining_time_ms: u64,
    /// Unix time in milliseconds at which the invocation is killed.
    pub deadline_ms: u64,
}

/// What is the same for every call of this instance: read from the
/// environment the runtime set for it, once (as Lambda's runtimes do).
struct Instance {
    function_name: &'static str,
    function_version: &'static str,
    memory_limit_mb: u32,
}

fn instance() -> &'static Instance {
    static INSTANCE: std::sync::OnceLock<Instance> = std::sync::OnceLock::new();
    INSTANCE.get_or_init(|| {
        let var = |name: &str| -> &'static str { std::env::var(name).unwrap_or_default().leak() };
        Instance {
            function_name: var("AWS_LAMBDA_FUNCTION_NAME"),
            function_version: var("AWS_LAMBDA_FUNCTION_VERSION"),
            memory_limit_mb: var("AWS_LAMBDA_FUNCTION_MEMORY_SIZE").parse().unwrap_or(0),
        }
    })
}

impl From<types::Context> for Context {
    fn from(c: types::Context) -> Self {
        let instance = instance();
        Context {
            request_id: c.request_id,
            function_name: instance.function_name,
            function_version: instance.function_version,
            invoked_qualifier: c.invoked_qualifier,
            memory_limit_mb: instance.memory_limit_mb,
            remaining_time_ms: c.remaining_time_ms,
            deadline_ms: c.deadline_ms,
        }
    }
}

/// A handled error: reported to the caller as `{"errorType", "errorMessage"}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub error_type: String,
    pub error_message: String,
}

impl Error {
    pub fn new(error_type: impl Into<String>, error_message: impl Into<String>) -> Self {
        Error { error_type: error_type.into(), error_message: error_message.into() }
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.error_type, self.error_message)
    }
}

/// Writes one line to the invocation's log, formatted as `println!` formats
/// it: `wasmgate_guest::log!("Event: {event}")`, Lambda's `console.log`.
///
/// `println!` reaches the host three times per line (the standard library
/// asks the stdout stream how much it may write, writes, then waits for the
/// flush); `log!` hands the whole line over in one `blocking-write-and-flush`
/// (up to 4096 bytes per call, as WASI allows), which makes logging on every
/// call about a third as costly. Lines written with `print!` and not yet
/// ended are flushed first, so the log keeps the order the code wrote in.
#[macro_export]
macro_rules! log {
    ($($arg:tt)*) => {
        $crate::write_log_line(::core::format_args!($($arg)*))
    };
}

/// The most one `blocking-write-and-flush` takes (WASI's limit).
const LOG_CHUNK: usize = 4096;

/// Formats `args` and a newline and writes them to stdout. Used by [`log!`].
#[doc(hidden)]
pub fn write_log_line(args: std::fmt::Arguments<'_>) {
    use std::cell::RefCell;
    use std::io::Write;
    use wasip2::io::streams::OutputStream;

    thread_local! {
        // The instance's stdout stream, asked for once and kept for every
        // later call (the standard library keeps its own the same way).
        static STDOUT: OutputStream = wasip2::cli::stdout::get_stdout();
        // The line being written, its room kept from call to call.
        static LINE: RefCell<Vec<u8>> = RefCell::new(Vec::with_capacity(256));
    }
    let write = |line: &mut Vec<u8>| {
        line.clear();
        // Formatting into a Vec fails only if a Display impl does; what it
        // wrote so far is still worth logging.
        let _ = line.write_fmt(args);
        line.push(b'\n');
        // Nothing buffered costs no host call: std's stdout flushes to the
        // host only what `print!` left without a newline.
        let _ = std::io::stdout().flush();
        STDOUT.with(|out| {
            for chunk in line.chunks(LOG_CHUNK) {
                // A closed stdout (the host stopped capturing) loses the
                // line, as `println!` would; it never fails the function.
                if out.blocking_write_and_flush(chunk).is_err() {
                    break;
                }
            }
        });
    };
    // A `Display` that itself logs while being formatted gets a buffer of
    // its own rather than a panic.
    LINE.with(|line| match line.try_borrow_mut() {
        Ok(mut line) => write(&mut line),
        Err(_) => write(&mut Vec::new()),
    });
}

/// Room reserved for a result before it is encoded: most results fit, so
/// the encoder does not grow its buffer (a reallocation and a copy each
/// time, from 8 bytes up) while it writes.
const OUTPUT_CAPACITY: usize = 1024;

/// Decodes the event, runs `f`, encodes its result. Used by [`handler!`].
#[doc(hidden)]
pub fn run<E, R, F>(event: String, ctx: types::Context, f: F) -> Result<String, types::FunctionError>
where
    E: DeserializeOwned,
    R: Serialize,
    F: FnOnce(E, &Context) -> Result<R, Error>,
{
    let to_wit = |e: Error| types::FunctionError { error_type: e.error_type, error_message: e.error_message };
    let event: E = serde_json::from_str(&event)
        .map_err(|e| to_wit(Error::new("Runtime.UnmarshalError", format!("Unable to unmarshal input: {e}"))))?;
    let ctx = Context::from(ctx);
    let result = f(event, &ctx).map_err(to_wit)?;
    let mut out = Vec::with_capacity(OUTPUT_CAPACITY);
    serde_json::to_writer(&mut out, &result)
        .map_err(|e| to_wit(Error::new("Runtime.MarshalError", format!("Unable to marshal response: {e}"))))?;
    // SAFETY: serde_json writes UTF-8 only (its own `to_string` relies on it too).
    Ok(unsafe { String::from_utf8_unchecked(out) })
}

/// Exports `$handler` (a `fn(Event, &Context) -> Result<Response, Error>`) as
/// the component's `handle` function.
#[macro_export]
macro_rules! handler {
    ($handler:path) => {
        struct __WasmgateHandler;
        impl $crate::bindings::Guest for __WasmgateHandler {
            fn handle(
                event: ::std::string::String,
                ctx: $crate::bindings::wasmgate::function::types::Context,
            ) -> ::std::result::Result<
                ::std::string::String,
                $crate::bindings::wasmgate::function::types::FunctionError,
            > {
                $crate::run(event, ctx, $handler)
            }
        }
        $crate::bindings::__export_handler!(__WasmgateHandler with_types_in $crate::bindings);
    };
}
