//! `sluice-mirror verify`: compares source and target partition by partition, record by
//! record, and reports gaps, duplicates and mismatches.
//!
//! Each record is reduced to a 64-bit FNV-1a digest of its timestamp, key, value and
//! headers, in that order, with null distinct from empty (a tag byte and a length before
//! each field). A partition's checksum is FNV-1a over its records' digests in order, so
//! it differs when the order does. Offsets are not compared: the target's may differ
//! (a target topic that was not empty, transaction markers not copied).
//!
//! The comparison reads both sides up to their end offsets as of the start; run it on a
//! mirror that has caught up.

use std::collections::HashMap;
use std::time::Duration;

use super::topics::{self, TopicFilter};
use super::MirrorError;
use crate::admin::Admin;
use crate::config::ClientConfig;
use crate::consumer::{Consumer, ConsumerRecord};
use crate::metadata::TopicPartition;

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// A 64-bit FNV-1a hash being fed.
#[derive(Debug, Clone, Copy)]
pub struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(FNV_OFFSET)
    }
}

impl Fnv {
    /// Feeds bytes.
    pub fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(FNV_PRIME);
        }
    }

    /// Feeds a nullable field: a tag byte, then its length and bytes.
    pub fn field(&mut self, field: Option<&[u8]>) {
        match field {
            None => self.write(&[0]),
            Some(f) => {
                self.write(&[1]);
                self.write(&(f.len() as u64).to_be_bytes());
                self.write(f);
            }
        }
    }

    /// The hash so far.
    pub fn finish(self) -> u64 {
        self.0
    }
}

/// The digest of one record: timestamp, key, value, then each header's key and value.
pub fn digest(record: &ConsumerRecord) -> u64 {
    let mut h = Fnv::default();
    h.write(&record.timestamp.to_be_bytes());
    h.field(record.key.as_deref());
    h.field(record.value.as_deref());
    h.write(&(record.headers.len() as u64).to_be_bytes());
    for (k, v) in &record.headers {
        h.field(Some(k));
        h.field(v.as_deref());
    }
    h.finish()
}

/// How a target partition's records line up with the source's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Comparison {
    /// Records read from the source.
    pub source_records: u64,
    /// Records read from the target.
    pub target_records: u64,
    /// Target records that are the next source record.
    pub matched: u64,
    /// Target records that repeat a source record already matched (a re-send).
    pub duplicates: u64,
    /// Target records found nowhere in the source.
    pub mismatched: u64,
    /// Source records absent from the target: `(first source offset, count)` runs.
    pub missing: Vec<(i64, u64)>,
    /// FNV-1a over the source digests in order.
    pub source_checksum: u64,
    /// FNV-1a over the target digests in order.
    pub target_checksum: u64,
}

impl Comparison {
    /// Whether the target holds exactly the source's records, in order.
    pub fn is_exact(&self) -> bool {
        self.source_records == self.target_records
            && self.source_checksum == self.target_checksum
            && self.duplicates == 0
            && self.mismatched == 0
            && self.missing.is_empty()
    }

    /// Whether every source record is on the target in order (duplicates allowed).
    pub fn is_complete(&self) -> bool {
        self.mismatched == 0 && self.missing.is_empty()
    }

    /// Records missing in all.
    pub fn missing_records(&self) -> u64 {
        self.missing.iter().map(|(_, n)| n).sum()
    }
}

/// Lines `target` up against `source` (each `(offset, digest)` in log order): a target
/// record is the next source record, a repeat of one already matched (a duplicate), a
/// later one (the records between are missing), or none (a mismatch).
pub fn compare(source: &[(i64, u64)], target: &[(i64, u64)]) -> Comparison {
    let checksum = |rs: &[(i64, u64)]| {
        let mut h = Fnv::default();
        for (_, d) in rs {
            h.write(&d.to_be_bytes());
        }
        h.finish()
    };
    let mut at: HashMap<u64, Vec<usize>> = HashMap::new();
    for (i, (_, d)) in source.iter().enumerate() {
        at.entry(*d).or_default().push(i);
    }
    let mut c = Comparison {
        source_records: source.len() as u64,
        target_records: target.len() as u64,
        source_checksum: checksum(source),
        target_checksum: checksum(target),
        ..Comparison::default()
    };
    let mut next = 0;
    for (_, d) in target {
        if source.get(next).is_some_and(|(_, s)| s == d) {
            c.matched += 1;
            next += 1;
            continue;
        }
        let Some(places) = at.get(d) else {
            c.mismatched += 1;
            continue;
        };
        if places[0] < next {
            c.duplicates += 1;
        } else {
            // `places` is ascending and every entry is >= next here.
            let later = places[0];
            c.missing.push((source[next].0, (later - next) as u64));
            c.matched += 1;
            next = later + 1;
        }
    }
    if next < source.len() {
        c.missing.push((source[next].0, (source.len() - next) as u64));
    }
    c
}

/// The comparison of one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionReport {
    /// The source topic.
    pub topic: String,
    /// Its name on the target.
    pub target_topic: String,
    /// The partition number (the same on both).
    pub partition: i32,
    /// How the records line up.
    pub comparison: Comparison,
}

