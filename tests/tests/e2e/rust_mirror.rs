//! sluice-mirror between two real brokers: an exact copy of a million records through
//! the library core, and one in record mode; the binary killed with SIGKILL and
//! restarted (nothing missing, duplicates exactly the re-sent records it reports), a
//! target stopped for 5 s (caught up, RSS bounded), topics and partitions added at the
//! source while it runs; group offsets translated into the target (a confluent-kafka
//! group resumes there at the next record, also from a restarted mirror's checkpoint);
//! two mirrors in opposite directions; a compacted source (its holes); the Prometheus
//! endpoint.

use std::collections::BTreeMap;
use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use sluice_client::admin::{Admin, ConfigResource, NewTopic, OffsetAndMetadata, OffsetSpec};
use sluice_client::consumer::Consumer;
use sluice_client::mirror::verify::{verify, PartitionReport};
use sluice_client::mirror::{
    checkpoint, Mirror, MirrorConfig, MirrorError, Mode, Summary, TopicFilter,
};
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

/// Keyed records `from..from + n` with headers, a fifth in each codec (one producer
/// per codec, all at once); `partition` fixes it, else the key chooses.
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
    let topic: std::sync::Arc<str> = topic.into();
    let producers: Vec<_> = CODECS
        .iter()
        .enumerate()
        .map(|(c, codec)| {
            let settings =
                [("compression.type", *codec), ("linger.ms", "5"), ("batch.size", "262144")];
            let p = Producer::new(&config(broker, &settings)).unwrap();
            let topic = topic.clone();
            rt.spawn(async move {
                let mut pending = Vec::new();
                for i in from + c * chunk..(from + (c + 1) * chunk).min(from + n) {
                    let mut value = format!("value-{i}-").into_bytes();
                    value.resize(value_bytes.max(value.len()), b'v');
                    let mut r = ProducerRecord::new(topic.clone(), value)
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
                p.close(Duration::from_secs(30)).await.unwrap();
            })
        })
        .collect();
    for p in producers {
        rt.block_on(p).unwrap();
    }
}

/// A record as read back, with the fields the mirror must keep.
type Rec = (i64, i64, Option<Bytes>, Option<Bytes>, Vec<(Bytes, Option<Bytes>)>);

