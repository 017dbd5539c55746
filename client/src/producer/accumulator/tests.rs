use std::time::{Duration, Instant};

use sluice_protocol::record::compression::Compression;
use sluice_protocol::record::RecordBatch;

use super::*;

fn settings() -> AccumulatorSettings {
    AccumulatorSettings {
        batch_size: 1000,
        linger: Duration::from_millis(5),
        compression: Compression::None,
        compression_level: None,
        max_request_size: 1 << 20,
        delivery_timeout: Duration::from_secs(120),
        max_in_flight: 5,
        transactional: false,
    }
}

fn tp(p: i32) -> TopicPartition {
    TopicPartition { topic: "t".into(), partition: p }
}

fn append(acc: &mut Accumulator, p: i32, value: &[u8], now: Instant) -> bool {
    let (delivery, ready) =
        acc.append(&tp(p).topic, p, 1, None, Some(value), &[], value.len(), || now).unwrap();
    drop(delivery);
    ready
}

fn drain_all(acc: &mut Accumulator, now: Instant, stamp: Option<ProducerStamp>) -> Vec<Batch> {
    acc.drain(now, |_| Some(1), |_| true, stamp).by_node.into_values().flatten().collect()
}

fn sequences(batches: &[Batch]) -> Vec<i32> {
    batches.iter().map(|b| RecordBatch::parse(&b.bytes).unwrap().base_sequence()).collect()
}

#[test]
fn a_batch_waits_for_linger_unless_it_is_full() {
    let t0 = Instant::now();
    let mut acc = Accumulator::new(settings());
    assert!(append(&mut acc, 0, &[1; 10], t0), "a new batch wakes the sender");
    assert!(!append(&mut acc, 0, &[1; 10], t0));
    let d = acc.drain(t0, |_| Some(1), |_| true, None);
    assert!(d.by_node.is_empty());
    assert_eq!(d.next_wakeup, Some(t0 + Duration::from_millis(5)));
    assert_eq!(drain_all(&mut acc, t0 + Duration::from_millis(5), None).len(), 1);
    // Full before its linger: ready at once.
    append(&mut acc, 0, &[2; 100], t0);
    let mut ready = false;
    for _ in 0..20 {
        ready |= append(&mut acc, 0, &[2; 100], t0);
    }
    assert!(ready, "a full batch wakes the sender");
    assert_eq!(drain_all(&mut acc, t0, None).len(), 1, "one batch per partition per drain");
}

#[test]
fn sequences_follow_batch_order_and_retries_go_back_in_place() {
    let t0 = Instant::now();
    let mut acc = Accumulator::new(settings());
    let stamp = ProducerStamp { id: 7, epoch: 0 };
    let mut sent = Vec::new();
    for round in 0..3 {
        for _ in 0..3 {
            append(&mut acc, 0, &[round; 100], t0);
        }
        acc.flush();
        sent.extend(drain_all(&mut acc, t0, Some(stamp)));
    }
    assert_eq!(sequences(&sent), vec![0, 3, 6]);
    // The first fails; the third comes back with an out-of-order error.
    let mut it = sent.into_iter();
    let (first, second, third) = (it.next().unwrap(), it.next().unwrap(), it.next().unwrap());
    acc.requeue(third, t0, ClientError::Closed, true);
    acc.requeue(first, t0, ClientError::Closed, true);
    assert!(acc.has_retry_before(&tp(0), second.id));
    assert!(
        drain_all(&mut acc, t0, Some(stamp)).is_empty(),
        "no retry while the second is in flight"
    );
    acc.requeue(second, t0, ClientError::Closed, true);
    let mut again = Vec::new();
    for _ in 0..3 {
        let batches = drain_all(&mut acc, t0, Some(stamp));
        assert_eq!(batches.len(), 1, "retries go one at a time");
        assert_eq!(batches[0].attempts, 2);
        again.extend(sequences(&batches));
        for b in batches {
            acc.complete(b, Ok(BatchAck { base_offset: 0, log_append_time: -1 }), true);
        }
    }
    assert_eq!(again, vec![0, 3, 6], "retries keep their sequences, in order");
    assert!(acc.is_empty());
}

#[test]
fn an_epoch_bump_restamps_batches_from_zero() {
    let t0 = Instant::now();
    let mut acc = Accumulator::new(settings());
    let old = ProducerStamp { id: 7, epoch: 0 };
    append(&mut acc, 0, &[1; 10], t0);
    acc.flush();
    let b = drain_all(&mut acc, t0, Some(old)).pop().unwrap();
    append(&mut acc, 0, &[1; 10], t0);
    append(&mut acc, 0, &[1; 10], t0);
    acc.requeue(b, t0, ClientError::Closed, true);
    acc.reset_sequences();
    acc.flush();
    let new = ProducerStamp { id: 7, epoch: 1 };
    let b = drain_all(&mut acc, t0, Some(new)).pop().unwrap();
    let parsed = RecordBatch::parse_verified(&b.bytes).unwrap();
    assert_eq!((parsed.producer_epoch(), parsed.base_sequence()), (1, 0));
    acc.complete(b, Ok(BatchAck { base_offset: 0, log_append_time: -1 }), true);
    let b = drain_all(&mut acc, t0, Some(new)).pop().unwrap();
    assert_eq!(sequences(&[b]), vec![1], "the next batch follows the retried one");
}

