//! One TCP connection to one broker: request frames out in the order they are queued,
//! responses matched to them in that same order (Kafka answers a connection's requests in
//! order), each checked against its correlation id.
//!
//! Two tasks own the socket halves. The writer takes frames from a bounded channel,
//! records what answer it expects, and writes through a 64 KiB buffer, so small requests
//! share a syscall and large ones go straight through; it flushes whenever the channel is
//! empty. The reader splits response frames off one `BytesMut` (bounded by
//! `receive.message.max.bytes`) and hands each, uncopied, to the caller that waits for it;
//! decoding happens in the caller, not on the reader.
//!
//! A read error, a frame that does not match, or a request that is not answered within
//! `request.timeout.ms` closes the connection: after any of these the order of answers
//! can no longer be trusted, so every waiting request fails with a network error and the
//! owner reconnects. Dropping the last handle closes it too.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use sluice_protocol::api_key::ApiKey;
use sluice_protocol::error_code::ErrorCode;
use sluice_protocol::frame::FrameDecoder;
use sluice_protocol::header::{response_header_version, RequestHeader, ResponseHeader};
use sluice_protocol::kafka_protocol::messages::ApiVersionsRequest;
use sluice_protocol::kafka_protocol::protocol::StrBytes;
use sluice_protocol::messages::{Request, Response};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufWriter};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::task::AbortHandle;

use super::ApiVersionTable;
use crate::error::{ClientError, Result};
use crate::metrics::NetworkMetrics;

/// Frames queued for the writer before `send` waits.
const WRITE_QUEUE: usize = 64;
/// The writer's buffer: frames smaller than this are coalesced into one write.
const WRITE_BUFFER: usize = 64 * 1024;
/// The reader's first read size.
const READ_CHUNK: usize = 64 * 1024;
/// The ApiVersions version the client asks with first (v3 carries the software name).
const API_VERSIONS_FIRST: i16 = 3;

/// Settings of a connection.
#[derive(Debug, Clone)]
pub struct ConnectionSettings {
    /// `client.id`, sent in every request header.
    pub client_id: String,
    /// `request.timeout.ms`.
    pub request_timeout: Duration,
    /// `socket.connection.setup.timeout.ms`: connect plus ApiVersions.
    pub setup_timeout: Duration,
    /// `receive.message.max.bytes`.
    pub receive_max_bytes: usize,
    /// Where the connection counts its requests, bytes and latency (shared by a client's
    /// connections).
    pub metrics: Arc<NetworkMetrics>,
}

struct Outgoing {
    frame: BytesMut,
    correlation: i32,
    reply: Option<oneshot::Sender<Result<Bytes>>>,
}

#[derive(Debug)]
struct Waiting {
    correlation: i32,
    reply: oneshot::Sender<Result<Bytes>>,
    /// When its request was written: the latency is measured from here.
    sent: Instant,
}

#[derive(Debug)]
struct Shared {
    addr: String,
    waiting: Mutex<VecDeque<Waiting>>,
    closed: AtomicBool,
    close_reason: Mutex<Option<String>>,
    metrics: Arc<NetworkMetrics>,
}

impl Shared {
    /// Marks the connection closed and fails every request still waiting.
    fn fail_all(&self, reason: &str) {
        if !self.closed.swap(true, Ordering::AcqRel) {
            self.metrics.connection_closed();
        }
        self.close_reason.lock().expect("lock").get_or_insert_with(|| reason.to_string());
        let waiting = std::mem::take(&mut *self.waiting.lock().expect("lock"));
        for w in waiting {
            let _ = w.reply.send(Err(self.error(reason)));
        }
    }

    fn error(&self, reason: &str) -> ClientError {
        ClientError::Network { addr: self.addr.clone(), reason: reason.to_string() }
    }
}

/// A negotiated connection to one broker.
pub struct Connection {
    shared: Arc<Shared>,
    versions: ApiVersionTable,
    client_id: Option<StrBytes>,
    request_timeout: Duration,
    correlation: AtomicI32,
    tx: mpsc::Sender<Outgoing>,
    tasks: [AbortHandle; 2],
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection").field("addr", &self.shared.addr).finish_non_exhaustive()
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
        self.shared.fail_all("connection closed");
    }
}

