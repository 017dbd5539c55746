//! The two payloads of Kafka's classic consumer protocol ("consumer" protocol type): the
//! subscription each member puts in its JoinGroup protocol metadata, and the assignment
//! the leader hands each member through SyncGroup. Sans I/O: bytes in, structs out. The
//! one codec of these bytes: the client's group member writes and reads them, the broker's
//! coordinator reads the subscribed topics and its console the assignments.
//!
//! Both are what Java's `ConsumerProtocol` writes: big-endian and non-flexible (no
//! varints, no tagged fields), a version first, then the fields of that version:
//!
//! ```text
//! Subscription                        Assignment
//!   i16     version                     i16     version (0-3 share one layout)
//!   i32     topic count                 i32     topic count
//!     i16+  topic (UTF-8)                 i16+  topic
//!   i32+    user_data (-1: null)          i32   partition count
//!   v1+ i32 owned topic count               i32 partition
//!     i16+  topic                       i32+    user_data (-1: null)
//!     i32   partition count
//!       i32 partition
//!   v2+ i32 generation_id (-1: none)
//!   v3+ i16+ rack_id (-1: null)
//! ```
//! `i16+` is an i16 length then that many bytes, `i32+` the same with an i32 length.
//!
//! Decoding follows Java's forward-compatibility rule: a version above the latest known is
//! read as the latest known, and bytes after the known fields are ignored (a newer client
//! may only append fields). Any negative length of a nullable field reads as null, as in
//! Java. Every count is checked against the bytes left before anything is allocated, so
//! a hostile count costs nothing; truncated input is a
//! [`ConsumerProtocolError::Truncated`], never a panic.
//!
//! Encoding writes exactly the version asked for; fields that version lacks are dropped
//! (they are "ignorable" in Kafka's schema, so Java drops them too).

use bytes::{BufMut, Bytes, BytesMut};
use thiserror::Error;

/// The newest subscription version this module knows (v3: KIP-881's rack id).
pub const LATEST_SUBSCRIPTION_VERSION: i16 = 3;

/// The newest assignment version this module knows; v0 to v3 have the same layout (Java
/// bumps it with the subscription's).
pub const LATEST_ASSIGNMENT_VERSION: i16 = 3;

/// Why consumer-protocol bytes could not be encoded or decoded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ConsumerProtocolError {
    /// The input ends before a field does, or claims more elements than bytes remain.
    #[error("consumer protocol {message}: {field} at byte {offset} needs {needed} bytes, {remaining} remain")]
    Truncated {
        /// `subscription` or `assignment`.
        message: &'static str,
        /// The field being read.
        field: &'static str,
        /// Where the field starts.
        offset: usize,
        /// Bytes the field needs at the least (a count times its smallest element).
        needed: u64,
        /// Bytes left in the input.
        remaining: usize,
    },
    /// A field that cannot be null has a negative length or count.
    #[error("consumer protocol {message}: {field} at byte {offset} has length {length} but cannot be null")]
    NegativeLength {
        /// `subscription` or `assignment`.
        message: &'static str,
        /// The field being read.
        field: &'static str,
        /// Where the field starts.
        offset: usize,
        /// The length read.
        length: i32,
    },
    /// A string is not UTF-8.
    #[error("consumer protocol {message}: {field} at byte {offset} is not valid utf-8")]
    InvalidUtf8 {
        /// `subscription` or `assignment`.
        message: &'static str,
        /// The field being read.
        field: &'static str,
        /// Where the string's bytes start.
        offset: usize,
    },
    /// A version below 0 (decoding), or one this module cannot write (encoding).
    #[error("consumer protocol {message}: version {version} is not supported")]
    UnsupportedVersion {
        /// `subscription` or `assignment`.
        message: &'static str,
        /// The version.
        version: i16,
    },
    /// A value too long for its length prefix (a string over 32,767 bytes, say).
    #[error("consumer protocol {message}: {field} of {len} exceeds the maximum of {max}")]
    TooLong {
        /// `subscription` or `assignment`.
        message: &'static str,
        /// The field being written.
        field: &'static str,
        /// Its length in bytes or elements.
        len: usize,
        /// What its prefix can express.
        max: usize,
    },
}

/// One topic's partitions, the wire's grouping of owned and assigned partitions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TopicPartitions {
    /// The topic.
    pub topic: String,
    /// Its partitions, in the order written.
    pub partitions: Vec<i32>,
}

