//! Per-invocation log capture: the guest's stdout and stderr go into one
//! bounded in-memory buffer that the runtime drains after each call, so every
//! line can be logged with its request id, function and version.
//!
//! Unlike wasmtime-wasi's `MemoryOutputPipe`, a full buffer never traps the
//! guest: further output is dropped and the log is marked truncated.

use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use parking_lot::Mutex;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError};

/// Most bytes of output kept per invocation.
pub const LOG_CAPACITY: usize = 256 * 1024;

/// How much a guest may write at once: always this much, as the pipe is
/// always writable (overflow is dropped, never an error for the guest).
const WRITE_PERMIT: usize = 64 * 1024;

#[derive(Default)]
struct Buffer {
    bytes: Vec<u8>,
    truncated: bool,
}

/// A cloneable handle on one instance's log buffer.
#[derive(Clone, Default)]
pub struct LogPipe {
    inner: Arc<Mutex<Buffer>>,
}

impl LogPipe {
    fn append(&self, data: &[u8]) {
        let mut buf = self.inner.lock();
        let room = LOG_CAPACITY.saturating_sub(buf.bytes.len());
        if data.len() > room {
            buf.truncated = true;
        }
        let take = data.len().min(room);
        buf.bytes.extend_from_slice(&data[..take]);
    }

    /// Writes a line of the host's own into the log (e.g. why an outbound
    /// request was refused), as if the guest had written it to stderr.
    pub fn line(&self, text: &str) {
        let mut line = String::with_capacity(text.len() + 1);
        line.push_str(text);
        line.push('\n');
        self.append(line.as_bytes());
    }

    /// Takes what was written since the last drain, as text.
    pub fn drain(&self) -> String {
        let mut buf = self.inner.lock();
        let mut text = String::from_utf8_lossy(&buf.bytes).into_owned();
        if buf.truncated {
            text.push_str("\n[log truncated]\n");
        }
        buf.bytes.clear();
        buf.truncated = false;
        text
    }

    /// Hands what was written since the last drain to `f` and forgets it,
    /// without copying it out (a truncated log with its marker added).
    pub fn drain_into(&self, f: impl FnOnce(&[u8])) {
        let mut buf = self.inner.lock();
        if buf.truncated {
            buf.bytes.extend_from_slice(b"\n[log truncated]\n");
        }
        f(&buf.bytes);
        buf.bytes.clear();
        buf.truncated = false;
    }

    /// Forgets what was written, without reading it.
    pub fn clear(&self) {
        let mut buf = self.inner.lock();
        buf.bytes.clear();
        buf.truncated = false;
    }
}

#[wasmtime_wasi::async_trait]
impl OutputStream for LogPipe {
    fn write(&mut self, bytes: Bytes) -> Result<(), StreamError> {
        self.append(&bytes);
        Ok(())
    }
    fn flush(&mut self) -> Result<(), StreamError> {
        Ok(())
    }
    fn check_write(&mut self) -> Result<usize, StreamError> {
        Ok(WRITE_PERMIT)
    }
    // The two below do what the trait's defaults do, without their waiting:
    // this stream never has to wait. The defaults box a future for every
    // readiness check, and `blocking-write-and-flush` (what the guest SDK's
    // `log!` calls) makes two: four allocations per line logged.
    async fn write_ready(&mut self) -> Result<usize, StreamError> {
        Ok(WRITE_PERMIT)
    }
    async fn blocking_write_and_flush(&mut self, bytes: Bytes) -> Result<(), StreamError> {
        self.append(&bytes);
        Ok(())
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for LogPipe {
    async fn ready(&mut self) {}
}

impl tokio::io::AsyncWrite for LogPipe {
    fn poll_write(self: std::pin::Pin<&mut Self>, _cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        self.append(buf);
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: std::pin::Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: std::pin::Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl IsTerminal for LogPipe {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for LogPipe {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overflow_is_dropped_and_marked() {
        let pipe = LogPipe::default();
        pipe.append(&vec![b'x'; LOG_CAPACITY + 10]);
        let text = pipe.drain();
        assert!(text.ends_with("[log truncated]\n"));
        assert_eq!(text.len(), LOG_CAPACITY + "\n[log truncated]\n".len());
        assert_eq!(pipe.drain(), "");
    }

    #[test]
    fn clearing_forgets_the_output_and_its_truncation() {
        let pipe = LogPipe::default();
        pipe.append(&vec![b'x'; LOG_CAPACITY + 10]);
        pipe.clear();
        assert_eq!(pipe.drain(), "");
        pipe.append(b"next");
        assert_eq!(pipe.drain(), "next");
    }

    /// What the guest SDK's `log!` calls, as wasmtime-wasi's host calls it.
    #[tokio::test]
    async fn blocking_writes_land_in_the_buffer_and_overflow_is_marked() {
        let pipe = LogPipe::default();
        let mut stream = pipe.p2_stream();
        assert_eq!(stream.write_ready().await.unwrap(), WRITE_PERMIT);
        stream.blocking_write_and_flush(Bytes::from_static(b"one\n")).await.unwrap();
        stream.blocking_write_and_flush(Bytes::from_static(b"two\n")).await.unwrap();
        assert_eq!(pipe.drain(), "one\ntwo\n");
        for _ in 0..=LOG_CAPACITY / 4096 {
            stream.blocking_write_and_flush(Bytes::from(vec![b'x'; 4096])).await.unwrap();
        }
        let text = pipe.drain();
        assert!(text.ends_with("[log truncated]\n"), "{}", &text[text.len() - 40..]);
        assert_eq!(text.len(), LOG_CAPACITY + "\n[log truncated]\n".len());
    }
}