/// The answer to one request, once it arrives.
#[derive(Debug)]
pub struct PendingResponse {
    rx: oneshot::Receiver<Result<Bytes>>,
    api_key: ApiKey,
    version: i16,
    shared: Arc<Shared>,
    timeout: Duration,
}

impl PendingResponse {
    /// Waits up to `timeout` instead of `request.timeout.ms`: for requests the broker
    /// holds on purpose (JoinGroup waits for the whole group, up to the rebalance timeout).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Waits for the answer and decodes it.
    ///
    /// # Errors
    /// [`ClientError::RequestTimeout`] after `request.timeout.ms` (the connection is then
    /// closed), [`ClientError::Network`] if the connection failed, and
    /// [`ClientError::Protocol`] for an answer that does not decode.
    pub async fn wait(self) -> Result<Response> {
        let frame = match tokio::time::timeout(self.timeout, self.rx).await {
            Ok(Ok(result)) => result?,
            Ok(Err(_)) => {
                let reason = self.shared.close_reason.lock().expect("lock").clone();
                return Err(self.shared.error(reason.as_deref().unwrap_or("connection closed")));
            }
            Err(_) => {
                self.shared.fail_all("request timed out");
                return Err(ClientError::RequestTimeout {
                    addr: self.shared.addr.clone(),
                    context: format!("{:?} v{}", self.api_key, self.version),
                    timeout: self.timeout,
                });
            }
        };
        decode_response(&self.shared.addr, self.api_key, self.version, frame)
    }
}

fn decode_response(addr: &str, api_key: ApiKey, version: i16, frame: Bytes) -> Result<Response> {
    let protocol = |reason: String| ClientError::Protocol { addr: addr.to_string(), reason };
    let (_, body) = ResponseHeader::decode(frame, response_header_version(api_key, version))
        .map_err(|e| protocol(e.to_string()))?;
    Response::decode(api_key, version, body).map_err(|e| protocol(e.to_string()))
}

impl Connection {
    /// Connects to `addr` (`host:port`) and negotiates API versions.
    ///
    /// # Errors
    /// [`ClientError::Network`] if the connection or the ApiVersions exchange fails or
    /// takes longer than the setup timeout.
    pub async fn connect(addr: &str, settings: &ConnectionSettings) -> Result<Arc<Connection>> {
        let network = |reason: String| ClientError::Network { addr: addr.to_string(), reason };
        let setup = async {
            let stream = TcpStream::connect(addr).await.map_err(|e| network(e.to_string()))?;
            stream.set_nodelay(true).map_err(|e| network(e.to_string()))?;
            let mut conn = Connection::start(addr, stream, settings);
            conn.versions = conn.negotiate().await?;
            Ok(Arc::new(conn))
        };
        match tokio::time::timeout(settings.setup_timeout, setup).await {
            Ok(result) => result,
            Err(_) => Err(network(format!("no connection within {:?}", settings.setup_timeout))),
        }
    }

    fn start(addr: &str, stream: TcpStream, settings: &ConnectionSettings) -> Connection {
        let (read, write) = stream.into_split();
        let shared = Arc::new(Shared {
            addr: addr.to_string(),
            waiting: Mutex::new(VecDeque::new()),
            closed: AtomicBool::new(false),
            close_reason: Mutex::new(None),
            metrics: settings.metrics.clone(),
        });
        shared.metrics.connection_created();
        let (tx, rx) = mpsc::channel(WRITE_QUEUE);
        let decoder = FrameDecoder::new(settings.receive_max_bytes);
        let reader = tokio::spawn(read_loop(read, decoder, shared.clone()));
        let writer = tokio::spawn(write_loop(write, rx, shared.clone()));
        Connection {
            shared,
            versions: ApiVersionTable::default(),
            client_id: Some(StrBytes::from_string(settings.client_id.clone())),
            request_timeout: settings.request_timeout,
            correlation: AtomicI32::new(0),
            tx,
            tasks: [reader.abort_handle(), writer.abort_handle()],
        }
    }

