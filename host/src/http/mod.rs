//! HTTP plumbing shared by the gateway and the admin listener: the accept
//! loop (HTTP/1.1 and HTTP/2 over cleartext, keep-alive, a header read
//! timeout), graceful shutdown that finishes requests in flight, bounded body
//! reading (a size limit, and a longest pause between a body's pieces), and
//! small response helpers. [`header_case`] records the headers of
//! HTTP/1.1 requests as the client sent them.
//!
//! The header read timeout is kept per connection, not per request: hyper's
//! own (`http1().header_read_timeout`) arms a fresh timer for every request
//! head, which costs a quarter of a small request's time under load. Here a
//! connection counts its requests in flight and stamps the end of the last
//! one; one timer per connection, re-armed only when it fires, closes a
//! connection that has had no request in flight for the timeout — a client
//! slow to send its headers, or a keep-alive connection left idle, exactly
//! the connections hyper's timer would close. A request in flight is never
//! cut: its connection is not idle. An idle HTTP/2 connection is closed the
//! same way, but gracefully (GOAWAY first: a stream the client opened as it
//! went idle is still answered); hyper's own timer leaves HTTP/2 alone, so
//! idle h2c clients would otherwise hold their sockets forever.
//!
//! A response still being written is not idle either: a client reading a
//! large response slowly leaves hyper's writes waiting on the socket, and
//! until hyper has handed the whole response to the kernel
//! ([`WriteProgress`]) the connection counts as busy, as with a request in
//! flight; its idle time counts from then. (Progress of the waiting writes
//! would be no measure: the kernel's send buffer, megabytes deep, lets a
//! write through only long after the client read a little.)
//!
//! Graceful shutdown is kept per connection too ([`OpenConnections`]): each
//! connection has its own stop signal, so serving a request touches nothing
//! that other connections share. hyper-util's `GracefulShutdown` would do
//! for shutdown alone, but it takes each connection into a future of its
//! own, and the watchdog needs the connection itself: it sends GOAWAY to an
//! HTTP/2 connection that has gone idle. (hyper's own header read timeout
//! is no substitute either: it arms a timer per request head, a quarter of
//! a small request's throughput, and leaves HTTP/2 alone; see
//! `benches/README.md`.)
//!
//! The listener caps the requests in flight across all its connections
//! ([`ServeOptions::max_in_flight`]; HTTP/2 lets one connection open many
//! streams, each with a body): one over the cap is answered at once with
//! the handler's [`Handler::overloaded`] response, and the server goes on
//! serving the others.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode, header};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;

pub mod header_case;
use header_case::CaseRecorder;
use tokio::time::Instant as TokioInstant;

/// The response body type of both listeners.
pub type Body = Full<Bytes>;

/// How a listener treats its connections.
#[derive(Debug, Clone, Copy)]
pub struct ServeOptions {
    /// How long a client may take to send a request's headers (HTTP/1.1)
    /// before its connection is closed: a slow client cannot hold a
    /// connection open forever.
    pub header_read_timeout: Duration,
    /// The longest pause between two pieces of a request's body: past it
    /// [`read_body`] gives up. (The connection's watchdog leaves requests in
    /// flight alone, so without this a client that stopped sending its body
    /// would hold its connection forever.)
    pub body_read_timeout: Duration,
    /// How long shutdown waits for requests in flight.
    pub grace: Duration,
    /// Record HTTP/1.1 headers as sent ([`header_case`]): the handler then
    /// has them in [`RequestConn::headers`].
    pub preserve_header_case: bool,
    /// Most requests in flight at once, over all connections; beyond it a
    /// request gets [`Handler::overloaded`].
    pub max_in_flight: usize,
}

/// The default of [`ServeOptions::max_in_flight`].
pub const DEFAULT_MAX_IN_FLIGHT: usize = 1024;

/// What the listener knows of a request beyond its HTTP message.
#[derive(Debug, Clone)]
pub struct RequestConn {
    /// The client's address.
    pub peer: SocketAddr,
    /// Its headers as sent (names spelled so, in arrival order), where the
    /// listener recorded them ([`ServeOptions::preserve_header_case`], HTTP/1.1).
    pub headers: Option<header_case::RequestHeaders>,
}

