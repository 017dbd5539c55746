//! The exact map from source offsets to target offsets, per source partition, and the
//! changes to it that the checkpoint topic has not recorded yet. Sans I/O: the ack loop
//! reports what the target acknowledged, the checkpoint writer takes the changes, the
//! group offset sync asks for translations.
//!
//! A partition's map is a list of segments. A segment says: the source offsets
//! `[source_start, source_end)` are at `target_start + (offset - source_start)` on the
//! target. A batch passed through keeps its offset deltas, so one batch is one segment,
//! and consecutive batches with the same difference extend it: a source log without gaps
//! into an empty target is one segment. What changes the difference starts a new one:
//! a gap between source batches (a control batch not copied, batches compacted away, the
//! source log starting past 0), records the target held already, a record-mode batch
//! with holes (its records are re-batched without them), a restart that sends records
//! again.
//!
//! Translation of a committed source offset S (the next record to read) is the target
//! offset of the first mirrored record at a source offset >= S:
//! - S inside a segment: `target_start + (S - source_start)`; a hole there (compaction)
//!   is a hole on the target too, and both skip to the same record.
//! - S in a gap between segments: the next segment's `target_start`.
//! - S at or past the end of everything mirrored: the target offset the next mirrored
//!   record will get, when that is known (the live run's acknowledged end, or a clean
//!   stop whose commit matched the target's log end), else not yet: it waits until the
//!   record is mirrored.
//!
//! Invariants: segments of a partition do not overlap; a newer mapping of a source
//! offset replaces the older one (after a restart the records sent again are the copy a
//! group moved to the target reads, so that it reads none of them twice).

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;

use crate::metadata::TopicPartition;

/// The `target_start` of a segment whose records' target offsets are not known.
pub const UNKNOWN: i64 = -1;

/// Source offsets `[source_start, source_end)` at `target_start + (offset - source_start)`
/// on the target, or nowhere known when `target_start` is [`UNKNOWN`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    /// The first source offset.
    pub source_start: i64,
    /// The source offset after the last.
    pub source_end: i64,
    /// The target offset of `source_start`, or [`UNKNOWN`].
    pub target_start: i64,
}

impl Segment {
    fn target_of(&self, offset: i64) -> Option<i64> {
        (self.target_start != UNKNOWN).then(|| self.target_start + (offset - self.source_start))
    }

    fn target_end(&self) -> Option<i64> {
        self.target_of(self.source_end)
    }
}

/// Records acknowledged at consecutive offsets on both sides: source
/// `[source, source + len)` at target `[target, target + len)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Run {
    /// The first source offset.
    pub source: i64,
    /// Its target offset.
    pub target: i64,
    /// How many offsets.
    pub len: i64,
}

impl Run {
    /// Consecutive `(source offset, target offset)` pairs joined into runs (record mode:
    /// each record's own acknowledgement).
    pub fn join(pairs: impl IntoIterator<Item = (i64, i64)>) -> Vec<Run> {
        let mut runs: Vec<Run> = Vec::new();
        for (source, target) in pairs {
            match runs.last_mut() {
                Some(r) if r.source + r.len == source && r.target + r.len == target => r.len += 1,
                _ => runs.push(Run { source, target, len: 1 }),
            }
        }
        runs
    }
}

/// Where a partition's mirroring resumes, as the mirror found it at start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resume {
    /// The next source offset to mirror.
    pub source: i64,
    /// Whether `source` is the mirror's committed offset (else the log's start: a
    /// partition never mirrored).
    pub committed: bool,
    /// The target offset the next mirrored record will get, when the commit said where
    /// the target was and the target's log still ends there (a clean stop).
    pub target: Option<i64>,
}

/// A checkpoint record: a segment's latest state under its key, or its removal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The source partition.
    pub tp: TopicPartition,
    /// The segment's first source offset (with `tp`, the record key).
    pub source_start: i64,
    /// The segment now, or `None`: it is gone (a tombstone).
    pub segment: Option<Segment>,
}

#[derive(Debug, Default)]
struct Partition {
    /// By `source_start`.
    segments: BTreeMap<i64, Segment>,
    /// The next source offset to mirror and the target offset its record will get.
    tail: Option<(i64, i64)>,
}

impl Partition {
    /// Removes the mapping of every offset at or past `from`; returns the starts of the
    /// segments that changed.
    fn truncate(&mut self, from: i64) -> Vec<i64> {
        let mut changed: Vec<i64> = self.segments.range(from..).map(|(s, _)| *s).collect();
        for s in &changed {
            self.segments.remove(s);
        }
        if let Some((&start, seg)) = self.segments.range_mut(..from).next_back() {
            if seg.source_end > from {
                seg.source_end = from;
                changed.push(start);
            }
        }
        changed
    }

