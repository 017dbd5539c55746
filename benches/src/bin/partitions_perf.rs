//! Many partitions on one broker, in one run against one release `sluiced`: what a
//! partition costs in memory, descriptors and maps, in broker CPU per record, and at a
//! restart.
//!
//! ```text
//! cargo build --release --bin sluiced
//! cargo run --release -p sluice-benches --bin partitions_perf [-- TOPICS PARTITIONS RECORDS]
//! ```
//!
//! TOPICS topics of PARTITIONS partitions (default 10 × 1,000), RECORDS 100-byte records
//! per partition (default 150: one full 16 KiB batch each). Reports:
//! - produce to every partition, partition after partition so that each partition's
//!   batches fill as in the baseline, beside the same number of records produced to a
//!   topic of one partition in the same run: broker CPU per million records and the
//!   ratio (the issue's target: within 1.5×);
//! - consume every record back from the beginning;
//! - the broker's RSS, open descriptors and memory maps;
//! - the broker's CPU while idle, every partition open (its background ticks: flushes,
//!   producer expiry, retention);
//! - a clean stop and the start after it (to accepting connections), then a crash
//!   (SIGKILL) after records were appended to one partition in a hundred, and the start
//!   after that.
//!
//! The broker inherits this process's open-file limit, which the harness raises to the
//! hard limit first; the broker sizes its cache of open segment files from it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use sluice_benches::Broker;
use sluice_client::admin::{Admin, NewTopic};
use sluice_client::consumer::Consumer;
use sluice_client::producer::{Producer, ProducerRecord};
use sluice_client::{ClientConfig, TopicPartition};

const RECORD: usize = 100;
/// How long the idle broker's CPU is measured.
const IDLE: Duration = Duration::from_secs(10);
const PAYLOAD: [u8; RECORD] = [b'x'; RECORD];

fn arg(i: usize, default: u64) -> u64 {
    std::env::args().nth(i).and_then(|a| a.parse().ok()).unwrap_or(default)
}

/// Raises the soft open-file limit to the hard one, for the broker to inherit.
fn raise_nofile() -> u64 {
    let mut l = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit with a valid pointer to a local rlimit.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut l);
        l.rlim_cur = l.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &l);
    }
    l.rlim_cur
}

/// Process `pid`'s resources as one line: RSS (with its anonymous part: the page cache
/// pages it maps are the rest), open descriptors and memory maps.
fn resources(pid: u32) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let mib = |field: &str| -> f64 {
        let kib: f64 = status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0.0);
        kib / 1024.0
    };
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count());
    let maps =
        std::fs::read_to_string(format!("/proc/{pid}/maps")).map_or(0, |m| m.lines().count());
    format!(
        "RSS {:.0} MiB ({:.0} MiB anonymous), {fds} open descriptors, {maps} memory maps",
        mib("VmRSS:"),
        mib("RssAnon:")
    )
}

fn client(bootstrap: &str) -> ClientConfig {
    ClientConfig::new().with("bootstrap.servers", bootstrap)
}

/// Sends `per_partition` records to each of `partitions`, one partition after the other;
/// returns (seconds, broker CPU seconds).
async fn produce(
    broker: &Broker,
    partitions: &[(Arc<str>, i32)],
    per_partition: u64,
) -> (f64, f64) {
    let cfg = client(&broker.bootstrap)
        .with("acks", "1")
        .with("linger.ms", "5")
        .with("batch.size", "16384")
        .with("buffer.memory", "268435456");
    let producer = Producer::new(&cfg).unwrap();
    // Metadata for every topic before the clock starts.
    let mut topics: Vec<Arc<str>> = partitions.iter().map(|(t, _)| t.clone()).collect();
    topics.dedup();
    for t in &topics {
        producer
            .send_and_wait(ProducerRecord::new(t.clone(), Bytes::new()).partition(0))
            .await
            .unwrap();
    }
    let (cpu0, start) = (broker.cpu_seconds(), Instant::now());
    let mut pending = Vec::new();
    for (topic, p) in partitions {
        for _ in 0..per_partition {
            let r = ProducerRecord::new(topic.clone(), Bytes::from_static(&PAYLOAD)).partition(*p);
            pending.push(producer.send(r).await.unwrap());
        }
        if pending.len() > 100_000 {
            for d in pending.drain(..) {
                d.await.unwrap();
            }
        }
    }
    for d in pending {
        d.await.unwrap();
    }
    let run = (start.elapsed().as_secs_f64(), broker.cpu_seconds() - cpu0);
    producer.close(Duration::from_secs(10)).await.unwrap();
    run
}

