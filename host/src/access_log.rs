//! Access logs of the stages, as a stage's `accessLogSettings` on API Gateway: a line
//! per request, in a format of `$context` variables — the console's
//! presets by name (`CLF`, `JSON`, `XML`, `CSV`) or one's own — written to a
//! file of the stage's or to the server's log.
//!
//! A format is parsed once, when the configuration is read: a variable
//! API Gateway does not define is an error there, and so is a format
//! without `$context.requestId` or `$context.extendedRequestId` (API
//! Gateway requires one of them). A value that is not there is `-`, as on
//! AWS. Values are escaped so that a line stays one line and a preset's
//! output stays well-formed: `"`, `\` and control characters as in a JSON
//! string, and in an XML format (one that starts with `<`) XML's five
//! characters as entities. The values come from the gateway (its
//! [`Values`] for a request served).
//!
//! Each line is also kept with the stage's recent logs (`wasmgate logs
//! --api --stage`). A file is written by a thread of its own ([`FileSink`]):
//! a request hands its line over and goes on; the thread writes what has
//! come in batches, so a line is in its file within about 200 ms (at once
//! when the server stops). Stages that name the same file share its writer.
//! [`AccessLogs::reopen`] (the server's SIGUSR1, as nginx's) has each file
//! opened again by its name, for log rotation: what was written before it
//! stays in the file renamed.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::recent_logs::{RecentLogs, Stream};

/// The console's presets, by name.
pub const PRESETS: [(&str, &str); 4] = [
    (
        "CLF",
        "$context.identity.sourceIp $context.identity.caller $context.identity.user [$context.requestTime] \
         \"$context.httpMethod $context.resourcePath $context.protocol\" $context.status $context.responseLength \
         $context.requestId $context.extendedRequestId",
    ),
    (
        "JSON",
        "{ \"requestId\":\"$context.requestId\", \"extendedRequestId\":\"$context.extendedRequestId\", \
         \"ip\": \"$context.identity.sourceIp\", \"caller\":\"$context.identity.caller\", \
         \"user\":\"$context.identity.user\", \"requestTime\":\"$context.requestTime\", \
         \"httpMethod\":\"$context.httpMethod\", \"resourcePath\":\"$context.resourcePath\", \
         \"status\":\"$context.status\", \"protocol\":\"$context.protocol\", \
         \"responseLength\":\"$context.responseLength\" }",
    ),
    (
        "XML",
        "<request id=\"$context.requestId\"> <extendedRequestId>$context.extendedRequestId</extendedRequestId> \
         <ip>$context.identity.sourceIp</ip> <caller>$context.identity.caller</caller> \
         <user>$context.identity.user</user> <requestTime>$context.requestTime</requestTime> \
         <httpMethod>$context.httpMethod</httpMethod> <resourcePath>$context.resourcePath</resourcePath> \
         <status>$context.status</status> <protocol>$context.protocol</protocol> \
         <responseLength>$context.responseLength</responseLength> </request>",
    ),
    (
        "CSV",
        "$context.identity.sourceIp,$context.identity.caller,$context.identity.user,$context.requestTime,\
         $context.httpMethod,$context.resourcePath,$context.protocol,$context.status,$context.responseLength,\
         $context.requestId,$context.extendedRequestId",
    ),
];

/// The `$context` variables an access log can show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Var {
    AccountId,
    ApiId,
    DeploymentId,
    DomainName,
    DomainPrefix,
    ErrorMessage,
    ErrorMessageString,
    ErrorResponseType,
    ExtendedRequestId,
    HttpMethod,
    ApiKey,
    ApiKeyId,
    SourceIp,
    UserAgent,
    IntegrationLatency,
    IntegrationRequestId,
    IntegrationStatus,
    Path,
    Protocol,
    RequestId,
    RequestTime,
    RequestTimeEpoch,
    ResourceId,
    ResourcePath,
    ResponseLatency,
    ResponseLength,
    Stage,
    Status,
    XrayTraceId,
    /// Defined by API Gateway for what wasmgate has not (authorizers, WAF,
    /// IAM and Cognito identities, the integration's own error): `-`.
    Absent,
}

