//! `--sync-group-offsets REGEX`: the committed offsets of the source's consumer groups,
//! translated exactly through the [`OffsetMap`], committed in the target cluster under
//! the same group id and the target's topic names, so that a consumer moved to the
//! target resumes at the same record.
//!
//! A pass (every commit interval, and once after the final commit): list the source's
//! groups matching REGEX (never the mirror's own), fetch their offsets of mirrored
//! partitions, translate each (an offset past what the target acknowledged waits for a
//! later pass), and commit what changed in the target. Rules, as MirrorMaker 2 keeps
//! them (KIP-545):
//! - A target group with members is not written: its consumers own their positions.
//!   The coordinator would refuse the commit anyway (UNKNOWN_MEMBER_ID for a non-member
//!   of a non-empty group), which is logged, not fatal.
//! - A target offset never moves backwards, except when the source group's offset moved
//!   backwards since the mirror wrote it (a reset on the source): the commit's metadata
//!   says which source offset the mirror translated (`sluice-mirror source=S`). An offset
//!   someone else committed on the target is only ever moved forward.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use regex::Regex;

use super::offset_map::OffsetMap;
use super::{Stats, TopicFilter};
use crate::admin::{Admin, OffsetAndMetadata};
use crate::metadata::TopicPartition;

const MARKER: &str = "sluice-mirror source=";

/// The target commit's metadata: the source offset it was translated from.
pub fn metadata(source: i64) -> String {
    format!("{MARKER}{source}")
}

/// The source offset in metadata written by [`metadata`].
pub fn source_in(metadata: &str) -> Option<i64> {
    metadata.strip_prefix(MARKER)?.parse().ok()
}

/// Whether the translation `target` of source offset `source` is committed over the
/// target group's `current` commit (see the module's rules).
pub fn should_write(source: i64, target: i64, current: Option<&OffsetAndMetadata>) -> bool {
    let Some(current) = current else { return true };
    match source_in(&current.metadata) {
        Some(written_from) if source < written_from => target != current.offset,
        _ => target > current.offset,
    }
}

/// One group's translations: (target partition, source offset, target offset).
type Translated = Vec<(TopicPartition, i64, i64)>;

/// The group offset sync of one mirror run.
#[derive(Debug)]
pub(super) struct GroupSync {
    pub pattern: Regex,
    pub own_group: String,
    pub filter: TopicFilter,
    pub source: Arc<Admin>,
    pub target: Arc<Admin>,
    pub map: Arc<Mutex<OffsetMap>>,
    pub stats: Arc<Stats>,
    /// Target groups found with members, logged once until they are empty again.
    pub busy: HashSet<String>,
}

