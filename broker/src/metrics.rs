//! The broker's counters and latency histograms, kept where the work happens and read by
//! the console ([`crate::console`]) when it renders `/metrics`, `/api` or the page.
//!
//! Invariants, so that counting costs the data path next to nothing:
//! - Every counter is a relaxed atomic add. Nothing here takes a lock or allocates.
//! - Per-topic counters live in each partition ([`PartitionCounters`], reached through the
//!   `Arc<Partition>` the handler already holds), so no map is searched per record or per
//!   request; a topic's figures are the sum over its partitions, added up at scrape time.
//! - Request times are measured by the connection ([`RequestTimes`]): a few clock reads
//!   per request, not per record.
//!
//! `sluice_fetch_sendfile_bytes_total` and `sluice_response_copied_bytes_total` let a test
//! check that record bytes reach the socket through sendfile(2), not through user space.
//! `crate::console` renders them as Prometheus text with the names the JMX exporter
//! gives Kafka's MBeans.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sluice_protocol::api_key::ApiKey;

/// API keys with a slot in the per-API tables (Kafka's keys are below 100).
pub const API_KEYS: usize = 100;
/// Versions per API with a slot in the request counters.
pub const API_VERSIONS: usize = 20;

/// The broker's counters.
#[derive(Debug)]
pub struct Metrics {
    /// Requests received, by API key and version (index = key * [`API_VERSIONS`] + version).
    requests: Vec<AtomicU64>,
    /// Request times by API key, split as Kafka's RequestMetrics splits them.
    times: Vec<RequestTimes>,
    /// Record bytes sent with sendfile(2).
    pub sendfile_bytes: AtomicU64,
    /// Response bytes written from user-space buffers (headers, non-fetch responses).
    pub copied_bytes: AtomicU64,
    /// Record bytes appended by Produce.
    pub produced_bytes: AtomicU64,
    /// Connections accepted since start.
    pub connections_accepted: AtomicU64,
    /// Connections currently open.
    pub connections_open: AtomicU64,
    /// Produce and fetch outcomes for partitions that do not exist (unknown topic or
    /// partition): part of Kafka's all-topics figures, no topic's.
    pub unattributed: TopicRequestCounters,
    /// When the broker started (its uptime is counted from here).
    pub started: Instant,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            requests: (0..API_KEYS * API_VERSIONS).map(|_| AtomicU64::new(0)).collect(),
            times: (0..API_KEYS).map(|_| RequestTimes::default()).collect(),
            sendfile_bytes: AtomicU64::new(0),
            copied_bytes: AtomicU64::new(0),
            produced_bytes: AtomicU64::new(0),
            connections_accepted: AtomicU64::new(0),
            connections_open: AtomicU64::new(0),
            unattributed: TopicRequestCounters::default(),
            started: Instant::now(),
        }
    }
}

impl Metrics {
    /// Counts a request.
    pub fn request(&self, api_key: i16, version: i16) {
        if let Some(c) = request_slot(api_key, version).and_then(|i| self.requests.get(i)) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Requests received with this key and version.
    pub fn requests(&self, api_key: i16, version: i16) -> u64 {
        request_slot(api_key, version)
            .and_then(|i| self.requests.get(i))
            .map_or(0, |c| c.load(Ordering::Relaxed))
    }

    /// Requests received with this key, all versions.
    pub fn requests_of(&self, api_key: i16) -> u64 {
        (0..API_VERSIONS as i16).map(|v| self.requests(api_key, v)).sum()
    }

    /// The time histograms of one API, if the key is in range.
    pub fn times(&self, api_key: i16) -> Option<&RequestTimes> {
        usize::try_from(api_key).ok().and_then(|k| self.times.get(k))
    }
}

fn request_slot(api_key: i16, version: i16) -> Option<usize> {
    let key = usize::try_from(api_key).ok().filter(|&k| k < API_KEYS)?;
    let version = usize::try_from(version).ok().filter(|&v| v < API_VERSIONS)?;
    Some(key * API_VERSIONS + version)
}

/// Kafka's name of an API as RequestMetrics labels it (`request="Produce"`); a fetch is
/// `FetchConsumer`, as Kafka names fetches that do not come from a follower.
pub fn request_name(api_key: i16) -> Option<String> {
    let key = ApiKey::try_from(api_key).ok()?;
    Some(match key {
        ApiKey::Fetch => "FetchConsumer".to_owned(),
        other => format!("{other:?}"),
    })
}

/// Buckets of a [`Histogram`]: bucket 0 holds times under 1 µs, bucket `i` times in
/// [2^(i-1), 2^i) µs, the last everything from 2^(BUCKETS-2) µs (about 67 s) up.
pub const BUCKETS: usize = 28;

/// A latency histogram of power-of-two microsecond buckets, lock-free.
#[derive(Debug)]
pub struct Histogram {
    buckets: [AtomicU64; BUCKETS],
    count: AtomicU64,
    sum_us: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self::new()
    }
}

