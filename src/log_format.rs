//! How a log line is written: tracing-subscriber's default ("full") format,
//! byte for byte, written without `core::fmt` where it can be.
//!
//! At the default `info` level every request logs two lines (its access
//! line and each line its function prints). Through the default formatter
//! they cost half again the instructions of the request itself: every
//! piece — the time, the level, each field's name and value — goes through
//! `write!`, each string value through `Debug`'s escaping, each integer
//! through `Formatter::pad_integral`. [`LineFormat`] writes the same text
//! directly: the time from a per-thread cache of the current second, plain
//! ASCII strings without escaping machinery (anything else still goes
//! through `Debug`, exactly as the default does), integers digit by digit.
//!
//! Coloured output (a terminal) and events inside spans are handed to the
//! default formatter: neither is on the hot path of a server whose logs go
//! to a file or a collector, and wasmgate opens no spans.

use std::fmt::{self, Write};
use std::time::{SystemTime, UNIX_EPOCH};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::field::VisitOutput;
use tracing_subscriber::fmt::format::{DefaultVisitor, Format, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// tracing-subscriber's default line format, written faster.
#[derive(Default)]
pub struct LineFormat {
    /// The default formatter, for coloured output and events in spans.
    full: Format,
}

impl<S, N> FormatEvent<S, N> for LineFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        if writer.has_ansi_escapes() || ctx.lookup_current().is_some() {
            return self.full.format_event(ctx, writer, event);
        }
        let meta = event.metadata();
        write_time(&mut writer, SystemTime::now())?;
        writer.write_str(match *meta.level() {
            Level::TRACE => " TRACE ",
            Level::DEBUG => " DEBUG ",
            Level::INFO => "  INFO ",
            Level::WARN => "  WARN ",
            Level::ERROR => " ERROR ",
        })?;
        writer.write_str(meta.target())?;
        writer.write_str(": ")?;
        let mut fields = Fields { writer: writer.by_ref(), empty: true, result: Ok(()) };
        event.record(&mut fields);
        fields.result?;
        writer.write_char('\n')
    }
}

/// Writes an event's fields as the default formatter's visitor does: the
/// message as it is (with terminal control characters escaped), every
/// other field as `name=value`, a value in its `Debug` form.
struct Fields<'w> {
    writer: Writer<'w>,
    empty: bool,
    result: fmt::Result,
}

impl Fields<'_> {
    /// The separator before a field, and its name (`r#type` is `type`).
    fn start(&mut self, field: &Field) -> bool {
        if self.result.is_err() {
            return false;
        }
        if self.empty {
            self.empty = false;
        } else {
            self.result = self.writer.write_char(' ');
        }
        if field.name() != "message" {
            let name = field.name();
            let name = name.strip_prefix("r#").unwrap_or(name);
            self.result =
                self.result.and_then(|()| self.writer.write_str(name)).and_then(|()| self.writer.write_char('='));
        }
        self.result.is_ok()
    }
}

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if !self.start(field) {
            return;
        }
        self.result = if field.name() == "message" {
            write_message(&mut self.writer, value)
        } else if value.bytes().all(|b| (b' '..=b'~').contains(&b) && b != b'"' && b != b'\\') {
            // What `Debug` prints for it: the string in quotes.
            self.writer
                .write_char('"')
                .and_then(|()| self.writer.write_str(value))
                .and_then(|()| self.writer.write_char('"'))
        } else {
            write!(self.writer, "{value:?}")
        };
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        if self.start(field) {
            self.result = write_decimal(&mut self.writer, value, false);
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        if self.start(field) {
            self.result = write_decimal(&mut self.writer, value.unsigned_abs(), value < 0);
        }
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        if self.start(field) {
            self.result = self.writer.write_str(if value { "true" } else { "false" });
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if !self.start(field) {
            return;
        }
        self.result = if field.name() == "message" {
            // A formatted message (`info!("{x}")`).
            write!(Message(&mut self.writer), "{value:?}")
        } else {
            write!(self.writer, "{value:?}")
        };
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        // Rare, and the default writes its sources too: its own visitor.
        if self.result.is_ok() {
            let mut full = DefaultVisitor::new(self.writer.by_ref(), self.empty);
            full.record_error(field, value);
            self.result = full.finish();
            self.empty = false;
        }
    }
}

