//! The checkpoint topic: the [`OffsetMap`] kept on the target, one compacted record per
//! segment, so that a restarted mirror translates offsets it mirrored before.
//!
//! The topic is `<rename prefix>sluice-mirror.offset-syncs` on the target, one
//! partition, `cleanup.policy=compact`, created by the mirror. A topic whose name ends
//! in `sluice-mirror.offset-syncs` is never mirrored (see [`is_checkpoint_topic`]), so
//! two mirrors in opposite directions do not copy each other's checkpoints.
//!
//! The key is the segment's source partition and first source offset, so compaction
//! keeps exactly one record per segment, its latest: a segment that grows is written
//! again under its key, one that a restart cut short is written shorter, one that is
//! gone gets a tombstone. A gapless source partition is one key however much is
//! mirrored; each change of the offset difference (a gap, a restart) adds one.
//!
//! Records are written with the target producer (idempotent, acks=all) before the
//! source offsets they cover are committed, so everything below a committed position is
//! in the checkpoint.
//!
//! Layout (big-endian):
//! ```text
//! key, version 0:    version i16 = 0 | topic length i16 | topic (UTF-8) | partition i32
//!                    | source_start i64
//! value, version 0:  version i16 = 0 | source_end i64 | target_start i64 (-1: unknown)
//! tombstone:         null value
//! ```

use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use sluice_protocol::error_code::ErrorCode;

use super::offset_map::{Change, OffsetMap, Segment};
use super::MirrorError;
use crate::admin::{Admin, NewTopic, OffsetSpec};
use crate::config::ClientConfig;
use crate::consumer::Consumer;
use crate::error::ClientError;
use crate::metadata::TopicPartition;
use crate::producer::{Producer, ProducerRecord};

/// The end of every checkpoint topic's name.
pub const SUFFIX: &str = "sluice-mirror.offset-syncs";

const VERSION: i16 = 0;
const KEY_FIXED: usize = 2 + 2 + 4 + 8;
const VALUE_LEN: usize = 2 + 8 + 8;

/// The checkpoint topic of a mirror that renames with `prefix`.
pub fn topic_name(prefix: &str) -> String {
    format!("{prefix}{SUFFIX}")
}

/// Whether `name` is some mirror's checkpoint topic (never mirrored).
pub fn is_checkpoint_topic(name: &str) -> bool {
    name.ends_with(SUFFIX)
}

/// The record key of the segment of `tp` that starts at `source_start`; `None` for a
/// topic name longer than an i16 length (Kafka's are at most 249 bytes, but the name
/// comes from the source cluster).
pub fn key(tp: &TopicPartition, source_start: i64) -> Option<Bytes> {
    let topic = tp.topic.as_bytes();
    let len = i16::try_from(topic.len()).ok()?;
    let mut b = BytesMut::with_capacity(KEY_FIXED + topic.len());
    b.put_i16(VERSION);
    b.put_i16(len);
    b.put_slice(topic);
    b.put_i32(tp.partition);
    b.put_i64(source_start);
    Some(b.freeze())
}

/// The record value of a segment.
pub fn value(seg: &Segment) -> Bytes {
    let mut b = BytesMut::with_capacity(VALUE_LEN);
    b.put_i16(VERSION);
    b.put_i64(seg.source_end);
    b.put_i64(seg.target_start);
    b.freeze()
}

/// A checkpoint record read back; `None` for bytes this version does not write.
pub fn decode(key: &[u8], value: Option<&[u8]>) -> Option<Change> {
    let i16_at =
        |b: &[u8], at: usize| Some(i16::from_be_bytes(b.get(at..at + 2)?.try_into().ok()?));
    let i32_at =
        |b: &[u8], at: usize| Some(i32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?));
    let i64_at =
        |b: &[u8], at: usize| Some(i64::from_be_bytes(b.get(at..at + 8)?.try_into().ok()?));
    if i16_at(key, 0)? != VERSION {
        return None;
    }
    let len = usize::try_from(i16_at(key, 2)?).ok()?;
    if key.len() != KEY_FIXED + len {
        return None;
    }
    let topic = std::str::from_utf8(&key[4..4 + len]).ok()?;
    let partition = i32_at(key, 4 + len)?;
    let source_start = i64_at(key, 8 + len)?;
    let segment = match value {
        None => None,
        Some(v) if v.len() == VALUE_LEN && i16_at(v, 0)? == VERSION => {
            Some(Segment { source_start, source_end: i64_at(v, 2)?, target_start: i64_at(v, 10)? })
        }
        Some(_) => return None,
    };
    Some(Change { tp: TopicPartition::new(topic, partition), source_start, segment })
}

