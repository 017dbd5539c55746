//! The transaction coordinator over the raw protocol: InitProducerId with a
//! transactional id, epoch bumps, AddPartitionsToTxn, EndTxn with its markers,
//! TxnOffsetCommit with OffsetFetch's require_stable, timeouts, DescribeTransactions and
//! ListTransactions, and the coordinator's state across a restart and a SIGKILL.

use std::time::{Duration, Instant};

use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::txn_offset_commit_request::{
    TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
};
use kafka_protocol::messages::{
    AddOffsetsToTxnRequest, AddPartitionsToTxnRequest, DescribeTransactionsRequest, EndTxnRequest,
    FindCoordinatorRequest, GroupId, InitProducerIdRequest, ListTransactionsRequest,
    OffsetFetchRequest, ProducerId, TransactionalId, TxnOffsetCommitRequest,
};
use kafka_protocol::protocol::StrBytes;
use sluice_protocol::messages::{Request, Response};
use sluice_protocol::record::{BatchBuilder, Compression, RecordBatch};
use sluice_tests::{BrokerProcess, RawClient};

use crate::client::{ensure_topic, fetch, name, produce};

const CONCURRENT_TRANSACTIONS: i16 = 51;
const PRODUCER_FENCED: i16 = 90;
const INVALID_TXN_STATE: i16 = 48;
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const OPERATION_NOT_ATTEMPTED: i16 = 55;
const INVALID_TRANSACTION_TIMEOUT: i16 = 50;
const UNSTABLE_OFFSET_COMMIT: i16 = 88;

fn txn_id(s: &str) -> TransactionalId {
    TransactionalId(StrBytes::from_string(s.to_owned()))
}

/// InitProducerId v4; (error, producer id, epoch).
fn init(c: &mut RawClient, id: &str, timeout_ms: i32) -> (i16, i64, i16) {
    let mut r = InitProducerIdRequest::default();
    r.transactional_id = Some(txn_id(id));
    r.transaction_timeout_ms = timeout_ms;
    r.producer_id = ProducerId(-1);
    r.producer_epoch = -1;
    let Response::InitProducerId(r) = c.call(4, Request::InitProducerId(r)) else { panic!() };
    (r.error_code, r.producer_id.0, r.producer_epoch)
}

/// InitProducerId, retried while the coordinator finishes a previous transaction.
fn init_ok(c: &mut RawClient, id: &str, timeout_ms: i32) -> (i64, i16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match init(c, id, timeout_ms) {
            (0, pid, epoch) => return (pid, epoch),
            // 14: the coordinator is loading after a start.
            (CONCURRENT_TRANSACTIONS | 14, ..) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20))
            }
            other => panic!("InitProducerId: {other:?}"),
        }
    }
}

/// AddPartitionsToTxn v3; the error of each (topic, partition) in order.
fn add(c: &mut RawClient, id: &str, pid: i64, epoch: i16, parts: &[(&str, i32)]) -> Vec<i16> {
    let mut r = AddPartitionsToTxnRequest::default();
    r.v3_and_below_transactional_id = txn_id(id);
    r.v3_and_below_producer_id = ProducerId(pid);
    r.v3_and_below_producer_epoch = epoch;
    for (topic, partition) in parts {
        let mut t = AddPartitionsToTxnTopic::default();
        t.name = name(topic);
        t.partitions = vec![*partition];
        r.v3_and_below_topics.push(t);
    }
    let Response::AddPartitionsToTxn(r) = c.call(3, Request::AddPartitionsToTxn(r)) else {
        panic!()
    };
    r.results_by_topic_v3_and_below
        .iter()
        .flat_map(|t| t.results_by_partition.iter().map(|p| p.partition_error_code))
        .collect()
}

fn end(c: &mut RawClient, id: &str, pid: i64, epoch: i16, commit: bool) -> i16 {
    let mut r = EndTxnRequest::default();
    r.transactional_id = txn_id(id);
    r.producer_id = ProducerId(pid);
    r.producer_epoch = epoch;
    r.committed = commit;
    let Response::EndTxn(r) = c.call(3, Request::EndTxn(r)) else { panic!() };
    r.error_code
}

/// (error, state, producer id, epoch, partitions) of one transactional id.
fn describe(c: &mut RawClient, id: &str) -> (i16, String, i64, i16, Vec<(String, i32)>) {
    let mut r = DescribeTransactionsRequest::default();
    r.transactional_ids = vec![txn_id(id)];
    let Response::DescribeTransactions(r) = c.call(0, Request::DescribeTransactions(r)) else {
        panic!()
    };
    let s = &r.transaction_states[0];
    let parts = s
        .topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| (t.topic.0.to_string(), *p)))
        .collect();
    (s.error_code, s.transaction_state.to_string(), s.producer_id.0, s.producer_epoch, parts)
}

