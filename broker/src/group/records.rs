//! Keys and values of `__consumer_offsets`, in Kafka's own schemas (`OffsetCommitKey`,
//! `OffsetCommitValue`, `GroupMetadataKey`, `GroupMetadataValue` of Kafka 2.3–3.x, the
//! non-flexible versions), so Kafka's tools can read the topic and the layout is one that
//! has been reviewed for years. All integers big-endian; `string` is an i16 length then
//! UTF-8; `nullable string` uses length -1 for null; `bytes` is an i32 length then bytes.
//!
//! ```text
//! key   = version i16, then by version:
//!   0, 1  offset commit    group string · topic string · partition i32
//!   2     group metadata   group string
//! offset commit value = version i16, then
//!   v1   offset i64 · metadata string · commit_timestamp i64 · expire_timestamp i64
//!   v3   offset i64 · leader_epoch i32 · metadata string · commit_timestamp i64
//!   (v0 and v2 are v1 without expire_timestamp; read, never written)
//! group metadata value = version i16 (3), then
//!   protocol_type string · generation i32 · protocol nullable string ·
//!   leader nullable string · current_state_timestamp i64 · member count i32 · members:
//!     member_id string · group_instance_id nullable string · client_id string ·
//!     client_host string · rebalance_timeout i32 · session_timeout i32 ·
//!     subscription bytes · assignment bytes
//!   (v0 lacks the timestamp, rebalance timeout and instance id; v1 adds the rebalance
//!   timeout, v2 the timestamp; all are read, v3 is written)
//! ```
//!
//! A null value (a record without a value) is a tombstone: the key is deleted. Decoding
//! checks every length against the bytes left before using it.

use bytes::Bytes;
use thiserror::Error;

use super::types::CommittedOffset;

/// A record that does not decode.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum RecordError {
    /// The bytes end before the field.
    #[error("record ends before its {field} field")]
    Truncated {
        /// The field.
        field: &'static str,
    },
    /// A key or value version this broker does not know.
    #[error("unknown {what} version {version}")]
    UnknownVersion {
        /// Key, offset value or group value.
        what: &'static str,
        /// The version.
        version: i16,
    },
    /// A string that is not UTF-8, or a negative length where none is allowed.
    #[error("invalid {field} field")]
    Invalid {
        /// The field.
        field: &'static str,
    },
}

/// A decoded key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordKey {
    /// A committed offset.
    Offset {
        /// Group id.
        group: String,
        /// Topic.
        topic: String,
        /// Partition.
        partition: i32,
    },
    /// A group's metadata.
    Group {
        /// Group id.
        group: String,
    },
}

/// An offset commit value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetValue {
    /// The offset.
    pub offset: i64,
    /// Leader epoch (-1: unknown).
    pub leader_epoch: i32,
    /// Client metadata.
    pub metadata: String,
    /// When it was committed.
    pub commit_timestamp: i64,
    /// Explicit expiry (written as value v1).
    pub expire_timestamp: Option<i64>,
}

impl OffsetValue {
    /// As the group keeps it.
    pub fn into_committed(self) -> CommittedOffset {
        CommittedOffset {
            offset: self.offset,
            leader_epoch: self.leader_epoch,
            metadata: self.metadata,
            commit_timestamp: self.commit_timestamp,
            expire_timestamp: self.expire_timestamp,
        }
    }
}

/// A group metadata value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupValue {
    /// Protocol type (empty for none).
    pub protocol_type: String,
    /// Generation.
    pub generation: i32,
    /// Selected protocol.
    pub protocol: Option<String>,
    /// Leader member id.
    pub leader: Option<String>,
    /// When the group entered its state (-1: unknown).
    pub state_timestamp: i64,
    /// Members.
    pub members: Vec<MemberValue>,
}

/// A member inside a group metadata value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberValue {
    /// Member id.
    pub member_id: String,
    /// Instance id.
    pub instance_id: Option<String>,
    /// Client id.
    pub client_id: String,
    /// Client host.
    pub client_host: String,
    /// Rebalance timeout.
    pub rebalance_timeout_ms: i32,
    /// Session timeout.
    pub session_timeout_ms: i32,
    /// Metadata for the selected protocol.
    pub subscription: Bytes,
    /// Assignment.
    pub assignment: Bytes,
}