    fn translate(&self, offset: i64) -> Option<i64> {
        if let Some((_, seg)) = self.segments.range(..=offset).next_back() {
            if offset < seg.source_end {
                return seg.target_of(offset);
            }
        }
        if let Some((_, next)) =
            self.segments.range((Bound::Excluded(offset), Bound::Unbounded)).next()
        {
            return next.target_of(next.source_start);
        }
        self.tail.filter(|(source, _)| offset <= *source).map(|(_, target)| target)
    }
}

/// Every mirrored partition's map, and which segments the checkpoint lacks.
#[derive(Debug, Default)]
pub struct OffsetMap {
    partitions: BTreeMap<TopicPartition, Partition>,
    dirty: BTreeSet<(TopicPartition, i64)>,
}

impl OffsetMap {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    /// A record read back from the checkpoint topic: the latest record of a key wins, a
    /// tombstone removes it.
    pub fn load(&mut self, change: Change) {
        let p = self.partitions.entry(change.tp).or_default();
        match change.segment {
            Some(seg) => {
                p.segments.insert(change.source_start, seg);
            }
            None => {
                p.segments.remove(&change.source_start);
            }
        }
    }

    /// Mirroring of `tp` resumes at `at`: what the checkpoint maps at or past it is
    /// replaced by what this run sends. A committed position with nothing mapped below
    /// it (the checkpoint was lost, or an older mirror wrote the target) leaves the
    /// offsets below it unknown rather than translated past records the target may hold.
    pub fn resumed(&mut self, tp: &TopicPartition, at: Resume) {
        let p = self.partitions.entry(tp.clone()).or_default();
        let mut changed = p.truncate(at.source);
        if at.committed && at.source > 0 && p.segments.is_empty() {
            let unknown = Segment { source_start: 0, source_end: at.source, target_start: UNKNOWN };
            p.segments.insert(0, unknown);
            changed.push(0);
        }
        p.tail = at.target.map(|t| (at.source, t));
        self.dirty.extend(changed.into_iter().map(|s| (tp.clone(), s)));
    }

    /// The target acknowledged `runs` (in source order) of `tp`, and the next source
    /// offset to mirror is `next` (past the runs when the batch ended in a hole or was a
    /// control batch).
    pub fn mirrored(&mut self, tp: &TopicPartition, runs: &[Run], next: i64) {
        let p = self.partitions.entry(tp.clone()).or_default();
        let mut changed = Vec::new();
        for run in runs.iter().filter(|r| r.len > 0) {
            changed.extend(p.truncate(run.source));
            let extends = p.segments.values().next_back().filter(|last| {
                last.source_end == run.source && last.target_end() == Some(run.target)
            });
            let start = match extends {
                Some(last) => last.source_start,
                None => run.source,
            };
            let seg = p.segments.entry(start).or_insert(Segment {
                source_start: run.source,
                source_end: run.source,
                target_start: run.target,
            });
            seg.source_end = run.source + run.len;
            changed.push(start);
            p.tail = Some((seg.source_end, run.target + run.len));
        }
        if let Some((source, _)) = &mut p.tail {
            *source = (*source).max(next);
        }
        self.dirty.extend(changed.into_iter().map(|s| (tp.clone(), s)));
    }

    /// The target acknowledged source offsets `[from, next)` of `tp` without saying
    /// where (no offset in its answer): they stay unknown, and so does the tail until a
    /// later acknowledgement says where the target is.
    pub fn unknown(&mut self, tp: &TopicPartition, from: i64, next: i64) {
        let p = self.partitions.entry(tp.clone()).or_default();
        let mut changed = p.truncate(from);
        p.segments
            .insert(from, Segment { source_start: from, source_end: next, target_start: UNKNOWN });
        changed.push(from);
        p.tail = None;
        self.dirty.extend(changed.into_iter().map(|s| (tp.clone(), s)));
    }

    /// The target offset of the first mirrored record of `tp` at a source offset at or
    /// past `offset`; `None` while that record is not mirrored yet or its target offset
    /// is unknown.
    pub fn translate(&self, tp: &TopicPartition, offset: i64) -> Option<i64> {
        self.partitions.get(tp)?.translate(offset)
    }

