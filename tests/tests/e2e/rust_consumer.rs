//! sluice-client's consumer against the real broker: records written by the Rust
//! producer, confluent-kafka and kafka-python read back byte for byte (and the Rust
//! producer's records read by those clients), and positions, seeks, pauses, commits,
//! offset lookups and lag as Kafka's consumer has them.

use std::time::{Duration, Instant};

use sluice_client::consumer::{Consumer, ConsumerRecord, OffsetAndMetadata};
use sluice_client::producer::{Producer, ProducerRecord};
use sluice_client::{ClientError, TopicPartition};
use sluice_tests::{BrokerProcess, RawClient};

use crate::client::ensure_topic;
use crate::interop::python_with_args;
use crate::rust_producer::{config, expected, record, runtime};

const CODECS: [&str; 5] = ["none", "gzip", "snappy", "lz4", "zstd"];

/// Polls until `n` records arrived (or 30 s passed).
async fn poll_n(consumer: &mut Consumer, n: usize) -> Vec<ConsumerRecord> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut out = Vec::new();
    while out.len() < n && Instant::now() < deadline {
        out.extend(consumer.poll(Duration::from_millis(500)).await.unwrap());
    }
    out
}

/// Checks the shape of `rust_producer::record`; `null_header`: the writer could write
/// the header with a null value (kafka-python's producer cannot).
fn check_shape(records: &[ConsumerRecord], what: &str, null_header: bool) {
    for (i, r) in records.iter().enumerate() {
        let (key, value, headers) = expected(i);
        assert_eq!(r.offset, i as i64, "{what}: offset");
        assert_eq!(r.key.as_deref(), key.as_deref(), "{what}: key of {i}");
        assert_eq!(r.value.as_deref(), value.as_deref(), "{what}: value of {i}");
        assert_eq!(r.timestamp, 1_700_000_000_000 + i as i64, "{what}: timestamp of {i}");
        let mut want: Vec<(&[u8], Option<Vec<u8>>)> = Vec::new();
        if headers > 0 {
            want.push((b"h1", Some(format!("hv-{i}").into_bytes())));
            if null_header {
                want.push((b"null", None));
            }
            want.push((b"", Some(vec![])));
        }
        let got: Vec<(&[u8], Option<Vec<u8>>)> =
            r.headers.iter().map(|(k, v)| (&k[..], v.as_ref().map(|v| v.to_vec()))).collect();
        assert_eq!(got, want, "{what}: headers of {i}");
    }
}

#[test]
fn records_cross_between_the_rust_client_and_confluent_and_kafka_python_both_ways() {
    const N: usize = 300;
    let broker = BrokerProcess::start(&[]);
    let mut raw = RawClient::connect(broker.addr);
    let rt = runtime();
    let _enter = rt.enter();
    for library in ["confluent", "kafka-python"] {
        for codec in CODECS {
            // Rust writes, the other client reads.
            let topic = format!("to-{library}-{codec}");
            ensure_topic(&mut raw, &topic);
            let producer = Producer::new(&config(&broker, &[("compression.type", codec)])).unwrap();
            rt.block_on(async {
                for i in 0..N {
                    drop(producer.send(record(&topic, i)).await.unwrap());
                }
                producer.close(Duration::from_secs(10)).await.unwrap();
            });
            python_with_args(
                "rust_client_interop.py",
                &broker,
                &["consume", library, &topic, codec, &N.to_string()],
            );
            // The other client writes, Rust reads.
            let topic = format!("from-{library}-{codec}");
            ensure_topic(&mut raw, &topic);
            python_with_args(
                "rust_client_interop.py",
                &broker,
                &["produce", library, &topic, codec, &N.to_string()],
            );
            let mut consumer = sluice_client::consumer::Consumer::new(&config(
                &broker,
                &[("auto.offset.reset", "earliest")],
            ))
            .unwrap();
            consumer.assign([TopicPartition::new(topic.as_str(), 0)]);
            let records = rt.block_on(poll_n(&mut consumer, N));
            assert_eq!(records.len(), N, "{library} {codec}");
            check_shape(&records, &format!("{library} {codec}"), library != "kafka-python");
        }
    }
}

