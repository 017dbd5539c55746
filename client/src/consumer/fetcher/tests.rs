use bytes::Bytes;
use sluice_protocol::kafka_protocol::messages::fetch_response::{
    AbortedTransaction, FetchableTopicResponse, PartitionData,
};
use sluice_protocol::kafka_protocol::messages::ProducerId;
use sluice_protocol::record::batch::{set_base_offset, update_crc};
use sluice_protocol::record::compression::Compression;
use sluice_protocol::record::BatchBuilder;

use super::*;
use crate::config::ClientConfig;

fn txn(base: i64, producer: i64, values: &[&str], codec: Compression) -> Vec<u8> {
    let mut b = BatchBuilder::new(codec).producer(producer, 0, base as i32).transactional(true);
    for v in values {
        b.append(0, None, Some(v.as_bytes()), &[]).unwrap();
    }
    let mut bytes = b.build().unwrap();
    set_base_offset(&mut bytes, base);
    bytes
}

fn marker(offset: i64, producer: i64, commit: bool) -> Vec<u8> {
    let mut b = BatchBuilder::new(Compression::None).producer(producer, 0, -1).transactional(true);
    b.append(0, Some(&[0, 0, 0, u8::from(commit)]), Some(&[0; 6]), &[]).unwrap();
    let mut bytes = b.build().unwrap();
    set_base_offset(&mut bytes, offset);
    bytes[22] |= 0x20;
    update_crc(&mut bytes);
    bytes
}

/// Applies one fetch answer of partition t-0 from offset 0 and takes every record.
fn fetch(isolation: &str, set: Bytes, aborted: &[(i64, i64)]) -> (Vec<String>, i64) {
    let config = ConsumerConfig::new(
        &ClientConfig::new()
            .with("bootstrap.servers", "127.0.0.1:9092")
            .with("isolation.level", isolation),
    )
    .unwrap();
    let tp = TopicPartition::new("t", 0);
    let mut partitions = BTreeMap::new();
    let mut state = PartitionState::new();
    state.seek(0);
    state.in_flight = true;
    partitions.insert(tp.clone(), state);
    let plan = FetchPlan { node: 0, partitions: vec![(tp.clone(), 0, 1)], ids: HashMap::new() };
    let aborted = aborted
        .iter()
        .map(|&(p, f)| {
            AbortedTransaction::default().with_producer_id(ProducerId(p)).with_first_offset(f)
        })
        .collect();
    let response = FetchResponse::default().with_responses(vec![FetchableTopicResponse::default()
        .with_topic(TopicName(StrBytes::from_static_str("t")))
        .with_partitions(vec![PartitionData::default()
            .with_partition_index(0)
            .with_high_watermark(100)
            .with_last_stable_offset(100)
            .with_aborted_transactions(Some(aborted))
            .with_records(Some(set))])]);
    let inflated = inflate(&response);
    apply(&mut partitions, plan, Ok(response), inflated, &config, false);
    let records = take(&mut partitions, usize::MAX, 0);
    let values = records.iter().map(|r| r.value_str().unwrap().to_string()).collect();
    (values, partitions[&tp].position.unwrap())
}

#[test]
fn read_committed_uses_the_responses_aborted_transactions_and_moves_past_them() {
    let mut set = txn(0, 1, &["a1", "a2"], Compression::Lz4);
    set.extend(txn(2, 2, &["c1", "c2"], Compression::Zstd));
    set.extend(marker(4, 1, false));
    set.extend(marker(5, 2, true));
    set.extend(txn(6, 1, &["a3"], Compression::None));
    set.extend(marker(7, 1, false));
    let set = Bytes::from(set);
    let (values, position) = fetch("read_committed", set.clone(), &[(1, 0), (1, 6)]);
    assert_eq!(values, ["c1", "c2"]);
    assert_eq!(position, 8, "past the trailing aborted batch and marker");
    let (values, position) = fetch("read_uncommitted", set, &[(1, 0), (1, 6)]);
    assert_eq!(values, ["a1", "a2", "c1", "c2", "a3"], "read_uncommitted ignores the list");
    assert_eq!(position, 8);
}
