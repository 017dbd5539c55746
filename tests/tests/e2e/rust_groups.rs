//! sluice-client as a group member against the real broker: cooperative-sticky
//! rebalances from 2 to 3 members never give one partition to two members at once nor
//! lose one; a member killed with SIGKILL is expelled after its session timeout; a revoke
//! callback that commits makes the next owner resume exactly (nothing lost, nothing read
//! twice).

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sluice_client::consumer::{BoxFuture, Consumer, RebalanceListener};
use sluice_client::producer::{Producer, ProducerRecord};
use sluice_client::TopicPartition;
use sluice_protocol::messages::Request;
use sluice_tests::{BrokerProcess, RawClient};

use crate::client::create_request;
use crate::rust_producer::{config, runtime};

/// Who owns what, as the listeners report it; a double owner fails the test.
#[derive(Debug, Default)]
struct Owners {
    by_partition: BTreeMap<TopicPartition, usize>,
    violations: Vec<String>,
}

struct Tracker {
    id: usize,
    owners: Arc<Mutex<Owners>>,
    commit_on_revoke: bool,
}

impl RebalanceListener for Tracker {
    fn on_partitions_revoked<'a>(
        &'a mut self,
        consumer: &'a mut Consumer,
        partitions: &'a [TopicPartition],
    ) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            if self.commit_on_revoke {
                consumer.commit().await.expect("commit before the partitions move");
            }
            let mut owners = self.owners.lock().unwrap();
            for tp in partitions {
                if owners.by_partition.get(tp) == Some(&self.id) {
                    owners.by_partition.remove(tp);
                }
            }
        })
    }

    fn on_partitions_assigned<'a>(
        &'a mut self,
        _consumer: &'a mut Consumer,
        partitions: &'a [TopicPartition],
    ) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let mut owners = self.owners.lock().unwrap();
            for tp in partitions {
                if let Some(other) = owners.by_partition.insert(tp.clone(), self.id) {
                    if other != self.id {
                        owners
                            .violations
                            .push(format!("{tp} given to {} while {other} owned it", self.id));
                    }
                }
            }
        })
    }
}

fn create(broker: &BrokerProcess, topic: &str, partitions: i32) {
    let mut raw = RawClient::connect(broker.addr);
    raw.call(7, Request::CreateTopics(create_request(topic, partitions)));
}

/// A member polling in its own task until `stop`; returns the offsets it consumed.
fn member(
    broker: &BrokerProcess,
    rt: &tokio::runtime::Runtime,
    id: usize,
    owners: Arc<Mutex<Owners>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    group: &str,
) -> tokio::task::JoinHandle<Vec<(TopicPartition, i64)>> {
    let props = [
        ("group.id", group),
        ("partition.assignment.strategy", "cooperative-sticky"),
        ("auto.offset.reset", "earliest"),
        ("enable.auto.commit", "false"),
        ("session.timeout.ms", "10000"),
        ("heartbeat.interval.ms", "300"),
        ("max.poll.records", "50"),
    ];
    let mut consumer = Consumer::new(&config(broker, &props)).unwrap();
    let listener = Tracker { id, owners, commit_on_revoke: true };
    consumer.subscribe(&["grp"], Some(Box::new(listener))).unwrap();
    rt.spawn(async move {
        let mut seen = Vec::new();
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            for r in consumer.poll(Duration::from_millis(100)).await.unwrap() {
                seen.push((TopicPartition::new(r.topic.clone(), r.partition), r.offset));
            }
            consumer.commit().await.ok();
        }
        consumer.close().await.unwrap();
        seen
    })
}

fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn cooperative_sticky_moves_partitions_without_double_owners_and_commits_resume_exactly() {
    const N: i64 = 6000;
    let broker = BrokerProcess::start(&[]);
    create(&broker, "grp", 6);
    let rt = runtime();
    let _enter = rt.enter();
    let producer = Producer::new(&config(&broker, &[])).unwrap();
    let produce = |from: i64, to: i64| {
        rt.block_on(async {
            for i in from..to {
                drop(
                    producer
                        .send(ProducerRecord::new("grp", format!("{i}")).key(format!("k{i}")))
                        .await
                        .unwrap(),
                );
            }
            producer.flush().await;
        })
    };
    produce(0, N / 2);
    let owners = Arc::new(Mutex::new(Owners::default()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let owned_by = |owners: &Arc<Mutex<Owners>>| {
        let o = owners.lock().unwrap();
        let mut counts = BTreeMap::new();
        for id in o.by_partition.values() {
            *counts.entry(*id).or_insert(0) += 1;
        }
        (o.by_partition.len(), counts)
    };
    let a = member(&broker, &rt, 0, owners.clone(), stop.clone(), "g-coop");
    let b = member(&broker, &rt, 1, owners.clone(), stop.clone(), "g-coop");
    wait_for("2 members to share 6 partitions", Duration::from_secs(30), || {
        let (n, counts) = owned_by(&owners);
        n == 6 && counts.len() == 2 && counts.values().all(|&c| c == 3)
    });
    produce(N / 2, N * 2 / 3);
    let c = member(&broker, &rt, 2, owners.clone(), stop.clone(), "g-coop");
    wait_for("3 members with 2 partitions each", Duration::from_secs(30), || {
        let (n, counts) = owned_by(&owners);
        n == 6 && counts.len() == 3 && counts.values().all(|&c| c == 2)
    });
    produce(N * 2 / 3, N);
    // Let everything be consumed, then stop.
    std::thread::sleep(Duration::from_secs(3));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut seen: Vec<(TopicPartition, i64)> = Vec::new();
    for m in [a, b, c] {
        seen.extend(rt.block_on(m).unwrap());
    }
    let violations = owners.lock().unwrap().violations.clone();
    assert!(violations.is_empty(), "{violations:?}");
    let unique: BTreeSet<&(TopicPartition, i64)> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "no record is read twice: commits before each revoke");
    assert_eq!(seen.len() as i64, N, "nothing is lost");
    rt.block_on(producer.close(Duration::from_secs(5))).unwrap();
}

#[test]
fn a_member_killed_with_sigkill_is_expelled_after_its_session_timeout() {
    let broker = BrokerProcess::start(&[]);
    create(&broker, "grp", 4);
    let rt = runtime();
    let _enter = rt.enter();
    let bin = std::path::PathBuf::from(env!("CARGO_BIN_EXE_group_member"));
    let mut child = Command::new(bin)
        .args([broker.bootstrap().as_str(), "g-kill", "grp", "6000"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("group_member runs");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let owners = Arc::new(Mutex::new(Owners::default()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    // The outside member joins first and takes every partition, then shares them.
    loop {
        let line = lines.next().expect("output").unwrap();
        if line == "owned 4" {
            break;
        }
    }
    let survivor = member(&broker, &rt, 0, owners.clone(), stop.clone(), "g-kill");
    wait_for("the partitions to be shared", Duration::from_secs(30), || {
        owners.lock().unwrap().by_partition.len() == 2
    });
    unsafe_kill(child.id());
    let _ = child.wait();
    let killed = Instant::now();
    wait_for("the survivor to own everything", Duration::from_secs(30), || {
        owners.lock().unwrap().by_partition.len() == 4
    });
    let took = killed.elapsed();
    // Its session of 6 s has to pass first; the whole rebalance well within 2 sessions.
    assert!(took >= Duration::from_secs(5), "expelled after {took:?}, before the session ended");
    assert!(took < Duration::from_secs(20), "expelled after {took:?}");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    rt.block_on(survivor).unwrap();
}

fn unsafe_kill(pid: u32) {
    let status = Command::new("kill").args(["-9", &pid.to_string()]).status().unwrap();
    assert!(status.success());
}

/// Counts the listener's callbacks.
#[derive(Default)]
struct Counting {
    revoked: Arc<Mutex<Vec<TopicPartition>>>,
    assigned: Arc<Mutex<Vec<TopicPartition>>>,
}

impl RebalanceListener for Counting {
    fn on_partitions_revoked<'a>(
        &'a mut self,
        _consumer: &'a mut Consumer,
        partitions: &'a [TopicPartition],
    ) -> BoxFuture<'a, ()> {
        self.revoked.lock().unwrap().extend_from_slice(partitions);
        Box::pin(async {})
    }

    fn on_partitions_assigned<'a>(
        &'a mut self,
        _consumer: &'a mut Consumer,
        partitions: &'a [TopicPartition],
    ) -> BoxFuture<'a, ()> {
        self.assigned.lock().unwrap().extend_from_slice(partitions);
        Box::pin(async {})
    }
}

async fn poll_until_assigned(consumer: &mut Consumer, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while consumer.assignment().len() != n {
        assert!(Instant::now() < deadline, "no assignment of {n} partitions");
        consumer.poll(Duration::from_millis(100)).await.unwrap();
    }
}

#[test]
fn range_members_split_by_range_and_a_static_member_comes_back_to_its_partitions() {
    let broker = BrokerProcess::start(&[]);
    create(&broker, "grp", 4);
    let rt = runtime();
    let _enter = rt.enter();
    let props = |instance: &'static str| {
        config(
            &broker,
            &[
                ("group.id", "g-static"),
                ("group.instance.id", instance),
                ("partition.assignment.strategy", "range"),
                ("session.timeout.ms", "20000"),
                ("heartbeat.interval.ms", "300"),
            ],
        )
    };
    let b_listener = Counting::default();
    let (b_revoked, b_assigned) = (b_listener.revoked.clone(), b_listener.assigned.clone());
    let mut a = Consumer::new(&props("a")).unwrap();
    a.subscribe(&["grp"], None).unwrap();
    let mut b = Consumer::new(&props("b")).unwrap();
    b.subscribe(&["grp"], Some(Box::new(b_listener))).unwrap();
    rt.block_on(async {
        poll_until_assigned(&mut a, 4).await;
        // b joins: a must poll to take part in the rebalance.
        let joined = async { poll_until_assigned(&mut b, 2).await };
        let rejoin = async {
            let deadline = Instant::now() + Duration::from_secs(30);
            while a.assignment().len() != 2 && Instant::now() < deadline {
                a.poll(Duration::from_millis(100)).await.unwrap();
            }
        };
        tokio::join!(joined, rejoin);
    });
    // Range, static members ordered by instance id: "a" gets 0-1, "b" gets 2-3.
    let parts = |c: &Consumer| c.assignment().iter().map(|tp| tp.partition).collect::<Vec<_>>();
    assert_eq!((parts(&a), parts(&b)), (vec![0, 1], vec![2, 3]));
    let b_revokes_before = b_revoked.lock().unwrap().len();
    // "a" restarts: a static member leaves no LeaveGroup behind and comes back as itself.
    rt.block_on(a.close()).unwrap();
    let mut a = Consumer::new(&props("a")).unwrap();
    a.subscribe(&["grp"], None).unwrap();
    rt.block_on(async {
        poll_until_assigned(&mut a, 2).await;
        for _ in 0..5 {
            b.poll(Duration::from_millis(100)).await.unwrap();
        }
    });
    assert_eq!(parts(&a), vec![0, 1], "the static member gets its partitions back");
    assert_eq!(parts(&b), vec![2, 3]);
    assert_eq!(
        b_revoked.lock().unwrap().len(),
        b_revokes_before,
        "the other member was not rebalanced"
    );
    assert!(!b_assigned.lock().unwrap().is_empty());
}