const OFFSET_KEY_VERSION: i16 = 1;
const GROUP_KEY_VERSION: i16 = 2;
const GROUP_VALUE_VERSION: i16 = 3;

/// Encodes a key.
pub fn encode_key(key: &RecordKey) -> Vec<u8> {
    let mut out = Vec::new();
    match key {
        RecordKey::Offset { group, topic, partition } => {
            out.extend_from_slice(&OFFSET_KEY_VERSION.to_be_bytes());
            put_str(&mut out, group);
            put_str(&mut out, topic);
            out.extend_from_slice(&partition.to_be_bytes());
        }
        RecordKey::Group { group } => {
            out.extend_from_slice(&GROUP_KEY_VERSION.to_be_bytes());
            put_str(&mut out, group);
        }
    }
    out
}

/// Decodes a key.
///
/// # Errors
/// Truncated or invalid bytes, an unknown version.
pub fn decode_key(bytes: &[u8]) -> Result<RecordKey, RecordError> {
    let mut r = Reader(bytes);
    match r.i16("key version")? {
        0 | 1 => Ok(RecordKey::Offset {
            group: r.string("group")?,
            topic: r.string("topic")?,
            partition: r.i32("partition")?,
        }),
        2 => Ok(RecordKey::Group { group: r.string("group")? }),
        version => Err(RecordError::UnknownVersion { what: "key", version }),
    }
}

/// Encodes an offset commit value: v1 when it has an explicit expiry, else v3.
pub fn encode_offset_value(v: &OffsetValue) -> Vec<u8> {
    let mut out = Vec::with_capacity(32 + v.metadata.len());
    match v.expire_timestamp {
        Some(expire) => {
            out.extend_from_slice(&1i16.to_be_bytes());
            out.extend_from_slice(&v.offset.to_be_bytes());
            put_str(&mut out, &v.metadata);
            out.extend_from_slice(&v.commit_timestamp.to_be_bytes());
            out.extend_from_slice(&expire.to_be_bytes());
        }
        None => {
            out.extend_from_slice(&3i16.to_be_bytes());
            out.extend_from_slice(&v.offset.to_be_bytes());
            out.extend_from_slice(&v.leader_epoch.to_be_bytes());
            put_str(&mut out, &v.metadata);
            out.extend_from_slice(&v.commit_timestamp.to_be_bytes());
        }
    }
    out
}

/// Decodes an offset commit value (versions 0–3).
///
/// # Errors
/// Truncated or invalid bytes, an unknown version.
pub fn decode_offset_value(bytes: &[u8]) -> Result<OffsetValue, RecordError> {
    let mut r = Reader(bytes);
    let version = r.i16("value version")?;
    if !(0..=3).contains(&version) {
        return Err(RecordError::UnknownVersion { what: "offset value", version });
    }
    let offset = r.i64("offset")?;
    let leader_epoch = if version >= 3 { r.i32("leader epoch")? } else { -1 };
    let metadata = r.string("metadata")?;
    let commit_timestamp = r.i64("commit timestamp")?;
    let expire_timestamp = if version == 1 { Some(r.i64("expire timestamp")?) } else { None };
    Ok(OffsetValue { offset, leader_epoch, metadata, commit_timestamp, expire_timestamp })
}

/// Encodes a group metadata value (v3).
pub fn encode_group_value(v: &GroupValue) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&GROUP_VALUE_VERSION.to_be_bytes());
    put_str(&mut out, &v.protocol_type);
    out.extend_from_slice(&v.generation.to_be_bytes());
    put_opt_str(&mut out, v.protocol.as_deref());
    put_opt_str(&mut out, v.leader.as_deref());
    out.extend_from_slice(&v.state_timestamp.to_be_bytes());
    out.extend_from_slice(&(v.members.len() as i32).to_be_bytes());
    for m in &v.members {
        put_str(&mut out, &m.member_id);
        put_opt_str(&mut out, m.instance_id.as_deref());
        put_str(&mut out, &m.client_id);
        put_str(&mut out, &m.client_host);
        out.extend_from_slice(&m.rebalance_timeout_ms.to_be_bytes());
        out.extend_from_slice(&m.session_timeout_ms.to_be_bytes());
        put_bytes(&mut out, &m.subscription);
        put_bytes(&mut out, &m.assignment);
    }
    out
}