/// A request's body as the listener hands it over: hyper's, with the
/// listener's longest pause between its pieces. Read it with [`read_body`].
#[derive(Debug)]
pub struct RequestBody {
    body: Incoming,
    idle: Duration,
    /// The client waits for `100 Continue` before it sends the body.
    expects_continue: bool,
}

impl RequestBody {
    /// The request has no body (a GET, `Content-Length: 0`): a handler need
    /// not start [`read_body`]'s future for it.
    pub fn is_empty(&self) -> bool {
        hyper::body::Body::is_end_stream(&self.body)
    }
}

/// Something that answers requests.
pub trait Handler: Send + Sync + 'static {
    /// Answers `req`. The call itself runs as hyper hands the request over;
    /// the future it returns runs afterwards.
    ///
    /// Take what the request's head holds during the call, and drop the head
    /// before returning: its header values share the connection's read
    /// buffer, and hyper reads from the connection again while a request is
    /// in flight (to notice a client that went away). A head still alive
    /// then makes that read allocate a new buffer, on every request.
    fn handle(
        handler: Arc<Self>,
        req: Request<RequestBody>,
        conn: RequestConn,
    ) -> impl Future<Output = Response<Body>> + Send + 'static;

    /// The answer to a request over [`ServeOptions::max_in_flight`]: by
    /// default 503 with `Retry-After: 1`.
    fn overloaded(&self) -> Response<Body> {
        let mut resp = json(StatusCode::SERVICE_UNAVAILABLE, &serde_json::json!({"message": "Service Unavailable"}));
        resp.headers_mut().insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
        resp
    }
}

/// Accepts connections on `listener` and serves them with `handler` until
/// `shutdown` resolves; then stops accepting and waits (up to the grace
/// period) for the requests in flight to finish.
pub async fn serve<H: Handler>(
    listener: TcpListener,
    handler: Arc<H>,
    shutdown: impl Future<Output = ()>,
    options: ServeOptions,
) {
    let grace = options.grace;
    let body_idle = options.body_read_timeout;
    let in_flight_cap = Arc::new(InFlightCap { max: options.max_in_flight, now: AtomicUsize::new(0) });
    let mut open = OpenConnections::new();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // The header read timeout is the connection watchdog's (see the module docs).
    // `writev(false)`: a response's head and body go out as one buffer in
    // one `write` — for the small bodies an API returns, copying the body is
    // cheaper than a vectored write (4% more requests/s under load).
    builder.http1().header_read_timeout(None).keep_alive(true).writev(false);
    builder.http2().timer(TokioTimer::new());
    let epoch = Instant::now();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // Out of file descriptors and the like: back off, keep serving.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        // Responses are small and latency matters more than packet count.
        let _ = stream.set_nodelay(true);
        let handler = handler.clone();
        let activity = Arc::new(Activity::new(epoch, in_flight_cap.clone()));
        let watched = activity.clone();
        let (stream, recorded) = CaseRecorder::new(stream, options.preserve_header_case);
        let stream = WriteProgress { inner: stream, activity: activity.clone(), blocked: false };
        let service = hyper::service::service_fn(move |req: Request<Incoming>| {
            // `None`: over the listener's cap on requests in flight.
            let in_flight = activity.clone().begin(req.version());
            // Nothing is queued when the recorder is off (disabled, HTTP/2).
            let conn = RequestConn { peer, headers: recorded.pop() };
            // Looked up only for a request with a body: a GET pays nothing.
            let expects_continue = !hyper::body::Body::is_end_stream(req.body())
                && req
                    .headers()
                    .get(header::EXPECT)
                    .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
            let req = req.map(|body| RequestBody { body, idle: body_idle, expects_continue });
            // Boxed once here: the handler's future is large, and hyper and
            // the wrapper below would otherwise each copy it whole.
            let answer = match in_flight {
                Some(_) => Ok(crate::boxed::boxed_in_place(|| H::handle(handler.clone(), req, conn))),
                None => Err(handler.overloaded()),
            };
            async move {
                let resp = match answer {
                    Ok(answer) => answer.await,
                    Err(refused) => refused,
                };
                drop(in_flight);
                Ok::<_, Infallible>(resp)
            }
        });
        let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), service).into_owned();
        let timeout = options.header_read_timeout;
        let (stop, open_guard) = open.add();
        tokio::spawn(async move {
            let _open = open_guard;
            let mut conn = std::pin::pin!(conn);
            let mut watchdog = std::pin::pin!(tokio::time::sleep(timeout));
            // Until it fires, or the connection goes away on its own (HTTP/2).
            let mut stop = Some(stop);
            let side = SideWake::new();
            let side_waker = Waker::from(side.clone());
            std::future::poll_fn(|cx| {
                if side.take(cx) {
                    let mut side_cx = Context::from_waker(&side_waker);
                    // Shutdown: finish the request in flight, take no more.
                    if let Some(signal) = &mut stop
                        && Pin::new(signal).poll(&mut side_cx).is_ready()
                    {
                        stop = None;
                        conn.as_mut().graceful_shutdown();
                    }
                    while watchdog.as_mut().poll(&mut side_cx).is_ready() {
                        match watched.idle_deadline(timeout) {
                            // Idle for the whole timeout (nothing is in
                            // flight): close. HTTP/2 gets GOAWAY first, and
                            // the connection ends once its streams are done
                            // (or, still open and idle a timeout later, is
                            // closed).
                            Some(deadline) if deadline <= Instant::now() => {
                                if !watched.is_http2() || stop.is_none() {
                                    tracing::debug!(%peer, "no request within the header read timeout; closing");
                                    return Poll::Ready(());
                                }
                                tracing::debug!(%peer, "HTTP/2 connection idle for the timeout; going away");
                                stop = None;
                                conn.as_mut().graceful_shutdown();
                                watched.idle_from_now();
                                watchdog.as_mut().reset(TokioInstant::now() + timeout);
                            }
                            Some(deadline) => watchdog.as_mut().reset(TokioInstant::from_std(deadline)),
                            None => watchdog.as_mut().reset(TokioInstant::now() + timeout),
                        }
                    }
                }
                conn.as_mut().poll(cx).map(|ended| {
                    if let Err(e) = ended {
                        tracing::debug!(error = %e, %peer, "connection ended with an error");
                    }
                })
            })
            .await;
        });
    }
    drop(listener);
    if tokio::time::timeout(grace, open.shut_down()).await.is_err() {
        tracing::warn!("requests still in flight after the grace period; closing");
    }
}

