//! Where log lines go: stderr, through a queue and one writer thread.
//!
//! A request only formats its lines (tracing's formatter does that per
//! event, into a buffer of its own) and appends each whole line to a queue
//! in memory; the writer thread writes whatever has queued up in one go.
//! Written in place, every line was a `write` on the request's path — an
//! access line and each line a function prints — serialised on stderr's
//! lock; and a reader of stderr that stops reading (a full pipe, a stalled
//! collector) stalled every request with it.
//!
//! The queue is bounded in bytes, not lines (a function may print a line of
//! a quarter of a megabyte): when it is full a line is dropped whole and
//! counted, and the writer reports the count once the output moves again.
//! Requests never wait for the log.

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tracing_subscriber::fmt::MakeWriter;

/// Most bytes of log lines waiting to be written.
const QUEUE_BYTES: usize = 16 << 20;
/// Room the writer's batch keeps between writes (a burst may have grown it
/// to the whole queue).
const KEEP_BYTES: usize = 256 << 10;
/// How often, at most, the writer reports lines it had to drop.
const REPORT_EVERY: Duration = Duration::from_secs(5);
/// How long the writer lets lines gather once the queue has some: lines
/// reach stderr this much later, and the writer wakes at most once per it.
const GATHER: Duration = Duration::from_millis(5);
/// How long exiting waits for the queue to be written out.
const EXIT_WAIT: Duration = Duration::from_secs(2);

#[derive(Default)]
struct Queue {
    bytes: Vec<u8>,
    closed: bool,
}

#[derive(Default)]
struct Shared {
    queue: Mutex<Queue>,
    /// Signalled when the queue stops being empty, or closes.
    filled: Condvar,
    dropped: AtomicU64,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        // A panic while holding the lock leaves whole lines behind: go on.
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The log's writer: give it to the formatter as its `MakeWriter`.
pub struct LogOutput {
    shared: Arc<Shared>,
}

/// Ends the writer thread when dropped, after it wrote out the queue (or
/// after [`EXIT_WAIT`], if the output does not move).
pub struct LogGuard {
    shared: Arc<Shared>,
    done: std::sync::mpsc::Receiver<()>,
}

impl LogOutput {
    /// Starts the writer thread, writing to `out`.
    pub fn start(out: impl Write + Send + 'static) -> (LogOutput, LogGuard) {
        let shared = Arc::new(Shared::default());
        let (done_tx, done) = std::sync::mpsc::channel();
        let writer = shared.clone();
        std::thread::Builder::new()
            .name("wasmgate-log".into())
            .spawn(move || {
                write_until_closed(&writer, out);
                let _ = done_tx.send(());
            })
            .expect("spawn the log writer thread");
        (LogOutput { shared: shared.clone() }, LogGuard { shared, done })
    }

    /// Queues one whole line (or drops it, when the queue is full).
    fn push(&self, line: &[u8]) {
        let mut queue = self.shared.lock();
        if queue.bytes.len() + line.len() > QUEUE_BYTES {
            self.shared.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let was_empty = queue.bytes.is_empty();
        queue.bytes.extend_from_slice(line);
        drop(queue);
        // The writer only waits on an empty queue: one wake-up per batch.
        if was_empty {
            self.shared.filled.notify_one();
        }
    }
}

fn write_until_closed(shared: &Shared, mut out: impl Write) {
    let mut batch = Vec::new();
    let mut reported = 0;
    let mut last_report: Option<Instant> = None;
    loop {
        {
            let mut queue = shared.lock();
            while queue.bytes.is_empty() && !queue.closed {
                queue = shared.filled.wait(queue).unwrap_or_else(|e| e.into_inner());
            }
            if queue.bytes.is_empty() {
                return;
            }
            if !queue.closed {
                // Let a batch gather: woken for every line, this thread would
                // cost a context switch per request on a busy server.
                drop(queue);
                std::thread::sleep(GATHER);
                queue = shared.lock();
            }
            std::mem::swap(&mut queue.bytes, &mut batch);
        }
        // Nowhere to report a failing stderr; the lines are lost either way.
        let _ = out.write_all(&batch).and_then(|()| out.flush());
        batch.clear();
        // A burst's worth of room is not kept for good.
        batch.shrink_to(KEEP_BYTES);
        let dropped = shared.dropped.load(Ordering::Relaxed);
        if dropped > reported && last_report.is_none_or(|at| at.elapsed() >= REPORT_EVERY) {
            tracing::warn!(dropped = dropped - reported, "log lines dropped: the log output could not keep up");
            reported = dropped;
            last_report = Some(Instant::now());
        }
    }
}

impl Drop for LogGuard {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.filled.notify_one();
        let _ = self.done.recv_timeout(EXIT_WAIT);
    }
}

/// What the formatter writes one event through.
pub struct EventWriter<'a>(&'a LogOutput);

impl Write for EventWriter<'_> {
    /// tracing's formatter hands over each event whole, in one `write_all`;
    /// taking all of it (or dropping all of it) keeps lines whole.
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.push(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for LogOutput {
    type Writer = EventWriter<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        EventWriter(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An output that takes nothing until released, then keeps all.
    #[derive(Clone, Default)]
    struct Gate {
        open: Arc<(Mutex<bool>, Condvar)>,
        written: Arc<Mutex<Vec<u8>>>,
    }

    impl Write for Gate {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let (open, cv) = &*self.open;
            let mut open = open.lock().unwrap();
            while !*open {
                open = cv.wait(open).unwrap();
            }
            self.written.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_stalled_output_drops_whole_lines_and_never_blocks() {
        let gate = Gate::default();
        let (log, guard) = LogOutput::start(gate.clone());
        let line = vec![b'x'; 1 << 20];
        let mut line = line;
        *line.last_mut().unwrap() = b'\n';
        // Far more than the queue holds; none of these writes waits.
        for _ in 0..64 {
            log.make_writer().write_all(&line).unwrap();
        }
        let dropped = log.shared.dropped.load(Ordering::Relaxed);
        // The queue holds 16 of them, and the writer took at most a queue's worth before it stalled.
        assert!(dropped >= 64 - 32, "{dropped} dropped");
        *gate.open.0.lock().unwrap() = true;
        gate.open.1.notify_all();
        drop(guard);
        let written = gate.written.lock().unwrap();
        assert_eq!(written.len() % line.len(), 0, "only whole lines");
        assert_eq!(written.len() / line.len(), 64 - dropped as usize);
    }
}