/// Compares every partition of every source topic `filter` matches with its copy.
///
/// # Errors
/// A client error of either cluster.
pub async fn verify(
    source: &ClientConfig,
    target: &ClientConfig,
    filter: &TopicFilter,
) -> Result<Vec<PartitionReport>, MirrorError> {
    let admin = Admin::new(source).map_err(|e| MirrorError::client("source", e))?;
    let target_admin = Admin::new(target).map_err(|e| MirrorError::client("target", e))?;
    let wanted = topics::matching(&admin, filter).await;
    let on_target = target_admin.list_topics(false).await;
    admin.close().await;
    target_admin.close().await;
    let wanted = wanted?;
    let on_target: HashMap<String, usize> = on_target
        .map_err(|e| MirrorError::client("list target topics", e))?
        .into_iter()
        .map(|t| (t.name, t.partitions))
        .collect();
    let mut reports = Vec::new();
    for t in wanted {
        let target_topic = filter.target_name(&t.name);
        let from = read(source, &t.name, t.partitions).await?;
        let to = match on_target.get(&target_topic) {
            Some(&n) => read(target, &target_topic, n.min(t.partitions)).await?,
            None => HashMap::new(),
        };
        for p in 0..t.partitions as i32 {
            let none = Vec::new();
            reports.push(PartitionReport {
                topic: t.name.clone(),
                target_topic: target_topic.clone(),
                partition: p,
                comparison: compare(from.get(&p).unwrap_or(&none), to.get(&p).unwrap_or(&none)),
            });
        }
    }
    Ok(reports)
}

/// Every record of partitions `0..partitions` of `topic` up to the end offsets as of now,
/// as `(offset, digest)` by partition.
async fn read(
    config: &ClientConfig,
    topic: &str,
    partitions: usize,
) -> Result<HashMap<i32, Vec<(i64, u64)>>, MirrorError> {
    let context = |e| MirrorError::client(format!("read {topic}"), e);
    let mut config = config.clone();
    config.set("auto.offset.reset", "earliest").set("enable.auto.commit", "false");
    let mut consumer = Consumer::new(&config).map_err(context)?;
    let tps: Vec<TopicPartition> =
        (0..partitions as i32).map(|p| TopicPartition::new(topic, p)).collect();
    consumer.assign(tps.iter().cloned());
    let ends = consumer.end_offsets(&tps).await.map_err(context)?;
    let mut out: HashMap<i32, Vec<(i64, u64)>> = HashMap::new();
    let mut open: Vec<TopicPartition> = Vec::new();
    for tp in &tps {
        if consumer.position(tp).await.map_err(context)? < ends.get(tp).copied().unwrap_or(0) {
            open.push(tp.clone());
        } else {
            consumer.pause(std::slice::from_ref(tp));
        }
    }
    while !open.is_empty() {
        for r in consumer.poll(Duration::from_millis(500)).await.map_err(context)? {
            out.entry(r.partition).or_default().push((r.offset, digest(&r)));
        }
        let mut still = Vec::new();
        for tp in open {
            if consumer.position(&tp).await.map_err(context)? < ends.get(&tp).copied().unwrap_or(0)
            {
                still.push(tp);
            } else {
                consumer.pause(std::slice::from_ref(&tp));
            }
        }
        open = still;
    }
    // Records past the end of the start (written since) are not compared.
    for (p, rs) in out.iter_mut() {
        let end = ends.get(&TopicPartition::new(topic, *p)).copied().unwrap_or(0);
        rs.retain(|(o, _)| *o < end);
    }
    let _ = consumer.close().await;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(digests: &[u64]) -> Vec<(i64, u64)> {
        digests.iter().enumerate().map(|(i, d)| (i as i64 + 100, *d)).collect()
    }

    #[test]
    fn an_exact_copy_is_exact() {
        let s = log(&[1, 2, 3, 2]);
        let c = compare(&s, &log(&[1, 2, 3, 2]));
        assert!(c.is_exact(), "{c:?}");
        assert_eq!(c.matched, 4);
    }

    #[test]
    fn a_resend_after_a_restart_counts_duplicates_and_misses_nothing() {
        let c = compare(&log(&[1, 2, 3, 4, 5]), &log(&[1, 2, 3, 2, 3, 4, 5]));
        assert_eq!((c.matched, c.duplicates, c.missing_records()), (5, 2, 0));
        assert!(c.is_complete() && !c.is_exact());
    }

    #[test]
    fn gaps_name_their_source_offsets_and_strangers_are_mismatches() {
        let c = compare(&log(&[1, 2, 3, 4, 5, 6]), &log(&[1, 4, 9, 5]));
        assert_eq!(c.missing, vec![(101, 2), (105, 1)], "2 and 3 skipped, 6 never came");
        assert_eq!((c.matched, c.mismatched), (3, 1));
        assert!(!c.is_complete());
    }

    #[test]
    fn reordered_records_change_the_checksum() {
        let c = compare(&log(&[1, 2]), &log(&[2, 1]));
        assert_ne!(c.source_checksum, c.target_checksum);
        assert!(!c.is_exact());
    }

    #[test]
    fn the_digest_tells_null_from_empty_and_sees_every_field() {
        let base = ConsumerRecord {
            topic: "t".into(),
            partition: 0,
            offset: 7,
            timestamp: 1,
            log_append_time: false,
            key: None,
            value: Some(bytes::Bytes::new()),
            headers: vec![],
            leader_epoch: 0,
        };
        let d = digest(&base);
        let with = |f: &dyn Fn(&mut ConsumerRecord)| {
            let mut r = base.clone();
            f(&mut r);
            digest(&r)
        };
        assert_eq!(with(&|r| r.offset = 8), d, "offsets are not compared");
        assert_ne!(with(&|r| r.key = Some(bytes::Bytes::new())), d);
        assert_ne!(with(&|r| r.value = None), d);
        assert_ne!(with(&|r| r.timestamp = 2), d);
        assert_ne!(with(&|r| r.headers = vec![("h".into(), None)]), d);
        assert_ne!(
            with(&|r| r.headers = vec![("h".into(), None)]),
            with(&|r| r.headers = vec![("h".into(), Some(bytes::Bytes::new()))])
        );
    }
}