impl Var {
    /// Whether the gateway makes this variable's values itself, of
    /// characters no format escapes (digits, ids, an IP address, a time, a
    /// response type's name): they are written without being looked at.
    /// The others (a path, a header, a configured name, a message) may hold
    /// anything, and are checked.
    fn is_plain(self) -> bool {
        matches!(
            self,
            Var::AccountId
                | Var::ErrorResponseType
                | Var::ExtendedRequestId
                | Var::SourceIp
                | Var::IntegrationLatency
                | Var::IntegrationRequestId
                | Var::IntegrationStatus
                | Var::Protocol
                | Var::RequestId
                | Var::RequestTime
                | Var::RequestTimeEpoch
                | Var::ResponseLatency
                | Var::ResponseLength
                | Var::Status
                | Var::XrayTraceId
        )
    }
}

/// Every variable name, as API Gateway spells it after `$context.`.
const VARIABLES: &[(&str, Var)] = &[
    ("accountId", Var::AccountId),
    ("apiId", Var::ApiId),
    ("deploymentId", Var::DeploymentId),
    ("domainName", Var::DomainName),
    ("domainPrefix", Var::DomainPrefix),
    ("error.message", Var::ErrorMessage),
    ("error.messageString", Var::ErrorMessageString),
    ("error.responseType", Var::ErrorResponseType),
    ("error.validationErrorString", Var::Absent),
    ("extendedRequestId", Var::ExtendedRequestId),
    ("httpMethod", Var::HttpMethod),
    ("identity.accountId", Var::Absent),
    ("identity.apiKey", Var::ApiKey),
    ("identity.apiKeyId", Var::ApiKeyId),
    ("identity.caller", Var::Absent),
    ("identity.cognitoAuthenticationProvider", Var::Absent),
    ("identity.cognitoAuthenticationType", Var::Absent),
    ("identity.cognitoIdentityId", Var::Absent),
    ("identity.cognitoIdentityPoolId", Var::Absent),
    ("identity.principalOrgId", Var::Absent),
    ("identity.sourceIp", Var::SourceIp),
    ("identity.user", Var::Absent),
    ("identity.userAgent", Var::UserAgent),
    ("identity.userArn", Var::Absent),
    ("integration.error", Var::Absent),
    ("integration.integrationStatus", Var::IntegrationStatus),
    ("integration.latency", Var::IntegrationLatency),
    ("integration.requestId", Var::IntegrationRequestId),
    ("integration.status", Var::IntegrationStatus),
    ("integrationErrorMessage", Var::Absent),
    ("integrationLatency", Var::IntegrationLatency),
    ("integrationStatus", Var::IntegrationStatus),
    ("path", Var::Path),
    ("protocol", Var::Protocol),
    ("requestId", Var::RequestId),
    ("requestTime", Var::RequestTime),
    ("requestTimeEpoch", Var::RequestTimeEpoch),
    ("resourceId", Var::ResourceId),
    ("resourcePath", Var::ResourcePath),
    ("responseLatency", Var::ResponseLatency),
    ("responseLength", Var::ResponseLength),
    ("stage", Var::Stage),
    ("status", Var::Status),
    ("waf.error", Var::Absent),
    ("waf.latency", Var::Absent),
    ("waf.status", Var::Absent),
    ("wafResponseCode", Var::Absent),
    ("webaclArn", Var::Absent),
    ("xrayTraceId", Var::XrayTraceId),
];

/// Families of variables API Gateway defines for its authorizers: any
/// name under them is accepted, and is `-`.
const ABSENT_FAMILIES: &[&str] = &["authorizer.", "authorize.", "authenticate.", "customDomain."];

/// Why a format cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    #[error("an access log format is one line: it has a line break")]
    LineBreak,
    #[error("$context.{name} is not a variable an access log can show{hint}")]
    UnknownVariable { name: String, hint: String },
    #[error(
        "an access log format shows $context.requestId or $context.extendedRequestId (API Gateway requires one), \
         or is one of the presets: CLF, JSON, XML, CSV"
    )]
    NoRequestId,
    #[error("only $context variables can be in an access log format: {found:?}")]
    NotContext { found: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    /// A variable, and whether its values are checked for what needs
    /// escaping (see [`Var::is_plain`]).
    Var(Var, bool),
}

/// A parsed format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Format {
    parts: Vec<Part>,
    xml: bool,
}