#[test]
fn drain_respects_leaders_and_in_flight_limits() {
    let t0 = Instant::now();
    let mut acc = Accumulator::new(AccumulatorSettings { max_in_flight: 1, ..settings() });
    for p in 0..4 {
        append(&mut acc, p, &[1; 10], t0);
    }
    acc.flush();
    let d =
        acc.drain(t0, |tp| (tp.partition != 3).then_some(tp.partition % 2), |node| node == 0, None);
    assert!(d.unknown_leader, "partition 3 has no leader");
    assert_eq!(d.by_node.keys().copied().collect::<Vec<_>>(), vec![0]);
    assert_eq!(d.by_node[&0].len(), 2, "partitions 0 and 2 lead on node 0");
    for p in [0, 2] {
        append(&mut acc, p, &[1; 10], t0);
    }
    acc.flush();
    let d = acc.drain(t0, |_| Some(0), |_| true, None);
    let parts: Vec<i32> = d.by_node.values().flatten().map(|b| b.tp.partition).collect();
    assert!(
        !parts.contains(&0) && !parts.contains(&2),
        "one batch in flight per partition: {parts:?}"
    );
}

#[test]
fn a_request_stays_within_max_request_size() {
    let t0 = Instant::now();
    let mut acc = Accumulator::new(AccumulatorSettings {
        max_request_size: 2000,
        batch_size: 100_000,
        ..settings()
    });
    for p in 0..3 {
        for _ in 0..9 {
            append(&mut acc, p, &[1; 100], t0);
        }
    }
    acc.flush();
    let first = drain_all(&mut acc, t0, None);
    assert_eq!(first.len(), 1, "two batches of ~1 KiB would exceed 2000 bytes");
}

#[test]
fn batches_past_delivery_timeout_expire() {
    let t0 = Instant::now();
    let mut acc = Accumulator::new(settings());
    append(&mut acc, 0, &[1; 10], t0);
    let d = acc.drain(t0 + Duration::from_secs(121), |_| None, |_| true, None);
    assert_eq!(d.expired.len(), 1);
    assert_eq!(d.expired[0].tp, tp(0));
}

#[test]
fn a_dropped_batch_fails_its_records() {
    let t0 = Instant::now();
    let mut acc = Accumulator::new(settings());
    let (delivery, _) = acc.append(&"t".into(), 0, 1, None, Some(b"v"), &[], 1, || t0).unwrap();
    acc.flush();
    drop(drain_all(&mut acc, t0, None));
    let result = tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(delivery);
    assert_eq!(result.unwrap_err(), ClientError::Closed);
}

#[test]
fn batches_are_compressed_at_the_configured_level() {
    let t0 = Instant::now();
    let size_at = |level| {
        let mut acc = Accumulator::new(AccumulatorSettings {
            compression: Compression::Zstd,
            compression_level: Some(level),
            batch_size: 1 << 20,
            ..settings()
        });
        for i in 0..2000u32 {
            let value = format!("record {i} of a fairly repetitive payload {}", i % 17);
            append(&mut acc, 0, value.as_bytes(), t0);
        }
        acc.flush();
        drain_all(&mut acc, t0, None).pop().unwrap().bytes.len()
    };
    assert!(size_at(19) < size_at(1), "zstd level 19 packs tighter than level 1");
}

#[test]
fn a_transactional_partition_waits_until_it_joined_the_transaction() {
    let t0 = Instant::now();
    let mut acc = Accumulator::new(AccumulatorSettings { transactional: true, ..settings() });
    append(&mut acc, 0, &[1; 10], t0);
    append(&mut acc, 1, &[1; 10], t0);
    let stamp = Some(ProducerStamp { id: 7, epoch: 3 });
    // Named as blocked at once, before linger closes the batch: the add overlaps it.
    let d = acc.drain_where(t0, |_| Some(1), |_| true, stamp, |tp| tp.partition == 1);
    assert_eq!(d.blocked, [tp(0)]);
    assert!(d.by_node.is_empty());
    let later = t0 + Duration::from_millis(5);
    let d = acc.drain_where(later, |_| Some(1), |_| true, stamp, |tp| tp.partition == 1);
    assert_eq!(d.blocked, [tp(0)]);
    let sent: Vec<Batch> = d.by_node.into_values().flatten().collect();
    assert_eq!(sent.iter().map(|b| b.tp.partition).collect::<Vec<_>>(), [1]);
    let batch = RecordBatch::parse_verified(&sent[0].bytes).unwrap();
    assert!(batch.is_transactional() && !batch.is_control());
    assert_eq!((batch.producer_id(), batch.producer_epoch(), batch.base_sequence()), (7, 3, 0));
    let d = acc.drain_where(later, |_| Some(1), |_| true, stamp, |_| true);
    assert!(d.blocked.is_empty());
    assert_eq!(d.by_node.into_values().flatten().count(), 1, "partition 0 once it joined");
}

#[test]
fn compressed_batches_hand_their_record_buffers_to_the_next_batches() {
    let now = Instant::now();
    for (compression, spares) in [(Compression::Lz4, 1), (Compression::None, 0)] {
        let mut acc = Accumulator::new(AccumulatorSettings { compression, ..settings() });
        // 1000-byte batches of 100-byte records: a few records close the first batch.
        let mut records = 0;
        while acc.queues.first().is_none_or(|(_, q)| q.queued.is_empty()) {
            append(&mut acc, 0, &[7; 100], now);
            records += 1;
        }
        assert_eq!(acc.spares.len(), spares, "{compression:?}: closed, its buffer kept");
        append(&mut acc, 0, &[7; 100], now);
        assert!(acc.spares.is_empty(), "{compression:?}: the next batch fills it");
        // Every batch still carries exactly its records.
        acc.flush();
        let mut counts = Vec::new();
        loop {
            let batches = drain_all(&mut acc, now, None);
            if batches.is_empty() {
                break;
            }
            let count = |b: &Batch| RecordBatch::parse_verified(&b.bytes).unwrap().records_count();
            counts.extend(batches.iter().map(count));
        }
        assert_eq!(counts, [records, 1], "{compression:?}");
    }
}
