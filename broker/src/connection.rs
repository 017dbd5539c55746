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

use std::io;
use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
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
/// permits it holds until its response is written (one of `queued.max.requests`, and
/// its size in [`BUFFERED_RESPONSE_KIB`]).
struct InFlight {
    answer: Answer,
    request: OwnedSemaphorePermit,
    buffered: Option<OwnedSemaphorePermit>,
}

enum Answer {
    Ready(Outcome),
    Task(AbortOnDrop),
}

/// A request's task, aborted if the connection ends before it is answered: nobody would
/// read the response. (A produce request's sync runs in a task of its own and goes on.)
struct AbortOnDrop(JoinHandle<Outcome>);

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
    shutdown: CancellationToken,
) {
    let _ = stream.set_nodelay(true);
    let (reader, writer) = stream.split();
    let (tx, rx) = mpsc::unbounded_channel();
    // Cancelled when the writer stops (write error, a request that closes the connection)
    // or the client closes its end: then both sides stop, and requests still waiting go.
    let closed = CancellationToken::new();
    tokio::join!(
        read_requests(reader, peer, &broker, &shutdown, &closed, tx),
        write_responses(writer, peer, &broker, &closed, rx),
    );
}

/// Reads frames and runs each request's in-order part; hands the rest to the writer.
async fn read_requests(
    mut stream: ReadHalf<'_>,
    peer: SocketAddr,
    broker: &Arc<Broker>,
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
        let frame = loop {
            match decoder.decode(&mut buf) {
                Ok(Some(frame)) => break frame,
                Ok(None) => {}
                Err(e) => {
                    let answer = Answer::Ready(Outcome::Close(format!("bad frame: {e}")));
                    let _ = tx.send(InFlight { answer, request: permit, buffered: None });
                    return;
                }
            }
            if buf.capacity() - buf.len() < 4096 {
                buf.reserve(64 * 1024);
            }
            let read = tokio::select! {
                r = tokio::time::timeout(idle, stream.read_buf(&mut buf)) => r,
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
        let (answer, close) = match dispatch::start(broker, peer, frame, shutdown).await {
            Pending::Ready(outcome) => {
                let close = matches!(outcome, Outcome::Close(_));
                (Answer::Ready(outcome), close)
            }
            Pending::Later(rest) => (Answer::Task(AbortOnDrop(tokio::spawn(rest))), false),
        };
        let in_memory = match &answer {
            Answer::Ready(Outcome::Reply(reply)) => reply.in_memory_len(),
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
        if tx.send(InFlight { answer, request: permit, buffered }).is_err() || close {
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
        let outcome = match item.answer {
            Answer::Ready(outcome) => outcome,
            Answer::Task(mut task) => {
                let done = tokio::select! {
                    done = &mut task.0 => done,
                    () = closed.cancelled() => return,
                };
                match done {
                    Ok(outcome) => outcome,
                    Err(e) => {
                        tracing::error!(%peer, error = %e, "request task failed: this is a broker bug");
                        return;
                    }
                }
            }
        };
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
