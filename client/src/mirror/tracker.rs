//! What the mirror has sent, what the target acknowledged, and what may be committed,
//! per source partition. Sans I/O: the fetch loop reports sends, the ack loop reports
//! acknowledgements in send order, the commit step asks what is due.
//!
//! Invariant: a partition's acknowledged position only moves forward, and only over
//! batches acknowledged in order, so committing it never skips a record the target does
//! not hold.

use std::collections::HashMap;

use crate::metadata::TopicPartition;

/// A position in both clusters: the next source offset to mirror and, when known, the
/// target offset its record will get (the target's end after what was acknowledged).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// The next source offset.
    pub source: i64,
    /// The target offset that corresponds to it, if an acknowledgement told it.
    pub target: Option<i64>,
}

#[derive(Debug, Default)]
struct Partition {
    in_flight_batches: usize,
    in_flight_records: u64,
    acked: Option<Position>,
    committed: Option<i64>,
}

/// Per-partition send, acknowledgement and commit state.
#[derive(Debug, Default)]
pub struct Tracker {
    partitions: HashMap<TopicPartition, Partition>,
}

impl Tracker {
    /// A tracker with no partitions.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records the committed source offset found at start, so it is not committed again.
    pub fn started_at(&mut self, tp: &TopicPartition, committed: i64) {
        self.partitions.entry(tp.clone()).or_default().committed = Some(committed);
    }

    /// A batch of `records` records left for the target.
    pub fn sent(&mut self, tp: &TopicPartition, records: u64) {
        let p = self.partitions.entry(tp.clone()).or_default();
        p.in_flight_batches += 1;
        p.in_flight_records += records;
    }

    /// The oldest batch in flight for `tp` was acknowledged; `at` is the position after
    /// it. A target offset left unknown keeps the last one known only if the batch wrote
    /// nothing (`records == 0`, a skipped control batch), since then it did not move.
    pub fn acked(&mut self, tp: &TopicPartition, records: u64, at: Position) {
        let p = self.partitions.entry(tp.clone()).or_default();
        p.in_flight_batches = p.in_flight_batches.saturating_sub(1);
        p.in_flight_records = p.in_flight_records.saturating_sub(records);
        let target = match (at.target, p.acked) {
            (Some(t), _) => Some(t),
            (None, Some(prev)) if records == 0 => prev.target,
            (None, _) => None,
        };
        if p.acked.is_none_or(|prev| at.source > prev.source) {
            p.acked = Some(Position { source: at.source, target });
        }
    }

    /// Batches in flight for `tp`.
    pub fn in_flight(&self, tp: &TopicPartition) -> usize {
        self.partitions.get(tp).map_or(0, |p| p.in_flight_batches)
    }

    /// Records in flight for `tp`: sent, not yet acknowledged.
    pub fn in_flight_records(&self, tp: &TopicPartition) -> u64 {
        self.partitions.get(tp).map_or(0, |p| p.in_flight_records)
    }

    /// Acknowledged positions past the last commit, in partition order.
    pub fn due(&self) -> Vec<(TopicPartition, Position)> {
        let mut due: Vec<(TopicPartition, Position)> = self
            .partitions
            .iter()
            .filter_map(|(tp, p)| {
                let acked = p.acked?;
                (p.committed.is_none_or(|c| acked.source > c)).then(|| (tp.clone(), acked))
            })
            .collect();
        due.sort_by(|a, b| a.0.cmp(&b.0));
        due
    }

    /// `source` was committed for `tp`.
    pub fn committed(&mut self, tp: &TopicPartition, source: i64) {
        let p = self.partitions.entry(tp.clone()).or_default();
        if p.committed.is_none_or(|c| source > c) {
            p.committed = Some(source);
        }
    }
}

/// The commit metadata that carries the target offset, so a restart knows how many
/// records the target holds past the commit.
pub fn metadata(at: Position) -> String {
    at.target.map(|t| format!("sluice-mirror target={t}")).unwrap_or_default()
}

/// The target offset in commit metadata written by [`metadata`].
pub fn target_in(metadata: &str) -> Option<i64> {
    metadata.strip_prefix("sluice-mirror target=")?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(source: i64, target: Option<i64>) -> Position {
        Position { source, target }
    }

    #[test]
    fn only_acknowledged_positions_are_due_and_each_once() {
        let tp = TopicPartition::new("t", 0);
        let mut t = Tracker::new();
        t.sent(&tp, 10);
        t.sent(&tp, 5);
        assert_eq!((t.in_flight(&tp), t.in_flight_records(&tp)), (2, 15));
        assert!(t.due().is_empty(), "nothing acknowledged yet");
        t.acked(&tp, 10, at(10, Some(110)));
        assert_eq!(t.due(), vec![(tp.clone(), at(10, Some(110)))]);
        t.committed(&tp, 10);
        assert!(t.due().is_empty(), "committed already");
        t.acked(&tp, 5, at(15, Some(115)));
        assert_eq!(t.due(), vec![(tp.clone(), at(15, Some(115)))]);
        assert_eq!((t.in_flight(&tp), t.in_flight_records(&tp)), (0, 0));
    }

    #[test]
    fn a_skipped_control_batch_keeps_the_target_offset_a_lost_one_forgets_it() {
        let tp = TopicPartition::new("t", 0);
        let mut t = Tracker::new();
        t.acked(&tp, 3, at(3, Some(3)));
        t.acked(&tp, 0, at(4, None));
        assert_eq!(t.due()[0].1, at(4, Some(3)), "a marker moves the source only");
        t.acked(&tp, 2, at(6, None));
        assert_eq!(t.due()[0].1, at(6, None), "records written at an unknown offset");
    }

    #[test]
    fn the_start_commit_is_not_due_and_positions_never_go_back() {
        let tp = TopicPartition::new("t", 1);
        let mut t = Tracker::new();
        t.started_at(&tp, 50);
        t.acked(&tp, 0, at(40, None));
        assert!(t.due().is_empty(), "before the commit found at start");
        t.acked(&tp, 1, at(60, Some(7)));
        t.acked(&tp, 1, at(55, Some(2)));
        assert_eq!(t.due(), vec![(tp, at(60, Some(7)))]);
    }

    #[test]
    fn commit_metadata_round_trips_the_target_offset() {
        assert_eq!(target_in(&metadata(at(1, Some(42)))), Some(42));
        assert_eq!(metadata(at(1, None)), "");
        assert_eq!(target_in("someone else's"), None);
    }
}