impl GroupSync {
    /// One pass over the matching groups. Failures are logged and retried next pass.
    pub async fn pass(&mut self) {
        let groups = match self.source.list_groups().await {
            Ok(g) => g,
            Err(e) => {
                tracing::warn!(error = %e, "group offset sync: source groups unreadable; retried");
                return;
            }
        };
        let mut wanted: BTreeMap<String, Translated> = BTreeMap::new();
        for g in groups {
            let id = g.group_id;
            if id == self.own_group || !self.pattern.is_match(&id) {
                continue;
            }
            match self.source.list_consumer_group_offsets(&id, None).await {
                Ok(committed) => {
                    let translated = self.translate(&committed);
                    if !translated.is_empty() {
                        wanted.insert(id, translated);
                    }
                }
                Err(e) => {
                    tracing::warn!(group = %id, error = %e, "group offset sync: source offsets unreadable")
                }
            }
        }
        if wanted.is_empty() {
            return;
        }
        let ids: Vec<String> = wanted.keys().cloned().collect();
        let described = match self.target.describe_groups(&ids).await {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(error = %e, "group offset sync: target groups unreadable; retried");
                return;
            }
        };
        for (id, described) in described {
            let members = match described {
                Ok(d) => d.members.len(),
                Err(e) => {
                    tracing::warn!(group = %id, error = %e, "group offset sync: target group unreadable");
                    continue;
                }
            };
            if members > 0 {
                if self.busy.insert(id.clone()) {
                    tracing::info!(group = %id, members, "group offset sync: the target group has active members; its offsets are left to them");
                }
                continue;
            }
            self.busy.remove(&id);
            let translated = wanted.remove(&id).unwrap_or_default();
            self.write(&id, translated).await;
        }
    }

    /// The translations of `committed` that exist yet, on the target's partitions.
    fn translate(&self, committed: &BTreeMap<TopicPartition, OffsetAndMetadata>) -> Translated {
        let map = self.map.lock().expect("lock");
        committed
            .iter()
            .filter(|(tp, om)| om.offset >= 0 && self.filter.matches(&tp.topic))
            .filter_map(|(tp, om)| {
                let target = map.translate(tp, om.offset)?;
                let on_target =
                    TopicPartition::new(self.filter.target_name(&tp.topic), tp.partition);
                Some((on_target, om.offset, target))
            })
            .collect()
    }

    async fn write(&self, group: &str, translated: Translated) {
        let tps: Vec<TopicPartition> = translated.iter().map(|(tp, _, _)| tp.clone()).collect();
        let current = match self.target.list_consumer_group_offsets(group, Some(&tps)).await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(group, error = %e, "group offset sync: target offsets unreadable");
                return;
            }
        };
        let writes: Vec<(TopicPartition, OffsetAndMetadata)> = translated
            .into_iter()
            .filter(|(tp, source, target)| should_write(*source, *target, current.get(tp)))
            .map(|(tp, source, target)| {
                let om = OffsetAndMetadata {
                    offset: target,
                    leader_epoch: None,
                    metadata: metadata(source),
                };
                (tp, om)
            })
            .collect();
        if writes.is_empty() {
            return;
        }
        let outcomes = match self.target.alter_consumer_group_offsets(group, &writes).await {
            Ok(o) => o,
            Err(e) => {
                tracing::warn!(group, error = %e, "group offset sync: target commit failed; retried");
                return;
            }
        };
        let mut synced = 0u64;
        for (tp, outcome) in outcomes {
            match outcome {
                Ok(()) => synced += 1,
                // A member joined since the look: the group's consumers own it now.
                Err(e) => {
                    tracing::info!(group, partition = %tp, error = %e, "group offset sync: the target refused the offset")
                }
            }
        }
        if synced > 0 {
            self.stats.group_offsets_synced.fetch_add(synced, Ordering::Relaxed);
            tracing::debug!(group, partitions = synced, "group offsets synced to the target");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn om(offset: i64, metadata: &str) -> OffsetAndMetadata {
        OffsetAndMetadata { offset, leader_epoch: None, metadata: metadata.to_string() }
    }

    #[test]
    fn target_offsets_move_forward_and_back_only_after_a_source_reset() {
        assert!(should_write(10, 110, None), "nothing on the target yet");
        let ours = om(110, &metadata(10));
        assert!(!should_write(10, 110, Some(&ours)), "unchanged");
        assert!(should_write(12, 112, Some(&ours)), "forward");
        assert!(!should_write(12, 100, Some(&ours)), "never back while the source moves on");
        assert!(should_write(4, 104, Some(&ours)), "the source group was reset backwards");
        assert!(!should_write(4, 110, Some(&ours)), "a reset that translates the same");
        let theirs = om(150, "");
        assert!(
            !should_write(4, 104, Some(&theirs)),
            "a target consumer's offset is not taken back"
        );
        assert!(should_write(60, 160, Some(&theirs)), "but is moved forward");
    }

    #[test]
    fn the_metadata_names_the_source_offset() {
        assert_eq!(source_in(&metadata(42)), Some(42));
        assert_eq!(source_in("sluice-mirror target=42"), None, "the mirror's own commits");
        assert_eq!(source_in(""), None);
    }
}
