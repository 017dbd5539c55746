//! sluice-client's producer against the real broker: what it sends is stored byte for
//! byte (keys, values, headers, timestamps, null distinct from empty) under every codec,
//! offsets it reports match the log, acks 0/1/all, and its idempotence survives a
//! broker killed with SIGKILL and restarted.

use std::time::{Duration, Instant};

use bytes::Bytes;
use sluice_client::producer::{Producer, ProducerRecord};
use sluice_client::{ClientConfig, ClientError};
use sluice_protocol::record::RecordBatch;
use sluice_tests::{BrokerProcess, RawClient};

use crate::client::{ensure_topic, fetch};

/// A record as read back from the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub offset: i64,
    pub timestamp: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    pub producer_id: i64,
}

/// Every record of partition 0 of `topic`, decoded with all its fields.
pub fn read_all(c: &mut RawClient, topic: &str) -> Vec<Stored> {
    let mut out: Vec<Stored> = vec![];
    loop {
        let next = out.last().map_or(0, |r| r.offset + 1);
        let (err, hw, records) = fetch(c, topic, next);
        assert_eq!(err, 0);
        let mut pos = 0;
        while pos < records.len() {
            let Ok(b) = RecordBatch::parse_verified(&records[pos..]) else { break };
            let rs = b.records(1 << 26).unwrap();
            for r in &rs {
                let r = r.unwrap();
                if rs.offset(&r) < next {
                    continue;
                }
                out.push(Stored {
                    offset: rs.offset(&r),
                    timestamp: rs.timestamp(&r),
                    key: r.key().map(<[u8]>::to_vec),
                    value: r.value().map(<[u8]>::to_vec),
                    headers: r
                        .headers()
                        .map(|h| (h.key.to_vec(), h.value.map(<[u8]>::to_vec)))
                        .collect(),
                    producer_id: b.producer_id(),
                });
            }
            pos += b.size();
        }
        if out.last().map_or(0, |r| r.offset + 1) >= hw {
            return out;
        }
    }
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

pub fn config(broker: &BrokerProcess, extra: &[(&str, &str)]) -> ClientConfig {
    let mut c = ClientConfig::new().with("bootstrap.servers", broker.bootstrap());
    for (k, v) in extra {
        c.set(*k, *v);
    }
    c
}

/// The i-th test record: every shape of key, value and header the format allows.
pub fn record(topic: &str, i: usize) -> ProducerRecord {
    let mut r =
        ProducerRecord::new(topic, format!("value-{i}")).timestamp(1_700_000_000_000 + i as i64);
    // Every pairing of null and empty that all clients can write (kafka-python refuses
    // a record with both null).
    match i % 4 {
        0 => r = r.key(format!("key-{i}")),
        1 => r = r.key(Bytes::new()),
        2 => {
            r = r.key(format!("key-{i}"));
            r.value = None;
        }
        _ => r.value = Some(Bytes::new()),
    }
    if i.is_multiple_of(3) {
        r = r
            .header("h1", Some(Bytes::from(format!("hv-{i}"))))
            .header("null", None)
            .header("", Some(Bytes::new()));
    }
    r.partition(0)
}

pub fn expected(i: usize) -> (Option<Vec<u8>>, Option<Vec<u8>>, usize) {
    let key = match i % 4 {
        0 | 2 => Some(format!("key-{i}").into_bytes()),
        1 => Some(vec![]),
        _ => None,
    };
    let value = match i % 4 {
        2 => None,
        3 => Some(vec![]),
        _ => Some(format!("value-{i}").into_bytes()),
    };
    (key, value, if i.is_multiple_of(3) { 3 } else { 0 })
}

#[test]
fn every_codec_stores_records_byte_exact_at_the_offsets_reported() {
    let broker = BrokerProcess::start(&[]);
    let mut raw = RawClient::connect(broker.addr);
    let rt = runtime();
    let _enter = rt.enter();
    for codec in ["none", "gzip", "snappy", "lz4", "zstd"] {
        let topic = format!("rust-producer-{codec}");
        ensure_topic(&mut raw, &topic);
        const N: usize = 5_000;
        let producer =
            Producer::new(&config(&broker, &[("compression.type", codec), ("linger.ms", "2")]))
                .unwrap();
        let metadata = rt.block_on(async {
            let mut deliveries = Vec::with_capacity(N);
            for i in 0..N {
                deliveries.push(producer.send(record(&topic, i)).await.unwrap());
            }
            let mut out = Vec::with_capacity(N);
            for d in deliveries {
                out.push(d.await.unwrap());
            }
            producer.close(Duration::from_secs(10)).await.unwrap();
            out
        });
        let offsets: Vec<i64> = metadata.iter().map(|m| m.offset).collect();
        assert_eq!(offsets, (0..N as i64).collect::<Vec<_>>(), "{codec}: offsets in send order");
        let stored = read_all(&mut raw, &topic);
        assert_eq!(stored.len(), N, "{codec}");
        for (i, s) in stored.iter().enumerate() {
            let (key, value, headers) = expected(i);
            assert_eq!(
                (s.offset, &s.key, &s.value),
                (i as i64, &key, &value),
                "{codec} record {i}"
            );
            assert_eq!(s.timestamp, 1_700_000_000_000 + i as i64);
            assert_eq!(metadata[i].timestamp, s.timestamp);
            assert_eq!(s.headers.len(), headers);
            if headers > 0 {
                assert_eq!(s.headers[0], (b"h1".to_vec(), Some(format!("hv-{i}").into_bytes())));
                assert_eq!(s.headers[1], (b"null".to_vec(), None));
                assert_eq!(s.headers[2], (vec![], Some(vec![])));
            }
            assert!(s.producer_id >= 0, "idempotence is on by default");
        }
        let codec_id = RecordBatch::parse(&fetch(&mut raw, &topic, 0).2).unwrap().compression_id();
        let want =
            ["none", "gzip", "snappy", "lz4", "zstd"].iter().position(|c| *c == codec).unwrap()
                as u8;
        assert_eq!(codec_id, want, "{codec}: batches carry the codec");
    }
}

#[test]
fn acks_zero_one_and_all_deliver() {
    let broker = BrokerProcess::start(&[]);
    let mut raw = RawClient::connect(broker.addr);
    let rt = runtime();
    let _enter = rt.enter();
    for (acks, topic) in [("0", "acks-0"), ("1", "acks-1"), ("all", "acks-all")] {
        ensure_topic(&mut raw, topic);
        let producer = Producer::new(&config(&broker, &[("acks", acks)])).unwrap();
        let offsets: Vec<i64> = rt.block_on(async {
            let mut deliveries = vec![];
            for i in 0..1000 {
                deliveries.push(
                    producer
                        .send(ProducerRecord::new(topic, format!("v{i}")).partition(0))
                        .await
                        .unwrap(),
                );
            }
            let mut out = vec![];
            for d in deliveries {
                out.push(d.await.unwrap().offset);
            }
            producer.close(Duration::from_secs(10)).await.unwrap();
            out
        });
        if acks == "0" {
            assert!(offsets.iter().all(|&o| o == -1), "acks=0 has no offsets");
            let deadline = Instant::now() + Duration::from_secs(10);
            while read_all(&mut raw, topic).len() < 1000 && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
        } else {
            assert_eq!(offsets, (0..1000).collect::<Vec<i64>>());
        }
        assert_eq!(read_all(&mut raw, topic).len(), 1000, "acks={acks}");
    }
}

#[test]
fn keyed_records_go_where_the_java_client_would_put_them() {
    let broker = BrokerProcess::start(&["--override", "num.partitions=7"]);
    let rt = runtime();
    let _enter = rt.enter();
    let producer = Producer::new(&config(&broker, &[])).unwrap();
    rt.block_on(async {
        for i in 0..200 {
            let key = format!("user-{i}");
            let want =
                sluice_client::producer::partitioner::partition_for_key(key.as_bytes(), 7) as i32;
            let d = producer.send(ProducerRecord::new("keyed", "v").key(key)).await.unwrap();
            assert_eq!(d.partition(), want);
            assert_eq!(d.await.unwrap().partition, want);
        }
        producer.close(Duration::from_secs(10)).await.unwrap();
    });
}

#[test]
fn an_idempotent_producer_writes_each_record_once_across_a_sigkill_and_restart() {
    let mut broker = BrokerProcess::start(&[]);
    let mut raw = RawClient::connect(broker.addr);
    ensure_topic(&mut raw, "idem-rust");
    drop(raw);
    let rt = runtime();
    let _enter = rt.enter();
    let producer = Producer::new(&config(
        &broker,
        &[
            ("linger.ms", "1"),
            ("batch.size", "2000"),
            ("request.timeout.ms", "3000"),
            ("delivery.timeout.ms", "60000"),
        ],
    ))
    .unwrap();
    const N: usize = 30_000;
    let progress = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let task = {
        let producer = producer.clone();
        let progress = progress.clone();
        rt.spawn(async move {
            let mut deliveries = Vec::with_capacity(N);
            for i in 0..N {
                deliveries.push(
                    producer
                        .send(ProducerRecord::new("idem-rust", format!("{i}")).partition(0))
                        .await
                        .unwrap(),
                );
                if i.is_multiple_of(300) {
                    progress.store(i, std::sync::atomic::Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(30)).await;
                }
            }
            let mut offsets = Vec::with_capacity(N);
            for d in deliveries {
                offsets.push(d.await.map(|m| m.offset));
            }
            offsets
        })
    };
    std::thread::sleep(Duration::from_millis(400));
    broker.pause();
    std::thread::sleep(Duration::from_millis(500));
    broker.resume();
    std::thread::sleep(Duration::from_millis(300));
    broker.kill();
    let at_kill = progress.load(std::sync::atomic::Ordering::Relaxed);
    assert!(at_kill > 0 && at_kill < N / 2, "the kill lands mid-stream ({at_kill} sent)");
    std::thread::sleep(Duration::from_millis(500));
    broker.restart_on_same_port();
    let offsets = rt.block_on(task).unwrap();
    let failed: Vec<&ClientError> = offsets.iter().filter_map(|o| o.as_ref().err()).collect();
    assert!(failed.is_empty(), "every record is acknowledged: {:?}", failed.first());
    let mut raw = RawClient::connect(broker.addr);
    let stored = read_all(&mut raw, "idem-rust");
    let values: Vec<String> =
        stored.iter().map(|s| String::from_utf8(s.value.clone().unwrap()).unwrap()).collect();
    let want: Vec<String> = (0..N).map(|i| i.to_string()).collect();
    assert_eq!(values.len(), N, "each record stored once");
    assert!(values == want, "in order");
    let acked: Vec<i64> = offsets.into_iter().map(Result::unwrap).collect();
    assert_eq!(
        acked,
        (0..N as i64).collect::<Vec<_>>(),
        "acknowledged offsets are the stored ones"
    );
    rt.block_on(producer.close(Duration::from_secs(5))).unwrap();
}

#[test]
fn with_the_broker_gone_send_waits_for_buffer_memory_then_fails_after_max_block() {
    let mut broker = BrokerProcess::start(&[]);
    let mut raw = RawClient::connect(broker.addr);
    ensure_topic(&mut raw, "blocked");
    drop(raw);
    let rt = runtime();
    let _enter = rt.enter();
    let producer = Producer::new(&config(
        &broker,
        &[
            ("buffer.memory", "65536"),
            ("max.block.ms", "700"),
            ("delivery.timeout.ms", "4000"),
            ("request.timeout.ms", "1000"),
            ("linger.ms", "0"),
        ],
    ))
    .unwrap();
    rt.block_on(async {
        // Metadata is known before the broker goes.
        producer.send_and_wait(ProducerRecord::new("blocked", "first").partition(0)).await.unwrap();
    });
    broker.kill();
    let (sent, error, blocked_for, deliveries) = rt.block_on(async {
        let mut sent = 0usize;
        let mut deliveries = vec![];
        loop {
            let start = Instant::now();
            match producer.send(ProducerRecord::new("blocked", vec![7u8; 1000]).partition(0)).await
            {
                Ok(d) => {
                    deliveries.push(d);
                    sent += 1;
                    assert!(sent < 1000, "send never blocked: buffer.memory is not enforced");
                }
                Err(e) => return (sent, e, start.elapsed(), deliveries),
            }
        }
    });
    assert!(matches!(error, ClientError::MaxBlock { .. }), "{error}");
    assert!(
        blocked_for >= Duration::from_millis(650) && blocked_for < Duration::from_secs(3),
        "{blocked_for:?}"
    );
    assert!(sent * 1000 <= 65536 && sent >= 40, "{sent} records of 1 KB fit 64 KiB");
    // Undeliverable records fail after delivery.timeout.ms, none stays silent.
    let outcomes = rt.block_on(async {
        let mut out = vec![];
        for d in deliveries {
            out.push(tokio::time::timeout(Duration::from_secs(10), d).await.expect("resolves"));
        }
        out
    });
    assert!(
        outcomes.iter().all(|o| matches!(o, Err(ClientError::DeliveryTimeout { .. }))),
        "{:?}",
        outcomes[0]
    );
    rt.block_on(async {
        let start = Instant::now();
        let d = producer.send(ProducerRecord::new("blocked", "again").partition(0)).await;
        assert!(d.is_ok(), "memory came back when the batches failed");
        assert!(start.elapsed() < Duration::from_millis(500));
        let _ = producer.close(Duration::from_millis(100)).await;
    });
}

#[test]
fn a_typed_config_changed_field_by_field_drives_the_producer() {
    use sluice_client::config::{Acks, ProducerConfig};
    use sluice_protocol::record::Compression;
    let broker = BrokerProcess::start(&[]);
    let mut raw = RawClient::connect(broker.addr);
    ensure_topic(&mut raw, "typed");
    let rt = runtime();
    let _enter = rt.enter();
    let mut typed = ProducerConfig::new(&config(&broker, &[])).unwrap();
    typed.compression = Compression::Zstd;
    typed.acks = Acks::Leader;
    assert!(Producer::from_config(typed.clone()).is_err(), "idempotence needs acks=all");
    typed.idempotence = false;
    let producer = Producer::from_config(typed).unwrap();
    let offset = rt.block_on(async {
        let m =
            producer.send_and_wait(ProducerRecord::new("typed", "v").partition(0)).await.unwrap();
        producer.close(Duration::from_secs(5)).await.unwrap();
        m.offset
    });
    assert_eq!(offset, 0);
    let batch = fetch(&mut raw, "typed", 0).2;
    let batch = RecordBatch::parse(&batch).unwrap();
    assert_eq!((batch.compression_id(), batch.producer_id()), (4, -1), "zstd, not idempotent");
}