    /// Whether anything of `tp` is mapped.
    pub fn knows(&self, tp: &TopicPartition) -> bool {
        self.partitions.get(tp).is_some_and(|p| !p.segments.is_empty() || p.tail.is_some())
    }

    /// The changes the checkpoint lacks, each key once with its current state; they
    /// count as written until [`Self::unwritten`] says otherwise.
    pub fn take_changes(&mut self) -> Vec<Change> {
        let dirty = std::mem::take(&mut self.dirty);
        dirty
            .into_iter()
            .map(|(tp, source_start)| {
                let segment =
                    self.partitions.get(&tp).and_then(|p| p.segments.get(&source_start)).copied();
                Change { tp, source_start, segment }
            })
            .collect()
    }

    /// `changes` did not reach the checkpoint: they are taken again next time (with the
    /// state current then).
    pub fn unwritten(&mut self, changes: &[Change]) {
        self.dirty.extend(changes.iter().map(|c| (c.tp.clone(), c.source_start)));
    }

    /// Segments in the map, over every partition.
    pub fn segments(&self) -> usize {
        self.partitions.values().map(|p| p.segments.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tp() -> TopicPartition {
        TopicPartition::new("t", 0)
    }

    fn run(source: i64, target: i64, len: i64) -> Run {
        Run { source, target, len }
    }

    fn fresh() -> Resume {
        Resume { source: 0, committed: false, target: None }
    }

    /// Translations of `0..n` for `tp`.
    fn all(m: &OffsetMap, n: i64) -> Vec<Option<i64>> {
        (0..n).map(|s| m.translate(&tp(), s)).collect()
    }

    #[test]
    fn batches_without_gaps_are_one_segment_and_translate_with_their_deltas() {
        let mut m = OffsetMap::new();
        m.resumed(&tp(), fresh());
        // The target held 100 records already.
        m.mirrored(&tp(), &[run(0, 100, 10)], 10);
        m.mirrored(&tp(), &[run(10, 110, 5)], 15);
        assert_eq!(m.segments(), 1);
        assert_eq!(m.translate(&tp(), 0), Some(100));
        assert_eq!(m.translate(&tp(), 12), Some(112));
        assert_eq!(m.translate(&tp(), 15), Some(115), "caught up: the next record's offset");
        assert_eq!(m.translate(&tp(), 16), None, "not mirrored yet");
        let changes = m.take_changes();
        assert_eq!(
            changes,
            vec![Change {
                tp: tp(),
                source_start: 0,
                segment: Some(Segment { source_start: 0, source_end: 15, target_start: 100 })
            }],
            "one key, its latest state"
        );
        assert!(m.take_changes().is_empty());
    }

    #[test]
    fn an_offset_in_a_gap_translates_to_the_next_mirrored_record() {
        let mut m = OffsetMap::new();
        // The source log starts at 5; offsets 10 (a control batch) and 11..14 (compacted
        // away) are not on the target.
        m.resumed(&tp(), Resume { source: 5, committed: false, target: None });
        m.mirrored(&tp(), &[run(5, 0, 5)], 10);
        m.mirrored(&tp(), &[], 11);
        assert_eq!(m.translate(&tp(), 10), Some(5), "the tail moved over the marker");
        m.mirrored(&tp(), &[run(15, 5, 3)], 18);
        assert_eq!(m.segments(), 2);
        let expected = [0, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 5, 5, 5, 5, 5, 6, 7, 8];
        assert_eq!(all(&m, 19), expected.iter().map(|t| Some(*t)).collect::<Vec<_>>());
        assert_eq!(m.translate(&tp(), 19), None);
    }

    #[test]
    fn record_mode_holes_split_runs_and_each_record_maps_one_to_one() {
        // A compacted batch 0..=9 with records at 0, 1, 2, 5, 9, re-batched contiguously.
        let runs = Run::join([(0, 40), (1, 41), (2, 42), (5, 43), (9, 44)]);
        assert_eq!(runs, vec![run(0, 40, 3), run(5, 43, 1), run(9, 44, 1)]);
        let mut m = OffsetMap::new();
        m.resumed(&tp(), fresh());
        m.mirrored(&tp(), &runs, 10);
        let t: Vec<i64> = all(&m, 11).into_iter().map(Option::unwrap).collect();
        assert_eq!(t, [40, 41, 42, 43, 43, 43, 44, 44, 44, 44, 45]);
    }

    #[test]
    fn a_restart_truncates_at_the_commit_and_the_copy_sent_again_wins() {
        let mut m = OffsetMap::new();
        m.resumed(&tp(), fresh());
        m.mirrored(&tp(), &[run(0, 0, 100)], 100);
        // Killed after committing 80 with the target holding 0..100: the next run
        // resumes at 80 and its records land at 100 (the target's end is past the
        // commit's, so the commit says nothing about where they land).
        let mut again = OffsetMap::new();
        for c in m.take_changes() {
            again.load(c);
        }
        again.resumed(&tp(), Resume { source: 80, committed: true, target: None });
        assert_eq!(again.translate(&tp(), 79), Some(79), "below the commit: kept");
        assert_eq!(again.translate(&tp(), 85), None, "waits for the copy sent again");
        again.mirrored(&tp(), &[run(80, 100, 30)], 110);
        assert_eq!(again.translate(&tp(), 80), Some(100));
        assert_eq!(again.translate(&tp(), 95), Some(115), "not the first copy at 95");
        let changes = again.take_changes();
        assert_eq!(changes.len(), 2, "{changes:?}");
        assert_eq!(changes[0].segment.unwrap().source_end, 80, "the old segment cut at 80");
        let new = Segment { source_start: 80, source_end: 110, target_start: 100 };
        assert_eq!(changes[1].segment, Some(new));
    }

    #[test]
    fn the_checkpoint_restores_the_map_and_a_clean_stop_keeps_the_tail() {
        let mut m = OffsetMap::new();
        m.resumed(&tp(), Resume { source: 3, committed: false, target: None });
        m.mirrored(&tp(), &[run(3, 7, 4)], 7);
        // 7 and 8 are not on the target (a marker, a compacted batch).
        m.mirrored(&tp(), &[run(9, 11, 3)], 12);
        let before = all(&m, 13);
        let mut restored = OffsetMap::new();
        for c in m.take_changes() {
            restored.load(c);
        }
        // Stopped cleanly: committed 12 with target 14, and the target ends at 14.
        restored.resumed(&tp(), Resume { source: 12, committed: true, target: Some(14) });
        assert_eq!(all(&restored, 13), before);
        assert!(restored.take_changes().is_empty(), "nothing at or past the commit to cut");
        restored.mirrored(&tp(), &[run(12, 14, 1)], 13);
        assert_eq!(restored.segments(), 2, "the run extended the last segment");
    }

    #[test]
    fn removed_segments_become_tombstones_and_unwritten_changes_come_back() {
        let mut m = OffsetMap::new();
        m.resumed(&tp(), fresh());
        m.mirrored(&tp(), &[run(0, 0, 10)], 10);
        m.mirrored(&tp(), &[run(12, 10, 10)], 22);
        m.take_changes();
        m.resumed(&tp(), Resume { source: 5, committed: true, target: None });
        let changes = m.take_changes();
        assert_eq!(changes.len(), 2);
        assert_eq!(changes[1], Change { tp: tp(), source_start: 12, segment: None });
        m.unwritten(&changes);
        assert_eq!(m.take_changes(), changes, "the same keys, their current state");
    }

    #[test]
    fn a_commit_with_nothing_mapped_below_it_leaves_those_offsets_unknown() {
        let mut m = OffsetMap::new();
        m.resumed(&tp(), Resume { source: 50, committed: true, target: Some(70) });
        assert_eq!(m.translate(&tp(), 10), None, "the target may hold them: unknown");
        assert_eq!(m.translate(&tp(), 50), Some(70), "the commit matched the target's end");
        m.mirrored(&tp(), &[run(50, 70, 5)], 55);
        assert_eq!(m.translate(&tp(), 52), Some(72));
        assert_eq!(m.translate(&tp(), 49), None);
        let unknown = m.take_changes()[0].segment.unwrap();
        assert_eq!(unknown, Segment { source_start: 0, source_end: 50, target_start: UNKNOWN });
    }

    #[test]
    fn an_acknowledgement_without_offsets_leaves_its_range_and_the_tail_unknown() {
        let mut m = OffsetMap::new();
        m.resumed(&tp(), fresh());
        m.mirrored(&tp(), &[run(0, 0, 5)], 5);
        m.unknown(&tp(), 5, 8);
        assert_eq!(m.translate(&tp(), 4), Some(4));
        assert_eq!(m.translate(&tp(), 6), None);
        assert_eq!(m.translate(&tp(), 8), None, "where the next record lands is unknown");
        m.mirrored(&tp(), &[run(8, 9, 2)], 10);
        assert_eq!(m.translate(&tp(), 8), Some(9));
        assert_eq!(m.translate(&tp(), 5), None, "inside the unknown range");
    }
}