#[test]
fn positions_seeks_pauses_and_lag_follow_kafka() {
    let broker = BrokerProcess::start(&[]);
    let rt = runtime();
    let _enter = rt.enter();
    let producer = Producer::new(&config(&broker, &[])).unwrap();
    let (a, b) = (TopicPartition::new("pos", 0), TopicPartition::new("pos", 1));
    let mut raw = RawClient::connect(broker.addr);
    raw.call(
        7,
        sluice_protocol::messages::Request::CreateTopics(crate::client::create_request("pos", 2)),
    );
    rt.block_on(async {
        for i in 0..1000i64 {
            let r = ProducerRecord::new("pos", format!("{i}"))
                .partition((i % 2) as i32)
                .timestamp(1_000_000 + i);
            drop(producer.send(r).await.unwrap());
        }
        producer.flush().await;
    });
    let mut consumer = Consumer::new(&config(&broker, &[("max.poll.records", "100")])).unwrap();
    consumer.assign([a.clone(), b.clone()]);
    rt.block_on(async {
        // auto.offset.reset=latest (the default): at the end, nothing to read.
        assert_eq!(consumer.position(&a).await.unwrap(), 500);
        assert!(consumer.poll(Duration::from_millis(1200)).await.unwrap().is_empty());
        assert_eq!(consumer.lag(&a), Some(0));
        consumer.seek(&a, 10).unwrap();
        consumer.seek_to_beginning(std::slice::from_ref(&b)).unwrap();
        let first = consumer.poll(Duration::from_secs(5)).await.unwrap();
        assert!(
            !first.is_empty() && first.len() <= 100,
            "max.poll.records bounds a poll: {}",
            first.len()
        );
        let mut seen = first;
        while seen.len() < 990 {
            seen.extend(consumer.poll(Duration::from_secs(5)).await.unwrap());
        }
        assert_eq!(seen.len(), 990);
        let from_a: Vec<i64> = seen.iter().filter(|r| r.partition == 0).map(|r| r.offset).collect();
        assert_eq!(from_a, (10..500).collect::<Vec<_>>(), "in order from the seek");
        assert_eq!(consumer.position(&b).await.unwrap(), 500);
        // Pause one partition: only the other yields.
        consumer.pause(std::slice::from_ref(&a));
        assert_eq!(consumer.paused(), vec![a.clone()]);
        for i in 0..10i64 {
            drop(
                producer
                    .send(ProducerRecord::new("pos", format!("late-{i}")).partition((i % 2) as i32))
                    .await
                    .unwrap(),
            );
        }
        producer.flush().await;
        let got = poll_until(&mut consumer, 5).await;
        assert!(got.iter().all(|r| r.partition == 1), "a paused partition is not fetched");
        consumer.resume(std::slice::from_ref(&a));
        let got = poll_until(&mut consumer, 5).await;
        assert!(got.iter().all(|r| r.partition == 0));
        // offsets_for_times and the log's edges.
        let times = consumer
            .offsets_for_times(&[(a.clone(), 1_000_100), (b.clone(), 9_999_999_999_999)])
            .await
            .unwrap();
        assert_eq!(
            times[&a].map(|o| o.offset),
            Some(50),
            "timestamp 1_000_100 is record 100, offset 50 of p0"
        );
        assert_eq!(times[&b], None);
        assert_eq!(consumer.end_offsets(std::slice::from_ref(&a)).await.unwrap()[&a], 505);
        assert_eq!(consumer.beginning_offsets(std::slice::from_ref(&a)).await.unwrap()[&a], 0);
        consumer.seek_to_end(std::slice::from_ref(&a)).unwrap();
        assert_eq!(consumer.position(&a).await.unwrap(), 505);
        producer.close(Duration::from_secs(5)).await.unwrap();
    });
}

