//! The FetchResponse encoder that leaves record bytes in the segment files.
//!
//! ```text
//! v4–v11:  throttle_time_ms i32 · [error_code i16 · session_id i32]v7+ · topics: [
//!            topic string · partitions: [ partition_index i32 · error_code i16 ·
//!            high_watermark i64 · last_stable_offset i64 · [log_start_offset i64]v5+ ·
//!            aborted_transactions nullable array · [preferred_read_replica i32]v11+ ·
//!            records: i32 length + bytes ] ]
//! v12+:    the same with compact arrays and strings (unsigned varint N+1), records as
//!          unsigned varint length+1, an empty tagged-field section after each
//!          partition, topic and the body; v13+ names the topic by a 16-byte id.
//! ```

use bytes::{BufMut, Bytes, BytesMut};
use sluice_protocol::error_code::ErrorCode;
use sluice_protocol::header::{RequestHeader, ResponseHeader};
use uuid::Uuid;

use crate::api::{Part, Reply};
use crate::storage::{AbortedTxn, FileSlice};

/// One partition of the response.
#[derive(Debug)]
pub struct PartitionReply {
    /// Partition index.
    pub index: i32,
    /// Error for this partition.
    pub error: ErrorCode,
    /// High watermark.
    pub high_watermark: i64,
    /// Last stable offset: below it every transaction has ended.
    pub last_stable_offset: i64,
    /// Log start offset.
    pub log_start_offset: i64,
    /// For read_committed: the aborted transactions that overlap `records`, as (producer
    /// id, first offset); `None` (sent as null) for read_uncommitted.
    pub aborted: Option<Vec<AbortedTxn>>,
    /// Record bytes, whole batches; `None` sends an empty record set.
    pub records: Option<RecordSet>,
}

/// A partition's record bytes: left in the segment file for sendfile(2), or read into
/// memory (small sets, and those past a response's share of open files).
#[derive(Debug, Clone)]
pub enum RecordSet {
    /// Sent from the file; holds the segment's descriptor until it is sent.
    File(FileSlice),
    /// Read already.
    Memory(Bytes),
}

impl RecordSet {
    /// Length in bytes.
    pub fn len(&self) -> u64 {
        match self {
            RecordSet::File(f) => f.len,
            RecordSet::Memory(b) => b.len() as u64,
        }
    }

    /// Whether it holds no bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl PartitionReply {
    /// A reply with no data and unknown offsets.
    pub fn empty(index: i32, error: ErrorCode) -> Self {
        PartitionReply {
            index,
            error,
            high_watermark: -1,
            last_stable_offset: -1,
            log_start_offset: -1,
            aborted: None,
            records: None,
        }
    }
}

/// One topic of the response.
#[derive(Debug)]
pub struct TopicReply {
    /// Topic name (v0–v12).
    pub name: String,
    /// Topic id (v13+).
    pub id: Uuid,
    /// Partitions, in request order.
    pub partitions: Vec<PartitionReply>,
}

struct Writer {
    flexible: bool,
    parts: Vec<Part>,
    buf: BytesMut,
}

impl Writer {
    fn array_len(&mut self, n: usize) {
        if self.flexible {
            put_uvarint(&mut self.buf, n as u64 + 1);
        } else {
            self.buf.put_i32(n as i32);
        }
    }
    fn string(&mut self, s: &str) {
        if self.flexible {
            put_uvarint(&mut self.buf, s.len() as u64 + 1);
        } else {
            self.buf.put_i16(s.len() as i16);
        }
        self.buf.put_slice(s.as_bytes());
    }
    fn tagged_fields(&mut self) {
        if self.flexible {
            self.buf.put_u8(0);
        }
    }
    fn records(&mut self, records: Option<RecordSet>) {
        let len = records.as_ref().map_or(0, RecordSet::len);
        if self.flexible {
            put_uvarint(&mut self.buf, len + 1);
        } else {
            self.buf.put_i32(len as i32);
        }
        match records.filter(|r| !r.is_empty()) {
            Some(RecordSet::File(slice)) => {
                let head = self.buf.split();
                self.parts.push(Part::Bytes(head.freeze()));
                self.parts.push(Part::File(slice));
            }
            Some(RecordSet::Memory(bytes)) => self.buf.put_slice(&bytes),
            None => {}
        }
    }
}

fn put_uvarint(buf: &mut BytesMut, mut v: u64) {
    while v >= 0x80 {
        buf.put_u8((v as u8) | 0x80);
        v >>= 7;
    }
    buf.put_u8(v as u8);
}

