//! sluice-mirror between two real brokers: an exact copy through the library core,
//! the binary killed with SIGKILL and restarted (nothing missing, duplicates exactly the
//! re-sent records it reports), a target stopped for 5 s (caught up, RSS bounded), and
//! topics and partitions added at the source while it runs.

use std::collections::BTreeMap;
use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use sluice_client::admin::{Admin, NewTopic, OffsetSpec};
use sluice_client::consumer::Consumer;
use sluice_client::mirror::verify::{verify, PartitionReport};
use sluice_client::mirror::{Mirror, MirrorConfig, MirrorError, Summary, TopicFilter};
use sluice_client::producer::{Producer, ProducerRecord};
use sluice_client::TopicPartition;
use sluice_tests::{mirror_path, BrokerProcess};

use crate::rust_producer::{config, runtime};

const CODECS: [&str; 5] = ["gzip", "none", "zstd", "lz4", "snappy"];

fn create(rt: &tokio::runtime::Runtime, broker: &BrokerProcess, topic: &str, partitions: i32) {
    let admin = Admin::new(&config(broker, &[])).unwrap();
    let out =
        rt.block_on(admin.create_topics(&[NewTopic::new(topic).partitions(partitions)], false));
    out.unwrap()[0].1.as_ref().unwrap();
}

/// Keyed records `from..from + n` with headers, a fifth in each codec; `partition`
/// fixes it, else the key chooses.
fn produce(
    rt: &tokio::runtime::Runtime,
    broker: &BrokerProcess,
    topic: &str,
    from: usize,
    n: usize,
    value_bytes: usize,
    partition: Option<i32>,
) {
    let chunk = n.div_ceil(CODECS.len());
    for (c, codec) in CODECS.iter().enumerate() {
        let p = Producer::new(&config(broker, &[("compression.type", codec), ("linger.ms", "5")]))
            .unwrap();
        rt.block_on(async {
            let mut pending = Vec::new();
            for i in from + c * chunk..(from + (c + 1) * chunk).min(from + n) {
                let mut value = format!("value-{i}-").into_bytes();
                value.resize(value_bytes.max(value.len()), b'v');
                let mut r = ProducerRecord::new(topic, value)
                    .key(format!("key-{}", i % 1009))
                    .header("i", Some(Bytes::from(i.to_string())))
                    .header("codec", Some(Bytes::from_static(codec.as_bytes())))
                    .timestamp(1_700_000_000_000 + i as i64);
                if i % 7 == 0 {
                    r = r.header("empty", None);
                }
                if let Some(p) = partition {
                    r = r.partition(p);
                }
                pending.push(p.send(r).await.unwrap());
            }
            for d in pending {
                d.await.unwrap();
            }
            p.close(Duration::from_secs(10)).await.unwrap();
        });
    }
}

/// A record as read back, with the fields the mirror must keep.
type Rec = (i64, i64, Option<Bytes>, Option<Bytes>, Vec<(Bytes, Option<Bytes>)>);

/// Every record of `topic`, by partition, through the client's consumer.
fn read(
    rt: &tokio::runtime::Runtime,
    broker: &BrokerProcess,
    topic: &str,
) -> BTreeMap<i32, Vec<Rec>> {
    let ends = ends(rt, broker, topic);
    let mut consumer =
        Consumer::new(&config(broker, &[("auto.offset.reset", "earliest")])).unwrap();
    consumer.assign(ends.keys().map(|p| TopicPartition::new(topic, *p)));
    let mut out: BTreeMap<i32, Vec<Rec>> = ends.keys().map(|p| (*p, vec![])).collect();
    let total: i64 = ends.values().sum();
    let deadline = Instant::now() + Duration::from_secs(60);
    rt.block_on(async {
        while out.values().map(|v| v.len() as i64).sum::<i64>() < total {
            assert!(Instant::now() < deadline, "{topic}: not all records read");
            for r in consumer.poll(Duration::from_millis(500)).await.unwrap() {
                out.get_mut(&r.partition).unwrap().push((
                    r.offset,
                    r.timestamp,
                    r.key,
                    r.value,
                    r.headers,
                ));
            }
        }
    });
    out
}

