//! One client connection: the only code that touches a socket.
//!
//! Requests are handled one at a time in arrival order, as Kafka does (it mutes a
//! channel while a request is in flight), so responses go out in request order and two
//! pipelined produce requests to one partition append in the order they were sent.
//! Clients pipeline anyway: their next frames wait in the socket buffer, and the read
//! buffer holds at most one frame beyond what a read brings.
//!
//! A frame is refused before it is read into memory when its size prefix exceeds
//! `socket.request.max.bytes`; an unreadable frame closes the connection with a log line.

use std::io;
use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use sluice_protocol::frame::FrameDecoder;
use tokio::io::{AsyncReadExt, AsyncWriteExt, Interest};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use crate::api::{Part, Reply};
use crate::broker::Broker;
use crate::dispatch::{self, Outcome};
use crate::storage::{sendfile, FileSlice};

/// Serves `stream` until the client leaves, an error, the idle timeout, or shutdown.
pub async fn serve(
    mut stream: TcpStream,
    peer: SocketAddr,
    broker: Arc<Broker>,
    shutdown: CancellationToken,
) {
    let _ = stream.set_nodelay(true);
    let decoder = FrameDecoder::new(broker.config.socket_request_max_bytes);
    let idle = Duration::from_millis(broker.config.connections_max_idle_ms);
    let mut buf = BytesMut::with_capacity(64 * 1024);
    loop {
        let frame = loop {
            match decoder.decode(&mut buf) {
                Ok(Some(frame)) => break frame,
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(%peer, error = %e, "closing connection: bad frame");
                    return;
                }
            }
            if buf.capacity() - buf.len() < 4096 {
                buf.reserve(64 * 1024);
            }
            let read = tokio::select! {
                r = tokio::time::timeout(idle, stream.read_buf(&mut buf)) => r,
                () = shutdown.cancelled() => return,
            };
            match read {
                Ok(Ok(0)) => {
                    if !buf.is_empty() {
                        tracing::debug!(%peer, bytes = buf.len(), "client left mid-frame");
                    }
                    return;
                }
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "read failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%peer, "closing idle connection");
                    return;
                }
            }
        };
        match dispatch::handle(&broker, peer, frame, &shutdown).await {
            Outcome::Reply(reply) => {
                if let Err(e) = write_reply(&mut stream, &reply, &broker).await {
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
    }
}

async fn write_reply(stream: &mut TcpStream, reply: &Reply, broker: &Broker) -> io::Result<()> {
    for part in &reply.parts {
        match part {
            Part::Bytes(b) => {
                stream.write_all(b).await?;
                broker.metrics.copied_bytes.fetch_add(b.len() as u64, Ordering::Relaxed);
            }
            Part::File(slice) => {
                send_file(stream, slice).await?;
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
