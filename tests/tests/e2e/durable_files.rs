//! Crash tests of the broker's durable small files: SIGKILL while each is being written,
//! and a torn temporary file left beside it. After the restart the broker keeps its
//! cluster id (`meta.properties`), its topics (`topics.catalog`), its producer ids (the id
//! block never hands one out twice; an idempotent producer's duplicate is still answered
//! as one) and its log start offset.

use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::{InitProducerIdRequest, MetadataRequest};
use sluice_protocol::messages::{Request, Response};
use sluice_protocol::record::{BatchBuilder, Compression};
use sluice_tests::{BrokerProcess, RawClient};

use crate::client::{batch, create_request, delete_records, ensure_topic, fetch, produce};

/// A pseudo-random number in `0..n`, different on every call (no `rand` dependency).
fn random_below(n: u64) -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(n);
    h.finish() % n.max(1)
}

/// Leaves a torn copy of `whole` as the temporary file a crash during a write leaves.
fn leave_torn_temp(path: &Path, whole: &[u8]) {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let cut = random_below(whole.len() as u64) as usize;
    std::fs::write(&tmp, &whole[..cut]).unwrap();
}

fn temp_exists(path: &Path) -> bool {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    Path::new(&tmp).exists()
}

fn cluster_id(c: &mut RawClient) -> String {
    let mut m = MetadataRequest::default();
    m.topics = Some(Vec::new());
    let Response::Metadata(r) = c.call(12, Request::Metadata(m)) else { panic!("metadata") };
    r.cluster_id.expect("metadata v12 has a cluster id").to_string()
}

fn topic_names(c: &mut RawClient) -> Vec<String> {
    let mut m = MetadataRequest::default();
    m.topics = None;
    let Response::Metadata(r) = c.call(12, Request::Metadata(m)) else { panic!("metadata") };
    r.topics.iter().filter_map(|t| t.name.as_ref().map(|n| n.0.to_string())).collect()
}

#[test]
fn meta_properties_keeps_the_cluster_id_across_kills_and_torn_temp_files() {
    let mut broker = BrokerProcess::start(&[]);
    let id = cluster_id(&mut RawClient::connect(broker.addr));
    let path = broker.data_dir.join("meta.properties");
    let whole = std::fs::read(&path).unwrap();
    for _ in 0..3 {
        broker.kill();
        // A different id, torn: what a crash while rewriting the file would leave.
        leave_torn_temp(&path, b"version=1\ncluster.id=AAAAAAAAAAAAAAAAAAAAAA\nnode.id=0\n");
        broker.restart();
        assert_eq!(cluster_id(&mut RawClient::connect(broker.addr)), id);
        assert!(!temp_exists(&path), "the torn temporary file is removed at start");
    }
    assert_eq!(std::fs::read(&path).unwrap(), whole);
}

#[test]
fn every_acknowledged_topic_survives_a_kill_during_creates_and_a_torn_catalog_temp() {
    let mut broker = BrokerProcess::start(&[]);
    let addr = broker.addr;
    let (tx, rx) = mpsc::channel();
    let creator = std::thread::spawn(move || {
        let mut c = RawClient::connect(addr);
        c.stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        for i in 0.. {
            let topic = format!("created-{i}");
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                let Response::CreateTopics(r) =
                    c.call(4, Request::CreateTopics(create_request(&topic, 1)))
                else {
                    panic!("create topics")
                };
                r.topics[0].error_code
            }));
            match outcome {
                Ok(0) => tx.send(topic).unwrap(),
                _ => return,
            }
        }
    });
    std::thread::sleep(Duration::from_millis(300 + random_below(500)));
    broker.kill();
    let _ = creator.join();
    let acknowledged: Vec<String> = rx.try_iter().collect();
    assert!(acknowledged.len() > 5, "topics were created before the kill");
    let catalog = broker.data_dir.join("topics.catalog");
    leave_torn_temp(&catalog, &std::fs::read(&catalog).unwrap());
    broker.restart();
    let names = topic_names(&mut RawClient::connect(broker.addr));
    for t in &acknowledged {
        assert!(names.contains(t), "topic {t} was acknowledged but is gone");
    }
    assert!(!temp_exists(&catalog));
}

fn init_producer_id(c: &mut RawClient) -> i64 {
    let mut r = InitProducerIdRequest::default();
    r.transactional_id = None;
    r.transaction_timeout_ms = 60_000;
    let Response::InitProducerId(r) = c.call(1, Request::InitProducerId(r)) else {
        panic!("init producer id")
    };
    assert_eq!(r.error_code, 0);
    r.producer_id.0
}

