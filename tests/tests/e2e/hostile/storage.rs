//! Hostile clients against storage: DeleteRecords hammered at a partition that a normal
//! producer writes to (its checkpoint fsyncs must not stall the producer's appends), and a
//! flood of distinct producer ids at one partition (producer state stays at its bound,
//! and so does its snapshot).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use sluice_protocol::messages::{Request, Response};
use sluice_protocol::record::{BatchBuilder, Compression, RecordBatch};
use sluice_tests::hostile::{allowed_growth, encode_frame, Latencies};
use sluice_tests::{BrokerProcess, RawClient};

use crate::client::{batch, delete_records, ensure_topic, fetch, produce, produce_request, values};

/// Produces `n` requests of 10 records; returns their round trips and, per request, the
/// base offset and the values written.
fn timed_produce(c: &mut RawClient, topic: &str, tag: &str, n: usize) -> (Latencies, Vec<i64>) {
    let mut latencies = Vec::with_capacity(n);
    let mut bases = Vec::with_capacity(n);
    for i in 0..n {
        let records = batch(&format!("{tag}{i}"), 10, Compression::None);
        let t = Instant::now();
        let (err, base) = produce(c, topic, records, -1);
        latencies.push(t.elapsed());
        assert_eq!(err, 0, "produce {tag}{i}");
        bases.push(base);
    }
    latencies.sort();
    (Latencies(latencies), bases)
}