/// Encodes the whole response frame (size prefix, header, body) for `header`'s version.
pub fn encode(header: &RequestHeader, topics: &[TopicReply]) -> Reply {
    let version = header.api_version;
    let mut w =
        Writer { flexible: version >= 12, parts: Vec::new(), buf: BytesMut::with_capacity(256) };
    w.buf.put_i32(0); // size, patched below
    ResponseHeader::for_request(header)
        .encode(&mut w.buf)
        .expect("invariant: a response header always encodes");
    w.buf.put_i32(0); // throttle_time_ms
    if version >= 7 {
        w.buf.put_i16(ErrorCode::NONE.code());
        w.buf.put_i32(0); // session_id: no session
    }
    w.array_len(topics.len());
    for t in topics {
        if version >= 13 {
            w.buf.put_slice(t.id.as_bytes());
        } else {
            w.string(&t.name);
        }
        w.array_len(t.partitions.len());
        for p in &t.partitions {
            w.buf.put_i32(p.index);
            w.buf.put_i16(p.error.code());
            w.buf.put_i64(p.high_watermark);
            w.buf.put_i64(p.last_stable_offset);
            if version >= 5 {
                w.buf.put_i64(p.log_start_offset);
            }
            match &p.aborted {
                Some(aborted) => {
                    w.array_len(aborted.len());
                    for a in aborted {
                        w.buf.put_i64(a.producer_id);
                        w.buf.put_i64(a.first_offset);
                        w.tagged_fields();
                    }
                }
                None if w.flexible => w.buf.put_u8(0),
                None => w.buf.put_i32(-1),
            }
            if version >= 11 {
                w.buf.put_i32(-1); // preferred_read_replica
            }
            w.records(p.records.clone());
            w.tagged_fields();
        }
        w.tagged_fields();
    }
    w.tagged_fields();
    let tail = w.buf.split();
    w.parts.push(Part::Bytes(tail.freeze()));
    let mut reply = Reply { parts: w.parts };
    let size = (reply.len() - 4) as i32;
    if let Some(Part::Bytes(first)) = reply.parts.first_mut() {
        let mut patched = BytesMut::from(&first[..]);
        patched[..4].copy_from_slice(&size.to_be_bytes());
        *first = patched.freeze();
    }
    reply
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{LogConfig, PartitionLog};
    use bytes::Bytes;
    use kafka_protocol::messages::{ApiKey, FetchResponse};
    use kafka_protocol::protocol::Decodable;
    use sluice_protocol::record::RecordBatch;

    /// Flattens a reply into bytes, reading file slices with pread.
    fn flatten(reply: &Reply) -> Vec<u8> {
        let mut out = Vec::new();
        for p in &reply.parts {
            match p {
                Part::Bytes(b) => out.extend_from_slice(b),
                Part::File(f) => out.extend(f.read_to_vec().unwrap()),
            }
        }
        out
    }

    #[test]
    fn kafka_protocol_decodes_every_version_of_the_hand_encoding() {
        let dir = tempfile::tempdir().unwrap();
        let log = PartitionLog::open(dir.path(), LogConfig::default()).unwrap();
        log.append(&crate::storage::testing::batch(0, 3, 100)).unwrap();
        log.append(&crate::storage::testing::batch(0, 2, 50)).unwrap();
        let slice = log.read(0, 1 << 20).unwrap().slice.unwrap();
        let expected = slice.read_to_vec().unwrap();
        let id = Uuid::from_u128(0x1234_5678_9abc_def0_1122_3344_5566_7788);
        let sets = [RecordSet::File(slice.clone()), RecordSet::Memory(expected.clone().into())];
        for (version, records) in (4..=17).flat_map(|v| sets.iter().map(move |s| (v, s))) {
            let header = RequestHeader::new(ApiKey::Fetch, version, 77, None);
            let topics = vec![TopicReply {
                name: "orders".into(),
                id,
                partitions: vec![
                    PartitionReply {
                        index: 0,
                        error: ErrorCode::NONE,
                        high_watermark: 5,
                        last_stable_offset: 4,
                        log_start_offset: 0,
                        aborted: Some(vec![AbortedTxn {
                            producer_id: 9,
                            first_offset: 1,
                            last_offset: 3,
                            last_stable_offset: 4,
                        }]),
                        records: Some(records.clone()),
                    },
                    PartitionReply::empty(1, ErrorCode::OFFSET_OUT_OF_RANGE),
                ],
            }];
            let reply = encode(&header, &topics);
            let frame = flatten(&reply);
            assert_eq!(
                i32::from_be_bytes(frame[..4].try_into().unwrap()) as usize,
                frame.len() - 4
            );
            let mut body = Bytes::from(frame[4..].to_vec());
            let rh = ResponseHeader::decode(
                body.clone(),
                ResponseHeader::for_request(&header).header_version,
            )
            .unwrap();
            assert_eq!(rh.0.correlation_id, 77);
            body = rh.1;
            let decoded = FetchResponse::decode(&mut body, version)
                .unwrap_or_else(|e| panic!("v{version}: {e}"));
            assert!(body.is_empty(), "v{version}: {} bytes left over", body.len());
            let t = &decoded.responses[0];
            if version >= 13 {
                assert_eq!(t.topic_id, id);
            } else {
                assert_eq!(t.topic.0.as_str(), "orders");
            }
            let p0 = &t.partitions[0];
            assert_eq!((p0.partition_index, p0.error_code, p0.high_watermark), (0, 0, 5));
            assert_eq!(p0.last_stable_offset, 4);
            let aborted = p0.aborted_transactions.as_ref().expect("read_committed: a list");
            assert_eq!((aborted[0].producer_id.0, aborted[0].first_offset), (9, 1), "v{version}");
            assert!(t.partitions[1].aborted_transactions.is_none(), "v{version}: null");
            let records = p0.records.as_ref().unwrap();
            assert_eq!(&records[..], &expected[..], "v{version}");
            assert_eq!(RecordBatch::parse_verified(records).unwrap().records_count(), 3);
            let p1 = &t.partitions[1];
            assert_eq!(p1.error_code, ErrorCode::OFFSET_OUT_OF_RANGE.code());
            assert_eq!(p1.records.as_ref().map(|r| r.len()), Some(0));
        }
    }
}
