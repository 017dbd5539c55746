//! The mirror's counters and lag, shared between its loops and whoever reports them
//! (the binary's progress line, log and Prometheus endpoint). Counters are atomics; the
//! per-topic counters take a lock once per acknowledged batch; the lag table is a
//! snapshot replaced about once a second. Nothing here is read on the data path.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::metadata::TopicPartition;

/// Live counters of one mirror run.
#[derive(Debug, Default)]
pub struct Stats {
    /// Records the target acknowledged.
    pub records: AtomicU64,
    /// Bytes (as fetched) the target acknowledged.
    pub bytes: AtomicU64,
    /// Batches passed through whole.
    pub batches: AtomicU64,
    /// Batches sent again as records (transactional, or starting before the position).
    pub record_batches: AtomicU64,
    /// Control batches not copied.
    pub control_batches: AtomicU64,
    /// Records the target held past the last commit at start: sent again by this run.
    pub resent: AtomicU64,
    /// Bytes fetched and not yet acknowledged by the target.
    pub in_flight_bytes: AtomicU64,
    /// Commits of the mirror's progress in the source cluster.
    pub commits: AtomicU64,
    /// When the last of them succeeded, in milliseconds since the epoch (0: never).
    pub last_commit_ms: AtomicU64,
    /// Records written to the checkpoint topic.
    pub offset_syncs: AtomicU64,
    /// Partition offsets of groups committed in the target cluster.
    pub group_offsets_synced: AtomicU64,
    topics: Mutex<BTreeMap<String, (u64, u64)>>,
    lag: Mutex<BTreeMap<TopicPartition, i64>>,
}

/// A copy of the counters at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// As [`Stats::records`].
    pub records: u64,
    /// As [`Stats::bytes`].
    pub bytes: u64,
    /// As [`Stats::batches`].
    pub batches: u64,
    /// As [`Stats::record_batches`].
    pub record_batches: u64,
    /// As [`Stats::control_batches`].
    pub control_batches: u64,
    /// As [`Stats::resent`].
    pub resent: u64,
    /// As [`Stats::in_flight_bytes`].
    pub in_flight_bytes: u64,
    /// As [`Stats::commits`].
    pub commits: u64,
    /// As [`Stats::last_commit_ms`].
    pub last_commit_ms: u64,
    /// As [`Stats::offset_syncs`].
    pub offset_syncs: u64,
    /// As [`Stats::group_offsets_synced`].
    pub group_offsets_synced: u64,
    /// Records and bytes acknowledged, per source topic.
    pub topics: BTreeMap<String, (u64, u64)>,
    /// Lag per source topic: its log end offsets minus what the target acknowledged.
    pub lag: BTreeMap<String, i64>,
    /// The same per source partition.
    pub partition_lag: BTreeMap<TopicPartition, i64>,
}

impl Stats {
    /// The counters now.
    pub fn snapshot(&self) -> Snapshot {
        let partition_lag = self.lag.lock().expect("lock").clone();
        let mut lag: BTreeMap<String, i64> = BTreeMap::new();
        for (tp, l) in &partition_lag {
            *lag.entry(tp.topic.to_string()).or_default() += l;
        }
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Snapshot {
            records: load(&self.records),
            bytes: load(&self.bytes),
            batches: load(&self.batches),
            record_batches: load(&self.record_batches),
            control_batches: load(&self.control_batches),
            resent: load(&self.resent),
            in_flight_bytes: load(&self.in_flight_bytes),
            commits: load(&self.commits),
            last_commit_ms: load(&self.last_commit_ms),
            offset_syncs: load(&self.offset_syncs),
            group_offsets_synced: load(&self.group_offsets_synced),
            topics: self.topics.lock().expect("lock").clone(),
            lag,
            partition_lag,
        }
    }