    async fn negotiate(&self) -> Result<ApiVersionTable> {
        let mut version = API_VERSIONS_FIRST;
        for _ in 0..2 {
            let request = ApiVersionsRequest::default()
                .with_client_software_name(StrBytes::from_static_str("sluice-client"))
                .with_client_software_version(StrBytes::from_static_str(env!("CARGO_PKG_VERSION")));
            let request = Request::ApiVersions(if version >= 3 {
                request
            } else {
                ApiVersionsRequest::default()
            });
            let pending = self.send_raw(ApiKey::ApiVersions, version, &request, true).await?;
            let rx = pending.expect("a reply was asked for");
            let frame = match tokio::time::timeout(self.request_timeout, rx.rx).await {
                Ok(Ok(frame)) => frame?,
                _ => return Err(self.shared.error("no ApiVersions answer")),
            };
            // A broker that does not know our version answers in v0 (KIP-511).
            let response =
                decode_response(&self.shared.addr, ApiKey::ApiVersions, version, frame.clone())
                    .or_else(|_| {
                        decode_response(&self.shared.addr, ApiKey::ApiVersions, 0, frame)
                    })?;
            let Response::ApiVersions(response) = response else {
                return Err(self.shared.error("ApiVersions answered with another API"));
            };
            let code = ErrorCode::from_code(response.error_code);
            if code == ErrorCode::UNSUPPORTED_VERSION {
                let theirs =
                    response.api_keys.iter().find(|k| k.api_key == ApiKey::ApiVersions as i16);
                version = theirs.map_or(0, |k| k.max_version.min(API_VERSIONS_FIRST));
                continue;
            }
            if !code.is_none() {
                return Err(ClientError::kafka(code, None, "ApiVersions"));
            }
            return Ok(ApiVersionTable::from_response(&response));
        }
        Err(self.shared.error("ApiVersions version negotiation failed"))
    }

    /// `host:port` of the broker.
    pub fn addr(&self) -> &str {
        &self.shared.addr
    }

    /// The negotiated versions.
    pub fn versions(&self) -> &ApiVersionTable {
        &self.versions
    }

    /// The version to send `api` in.
    ///
    /// # Errors
    /// [`ClientError::UnsupportedVersion`] when the broker speaks no version the client knows.
    pub fn version(&self, api: ApiKey) -> Result<i16> {
        self.versions.pick(api).ok_or_else(|| ClientError::UnsupportedVersion {
            addr: self.shared.addr.clone(),
            api: format!("{api:?}"),
        })
    }

    /// Whether the connection has failed or been closed.
    pub fn is_closed(&self) -> bool {
        self.shared.closed.load(Ordering::Acquire)
    }

    /// Closes the connection; waiting requests fail.
    pub fn close(&self) {
        for task in &self.tasks {
            task.abort();
        }
        self.shared.fail_all("connection closed");
    }

    /// Queues `request` in `version`; the returned handle waits for its answer.
    ///
    /// Requests are written in the order their `send` calls return.
    ///
    /// # Errors
    /// [`ClientError::Network`] if the connection is closed, [`ClientError::Protocol`] if
    /// the request cannot be encoded in `version`.
    pub async fn send(&self, version: i16, request: &Request) -> Result<PendingResponse> {
        let pending = self.send_raw(request.api_key(), version, request, true).await?;
        Ok(pending.expect("a reply was asked for"))
    }

    /// Queues a request that the broker does not answer (Produce with acks=0).
    ///
    /// # Errors
    /// As [`Self::send`].
    pub async fn send_without_reply(&self, version: i16, request: &Request) -> Result<()> {
        self.send_raw(request.api_key(), version, request, false).await.map(drop)
    }