impl Format {
    /// A preset by name (`CLF`, `JSON`, `XML`, `CSV`, any case) or a
    /// format of `$context` variables.
    pub fn parse(text: &str) -> Result<Format, FormatError> {
        let text = PRESETS.iter().find(|(name, _)| name.eq_ignore_ascii_case(text.trim())).map_or(text, |(_, f)| f);
        if text.contains(['\n', '\r']) {
            return Err(FormatError::LineBreak);
        }
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut rest = text;
        while let Some(at) = rest.find('$') {
            literal.push_str(&rest[..at]);
            let after = &rest[at + 1..];
            let word_len = after.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(after.len());
            if word_len == 0 {
                // A `$` before anything but a name is text.
                literal.push('$');
                rest = after;
                continue;
            }
            if &after[..word_len] != "context" || !after[word_len..].starts_with('.') {
                return Err(FormatError::NotContext { found: format!("${}", &after[..word_len]) });
            }
            let name_at = word_len + 1;
            let name = dotted_name(&after[name_at..]);
            let var = lookup(name)?;
            rest = &after[name_at + name.len()..];
            if var == Var::Absent {
                // Always `-`: text, so that a line has fewer parts to make.
                literal.push('-');
                continue;
            }
            if !literal.is_empty() {
                parts.push(Part::Text(std::mem::take(&mut literal)));
            }
            parts.push(Part::Var(var, !var.is_plain()));
        }
        literal.push_str(rest);
        if !literal.is_empty() {
            parts.push(Part::Text(literal));
        }
        if !parts.iter().any(|p| matches!(p, Part::Var(Var::RequestId | Var::ExtendedRequestId, _))) {
            return Err(FormatError::NoRequestId);
        }
        Ok(Format { parts, xml: text.trim_start().starts_with('<') })
    }

    /// The line for one request.
    pub fn render(&self, values: &dyn Values) -> String {
        let mut line = String::with_capacity(256);
        self.render_into(values, &mut line);
        line
    }

    /// The line for one request, added to `line`.
    pub fn render_into(&self, values: &dyn Values, line: &mut String) {
        for part in &self.parts {
            match part {
                Part::Text(text) => line.push_str(text),
                Part::Var(var, checked) => {
                    let start = line.len();
                    values.write(*var, line);
                    if line.len() == start {
                        line.push('-');
                    } else if *checked && needs_escape(&line[start..], self.xml) {
                        let value = line.split_off(start);
                        escape_into(&value, self.xml, line);
                    }
                }
            }
        }
    }
}

/// A variable's name: dot-separated words, so that the `.` ending a
/// sentence (or any other punctuation) is not part of it.
fn dotted_name(text: &str) -> &str {
    let mut end = 0;
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let word = bytes[i..].iter().take_while(|b| b.is_ascii_alphanumeric() || **b == b'_').count();
        if word == 0 {
            break;
        }
        i += word;
        end = i;
        if bytes.get(i) == Some(&b'.') && bytes.get(i + 1).is_some_and(|b| b.is_ascii_alphanumeric()) {
            i += 1;
        } else {
            break;
        }
    }
    &text[..end]
}

fn lookup(name: &str) -> Result<Var, FormatError> {
    if let Some((_, var)) = VARIABLES.iter().find(|(n, _)| *n == name) {
        return Ok(*var);
    }
    if ABSENT_FAMILIES.iter().any(|f| name.strip_prefix(f).is_some_and(|rest| !rest.is_empty())) {
        return Ok(Var::Absent);
    }
    let names = VARIABLES.iter().map(|(n, _)| *n);
    let hint =
        crate::suggest::closest(name, names).map(|h| format!(" (did you mean $context.{h}?)")).unwrap_or_default();
    Err(FormatError::UnknownVariable { name: name.to_string(), hint })
}

/// The bytes a value is escaped for: in JSON-style formats, and in XML ones.
static ESCAPED: [[bool; 256]; 2] = [escaped_bytes(false), escaped_bytes(true)];

const fn escaped_bytes(xml: bool) -> [bool; 256] {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = c < 0x20 || c == b'"' || c == b'\\' || (xml && matches!(c, b'<' | b'>' | b'&' | b'\''));
        b += 1;
    }
    table
}

fn needs_escape(value: &str, xml: bool) -> bool {
    let table = &ESCAPED[xml as usize];
    value.bytes().any(|b| table[b as usize])
}