/// The listener's open connections, for graceful shutdown: each gets a
/// stop signal of its own and holds a guard until it ends.
///
/// hyper-util's `GracefulShutdown` does the same through one shared watch
/// channel, whose every poll — at least twice per request on every
/// connection — takes the channel's one lock; here a connection's poll
/// touches only its own signal.
struct OpenConnections {
    stops: Vec<tokio::sync::oneshot::Sender<()>>,
    done_tx: tokio::sync::mpsc::Sender<()>,
    done_rx: tokio::sync::mpsc::Receiver<()>,
}

impl OpenConnections {
    fn new() -> Self {
        let (done_tx, done_rx) = tokio::sync::mpsc::channel(1);
        OpenConnections { stops: Vec::new(), done_tx, done_rx }
    }

    /// A new connection's stop signal, and the guard it holds while open.
    fn add(&mut self) -> (tokio::sync::oneshot::Receiver<()>, tokio::sync::mpsc::Sender<()>) {
        if self.stops.len() == self.stops.capacity() {
            // Forget the connections that ended (amortised: only when full).
            self.stops.retain(|s| !s.is_closed());
        }
        let (stop, stopped) = tokio::sync::oneshot::channel();
        self.stops.push(stop);
        (stopped, self.done_tx.clone())
    }

    /// Tells every open connection to stop and waits until all have ended.
    async fn shut_down(self) {
        let OpenConnections { stops, done_tx, mut done_rx } = self;
        for stop in stops {
            let _ = stop.send(());
        }
        drop(done_tx);
        // Every guard dropped: `recv` returns `None`.
        while done_rx.recv().await.is_some() {}
    }
}