/// Writes what is formatted into it as a message.
struct Message<'a, 'w>(&'a mut Writer<'w>);

impl Write for Message<'_, '_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        write_message(self.0, s)
    }
}

/// A message as the default formatter writes it: as it is, but for the
/// control characters a terminal would act on (tracing-subscriber's
/// `EscapeGuard`).
fn write_message(writer: &mut Writer<'_>, text: &str) -> fmt::Result {
    let plain = |c: char| !matches!(c, '\x1b' | '\x07' | '\x08' | '\x0c' | '\x7f' | '\u{80}'..='\u{9f}');
    if text.bytes().all(|b| b.is_ascii() && plain(b as char)) || text.chars().all(plain) {
        return writer.write_str(text);
    }
    for c in text.chars() {
        match c {
            '\x1b' => writer.write_str("\\x1b")?,
            '\x07' => writer.write_str("\\x07")?,
            '\x08' => writer.write_str("\\x08")?,
            '\x0c' => writer.write_str("\\x0c")?,
            '\x7f' => writer.write_str("\\x7f")?,
            '\u{80}'..='\u{9f}' => write!(writer, "\\u{{{:x}}}", c as u32)?,
            c => writer.write_char(c)?,
        }
    }
    Ok(())
}

/// An integer in decimal, without `core::fmt`.
fn write_decimal(writer: &mut Writer<'_>, mut value: u64, negative: bool) -> fmt::Result {
    let mut digits = [0u8; 21];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (value % 10) as u8;
        value /= 10;
        if value == 0 {
            break;
        }
    }
    if negative {
        at -= 1;
        digits[at] = b'-';
    }
    writer.write_str(std::str::from_utf8(&digits[at..]).unwrap_or_default())
}

/// The time as tracing-subscriber's default timer writes it (RFC 3339, UTC,
/// microseconds: `2026-12-01T07:24:22.979179Z`). The date and time of day
/// are kept per thread for the current second.
fn write_time(writer: &mut Writer<'_>, now: SystemTime) -> fmt::Result {
    thread_local! {
        static SECOND: std::cell::Cell<(u64, [u8; 19])> = const { std::cell::Cell::new((u64::MAX, [0; 19])) };
    }
    let since = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (cached, mut text) = SECOND.get();
    if cached != secs {
        text = date_time(secs);
        SECOND.set((secs, text));
    }
    let mut micros = [b'.', 0, 0, 0, 0, 0, 0, b'Z'];
    fill_digits(&mut micros[1..7], u64::from(since.subsec_micros()));
    writer.write_str(std::str::from_utf8(&text).unwrap_or_default())?;
    writer.write_str(std::str::from_utf8(&micros).unwrap_or_default())
}

/// Fills `out` with the low decimal digits of `value`, zero-padded.
fn fill_digits(out: &mut [u8], mut value: u64) {
    for slot in out.iter_mut().rev() {
        *slot = b'0' + (value % 10) as u8;
        value /= 10;
    }
}