async fn poll_until(consumer: &mut Consumer, n: usize) -> Vec<ConsumerRecord> {
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(3);
    while out.len() < n && Instant::now() < deadline {
        out.extend(consumer.poll(Duration::from_millis(200)).await.unwrap());
    }
    out
}

#[test]
fn commits_resume_exactly_where_they_left_off_with_their_metadata() {
    let broker = BrokerProcess::start(&[]);
    let rt = runtime();
    let _enter = rt.enter();
    let tp = TopicPartition::new("commits", 0);
    let producer = Producer::new(&config(&broker, &[])).unwrap();
    rt.block_on(async {
        for i in 0..100 {
            drop(
                producer
                    .send(ProducerRecord::new("commits", format!("{i}")).partition(0))
                    .await
                    .unwrap(),
            );
        }
        producer.close(Duration::from_secs(5)).await.unwrap();
    });
    let props = [
        ("group.id", "g-commits"),
        ("auto.offset.reset", "earliest"),
        ("enable.auto.commit", "false"),
    ];
    let mut consumer = Consumer::new(&config(&broker, &props)).unwrap();
    consumer.assign([tp.clone()]);
    rt.block_on(async {
        assert!(consumer.committed(std::slice::from_ref(&tp)).await.unwrap().is_empty());
        let got = poll_n(&mut consumer, 100).await;
        assert_eq!(got.len(), 100);
        consumer.seek(&tp, 40).unwrap();
        consumer.commit().await.unwrap();
        let committed = consumer.committed(std::slice::from_ref(&tp)).await.unwrap();
        assert_eq!(committed[&tp].offset, 40);
        let with_meta = OffsetAndMetadata::new(60).with_metadata("checkpoint-7");
        consumer.commit_offsets(&[(tp.clone(), with_meta)]).await.unwrap();
        let c = consumer.committed(std::slice::from_ref(&tp)).await.unwrap();
        assert_eq!((c[&tp].offset, c[&tp].metadata.as_str()), (60, "checkpoint-7"));
        consumer.close().await.unwrap();
    });
    // A new consumer in the group starts at the commit, not at auto.offset.reset.
    let mut again = Consumer::new(&config(&broker, &props)).unwrap();
    again.assign([tp.clone()]);
    rt.block_on(async {
        let got = poll_n(&mut again, 40).await;
        assert_eq!(got.first().map(|r| r.offset), Some(60));
        assert_eq!(got.len(), 40);
        // commit_async reports its outcome.
        again.commit_async().unwrap().await.unwrap().unwrap();
        assert_eq!(again.committed(std::slice::from_ref(&tp)).await.unwrap()[&tp].offset, 100);
    });
}

#[test]
fn auto_offset_reset_none_is_an_error_the_application_sees() {
    let broker = BrokerProcess::start(&[]);
    let mut raw = RawClient::connect(broker.addr);
    ensure_topic(&mut raw, "no-reset");
    let rt = runtime();
    let _enter = rt.enter();
    let mut consumer =
        Consumer::new(&config(&broker, &[("group.id", "g-none"), ("auto.offset.reset", "none")]))
            .unwrap();
    consumer.assign([TopicPartition::new("no-reset", 0)]);
    let err = rt.block_on(consumer.poll(Duration::from_secs(2))).unwrap_err();
    assert!(matches!(err, ClientError::NoOffsetForPartition { .. }), "{err}");
    // Out of range with none: the fetch error reaches poll.
    let mut consumer = Consumer::new(&config(&broker, &[("auto.offset.reset", "none")])).unwrap();
    let tp = TopicPartition::new("no-reset", 0);
    consumer.assign([tp.clone()]);
    consumer.seek(&tp, 1_000).unwrap();
    let err = rt.block_on(async {
        loop {
            match consumer.poll(Duration::from_secs(2)).await {
                Ok(r) => assert!(r.is_empty()),
                Err(e) => return e,
            }
        }
    });
    assert_eq!(
        err.code(),
        Some(sluice_protocol::error_code::ErrorCode::OFFSET_OUT_OF_RANGE),
        "{err}"
    );
}