    /// Sends `request` in the negotiated version and waits for its answer.
    ///
    /// # Errors
    /// As [`Self::send`] and [`PendingResponse::wait`].
    pub async fn call(&self, request: Request) -> Result<Response> {
        let version = self.version(request.api_key())?;
        self.send(version, &request).await?.wait().await
    }

    async fn send_raw(
        &self,
        api_key: ApiKey,
        version: i16,
        request: &Request,
        reply: bool,
    ) -> Result<Option<PendingResponse>> {
        if self.is_closed() {
            let reason = self.shared.close_reason.lock().expect("lock").clone();
            return Err(self.shared.error(reason.as_deref().unwrap_or("connection closed")));
        }
        let correlation = self.correlation.fetch_add(1, Ordering::Relaxed).wrapping_add(1);
        let header = RequestHeader::new(api_key, version, correlation, self.client_id.clone());
        let mut frame = BytesMut::new();
        request.encode_frame(&header, &mut frame).map_err(|e| ClientError::Protocol {
            addr: self.shared.addr.clone(),
            reason: e.to_string(),
        })?;
        let (reply, pending) = if reply {
            let (tx, rx) = oneshot::channel();
            let pending = PendingResponse {
                rx,
                api_key,
                version,
                shared: self.shared.clone(),
                timeout: self.request_timeout,
            };
            (Some(tx), Some(pending))
        } else {
            (None, None)
        };
        self.tx
            .send(Outgoing { frame, correlation, reply })
            .await
            .map_err(|_| self.shared.error("connection closed"))?;
        Ok(pending)
    }
}

async fn write_loop(write: OwnedWriteHalf, mut rx: mpsc::Receiver<Outgoing>, shared: Arc<Shared>) {
    let mut out = BufWriter::with_capacity(WRITE_BUFFER, write);
    while let Some(first) = rx.recv().await {
        let mut next = Some(first);
        while let Some(Outgoing { frame, correlation, reply }) = next.take() {
            if let Some(reply) = reply {
                let waiting = Waiting { correlation, reply, sent: Instant::now() };
                shared.waiting.lock().expect("lock").push_back(waiting);
            }
            if let Err(e) = out.write_all(&frame).await {
                shared.fail_all(&format!("write failed: {e}"));
                return;
            }
            shared.metrics.request_sent(frame.len());
            next = rx.try_recv().ok();
        }
        if let Err(e) = out.flush().await {
            shared.fail_all(&format!("write failed: {e}"));
            return;
        }
    }
}

async fn read_loop(mut read: OwnedReadHalf, decoder: FrameDecoder, shared: Arc<Shared>) {
    let mut buf = BytesMut::with_capacity(READ_CHUNK);
    loop {
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(frame)) => {
                    if let Err(reason) = deliver(&shared, frame) {
                        shared.fail_all(&reason);
                        return;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    shared.fail_all(&format!("bad response frame: {e}"));
                    return;
                }
            }
        }
        if buf.capacity() - buf.len() < READ_CHUNK / 4 {
            buf.reserve(READ_CHUNK);
        }
        match read.read_buf(&mut buf).await {
            Ok(0) => {
                shared.fail_all("broker closed the connection");
                return;
            }
            Ok(_) => {}
            Err(e) => {
                shared.fail_all(&format!("read failed: {e}"));
                return;
            }
        }
    }
}

fn deliver(shared: &Shared, frame: Bytes) -> std::result::Result<(), String> {
    let Some(id) = frame.first_chunk::<4>().map(|b| i32::from_be_bytes(*b)) else {
        return Err(format!("response frame of {} bytes has no correlation id", frame.len()));
    };
    let Some(waiting) = shared.waiting.lock().expect("lock").pop_front() else {
        return Err(format!("response {id} answers no request"));
    };
    if waiting.correlation != id {
        return Err(format!("response {id} arrived where {} was expected", waiting.correlation));
    }
    // The frame's size prefix counts too, as Kafka counts bytes on the wire.
    shared.metrics.response_received(frame.len() + 4, waiting.sent.elapsed());
    let _ = waiting.reply.send(Ok(frame));
    Ok(())
}