impl Histogram {
    /// An empty histogram (const, so it can be a static).
    pub const fn new() -> Histogram {
        Histogram {
            buckets: [const { AtomicU64::new(0) }; BUCKETS],
            count: AtomicU64::new(0),
            sum_us: AtomicU64::new(0),
        }
    }

    /// Records one observation.
    pub fn record(&self, d: Duration) {
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        let bucket = (64 - us.leading_zeros() as usize).min(BUCKETS - 1);
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_us.fetch_add(us, Ordering::Relaxed);
    }

    /// Observations recorded.
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// Sum of the observations, in microseconds.
    pub fn sum_us(&self) -> u64 {
        self.sum_us.load(Ordering::Relaxed)
    }

    /// Each bucket's count.
    pub fn buckets(&self) -> [u64; BUCKETS] {
        std::array::from_fn(|i| self.buckets[i].load(Ordering::Relaxed))
    }

    /// Upper bound of bucket `i`, in microseconds (`None` for the last, unbounded one).
    pub fn upper_bound_us(i: usize) -> Option<u64> {
        (i + 1 < BUCKETS).then(|| 1u64 << i)
    }

    /// The `q` quantile in milliseconds, interpolated within its bucket; 0 when empty.
    pub fn quantile_ms(&self, q: f64) -> f64 {
        let buckets = self.buckets();
        let total: u64 = buckets.iter().sum();
        if total == 0 {
            return 0.0;
        }
        let rank = (q * total as f64).ceil().max(1.0);
        let mut seen = 0u64;
        for (i, &n) in buckets.iter().enumerate() {
            if n == 0 {
                continue;
            }
            if (seen + n) as f64 >= rank {
                let low = if i == 0 { 0.0 } else { (1u64 << (i - 1)) as f64 };
                let high = Self::upper_bound_us(i).map_or(low * 2.0, |h| h as f64);
                let within = (rank - seen as f64) / n as f64;
                return (low + (high - low) * within) / 1000.0;
            }
            seen += n;
        }
        0.0
    }
}

/// One API's request times, split as Kafka's `kafka.network:type=RequestMetrics` splits
/// them: the whole request, and the phases that add up to it.
#[derive(Debug, Default)]
pub struct RequestTimes {
    /// Frame read to response written (TotalTimeMs).
    pub total: Histogram,
    /// Frame read to the handler starting (RequestQueueTimeMs).
    pub request_queue: Histogram,
    /// The handler's in-order part (LocalTimeMs).
    pub local: Histogram,
    /// Waiting after it: a long poll, a produce request's sync (RemoteTimeMs).
    pub remote: Histogram,
    /// Answered to the writer taking it up, behind earlier responses (ResponseQueueTimeMs).
    pub response_queue: Histogram,
    /// Writing the response to the socket (ResponseSendTimeMs).
    pub response_send: Histogram,
}

impl RequestTimes {
    /// Kafka's MBean names of the histograms, in the order of [`Self::phases`].
    pub const NAMES: [&'static str; 6] = [
        "TotalTimeMs",
        "RequestQueueTimeMs",
        "LocalTimeMs",
        "RemoteTimeMs",
        "ResponseQueueTimeMs",
        "ResponseSendTimeMs",
    ];

    /// The histograms, in the order of [`Self::NAMES`].
    pub fn phases(&self) -> [&Histogram; 6] {
        [
            &self.total,
            &self.request_queue,
            &self.local,
            &self.remote,
            &self.response_queue,
            &self.response_send,
        ]
    }
}

/// Log flush (fsync) times of every partition: Kafka's `LogFlushRateAndTimeMs`.
///
/// A static because every partition's sync feeds it, from the partition's own code, and a
/// handle threaded through each partition would cost a pointer per partition for one
/// process-wide figure.
pub static LOG_FLUSH_TIME: Histogram = Histogram::new();

/// Produce and fetch request outcomes of one partition (or of the unknown ones), as
/// Kafka's BrokerTopicMetrics counts them: one per partition named in a request.
#[derive(Debug, Default)]
pub struct TopicRequestCounters {
    /// Partitions named in produce requests (TotalProduceRequestsPerSec).
    pub produce_requests: AtomicU64,
    /// Of them, those answered with an error (FailedProduceRequestsPerSec).
    pub failed_produce_requests: AtomicU64,
    /// Partitions named in fetch requests (TotalFetchRequestsPerSec).
    pub fetch_requests: AtomicU64,
    /// Of them, those answered with an error (FailedFetchRequestsPerSec).
    pub failed_fetch_requests: AtomicU64,
}

