//! Restarts: SIGTERM keeps everything and leaves one clean-shutdown marker for the data
//! directory; SIGKILL in durable mode keeps every acknowledged record; after SIGKILL only
//! the segments past the recovery point are recovered.

use sluice_protocol::record::Compression;
use sluice_tests::{BrokerProcess, RawClient};

use crate::client::{batch, ensure_topic, fetch_all, produce};

#[test]
fn sigterm_then_restart_keeps_topics_and_records() {
    let mut broker = BrokerProcess::start(&["--num-partitions", "3"]);
    let mut c = RawClient::connect(broker.addr);
    ensure_topic(&mut c, "kept");
    for i in 0..50 {
        produce(&mut c, "kept", batch(&format!("b{i}"), 10, Compression::Lz4), -1);
    }
    let before = fetch_all(&mut c, "kept");
    assert_eq!(before.len(), 500);
    drop(c);
    broker.stop();
    let marker = broker.data_dir.join(".clean-shutdown");
    assert!(marker.exists(), "the data directory's clean-shutdown marker is written");
    assert!(
        !broker.data_dir.join("kept-0/.clean-shutdown").exists(),
        "no marker per partition: a shutdown writes one file, not one per partition"
    );
    broker.restart();
    assert!(!marker.exists(), "a running broker has no clean-shutdown marker");
    assert!(!broker.log().contains("recovered segment"), "a clean start recovers nothing");
    let mut c = RawClient::connect(broker.addr);
    assert_eq!(fetch_all(&mut c, "kept"), before);
    let (err, base) = produce(&mut c, "kept", batch("after", 1, Compression::None), 1);
    assert_eq!((err, base), (0, 500));
    assert!(broker.log().contains("sluiced ready"));
    // A crash after a clean start is a crash: the active segments are recovered.
    drop(c);
    broker.kill();
    broker.restart();
    assert!(broker.log().contains("recovered segment"), "{}", broker.log());
    let mut c = RawClient::connect(broker.addr);
    assert_eq!(fetch_all(&mut c, "kept").len(), 501);
}

#[test]
fn sigkill_in_durable_mode_keeps_every_acknowledged_record() {
    let mut broker = BrokerProcess::start(&["--override", "log.flush.interval.messages=1"]);
    let mut c = RawClient::connect(broker.addr);
    ensure_topic(&mut c, "durable");
    let addr = broker.addr;
    // A producer thread acknowledges as fast as it can; the broker dies under it.
    let (tx, rx) = std::sync::mpsc::channel();
    let producer = std::thread::spawn(move || {
        let mut p = RawClient::connect(addr);
        p.stream.set_read_timeout(Some(std::time::Duration::from_secs(2))).unwrap();
        for i in 0.. {
            let req = batch(&format!("r{i}"), 5, Compression::None);
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                produce(&mut p, "durable", req, -1)
            }));
            match outcome {
                Ok((0, base)) => tx.send(base + 4).unwrap(),
                _ => return,
            }
        }
    });
    std::thread::sleep(std::time::Duration::from_millis(700));
    broker.kill();
    let _ = producer.join();
    let acked: Vec<i64> = rx.try_iter().collect();
    assert!(acked.len() > 10, "the producer got acknowledgements");
    let last_acked = *acked.iter().max().unwrap();
    broker.restart();
    let mut c = RawClient::connect(broker.addr);
    let all = fetch_all(&mut c, "durable");
    assert!(all.len() as i64 > last_acked, "offset {last_acked} was acknowledged but lost");
    for (i, (offset, _)) in all.iter().enumerate() {
        assert_eq!(*offset, i as i64, "offsets are contiguous");
    }
}

/// The recovery point a partition directory records, if any.
fn recovery_point(dir: &std::path::Path) -> Option<i64> {
    let text = std::fs::read_to_string(dir.join("recovery-point-offset")).ok()?;
    text.split_whitespace().nth(1)?.parse().ok()
}

/// Base offsets of a partition directory's segments, sorted.
fn segment_bases(dir: &std::path::Path) -> Vec<i64> {
    let mut bases: Vec<i64> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.strip_suffix(".log")?.parse().ok())
        .collect();
    bases.sort_unstable();
    bases
}

#[test]
fn the_flusher_syncs_rolled_segments_and_sigkill_recovers_only_what_follows() {
    let mut broker = BrokerProcess::start(&[
        "--override",
        "sluice.internal.log.segment.bytes=16384",
        "--override",
        "log.flush.scheduler.interval.ms=50",
    ]);
    let mut c = RawClient::connect(broker.addr);
    ensure_topic(&mut c, "rolled");
    for i in 0..40 {
        let (err, _) =
            produce(&mut c, "rolled", batch(&format!("b{i}"), 100, Compression::None), 1);
        assert_eq!(err, 0);
    }
    let before = fetch_all(&mut c, "rolled");
    assert_eq!(before.len(), 4000);
    let dir = broker.data_dir.join("rolled-0");
    let bases = segment_bases(&dir);
    assert!(bases.len() >= 3, "segments rolled: {bases:?}");
    let active_base = *bases.last().unwrap();
    // Within a few flusher ticks the sealed segments are synced and the recovery point
    // recorded at the active segment's base.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while recovery_point(&dir) != Some(active_base) {
        assert!(std::time::Instant::now() < deadline, "recovery point {:?}", recovery_point(&dir));
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    drop(c);
    broker.kill();
    broker.restart();
    let mut c = RawClient::connect(broker.addr);
    assert_eq!(fetch_all(&mut c, "rolled"), before);
    let recovered: Vec<String> = broker
        .log()
        .lines()
        .filter(|l| l.contains("recovered segment") && l.contains("rolled-0"))
        .map(String::from)
        .collect();
    assert_eq!(recovered.len(), 1, "only the active segment: {recovered:#?}");
    assert!(recovered[0].contains(&format!("{active_base:020}.log")), "{}", recovered[0]);
}