impl TopicPartitions {
    /// Groups `(topic, partition)` pairs by topic, topics and partitions in ascending
    /// order, each pair once.
    pub fn group<'a>(pairs: impl IntoIterator<Item = &'a (String, i32)>) -> Vec<TopicPartitions> {
        let mut sorted: Vec<&(String, i32)> = pairs.into_iter().collect();
        sorted.sort();
        sorted.dedup();
        let mut out: Vec<TopicPartitions> = Vec::new();
        for (topic, partition) in sorted {
            match out.last_mut() {
                Some(last) if last.topic == *topic => last.partitions.push(*partition),
                _ => {
                    out.push(TopicPartitions { topic: topic.clone(), partitions: vec![*partition] })
                }
            }
        }
        out
    }

    /// The `(topic, partition)` pairs of `groups`, in wire order.
    pub fn flatten(groups: &[TopicPartitions]) -> Vec<(String, i32)> {
        groups.iter().flat_map(|g| g.partitions.iter().map(|&p| (g.topic.clone(), p))).collect()
    }
}

/// A member's JoinGroup metadata for the "consumer" protocol type
/// (`ConsumerProtocolSubscription`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    /// The topics subscribed to.
    pub topics: Vec<String>,
    /// The assignor's opaque data (cooperative-sticky: the generation, for old leaders).
    pub user_data: Option<Bytes>,
    /// v1+: the partitions the member owns now (KIP-429).
    pub owned_partitions: Vec<TopicPartitions>,
    /// v2+: the generation in which `owned_partitions` were assigned; -1 unknown (KIP-792).
    pub generation_id: i32,
    /// v3+: the member's `client.rack` (KIP-881).
    pub rack_id: Option<String>,
}

impl Default for Subscription {
    fn default() -> Self {
        Subscription {
            topics: Vec::new(),
            user_data: None,
            owned_partitions: Vec::new(),
            generation_id: -1,
            rack_id: None,
        }
    }
}

impl Subscription {
    /// The subscription's bytes at `version`, fields newer than it left out.
    ///
    /// # Errors
    /// [`ConsumerProtocolError::UnsupportedVersion`] outside 0 to
    /// [`LATEST_SUBSCRIPTION_VERSION`]; [`ConsumerProtocolError::TooLong`] for a field its
    /// length prefix cannot express.
    pub fn encode(&self, version: i16) -> Result<Bytes, ConsumerProtocolError> {
        const MESSAGE: &str = "subscription";
        if !(0..=LATEST_SUBSCRIPTION_VERSION).contains(&version) {
            return Err(ConsumerProtocolError::UnsupportedVersion { message: MESSAGE, version });
        }
        let mut w = Writer::new(MESSAGE);
        w.buf.put_i16(version);
        w.count("topics", self.topics.len())?;
        for topic in &self.topics {
            w.string("topics", Some(topic))?;
        }
        w.bytes("user_data", self.user_data.as_deref())?;
        if version >= 1 {
            w.topic_partitions("owned_partitions", &self.owned_partitions)?;
        }
        if version >= 2 {
            w.buf.put_i32(self.generation_id);
        }
        if version >= 3 {
            w.string("rack_id", self.rack_id.as_deref())?;
        }
        Ok(w.buf.freeze())
    }

    /// Reads a subscription written at any version; `user_data` shares `bytes`.
    ///
    /// # Errors
    /// A negative version, truncated input, a non-nullable field with a negative length,
    /// or a string that is not UTF-8.
    pub fn decode(bytes: &Bytes) -> Result<Subscription, ConsumerProtocolError> {
        let mut r = Reader::new(bytes, "subscription");
        let version = r.version()?.min(LATEST_SUBSCRIPTION_VERSION);
        let topics = r.strings("topics")?;
        let user_data = r.nullable_bytes("user_data")?;
        let owned_partitions =
            if version >= 1 { r.topic_partitions("owned_partitions")? } else { Vec::new() };
        let generation_id = if version >= 2 { r.i32("generation_id")? } else { -1 };
        let rack_id = if version >= 3 { r.nullable_string("rack_id")? } else { None };
        Ok(Subscription { topics, user_data, owned_partitions, generation_id, rack_id })
    }

    /// The topics of a subscription written at any version, the fields after them left
    /// unread: what a coordinator needs of each member to know what its group subscribes
    /// to.
    ///
    /// # Errors
    /// As [`Self::decode`], for the version and the topics only.
    pub fn decode_topics(bytes: &Bytes) -> Result<Vec<String>, ConsumerProtocolError> {
        let mut r = Reader::new(bytes, "subscription");
        r.version()?;
        r.strings("topics")
    }
}

