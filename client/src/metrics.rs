//! The counters behind [`Producer::metrics`](crate::producer::Producer::metrics) and
//! [`Consumer::metrics`](crate::consumer::Consumer::metrics), under the Java client's
//! names (group, name, `client-id` tag), so a tool that prints Kafka's metrics (the perf
//! tools' `--print-metrics`) prints these the same way.
//!
//! Counting is an atomic add per request, per batch or per poll, never per record and
//! never a lock: connections count requests, bytes and latency as frames go out and come
//! in; the producer counts records by whole batches as they are sent, retried or failed;
//! the consumer counts fetches as they are answered and records as `poll` returns them.
//! Rates and averages cover the client's whole life, where Kafka's cover a sampled window
//! of 30 s (`metrics.sample.window.ms` × 2): for a perf run, that is the run.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// One metric's current value.
#[derive(Debug, Clone, PartialEq)]
pub struct Metric {
    /// Its group, e.g. `producer-metrics`.
    pub group: &'static str,
    /// Its name, e.g. `record-send-total`.
    pub name: &'static str,
    /// Its tags, e.g. `client-id`, in the order Kafka lists them.
    pub tags: Vec<(&'static str, String)>,
    /// The value (Kafka's metrics are doubles).
    pub value: f64,
}

/// A running total, maximum and count: what `-total`, `-avg` and `-max` metrics read.
#[derive(Debug, Default)]
pub(crate) struct Summary {
    count: AtomicU64,
    total: AtomicU64,
    max: AtomicU64,
}

impl Summary {
    /// Adds one observation of `value`.
    pub(crate) fn record(&self, value: u64) {
        self.count.fetch_add(1, Ordering::Relaxed);
        self.total.fetch_add(value, Ordering::Relaxed);
        self.max.fetch_max(value, Ordering::Relaxed);
    }

    fn count(&self) -> f64 {
        self.count.load(Ordering::Relaxed) as f64
    }

    fn total(&self) -> f64 {
        self.total.load(Ordering::Relaxed) as f64
    }

    fn max(&self) -> f64 {
        self.max.load(Ordering::Relaxed) as f64
    }

    /// The mean observation; 0 before any (Kafka reports NaN, which no tool prints well).
    fn avg(&self) -> f64 {
        let n = self.count();
        if n == 0.0 {
            0.0
        } else {
            self.total() / n
        }
    }
}

/// Builds the metrics of one group.
pub(crate) struct Report<'a> {
    out: &'a mut Vec<Metric>,
    group: &'static str,
    client_id: &'a str,
    seconds: f64,
}

impl<'a> Report<'a> {
    /// Metrics of `group` for `client_id`, rates over the `elapsed` time.
    pub(crate) fn new(
        out: &'a mut Vec<Metric>,
        group: &'static str,
        client_id: &'a str,
        elapsed: Duration,
    ) -> Report<'a> {
        Report { out, group, client_id, seconds: elapsed.as_secs_f64().max(1e-3) }
    }

    /// One metric.
    pub(crate) fn metric(&mut self, name: &'static str, value: f64) {
        let tags = vec![("client-id", self.client_id.to_string())];
        self.out.push(Metric { group: self.group, name, tags, value });
    }

    /// `<name>-total` and `<name>-rate` of a counter.
    pub(crate) fn counter(&mut self, total: &'static str, rate: &'static str, value: f64) {
        self.metric(total, value);
        self.metric(rate, value / self.seconds);
    }
}

/// What the connections of one client counted.
#[derive(Debug)]
pub struct NetworkMetrics {
    started: Instant,
    /// Requests written; latency (µs) of those answered.
    requests: AtomicU64,
    latency_us: Summary,
    outgoing_bytes: AtomicU64,
    incoming_bytes: AtomicU64,
    connections_created: AtomicU64,
    connections_closed: AtomicU64,
}

impl Default for NetworkMetrics {
    fn default() -> Self {
        NetworkMetrics {
            started: Instant::now(),
            requests: AtomicU64::new(0),
            latency_us: Summary::default(),
            outgoing_bytes: AtomicU64::new(0),
            incoming_bytes: AtomicU64::new(0),
            connections_created: AtomicU64::new(0),
            connections_closed: AtomicU64::new(0),
        }
    }
}

impl NetworkMetrics {
    /// A request frame of `bytes` bytes was written.
    pub(crate) fn request_sent(&self, bytes: usize) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.outgoing_bytes.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    /// A response frame of `bytes` bytes arrived `latency` after its request was written.
    pub(crate) fn response_received(&self, bytes: usize, latency: Duration) {
        self.incoming_bytes.fetch_add(bytes as u64, Ordering::Relaxed);
        self.latency_us.record(u64::try_from(latency.as_micros()).unwrap_or(u64::MAX));
    }

    /// A connection was made.
    pub(crate) fn connection_created(&self) {
        self.connections_created.fetch_add(1, Ordering::Relaxed);
    }

    /// A connection was closed or failed.
    pub(crate) fn connection_closed(&self) {
        self.connections_closed.fetch_add(1, Ordering::Relaxed);
    }