    /// The target acknowledged `records` records of `bytes` bytes of `topic`.
    pub fn mirrored(&self, topic: &str, records: u64, bytes: u64) {
        self.records.fetch_add(records, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
        let mut topics = self.topics.lock().expect("lock");
        if let Some(t) = topics.get_mut(topic) {
            t.0 += records;
            t.1 += bytes;
        } else {
            topics.insert(topic.to_string(), (records, bytes));
        }
    }

    /// A commit succeeded now.
    pub fn committed(&self) {
        self.commits.fetch_add(1, Ordering::Relaxed);
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        self.last_commit_ms.store(now.as_millis() as u64, Ordering::Relaxed);
    }

    /// Replaces the lag table.
    pub fn set_lag(&self, lag: BTreeMap<TopicPartition, i64>) {
        *self.lag.lock().expect("lock") = lag;
    }

    /// Total lag over every partition, if any is known.
    pub fn total_lag(&self) -> Option<i64> {
        let lag = self.lag.lock().expect("lock");
        (!lag.is_empty()).then(|| lag.values().sum())
    }
}

impl Snapshot {
    /// One progress line: rates since `before`, `elapsed` ago, and lag per topic.
    pub fn line(&self, before: &Snapshot, elapsed: Duration) -> String {
        let secs = elapsed.as_secs_f64().max(1e-3);
        let rps = self.records.saturating_sub(before.records) as f64 / secs;
        let mbps = self.bytes.saturating_sub(before.bytes) as f64 / secs / 1e6;
        let lag: Vec<String> = self.lag.iter().map(|(t, l)| format!("{t}={l}")).collect();
        format!(
            "{} records, {rps:.0} records/s, {mbps:.2} MB/s, lag {}",
            self.records,
            if lag.is_empty() { "-".to_string() } else { lag.join(" ") }
        )
    }

    /// The counters in Prometheus' text exposition format (version 0.0.4).
    pub fn prometheus(&self) -> String {
        let mut out = String::new();
        let mut family = |name: &str, kind: &str, help: &str, samples: &[(String, u64)]| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (labels, value) in samples {
                let _ = writeln!(out, "{name}{labels} {value}");
            }
        };
        let per_topic = |pick: fn(&(u64, u64)) -> u64| -> Vec<(String, u64)> {
            self.topics.iter().map(|(t, c)| (labels(&[("topic", t)]), pick(c))).collect()
        };
        let one = |v: u64| [(String::new(), v)];
        family(
            "sluice_mirror_records_total",
            "counter",
            "Records the target acknowledged, by source topic.",
            &per_topic(|c| c.0),
        );
        family(
            "sluice_mirror_bytes_total",
            "counter",
            "Bytes (as fetched) the target acknowledged, by source topic.",
            &per_topic(|c| c.1),
        );
        let lag: Vec<(String, u64)> = self
            .partition_lag
            .iter()
            .map(|(tp, l)| {
                let p = tp.partition.to_string();
                (labels(&[("topic", &tp.topic), ("partition", &p)]), (*l).max(0) as u64)
            })
            .collect();
        family(
            "sluice_mirror_lag_records",
            "gauge",
            "Source log end offset minus the position the target acknowledged.",
            &lag,
        );
        let batches = [
            (labels(&[("kind", "passthrough")]), self.batches),
            (labels(&[("kind", "records")]), self.record_batches),
            (labels(&[("kind", "control")]), self.control_batches),
        ];
        family(
            "sluice_mirror_batches_total",
            "counter",
            "Source batches acknowledged: passed through whole, sent as records, control batches not copied.",
            &batches,
        );
        family(
            "sluice_mirror_resent_records",
            "gauge",
            "Records the target held past the last commit at start, sent again by this run.",
            &one(self.resent),
        );
        family(
            "sluice_mirror_in_flight_bytes",
            "gauge",
            "Bytes fetched and not yet acknowledged by the target.",
            &one(self.in_flight_bytes),
        );
        family(
            "sluice_mirror_commits_total",
            "counter",
            "Commits of the mirror's progress in the source cluster.",
            &one(self.commits),
        );
        let last = format!("{}.{:03}", self.last_commit_ms / 1000, self.last_commit_ms % 1000);
        let _ = writeln!(
            out,
            "# HELP sluice_mirror_last_commit_timestamp_seconds When the last commit succeeded (0: never).\n\
             # TYPE sluice_mirror_last_commit_timestamp_seconds gauge\n\
             sluice_mirror_last_commit_timestamp_seconds {last}"
        );
        let mut family = |name: &str, kind: &str, help: &str, v: u64| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}");
        };
        family(
            "sluice_mirror_offset_syncs_total",
            "counter",
            "Records written to the checkpoint topic.",
            self.offset_syncs,
        );
        family(
            "sluice_mirror_group_offsets_synced_total",
            "counter",
            "Partition offsets of source groups committed, translated, in the target cluster.",
            self.group_offsets_synced,
        );
        out
    }
}

