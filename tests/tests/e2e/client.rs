//! Small request builders over the raw client, shared by the tests.

use bytes::Bytes;
use kafka_protocol::messages::delete_records_request::{
    DeleteRecordsPartition, DeleteRecordsTopic,
};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    CreateTopicsRequest, DeleteRecordsRequest, FetchRequest, FetchResponse, MetadataRequest,
    ProduceRequest, ProduceResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use sluice_protocol::messages::{Request, Response};
use sluice_protocol::record::{BatchBuilder, Compression, RecordBatch};
use sluice_tests::RawClient;

pub fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_owned()))
}

/// A batch of `n` records with values `prefix-i`.
pub fn batch(prefix: &str, n: usize, compression: Compression) -> Bytes {
    let mut b = BatchBuilder::new(compression);
    for i in 0..n {
        let key = format!("k{i}");
        let value = format!("{prefix}-{i}");
        b.append(1_700_000_000_000 + i as i64, Some(key.as_bytes()), Some(value.as_bytes()), &[])
            .unwrap();
    }
    Bytes::from(b.build().unwrap())
}

/// Makes sure a topic exists (Metadata auto-creation).
pub fn ensure_topic(c: &mut RawClient, topic: &str) {
    let mut m = MetadataRequest::default();
    let mut t = kafka_protocol::messages::metadata_request::MetadataRequestTopic::default();
    t.name = Some(name(topic));
    m.topics = Some(vec![t]);
    m.allow_auto_topic_creation = true;
    let Response::Metadata(r) = c.call(12, Request::Metadata(m)) else { panic!("metadata") };
    assert_eq!(r.topics[0].error_code, 0, "topic {topic} available");
}

/// Creates a topic with CreateTopics... when the API is served; falls back to Metadata.
#[allow(dead_code)]
pub fn create_request(topic: &str, partitions: i32) -> CreateTopicsRequest {
    let mut r = CreateTopicsRequest::default();
    let mut t = kafka_protocol::messages::create_topics_request::CreatableTopic::default();
    t.name = name(topic);
    t.num_partitions = partitions;
    t.replication_factor = 1;
    r.topics = vec![t];
    r.timeout_ms = 10_000;
    r
}

/// Produces one record set to partition 0; returns (error code, base offset).
pub fn produce(c: &mut RawClient, topic: &str, records: Bytes, acks: i16) -> (i16, i64) {
    let req = produce_request(topic, 0, records, acks);
    let Response::Produce(r) = c.call(9, Request::Produce(req)) else { panic!("produce") };
    let p = &r.responses[0].partition_responses[0];
    (p.error_code, p.base_offset)
}

/// A request producing one record set to one partition.
pub fn produce_request(topic: &str, partition: i32, records: Bytes, acks: i16) -> ProduceRequest {
    let mut p = PartitionProduceData::default();
    p.index = partition;
    p.records = Some(records);
    let mut t = TopicProduceData::default();
    t.name = name(topic);
    t.partition_data = vec![p];
    let mut req = ProduceRequest::default();
    req.acks = acks;
    req.timeout_ms = 10_000;
    req.topic_data = vec![t];
    req
}

/// The produce response, for tests that look at more than one partition.
#[allow(dead_code)]
pub fn produce_response(c: &mut RawClient, version: i16, req: ProduceRequest) -> ProduceResponse {
    let Response::Produce(r) = c.call(version, Request::Produce(req)) else { panic!("produce") };
    r
}

/// A Fetch request (v12) for partition 0 of `topic`.
pub fn fetch_request(topic: &str, offset: i64, max_wait_ms: i32, min_bytes: i32) -> FetchRequest {
    let mut p = FetchPartition::default();
    p.partition = 0;
    p.fetch_offset = offset;
    p.partition_max_bytes = 1 << 20;
    let mut t = FetchTopic::default();
    t.topic = name(topic);
    t.partitions = vec![p];
    let mut f = FetchRequest::default();
    f.max_wait_ms = max_wait_ms;
    f.min_bytes = min_bytes;
    f.max_bytes = 50 << 20;
    f.topics = vec![t];
    f
}

/// Fetches partition 0 from `offset` and returns (error, high watermark, records).
pub fn fetch(c: &mut RawClient, topic: &str, offset: i64) -> (i16, i64, Bytes) {
    let Response::Fetch(r) = c.call(12, Request::Fetch(fetch_request(topic, offset, 0, 0))) else {
        panic!("fetch")
    };
    split(&r)
}

pub fn split(r: &FetchResponse) -> (i16, i64, Bytes) {
    let p = &r.responses[0].partitions[0];
    (p.error_code, p.high_watermark, p.records.clone().unwrap_or_default())
}

/// Every (offset, value) in a fetched record set.
pub fn values(records: &[u8]) -> Vec<(i64, String)> {
    let mut out = vec![];
    let mut pos = 0;
    while pos < records.len() {
        let b = RecordBatch::parse_verified(&records[pos..]).unwrap();
        let rs = b.records(1 << 26).unwrap();
        for r in &rs {
            let r = r.unwrap();
            out.push((rs.offset(&r), String::from_utf8(r.value().unwrap().to_vec()).unwrap()));
        }
        pos += b.size();
    }
    out
}

/// Reads the whole partition 0 from offset 0.
pub fn fetch_all(c: &mut RawClient, topic: &str) -> Vec<(i64, String)> {
    let mut out = vec![];
    loop {
        let (err, hw, records) =
            fetch(c, topic, out.last().map_or(0, |(o, _): &(i64, String)| o + 1));
        assert_eq!(err, 0);
        out.extend(values(&records));
        if out.last().map_or(0, |(o, _)| o + 1) >= hw {
            return out;
        }
    }
}

/// DeleteRecords on partition 0; returns (error code, low watermark).
pub fn delete_records(c: &mut RawClient, topic: &str, offset: i64) -> (i16, i64) {
    let mut p = DeleteRecordsPartition::default();
    p.partition_index = 0;
    p.offset = offset;
    let mut t = DeleteRecordsTopic::default();
    t.name = name(topic);
    t.partitions = vec![p];
    let mut r = DeleteRecordsRequest::default();
    r.topics = vec![t];
    r.timeout_ms = 10_000;
    let Response::DeleteRecords(r) = c.call(2, Request::DeleteRecords(r)) else {
        panic!("delete records")
    };
    let p = &r.topics[0].partitions[0];
    (p.error_code, p.low_watermark)
}
