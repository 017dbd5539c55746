//! Transactions end to end (KIP-98, KIP-447): confluent-kafka, kafka-python and Kafka's
//! Java client against the broker's coordinator and read_committed fetches, and
//! sluice-client's transactional producer and read_committed consumer: many producers
//! interleaving transactions in one partition, aborted records inside compressed batches,
//! a consumer starting inside an aborted range, the last stable offset held by an open
//! transaction, zombie fencing, and SIGKILL of the broker in a stream of transactions.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sluice_client::admin::{Admin, NewTopic};
use sluice_client::consumer::{Consumer, ConsumerRecord};
use sluice_client::error::TransactionErrorKind;
use sluice_client::producer::{Producer, ProducerRecord};
use sluice_client::{ClientError, TopicPartition};
use sluice_protocol::error_code::ErrorCode;
use sluice_tests::BrokerProcess;

use crate::interop::{java, python_with_args};
use crate::rust_producer::{config, runtime};

/// The broker flags of these tests: timed-out transactions are looked for every 200 ms
/// (Kafka's default is 10 s), and groups form without the initial rebalance delay.
const BROKER_FLAGS: [&str; 4] = [
    "--override",
    "transaction.abort.timed.out.transaction.cleanup.interval.ms=200",
    "--override",
    "group.initial.rebalance.delay.ms=0",
];

fn broker() -> BrokerProcess {
    BrokerProcess::start(&BROKER_FLAGS)
}

#[test]
fn confluent_kafka_transactions() {
    let broker = broker();
    let out = python_with_args("confluent_txn.py", &broker, &["all"]);
    assert!(out.contains("confluent transactions OK"), "{out}");
}

#[test]
fn kafka_python_transactions() {
    let broker = broker();
    let out = python_with_args("kafka_python_txn.py", &broker, &[]);
    assert!(out.contains("kafka-python transactions OK"), "{out}");
}

#[test]
fn java_client_transactions() {
    let broker = broker();
    let out = java("JavaTransactions.java", &broker).output().expect("java runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("java transactions OK"),
        "JavaTransactions failed:\n{stdout}\n{}\nbroker log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        broker.log()
    );
}

/// A transactional producer of `id`, initialized.
async fn txn_producer(broker: &BrokerProcess, id: &str, extra: &[(&str, &str)]) -> Producer {
    let mut props = vec![("transactional.id", id), ("linger.ms", "5"), ("max.block.ms", "20000")];
    props.extend_from_slice(extra);
    let producer = Producer::new(&config(broker, &props)).unwrap();
    producer.init_transactions().await.unwrap();
    producer
}

async fn create_topic(broker: &BrokerProcess, topic: &str, partitions: i32) {
    let admin = Admin::new(&config(broker, &[])).unwrap();
    let topics = [NewTopic::new(topic).partitions(partitions)];
    for (name, outcome) in admin.create_topics(&topics, false).await.unwrap() {
        outcome.unwrap_or_else(|e| panic!("create {name}: {e}"));
    }
    admin.close().await;
}

/// Everything of `topic`'s `partitions` from `start` (the beginning when `None`) up to
/// the end a consumer of `isolation` sees now (the last stable offset with
/// read_committed, the high watermark otherwise).
async fn read(
    broker: &BrokerProcess,
    topic: &str,
    partitions: i32,
    isolation: &str,
    start: Option<i64>,
) -> Vec<ConsumerRecord> {
    let mut consumer = Consumer::new(&config(broker, &[("isolation.level", isolation)])).unwrap();
    let tps: Vec<TopicPartition> = (0..partitions).map(|p| TopicPartition::new(topic, p)).collect();
    consumer.assign(tps.iter().cloned());
    match start {
        Some(offset) => {
            for tp in &tps {
                consumer.seek(tp, offset).unwrap();
            }
        }
        None => consumer.seek_to_beginning(&tps).unwrap(),
    }
    let ends = consumer.end_offsets(&tps).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut out = Vec::new();
    loop {
        let mut done = true;
        for tp in &tps {
            done &= consumer.position(tp).await.unwrap() >= ends[tp];
        }
        if done {
            break;
        }
        assert!(Instant::now() < deadline, "{isolation} read of {topic} stuck before {ends:?}");
        out.extend(consumer.poll(Duration::from_millis(200)).await.unwrap());
    }
    consumer.close().await.unwrap();
    out
}