/// Creates the checkpoint topic on the target if it is missing.
///
/// # Errors
/// The target's refusal (it must hold the checkpoint for offsets to translate).
pub async fn ensure(target: &Admin, name: &str) -> Result<(), MirrorError> {
    let topic = NewTopic::new(name).partitions(1).config("cleanup.policy", "compact");
    let outcomes = target
        .create_topics(&[topic], false)
        .await
        .map_err(|e| MirrorError::client(format!("create checkpoint topic {name}"), e))?;
    match outcomes.into_iter().next().map(|(_, r)| r) {
        Some(Ok(())) => {
            tracing::info!(topic = name, "created the checkpoint topic");
            Ok(())
        }
        Some(Err(e)) if e.code() == Some(ErrorCode::TOPIC_ALREADY_EXISTS) => Ok(()),
        Some(Err(e)) => Err(MirrorError::client(format!("create checkpoint topic {name}"), e)),
        None => Ok(()),
    }
}

/// The map the checkpoint topic holds: every record from its start to its end as of now.
///
/// # Errors
/// A failure to read the topic.
pub async fn load(
    target: &ClientConfig,
    admin: &Admin,
    name: &str,
) -> Result<OffsetMap, MirrorError> {
    let context = |e| MirrorError::client(format!("read checkpoint topic {name}"), e);
    let tp = TopicPartition::new(name, 0);
    // The admin's lookup, since a future holding a `&Consumer` is not `Send`.
    let end = admin.list_offsets(&[(tp.clone(), OffsetSpec::Latest)]).await.map_err(context)?;
    let end = end.get(&tp).map_or(0, |o| o.offset);
    let mut config = target.clone();
    config.set("auto.offset.reset", "earliest").set("enable.auto.commit", "false");
    let mut consumer = Consumer::new(&config).map_err(context)?;
    consumer.assign([tp.clone()]);
    let mut map = OffsetMap::new();
    let (mut records, mut foreign) = (0u64, 0u64);
    while consumer.position(&tp).await.map_err(context)? < end {
        for r in consumer.poll(Duration::from_millis(500)).await.map_err(context)? {
            if r.offset >= end {
                continue;
            }
            records += 1;
            match r.key.as_deref().and_then(|k| decode(k, r.value.as_deref())) {
                Some(change) => map.load(change),
                None => foreign += 1,
            }
        }
    }
    let _ = consumer.close().await;
    if foreign > 0 {
        tracing::warn!(
            topic = name,
            records = foreign,
            "checkpoint records not understood were left out"
        );
    }
    tracing::info!(
        topic = name,
        records,
        segments = map.segments(),
        "offset map loaded from the checkpoint"
    );
    Ok(map)
}

/// Writes `changes` to the checkpoint topic and waits for the target's acknowledgement.
///
/// # Errors
/// The first record the target did not take.
pub async fn write(
    producer: &Producer,
    name: &Arc<str>,
    changes: &[Change],
) -> Result<(), ClientError> {
    let mut pending = Vec::with_capacity(changes.len());
    for c in changes {
        let Some(key) = key(&c.tp, c.source_start) else {
            tracing::warn!(partition = %c.tp, "topic name too long for a checkpoint key: not kept across restarts");
            continue;
        };
        let record = ProducerRecord {
            topic: name.clone(),
            partition: Some(0),
            key: Some(key),
            value: c.segment.as_ref().map(value),
            headers: Vec::new(),
            timestamp: None,
        };
        pending.push(producer.send(record).await?);
    }
    for d in pending {
        d.await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_have_the_documented_bytes_and_round_trip() {
        let tp = TopicPartition::new("ab", 3);
        let seg = Segment { source_start: 5, source_end: 9, target_start: -1 };
        let k = key(&tp, 5).unwrap();
        let v = value(&seg);
        assert_eq!(
            &k[..],
            &[0, 0, 0, 2, b'a', b'b', 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 5],
            "version, topic length, topic, partition, source start"
        );
        assert_eq!(
            &v[..],
            &[0, 0, 0, 0, 0, 0, 0, 0, 0, 9, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
            "version, source end, target start"
        );
        let change = Change { tp: tp.clone(), source_start: 5, segment: Some(seg) };
        assert_eq!(decode(&k, Some(&v)), Some(change));
        let tombstone = Change { tp, source_start: 5, segment: None };
        assert_eq!(decode(&k, None), Some(tombstone));
    }

    #[test]
    fn foreign_or_truncated_records_are_not_read_as_segments() {
        let k = key(&TopicPartition::new("t", 0), 1).unwrap();
        assert_eq!(key(&TopicPartition::new("x".repeat(40_000), 0), 1), None);
        assert_eq!(decode(&k[..k.len() - 1], None), None);
        assert_eq!(decode(b"hello", None), None);
        let mut future = k.to_vec();
        future[1] = 1;
        assert_eq!(decode(&future, None), None, "a later version");
        assert_eq!(decode(&k, Some(b"short")), None);
    }

    #[test]
    fn checkpoint_names_carry_the_prefix_and_are_recognised() {
        assert_eq!(topic_name("A."), "A.sluice-mirror.offset-syncs");
        assert!(is_checkpoint_topic(&topic_name("")));
        assert!(is_checkpoint_topic("B.sluice-mirror.offset-syncs"));
        assert!(!is_checkpoint_topic("orders"));
    }
}