fn escape_into(value: &str, xml: bool, out: &mut String) {
    if !xml {
        return crate::template::value::escape_json(value, out);
    }
    for c in value.chars() {
        match c {
            '"' => out.push_str("&quot;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\'' => out.push_str("&apos;"),
            // Not even a character reference in XML 1.0: written as text.
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
}

/// What a line's variables are read from: a request as served.
pub trait Values {
    /// Writes a variable's value (nothing when it has none: it shows `-`).
    fn write(&self, var: Var, out: &mut String);
}

/// Where a stage's lines go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// The server's own log (target `wasmgate::access_log`, at `info`).
    Server,
    /// A file: a relative path is under the data directory's `logs/`.
    File(PathBuf),
}

/// A stage's access log as configured: its format and where it goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessLogSpec {
    pub format: Format,
    pub destination: Destination,
}

/// A stage's access log as served.
pub struct StageAccessLog {
    format: Format,
    sink: Sink,
    /// `api/stage`, for the server's log.
    label: String,
    /// The stage's recent lines, for `wasmgate logs --api --stage`.
    recent: Arc<Stream>,
}

enum Sink {
    Server,
    File(Arc<FileSink>),
}

impl StageAccessLog {
    /// Writes one request's line; `time`: when it was answered, its time
    /// among the stage's recent lines.
    pub fn write(&self, values: &dyn Values, time: std::time::Instant) {
        thread_local! {
            /// Each thread renders its lines into one buffer, reused.
            static LINE: std::cell::RefCell<String> = std::cell::RefCell::new(String::with_capacity(512));
        }
        LINE.with_borrow_mut(|line| {
            line.clear();
            self.format.render_into(values, line);
            self.recent.line(line, time);
            match &self.sink {
                Sink::Server => tracing::info!(target: "wasmgate::access_log", stage = %self.label, "{line}"),
                Sink::File(file) => file.send(line),
            }
        });
    }
}

/// Most bytes a file's writer may be behind by; past it, lines are dropped
/// and counted (and the count logged), never held without bound.
const MAX_PENDING_BYTES: usize = 16 << 20;

/// How long the writer lets lines gather after the first of a batch
/// before it writes them, unless [`BATCH_BYTES`] of them come sooner (or a
/// flush is asked for, or the server stops). Each write costs the writer a
/// wake-up and the kernel's work on a cold path: at 10 ms (a hundred
/// writes a second) that was 1.6% of a loaded server's CPU; at 200 ms,
/// 0.3%. Envoy flushes its access logs every second, nginx's `flush=` is
/// usually longer: a line in its file within a fifth of a second is as
/// prompt as tailing it needs.
const GATHER: std::time::Duration = std::time::Duration::from_millis(200);

/// What a batch may hold before the writer takes it without waiting out
/// [`GATHER`]: a fast server's lines are written in batches of this size,
/// and what the two buffers hold stays far below [`MAX_PENDING_BYTES`].
const BATCH_BYTES: usize = 256 << 10;

/// A file's writer: a thread that appends what requests add to a shared
/// buffer (a line is copied in under a lock; nothing is allocated per line).
pub struct FileSink {
    shared: Arc<Pending>,
    /// The writer thread, until the file is closed for good.
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
}

#[derive(Default)]
struct Pending {
    state: Mutex<PendingState>,
    /// The writer waits here for lines (or a flush, or the end).
    work: parking_lot::Condvar,
    /// Flushers wait here for their lines to be written.
    written: parking_lot::Condvar,
}

#[derive(Default)]
struct PendingState {
    /// Lines not yet written, each with its newline.
    buf: Vec<u8>,
    /// Lines dropped since the last write (the buffer was full).
    dropped: u64,
    /// Flushes asked for, and the last one the writer has done.
    flushes_asked: u64,
    flushes_done: u64,
    /// The file is to be opened again by its name.
    reopen: bool,
    closed: bool,
}

impl FileSink {
    fn open(path: &Path) -> std::io::Result<FileSink> {
        FileSink::open_gathering(path, GATHER)
    }

    /// [`FileSink::open`], its writer letting lines gather for `gather`.
    fn open_gathering(path: &Path, gather: std::time::Duration) -> std::io::Result<FileSink> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let file = open_for_appending(path)?;
        let shared = Arc::new(Pending::default());
        let (writer, path) = (shared.clone(), path.to_path_buf());
        let writer = std::thread::Builder::new()
            .name("access-log".into())
            .spawn(move || write_lines(file, &writer, &path, gather))?;
        Ok(FileSink { shared, writer: Mutex::new(Some(writer)) })
    }

    fn send(&self, line: &str) {
        let mut state = self.shared.state.lock();
        if state.buf.len() + line.len() + 1 > MAX_PENDING_BYTES {
            state.dropped += 1;
            return;
        }
        let before = state.buf.len();
        state.buf.extend_from_slice(line.as_bytes());
        state.buf.push(b'\n');
        // The writer is told of a batch's first line, and of the line that
        // fills it: the lines between wake no one.
        let filled = before < BATCH_BYTES && state.buf.len() >= BATCH_BYTES;
        drop(state);
        if before == 0 || filled {
            self.shared.work.notify_one();
        }
    }

    /// Has the writer open the file again by its name, once the lines it
    /// has are written to the one open now.
    fn reopen(&self) {
        self.shared.state.lock().reopen = true;
        self.shared.work.notify_one();
    }

    /// Waits (up to `within`) until every line sent so far is in the file.
    fn flush(&self, within: std::time::Duration) -> bool {
        let mut state = self.shared.state.lock();
        state.flushes_asked += 1;
        let mine = state.flushes_asked;
        self.shared.work.notify_one();
        let deadline = std::time::Instant::now() + within;
        while state.flushes_done < mine {
            if self.shared.written.wait_until(&mut state, deadline).timed_out() {
                return state.flushes_done >= mine;
            }
        }
        true
    }

    /// Has the writer write what it has and end, without waiting for it.
    fn end(&self) {
        self.shared.state.lock().closed = true;
        self.shared.work.notify_one();
    }

    /// Whether the writer has ended.
    fn ended(&self) -> bool {
        self.writer.lock().as_ref().is_none_or(std::thread::JoinHandle::is_finished)
    }

    /// Has the writer write what it has and end, and waits until it has.
    fn close(&self) {
        self.end();
        if let Some(writer) = self.writer.lock().take() {
            let _ = writer.join();
        }
    }
}