/// Each partition's log end offset.
fn ends(rt: &tokio::runtime::Runtime, broker: &BrokerProcess, topic: &str) -> BTreeMap<i32, i64> {
    let admin = Admin::new(&config(broker, &[])).unwrap();
    rt.block_on(async {
        let Ok(listed) = admin.describe_topics(&[topic.to_string()]).await else {
            return BTreeMap::new();
        };
        let specs: Vec<_> = listed[0]
            .partitions
            .iter()
            .map(|p| (TopicPartition::new(topic, p.partition), OffsetSpec::Latest))
            .collect();
        let found = admin.list_offsets(&specs).await.unwrap();
        found.into_iter().map(|(tp, o)| (tp.partition, o.offset)).collect()
    })
}

/// Waits until every partition of each `(source, target)` topic pair holds at least as
/// many records on the target as on the source.
fn wait_caught_up(
    rt: &tokio::runtime::Runtime,
    source: &BrokerProcess,
    target: &BrokerProcess,
    pairs: &[(&str, &str)],
    within: Duration,
) {
    let deadline = Instant::now() + within;
    loop {
        let done = pairs.iter().all(|(s, t)| {
            let (from, to) = (ends(rt, source, s), ends(rt, target, t));
            from.iter().all(|(p, end)| to.get(p).is_some_and(|e| e >= end))
        });
        if done {
            return;
        }
        assert!(Instant::now() < deadline, "the mirror did not catch up within {within:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Waits until `group` has committed each partition of `topic` at the source's end: the
/// target acknowledged everything (a copy with duplicates can be as long without that).
fn wait_committed(
    rt: &tokio::runtime::Runtime,
    source: &BrokerProcess,
    group: &str,
    topic: &str,
    within: Duration,
) {
    let admin = Admin::new(&config(source, &[])).unwrap();
    let deadline = Instant::now() + within;
    let source_ends = ends(rt, source, topic);
    loop {
        let committed = rt.block_on(admin.list_consumer_group_offsets(group, None)).unwrap();
        let done = source_ends.iter().all(|(p, end)| {
            committed.get(&TopicPartition::new(topic, *p)).is_some_and(|om| om.offset >= *end)
        });
        if done {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{group} did not commit {topic}'s end within {within:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn mirror_config(source: &BrokerProcess, target: &BrokerProcess, topics: &str) -> MirrorConfig {
    let mut c = MirrorConfig::new(&source.bootstrap(), &target.bootstrap(), topics);
    c.refresh_interval = Duration::from_millis(300);
    c.commit_interval = Duration::from_millis(200);
    c
}

/// Runs `mirror` on the runtime until the returned sender is used or dropped.
fn spawn(
    rt: &tokio::runtime::Runtime,
    mirror: Mirror,
) -> (tokio::sync::oneshot::Sender<()>, tokio::task::JoinHandle<Result<Summary, MirrorError>>) {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let run = rt.spawn(async move {
        mirror
            .run(async {
                let _ = stopped.await;
            })
            .await
    });
    (stop, run)
}

fn verified(
    rt: &tokio::runtime::Runtime,
    source: &BrokerProcess,
    target: &BrokerProcess,
    topics: &str,
) -> Vec<PartitionReport> {
    let filter = TopicFilter::new(topics, None, "").unwrap();
    rt.block_on(verify(&config(source, &[]), &config(target, &[]), &filter)).unwrap()
}

#[test]
fn a_mirrored_topic_holds_the_sources_records_in_order_and_verify_agrees() {
    let (source, target) = (BrokerProcess::start(&[]), BrokerProcess::start(&[]));
    let rt = runtime();
    let _enter = rt.enter();
    create(&rt, &source, "orders", 6);
    produce(&rt, &source, "orders", 0, 100_000, 40, None);
    let mirror = Mirror::new(mirror_config(&source, &target, "orders")).unwrap();
    let (stop, run) = spawn(&rt, mirror);
    wait_caught_up(&rt, &source, &target, &[("orders", "orders")], Duration::from_secs(60));
    stop.send(()).unwrap();
    let summary = rt.block_on(run).unwrap().unwrap();
    assert_eq!(summary.totals.records, 100_000);
    assert_eq!(summary.totals.record_batches, 0, "every batch passed through");
    assert_eq!(summary.resent, Some(0));
    let (from, to) = (read(&rt, &source, "orders"), read(&rt, &target, "orders"));
    assert_eq!(from.len(), 6);
    for (p, records) in &from {
        assert!(!records.is_empty(), "partition {p} has records");
        // Fresh target, one batch for one batch: even the offsets are the source's.
        assert!(to[p] == *records, "partition {p} differs");
    }
    let reports = verified(&rt, &source, &target, "orders");
    assert_eq!(reports.len(), 6);
    assert!(reports.iter().all(|r| r.comparison.is_exact()), "{reports:?}");
    // Committed only what the target acknowledged, and all of it by the end.
    let admin = Admin::new(&config(&source, &[])).unwrap();
    let committed = rt.block_on(admin.list_consumer_group_offsets("sluice-mirror", None)).unwrap();
    let source_ends = ends(&rt, &source, "orders");
    for (tp, om) in committed {
        assert_eq!(om.offset, source_ends[&tp.partition], "{tp}");
    }
}

#[test]
fn a_mirror_into_the_same_cluster_without_a_prefix_is_refused() {
    let broker = BrokerProcess::start(&[]);
    let rt = runtime();
    let _enter = rt.enter();
    let mirror = Mirror::new(mirror_config(&broker, &broker, ".*")).unwrap();
    let err = rt.block_on(mirror.run(async {})).unwrap_err();
    assert!(matches!(err, MirrorError::SelfMirror { .. }), "{err}");
}

/// The binary, logging to a file, with the settings of `properties`.
fn start_binary(dir: &std::path::Path, properties: &str, run: usize) -> Child {
    let file = dir.join("mirror.properties");
    std::fs::write(&file, properties).unwrap();
    let log = std::fs::File::create(dir.join(format!("mirror-{run}.log"))).unwrap();
    Command::new(mirror_path())
        .arg("--config")
        .arg(&file)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start sluice-mirror")
}

fn log_of(dir: &std::path::Path, run: usize) -> String {
    let mut s = String::new();
    std::fs::File::open(dir.join(format!("mirror-{run}.log")))
        .unwrap()
        .read_to_string(&mut s)
        .unwrap();
    s
}

/// Sends SIGTERM and waits for the exit status.
fn terminate(mut child: Child) -> std::process::ExitStatus {
    // SAFETY: kill(2) with a pid we own; no memory is involved.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < deadline, "sluice-mirror ignored SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn the_binary_killed_three_times_loses_nothing_and_reports_what_it_sends_again() {
    let (source, target) = (BrokerProcess::start(&[]), BrokerProcess::start(&[]));
    let rt = runtime();
    let _enter = rt.enter();
    create(&rt, &source, "events", 6);
    produce(&rt, &source, "events", 0, 60_000, 60, None);
    let dir = tempfile::tempdir().unwrap();
    let properties = format!(
        "source={}\ntarget={}\ntopics=events\ngroup=kill-test\nmax.rate=20000rps\n\
         commit.interval.ms=200\nrefresh.interval.ms=500\n",
        source.bootstrap(),
        target.bootstrap()
    );
    for (run, millis) in [700u64, 1100, 900].into_iter().enumerate() {
        let mut child = start_binary(dir.path(), &properties, run);
        std::thread::sleep(Duration::from_millis(millis));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
    }
    let last = start_binary(dir.path(), &properties, 3);
    wait_committed(&rt, &source, "kill-test", "events", Duration::from_secs(30));
    let status = terminate(last);
    assert!(status.success(), "{status}: {}", log_of(dir.path(), 3));
    let reports = verified(&rt, &source, &target, "events");
    assert!(reports.iter().all(|r| r.comparison.is_complete()), "nothing missing: {reports:?}");
    let duplicates: u64 = reports.iter().map(|r| r.comparison.duplicates).sum();
    // Each restart said how many records past its last commit it would send again.
    let resent: u64 = (1..=3)
        .map(|run| {
            let log = log_of(dir.path(), run);
            let line = log.lines().find(|l| l.contains("resuming")).expect("a resume line");
            let n = line.split("resent=").nth(1).expect("resent= in the resume line");
            n.split(|c: char| !c.is_ascii_digit()).next().unwrap().parse::<u64>().unwrap()
        })
        .collect::<Vec<u64>>()
        .into_iter()
        .inspect(|n| assert!(*n <= 20_000, "at most ~1 s of the rate is past a commit: {n}"))
        .sum();
    eprintln!("{duplicates} duplicates after 3 kills");
    assert_eq!(duplicates, resent, "the duplicates are exactly the records reported re-sent");
    assert!(log_of(dir.path(), 3).contains("stopped; re-sent after the restart"));
}

fn vm_hwm_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn a_target_stopped_for_five_seconds_is_caught_up_with_bounded_memory() {
    let (source, target) = (BrokerProcess::start(&[]), BrokerProcess::start(&[]));
    let rt = runtime();
    let _enter = rt.enter();
    create(&rt, &source, "big", 6);
    // 80 MB of values: far more than the mirror may hold (8 MiB in flight).
    produce(&rt, &source, "big", 0, 20_000, 4000, None);
    let dir = tempfile::tempdir().unwrap();
    let properties = format!(
        "source={}\ntarget={}\ntopics=big\nmax.in.flight.bytes=8388608\n\
         source.fetch.max.bytes=4194304\ntarget.buffer.memory=16777216\nmax.rate=20MBps\n",
        source.bootstrap(),
        target.bootstrap()
    );
    let child = start_binary(dir.path(), &properties, 0);
    std::thread::sleep(Duration::from_secs(1));
    target.pause();
    std::thread::sleep(Duration::from_secs(5));
    target.resume();
    wait_committed(&rt, &source, "sluice-mirror", "big", Duration::from_secs(60));
    let hwm = vm_hwm_kib(child.id());
    let status = terminate(child);
    assert!(status.success(), "{status}: {}", log_of(dir.path(), 0));
    eprintln!("peak RSS {hwm} KiB");
    assert!(hwm < 100 * 1024, "peak RSS {hwm} KiB for 80 MB mirrored");
    let reports = verified(&rt, &source, &target, "big");
    assert!(reports.iter().all(|r| r.comparison.is_exact()), "{reports:?}");
    // Restart to learn whether it stopped cleanly: nothing is past the last commit.
    let again = start_binary(dir.path(), &properties, 1);
    std::thread::sleep(Duration::from_secs(2));
    assert!(terminate(again).success());
    assert!(log_of(dir.path(), 1).contains("resent=0"), "{}", log_of(dir.path(), 1));
}

#[test]
fn topics_and_partitions_added_at_the_source_are_mirrored() {
    let (source, target) = (BrokerProcess::start(&[]), BrokerProcess::start(&[]));
    let rt = runtime();
    let _enter = rt.enter();
    create(&rt, &source, "grow.a", 2);
    produce(&rt, &source, "grow.a", 0, 2_000, 20, None);
    let mut c = mirror_config(&source, &target, r"grow\..*");
    c.rename_prefix = "A.".into();
    let (stop, run) = spawn(&rt, Mirror::new(c).unwrap());
    wait_caught_up(&rt, &source, &target, &[("grow.a", "A.grow.a")], Duration::from_secs(30));
    create(&rt, &source, "grow.b", 3);
    produce(&rt, &source, "grow.b", 0, 3_000, 20, None);
    let admin = Admin::new(&config(&source, &[])).unwrap();
    let added = rt.block_on(admin.create_partitions(&[("grow.a".into(), 4)], false)).unwrap();
    added[0].1.as_ref().unwrap();
    produce(&rt, &source, "grow.a", 2_000, 500, 20, Some(3));
    let pairs = [("grow.a", "A.grow.a"), ("grow.b", "A.grow.b")];
    wait_caught_up(&rt, &source, &target, &pairs, Duration::from_secs(30));
    stop.send(()).unwrap();
    rt.block_on(run).unwrap().unwrap();
    assert_eq!(ends(&rt, &target, "A.grow.a").len(), 4, "partitions added on the target");
    assert_eq!(ends(&rt, &target, "A.grow.a")[&3], 500);
    let filter = TopicFilter::new(r"grow\..*", None, "A.").unwrap();
    let reports =
        rt.block_on(verify(&config(&source, &[]), &config(&target, &[]), &filter)).unwrap();
    assert_eq!(reports.len(), 7, "4 + 3 partitions");
    assert!(reports.iter().all(|r| r.comparison.is_exact()), "{reports:?}");
    // The binary's verify agrees, and fails where there is no copy.
    let verify_binary = |prefix: &str| {
        Command::new(mirror_path())
            .args(["verify", "--source", &source.bootstrap(), "--target", &target.bootstrap()])
            .args(["--topics", r"grow\..*", "--rename-prefix", prefix])
            .output()
            .unwrap()
    };
    let ok = verify_binary("A.");
    let stdout = String::from_utf8_lossy(&ok.stdout);
    assert!(
        ok.status.success() && stdout.contains("7 partitions, 5500 source records: target matches"),
        "{stdout}"
    );
    let missing = verify_binary("B.");
    let stdout = String::from_utf8_lossy(&missing.stdout);
    assert_eq!(missing.status.code(), Some(1), "{stdout}");
    // grow.a-2 is empty on both sides: the same.
    assert!(stdout.contains("5500 source records: 6 partitions differ"), "{stdout}");
    assert!(stdout.contains("B.grow.a-0: ") && stdout.contains("missing from source offset 0"));
}