#[test]
fn the_producer_id_block_never_hands_out_an_id_twice_across_kills() {
    let mut broker = BrokerProcess::start(&[]);
    let mut seen = std::collections::BTreeSet::new();
    for round in 0..4 {
        let addr = broker.addr;
        let (tx, rx) = mpsc::channel();
        let allocator = std::thread::spawn(move || {
            let mut c = RawClient::connect(addr);
            c.stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            loop {
                let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    init_producer_id(&mut c)
                }));
                match outcome {
                    Ok(id) => tx.send(id).unwrap(),
                    Err(_) => return,
                }
            }
        });
        std::thread::sleep(Duration::from_millis(200 + random_below(400)));
        broker.kill();
        let _ = allocator.join();
        let ids: Vec<i64> = rx.try_iter().collect();
        assert!(!ids.is_empty(), "round {round}: ids were handed out");
        for id in ids {
            assert!(seen.insert(id), "round {round}: id {id} handed out twice");
        }
        let block = broker.data_dir.join("producer-id-block");
        leave_torn_temp(&block, &std::fs::read(&block).unwrap());
        broker.restart();
        let next = init_producer_id(&mut RawClient::connect(broker.addr));
        assert!(next > *seen.last().unwrap(), "round {round}: {next} after a restart");
        seen.insert(next);
    }
}

fn idempotent(producer_id: i64, sequence: i32, value: &str) -> Bytes {
    let mut b = BatchBuilder::new(Compression::None).producer(producer_id, 0, sequence);
    b.append(1_700_000_000_000, None, Some(value.as_bytes()), &[]).unwrap();
    Bytes::from(b.build().unwrap())
}

#[test]
fn an_idempotent_duplicate_after_a_kill_is_still_a_duplicate() {
    // Small segments: rolls write producer snapshots, which a torn temp must not hide.
    let mut broker =
        BrokerProcess::start(&["--override", "sluice.internal.log.segment.bytes=4096"]);
    let mut c = RawClient::connect(broker.addr);
    ensure_topic(&mut c, "idem-crash");
    let pid = init_producer_id(&mut c);
    let mut last = (Bytes::new(), 0);
    for seq in 0..200 {
        let records = idempotent(pid, seq, &format!("v{seq}"));
        let (err, base) = produce(&mut c, "idem-crash", records.clone(), -1);
        assert_eq!(err, 0);
        last = (records, base);
    }
    drop(c);
    broker.kill();
    let dir = broker.data_dir.join("idem-crash-0");
    let snapshot = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "snapshot"))
        .max()
        .expect("a roll wrote a producer snapshot");
    leave_torn_temp(&snapshot, &std::fs::read(&snapshot).unwrap());
    broker.restart();
    let mut c = RawClient::connect(broker.addr);
    let (err, base) = produce(&mut c, "idem-crash", last.0.clone(), -1);
    assert_eq!((err, base), (0, last.1), "the retry is answered with the original offset");
    let (_, hw, _) = fetch(&mut c, "idem-crash", 0);
    assert_eq!(hw, 200, "and not written again");
    // The sequence goes on from where it was.
    assert_eq!(produce(&mut c, "idem-crash", idempotent(pid, 201, "gap"), -1).0, 45);
    assert_eq!(produce(&mut c, "idem-crash", idempotent(pid, 200, "next"), -1), (0, 200));
}

#[test]
fn the_log_start_offset_survives_a_kill_during_delete_records() {
    let mut broker =
        BrokerProcess::start(&["--override", "sluice.internal.log.segment.bytes=8192"]);
    let mut c = RawClient::connect(broker.addr);
    ensure_topic(&mut c, "trimmed");
    for i in 0..300 {
        produce(&mut c, "trimmed", batch(&format!("b{i}"), 10, Compression::None), -1);
    }
    let addr = broker.addr;
    let (tx, rx) = mpsc::channel();
    let deleter = std::thread::spawn(move || {
        let mut c = RawClient::connect(addr);
        c.stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        for offset in 1..3000 {
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                delete_records(&mut c, "trimmed", offset)
            }));
            match outcome {
                Ok((0, low)) => tx.send(low).unwrap(),
                _ => return,
            }
        }
    });
    std::thread::sleep(Duration::from_millis(100 + random_below(300)));
    broker.kill();
    let _ = deleter.join();
    let answered = rx.try_iter().max().expect("deletes were answered before the kill");
    let checkpoint = broker.data_dir.join("trimmed-0/log-start-offset");
    leave_torn_temp(&checkpoint, &std::fs::read(&checkpoint).unwrap());
    broker.restart();
    let mut c = RawClient::connect(broker.addr);
    let (err, start) = delete_records(&mut c, "trimmed", 0);
    assert_eq!(err, 0);
    assert!(start >= answered, "log start {start} after the restart, {answered} was answered");
    let (_, hw, _) = fetch(&mut c, "trimmed", start);
    assert_eq!(hw, 3000, "nothing at or past the start was lost");
}
