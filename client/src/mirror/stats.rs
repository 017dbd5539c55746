//! The mirror's counters and lag, shared between its loops and whoever reports them
//! (the binary's progress line and log). Counters are atomics; the lag table is a
//! snapshot replaced about once a second, never read on the data path.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

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
    lag: Mutex<BTreeMap<String, i64>>,
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
    /// Lag per source topic: its log end offsets minus what the target acknowledged.
    pub lag: BTreeMap<String, i64>,
}

impl Stats {
    /// The counters now.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            records: self.records.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
            batches: self.batches.load(Ordering::Relaxed),
            record_batches: self.record_batches.load(Ordering::Relaxed),
            lag: self.lag.lock().expect("lock").clone(),
        }
    }

    /// Replaces the lag table.
    pub fn set_lag(&self, lag: BTreeMap<String, i64>) {
        *self.lag.lock().expect("lock") = lag;
    }

    /// Total lag over every topic, if any is known.
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_gives_rates_over_the_interval_and_lag_per_topic() {
        let stats = Stats::default();
        let before = stats.snapshot();
        stats.records.store(2000, Ordering::Relaxed);
        stats.bytes.store(3_000_000, Ordering::Relaxed);
        stats.set_lag([("a".to_string(), 5), ("b".to_string(), 0)].into());
        let line = stats.snapshot().line(&before, Duration::from_secs(2));
        assert_eq!(line, "2000 records, 1000 records/s, 1.50 MB/s, lag a=5 b=0");
        assert_eq!(stats.total_lag(), Some(5));
    }
}