impl TopicRequestCounters {
    /// Counts a partition's produce outcome.
    pub fn produced(&self, failed: bool) {
        self.produce_requests.fetch_add(1, Ordering::Relaxed);
        if failed {
            self.failed_produce_requests.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts a partition's fetch outcome.
    pub fn fetched(&self, failed: bool) {
        self.fetch_requests.fetch_add(1, Ordering::Relaxed);
        if failed {
            self.failed_fetch_requests.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// A partition's counters: what Kafka keeps per topic in BrokerTopicMetrics.
#[derive(Debug, Default)]
pub struct PartitionCounters {
    /// Records appended by produce requests (MessagesInPerSec).
    pub messages_in: AtomicU64,
    /// Record bytes appended by produce requests (BytesInPerSec).
    pub bytes_in: AtomicU64,
    /// Record bytes returned to fetch requests (BytesOutPerSec).
    pub bytes_out: AtomicU64,
    /// Request outcomes.
    pub requests: TopicRequestCounters,
}

impl PartitionCounters {
    /// Counts an append.
    pub fn appended(&self, records: u64, bytes: u64) {
        self.messages_in.fetch_add(records, Ordering::Relaxed);
        self.bytes_in.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Counts a fetch's answer for this partition: its record bytes, or its error.
    pub fn fetched(&self, bytes: u64, failed: bool) {
        if bytes > 0 {
            self.bytes_out.fetch_add(bytes, Ordering::Relaxed);
        }
        self.requests.fetched(failed);
    }
}

/// A topic's (or all topics') BrokerTopicMetrics, summed from partition counters.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct TopicTotals {
    /// MessagesInPerSec.
    pub messages_in: u64,
    /// BytesInPerSec.
    pub bytes_in: u64,
    /// BytesOutPerSec.
    pub bytes_out: u64,
    /// TotalProduceRequestsPerSec.
    pub produce_requests: u64,
    /// FailedProduceRequestsPerSec.
    pub failed_produce_requests: u64,
    /// TotalFetchRequestsPerSec.
    pub fetch_requests: u64,
    /// FailedFetchRequestsPerSec.
    pub failed_fetch_requests: u64,
}

impl TopicTotals {
    /// Adds a partition's counters.
    pub fn add(&mut self, c: &PartitionCounters) {
        self.messages_in += c.messages_in.load(Ordering::Relaxed);
        self.bytes_in += c.bytes_in.load(Ordering::Relaxed);
        self.bytes_out += c.bytes_out.load(Ordering::Relaxed);
        self.add_requests(&c.requests);
    }

    /// Adds request outcomes.
    pub fn add_requests(&mut self, r: &TopicRequestCounters) {
        self.produce_requests += r.produce_requests.load(Ordering::Relaxed);
        self.failed_produce_requests += r.failed_produce_requests.load(Ordering::Relaxed);
        self.fetch_requests += r.fetch_requests.load(Ordering::Relaxed);
        self.failed_fetch_requests += r.failed_fetch_requests.load(Ordering::Relaxed);
    }

    /// Adds another total.
    pub fn merge(&mut self, o: &TopicTotals) {
        self.messages_in += o.messages_in;
        self.bytes_in += o.bytes_in;
        self.bytes_out += o.bytes_out;
        self.produce_requests += o.produce_requests;
        self.failed_produce_requests += o.failed_produce_requests;
        self.fetch_requests += o.fetch_requests;
        self.failed_fetch_requests += o.failed_fetch_requests;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_powers_of_two_microseconds() {
        let h = Histogram::new();
        h.record(Duration::from_nanos(300)); // 0 µs: bucket 0
        h.record(Duration::from_micros(1)); // [1, 2): bucket 1
        h.record(Duration::from_micros(3)); // [2, 4): bucket 2
        h.record(Duration::from_micros(1000)); // [512, 1024): bucket 10
        h.record(Duration::from_secs(1000)); // the last bucket
        let b = h.buckets();
        assert_eq!((b[0], b[1], b[2], b[10], b[BUCKETS - 1]), (1, 1, 1, 1, 1));
        assert_eq!(h.count(), 5);
        assert_eq!(h.sum_us(), 1 + 3 + 1000 + 1_000_000_000);
    }

    #[test]
    fn quantiles_fall_in_the_bucket_that_holds_them() {
        let h = Histogram::new();
        assert_eq!(h.quantile_ms(0.99), 0.0);
        for _ in 0..99 {
            h.record(Duration::from_micros(100)); // [64, 128)
        }
        h.record(Duration::from_millis(50)); // [32768, 65536) µs
        let p50 = h.quantile_ms(0.5);
        assert!((0.064..=0.128).contains(&p50), "{p50}");
        let p999 = h.quantile_ms(0.999);
        assert!((32.768..=65.536).contains(&p999), "{p999}");
    }

    #[test]
    fn requests_are_counted_per_key_and_version_and_out_of_range_ones_ignored() {
        let m = Metrics::default();
        m.request(0, 9);
        m.request(0, 9);
        m.request(0, 3);
        m.request(1, 12);
        m.request(-1, 0);
        m.request(0, 99);
        m.request(200, 0);
        assert_eq!((m.requests(0, 9), m.requests(0, 3), m.requests_of(0)), (2, 1, 3));
        assert_eq!(m.requests_of(1), 1);
    }

    #[test]
    fn request_names_are_kafkas() {
        assert_eq!(request_name(0).as_deref(), Some("Produce"));
        assert_eq!(request_name(1).as_deref(), Some("FetchConsumer"));
        assert_eq!(request_name(18).as_deref(), Some("ApiVersions"));
        assert_eq!(request_name(-3), None);
    }
}