/// What a connection is doing, for its watchdog: requests in flight, and
/// when the last one ended (milliseconds since the listener started; the
/// connection's start before its first request).
struct Activity {
    epoch: Instant,
    in_flight: AtomicUsize,
    last_end_ms: AtomicU64,
    /// The connection speaks HTTP/2: closed with GOAWAY first, since its
    /// client may be opening a stream just as the watchdog fires.
    http2: AtomicBool,
    /// A write waited on the socket and what hyper holds is not yet all
    /// written ([`WriteProgress`]): a response is still on its way.
    writing: AtomicBool,
    /// The listener's requests in flight, which each of its requests counts
    /// itself into as well.
    cap: Arc<InFlightCap>,
}

impl Activity {
    fn new(epoch: Instant, cap: Arc<InFlightCap>) -> Self {
        Activity {
            cap,
            epoch,
            in_flight: AtomicUsize::new(0),
            last_end_ms: AtomicU64::new(Self::ms_since(epoch)),
            http2: AtomicBool::new(false),
            writing: AtomicBool::new(false),
        }
    }

    fn ms_since(epoch: Instant) -> u64 {
        epoch.elapsed().as_millis() as u64
    }

    /// Counts a request in, on the connection and against the listener's
    /// cap, until the guard drops; `None` when the cap is reached.
    fn begin(self: Arc<Self>, version: hyper::Version) -> Option<InFlight> {
        if version == hyper::Version::HTTP_2 {
            self.http2.store(true, Ordering::Release);
        }
        let cap = &self.cap;
        if cap.now.fetch_add(1, Ordering::AcqRel) >= cap.max {
            cap.now.fetch_sub(1, Ordering::AcqRel);
            tracing::warn!(max_in_flight = cap.max, "request refused: too many requests in flight");
            return None;
        }
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        Some(InFlight(self))
    }

    /// When the connection will have been idle for `timeout`, or `None`
    /// while a request is in flight.
    fn idle_deadline(&self, timeout: Duration) -> Option<Instant> {
        if self.in_flight.load(Ordering::Acquire) > 0 || self.writing.load(Ordering::Acquire) {
            return None;
        }
        Some(self.epoch + Duration::from_millis(self.last_end_ms.load(Ordering::Acquire)) + timeout)
    }

    fn is_http2(&self) -> bool {
        self.http2.load(Ordering::Acquire)
    }

    /// Counts the connection idle from now: a request ended, or it was told
    /// to go away.
    fn idle_from_now(&self) {
        self.last_end_ms.store(Self::ms_since(self.epoch), Ordering::Release);
    }
}

struct InFlight(Arc<Activity>);

/// The listener's requests in flight, against its cap.
struct InFlightCap {
    max: usize,
    now: AtomicUsize,
}

/// A connection's stream that tells its [`Activity`] while a response is
/// still being written: from a write that had to wait on the socket (the
/// client reads slowly) until hyper has written all it holds and flushes.
/// A write that does not wait — nearly all of them — costs one flag test.
struct WriteProgress<S> {
    inner: S,
    activity: Arc<Activity>,
    /// A write waited, and hyper has not flushed since.
    blocked: bool,
}

impl<S> WriteProgress<S> {
    fn note(&mut self, polled: &Poll<std::io::Result<usize>>) {
        if polled.is_pending() && !self.blocked {
            self.blocked = true;
            self.activity.writing.store(true, Ordering::Release);
        }
    }

    /// hyper flushes once it has written everything it held.
    fn flushed(&mut self) {
        if self.blocked {
            self.blocked = false;
            self.activity.idle_from_now();
            self.activity.writing.store(false, Ordering::Release);
        }
    }
}

impl<S: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for WriteProgress<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for WriteProgress<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.note(&polled);
        polled
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.note(&polled);
        polled
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let polled = Pin::new(&mut self.inner).poll_flush(cx);
        if polled.is_ready() {
            self.flushed();
        }
        polled
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The waker a connection's stop signal and watchdog get: it raises a flag
/// before it wakes the connection's task, and the task polls them only when
/// the flag is up — not on each of the connection's own wakes, at least one
/// per request, each of which would otherwise poll both (their state lies
/// in cache lines of their own, which a request need not touch).
struct SideWake {
    woken: AtomicBool,
    task: parking_lot::Mutex<Option<Waker>>,
}

impl SideWake {
    /// Up at first, so that the first poll registers them.
    fn new() -> Arc<Self> {
        Arc::new(SideWake { woken: AtomicBool::new(true), task: parking_lot::Mutex::new(None) })
    }

