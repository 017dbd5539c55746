//! Batch passthrough, the mirror's path: batches fetched whole from one broker and
//! produced whole to another keep their records, codecs and compressed bytes, one batch
//! for one batch, so source and target offsets match.

use std::time::Duration;

use sluice_client::consumer::Consumer;
use sluice_client::producer::Producer;
use sluice_client::TopicPartition;
use sluice_protocol::record::RecordBatch;
use sluice_tests::{BrokerProcess, RawClient};

use crate::client::{ensure_topic, fetch};
use crate::rust_producer::{config, read_all, record, runtime};

#[test]
fn fetched_batches_produced_as_they_are_keep_records_codecs_and_offsets() {
    let source = BrokerProcess::start(&[]);
    let target = BrokerProcess::start(&[]);
    let rt = runtime();
    let _enter = rt.enter();
    let mut src = RawClient::connect(source.addr);
    ensure_topic(&mut src, "pass");
    let mut dst = RawClient::connect(target.addr);
    ensure_topic(&mut dst, "pass");
    // Mixed codecs and an idempotent producer on the source.
    let mut n = 0;
    for codec in ["gzip", "none", "zstd", "lz4", "snappy"] {
        let p = Producer::new(&config(&source, &[("compression.type", codec), ("linger.ms", "1")]))
            .unwrap();
        rt.block_on(async {
            for _ in 0..400 {
                drop(p.send(record("pass", n)).await.unwrap());
                n += 1;
            }
            p.close(Duration::from_secs(5)).await.unwrap();
        });
    }
    let mut consumer =
        Consumer::new(&config(&source, &[("auto.offset.reset", "earliest")])).unwrap();
    let tp = TopicPartition::new("pass", 0);
    consumer.assign([tp.clone()]);
    let mirror = Producer::new(&config(&target, &[])).unwrap();
    let (copied, offsets) = rt.block_on(async {
        let mut copied = 0u32;
        let mut offsets = Vec::new();
        while copied < n as u32 {
            for b in consumer.poll_batches(Duration::from_secs(2)).await.unwrap() {
                assert!(!b.control);
                copied += b.records;
                let d =
                    mirror.send_batch(b.tp.topic.clone(), b.tp.partition, b.bytes).await.unwrap();
                offsets.push((b.base_offset, d));
            }
        }
        let mut acked = Vec::new();
        for (source_base, d) in offsets {
            acked.push((source_base, d.await.unwrap().offset));
        }
        mirror.close(Duration::from_secs(5)).await.unwrap();
        (copied, acked)
    });
    assert_eq!(copied, n as u32);
    assert!(offsets.iter().all(|(s, t)| s == t), "one batch for one batch: {:?}", &offsets[..3]);
    let (from, to) = (read_all(&mut src, "pass"), read_all(&mut dst, "pass"));
    assert_eq!(from.len(), to.len());
    for (a, b) in from.iter().zip(&to) {
        assert_eq!(
            (a.offset, a.timestamp, &a.key, &a.value, &a.headers),
            (b.offset, b.timestamp, &b.key, &b.value, &b.headers)
        );
    }
    let producers = |rs: &[crate::rust_producer::Stored]| {
        rs.iter().map(|r| r.producer_id).collect::<std::collections::BTreeSet<_>>().len()
    };
    assert_eq!(
        (producers(&from), producers(&to)),
        (5, 1),
        "the target batches are the mirror's producer's"
    );
    // Compressed bytes went across untouched: the first batches' record sections match.
    let (s, t) = (fetch(&mut src, "pass", 0).2, fetch(&mut dst, "pass", 0).2);
    let (s, t) = (RecordBatch::parse(&s).unwrap(), RecordBatch::parse(&t).unwrap());
    assert_eq!(s.compression_id(), 1, "gzip first");
    assert_eq!(s.records_section(), t.records_section(), "not recompressed");
}