/// `{name="value",...}` with Prometheus' escapes.
fn labels(pairs: &[(&str, &str)]) -> String {
    let body: Vec<String> = pairs
        .iter()
        .map(|(k, v)| {
            let v = v.replace('\\', r"\\").replace('"', "\\\"").replace('\n', r"\n");
            format!("{k}=\"{v}\"")
        })
        .collect();
    format!("{{{}}}", body.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_gives_rates_over_the_interval_and_lag_per_topic() {
        let stats = Stats::default();
        let before = stats.snapshot();
        stats.mirrored("a", 2000, 3_000_000);
        stats.set_lag(
            [
                (TopicPartition::new("a", 0), 2),
                (TopicPartition::new("a", 1), 3),
                (TopicPartition::new("b", 0), 0),
            ]
            .into(),
        );
        let line = stats.snapshot().line(&before, Duration::from_secs(2));
        assert_eq!(line, "2000 records, 1000 records/s, 1.50 MB/s, lag a=5 b=0");
        assert_eq!(stats.total_lag(), Some(5));
    }

    #[test]
    fn prometheus_text_has_every_family_with_its_labels() {
        let stats = Stats::default();
        stats.mirrored("orders", 10, 1000);
        stats.mirrored("orders", 5, 500);
        stats.mirrored("pay", 1, 7);
        stats.set_lag([(TopicPartition::new("orders", 3), 4)].into());
        stats.in_flight_bytes.store(4096, Ordering::Relaxed);
        stats.last_commit_ms.store(1_700_000_000_123, Ordering::Relaxed);
        stats.commits.store(2, Ordering::Relaxed);
        stats.group_offsets_synced.store(6, Ordering::Relaxed);
        let text = stats.snapshot().prometheus();
        for line in [
            "# TYPE sluice_mirror_records_total counter",
            "sluice_mirror_records_total{topic=\"orders\"} 15",
            "sluice_mirror_records_total{topic=\"pay\"} 1",
            "sluice_mirror_bytes_total{topic=\"orders\"} 1500",
            "sluice_mirror_lag_records{topic=\"orders\",partition=\"3\"} 4",
            "sluice_mirror_batches_total{kind=\"passthrough\"} 0",
            "sluice_mirror_in_flight_bytes 4096",
            "sluice_mirror_commits_total 2",
            "sluice_mirror_last_commit_timestamp_seconds 1700000000.123",
            "sluice_mirror_group_offsets_synced_total 6",
            "sluice_mirror_resent_records 0",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing from:\n{text}");
        }
        // Every sample line is `name{labels} value` or `name value`, after its TYPE.
        for l in text.lines().filter(|l| !l.starts_with('#')) {
            let (name, value) = l.rsplit_once(' ').unwrap();
            assert!(value.parse::<f64>().is_ok(), "{l}");
            let family = name.split('{').next().unwrap();
            assert!(text.contains(&format!("# TYPE {family} ")), "{l}");
        }
        assert_eq!(labels(&[("t", "a\"b\\c")]), r#"{t="a\"b\\c"}"#);
    }
}