    /// Whether they woke the task since they were last polled (lowering the
    /// flag); if so, the task's waker is kept for their next wake.
    fn take(&self, cx: &Context<'_>) -> bool {
        if !self.woken.load(Ordering::Acquire) || !self.woken.swap(false, Ordering::AcqRel) {
            return false;
        }
        let mut task = self.task.lock();
        if !task.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            *task = Some(cx.waker().clone());
        }
        true
    }
}

impl std::task::Wake for SideWake {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        if let Some(task) = self.task.lock().as_ref() {
            task.wake_by_ref();
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.idle_from_now();
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
        self.0.cap.now.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Why a body could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("request body larger than {0} bytes")]
    TooLarge(usize),
    #[error("could not read the request body: {0}")]
    Read(String),
    #[error("the request body paused for longer than {} ms", .0.as_millis())]
    TimedOut(Duration),
}

/// Most bytes read and thrown away after a body exceeded its limit, so that
/// the client (still sending) receives the 413 instead of a reset connection.
const DRAIN_LIMIT: usize = 256 << 20;

/// Reads the whole body, refusing more than `limit` bytes, and giving up
/// when the client pauses longer than the listener allows between pieces.
///
/// A body whose `Content-Length` is already over the limit is refused
/// before any of it is read: a client that waits for `100 Continue` never
/// gets it (and never sends the body), and one declaring more than the
/// server would ever drain gets its 413 at once.
pub async fn read_body(body: RequestBody, limit: usize) -> Result<Bytes, BodyError> {
    // No body at all (a GET, `Content-Length: 0`): nothing to poll.
    if body.is_empty() {
        return Ok(Bytes::new());
    }
    let RequestBody { mut body, idle, expects_continue } = body;
    let declared = hyper::body::Body::size_hint(&body).lower();
    if declared > limit as u64 {
        if !expects_continue && declared <= DRAIN_LIMIT as u64 {
            drain(&mut body, idle, 0).await;
        }
        return Err(BodyError::TooLarge(limit));
    }
    let mut buf = bytes::BytesMut::new();
    while let Some(frame) = next_frame(&mut body, idle).await? {
        let frame = frame.map_err(|e| BodyError::Read(e.to_string()))?;
        let Ok(data) = frame.into_data() else { continue };
        if buf.len() + data.len() > limit {
            drain(&mut body, idle, buf.len() + data.len()).await;
            return Err(BodyError::TooLarge(limit));
        }
        buf.extend_from_slice(&data);
    }
    Ok(buf.freeze())
}

/// Reads and throws away what is left of a refused body, up to
/// [`DRAIN_LIMIT`] in all (`read` bytes already), so that a client still
/// sending it receives the answer rather than a reset connection.
async fn drain(body: &mut Incoming, idle: Duration, mut read: usize) {
    while read < DRAIN_LIMIT {
        match next_frame(body, idle).await {
            Ok(Some(Ok(f))) => read += f.data_ref().map_or(0, |d| d.len()),
            _ => break,
        }
    }
}

/// The body's next frame, waiting at most `idle` for it. Usually it has
/// arrived with the head already: the timer is armed only when it has not.
async fn next_frame(
    body: &mut Incoming,
    idle: Duration,
) -> Result<Option<Result<hyper::body::Frame<Bytes>, hyper::Error>>, BodyError> {
    let mut next = body.frame();
    let first = std::future::poll_fn(|cx| std::task::Poll::Ready(std::pin::Pin::new(&mut next).poll(cx))).await;
    match first {
        std::task::Poll::Ready(frame) => Ok(frame),
        // Boxed: the timer is large, and only a body still on its way needs it.
        std::task::Poll::Pending => {
            Box::pin(tokio::time::timeout(idle, next)).await.map_err(|_| BodyError::TimedOut(idle))
        }
    }
}

/// A response with a body and content type.
pub fn response(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Response<Body> {
    let mut resp = Response::new(Full::new(body.into()));
    *resp.status_mut() = status;
    if let Ok(v) = header::HeaderValue::from_str(content_type) {
        resp.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    resp
}

/// A JSON response.
pub fn json(status: StatusCode, value: &impl serde::Serialize) -> Response<Body> {
    let body = serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec());
    response(status, "application/json", body)
}
