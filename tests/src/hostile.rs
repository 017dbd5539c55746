//! Tools for the hostile-client tests: requests built to maximize what the broker spends
//! on them, the memory bound they must stay under, and a well-behaved client whose
//! latency is measured while the attack runs.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use kafka_protocol::messages::{ApiVersionsRequest, MetadataRequest};
use kafka_protocol::protocol::StrBytes;
use sluice_protocol::header::RequestHeader;
use sluice_protocol::messages::{Request, Response};

use crate::{BrokerProcess, RawClient};

/// The fixed part of the memory any one request may cost the broker.
pub const FIXED_ALLOWANCE: u64 = 64 << 20;

/// How much one request of `frame_bytes` may grow the broker's resident set: the issue's
/// target, four times its frame plus a fixed 64 MiB.
pub fn allowed_growth(frame_bytes: usize) -> u64 {
    4 * frame_bytes as u64 + FIXED_ALLOWANCE
}

/// `request` encoded as a whole frame (length prefix, header, body) with correlation id 1.
pub fn encode_frame(version: i16, request: &Request) -> Vec<u8> {
    let header = RequestHeader::new(
        request.api_key(),
        version,
        1,
        Some(StrBytes::from_static_str("hostile")),
    );
    let mut buf = BytesMut::new();
    request.encode_frame(&header, &mut buf).unwrap();
    buf.to_vec()
}

/// What an attack cost the broker.
#[derive(Debug, Clone, Copy)]
pub struct AttackCost {
    /// How far the broker's resident set peaked above its size at the start of the
    /// attack, in bytes.
    pub peak_growth: u64,
    /// Bytes of the largest response frame.
    pub largest_response: usize,
    /// How long the attack took.
    pub elapsed: Duration,
}

/// Sends `frame` `times` times on one connection, one at a time, reading each response
/// (none when `expect_response` is false), and measures the broker's peak memory growth.
///
/// # Panics
/// If the broker closes the connection or stops running.
pub fn attack(
    b: &mut BrokerProcess,
    frame: &[u8],
    times: usize,
    expect_response: bool,
) -> AttackCost {
    use std::io::Write;
    b.reset_peak_rss();
    let before = b.rss_bytes();
    let started = Instant::now();
    let mut c = RawClient::connect(b.addr);
    c.stream.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    let mut largest_response = 0;
    for _ in 0..times {
        c.stream.write_all(frame).unwrap();
        if expect_response {
            let response = c.read_frame().expect("the broker answers the request");
            largest_response = largest_response.max(response.len());
        }
    }
    let elapsed = started.elapsed();
    assert!(b.is_running(), "the broker died: {}", b.log());
    AttackCost { peak_growth: b.peak_rss_bytes().saturating_sub(before), largest_response, elapsed }
}

/// A well-behaved client on its own connection: ApiVersions and Metadata round trips, one
/// after another, each timed, until it is stopped.
#[derive(Debug)]
pub struct Probe {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Vec<Duration>>>,
}

impl Probe {
    /// Starts probing the broker at `addr`.
    pub fn start(addr: SocketAddr) -> Probe {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut c = RawClient::connect(addr);
            c.stream.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
            let mut latencies = Vec::new();
            while !flag.load(Ordering::Relaxed) {
                let t = Instant::now();
                let Response::ApiVersions(_) =
                    c.call(3, Request::ApiVersions(ApiVersionsRequest::default()))
                else {
                    panic!("api versions")
                };
                let mut m = MetadataRequest::default();
                m.topics = Some(Vec::new());
                let Response::Metadata(_) = c.call(12, Request::Metadata(m)) else {
                    panic!("metadata")
                };
                latencies.push(t.elapsed());
                std::thread::sleep(Duration::from_millis(5));
            }
            latencies
        });
        Probe { stop, thread: Some(thread) }
    }

    /// Stops probing and returns the round-trip latencies, sorted.
    pub fn finish(mut self) -> Latencies {
        self.stop.store(true, Ordering::Relaxed);
        let mut all = self.thread.take().expect("running").join().expect("the probe");
        all.sort();
        Latencies(all)
    }
}

/// Sorted round-trip latencies of a [`Probe`].
#[derive(Debug, Clone)]
pub struct Latencies(pub Vec<Duration>);

impl Latencies {
    /// The `q` quantile (0.0..=1.0); zero when nothing was measured.
    pub fn quantile(&self, q: f64) -> Duration {
        if self.0.is_empty() {
            return Duration::ZERO;
        }
        let i = ((self.0.len() - 1) as f64 * q).round() as usize;
        self.0[i]
    }
}
