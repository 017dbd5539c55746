//! `/metrics`: the Prometheus text exposition format (version 0.0.4), with the names the
//! Prometheus JMX exporter gives Kafka's MBeans under the rules community dashboards use
//! (Strimzi's `kafka-metrics.yaml`, Confluent's `kafka_broker.yml`: lower-cased names,
//! `PerSec` meters as `_total` counters, Yammer histograms as quantile gauges plus a
//! `_count`), so those dashboards work unchanged. Group lag uses kafka_exporter's names,
//! which the common lag dashboards read. The README maps each family to its MBean.
//!
//! Kafka's histograms decay (recent samples weigh more); these quantiles are over the
//! broker's lifetime, so `sluice_request_time_seconds` is also given as a Prometheus
//! histogram for `histogram_quantile` over a window.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use super::view::{BrokerView, GroupView, TopicView};
use crate::broker::Broker;
use crate::metrics::{
    request_name, Histogram, RequestTimes, TopicTotals, API_KEYS, API_VERSIONS, BUCKETS,
};

/// Quantiles Kafka's histograms export (`50thPercentile` ... `999thPercentile`).
const QUANTILES: [(&str, f64); 6] = [
    ("0.50", 0.5),
    ("0.75", 0.75),
    ("0.95", 0.95),
    ("0.98", 0.98),
    ("0.99", 0.99),
    ("0.999", 0.999),
];

/// An exported family: the name's distinctive part, its help, how to read its value.
type Reading<T> = (&'static str, &'static str, fn(&T) -> u64);

/// BrokerTopicMetrics meters.
const TOPIC_METERS: [Reading<TopicTotals>; 7] = [
    ("messagesin", "records appended", |t| t.messages_in),
    ("bytesin", "record bytes appended", |t| t.bytes_in),
    ("bytesout", "record bytes returned to fetches", |t| t.bytes_out),
    ("totalproducerequests", "partitions named in produce requests", |t| t.produce_requests),
    ("failedproducerequests", "produce partitions answered with an error", |t| {
        t.failed_produce_requests
    }),
    ("totalfetchrequests", "partitions named in fetch requests", |t| t.fetch_requests),
    ("failedfetchrequests", "fetch partitions answered with an error", |t| t.failed_fetch_requests),
];