/// `YYYY-MM-DDTHH:MM:SS` of a Unix time in seconds (UTC; the proleptic
/// Gregorian calendar, from days since the epoch as in Howard Hinnant's
/// `civil_from_days`).
fn date_time(secs: u64) -> [u8; 19] {
    let days = (secs / 86_400) as i64;
    let of_day = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let mut out = *b"0000-00-00T00:00:00";
    let mut put = |at: usize, width: usize, value: u64| fill_digits(&mut out[at..at + width], value);
    put(0, 4, year.clamp(0, 9999) as u64);
    put(5, 2, month as u64);
    put(8, 2, day as u64);
    put(11, 2, of_day / 3600);
    put(14, 2, of_day / 60 % 60);
    put(17, 2, of_day % 60);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// Captures what a subscriber writes.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn emit_all() {
        let ip: std::net::IpAddr = "127.0.0.1".parse().unwrap();
        tracing::info!(target: "wasmgate::access", request_id = "6e9f2e94-93d5", ip = %ip, method = %"GET",
            path = %"/prod/items", status = 200u16, bytes = 148usize, latency_us = 240u64);
        let line = "Event: {\"ID\": 2}";
        tracing::info!(target: "wasmgate::function", request_id = "r-1", function = "ItemsFunction", version = "$LATEST", "{line}");
        tracing::info!(target: "wasmgate::function", message = line, request_id = "r-1", function = "ItemsFunction");
        tracing::warn!(target: "wasmgate::function", message = "printed \x1b[31mred\x1b[0m, a bell \x07 and \u{85} ünïcode\ttab");
        tracing::error!(
            quoted = "a \"quote\" and a \\ and a tab\t and é",
            negative = -42i64,
            min = i64::MIN,
            max = u64::MAX,
            flag = true,
            ratio = 0.5f64,
            r#type = "raw",
            "failed: {}",
            "why \x1b"
        );
        let error = std::io::Error::other("disk full");
        tracing::warn!(error = &error as &(dyn std::error::Error + 'static), after = 1u64, "write failed");
        tracing::debug!(empty = "", "");
        tracing::info!(only = 1u64);
        tracing::info!("no fields at all");
    }

    /// The lines without their timestamps (the first word).
    fn lines(text: &[u8]) -> Vec<String> {
        String::from_utf8_lossy(text).lines().map(|l| l.split_once(' ').unwrap().1.to_string()).collect()
    }

    #[test]
    fn lines_are_those_of_the_default_format() {
        let ours = Captured::default();
        let theirs = Captured::default();
        let make = |out: Captured| move || out.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(Level::TRACE)
            .with_ansi(false)
            .event_format(LineFormat::default())
            .with_writer(make(ours.clone()))
            .finish();
        tracing::subscriber::with_default(subscriber, emit_all);
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(Level::TRACE)
            .with_ansi(false)
            .with_writer(make(theirs.clone()))
            .finish();
        tracing::subscriber::with_default(subscriber, emit_all);
        let (ours, theirs) = (ours.0.lock().unwrap().clone(), theirs.0.lock().unwrap().clone());
        assert_eq!(lines(&ours).len(), 9);
        assert_eq!(lines(&ours), lines(&theirs));
    }

    #[test]
    fn times_are_written_as_the_default_timer_writes_them() {
        use tracing_subscriber::fmt::time::FormatTime;
        for _ in 0..5 {
            let mut ours = String::new();
            write_time(&mut Writer::new(&mut ours), SystemTime::now()).unwrap();
            let mut theirs = String::new();
            tracing_subscriber::fmt::time::SystemTime.format_time(&mut Writer::new(&mut theirs)).unwrap();
            assert_eq!(ours.len(), theirs.len(), "{ours} / {theirs}");
            // The same second (or the next one, taken just after).
            if ours[..19] == theirs[..19] {
                return;
            }
        }
        panic!("the second never matched");
    }

    #[test]
    fn dates_follow_the_calendar() {
        let at = |secs| String::from_utf8(date_time(secs).to_vec()).unwrap();
        assert_eq!(at(0), "1970-01-01T00:00:00");
        assert_eq!(at(951_782_400), "2000-02-29T00:00:00");
        assert_eq!(at(1_709_251_199), "2024-02-29T23:59:59");
        assert_eq!(at(1_798_761_599), "2026-12-31T23:59:59");
        assert_eq!(at(4_102_444_800), "2100-01-01T00:00:00");
    }
}