/// Waits until `id` is in `state` (the coordinator may be loading or writing markers).
fn wait_for_state(c: &mut RawClient, id: &str, state: &str) -> (i64, i16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (error, s, pid, epoch, _) = describe(c, id);
        if error == 0 && s == state {
            return (pid, epoch);
        }
        assert!(Instant::now() < deadline, "{id} stayed {s} (error {error}), not {state}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn list(c: &mut RawClient, states: &[&str], version: i16) -> Vec<(String, String)> {
    let mut r = ListTransactionsRequest::default();
    r.state_filters = states.iter().map(|s| StrBytes::from_string(s.to_string())).collect();
    let Response::ListTransactions(r) = c.call(version, Request::ListTransactions(r)) else {
        panic!()
    };
    assert_eq!(r.error_code, 0);
    let mut out: Vec<(String, String)> = r
        .transaction_states
        .iter()
        .map(|s| (s.transactional_id.0.to_string(), s.transaction_state.to_string()))
        .collect();
    out.sort();
    out
}

fn transactional_batch(pid: i64, epoch: i16, sequence: i32, values: &[&str]) -> bytes::Bytes {
    let mut b =
        BatchBuilder::new(Compression::None).producer(pid, epoch, sequence).transactional(true);
    for v in values {
        b.append(1_700_000_000_000, None, Some(v.as_bytes()), &[]).unwrap();
    }
    bytes::Bytes::from(b.build().unwrap())
}

/// The control batches (markers) of partition 0: (is commit, producer id).
fn markers(c: &mut RawClient, topic: &str) -> Vec<(bool, i64)> {
    let (error, _, records) = fetch(c, topic, 0);
    assert_eq!(error, 0);
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < records.len() {
        let Ok(b) = RecordBatch::parse_verified(&records[pos..]) else { break };
        if b.is_control() {
            let rs = b.records(1 << 20).unwrap();
            let r = (&rs).into_iter().next().unwrap().unwrap();
            // Key: version (i16), type (i16): 0 abort, 1 commit.
            let key = r.key().unwrap();
            out.push((key[3] == 1, b.producer_id()));
        }
        pos += b.size();
    }
    out
}

#[test]
fn a_transaction_commits_with_markers_and_the_coordinator_answers_as_kafka() {
    let broker = BrokerProcess::start(&[]);
    let mut c = RawClient::connect(broker.addr);
    ensure_topic(&mut c, "txn-a");
    let mut f = FindCoordinatorRequest::default();
    f.key_type = 1;
    f.coordinator_keys = vec![StrBytes::from_static_str("t1")];
    let Response::FindCoordinator(r) = c.call(4, Request::FindCoordinator(f)) else { panic!() };
    assert_eq!(
        (r.coordinators[0].error_code, r.coordinators[0].port),
        (0, broker.addr.port() as i32)
    );

    assert_eq!(init(&mut c, "t1", 900_001).0, INVALID_TRANSACTION_TIMEOUT);
    let (pid, epoch) = init_ok(&mut c, "t1", 60_000);
    assert_eq!(epoch, 0);
    assert_eq!(init_ok(&mut c, "t1", 60_000), (pid, 1), "a re-init bumps the epoch");
    let epoch = 1;
    assert_eq!(
        add(&mut c, "t1", pid, epoch, &[("txn-a", 0), ("no-such-topic", 0)]),
        vec![OPERATION_NOT_ATTEMPTED, UNKNOWN_TOPIC_OR_PARTITION]
    );
    assert_eq!(add(&mut c, "t1", pid, 0, &[("txn-a", 0)]), vec![PRODUCER_FENCED]);
    assert_eq!(add(&mut c, "t1", pid, epoch, &[("txn-a", 0)]), vec![0]);
    let (_, state, _, _, parts) = describe(&mut c, "t1");
    assert_eq!((state.as_str(), parts), ("Ongoing", vec![("txn-a".to_string(), 0)]));
    let (code, _) = produce(&mut c, "txn-a", transactional_batch(pid, epoch, 0, &["a", "b"]), -1);
    assert_eq!(code, 0, "{}", broker.log());
    assert_eq!(end(&mut c, "t1", pid, epoch, true), 0);
    // While its Complete state is written the answer is CONCURRENT_TRANSACTIONS, as in
    // Kafka; otherwise the abort of a committing transaction is refused.
    let e = end(&mut c, "t1", pid, epoch, false);
    assert!(e == INVALID_TXN_STATE || e == CONCURRENT_TRANSACTIONS, "{e}");
    wait_for_state(&mut c, "t1", "CompleteCommit");
    assert_eq!(end(&mut c, "t1", pid, epoch, false), INVALID_TXN_STATE);
    assert_eq!(end(&mut c, "t1", pid, epoch, true), 0, "a retry of the commit");
    assert_eq!(markers(&mut c, "txn-a"), vec![(true, pid)]);
    assert_eq!(list(&mut c, &["CompleteCommit"], 1), vec![("t1".into(), "CompleteCommit".into())]);
    assert_eq!(list(&mut c, &["Ongoing"], 0), vec![]);
    let (error, ..) = describe(&mut c, "nobody");
    assert_eq!(error, 105, "TRANSACTIONAL_ID_NOT_FOUND");
    // The coordinator's topic is the broker's own: clients may not write to it.
    let (code, _) =
        produce(&mut c, "__transaction_state", crate::client::batch("x", 1, Compression::None), -1);
    assert_eq!(code, 17, "INVALID_TOPIC_EXCEPTION");
    assert_eq!(crate::client::delete_records(&mut c, "__transaction_state", 1).0, 17);
}

#[test]
fn transactional_offsets_are_unstable_until_the_commit_and_then_committed() {
    let broker = BrokerProcess::start(&[]);
    let mut c = RawClient::connect(broker.addr);
    ensure_topic(&mut c, "txn-o");
    let (pid, epoch) = init_ok(&mut c, "t-offsets", 60_000);
    let mut a = AddOffsetsToTxnRequest::default();
    a.transactional_id = txn_id("t-offsets");
    a.producer_id = ProducerId(pid);
    a.producer_epoch = epoch;
    a.group_id = GroupId(StrBytes::from_static_str("g"));
    let Response::AddOffsetsToTxn(r) = c.call(3, Request::AddOffsetsToTxn(a)) else { panic!() };
    assert_eq!(r.error_code, 0);
    let mut t = TxnOffsetCommitRequest::default();
    t.transactional_id = txn_id("t-offsets");
    t.group_id = GroupId(StrBytes::from_static_str("g"));
    t.producer_id = ProducerId(pid);
    t.producer_epoch = epoch;
    t.generation_id = -1;
    let mut p = TxnOffsetCommitRequestPartition::default();
    p.partition_index = 0;
    p.committed_offset = 17;
    let mut topic = TxnOffsetCommitRequestTopic::default();
    topic.name = name("txn-o");
    topic.partitions = vec![p];
    t.topics = vec![topic];
    let mut stale = t.clone();
    stale.generation_id = 3;
    stale.member_id = StrBytes::from_static_str("someone");
    let Response::TxnOffsetCommit(r) = c.call(3, Request::TxnOffsetCommit(stale)) else { panic!() };
    assert_eq!(r.topics[0].partitions[0].error_code, 25, "UNKNOWN_MEMBER_ID");
    let Response::TxnOffsetCommit(r) = c.call(3, Request::TxnOffsetCommit(t)) else { panic!() };
    assert_eq!(r.topics[0].partitions[0].error_code, 0);
    let fetch_offset = |c: &mut RawClient| {
        let mut f = OffsetFetchRequest::default();
        f.group_id = GroupId(StrBytes::from_static_str("g"));
        let mut t = OffsetFetchRequestTopic::default();
        t.name = name("txn-o");
        t.partition_indexes = vec![0];
        f.topics = Some(vec![t]);
        f.require_stable = true;
        let Response::OffsetFetch(r) = c.call(7, Request::OffsetFetch(f)) else { panic!() };
        let p = &r.topics[0].partitions[0];
        (p.error_code, p.committed_offset)
    };
    assert_eq!(fetch_offset(&mut c), (UNSTABLE_OFFSET_COMMIT, -1));
    assert_eq!(end(&mut c, "t-offsets", pid, epoch, true), 0);
    let deadline = Instant::now() + Duration::from_secs(20);
    while fetch_offset(&mut c) != (0, 17) {
        assert!(Instant::now() < deadline, "offset never committed: {:?}", fetch_offset(&mut c));
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_timed_out_transaction_is_aborted_and_its_producer_fenced() {
    let broker = BrokerProcess::start(&[
        "--override",
        "transaction.abort.timed.out.transaction.cleanup.interval.ms=100",
    ]);
    let mut c = RawClient::connect(broker.addr);
    ensure_topic(&mut c, "txn-t");
    let (pid, epoch) = init_ok(&mut c, "t-slow", 300);
    assert_eq!(add(&mut c, "t-slow", pid, epoch, &[("txn-t", 0)]), vec![0]);
    let (code, _) = produce(&mut c, "txn-t", transactional_batch(pid, epoch, 0, &["late"]), -1);
    assert_eq!(code, 0);
    let (_, bumped) = wait_for_state(&mut c, "t-slow", "CompleteAbort");
    assert_eq!(bumped, epoch + 1, "the abort bumped the epoch");
    assert_eq!(markers(&mut c, "txn-t"), vec![(false, pid)]);
    assert_eq!(end(&mut c, "t-slow", pid, epoch, true), PRODUCER_FENCED);
    assert_eq!(add(&mut c, "t-slow", pid, epoch, &[("txn-t", 0)]), vec![PRODUCER_FENCED]);
}

#[test]
fn the_coordinator_state_survives_a_restart_and_a_sigkill() {
    let mut broker = BrokerProcess::start(&[]);
    let mut c = RawClient::connect(broker.addr);
    ensure_topic(&mut c, "txn-r");
    let (pid, epoch) = init_ok(&mut c, "t-durable", 60_000);
    assert_eq!(add(&mut c, "t-durable", pid, epoch, &[("txn-r", 0)]), vec![0]);
    broker.stop();
    broker.restart();
    let mut c = RawClient::connect(broker.addr);
    let (pid2, epoch2) = wait_for_state(&mut c, "t-durable", "Ongoing");
    assert_eq!((pid2, epoch2), (pid, epoch));
    assert_eq!(describe(&mut c, "t-durable").4, vec![("txn-r".to_string(), 0)]);
    // A zombie fence across the crash: the re-init aborts the ongoing transaction.
    assert_eq!(init(&mut c, "t-durable", 60_000).0, CONCURRENT_TRANSACTIONS);
    broker.kill();
    broker.restart();
    let mut c = RawClient::connect(broker.addr);
    wait_for_state(&mut c, "t-durable", "CompleteAbort");
    assert_eq!(init_ok(&mut c, "t-durable", 60_000), (pid, epoch + 2));
    assert!(markers(&mut c, "txn-r").iter().all(|&(commit, p)| !commit && p == pid));
    assert!(!markers(&mut c, "txn-r").is_empty(), "the abort marker is in the partition");
}

/// KIP-890 part 1: a transactional batch opens a transaction in a partition only when the
/// coordinator has that partition in the producer's ongoing transaction, so no client can
/// leave a transaction hanging there (holding the last stable offset back for ever).
#[test]
fn a_transactional_batch_the_coordinator_does_not_know_of_is_refused() {
    let broker = BrokerProcess::start(&[]);
    let mut c = RawClient::connect(broker.addr);
    ensure_topic(&mut c, "txn-verify");
    let stray = transactional_batch(987_654, 0, 0, &["stray"]);
    assert_eq!(produce(&mut c, "txn-verify", stray, -1).0, 49, "INVALID_PRODUCER_ID_MAPPING");
    let (pid, epoch) = init_ok(&mut c, "tv", 60_000);
    let early = transactional_batch(pid, epoch, 0, &["before AddPartitionsToTxn"]);
    assert_eq!(produce(&mut c, "txn-verify", early, -1).0, INVALID_TXN_STATE);
    let stale = transactional_batch(pid, epoch + 1, 0, &["another epoch"]);
    assert_eq!(produce(&mut c, "txn-verify", stale, -1).0, 47, "INVALID_PRODUCER_EPOCH");
    assert_eq!(add(&mut c, "tv", pid, epoch, &[("txn-verify", 0)]), vec![0]);
    let ok = transactional_batch(pid, epoch, 0, &["in the transaction"]);
    assert_eq!(produce(&mut c, "txn-verify", ok, -1).0, 0);
    assert_eq!(end(&mut c, "tv", pid, epoch, true), 0);
    wait_for_state(&mut c, "tv", "CompleteCommit");
    // The transaction ended: a late batch of it cannot open another.
    let late = transactional_batch(pid, epoch, 1, &["after the commit"]);
    assert_eq!(produce(&mut c, "txn-verify", late, -1).0, INVALID_TXN_STATE);
    let mut l = RawClient::connect(broker.addr);
    let (_, hw, _) = fetch(&mut l, "txn-verify", 0);
    assert_eq!(hw, 2, "one record and its commit marker, nothing else");
}