impl Drop for FileSink {
    fn drop(&mut self) {
        self.end();
    }
}

fn open_for_appending(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new().create(true).append(true).open(path)
}

/// The writer thread: waits for a line, lets more gather (up to `gather`
/// or [`BATCH_BYTES`]), writes them and flushes; a failure to
/// write is logged once, until writing works again. Asked to, it opens the
/// file again by its name after writing what it has. It ends when its sink
/// is dropped, after writing what was left.
fn write_lines(mut out: std::fs::File, shared: &Pending, file: &Path, gather: std::time::Duration) {
    let path = &*file.display().to_string();
    let mut failing = false;
    let mut batch = Vec::new();
    loop {
        let (dropped, flushes, reopen, closed) = {
            let mut state = shared.state.lock();
            let asked =
                |state: &PendingState| state.flushes_asked != state.flushes_done || state.reopen || state.closed;
            while state.buf.is_empty() && !asked(&state) {
                shared.work.wait(&mut state);
            }
            // The batch's first line is in: let the rest gather.
            let deadline = std::time::Instant::now() + gather;
            while state.buf.len() < BATCH_BYTES && !asked(&state) {
                if shared.work.wait_until(&mut state, deadline).timed_out() {
                    break;
                }
            }
            // The two buffers trade places: each keeps its capacity.
            std::mem::swap(&mut batch, &mut state.buf);
            (std::mem::take(&mut state.dropped), state.flushes_asked, std::mem::take(&mut state.reopen), state.closed)
        };
        let result = out.write_all(&batch).and_then(|()| out.flush());
        batch.clear();
        match result {
            Err(e) if !failing => {
                failing = true;
                tracing::error!(path, error = %e, "the access log cannot be written: its lines are lost until it can");
            }
            Ok(()) if failing => {
                failing = false;
                tracing::warn!(path, "the access log is written again");
            }
            _ => {}
        }
        if dropped > 0 {
            tracing::warn!(path, lines = dropped, "access log lines dropped: its writer fell 16 MB behind");
        }
        if reopen {
            match open_for_appending(file) {
                Ok(reopened) => {
                    out = reopened;
                    tracing::info!(path, "the access log file is reopened");
                }
                Err(e) => {
                    tracing::error!(path, error = %e, "the access log cannot be reopened: it is written where it was")
                }
            }
        }
        {
            let mut state = shared.state.lock();
            state.flushes_done = flushes;
        }
        shared.written.notify_all();
        if closed {
            return;
        }
    }
}