/// Decodes a group metadata value (versions 0–3).
///
/// # Errors
/// Truncated or invalid bytes, an unknown version.
pub fn decode_group_value(bytes: &[u8]) -> Result<GroupValue, RecordError> {
    let mut r = Reader(bytes);
    let version = r.i16("value version")?;
    if !(0..=3).contains(&version) {
        return Err(RecordError::UnknownVersion { what: "group value", version });
    }
    let protocol_type = r.string("protocol type")?;
    let generation = r.i32("generation")?;
    let protocol = r.opt_string("protocol")?;
    let leader = r.opt_string("leader")?;
    let state_timestamp = if version >= 2 { r.i64("current state timestamp")? } else { -1 };
    let count = r.i32("member count")?;
    // A member takes at least 20 bytes: a count beyond that is corrupt, not a reason to
    // reserve memory.
    if count < 0 || count as usize > r.0.len() / 20 {
        return Err(RecordError::Invalid { field: "member count" });
    }
    let mut members = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let member_id = r.string("member id")?;
        let instance_id = if version >= 3 { r.opt_string("group instance id")? } else { None };
        let client_id = r.string("client id")?;
        let client_host = r.string("client host")?;
        let rebalance_timeout_ms = if version >= 1 { r.i32("rebalance timeout")? } else { -1 };
        let session_timeout_ms = r.i32("session timeout")?;
        let rebalance_timeout_ms =
            if version >= 1 { rebalance_timeout_ms } else { session_timeout_ms };
        members.push(MemberValue {
            member_id,
            instance_id,
            client_id,
            client_host,
            rebalance_timeout_ms,
            session_timeout_ms,
            subscription: r.bytes("subscription")?,
            assignment: r.bytes("assignment")?,
        });
    }
    Ok(GroupValue { protocol_type, generation, protocol, leader, state_timestamp, members })
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    // Kafka strings are at most i16::MAX bytes; ids and metadata are far shorter (the
    // handlers refuse longer metadata), so a longer one is cut rather than mis-encoded.
    let b = &s.as_bytes()[..s.len().min(i16::MAX as usize)];
    out.extend_from_slice(&(b.len() as i16).to_be_bytes());
    out.extend_from_slice(b);
}