/// What the leader assigns one member, in SyncGroup (`ConsumerProtocolAssignment`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Assignment {
    /// The partitions assigned.
    pub assigned_partitions: Vec<TopicPartitions>,
    /// The assignor's opaque data.
    pub user_data: Option<Bytes>,
}

impl Assignment {
    /// The assignment's bytes at `version` (0 to 3, all the same layout).
    ///
    /// # Errors
    /// [`ConsumerProtocolError::UnsupportedVersion`] outside 0 to
    /// [`LATEST_ASSIGNMENT_VERSION`]; [`ConsumerProtocolError::TooLong`] for a field its
    /// length prefix cannot express.
    pub fn encode(&self, version: i16) -> Result<Bytes, ConsumerProtocolError> {
        const MESSAGE: &str = "assignment";
        if !(0..=LATEST_ASSIGNMENT_VERSION).contains(&version) {
            return Err(ConsumerProtocolError::UnsupportedVersion { message: MESSAGE, version });
        }
        let mut w = Writer::new(MESSAGE);
        w.buf.put_i16(version);
        w.topic_partitions("assigned_partitions", &self.assigned_partitions)?;
        w.bytes("user_data", self.user_data.as_deref())?;
        Ok(w.buf.freeze())
    }

    /// Reads an assignment written at any version; `user_data` shares `bytes`.
    ///
    /// An empty input is not an assignment; the caller decides what an empty SyncGroup
    /// assignment means (Java's coordinator treats it as "rejoin").
    ///
    /// # Errors
    /// A negative version, truncated input, a non-nullable field with a negative length,
    /// or a string that is not UTF-8.
    pub fn decode(bytes: &Bytes) -> Result<Assignment, ConsumerProtocolError> {
        let mut r = Reader::new(bytes, "assignment");
        r.version()?;
        let assigned_partitions = r.topic_partitions("assigned_partitions")?;
        let user_data = r.nullable_bytes("user_data")?;
        Ok(Assignment { assigned_partitions, user_data })
    }

    /// The assigned `(topic, partition)` pairs, in wire order.
    pub fn partitions(&self) -> Vec<(String, i32)> {
        TopicPartitions::flatten(&self.assigned_partitions)
    }
}

/// Writes the protocol's primitives, refusing lengths their prefix cannot hold.
struct Writer {
    message: &'static str,
    buf: BytesMut,
}

impl Writer {
    fn new(message: &'static str) -> Writer {
        Writer { message, buf: BytesMut::new() }
    }

    fn too_long(&self, field: &'static str, len: usize, max: usize) -> ConsumerProtocolError {
        ConsumerProtocolError::TooLong { message: self.message, field, len, max }
    }

    fn count(&mut self, field: &'static str, len: usize) -> Result<(), ConsumerProtocolError> {
        let count = i32::try_from(len).map_err(|_| self.too_long(field, len, i32::MAX as usize))?;
        self.buf.put_i32(count);
        Ok(())
    }

    fn string(
        &mut self,
        field: &'static str,
        s: Option<&str>,
    ) -> Result<(), ConsumerProtocolError> {
        let Some(s) = s else {
            self.buf.put_i16(-1);
            return Ok(());
        };
        let len =
            i16::try_from(s.len()).map_err(|_| self.too_long(field, s.len(), i16::MAX as usize))?;
        self.buf.put_i16(len);
        self.buf.put_slice(s.as_bytes());
        Ok(())
    }

    fn bytes(
        &mut self,
        field: &'static str,
        b: Option<&[u8]>,
    ) -> Result<(), ConsumerProtocolError> {
        match b {
            None => self.buf.put_i32(-1),
            Some(b) => {
                self.count(field, b.len())?;
                self.buf.put_slice(b);
            }
        }
        Ok(())
    }

    fn topic_partitions(
        &mut self,
        field: &'static str,
        groups: &[TopicPartitions],
    ) -> Result<(), ConsumerProtocolError> {
        self.count(field, groups.len())?;
        for group in groups {
            self.string(field, Some(&group.topic))?;
            self.count(field, group.partitions.len())?;
            for &p in &group.partitions {
                self.buf.put_i32(p);
            }
        }
        Ok(())
    }
}