/// The server's access-log files, each opened once and shared by the
/// stages that name it, across deploys; closed at a deploy after no stage
/// served names it any more.
pub struct AccessLogs {
    dir: PathBuf,
    files: Mutex<HashMap<PathBuf, Arc<FileSink>>>,
    /// Files no stage names any more, whose writers are ending.
    ending: Mutex<Vec<Arc<FileSink>>>,
    recent: Arc<RecentLogs>,
}

impl AccessLogs {
    /// `dir`: where relative file names are (the data directory's `logs/`);
    /// `recent`: where each stage's recent lines are kept.
    pub fn new(dir: PathBuf, recent: Arc<RecentLogs>) -> AccessLogs {
        AccessLogs { dir, files: Mutex::new(HashMap::new()), ending: Mutex::new(Vec::new()), recent }
    }

    /// Writes every line handed over so far to its file (as the server
    /// stops), waiting at most `within` for each file (and for the writers
    /// of the files no stage names any more to end).
    pub fn flush(&self, within: std::time::Duration) {
        for (path, sink) in self.files.lock().iter() {
            if !sink.flush(within) {
                tracing::error!(path = %path.display(), "the access log's last lines could not be written in time");
            }
        }
        for sink in self.ending.lock().drain(..) {
            sink.close();
        }
    }

    /// Has every file opened again by its name (for log rotation: a file
    /// renamed keeps what was written before).
    pub fn reopen(&self) {
        let files = self.files.lock();
        for sink in files.values() {
            sink.reopen();
        }
        tracing::info!(files = files.len(), "reopening the access log files");
    }