#[test]
fn a_pattern_subscription_picks_up_topics_created_later() {
    let broker = BrokerProcess::start(&[]);
    create(&broker, "pat-a", 2);
    create(&broker, "other", 3);
    let rt = runtime();
    let _enter = rt.enter();
    let props = [
        ("group.id", "g-pattern"),
        ("metadata.max.age.ms", "300"),
        ("heartbeat.interval.ms", "300"),
    ];
    let mut consumer = Consumer::new(&config(&broker, &props)).unwrap();
    consumer.subscribe_pattern("pat-.*", None).unwrap();
    let topics = |c: &Consumer| {
        c.assignment().iter().map(|tp| tp.topic.to_string()).collect::<BTreeSet<_>>()
    };
    rt.block_on(poll_until_assigned(&mut consumer, 2));
    assert_eq!(topics(&consumer), BTreeSet::from(["pat-a".to_string()]));
    create(&broker, "pat-b", 2);
    rt.block_on(poll_until_assigned(&mut consumer, 4));
    assert_eq!(topics(&consumer), BTreeSet::from(["pat-a".to_string(), "pat-b".to_string()]));
}

#[test]
fn auto_commit_stores_the_position_every_interval_and_on_close() {
    let broker = BrokerProcess::start(&[]);
    create(&broker, "auto", 1);
    let rt = runtime();
    let _enter = rt.enter();
    let producer = Producer::new(&config(&broker, &[])).unwrap();
    rt.block_on(async {
        for i in 0..300 {
            drop(
                producer
                    .send(ProducerRecord::new("auto", format!("{i}")).partition(0))
                    .await
                    .unwrap(),
            );
        }
        producer.close(Duration::from_secs(5)).await.unwrap();
    });
    let tp = TopicPartition::new("auto", 0);
    let props = [
        ("group.id", "g-auto"),
        ("auto.offset.reset", "earliest"),
        ("auto.commit.interval.ms", "200"),
        ("max.poll.records", "100"),
    ];
    let mut consumer = Consumer::new(&config(&broker, &props)).unwrap();
    consumer.assign([tp.clone()]);
    rt.block_on(async {
        let mut got = 0;
        while got < 100 {
            got += consumer.poll(Duration::from_secs(1)).await.unwrap().len();
        }
        assert_eq!(got, 100, "max.poll.records");
        // The next poll after the interval commits what the last one returned.
        tokio::time::sleep(Duration::from_millis(250)).await;
        let _ = consumer.poll(Duration::from_millis(10)).await.unwrap();
        let committed = consumer.committed(std::slice::from_ref(&tp)).await.unwrap();
        assert!(committed[&tp].offset >= 100, "auto commit stored {}", committed[&tp].offset);
        while consumer.position(&tp).await.unwrap() < 300 {
            consumer.poll(Duration::from_millis(100)).await.unwrap();
        }
        consumer.close().await.unwrap();
    });
    let mut again = Consumer::new(&config(&broker, &props)).unwrap();
    again.assign([tp.clone()]);
    let committed = rt.block_on(again.committed(std::slice::from_ref(&tp))).unwrap();
    assert_eq!(committed[&tp].offset, 300, "close commits the final position");
}