fn put_opt_str(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => put_str(out, s),
        None => out.extend_from_slice(&(-1i16).to_be_bytes()),
    }
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as i32).to_be_bytes());
    out.extend_from_slice(b);
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], RecordError> {
        if self.0.len() < n {
            return Err(RecordError::Truncated { field });
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], RecordError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N, field)?);
        Ok(a)
    }

    fn i16(&mut self, field: &'static str) -> Result<i16, RecordError> {
        Ok(i16::from_be_bytes(self.array(field)?))
    }

    fn i32(&mut self, field: &'static str) -> Result<i32, RecordError> {
        Ok(i32::from_be_bytes(self.array(field)?))
    }

    fn i64(&mut self, field: &'static str) -> Result<i64, RecordError> {
        Ok(i64::from_be_bytes(self.array(field)?))
    }

    fn opt_string(&mut self, field: &'static str) -> Result<Option<String>, RecordError> {
        let len = self.i16(field)?;
        if len < 0 {
            return Ok(None);
        }
        let b = self.take(len as usize, field)?;
        String::from_utf8(b.to_vec()).map(Some).map_err(|_| RecordError::Invalid { field })
    }

    fn string(&mut self, field: &'static str) -> Result<String, RecordError> {
        self.opt_string(field)?.ok_or(RecordError::Invalid { field })
    }

    fn bytes(&mut self, field: &'static str) -> Result<Bytes, RecordError> {
        let len = self.i32(field)?;
        let len = usize::try_from(len).map_err(|_| RecordError::Invalid { field })?;
        Ok(Bytes::copy_from_slice(self.take(len, field)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_key_and_value_golden_bytes() {
        let key = RecordKey::Offset { group: "g".into(), topic: "t".into(), partition: 258 };
        let bytes = encode_key(&key);
        assert_eq!(bytes, [0, 1, 0, 1, b'g', 0, 1, b't', 0, 0, 1, 2]);
        assert_eq!(decode_key(&bytes).unwrap(), key);
        let v = OffsetValue {
            offset: 5,
            leader_epoch: 7,
            metadata: "m".into(),
            commit_timestamp: 0x0102,
            expire_timestamp: None,
        };
        let bytes = encode_offset_value(&v);
        #[rustfmt::skip]
        assert_eq!(bytes, [
            0, 3,
            0, 0, 0, 0, 0, 0, 0, 5,
            0, 0, 0, 7,
            0, 1, b'm',
            0, 0, 0, 0, 0, 0, 1, 2,
        ]);
        assert_eq!(decode_offset_value(&bytes).unwrap(), v);
        let v1 = OffsetValue { expire_timestamp: Some(9), leader_epoch: -1, ..v };
        assert_eq!(decode_offset_value(&encode_offset_value(&v1)).unwrap(), v1);
    }

    #[test]
    fn group_key_and_value_golden_bytes() {
        let key = RecordKey::Group { group: "g".into() };
        assert_eq!(encode_key(&key), [0, 2, 0, 1, b'g']);
        let v = GroupValue {
            protocol_type: "consumer".into(),
            generation: 3,
            protocol: Some("range".into()),
            leader: Some("m".into()),
            state_timestamp: 1,
            members: vec![MemberValue {
                member_id: "m".into(),
                instance_id: None,
                client_id: "c".into(),
                client_host: "/h".into(),
                rebalance_timeout_ms: 2,
                session_timeout_ms: 4,
                subscription: Bytes::from_static(&[0xaa]),
                assignment: Bytes::from_static(&[0xbb, 0xcc]),
            }],
        };
        let bytes = encode_group_value(&v);
        let mut expected = vec![0, 3, 0, 8];
        expected.extend_from_slice(b"consumer");
        expected.extend_from_slice(&[0, 0, 0, 3, 0, 5]);
        expected.extend_from_slice(b"range");
        expected.extend_from_slice(&[0, 1, b'm', 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1]);
        expected.extend_from_slice(&[0, 1, b'm', 0xff, 0xff, 0, 1, b'c', 0, 2, b'/', b'h']);
        expected.extend_from_slice(&[0, 0, 0, 2, 0, 0, 0, 4, 0, 0, 0, 1, 0xaa]);
        expected.extend_from_slice(&[0, 0, 0, 2, 0xbb, 0xcc]);
        assert_eq!(bytes, expected);
        assert_eq!(decode_group_value(&bytes).unwrap(), v);
    }

    #[test]
    fn truncated_and_hostile_records_are_errors() {
        let v = GroupValue {
            protocol_type: "consumer".into(),
            generation: 1,
            protocol: None,
            leader: None,
            state_timestamp: -1,
            members: vec![],
        };
        let bytes = encode_group_value(&v);
        for n in 0..bytes.len() {
            assert!(decode_group_value(&bytes[..n]).is_err(), "prefix of {n} bytes");
        }
        let mut huge = bytes.clone();
        let at = huge.len() - 4;
        huge[at..].copy_from_slice(&i32::MAX.to_be_bytes());
        assert_eq!(decode_group_value(&huge), Err(RecordError::Invalid { field: "member count" }));
        assert!(matches!(decode_key(&[0, 9]), Err(RecordError::UnknownVersion { .. })));
        assert!(decode_key(&[0, 1, 0, 5, b'g']).is_err());
    }
}