#[test]
fn delete_records_hammering_does_not_stall_a_producer_or_lose_its_records() {
    const PRODUCES: usize = 2000;
    const ATTACKERS: usize = 4;
    let broker = BrokerProcess::start(&["--override", "sluice.internal.log.segment.bytes=65536"]);
    let mut c = RawClient::connect(broker.addr);
    ensure_topic(&mut c, "hammered");
    let (quiet, quiet_bases) = timed_produce(&mut c, "hammered", "q", PRODUCES);

    let stop = Arc::new(AtomicBool::new(false));
    let requests = Arc::new(AtomicU64::new(0));
    let attackers: Vec<_> = (0..ATTACKERS)
        .map(|_| {
            let (stop, requests, addr) = (Arc::clone(&stop), Arc::clone(&requests), broker.addr);
            std::thread::spawn(move || {
                let mut a = RawClient::connect(addr);
                // -1: up to the high watermark, so every request moves the log start (a
                // checkpoint write each) while the producer appends.
                while !stop.load(Ordering::Relaxed) {
                    let (err, _) = delete_records(&mut a, "hammered", -1);
                    assert_eq!(err, 0);
                    requests.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    let started = Instant::now();
    let (attacked, bases) = timed_produce(&mut c, "hammered", "a", PRODUCES);
    let elapsed = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    for a in attackers {
        a.join().unwrap();
    }
    let requests = requests.load(Ordering::Relaxed);
    eprintln!(
        "produce round trip, quiet: p50 {:?} p99 {:?} max {:?}; under {requests} DeleteRecords in {elapsed:?}: p50 {:?} p99 {:?} max {:?}",
        quiet.quantile(0.5),
        quiet.quantile(0.99),
        quiet.quantile(1.0),
        attacked.quantile(0.5),
        attacked.quantile(0.99),
        attacked.quantile(1.0),
    );
    assert!(requests > 50, "the attack ran ({requests} requests)");
    assert!(
        attacked.quantile(0.99) < Duration::from_millis(200),
        "p99 {:?} under DeleteRecords",
        attacked.quantile(0.99)
    );

    // Every acknowledged record at or past the log start is there, at its offset.
    let mut expected = BTreeMap::new();
    for (tag, bases) in [("q", &quiet_bases), ("a", &bases)] {
        for (i, base) in bases.iter().enumerate() {
            for j in 0..10 {
                expected.insert(base + j, format!("{tag}{i}-{j}"));
            }
        }
    }
    let (_, start) = delete_records(&mut c, "hammered", 0);
    let (_, hw, _) = fetch(&mut c, "hammered", start);
    assert_eq!(hw, 2 * 10 * PRODUCES as i64, "every acknowledged record got an offset");
    let mut offset = start;
    while offset < hw {
        let (err, _, records) = fetch(&mut c, "hammered", offset);
        assert_eq!(err, 0, "fetch at {offset}");
        for (o, v) in values(&records) {
            if o >= offset {
                assert_eq!(expected.get(&o), Some(&v), "record at {o}");
                offset = o + 1;
            }
        }
    }
}

/// One request of `count` one-record batches, each from its own producer id.
fn many_producers(first_id: i64, count: i64) -> Bytes {
    let mut set = Vec::new();
    for pid in first_id..first_id + count {
        let mut b = BatchBuilder::new(Compression::None).producer(pid, 0, 0);
        b.append(1_700_000_000_000, None, Some(b"x"), &[]).unwrap();
        set.extend(b.build().unwrap());
    }
    Bytes::from(set)
}

fn snapshot_lines(dir: &std::path::Path) -> Vec<usize> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".snapshot"))
        .map(|e| std::fs::read_to_string(e.path()).unwrap().lines().count())
        .collect()
}

#[test]
fn a_hundred_thousand_producer_ids_keep_producer_state_at_its_bound() {
    const IDS: i64 = 100_000;
    const PER_REQUEST: i64 = 1000;
    const BOUND: usize = 10_000; // sluice.producer.state.max.producers.per.partition
    let mut broker = BrokerProcess::start(&[]);
    let mut c = RawClient::connect(broker.addr);
    ensure_topic(&mut c, "pids");
    let before = broker.peak_rss_bytes();
    let mut frame_bytes = 0;
    let started = Instant::now();
    let not_enough_replicas = 19;
    for first in (0..IDS).step_by(PER_REQUEST as usize) {
        let req = produce_request("pids", 0, many_producers(1 << 40 | first, PER_REQUEST), -1);
        frame_bytes += encode_frame(9, &Request::Produce(req.clone())).len();
        let Response::Produce(r) = c.call(9, Request::Produce(req)) else { panic!("produce") };
        // Past the bound, a new producer id would push out one that appended seconds ago:
        // refused, retriably, with nothing written.
        let expected = if first < BOUND as i64 { 0 } else { not_enough_replicas };
        assert_eq!(r.responses[0].partition_responses[0].error_code, expected, "ids from {first}");
    }
    let growth = broker.peak_rss_bytes().saturating_sub(before);
    eprintln!(
        "{IDS} producer ids in {:?}: {frame_bytes} frame bytes, peak RSS grew {growth} bytes (allowed {})",
        started.elapsed(),
        allowed_growth(frame_bytes)
    );
    assert!(growth <= allowed_growth(frame_bytes), "grew {growth} for {frame_bytes} bytes");

    // Every live producer kept its state: the first one's retry is still a duplicate (a
    // flood of new ids could otherwise evict it, and its retry would be written twice).
    let first = many_producers(1 << 40, 1);
    assert_eq!(produce(&mut c, "pids", first.clone(), -1), (0, 0));
    let last = BOUND as i64 - 1;
    assert_eq!(produce(&mut c, "pids", many_producers(1 << 40 | last, 1), -1), (0, last));
    drop(c);
    broker.stop();
    let dir = broker.data_dir.join("pids-0");
    let lines = snapshot_lines(&dir);
    assert!(!lines.is_empty(), "a clean stop writes a snapshot");
    for n in &lines {
        // Header and crc lines, and one line per producer kept.
        assert!(*n <= BOUND + 2, "a snapshot of {n} lines");
    }
    assert_eq!(*lines.iter().max().unwrap(), BOUND + 2, "the state was at its bound");
    broker.restart();
    let mut c = RawClient::connect(broker.addr);
    assert_eq!(produce(&mut c, "pids", first, -1), (0, 0), "still known after restart");
    let (_, hw, records) = fetch(&mut c, "pids", last);
    assert_eq!(hw, BOUND as i64, "nothing of the refused sets was written");
    assert_eq!(RecordBatch::parse_verified(&records).unwrap().producer_id(), 1 << 40 | last);
}

#[test]
fn producer_ids_expire_by_the_broker_clock_whatever_their_batch_timestamps() {
    let broker = BrokerProcess::start(&[
        "--override",
        "producer.id.expiration.ms=500",
        "--override",
        "log.flush.scheduler.interval.ms=100",
        // Kafka 4.0 refuses timestamps over an hour ahead by default; lifted, as an
        // operator may, so that such a timestamp reaches the producer state.
        "--override",
        "log.message.timestamp.after.max.ms=9223372036854775807",
    ]);
    let mut c = RawClient::connect(broker.addr);
    ensure_topic(&mut c, "expiring");
    // A batch timestamp a century ahead must not keep the producer alive.
    let mut b = BatchBuilder::new(Compression::None).producer(77, 0, 0);
    b.append(4_900_000_000_000, None, Some(b"x"), &[]).unwrap();
    let records = Bytes::from(b.build().unwrap());
    assert_eq!(produce(&mut c, "expiring", records.clone(), -1), (0, 0));
    assert_eq!(produce(&mut c, "expiring", records.clone(), -1), (0, 0), "a duplicate");
    std::thread::sleep(Duration::from_millis(1500));
    // Expired: the broker has no state of it, so the batch is new to it, as in Kafka.
    assert_eq!(produce(&mut c, "expiring", records, -1), (0, 1));
}
