//! One client connection: the only code that touches a socket.
//!
//! Requests are pipelined: the connection reads the next frame while earlier requests
//! wait (a fetch long-polling, a produce request waiting for its sync), at most
//! `queued.max.requests` of them per connection, and writes the responses in request
//! order. Each request's in-order part ([`dispatch::start`]) runs before the next frame is
//! read, so two pipelined produce requests to one partition append in the order they were
//! sent; only the waits overlap, each in its own task.
//!
//! A frame is refused before it is read into memory when its size prefix exceeds
//! `socket.request.max.bytes`; an unreadable frame closes the connection with a log line,
//! after the responses to the requests before it.
//!
//! Memory held for requests is bounded by bytes, not only by count: once a frame's size
//! prefix is read, its size is taken from the connection's budget
//! (`sluice.queued.max.request.bytes.per.connection`) and the broker's
//! (`queued.max.request.bytes`) before its body is read, and given back when the frame's
//! memory is freed: the frame owns its share, so whatever keeps a view of it (a request
//! that waits, a long poll) keeps the share too. Over budget, the connection stops
//! reading and the client's requests wait in the socket. A frame larger than a whole
//! budget takes all of it and goes alone. Once a frame holds its share, its body must
//! arrive within 10 s plus a second per MiB, or the connection is closed: a client
//! trickling bodies in could otherwise hold the broker's whole budget.
//!
//! Each request's times are taken here, as Kafka's RequestMetrics splits them (see
//! [`Timing`]): a handful of clock reads per request.