/// Every record of `topic`, by partition, through the client's consumer, up to the end
/// offsets as of the call (a log may have holes: its positions, not its counts, say when).
fn read(
    rt: &tokio::runtime::Runtime,
    broker: &BrokerProcess,
    topic: &str,
) -> BTreeMap<i32, Vec<Rec>> {
    let ends = ends(rt, broker, topic);
    let mut consumer =
        Consumer::new(&config(broker, &[("auto.offset.reset", "earliest")])).unwrap();
    let tps: Vec<TopicPartition> = ends.keys().map(|p| TopicPartition::new(topic, *p)).collect();
    consumer.assign(tps.iter().cloned());
    let mut out: BTreeMap<i32, Vec<Rec>> = ends.keys().map(|p| (*p, vec![])).collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    rt.block_on(async {
        loop {
            let mut done = true;
            for tp in &tps {
                done &= consumer.position(tp).await.unwrap() >= ends[&tp.partition];
            }
            if done {
                break;
            }
            assert!(Instant::now() < deadline, "{topic}: not all records read");
            for r in consumer.poll(Duration::from_millis(500)).await.unwrap() {
                if r.offset < ends[&r.partition] {
                    let rec = (r.offset, r.timestamp, r.key, r.value, r.headers);
                    out.get_mut(&r.partition).unwrap().push(rec);
                }
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
    let start = Instant::now();
    produce(&rt, &source, "orders", 0, 1_000_000, 40, None);
    eprintln!("produced 1,000,000 records in {:?}", start.elapsed());
    let start = Instant::now();
    let mirror = Mirror::new(mirror_config(&source, &target, "orders")).unwrap();
    let (stop, run) = spawn(&rt, mirror);
    wait_caught_up(&rt, &source, &target, &[("orders", "orders")], Duration::from_secs(120));
    stop.send(()).unwrap();
    let summary = rt.block_on(run).unwrap().unwrap();
    eprintln!("mirrored in {:?}", start.elapsed());
    assert_eq!(summary.totals.records, 1_000_000);
    assert_eq!(summary.totals.record_batches, 0, "every batch passed through");
    assert_eq!(summary.resent, Some(0));
    let start = Instant::now();
    let (from, to) = (read(&rt, &source, "orders"), read(&rt, &target, "orders"));
    eprintln!("read both sides in {:?}", start.elapsed());
    assert_eq!(from.len(), 6);
    for (p, records) in &from {
        assert!(!records.is_empty(), "partition {p} has records");
        // Fresh target, one batch for one batch: even the offsets are the source's.
        assert!(to[p] == *records, "partition {p} differs");
    }
    let start = Instant::now();
    let reports = verified(&rt, &source, &target, "orders");
    eprintln!("verified in {:?}", start.elapsed());
    assert_eq!(reports.len(), 6);
    assert!(reports.iter().all(|r| r.comparison.is_exact()), "{reports:?}");
    let records: u64 = reports.iter().map(|r| r.comparison.source_records).sum();
    assert_eq!(records, 1_000_000);
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

/// A `sluice-mirror` process, killed when dropped (a failed test must not leave it
/// running: it would hold the brokers' ports and whatever descriptors it inherited).
struct Running(Child);

impl std::ops::Deref for Running {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for Running {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// The binary, logging to a file, with the settings of `properties`.
fn start_binary(dir: &std::path::Path, properties: &str, run: usize) -> Running {
    start_binary_with(dir, properties, run, &[])
}

/// As [`start_binary`], with flags after the config file.
fn start_binary_with(
    dir: &std::path::Path,
    properties: &str,
    run: usize,
    flags: &[&str],
) -> Running {
    let file = dir.join("mirror.properties");
    std::fs::write(&file, properties).unwrap();
    let log = std::fs::File::create(dir.join(format!("mirror-{run}.log"))).unwrap();
    Command::new(mirror_path())
        .arg("--config")
        .arg(&file)
        .args(flags)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .map(Running)
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
fn terminate(mut child: Running) -> std::process::ExitStatus {
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
    // 10,000 records/s after a second's burst, committed each second: every run is killed
    // mid-copy, the first and the last before their first interval's commit (only the
    // start positions are committed then) and the second 400 ms after it.
    let properties = format!(
        "source={}\ntarget={}\ntopics=events\ngroup=kill-test\nmax.rate=10000rps\n\
         commit.interval.ms=1000\nrefresh.interval.ms=500\n",
        source.bootstrap(),
        target.bootstrap()
    );
    for (run, millis) in [700u64, 1400, 900].into_iter().enumerate() {
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
        .inspect(|n| assert!(*n <= 25_000, "at most a burst and a run's rate past a commit: {n}"))
        .sum();
    eprintln!("{duplicates} duplicates after 3 kills");
    assert!(resent > 0, "a kill mid-copy leaves acknowledged records past the commit");
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
fn two_mirrors_in_opposite_directions_with_prefixes_copy_each_topic_once() {
    let (a, b) = (BrokerProcess::start(&[]), BrokerProcess::start(&[]));
    let rt = runtime();
    let _enter = rt.enter();
    create(&rt, &a, "orders", 2);
    produce(&rt, &a, "orders", 0, 2_000, 20, None);
    create(&rt, &b, "events", 3);
    produce(&rt, &b, "events", 0, 3_000, 20, None);
    // Every topic, no excludes: only the prefixes keep them apart.
    let mut a_to_b = mirror_config(&a, &b, ".*");
    a_to_b.rename_prefix = "A.".into();
    let mut b_to_a = mirror_config(&b, &a, ".*");
    b_to_a.rename_prefix = "B.".into();
    let (stop_ab, run_ab) = spawn(&rt, Mirror::new(a_to_b).unwrap());
    let (stop_ba, run_ba) = spawn(&rt, Mirror::new(b_to_a).unwrap());
    wait_caught_up(&rt, &a, &b, &[("orders", "A.orders")], Duration::from_secs(30));
    wait_caught_up(&rt, &b, &a, &[("events", "B.events")], Duration::from_secs(30));
    // Several refreshes, each of which would copy a copy back if it could.
    std::thread::sleep(Duration::from_millis(1500));
    stop_ab.send(()).unwrap();
    stop_ba.send(()).unwrap();
    rt.block_on(run_ab).unwrap().unwrap();
    rt.block_on(run_ba).unwrap().unwrap();
    let names = |broker: &BrokerProcess| {
        let admin = Admin::new(&config(broker, &[])).unwrap();
        let listed = rt.block_on(admin.list_topics(false)).unwrap();
        let mut names: Vec<String> = listed.into_iter().map(|t| t.name).collect();
        names.sort();
        names
    };
    assert_eq!(names(&a), ["B.events", "B.sluice-mirror.offset-syncs", "orders"]);
    assert_eq!(names(&b), ["A.orders", "A.sluice-mirror.offset-syncs", "events"]);
    let exact = |from: &BrokerProcess, to: &BrokerProcess, topics: &str, prefix: &str| {
        let filter = TopicFilter::new(topics, None, prefix).unwrap();
        let reports = rt.block_on(verify(&config(from, &[]), &config(to, &[]), &filter)).unwrap();
        assert!(
            !reports.is_empty() && reports.iter().all(|r| r.comparison.is_exact()),
            "{reports:?}"
        );
    };
    exact(&a, &b, "orders", "A.");
    exact(&b, &a, "events", "B.");
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

/// `n` records `{tag}-{partition}-{i}` into one partition, one by one.
fn put(
    rt: &tokio::runtime::Runtime,
    broker: &BrokerProcess,
    topic: &str,
    partition: i32,
    n: usize,
    tag: &str,
) {
    let p = Producer::new(&config(broker, &[])).unwrap();
    rt.block_on(async {
        let mut pending = Vec::new();
        for i in 0..n {
            let r =
                ProducerRecord::new(topic, format!("{tag}-{partition}-{i}")).partition(partition);
            pending.push(p.send(r).await.unwrap());
        }
        for d in pending {
            d.await.unwrap();
        }
        p.close(Duration::from_secs(10)).await.unwrap();
    });
}

/// Polls `f` every 200 ms until it returns something, failing after `within`.
fn wait_until<T>(what: &str, within: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "{what}: not within {within:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `group`'s committed offsets in `broker`'s cluster.
fn group_offsets(
    rt: &tokio::runtime::Runtime,
    broker: &BrokerProcess,
    group: &str,
) -> BTreeMap<TopicPartition, OffsetAndMetadata> {
    let admin = Admin::new(&config(broker, &[])).unwrap();
    rt.block_on(admin.list_consumer_group_offsets(group, None)).unwrap_or_default()
}

/// Commits `offsets` of `topic`'s partitions for `group` (without members) in `broker`'s cluster.
fn commit_group(
    rt: &tokio::runtime::Runtime,
    broker: &BrokerProcess,
    group: &str,
    topic: &str,
    offsets: &[i64],
) {
    let admin = Admin::new(&config(broker, &[])).unwrap();
    let offsets: Vec<_> = offsets
        .iter()
        .enumerate()
        .map(|(p, o)| (TopicPartition::new(topic, p as i32), OffsetAndMetadata::new(*o)))
        .collect();
    let out = rt.block_on(admin.alter_consumer_group_offsets(group, &offsets)).unwrap();
    assert!(out.values().all(Result::is_ok), "{out:?}");
}

/// Runs tests/interop/mirror_group.py; the "P OFFSET VALUE" lines it prints, by partition.
fn python_group(broker: &BrokerProcess, args: &[&str]) -> BTreeMap<i32, (i64, String)> {
    let stdout = crate::interop::python_with_args("mirror_group.py", broker, args);
    stdout
        .lines()
        .map(|l| {
            let mut f = l.splitn(3, ' ');
            let p = f.next().unwrap().parse().unwrap();
            let o = f.next().unwrap().parse().unwrap();
            (p, (o, f.next().unwrap().to_string()))
        })
        .collect()
}

fn value_of(r: &Rec) -> String {
    String::from_utf8_lossy(r.3.as_deref().unwrap_or_default()).into_owned()
}

#[test]
fn a_confluent_group_moved_to_the_target_resumes_at_the_record_after_its_last_on_the_source() {
    let (source, target) = (BrokerProcess::start(&[]), BrokerProcess::start(&[]));
    let rt = runtime();
    let _enter = rt.enter();
    create(&rt, &source, "orders", 6);
    produce(&rt, &source, "orders", 0, 12_000, 30, None);
    // No offset is the same on both sides: the source log starts past 0 and the target
    // topic holds records of its own. Identity translation would fail every partition.
    let admin = Admin::new(&config(&source, &[])).unwrap();
    let cut: Vec<_> =
        (0..6).map(|p| (TopicPartition::new("orders", p), 40 + 13 * i64::from(p))).collect();
    let cut_to = rt.block_on(admin.delete_records(&cut)).unwrap();
    assert!(cut_to.values().all(Result::is_ok), "{cut_to:?}");
    create(&rt, &target, "orders", 6);
    for p in 0..6 {
        put(&rt, &target, "orders", p, 100 + 9 * p as usize, "target-only");
    }
    // The group takes a different number of records from each partition: mid-topic.
    let taken: Vec<String> = (0..6).map(|p| (300 + 70 * p).to_string()).collect();
    let mut args = vec!["consume", "app-orders", "orders"];
    args.extend(taken.iter().map(String::as_str));
    let last = python_group(&source, &args);
    assert_eq!(last.len(), 6, "{last:?}");
    let dir = tempfile::tempdir().unwrap();
    let properties = format!(
        "source={}\ntarget={}\ntopics=orders\ncommit.interval.ms=200\nrefresh.interval.ms=500\n",
        source.bootstrap(),
        target.bootstrap()
    );
    let child = start_binary_with(dir.path(), &properties, 0, &["--sync-group-offsets", "app-.*"]);
    let synced = wait_until("app-orders synced to the target", Duration::from_secs(60), || {
        let c = group_offsets(&rt, &target, "app-orders");
        (c.len() == 6).then_some(c)
    });
    // A librdkafka member of the same group, on the target.
    let first = python_group(&target, &["first", "app-orders", "orders", "6"]);
    let source_records = read(&rt, &source, "orders");
    for p in 0..6 {
        let (last_offset, last_value) = &last[&p];
        let records = &source_records[&p];
        let at =
            records.iter().position(|r| r.0 == *last_offset).expect("the last record consumed");
        assert_eq!(value_of(&records[at]), *last_value);
        let (offset, value) = &first[&p];
        assert_eq!(
            *value,
            value_of(&records[at + 1]),
            "partition {p}: the record after the last one consumed"
        );
        assert_eq!(synced[&TopicPartition::new("orders", p)].offset, *offset);
        assert_ne!(*offset, last_offset + 1, "partition {p}: identity translation would pass");
    }
    // While librdkafka's member was there the mirror left the group alone, and lived.
    let status = terminate(child);
    let log = log_of(dir.path(), 0);
    assert!(status.success(), "{status}: {log}");
    assert!(log.contains("the target group has active members"), "{log}");
    assert_eq!(group_offsets(&rt, &target, "app-orders"), synced, "nothing moved since");
}

#[test]
fn a_restarted_mirror_syncs_offsets_mirrored_before_the_restart_from_its_checkpoint() {
    let (source, target) = (BrokerProcess::start(&[]), BrokerProcess::start(&[]));
    let rt = runtime();
    let _enter = rt.enter();
    create(&rt, &source, "events", 3);
    produce(&rt, &source, "events", 0, 3000, 20, None);
    create(&rt, &target, "events", 3);
    for p in 0..3 {
        put(&rt, &target, "events", p, 25, "target-only");
    }
    let (stop, run) = spawn(&rt, Mirror::new(mirror_config(&source, &target, "events")).unwrap());
    wait_committed(&rt, &source, "sluice-mirror", "events", Duration::from_secs(30));
    stop.send(()).unwrap();
    rt.block_on(run).unwrap().unwrap();
    // Committed after the first run stopped: only the checkpoint can translate it.
    let mid = [200, 300, 400];
    commit_group(&rt, &source, "app-late", "events", &mid);
    let mut c = mirror_config(&source, &target, "events");
    c.sync_group_offsets = Some("app-.*".into());
    let (stop, run) = spawn(&rt, Mirror::new(c).unwrap());
    let on_target = |expected: [i64; 3]| {
        wait_until(
            &format!("app-late at {expected:?} on the target"),
            Duration::from_secs(30),
            || {
                let c = group_offsets(&rt, &target, "app-late");
                let got: Vec<i64> = (0..3)
                    .filter_map(|p| c.get(&TopicPartition::new("events", p)).map(|o| o.offset))
                    .collect();
                (got == expected).then_some(())
            },
        )
    };
    on_target([225, 325, 425]);
    // The source group reset backwards: the target follows; then forwards again.
    commit_group(&rt, &source, "app-late", "events", &[50, 60, 70]);
    on_target([75, 85, 95]);
    commit_group(&rt, &source, "app-late", "events", &[500, 600, 700]);
    on_target([525, 625, 725]);
    stop.send(()).unwrap();
    let summary = rt.block_on(run).unwrap().unwrap();
    assert_eq!(summary.totals.records, 0, "nothing new was mirrored by the second run");
    assert_eq!(summary.totals.group_offsets_synced, 9);
    // The checkpoint: compacted, one partition, one key per source partition.
    let name = sluice_client::mirror::checkpoint::topic_name("");
    let admin = Admin::new(&config(&target, &[])).unwrap();
    let described = rt.block_on(admin.describe_configs(&[ConfigResource::topic(&name)])).unwrap();
    let entries = described[0].1.as_ref().unwrap();
    let policy = entries.iter().find(|e| e.name == "cleanup.policy").unwrap();
    assert_eq!(policy.value.as_deref(), Some("compact"));
    let records = read(&rt, &target, &name);
    assert_eq!(records.len(), 1, "one partition");
    let keys: std::collections::BTreeSet<_> = records[&0]
        .iter()
        .map(|r| {
            let change = checkpoint::decode(r.2.as_deref().unwrap(), r.3.as_deref()).unwrap();
            (change.tp, change.source_start)
        })
        .collect();
    let expected: std::collections::BTreeSet<_> =
        (0..3).map(|p| (TopicPartition::new("events", p), 0)).collect();
    assert_eq!(keys, expected);
    // And it is not mirrored itself, whatever the pattern.
    assert!(!TopicFilter::new(".*", None, "").unwrap().matches(&name));

    // As after a crash past these commits: the next run sends 100.., 150.., 200.. again,
    // and a group at or past them must read that copy, nothing twice.
    let rewound = [100, 150, 200];
    commit_group(&rt, &source, "sluice-mirror", "events", &rewound);
    let wanted = [50, 600, 700];
    commit_group(&rt, &source, "app-late", "events", &wanted);
    let source_ends = ends(&rt, &source, "events");
    let mut c = mirror_config(&source, &target, "events");
    c.sync_group_offsets = Some("app-.*".into());
    let (stop, run) = spawn(&rt, Mirror::new(c).unwrap());
    wait_committed(&rt, &source, "sluice-mirror", "events", Duration::from_secs(30));
    let expected: Vec<i64> = (0..3)
        .map(|p| {
            let (s, from) = (wanted[p as usize], rewound[p as usize]);
            if s < from {
                25 + s
            } else {
                25 + source_ends[&p] + (s - from)
            }
        })
        .collect();
    on_target(expected.clone().try_into().unwrap());
    stop.send(()).unwrap();
    rt.block_on(run).unwrap().unwrap();
    let (from, to) = (read(&rt, &source, "events"), read(&rt, &target, "events"));
    for p in 0..3 {
        let (s, t) = (wanted[p as usize], expected[p as usize]);
        let strip = |rs: &[Rec]| -> Vec<Rec> {
            rs.iter().map(|r| (0, r.1, r.2.clone(), r.3.clone(), r.4.clone())).collect()
        };
        let i = from[&p].iter().position(|r| r.0 >= s).unwrap();
        let j = to[&p].iter().position(|r| r.0 >= t).unwrap();
        if s >= rewound[p as usize] {
            assert!(
                strip(&from[&p][i..]) == strip(&to[&p][j..]),
                "partition {p}: read from {t}, each record once"
            );
        } else {
            // Below the resume point the target holds the records twice, as it is.
            assert_eq!(value_of(&from[&p][i]), value_of(&to[&p][j]));
            assert!(to[&p].len() - j > from[&p].len() - i, "partition {p}: duplicates follow");
        }
    }
}

#[test]
fn record_mode_copies_exactly_and_translates_each_records_offset() {
    let (source, target) = (BrokerProcess::start(&[]), BrokerProcess::start(&[]));
    let rt = runtime();
    let _enter = rt.enter();
    create(&rt, &source, "rec", 2);
    produce(&rt, &source, "rec", 0, 4000, 30, None);
    // Offsets differ between the sides: the source log starts at 30 and 70 (and the
    // target stays empty before, so that verify can call the copy exact).
    let admin = Admin::new(&config(&source, &[])).unwrap();
    let cut = [(TopicPartition::new("rec", 0), 30), (TopicPartition::new("rec", 1), 70)];
    let cut_to = rt.block_on(admin.delete_records(&cut)).unwrap();
    assert!(cut_to.values().all(Result::is_ok), "{cut_to:?}");
    // Below the log start (the first record mirrored), and mid-topic.
    let wanted = [5, 900];
    commit_group(&rt, &source, "app-rec", "rec", &wanted);
    let mut c = mirror_config(&source, &target, "rec");
    c.mode = Mode::Records;
    c.sync_group_offsets = Some("app-.*".into());
    let (stop, run) = spawn(&rt, Mirror::new(c).unwrap());
    wait_committed(&rt, &source, "sluice-mirror", "rec", Duration::from_secs(60));
    let synced = wait_until("app-rec on the target", Duration::from_secs(30), || {
        let c = group_offsets(&rt, &target, "app-rec");
        (c.len() == 2).then_some(c)
    });
    stop.send(()).unwrap();
    let summary = rt.block_on(run).unwrap().unwrap();
    let ends = ends(&rt, &source, "rec");
    let mirrored = ends[&0] - 30 + ends[&1] - 70;
    assert_eq!(summary.totals.records as i64, mirrored);
    assert_eq!(summary.totals.batches, 0, "no batch passed through");
    assert!(summary.totals.record_batches > 0);
    let (from, to) = (read(&rt, &source, "rec"), read(&rt, &target, "rec"));
    for p in 0..2 {
        let strip = |rs: &[Rec]| -> Vec<Rec> {
            rs.iter().map(|r| (0, r.1, r.2.clone(), r.3.clone(), r.4.clone())).collect()
        };
        assert!(strip(&from[&p]) == strip(&to[&p]), "partition {p}: the same records in order");
        // The first source record at or past the group's offset, and its copy's offset.
        let next = from[&p].iter().find(|r| r.0 >= wanted[p as usize]).unwrap();
        let copy = to[&p].iter().find(|r| value_of(r) == value_of(next)).unwrap();
        let got = synced[&TopicPartition::new("rec", p)].offset;
        assert_eq!(got, copy.0, "partition {p}: {} translated", wanted[p as usize]);
        assert_ne!(got, wanted[p as usize]);
    }
    let reports = verified(&rt, &source, &target, "rec");
    assert!(reports.iter().all(|r| r.comparison.is_exact()), "{reports:?}");
}

/// The text `GET path` gets from the mirror's metrics endpoint.
fn scrape(addr: &str, path: &str) -> String {
    use std::io::Write;
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

/// The value of the sample named exactly `series` (name and labels).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[test]
fn the_metrics_endpoint_reports_the_mirrors_counters_while_it_runs() {
    let (source, target) = (BrokerProcess::start(&[]), BrokerProcess::start(&[]));
    let rt = runtime();
    let _enter = rt.enter();
    create(&rt, &source, "m", 3);
    produce(&rt, &source, "m", 0, 3000, 30, None);
    commit_group(&rt, &source, "app-m", "m", &[100, 100, 100]);
    let dir = tempfile::tempdir().unwrap();
    let addr = format!("127.0.0.1:{}", sluice_tests::free_port());
    let properties = format!(
        "source={}\ntarget={}\ntopics=m\ncommit.interval.ms=200\n",
        source.bootstrap(),
        target.bootstrap()
    );
    let child = start_binary_with(
        dir.path(),
        &properties,
        0,
        &["--metrics", &addr, "--sync-group-offsets", "app-.*"],
    );
    wait_committed(&rt, &source, "sluice-mirror", "m", Duration::from_secs(30));
    let text = wait_until("lag 0 and the group synced", Duration::from_secs(30), || {
        let text = scrape(&addr, "/metrics");
        let caught_up = (0..3).all(|p| {
            sample(&text, &format!("sluice_mirror_lag_records{{topic=\"m\",partition=\"{p}\"}}"))
                == Some(0.0)
        });
        let synced = sample(&text, "sluice_mirror_group_offsets_synced_total") == Some(3.0);
        (caught_up && synced).then_some(text)
    });
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert!(text.contains("content-type: text/plain; version=0.0.4"), "{text}");
    let bytes = sample(&text, "sluice_mirror_bytes_total{topic=\"m\"}").unwrap();
    assert_eq!(sample(&text, "sluice_mirror_records_total{topic=\"m\"}"), Some(3000.0), "{text}");
    assert!(bytes > 0.0, "{text}");
    assert!(sample(&text, "sluice_mirror_batches_total{kind=\"passthrough\"}").unwrap() > 0.0);
    assert_eq!(sample(&text, "sluice_mirror_in_flight_bytes"), Some(0.0));
    assert_eq!(sample(&text, "sluice_mirror_resent_records"), Some(0.0));
    assert!(sample(&text, "sluice_mirror_commits_total").unwrap() >= 1.0);
    assert!(
        sample(&text, "sluice_mirror_offset_syncs_total").unwrap() >= 3.0,
        "a key per partition"
    );
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
    let last = sample(&text, "sluice_mirror_last_commit_timestamp_seconds").unwrap();
    assert!((now.as_secs_f64() - last).abs() < 60.0, "last commit at {last}, now {now:?}");
    // More records: the counters follow.
    produce(&rt, &source, "m", 3000, 1000, 30, None);
    wait_until("4000 records counted", Duration::from_secs(30), || {
        let text = scrape(&addr, "/metrics");
        let records = sample(&text, "sluice_mirror_records_total{topic=\"m\"}");
        let more =
            sample(&text, "sluice_mirror_bytes_total{topic=\"m\"}").is_some_and(|b| b > bytes);
        (records == Some(4000.0) && more).then_some(())
    });
    assert!(scrape(&addr, "/").starts_with("HTTP/1.1 404 "));
    let status = terminate(child);
    assert!(status.success(), "{status}: {}", log_of(dir.path(), 0));
}

#[test]
fn a_compacted_source_is_copied_record_for_record_and_offsets_in_its_holes_translate() {
    // Small segments and a cleaner that looks often, on the source.
    let fast = [
        "--override",
        "sluice.internal.log.segment.bytes=16384",
        "--override",
        "log.cleaner.backoff.ms=100",
    ];
    let (source, target) = (BrokerProcess::start(&fast), BrokerProcess::start(&[]));
    let rt = runtime();
    let _enter = rt.enter();
    let admin = Admin::new(&config(&source, &[])).unwrap();
    let table = NewTopic::new("table").partitions(2).config("cleanup.policy", "compact");
    rt.block_on(admin.create_topics(&[table], false)).unwrap()[0].1.as_ref().unwrap();
    // Uncompressed, so that the records fill many small segments to clean.
    let p = Producer::new(&config(&source, &[("batch.size", "4096")])).unwrap();
    rt.block_on(async {
        let mut pending = Vec::new();
        // Every third key is written once, the others twenty times: what is kept has
        // holes between records, not only before them.
        for round in 0..20 {
            for key in (0..300).filter(|k| round == 0 || k % 3 != 0) {
                let value = format!("key-{key}-round-{round}-{}", "v".repeat(60));
                let r = ProducerRecord::new("table", value).key(format!("key-{key}"));
                pending.push(p.send(r).await.unwrap());
            }
        }
        for d in pending {
            d.await.unwrap();
        }
        p.close(Duration::from_secs(10)).await.unwrap();
    });
    let source_ends = ends(&rt, &source, "table");
    // Both partitions cleaned, and no pass moves anything any more (the mirror must see
    // the source as verify sees it afterwards).
    let mut last = None;
    let compacted = wait_until("the source is compacted", Duration::from_secs(60), || {
        let records = read(&rt, &source, "table");
        let cleaned = records.iter().all(|(p, rs)| (rs.len() as i64) < source_ends[p] / 2);
        let kept: Vec<usize> = records.values().map(Vec::len).collect();
        let stable = cleaned && last.as_ref() == Some(&kept);
        last = Some(kept);
        std::thread::sleep(Duration::from_millis(500));
        stable.then_some(records)
    });
    // A group whose position lies in a hole of partition 0: the record after it is the
    // next one kept.
    let kept0 = &compacted[&0];
    let gap = kept0.windows(2).find(|w| w[1].0 > w[0].0 + 1).expect("a hole in partition 0");
    let (inside, next_kept) = (gap[0].0 + 1, gap[1].0);
    commit_group(&rt, &source, "app-compacted", "table", &[inside, source_ends[&1]]);
    let mut c = mirror_config(&source, &target, "table");
    c.sync_group_offsets = Some("app-.*".into());
    let (stop, run) = spawn(&rt, Mirror::new(c).unwrap());
    wait_committed(&rt, &source, "sluice-mirror", "table", Duration::from_secs(60));
    let translated = wait_until("the group is on the target", Duration::from_secs(30), || {
        let on_target = group_offsets(&rt, &target, "app-compacted");
        on_target.get(&TopicPartition::new("table", 0)).map(|om| om.offset)
    });
    stop.send(()).unwrap();
    rt.block_on(run).unwrap().unwrap();
    let reports = verified(&rt, &source, &target, "table");
    assert!(reports.iter().all(|r| r.comparison.is_exact()), "{reports:?}");
    // The copy has no holes, and the group resumes at the copy of the next kept record.
    let copy = read(&rt, &target, "table");
    for (p, records) in &copy {
        let offsets: Vec<i64> = records.iter().map(|r| r.0).collect();
        assert_eq!(offsets, (0..records.len() as i64).collect::<Vec<_>>(), "partition {p}");
    }
    let at = copy[&0].iter().find(|r| r.0 == translated).expect("a record at the offset");
    let source_next = kept0.iter().find(|r| r.0 == next_kept).unwrap();
    assert_eq!(value_of(at), value_of(source_next), "resumes at the next record kept");
}

/// A source topic with transactions: the mirror reads it read_committed, so the target
/// holds exactly the committed transactions' records (and the plain ones) and none of an
/// aborted one, while the mirror's commits reach the source's end (past the
/// markers).
#[test]
fn a_source_with_transactions_is_copied_without_its_aborted_records() {
    let (source, target) = (BrokerProcess::start(&[]), BrokerProcess::start(&[]));
    let rt = runtime();
    let _enter = rt.enter();
    create(&rt, &source, "txns", 2);
    let props =
        [("transactional.id", "mirrored-txns"), ("linger.ms", "5"), ("compression.type", "lz4")];
    let mut kept: BTreeMap<i32, Vec<String>> = BTreeMap::new();
    rt.block_on(async {
        let p = Producer::new(&config(&source, &props)).unwrap();
        p.init_transactions().await.unwrap();
        let plain = Producer::new(&config(&source, &[("linger.ms", "0")])).unwrap();
        for t in 0..20 {
            p.begin_transaction().unwrap();
            let mut sent = Vec::new();
            for i in 0..50 {
                let (partition, value) = (i % 2, format!("t{t}-{i}"));
                let r = ProducerRecord::new("txns", value.clone()).partition(partition);
                drop(p.send(r).await.unwrap());
                sent.push((partition, value));
            }
            let plain_value = format!("plain-{t}");
            plain
                .send(ProducerRecord::new("txns", plain_value.clone()).partition(0))
                .await
                .unwrap()
                .await
                .unwrap();
            kept.entry(0).or_default().push(plain_value);
            if t % 3 == 1 {
                p.abort_transaction().await.unwrap();
            } else {
                p.commit_transaction().await.unwrap();
                for (partition, value) in sent {
                    kept.entry(partition).or_default().push(value);
                }
            }
        }
        p.close(Duration::from_secs(10)).await.unwrap();
        plain.close(Duration::from_secs(10)).await.unwrap();
    });
    let mirror = Mirror::new(mirror_config(&source, &target, "txns")).unwrap();
    let (stop, run) = spawn(&rt, mirror);
    wait_committed(&rt, &source, "sluice-mirror", "txns", Duration::from_secs(60));
    stop.send(()).unwrap();
    rt.block_on(run).unwrap().unwrap();
    let copied = read(&rt, &target, "txns");
    for (p, want) in &kept {
        let mut got: Vec<String> = copied[p]
            .iter()
            .map(|r| String::from_utf8_lossy(r.3.as_deref().unwrap_or_default()).into_owned())
            .collect();
        let mut want = want.clone();
        // Plain records and transactions interleave on partition 0 by arrival, not by
        // commit: the records are compared as sets.
        got.sort_unstable();
        want.sort_unstable();
        assert_eq!(got.len(), want.len(), "partition {p}");
        assert!(got == want, "partition {p}: the target differs from the committed records");
        assert!(!got.iter().any(|v| v.starts_with("t1-") || v.starts_with("t4-")), "aborted");
    }
}