/// Reads the protocol's primitives from a shared buffer, bounds-checked.
struct Reader<'a> {
    message: &'static str,
    bytes: &'a Bytes,
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a Bytes, message: &'static str) -> Reader<'a> {
        Reader { message, bytes, pos: 0 }
    }

    fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    /// Fails unless `needed` bytes remain; `at` is where the field began.
    fn need(
        &self,
        field: &'static str,
        at: usize,
        needed: u64,
    ) -> Result<(), ConsumerProtocolError> {
        if needed > self.remaining() as u64 {
            return Err(ConsumerProtocolError::Truncated {
                message: self.message,
                field,
                offset: at,
                needed,
                remaining: self.remaining(),
            });
        }
        Ok(())
    }

    fn take(
        &mut self,
        field: &'static str,
        at: usize,
        n: usize,
    ) -> Result<&'a [u8], ConsumerProtocolError> {
        self.need(field, at, n as u64)?;
        let bytes: &'a [u8] = self.bytes;
        let out = &bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    fn i16(&mut self, field: &'static str) -> Result<i16, ConsumerProtocolError> {
        let b = self.take(field, self.pos, 2)?;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    }

    fn i32(&mut self, field: &'static str) -> Result<i32, ConsumerProtocolError> {
        let b = self.take(field, self.pos, 4)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn version(&mut self) -> Result<i16, ConsumerProtocolError> {
        let version = self.i16("version")?;
        if version < 0 {
            return Err(ConsumerProtocolError::UnsupportedVersion {
                message: self.message,
                version,
            });
        }
        Ok(version)
    }

    /// An array count, checked against the bytes left at `min_element` bytes an element,
    /// so that the caller may allocate `count` elements.
    fn count(
        &mut self,
        field: &'static str,
        min_element: u64,
    ) -> Result<usize, ConsumerProtocolError> {
        let at = self.pos;
        let count = self.i32(field)?;
        let count = u32::try_from(count).map_err(|_| ConsumerProtocolError::NegativeLength {
            message: self.message,
            field,
            offset: at,
            length: count,
        })?;
        self.need(field, at, u64::from(count) * min_element)?;
        Ok(count as usize)
    }

    fn str_bytes(
        &mut self,
        field: &'static str,
        at: usize,
        len: usize,
    ) -> Result<String, ConsumerProtocolError> {
        let start = self.pos;
        let raw = self.take(field, at, len)?;
        match std::str::from_utf8(raw) {
            Ok(s) => Ok(s.to_owned()),
            Err(_) => Err(ConsumerProtocolError::InvalidUtf8 {
                message: self.message,
                field,
                offset: start,
            }),
        }
    }

    fn string(&mut self, field: &'static str) -> Result<String, ConsumerProtocolError> {
        let at = self.pos;
        let len = self.i16(field)?;
        let len = u16::try_from(len).map_err(|_| ConsumerProtocolError::NegativeLength {
            message: self.message,
            field,
            offset: at,
            length: i32::from(len),
        })?;
        self.str_bytes(field, at, usize::from(len))
    }

    fn nullable_string(
        &mut self,
        field: &'static str,
    ) -> Result<Option<String>, ConsumerProtocolError> {
        let at = self.pos;
        let len = self.i16(field)?;
        match u16::try_from(len) {
            Ok(len) => self.str_bytes(field, at, usize::from(len)).map(Some),
            Err(_) => Ok(None),
        }
    }

    fn nullable_bytes(
        &mut self,
        field: &'static str,
    ) -> Result<Option<Bytes>, ConsumerProtocolError> {
        let at = self.pos;
        let len = self.i32(field)?;
        let Ok(len) = usize::try_from(len) else {
            return Ok(None);
        };
        self.need(field, at, len as u64)?;
        let out = self.bytes.slice(self.pos..self.pos + len);
        self.pos += len;
        Ok(Some(out))
    }

    fn strings(&mut self, field: &'static str) -> Result<Vec<String>, ConsumerProtocolError> {
        // An element is at least its i16 length.
        let count = self.count(field, 2)?;
        let mut out = Vec::with_capacity(count);
        for _ in 0..count {
            out.push(self.string(field)?);
        }
        Ok(out)
    }

    fn topic_partitions(
        &mut self,
        field: &'static str,
    ) -> Result<Vec<TopicPartitions>, ConsumerProtocolError> {
        // An element is at least a topic's i16 length and a partition count's i32.
        let count = self.count(field, 6)?;
        let mut out = Vec::with_capacity(count);
        for _ in 0..count {
            let topic = self.string(field)?;
            let n = self.count(field, 4)?;
            let mut partitions = Vec::with_capacity(n);
            for _ in 0..n {
                partitions.push(self.i32(field)?);
            }
            out.push(TopicPartitions { topic, partitions });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests;