/// Renders every family.
pub fn render(
    broker: &Broker,
    view: &BrokerView,
    topics: &[TopicView],
    groups: &[GroupView],
) -> String {
    let mut out = String::with_capacity(4096 + topics.len() * 512);
    topic_meters(&mut out, view, topics);
    log_gauges(&mut out, topics);
    request_metrics(&mut out, broker);
    broker_gauges(&mut out, broker, view, topics);
    flush_times(&mut out);
    group_lag(&mut out, groups);
    sluice_counters(&mut out, broker);
    out
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// A label value as the format escapes it.
fn escaped(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

fn topic_meters(out: &mut String, view: &BrokerView, topics: &[TopicView]) {
    for (part, help, read) in TOPIC_METERS {
        let name = format!("kafka_server_brokertopicmetrics_{part}_total");
        family(out, &name, "counter", &format!("{help} (BrokerTopicMetrics)"));
        let _ = writeln!(out, "{name} {}", read(&view.totals));
        for t in topics {
            let _ = writeln!(out, "{name}{{topic=\"{}\"}} {}", escaped(&t.name), read(&t.totals));
        }
    }
}

fn log_gauges(out: &mut String, topics: &[TopicView]) {
    let gauges: [Reading<super::view::PartitionView>; 4] = [
        ("logendoffset", "log end offset", |p| p.log_end_offset as u64),
        ("logstartoffset", "log start offset", |p| p.log_start_offset as u64),
        ("size", "bytes of the partition's segments", |p| p.size_bytes),
        ("numlogsegments", "segments", |p| p.segments as u64),
    ];
    for (part, help, read) in gauges {
        let name = format!("kafka_log_log_{part}");
        family(out, &name, "gauge", &format!("{help} (kafka.log:type=Log)"));
        for t in topics {
            let topic = escaped(&t.name);
            for p in &t.partitions {
                let _ = writeln!(
                    out,
                    "{name}{{topic=\"{topic}\",partition=\"{}\"}} {}",
                    p.partition,
                    read(p)
                );
            }
        }
    }
}

fn request_metrics(out: &mut String, broker: &Broker) {
    let m = &broker.metrics;
    let used: Vec<(i16, String)> = (0..API_KEYS as i16)
        .filter(|&k| m.requests_of(k) > 0)
        .filter_map(|k| request_name(k).map(|n| (k, n)))
        .collect();
    let name = "kafka_network_requestmetrics_requests_total";
    family(out, name, "counter", "requests received (RequestMetrics RequestsPerSec)");
    for (key, request) in &used {
        for version in 0..API_VERSIONS as i16 {
            let n = m.requests(*key, version);
            if n > 0 {
                let _ = writeln!(out, "{name}{{request=\"{request}\",version=\"{version}\"}} {n}");
            }
        }
    }
    for (phase, label) in RequestTimes::NAMES.iter().enumerate() {
        let name = format!("kafka_network_requestmetrics_{}", label.to_ascii_lowercase());
        family(out, &name, "gauge", &format!("{label} quantiles since start, ms"));
        let timed: Vec<(&String, &Histogram)> = used
            .iter()
            .filter_map(|(key, request)| Some((request, m.times(*key)?.phases()[phase])))
            .collect();
        for (request, h) in &timed {
            for (q, value) in QUANTILES {
                let _ = writeln!(
                    out,
                    "{name}{{request=\"{request}\",quantile=\"{q}\"}} {}",
                    h.quantile_ms(value)
                );
            }
        }
        let count = format!("{name}_count");
        family(out, &count, "counter", &format!("requests timed in {label}"));
        for (request, h) in &timed {
            let _ = writeln!(out, "{count}{{request=\"{request}\"}} {}", h.count());
        }
    }
    let name = "sluice_request_time_seconds";
    family(out, name, "histogram", "request total time (TotalTimeMs) as a histogram");
    for (key, request) in &used {
        if let Some(t) = m.times(*key) {
            histogram(out, name, &format!("request=\"{request}\","), &t.total);
        }
    }
}

/// A histogram's `_bucket`, `_sum` and `_count` samples, in seconds.
fn histogram(out: &mut String, name: &str, labels: &str, h: &Histogram) {
    let buckets = h.buckets();
    let mut cumulative = 0;
    for (i, n) in buckets.iter().enumerate().take(BUCKETS - 1) {
        cumulative += n;
        let le = Histogram::upper_bound_us(i).unwrap_or(0) as f64 / 1e6;
        let _ = writeln!(out, "{name}_bucket{{{labels}le=\"{le}\"}} {cumulative}");
    }
    let labels_only = labels.trim_end_matches(',');
    let _ = writeln!(out, "{name}_bucket{{{labels}le=\"+Inf\"}} {}", h.count());
    let _ = writeln!(out, "{name}_sum{{{labels_only}}} {}", h.sum_us() as f64 / 1e6);
    let _ = writeln!(out, "{name}_count{{{labels_only}}} {}", h.count());
}

fn broker_gauges(out: &mut String, broker: &Broker, view: &BrokerView, topics: &[TopicView]) {
    let partitions: usize = topics.iter().map(|t| t.partitions.len()).sum();
    let labels = "listener=\"PLAINTEXT\",networkProcessor=\"0\"";
    let name = "kafka_server_socket_server_metrics_connection_count";
    family(out, name, "gauge", "client connections open (socket-server-metrics)");
    let _ = writeln!(out, "{name}{{{labels}}} {}", view.connections);
    let name = "kafka_server_socket_server_metrics_connection_creation_total";
    family(out, name, "counter", "client connections accepted (socket-server-metrics)");
    let accepted = broker.metrics.connections_accepted.load(Ordering::Relaxed);
    let _ = writeln!(out, "{name}{{{labels}}} {accepted}");
    let gauges: [(&str, &str, usize); 5] = [
        ("kafka_server_replicamanager_partitioncount", "partitions on this broker", partitions),
        ("kafka_server_replicamanager_leadercount", "partitions this broker leads", partitions),
        ("kafka_server_replicamanager_underreplicatedpartitions", "always 0: one replica", 0),
        ("kafka_controller_kafkacontroller_activecontrollercount", "this node controls", 1),
        (
            "kafka_controller_kafkacontroller_offlinepartitionscount",
            "partitions refusing writes after a failed sync",
            view.poisoned_partitions,
        ),
    ];
    for (name, help, value) in gauges {
        family(out, name, "gauge", help);
        let _ = writeln!(out, "{name} {value}");
    }
}

fn flush_times(out: &mut String) {
    let h = &crate::metrics::LOG_FLUSH_TIME;
    let name = "kafka_log_logflushstats_logflushrateandtimems";
    family(out, name, "gauge", "log flush (fsync) time quantiles since start, ms");
    for (q, value) in QUANTILES {
        let _ = writeln!(out, "{name}{{quantile=\"{q}\"}} {}", h.quantile_ms(value));
    }
    family(out, &format!("{name}_count"), "counter", "log flushes");
    let _ = writeln!(out, "{name}_count {}", h.count());
    let name = "sluice_log_flush_time_seconds";
    family(out, name, "histogram", "log flush (fsync) time as a histogram");
    histogram(out, name, "", h);
}

fn group_lag(out: &mut String, groups: &[GroupView]) {
    let name = "kafka_consumergroup_current_offset";
    family(out, name, "gauge", "committed offset per partition (kafka_exporter)");
    for g in groups {
        for o in &g.offsets {
            let _ = writeln!(
                out,
                "{name}{{consumergroup=\"{}\",topic=\"{}\",partition=\"{}\"}} {}",
                escaped(&g.group_id),
                escaped(&o.topic),
                o.partition,
                o.committed
            );
        }
    }
    let name = "kafka_consumergroup_lag";
    family(out, name, "gauge", "log end offset minus committed offset (kafka_exporter)");
    for g in groups {
        for o in &g.offsets {
            if let Some(lag) = o.lag {
                let _ = writeln!(
                    out,
                    "{name}{{consumergroup=\"{}\",topic=\"{}\",partition=\"{}\"}} {lag}",
                    escaped(&g.group_id),
                    escaped(&o.topic),
                    o.partition
                );
            }
        }
    }
    let name = "kafka_consumergroup_members";
    family(out, name, "gauge", "members of the group (kafka_exporter)");
    for g in groups {
        let _ = writeln!(
            out,
            "{name}{{consumergroup=\"{}\"}} {}",
            escaped(&g.group_id),
            g.members.len()
        );
    }
}

/// The broker's own series, which its tests and benchmarks read.
fn sluice_counters(out: &mut String, broker: &Broker) {
    let m = &broker.metrics;
    let counters = [
        ("sluice_fetch_sendfile_bytes_total", "counter", &m.sendfile_bytes),
        ("sluice_response_copied_bytes_total", "counter", &m.copied_bytes),
        ("sluice_produced_bytes_total", "counter", &m.produced_bytes),
        ("sluice_connections_accepted_total", "counter", &m.connections_accepted),
        ("sluice_connections_open", "gauge", &m.connections_open),
    ];
    for (name, kind, c) in counters {
        family(out, name, kind, "see the README's metrics table");
        let _ = writeln!(out, "{name} {}", c.load(Ordering::Relaxed));
    }
    family(out, "sluice_requests_total", "counter", "requests received by API key");
    for key in 0..API_KEYS as i16 {
        let n = m.requests_of(key);
        if n > 0 {
            let _ = writeln!(out, "sluice_requests_total{{api_key=\"{key}\"}} {n}");
        }
    }
    let syncs: u64 = broker
        .topics
        .list()
        .iter()
        .flat_map(|t| t.partitions.iter())
        .filter_map(|p| p.opened().map(|log| log.syncs()))
        .sum();
    family(out, "sluice_log_syncs_total", "counter", "syncs of partition logs");
    let _ = writeln!(out, "sluice_log_syncs_total {syncs}");
    family(out, "sluice_catalog_writes_total", "counter", "topic catalog rewrites");
    let _ = writeln!(out, "sluice_catalog_writes_total {}", broker.topics.catalog_writes());
}