use std::io;
use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use sluice_protocol::frame::FrameDecoder;
use tokio::io::{AsyncReadExt, AsyncWriteExt, Interest};
use tokio::net::tcp::{ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::api::{Part, Reply};
use crate::broker::Broker;
use crate::dispatch::{self, Outcome, Pending};
use crate::storage::{sendfile, FileSlice};

/// Bytes of responses built in memory (not file slices) that one connection may hold
/// while its client is slow to read them; past it the connection stops reading requests.
/// A single larger response still goes out, alone.
const BUFFERED_RESPONSE_KIB: u32 = 4096;

/// A request on its way to the writer: its outcome, or the task computing it, and the
/// permits it holds until its response is written (one of `queued.max.requests`, and its
/// response's size in [`BUFFERED_RESPONSE_KIB`]). Its frame's share of the
/// [`RequestBudget`] is held by the frame itself ([`BudgetedFrame`]).
struct InFlight {
    answer: Answer,
    request: OwnedSemaphorePermit,
    buffered: Option<OwnedSemaphorePermit>,
    timing: Option<Timing>,
}

/// When a request reached each step, for its API's [`crate::metrics::RequestTimes`].
#[derive(Debug, Clone, Copy)]
struct Timing {
    api_key: i16,
    /// The whole frame was in.
    received: Instant,
    /// Its in-order part started, and ended.
    local_start: Instant,
    local_end: Instant,
}

impl Timing {
    /// Records the request's times, given when its outcome was ready and when the writer
    /// took it up and finished writing it.
    fn record(&self, broker: &Broker, ready: Instant, write_start: Instant, write_end: Instant) {
        let Some(t) = broker.metrics.times(self.api_key) else { return };
        t.request_queue.record(self.local_start - self.received);
        t.local.record(self.local_end - self.local_start);
        t.remote.record(ready.saturating_duration_since(self.local_end));
        t.response_queue.record(write_start.saturating_duration_since(ready));
        t.response_send.record(write_end - write_start);
        t.total.record(write_end - self.received);
    }
}

/// Budgets, in KiB, for the bytes of requests held: the connection's own and the
/// broker's, shared by every connection.
#[derive(Debug, Clone)]
pub struct RequestBudget {
    connection: Arc<Semaphore>,
    connection_kib: u32,
    broker: Option<(Arc<Semaphore>, u32)>,
}

/// A frame's share of the [`RequestBudget`], given back when dropped.
#[derive(Debug)]
struct FrameBytes {
    _connection: OwnedSemaphorePermit,
    _broker: Option<OwnedSemaphorePermit>,
}

/// A frame that owns its share of the budget: every view of it (a record set, a string
/// a request keeps) holds the share, and the last one to go gives it back. So the budget
/// counts the frame for exactly as long as its memory lives, whichever request, task or
/// state keeps a piece of it.
struct BudgetedFrame {
    frame: Bytes,
    _share: FrameBytes,
}

impl AsRef<[u8]> for BudgetedFrame {
    fn as_ref(&self) -> &[u8] {
        &self.frame
    }
}

impl RequestBudget {
    /// The broker-wide budget (`None`: unbounded), shared by every connection.
    pub fn broker_wide(bytes: Option<u64>) -> Option<(Arc<Semaphore>, u32)> {
        bytes.map(|b| {
            let kib = kib(b);
            (Arc::new(Semaphore::new(kib as usize)), kib)
        })
    }

    /// A connection's budget of `per_connection` bytes, within the broker's.
    pub fn new(per_connection: u64, broker: Option<(Arc<Semaphore>, u32)>) -> RequestBudget {
        let connection_kib = kib(per_connection);
        RequestBudget {
            connection: Arc::new(Semaphore::new(connection_kib as usize)),
            connection_kib,
            broker,
        }
    }

    /// Waits until `bytes` fit in both budgets (or, when larger than one, until that one
    /// is wholly free), then takes them.
    ///
    /// # Cancel safety
    /// Dropping the future takes nothing from either budget.
    async fn take(&self, bytes: usize) -> FrameBytes {
        let wanted = kib(bytes as u64);
        let connection = Arc::clone(&self.connection)
            .acquire_many_owned(wanted.min(self.connection_kib))
            .await
            .expect("invariant: the semaphore is never closed");
        let broker = match &self.broker {
            Some((s, total)) => Some(
                Arc::clone(s)
                    .acquire_many_owned(wanted.min(*total))
                    .await
                    .expect("invariant: the semaphore is never closed"),
            ),
            None => None,
        };
        FrameBytes { _connection: connection, _broker: broker }
    }
}

/// Time a frame's body gets to arrive once its share of the budget is taken: 10 s, and
/// one more second per MiB (a 100 MiB frame over a link of 1 MiB/s still makes it).
fn body_time(size: usize) -> Duration {
    Duration::from_secs(10 + (size as u64 >> 20))
}

/// Sleeps until `deadline`, or forever without one.
async fn sleep_until_some(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// `bytes` in whole KiB, at least one, at most what a semaphore takes at once.
fn kib(bytes: u64) -> u32 {
    u32::try_from(bytes.div_ceil(1024).max(1)).unwrap_or(u32::MAX >> 3).min(u32::MAX >> 3)
}

/// The size of the frame that `buf` starts with, once its size prefix is in, when it is
/// one the decoder will read (others are refused before their body is read).
fn frame_size(buf: &[u8], max: usize) -> Option<usize> {
    let prefix: [u8; 4] = buf.get(..4)?.try_into().ok()?;
    let size = usize::try_from(i32::from_be_bytes(prefix)).ok()?;
    (size <= max).then_some(size + 4)
}

enum Answer {
    /// The outcome, and when it was ready.
    Ready(Outcome, Instant),
    Task(AbortOnDrop),
}

/// A request's task, aborted if the connection ends before it is answered: nobody would
/// read the response. (A produce request's sync runs in a task of its own and goes on.)
/// It returns when its outcome was ready.
struct AbortOnDrop(JoinHandle<(Outcome, Instant)>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Serves `stream` until the client leaves, an error, the idle timeout, or shutdown.
pub async fn serve(
    mut stream: TcpStream,
    peer: SocketAddr,
    broker: Arc<Broker>,
    budget: RequestBudget,
    shutdown: CancellationToken,
) {
    let _ = stream.set_nodelay(true);
    let (reader, writer) = stream.split();
    let (tx, rx) = mpsc::unbounded_channel();
    // Cancelled when the writer stops (write error, a request that closes the connection)
    // or the client closes its end: then both sides stop, and requests still waiting go.
    let closed = CancellationToken::new();
    tokio::join!(
        read_requests(reader, peer, &broker, &budget, &shutdown, &closed, tx),
        write_responses(writer, peer, &broker, &closed, rx),
    );
}

/// Reads frames and runs each request's in-order part; hands the rest to the writer.
async fn read_requests(
    mut stream: ReadHalf<'_>,
    peer: SocketAddr,
    broker: &Arc<Broker>,
    budget: &RequestBudget,
    shutdown: &CancellationToken,
    closed: &CancellationToken,
    tx: mpsc::UnboundedSender<InFlight>,
) {
    let decoder = FrameDecoder::new(broker.config.socket_request_max_bytes);
    let idle = Duration::from_millis(broker.config.connections_max_idle_ms);
    let in_flight = Arc::new(Semaphore::new(broker.config.queued_max_requests));
    let buffered = Arc::new(Semaphore::new(BUFFERED_RESPONSE_KIB as usize));
    let mut buf = BytesMut::with_capacity(64 * 1024);
    loop {
        // Taken before the frame is read: at the limit the connection stops reading, and
        // the client's further requests wait in the socket.
        let permit = tokio::select! {
            p = Arc::clone(&in_flight).acquire_owned() => p.expect("invariant: the semaphore is never closed"),
            () = closed.cancelled() => return,
        };
        let mut frame_bytes = None;
        // Set once the frame holds its share of the budget: its body must arrive by then.
        let mut body_deadline = None;
        let frame = loop {
            if frame_bytes.is_none() {
                if let Some(size) = frame_size(&buf, broker.config.socket_request_max_bytes) {
                    // Before the body is read: over budget, it stays in the socket.
                    frame_bytes = Some(tokio::select! {
                        taken = budget.take(size) => taken,
                        () = shutdown.cancelled() => return,
                        () = closed.cancelled() => return,
                    });
                    body_deadline = Some(tokio::time::Instant::now() + body_time(size));
                }
            }
            match decoder.decode(&mut buf) {
                Ok(Some(frame)) => match frame_bytes.take() {
                    Some(share) => break Bytes::from_owner(BudgetedFrame { frame, _share: share }),
                    None => break frame,
                },
                Ok(None) => {}
                Err(e) => {
                    let outcome = Outcome::Close(format!("bad frame: {e}"));
                    let answer = Answer::Ready(outcome, Instant::now());
                    let item = InFlight { answer, request: permit, buffered: None, timing: None };
                    let _ = tx.send(item);
                    return;
                }
            }
            if buf.capacity() - buf.len() < 4096 {
                buf.reserve(64 * 1024);
            }
            let read = tokio::select! {
                r = tokio::time::timeout(idle, stream.read_buf(&mut buf)) => r,
                () = sleep_until_some(body_deadline) => {
                    // A client trickling a body in would hold its share of the broker's
                    // budget for as long as it liked, and a few such clients all of it.
                    tracing::warn!(%peer, bytes = buf.len(), "closing connection: request body too slow");
                    closed.cancel();
                    return;
                }
                () = shutdown.cancelled() => return,
                () = closed.cancelled() => return,
            };
            match read {
                Ok(Ok(0)) => {
                    if !buf.is_empty() {
                        tracing::debug!(%peer, bytes = buf.len(), "client left mid-frame");
                    }
                    // The client closed the connection, as Kafka takes end of stream: the
                    // requests it left waiting (a long poll, say) are dropped at once
                    // rather than holding the connection until they time out.
                    closed.cancel();
                    return;
                }
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "read failed");
                    closed.cancel();
                    return;
                }
                Err(_) => {
                    if in_flight.available_permits() + 1 < broker.config.queued_max_requests {
                        // Requests are still being answered: not idle.
                        continue;
                    }
                    tracing::debug!(%peer, "closing idle connection");
                    return;
                }
            }
        };
        let received = Instant::now();
        // The header's first two fields; a frame too short for them is refused in dispatch.
        let api_key = frame.get(..2).map(|b| i16::from_be_bytes([b[0], b[1]]));
        let local_start = Instant::now();
        let pending = dispatch::start(broker, peer, frame, shutdown).await;
        let local_end = Instant::now();
        let timing = api_key.map(|api_key| Timing { api_key, received, local_start, local_end });
        let (answer, close) = match pending {
            Pending::Ready(outcome) => {
                let close = matches!(outcome, Outcome::Close(_));
                (Answer::Ready(outcome, local_end), close)
            }
            Pending::Later(rest) => {
                let task = tokio::spawn(async move { (rest.await, Instant::now()) });
                (Answer::Task(AbortOnDrop(task)), false)
            }
        };
        let in_memory = match &answer {
            Answer::Ready(Outcome::Reply(reply), _) => reply.in_memory_len(),
            _ => 0,
        };
        let kib = u32::try_from(in_memory.div_ceil(1024)).unwrap_or(u32::MAX);
        let buffered = if kib == 0 {
            None
        } else {
            // Waits while earlier responses fill the budget: a client that does not read
            // its responses stops being read.
            tokio::select! {
                p = Arc::clone(&buffered).acquire_many_owned(kib.min(BUFFERED_RESPONSE_KIB)) => {
                    Some(p.expect("invariant: the semaphore is never closed"))
                }
                () = closed.cancelled() => return,
            }
        };
        let item = InFlight { answer, request: permit, buffered, timing };
        if tx.send(item).is_err() || close {
            return;
        }
    }
}

/// Writes responses in request order until the reader is done and every answer is out,
/// or a write fails, or a request closes the connection.
async fn write_responses(
    mut stream: WriteHalf<'_>,
    peer: SocketAddr,
    broker: &Broker,
    closed: &CancellationToken,
    mut rx: mpsc::UnboundedReceiver<InFlight>,
) {
    let _guard = closed.clone().drop_guard();
    // Leaving drops the channel and with it every request not yet answered.
    loop {
        let item = tokio::select! {
            item = rx.recv() => match item {
                Some(item) => item,
                None => return,
            },
            () = closed.cancelled() => return,
        };
        let (outcome, ready) = match item.answer {
            Answer::Ready(outcome, ready) => (outcome, ready),
            Answer::Task(mut task) => {
                let done = tokio::select! {
                    done = &mut task.0 => done,
                    () = closed.cancelled() => return,
                };
                match done {
                    Ok(answered) => answered,
                    Err(e) => {
                        tracing::error!(%peer, error = %e, "request task failed: this is a broker bug");
                        return;
                    }
                }
            }
        };
        let write_start = Instant::now();
        match outcome {
            Outcome::Reply(reply) => {
                if let Err(e) = write_reply(&mut stream, &reply, broker).await {
                    tracing::debug!(%peer, error = %e, "write failed");
                    return;
                }
            }
            Outcome::NoReply => {}
            Outcome::Close(reason) => {
                tracing::warn!(%peer, %reason, "closing connection");
                return;
            }
        }
        if let Some(timing) = item.timing {
            timing.record(broker, ready, write_start, Instant::now());
        }
        // Written: the item's permits go back, and the reader may go on.
        drop(item.request);
        drop(item.buffered);
    }
}

async fn write_reply(stream: &mut WriteHalf<'_>, reply: &Reply, broker: &Broker) -> io::Result<()> {
    for part in &reply.parts {
        match part {
            Part::Bytes(b) => {
                stream.write_all(b).await?;
                broker.metrics.copied_bytes.fetch_add(b.len() as u64, Ordering::Relaxed);
            }
            Part::File(slice) => {
                send_file(stream.as_ref(), slice).await?;
                broker.metrics.sendfile_bytes.fetch_add(slice.len, Ordering::Relaxed);
            }
        }
    }
    Ok(())
}

/// Sends a file slice with sendfile(2), waiting for the socket whenever it is full.
async fn send_file(stream: &TcpStream, slice: &FileSlice) -> io::Result<()> {
    let mut position = slice.position;
    let mut left = slice.len;
    while left > 0 {
        stream.writable().await?;
        let chunk = left.min(1 << 30) as usize;
        match stream
            .try_io(Interest::WRITABLE, || sendfile(stream.as_fd(), &slice.file, position, chunk))
        {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "segment file ended early",
                ))
            }
            Ok(n) => {
                position += n as u64;
                left -= n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