    /// How long ago the client started.
    pub(crate) fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// The network metrics, in the group Kafka reports them in (`producer-metrics`,
    /// `consumer-metrics`, ...).
    pub(crate) fn report(&self, r: &mut Report<'_>) {
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed) as f64;
        r.counter("request-total", "request-rate", load(&self.requests));
        r.metric("request-latency-avg", self.latency_us.avg() / 1000.0);
        r.metric("request-latency-max", self.latency_us.max() / 1000.0);
        r.counter("outgoing-byte-total", "outgoing-byte-rate", load(&self.outgoing_bytes));
        r.counter("incoming-byte-total", "incoming-byte-rate", load(&self.incoming_bytes));
        r.counter(
            "connection-creation-total",
            "connection-creation-rate",
            load(&self.connections_created),
        );
        r.counter(
            "connection-close-total",
            "connection-close-rate",
            load(&self.connections_closed),
        );
    }
}

/// What a producer's sender counted, by batch.
#[derive(Debug, Default)]
pub(crate) struct ProducerMetrics {
    /// Bytes per batch sent (a retried batch counts again, as in Kafka).
    pub(crate) batch_bytes: Summary,
    /// Records per produce request sent; its total is the records sent.
    pub(crate) request_records: Summary,
    /// Records of batches sent again.
    pub(crate) records_retried: AtomicU64,
    /// Records of batches that failed for good.
    pub(crate) records_failed: AtomicU64,
}

impl ProducerMetrics {
    /// `producer-metrics` as Kafka's producer names them.
    pub(crate) fn report(&self, r: &mut Report<'_>) {
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed) as f64;
        r.metric("batch-size-avg", self.batch_bytes.avg());
        r.metric("batch-size-max", self.batch_bytes.max());
        r.counter("record-send-total", "record-send-rate", self.request_records.total());
        r.counter("record-retry-total", "record-retry-rate", load(&self.records_retried));
        r.counter("record-error-total", "record-error-rate", load(&self.records_failed));
        r.metric("records-per-request-avg", self.request_records.avg());
    }
}

/// What a consumer counted.
#[derive(Debug, Default)]
pub(crate) struct ConsumerMetrics {
    /// Bytes of record data per fetch answered; latency (µs) per fetch.
    pub(crate) fetch_bytes: Summary,
    pub(crate) fetch_latency_us: Summary,
    /// Records and their key, value and header bytes, as `poll` returned them.
    pub(crate) records: AtomicU64,
    pub(crate) bytes: AtomicU64,
}

impl ConsumerMetrics {
    /// A fetch answered after `latency` with `bytes` bytes of record sets.
    pub(crate) fn fetched(&self, bytes: u64, latency: Duration) {
        self.fetch_bytes.record(bytes);
        self.fetch_latency_us.record(u64::try_from(latency.as_micros()).unwrap_or(u64::MAX));
    }

    /// `poll` returned `records` records of `bytes` bytes.
    pub(crate) fn consumed(&self, records: u64, bytes: u64) {
        self.records.fetch_add(records, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// `consumer-fetch-manager-metrics` as Kafka's consumer names them.
    pub(crate) fn report(&self, r: &mut Report<'_>) {
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed) as f64;
        let records = load(&self.records);
        r.counter("records-consumed-total", "records-consumed-rate", records);
        r.counter("bytes-consumed-total", "bytes-consumed-rate", load(&self.bytes));
        r.counter("fetch-total", "fetch-rate", self.fetch_latency_us.count());
        r.metric("fetch-latency-avg", self.fetch_latency_us.avg() / 1000.0);
        r.metric("fetch-latency-max", self.fetch_latency_us.max() / 1000.0);
        r.metric("fetch-size-avg", self.fetch_bytes.avg());
        r.metric("fetch-size-max", self.fetch_bytes.max());
        let fetches = self.fetch_latency_us.count();
        r.metric("records-per-request-avg", if fetches == 0.0 { 0.0 } else { records / fetches });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries_and_reports_name_what_kafka_names() {
        let net = NetworkMetrics::default();
        net.connection_created();
        net.request_sent(100);
        net.request_sent(50);
        net.response_received(40, Duration::from_millis(3));
        net.response_received(60, Duration::from_millis(1));
        let producer = ProducerMetrics::default();
        producer.batch_bytes.record(1000);
        producer.batch_bytes.record(3000);
        producer.request_records.record(30);
        producer.records_retried.fetch_add(10, Ordering::Relaxed);
        let mut out = Vec::new();
        let mut r = Report::new(&mut out, "producer-metrics", "p1", Duration::from_secs(2));
        net.report(&mut r);
        producer.report(&mut r);
        let value = |name: &str| out.iter().find(|m| m.name == name).map(|m| m.value);
        assert_eq!(value("request-total"), Some(2.0));
        assert_eq!(value("request-rate"), Some(1.0));
        assert_eq!(value("request-latency-avg"), Some(2.0));
        assert_eq!(value("request-latency-max"), Some(3.0));
        assert_eq!(value("outgoing-byte-total"), Some(150.0));
        assert_eq!(value("incoming-byte-total"), Some(100.0));
        assert_eq!(value("batch-size-avg"), Some(2000.0));
        assert_eq!(value("batch-size-max"), Some(3000.0));
        assert_eq!(value("record-send-total"), Some(30.0));
        assert_eq!(value("record-send-rate"), Some(15.0));
        assert_eq!(value("record-retry-total"), Some(10.0));
        assert_eq!(value("record-error-total"), Some(0.0));
        assert!(out
            .iter()
            .all(|m| m.group == "producer-metrics" && m.tags == [("client-id", "p1".to_string())]));

        let consumer = ConsumerMetrics::default();
        let mut out = Vec::new();
        consumer.report(&mut Report::new(&mut out, "g", "c", Duration::ZERO));
        assert!(out.iter().all(|m| m.value == 0.0), "no NaN before anything: {out:?}");
    }
}