/// Reads every partition from the beginning until `n` records arrived; returns seconds.
async fn consume(bootstrap: &str, partitions: &[(Arc<str>, i32)], n: u64) -> f64 {
    let cfg = client(bootstrap)
        .with("auto.offset.reset", "earliest")
        .with("fetch.max.bytes", "52428800")
        .with("max.poll.records", "100000");
    let mut c = Consumer::new(&cfg).unwrap();
    c.assign(partitions.iter().map(|(t, p)| TopicPartition::new(t.as_ref(), *p)));
    let start = Instant::now();
    let mut got = 0u64;
    let mut per: HashMap<(Arc<str>, i32), u64> = HashMap::new();
    while got < n {
        let records = c.poll(Duration::from_secs(10)).await.unwrap();
        assert!(
            !records.is_empty() || start.elapsed() < Duration::from_secs(600),
            "stalled at {got}"
        );
        for r in records {
            if !r.value.as_ref().is_some_and(|v| v.is_empty()) {
                got += 1;
                *per.entry((Arc::clone(&r.topic), r.partition)).or_default() += 1;
            }
        }
    }
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(got, n, "every record read once");
    assert_eq!(per.len(), partitions.len(), "every partition read");
    c.close().await.unwrap();
    secs
}

/// Seconds until the broker restarted by `start` answers a Metadata request.
async fn serving_after(broker: &Broker, started: Instant) -> f64 {
    let admin = Admin::new(&client(&broker.bootstrap)).unwrap();
    while admin.list_topics(false).await.is_err() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    admin.close().await;
    started.elapsed().as_secs_f64()
}

fn main() {
    let (topics, per_topic, records) = (arg(1, 10), arg(2, 1_000) as i32, arg(3, 150));
    let nofile = raise_nofile();
    let mut broker = Broker::start(&[]);
    let rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let partitions: Vec<(Arc<str>, i32)> = (0..topics)
        .flat_map(|t| {
            let name: Arc<str> = format!("many-{t}").into();
            (0..per_topic).map(move |p| (name.clone(), p))
        })
        .collect();
    let total = partitions.len() as u64 * records;
    println!(
        "{} partitions ({topics} topics × {per_topic}), {records} records of {RECORD} bytes each \
         ({total} records); open-file limit {nofile}",
        partitions.len()
    );
    rt.block_on(async {
        let admin = Admin::new(&client(&broker.bootstrap)).unwrap();
        let started = Instant::now();
        let mut new: Vec<NewTopic> =
            (0..topics).map(|t| NewTopic::new(format!("many-{t}")).partitions(per_topic)).collect();
        new.push(NewTopic::new("one").partitions(1));
        // One topic a request: the broker takes at most 10,000 new partitions in one.
        for topic in new {
            for (name, result) in admin.create_topics(&[topic], false).await.unwrap() {
                result.unwrap_or_else(|e| panic!("create {name}: {e}"));
            }
        }
        println!("create: {:.1} s", started.elapsed().as_secs_f64());
        admin.close().await;

        let one: Vec<(Arc<str>, i32)> = vec![("one".into(), 0)];
        let (base_secs, base_cpu) = produce(&broker, &one, total).await;
        let (secs, cpu) = produce(&broker, &partitions, records).await;
        let per_million = |cpu: f64| cpu / (total as f64 / 1e6);
        println!(
            "produce, 1 partition (baseline): {:>10.0} records/s, broker CPU {:.3} s per million records",
            total as f64 / base_secs,
            per_million(base_cpu)
        );
        println!(
            "produce, {} partitions:        {:>10.0} records/s, broker CPU {:.3} s per million records: {:.2}x the baseline (target 1.5x)",
            partitions.len(),
            total as f64 / secs,
            per_million(cpu),
            cpu / base_cpu
        );
        let secs = consume(&broker.bootstrap, &partitions, total).await;
        println!("consume every partition from the beginning: {:.0} records/s", total as f64 / secs);
    });
    println!("broker: {}", resources(broker.pid()));
    let (cpu0, idle) = (broker.cpu_seconds(), Instant::now());
    std::thread::sleep(IDLE);
    println!(
        "idle, every partition open: broker CPU {:.2} ms per second",
        (broker.cpu_seconds() - cpu0) * 1e3 / idle.elapsed().as_secs_f64()
    );

    let stop = broker.stop();
    let started = Instant::now();
    broker.restart();
    let serving = rt.block_on(serving_after(&broker, started));
    println!("clean stop {:.1} s, start after it {serving:.1} s", stop.as_secs_f64());

    rt.block_on(async {
        let some: Vec<(Arc<str>, i32)> = partitions.iter().step_by(100).cloned().collect();
        produce(&broker, &some, 10).await;
    });
    broker.kill();
    let started = Instant::now();
    broker.restart();
    let serving = rt.block_on(serving_after(&broker, started));
    println!(
        "start after SIGKILL (one partition in 100 appended to): {serving:.1} s; then {}",
        resources(broker.pid())
    );
}
