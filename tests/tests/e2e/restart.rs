//! Restarts: SIGTERM keeps everything; SIGKILL in durable mode keeps every acknowledged
//! record.

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
    assert!(
        broker.data_dir.join("kept-0/.clean-shutdown").exists(),
        "clean shutdown marker written"
    );
    broker.restart();
    let mut c = RawClient::connect(broker.addr);
    assert_eq!(fetch_all(&mut c, "kept"), before);
    let (err, base) = produce(&mut c, "kept", batch("after", 1, Compression::None), 1);
    assert_eq!((err, base), (0, 500));
    assert!(broker.log().contains("sluiced ready"));
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