fn values(records: &[ConsumerRecord]) -> Vec<String> {
    records.iter().map(|r| r.value_str().unwrap_or("").to_string()).collect()
}

/// Whether transaction `t` of producer `p` is aborted in the interleaving tests.
fn aborts(p: usize, t: usize) -> bool {
    (p + t).is_multiple_of(3)
}

#[test]
fn interleaved_transactions_of_many_producers_in_one_partition_read_committed() {
    const PRODUCERS: usize = 4;
    const TXNS: usize = 12;
    const RECORDS: usize = 60;
    let broker = broker();
    let rt = runtime();
    rt.block_on(async {
        create_topic(&broker, "interleaved", 1).await;
        let codecs = ["none", "lz4", "zstd", "gzip"];
        let mut tasks = Vec::new();
        for (p, codec) in codecs.into_iter().enumerate() {
            let producer =
                txn_producer(&broker, &format!("interleaved-{p}"), &[("compression.type", codec)])
                    .await;
            tasks.push(tokio::spawn(async move {
                for t in 0..TXNS {
                    producer.begin_transaction().unwrap();
                    for i in 0..RECORDS {
                        let value = format!("p{p}-t{t}-r{i}");
                        drop(
                            producer
                                .send(ProducerRecord::new("interleaved", value).partition(0))
                                .await
                                .unwrap(),
                        );
                        if i % 20 == 19 {
                            // Several batches per transaction, interleaved with the
                            // other producers' batches.
                            tokio::task::yield_now().await;
                        }
                    }
                    if aborts(p, t) {
                        // Sent first: abort drops what is still unsent, and the log is
                        // to hold aborted records.
                        producer.flush().await;
                        producer.abort_transaction().await.unwrap();
                    } else {
                        producer.commit_transaction().await.unwrap();
                    }
                }
                producer.close(Duration::from_secs(10)).await.unwrap();
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        let committed = read(&broker, "interleaved", 1, "read_committed", None).await;
        let all = read(&broker, "interleaved", 1, "read_uncommitted", None).await;
        assert_eq!(all.len(), PRODUCERS * TXNS * RECORDS, "read_uncommitted sees every record");
        let mut by_producer: BTreeMap<usize, Vec<String>> = BTreeMap::new();
        for v in values(&committed) {
            let p: usize = v[1..v.find('-').unwrap()].parse().unwrap();
            by_producer.entry(p).or_default().push(v);
        }
        for p in 0..PRODUCERS {
            let want: Vec<String> = (0..TXNS)
                .filter(|&t| !aborts(p, t))
                .flat_map(|t| (0..RECORDS).map(move |i| format!("p{p}-t{t}-r{i}")))
                .collect();
            let got = by_producer.remove(&p).unwrap_or_default();
            assert_eq!(got.len(), want.len(), "producer {p}: committed records, once each");
            assert!(got == want, "producer {p}: exactly its committed records, in order");
        }
        assert!(committed.windows(2).all(|w| w[0].offset < w[1].offset), "offsets increase");
        // The batches really interleave: some aborted batch lies between committed ones.
        let first_aborted = all.iter().position(|r| {
            let v = r.value_str().unwrap();
            let p: usize = v[1..2].parse().unwrap();
            let t: usize = v[v.find("-t").unwrap() + 2..v.find("-r").unwrap()].parse().unwrap();
            aborts(p, t)
        });
        let first_aborted = all[first_aborted.expect("some records were aborted")].offset;
        assert!(committed.iter().any(|r| r.offset > first_aborted));
    });
}

#[test]
fn a_read_committed_consumer_starting_inside_an_aborted_range_gets_the_committed_records() {
    let broker = broker();
    let rt = runtime();
    rt.block_on(async {
        create_topic(&broker, "inside", 1).await;
        // Big compressed batches: the aborted transaction's records are inside them.
        let props = [("compression.type", "zstd"), ("linger.ms", "50")];
        let aborter = txn_producer(&broker, "inside-aborter", &props).await;
        let committer = txn_producer(&broker, "inside-committer", &props).await;
        let send = |p: &Producer, v: String| {
            let p = p.clone();
            async move { drop(p.send(ProducerRecord::new("inside", v).partition(0)).await.unwrap()) }
        };
        committer.begin_transaction().unwrap();
        for i in 0..100 {
            send(&committer, format!("c-before-{i}")).await;
        }
        committer.commit_transaction().await.unwrap();
        aborter.begin_transaction().unwrap();
        committer.begin_transaction().unwrap();
        for i in 0..300 {
            send(&aborter, format!("a-{i}")).await;
            if i % 3 == 0 {
                send(&committer, format!("c-during-{i}")).await;
            }
            if i % 50 == 49 {
                aborter.flush().await;
                committer.flush().await;
            }
        }
        committer.commit_transaction().await.unwrap();
        aborter.abort_transaction().await.unwrap();
        committer.begin_transaction().unwrap();
        for i in 0..100 {
            send(&committer, format!("c-after-{i}")).await;
        }
        committer.commit_transaction().await.unwrap();

        let all = read(&broker, "inside", 1, "read_uncommitted", None).await;
        let aborted: Vec<i64> =
            all.iter().filter(|r| r.value_str().unwrap().starts_with("a-")).map(|r| r.offset).collect();
        assert_eq!(aborted.len(), 300);
        for start in [aborted[0], aborted[150], aborted[299]] {
            let want: Vec<String> = all
                .iter()
                .filter(|r| r.offset >= start && r.value_str().unwrap().starts_with("c-"))
                .map(|r| r.value_str().unwrap().to_string())
                .collect();
            let got = read(&broker, "inside", 1, "read_committed", Some(start)).await;
            assert_eq!(values(&got), want, "read_committed from offset {start}");
        }
        let whole = read(&broker, "inside", 1, "read_committed", None).await;
        assert_eq!(whole.len(), 100 + 100 + 100, "the committed records, none aborted");
    });
}

#[test]
fn an_open_transaction_holds_the_last_stable_offset_until_it_ends() {
    let broker = broker();
    let rt = runtime();
    rt.block_on(async {
        create_topic(&broker, "lso", 1).await;
        let plain = Producer::new(&config(&broker, &[])).unwrap();
        let tp = TopicPartition::new("lso", 0);
        plain.send_and_wait(ProducerRecord::new("lso", "before").partition(0)).await.unwrap();
        let txn = txn_producer(&broker, "lso-txn", &[]).await;
        txn.begin_transaction().unwrap();
        let first =
            txn.send_and_wait(ProducerRecord::new("lso", "open").partition(0)).await.unwrap();
        plain.send_and_wait(ProducerRecord::new("lso", "after").partition(0)).await.unwrap();

        let committed =
            Consumer::new(&config(&broker, &[("isolation.level", "read_committed")])).unwrap();
        let lso = committed.end_offsets(std::slice::from_ref(&tp)).await.unwrap()[&tp];
        assert_eq!(lso, first.offset, "the LSO is the open transaction's first offset");
        let uncommitted = Consumer::new(&config(&broker, &[])).unwrap();
        let hw = uncommitted.end_offsets(std::slice::from_ref(&tp)).await.unwrap()[&tp];
        assert_eq!(hw, first.offset + 2);
        let visible = read(&broker, "lso", 1, "read_committed", None).await;
        assert_eq!(values(&visible), ["before"], "nothing past the LSO is served");

        txn.commit_transaction().await.unwrap();
        let visible = read(&broker, "lso", 1, "read_committed", None).await;
        assert_eq!(values(&visible), ["before", "open", "after"]);
        let lso = committed.end_offsets(std::slice::from_ref(&tp)).await.unwrap()[&tp];
        let hw = uncommitted.end_offsets(std::slice::from_ref(&tp)).await.unwrap()[&tp];
        assert_eq!(lso, hw, "no transaction open: the LSO is the high watermark");
        assert_eq!(hw, first.offset + 3, "the COMMIT marker takes an offset");
    });
}

/// The partitions the coordinator has in `id`'s transaction (DescribeTransactions).
fn partitions_in_transaction(addr: std::net::SocketAddr, id: &str) -> Vec<(String, i32)> {
    use kafka_protocol::messages::{DescribeTransactionsRequest, TransactionalId};
    use kafka_protocol::protocol::StrBytes;
    use sluice_protocol::messages::{Request, Response};
    let mut c = sluice_tests::RawClient::connect(addr);
    let mut r = DescribeTransactionsRequest::default();
    r.transactional_ids = vec![TransactionalId(StrBytes::from_string(id.to_owned()))];
    let Response::DescribeTransactions(r) = c.call(0, Request::DescribeTransactions(r)) else {
        panic!("describe transactions")
    };
    r.transaction_states[0]
        .topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| (t.topic.0.to_string(), *p)))
        .collect()
}

#[test]
fn a_partition_joins_the_transaction_while_its_first_batch_still_lingers() {
    let broker = broker();
    let rt = runtime();
    rt.block_on(async {
        create_topic(&broker, "eager", 2).await;
        let lingering = [("linger.ms", "60000"), ("batch.size", "1000000")];
        let txn = txn_producer(&broker, "eager-txn", &lingering).await;
        txn.begin_transaction().unwrap();
        let delivery = txn.send(ProducerRecord::new("eager", "v").partition(1)).await.unwrap();
        // The batch waits out a minute's linger; its partition is added at once.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let addr = broker.addr;
            let parts =
                tokio::task::spawn_blocking(move || partitions_in_transaction(addr, "eager-txn"))
                    .await
                    .unwrap();
            if parts == [("eager".to_owned(), 1)] {
                break;
            }
            assert!(Instant::now() < deadline, "partitions in the transaction: {parts:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        txn.commit_transaction().await.unwrap();
        assert_eq!(delivery.await.unwrap().partition, 1);
        let visible = read(&broker, "eager", 2, "read_committed", None).await;
        assert_eq!(values(&visible), ["v"]);
    });
}

#[test]
fn a_second_instance_fences_the_zombie_and_aborts_its_transaction() {
    let broker = broker();
    let rt = runtime();
    rt.block_on(async {
        create_topic(&broker, "zombie", 1).await;
        let zombie = txn_producer(&broker, "zombie-id", &[]).await;
        zombie.begin_transaction().unwrap();
        zombie
            .send_and_wait(ProducerRecord::new("zombie", "zombie-open").partition(0))
            .await
            .unwrap();
        let successor = txn_producer(&broker, "zombie-id", &[]).await;
        // The zombie can no longer commit: its epoch is fenced.
        let e = zombie.commit_transaction().await.unwrap_err();
        assert!(
            matches!(e, ClientError::Transaction { kind: TransactionErrorKind::Fatal, .. }),
            "{e}"
        );
        assert!(
            matches!(
                e.code(),
                Some(ErrorCode::PRODUCER_FENCED | ErrorCode::INVALID_PRODUCER_EPOCH)
            ),
            "{e}"
        );
        assert!(zombie.begin_transaction().is_err(), "a fenced producer stays unusable");
        successor.begin_transaction().unwrap();
        successor
            .send_and_wait(ProducerRecord::new("zombie", "successor").partition(0))
            .await
            .unwrap();
        successor.commit_transaction().await.unwrap();
        let visible = read(&broker, "zombie", 1, "read_committed", None).await;
        assert_eq!(values(&visible), ["successor"], "the zombie's open transaction was aborted");
    });
}

#[test]
fn offsets_sent_to_a_transaction_commit_with_it_and_only_then() {
    let broker = broker();
    let rt = runtime();
    rt.block_on(async {
        create_topic(&broker, "ctp-in", 1).await;
        create_topic(&broker, "ctp-out", 1).await;
        let plain = Producer::new(&config(&broker, &[])).unwrap();
        for i in 0..10 {
            drop(
                plain
                    .send(ProducerRecord::new("ctp-in", format!("in-{i}")).partition(0))
                    .await
                    .unwrap(),
            );
        }
        plain.flush().await;
        let group_config = config(
            &broker,
            &[
                ("group.id", "ctp"),
                ("enable.auto.commit", "false"),
                ("auto.offset.reset", "earliest"),
                ("isolation.level", "read_committed"),
            ],
        );
        let mut consumer = Consumer::new(&group_config).unwrap();
        consumer.subscribe(&["ctp-in"], None).unwrap();
        let mut got = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        while got.len() < 10 && Instant::now() < deadline {
            got.extend(consumer.poll(Duration::from_millis(200)).await.unwrap());
        }
        assert_eq!(got.len(), 10);
        let metadata = consumer.group_metadata().unwrap();
        assert!(metadata.generation_id > 0 && !metadata.member_id.is_empty(), "{metadata:?}");
        let producer = txn_producer(&broker, "ctp-txn", &[]).await;
        let tp = TopicPartition::new("ctp-in", 0);
        let offsets = [(tp.clone(), sluice_client::consumer::OffsetAndMetadata::new(10))];
        // First aborted: neither the output nor the offsets count.
        producer.begin_transaction().unwrap();
        drop(producer.send(ProducerRecord::new("ctp-out", "aborted").partition(0)).await.unwrap());
        producer.send_offsets_to_transaction(&offsets, &metadata).await.unwrap();
        producer.abort_transaction().await.unwrap();
        let committed = consumer.committed(std::slice::from_ref(&tp)).await.unwrap();
        assert!(!committed.contains_key(&tp), "aborted offsets are not committed: {committed:?}");
        producer.begin_transaction().unwrap();
        drop(
            producer.send(ProducerRecord::new("ctp-out", "committed").partition(0)).await.unwrap(),
        );
        producer.send_offsets_to_transaction(&offsets, &metadata).await.unwrap();
        producer.commit_transaction().await.unwrap();
        let committed = consumer.committed(std::slice::from_ref(&tp)).await.unwrap();
        assert_eq!(committed.get(&tp).map(|o| o.offset), Some(10));
        let out = read(&broker, "ctp-out", 1, "read_committed", None).await;
        assert_eq!(values(&out), ["committed"]);
        // A stale generation is refused (KIP-447): the transaction becomes abortable.
        let stale = sluice_client::producer::ConsumerGroupMetadata {
            generation_id: metadata.generation_id + 100,
            ..metadata.clone()
        };
        producer.begin_transaction().unwrap();
        let e = producer.send_offsets_to_transaction(&offsets, &stale).await.unwrap_err();
        assert!(
            matches!(e, ClientError::Transaction { kind: TransactionErrorKind::Abortable, .. }),
            "{e}"
        );
        assert!(producer.commit_transaction().await.is_err(), "an abortable transaction");
        producer.abort_transaction().await.unwrap();
        consumer.close().await.unwrap();
    });
}

/// A tiny deterministic generator (xorshift), seeded from the clock and printed, for
/// the kill points.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

#[test]
fn sigkill_of_the_broker_never_leaves_a_transaction_half_visible() {
    const PRODUCERS: usize = 3;
    const RECORDS: usize = 200;
    let mut broker = broker();
    let seed =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
            as u64
            | 1;
    println!("kill points seed {seed}");
    let mut rng = Rng(seed);
    let rt = runtime();
    rt.block_on(create_topic(&broker, "crash", 2));
    let stop = Arc::new(AtomicBool::new(false));
    // Each producer's loop reports (transaction, committed for sure).
    let mut loops = Vec::new();
    for p in 0..PRODUCERS {
        let stop = stop.clone();
        let cfg = config(
            &broker,
            &[
                ("transactional.id", &format!("crash-{p}")),
                ("transaction.timeout.ms", "5000"),
                ("linger.ms", "2"),
                ("compression.type", if p == 0 { "lz4" } else { "none" }),
                ("max.block.ms", "20000"),
                ("delivery.timeout.ms", "20000"),
                ("request.timeout.ms", "3000"),
                ("reconnect.backoff.max.ms", "200"),
            ],
        );
        loops.push(rt.spawn(async move {
            let mut outcome: Vec<(usize, bool)> = Vec::new();
            let mut producer: Option<Producer> = None;
            let mut t = 0;
            while !stop.load(Ordering::Acquire) {
                if producer.is_none() {
                    let fresh = Producer::new(&cfg).unwrap();
                    match fresh.init_transactions().await {
                        Ok(()) => producer = Some(fresh),
                        Err(_) => {
                            let _ = fresh.close(Duration::ZERO).await;
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            continue;
                        }
                    }
                }
                let pr = producer.as_ref().unwrap();
                t += 1;
                let attempt = async {
                    pr.begin_transaction()?;
                    for i in 0..RECORDS {
                        let v = format!("p{p}-t{t}-r{i}");
                        drop(
                            pr.send(ProducerRecord::new("crash", v).partition((i % 2) as i32))
                                .await?,
                        );
                    }
                    pr.commit_transaction().await
                };
                match attempt.await {
                    Ok(()) => outcome.push((t, true)),
                    Err(_) => {
                        outcome.push((t, false));
                        // Abort if it can; otherwise start over: init_transactions of
                        // the same id aborts what the old instance left open.
                        if pr.abort_transaction().await.is_err() {
                            let _ = pr.close(Duration::ZERO).await;
                            producer = None;
                        }
                    }
                }
            }
            if let Some(pr) = producer {
                pr.close(Duration::from_secs(10)).await.unwrap();
            }
            (p, outcome)
        }));
    }
    for _ in 0..4 {
        std::thread::sleep(Duration::from_millis(300 + rng.below(1500)));
        broker.kill();
        std::thread::sleep(Duration::from_millis(rng.below(300)));
        broker.restart_on_same_port();
    }
    std::thread::sleep(Duration::from_millis(1500));
    stop.store(true, Ordering::Release);
    let outcomes: Vec<(usize, Vec<(usize, bool)>)> =
        loops.into_iter().map(|l| rt.block_on(l).unwrap()).collect();
    rt.block_on(async {
        // Whatever was left open times out (5 s) or was aborted by a new instance: the LSO
        // reaches the high watermark.
        let deadline = Instant::now() + Duration::from_secs(30);
        let tps = [TopicPartition::new("crash", 0), TopicPartition::new("crash", 1)];
        let rc = Consumer::new(&config(&broker, &[("isolation.level", "read_committed")])).unwrap();
        let ru = Consumer::new(&config(&broker, &[])).unwrap();
        loop {
            let lso = rc.end_offsets(&tps).await.unwrap();
            let hw = ru.end_offsets(&tps).await.unwrap();
            if lso == hw {
                break;
            }
            assert!(Instant::now() < deadline, "the LSO is stuck: {lso:?} below {hw:?}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let visible = read(&broker, "crash", 2, "read_committed", None).await;
        let mut per_txn: HashMap<(usize, usize), Vec<usize>> = HashMap::new();
        for v in values(&visible) {
            let parts: Vec<&str> = v.split('-').collect();
            let p = parts[0][1..].parse().unwrap();
            let t = parts[1][1..].parse().unwrap();
            let i = parts[2][1..].parse().unwrap();
            per_txn.entry((p, t)).or_default().push(i);
        }
        let mut committed = 0;
        for (p, outcome) in &outcomes {
            for &(t, sure) in outcome {
                let mut seen = per_txn.remove(&(*p, t)).unwrap_or_default();
                seen.sort_unstable();
                if sure {
                    committed += 1;
                }
                if sure || !seen.is_empty() {
                    assert_eq!(
                        seen,
                        (0..RECORDS).collect::<Vec<_>>(),
                        "producer {p} transaction {t} (commit acknowledged: {sure}) is whole, \
                         each record once"
                    );
                }
            }
        }
        let attempted: usize = outcomes.iter().map(|(_, o)| o.len()).sum();
        println!("{committed} of {attempted} transactions acknowledged as committed");
        assert!(per_txn.is_empty(), "records of transactions never begun: {:?}", per_txn.keys());
        assert!(committed > 0, "some transactions committed across the kills");
    });
}