    /// A stage's access log (`label`: `api/stage`). A file that cannot be
    /// opened is logged, and its lines go to the server's log instead.
    ///
    /// A file no stage served names any more is closed then (its writer
    /// writing what it has first, and waited for when the server stops): a
    /// deploy that moves stages to other files closes the old ones at the
    /// deploy after it, once no request can still write to them.
    pub fn for_stage(&self, label: &str, spec: &AccessLogSpec) -> StageAccessLog {
        let wanted = match &spec.destination {
            Destination::Server => None,
            Destination::File(path) => Some(self.dir.join(path)),
        };
        let mut files = self.files.lock();
        let unnamed: Vec<Arc<FileSink>> = files
            .extract_if(|path, sink| Some(path) != wanted.as_ref() && Arc::strong_count(sink) == 1)
            .map(|(_, sink)| sink)
            .collect();
        if !unnamed.is_empty() {
            let mut ending = self.ending.lock();
            ending.retain(|sink| !sink.ended());
            for sink in unnamed {
                sink.end();
                ending.push(sink);
            }
        }
        let sink = match wanted {
            None => Sink::Server,
            Some(path) => match files.get(&path) {
                Some(sink) => Sink::File(sink.clone()),
                None => match FileSink::open(&path) {
                    Ok(sink) => {
                        let sink = Arc::new(sink);
                        files.insert(path, sink.clone());
                        Sink::File(sink)
                    }
                    Err(e) => {
                        tracing::error!(
                            stage = label,
                            path = %path.display(),
                            error = %e,
                            "the stage's access log file cannot be opened: its lines go to the server's log"
                        );
                        Sink::Server
                    }
                },
            },
        };
        drop(files);
        StageAccessLog { format: spec.format.clone(), sink, label: label.to_string(), recent: self.recent.stage(label) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_parse_and_name_the_request() {
        for (name, _) in PRESETS {
            let format = Format::parse(name).expect("a preset parses");
            assert!(format.parts.contains(&Part::Var(Var::RequestId, false)), "{name}");
            assert_eq!(format, Format::parse(&name.to_lowercase()).expect("any case"));
        }
        assert!(Format::parse("XML").expect("xml").xml);
        assert!(!Format::parse("JSON").expect("json").xml);
    }

    #[test]
    fn a_format_says_what_is_wrong() {
        let unknown = Format::parse("$context.requestId $context.integrationLatncy").unwrap_err();
        assert_eq!(
            unknown.to_string(),
            "$context.integrationLatncy is not a variable an access log can show (did you mean $context.integrationLatency?)"
        );
        assert_eq!(Format::parse("$context.status").unwrap_err(), FormatError::NoRequestId);
        assert_eq!(
            Format::parse("$context.requestId $input.body").unwrap_err(),
            FormatError::NotContext { found: "$input".into() }
        );
        assert_eq!(Format::parse("$context.requestId\n").unwrap_err(), FormatError::LineBreak);
    }

    #[test]
    fn names_end_where_words_do() {
        let format =
            Format::parse("id $context.requestId. cost $$context.responseLatency ms, $ $context.authorizer.claims.sub")
                .expect("parses");
        assert_eq!(
            format.parts,
            vec![
                Part::Text("id ".into()),
                Part::Var(Var::RequestId, false),
                Part::Text(". cost $".into()),
                Part::Var(Var::ResponseLatency, false),
                Part::Text(" ms, $ -".into()),
            ]
        );
    }

    /// A request whose path needs escaping.
    struct Quoted;

    impl Values for Quoted {
        fn write(&self, var: Var, out: &mut String) {
            match var {
                Var::RequestId => out.push_str("r-1"),
                Var::Path => out.push_str("/a\"b<c>"),
                Var::Status => out.push_str("200"),
                _ => {}
            }
        }
    }

    #[test]
    fn a_lines_values_are_escaped_and_absent_ones_are_dashes() {
        let json =
            Format::parse("$context.requestId \"$context.path\" $context.status $context.stage").expect("parses");
        assert_eq!(json.render(&Quoted), "r-1 \"/a\\\"b<c>\" 200 -");
        let xml = Format::parse("<r id=\"$context.requestId\">$context.path</r>").expect("parses");
        assert_eq!(xml.render(&Quoted), "<r id=\"r-1\">/a&quot;b&lt;c&gt;</r>");
    }

    #[test]
    fn a_full_batch_is_written_without_waiting_out_its_time() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("stage.log");
        // Lines gather for an hour: only a full batch reaches the file.
        let sink = FileSink::open_gathering(&path, std::time::Duration::from_secs(3600)).expect("opens");
        let line = "x".repeat(99);
        let lines = BATCH_BYTES / 100 + 1;
        for _ in 0..lines {
            sink.send(&line);
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        let written = loop {
            let written = std::fs::read(&path).expect("the file");
            if written.len() >= lines * 100 || std::time::Instant::now() > deadline {
                break written;
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        };
        assert_eq!(written.len(), lines * 100, "every line sent, and nothing else");
        assert!(written.split(|b| *b == b'\n').take(lines).all(|l| l == line.as_bytes()));
    }

    #[test]
    fn a_file_no_stage_names_any_more_is_closed_with_its_lines_written() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let logs = AccessLogs::new(dir.path().to_path_buf(), Arc::new(RecentLogs::default()));
        let spec = |file: &str| AccessLogSpec {
            format: Format::parse("$context.requestId").expect("parses"),
            destination: Destination::File(file.into()),
        };
        let open = |logs: &AccessLogs| {
            let mut files: Vec<PathBuf> = logs.files.lock().keys().cloned().collect();
            files.sort();
            files
        };
        let (s, t) = (logs.for_stage("A/s", &spec("a.log")), logs.for_stage("A/t", &spec("a.log")));
        s.write(&Quoted, std::time::Instant::now());
        assert_eq!(open(&logs), [dir.path().join("a.log")], "one file for both stages");
        // A deploy names other files; the one before it is still served.
        let (s2, t2) = (logs.for_stage("A/s", &spec("b.log")), logs.for_stage("A/t", &spec("b.log")));
        assert_eq!(open(&logs), [dir.path().join("a.log"), dir.path().join("b.log")]);
        // Once it is not, the next deploy closes a.log; a server that stops
        // then waits for its writer, which writes its line first.
        drop((s, t));
        let _s3 = logs.for_stage("A/s", &spec("b.log"));
        assert_eq!(open(&logs), [dir.path().join("b.log")]);
        logs.flush(std::time::Duration::from_secs(5));
        assert_eq!(std::fs::read_to_string(dir.path().join("a.log")).expect("a.log"), "r-1\n");
        assert!(logs.ending.lock().is_empty());
        drop((s2, t2));
    }

    #[test]
    fn values_are_escaped_for_their_format() {
        let mut out = String::new();
        escape_into("a\"b\\c\nd\u{1}", false, &mut out);
        assert_eq!(out, "a\\\"b\\\\c\\nd\\u0001");
        out.clear();
        escape_into("<a href='x'>&\"", true, &mut out);
        assert_eq!(out, "&lt;a href=&apos;x&apos;&gt;&amp;&quot;");
    }
}
