//! sluice-client beside librdkafka (the `rdkafka` crate), in one run against one release
//! `sluiced`: 100-byte records, one partition, acks=1, the same batching for both
//! (linger.ms 5, batch.size 1 MB).
//!
//! ```text
//! cargo build --release --bin sluiced
//! cargo run --release -p sluice-benches --features librdkafka --bin client_perf [-- RECORDS]
//! ```
//!
//! Reports for each client, with the ratio sluice / librdkafka:
//! - produce, no compression then lz4: records/s, MB/s, client CPU per million records;
//! - consume from the beginning of what it produced: the same;
//! - produce-to-consume latency at 10,000 records/s for 5 s: p50 / p99 / p99.9.
//!
//! `SLUICE_PERF_ONLY=produce|consume|latency` runs one phase (consume also produces).
//! `SLUICE_PERF_CLI=target/release/sluice` also runs `sluice perf produce` and `sluice
//! perf consume` with the same settings in each phase, beside the library (the tool's
//! CPU is the whole process's, from getrusage of the finished child).

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rdkafka::config::ClientConfig as RdConfig;
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer as _};
use sluice_benches::{cpu_seconds_of, Broker};
use sluice_client::consumer::Consumer;
use sluice_client::producer::{Producer, ProducerRecord};
use sluice_client::{ClientConfig, TopicPartition};

const RECORD: usize = 100;
const PAYLOAD: [u8; RECORD] = [b'x'; RECORD];

/// One measured phase.
#[derive(Debug, Clone, Copy)]
struct Run {
    secs: f64,
    client_cpu: f64,
    records: u64,
}

impl Run {
    fn rate(&self) -> f64 {
        self.records as f64 / self.secs
    }
    fn line(&self, who: &str) -> String {
        format!(
            "{who:>10}: {:>10.0} records/s {:>7.1} MB/s, client CPU {:.3} s per million records",
            self.rate(),
            self.rate() * RECORD as f64 / 1e6,
            self.client_cpu / (self.records as f64 / 1e6)
        )
    }
}

fn own_cpu() -> f64 {
    cpu_seconds_of("self")
}

fn main() {
    let n: u64 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(3_000_000);
    let broker = Broker::start(&[]);
    let rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let only = std::env::var("SLUICE_PERF_ONLY").ok();
    let cli = std::env::var("SLUICE_PERF_CLI").ok();
    let run = |phase: &str| {
        only.as_deref().is_none_or(|o| o == phase || (o == "consume" && phase == "produce"))
    };
    for codec in ["none", "lz4"] {
        if !run("produce") {
            break;
        }
        let rd = rd_produce(&broker.bootstrap, &format!("rd-{codec}"), codec, n);
        let sl = rt.block_on(sluice_produce(&broker.bootstrap, &format!("sl-{codec}"), codec, n));
        println!("produce, compression {codec}, {n} records");
        println!("{}\n{}", rd.line("librdkafka"), sl.line("sluice"));
        if let Some(cli) = &cli {
            let tool = cli_produce(cli, &broker.bootstrap, &format!("cli-{codec}"), codec, n);
            println!("{}", tool.line("sluice perf"));
            println!("     tool / library: {:.2}x records/s", tool.rate() / sl.rate());
        }
        println!(
            "     ratio: {:.2}x records/s, {:.2}x CPU per record",
            sl.rate() / rd.rate(),
            (sl.client_cpu / sl.records as f64) / (rd.client_cpu / rd.records as f64)
        );
        if !run("consume") {
            continue;
        }
        let rd = rd_consume(&broker.bootstrap, &format!("rd-{codec}"), n);
        let sl = rt.block_on(sluice_consume(&broker.bootstrap, &format!("sl-{codec}"), n));
        println!("consume from the beginning, compression {codec}");
        println!("{}\n{}", rd.line("librdkafka"), sl.line("sluice"));
        if let Some(cli) = &cli {
            let tool = cli_consume(cli, &broker.bootstrap, &format!("sl-{codec}"), n);
            println!("{}", tool.line("sluice perf"));
            println!("     tool / library: {:.2}x records/s", tool.rate() / sl.rate());
        }
        println!(
            "     ratio: {:.2}x records/s, {:.2}x CPU per record",
            sl.rate() / rd.rate(),
            (sl.client_cpu / sl.records as f64) / (rd.client_cpu / rd.records as f64)
        );
    }
    if !run("latency") {
        return;
    }
    let rd = sluice_benches::rd::latencies(
        &broker.bootstrap,
        "rd-latency",
        10_000,
        Duration::from_secs(5),
    );
    let sl = rt.block_on(sluice_latency(&broker.bootstrap, 10_000, Duration::from_secs(5)));
    println!("produce-to-consume latency at 10,000 records/s");
    println!("librdkafka: {}", percentiles(rd));
    println!("    sluice: {}", percentiles(sl));
}

fn rd_producer(bootstrap: &str, codec: &str, linger: &str) -> BaseProducer {
    RdConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("linger.ms", linger)
        .set("batch.size", "1000000")
        .set("acks", "1")
        .set("compression.type", codec)
        .set("queue.buffering.max.kbytes", "1048576")
        .set("queue.buffering.max.messages", "1000000")
        .set("delivery.report.only.error", "true")
        .create()
        .expect("producer")
}

fn rd_produce(bootstrap: &str, topic: &str, codec: &str, n: u64) -> Run {
    let p = rd_producer(bootstrap, codec, "5");
    p.send(BaseRecord::<(), [u8]>::to(topic).payload(&PAYLOAD[..]).partition(0)).ok();
    p.flush(Duration::from_secs(10)).unwrap();
    let (cpu0, start) = (own_cpu(), Instant::now());
    for _ in 1..n {
        while p.send(BaseRecord::<(), [u8]>::to(topic).payload(&PAYLOAD[..]).partition(0)).is_err()
        {
            p.poll(Duration::from_millis(1));
        }
    }
    p.flush(Duration::from_secs(120)).unwrap();
    Run { secs: start.elapsed().as_secs_f64(), client_cpu: own_cpu() - cpu0, records: n - 1 }
}

fn sluice_config(bootstrap: &str) -> ClientConfig {
    ClientConfig::new().with("bootstrap.servers", bootstrap)
}

async fn sluice_produce(bootstrap: &str, topic: &str, codec: &str, n: u64) -> Run {
    let config = sluice_config(bootstrap)
        .with("acks", "1")
        .with("linger.ms", "5")
        .with("batch.size", "1000000")
        .with("compression.type", codec)
        .with("buffer.memory", "1073741824");
    let producer = Producer::new(&config).unwrap();
    let topic: Arc<str> = topic.into();
    let record = || ProducerRecord::new(topic.clone(), Bytes::from_static(&PAYLOAD)).partition(0);
    producer.send_and_wait(record()).await.unwrap();
    let (cpu0, start) = (own_cpu(), Instant::now());
    let mut sample = Vec::new();
    for i in 1..n {
        let delivery = producer.send(record()).await.unwrap();
        if i % 100_000 == 0 || i == n - 1 {
            sample.push(delivery);
        }
    }
    producer.flush().await;
    let secs = start.elapsed().as_secs_f64();
    for d in sample {
        d.await.expect("delivered");
    }
    let run = Run { secs, client_cpu: own_cpu() - cpu0, records: n - 1 };
    producer.close(Duration::from_secs(5)).await.unwrap();
    run
}

/// CPU seconds of this process's finished children.
fn children_cpu() -> f64 {
    // SAFETY: getrusage(2) fills the struct it is given; all-zero is a valid rusage.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: a valid pointer to an owned rusage.
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

/// Runs the CLI to the end; its stdout and the CPU it used.
fn run_cli(cli: &str, args: &[&str]) -> (String, f64) {
    let cpu0 = children_cpu();
    let out = std::process::Command::new(cli).args(args).output().expect("run the sluice CLI");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{cli} {args:?}: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (stdout, children_cpu() - cpu0)
}

/// `sluice perf produce` with the settings and payload of [`sluice_produce`] (a payload
/// file of that one record: the tool's own random letters compress far worse); its rate
/// from its final line ("N records sent, R records/sec ...").
fn cli_produce(cli: &str, bootstrap: &str, topic: &str, codec: &str, n: u64) -> Run {
    let (n_arg, codec_prop) = (n.to_string(), format!("compression.type={codec}"));
    let payload = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(payload.path(), PAYLOAD).unwrap();
    let payload_path = payload.path().to_str().unwrap();
    let settings = ["acks=1", "linger.ms=5", "batch.size=1000000", "buffer.memory=1073741824"];
    let mut args = vec!["perf", "produce", "--bootstrap-server", bootstrap, "--topic", topic];
    args.extend(["--num-records", &n_arg, "--payload-file", payload_path, "--throughput", "-1"]);
    args.push("--producer-props");
    args.extend(settings);
    args.push(&codec_prop);
    let (stdout, cpu) = run_cli(cli, &args);
    let last = stdout.lines().rfind(|l| l.contains("records sent")).expect("a final line");
    let rate: f64 =
        last.split(", ").nth(1).and_then(|f| f.split(' ').next()).unwrap().parse().unwrap();
    Run { secs: n as f64 / rate, client_cpu: cpu, records: n }
}

/// `sluice perf consume` of `topic` from the beginning, with the fetch settings of
/// [`sluice_consume`]; its rate is Kafka's fetch.nMsg.sec (the group join left out).
fn cli_consume(cli: &str, bootstrap: &str, topic: &str, n: u64) -> Run {
    let n_arg = n.to_string();
    let mut args = vec!["perf", "consume", "--bootstrap-server", bootstrap, "--topic", topic];
    args.extend(["--messages", &n_arg, "--fetch-size", "10485760", "--hide-header"]);
    args.extend(["--consumer-props", "max.poll.records=100000"]);
    let (stdout, cpu) = run_cli(cli, &args);
    let last = stdout.lines().last().expect("a final line");
    let fields: Vec<&str> = last.split(", ").collect();
    let fetch_ms: f64 = fields[7].parse().unwrap();
    let read: u64 = fields[4].parse().unwrap();
    Run { secs: fetch_ms / 1000.0, client_cpu: cpu, records: read }
}

fn rd_consume(bootstrap: &str, topic: &str, n: u64) -> Run {
    let c = sluice_benches::rd::bulk_consumer(bootstrap, topic);
    let (cpu0, start) = (own_cpu(), Instant::now());
    let mut got = 0u64;
    while got < n {
        if let Some(m) = c.poll(Duration::from_secs(5)) {
            std::hint::black_box(m.expect("consume").payload());
            got += 1;
        }
    }
    Run { secs: start.elapsed().as_secs_f64(), client_cpu: own_cpu() - cpu0, records: n }
}

async fn sluice_consume(bootstrap: &str, topic: &str, n: u64) -> Run {
    let config = sluice_config(bootstrap)
        .with("auto.offset.reset", "earliest")
        .with("max.partition.fetch.bytes", "10485760")
        .with("max.poll.records", "100000");
    let mut c = Consumer::new(&config).unwrap();
    c.assign([TopicPartition::new(topic, 0)]);
    let (cpu0, start) = (own_cpu(), Instant::now());
    let mut got = 0u64;
    while got < n {
        for r in c.poll(Duration::from_secs(5)).await.unwrap() {
            std::hint::black_box(&r.value);
            got += 1;
        }
    }
    Run { secs: start.elapsed().as_secs_f64(), client_cpu: own_cpu() - cpu0, records: n }
}

fn percentiles(mut lat: Vec<u64>) -> String {
    lat.sort_unstable();
    let pct = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)] as f64 / 1e6;
    format!(
        "p50 {:.3} ms, p99 {:.3} ms, p99.9 {:.3} ms ({} records)",
        pct(0.5),
        pct(0.99),
        pct(0.999),
        lat.len()
    )
}

async fn sluice_latency(bootstrap: &str, rate: u64, dur: Duration) -> Vec<u64> {
    let topic: Arc<str> = "sl-latency".into();
    let producer =
        Producer::new(&sluice_config(bootstrap).with("acks", "1").with("linger.ms", "0")).unwrap();
    producer
        .send_and_wait(ProducerRecord::new(topic.clone(), vec![0u8; 16]).partition(0))
        .await
        .unwrap();
    let mut c =
        Consumer::new(&sluice_config(bootstrap).with("auto.offset.reset", "latest")).unwrap();
    let tp = TopicPartition::new(topic.clone(), 0);
    c.assign([tp.clone()]);
    c.position(&tp).await.unwrap();
    let _ = c.poll(Duration::from_millis(500)).await;
    let epoch = Instant::now();
    let total = rate * dur.as_secs();
    let sender = tokio::spawn(async move {
        let interval = Duration::from_secs_f64(1.0 / rate as f64);
        for i in 0..total {
            tokio::time::sleep_until((epoch + interval * i as u32).into()).await;
            let record =
                ProducerRecord::new(topic.clone(), sluice_benches::rd::stamped(epoch).to_vec())
                    .partition(0);
            drop(producer.send(record).await.unwrap());
        }
        producer.flush().await;
    });
    let mut lat = Vec::with_capacity(total as usize);
    while (lat.len() as u64) < total {
        let records = c.poll(Duration::from_secs(5)).await.unwrap();
        if records.is_empty() && sender.is_finished() {
            break;
        }
        let now = epoch.elapsed().as_nanos() as u64;
        for r in records {
            if let Some(v) = r.value.filter(|v| v.len() == RECORD) {
                lat.push(now - u64::from_le_bytes(v[..8].try_into().unwrap()));
            }
        }
    }
    sender.await.unwrap();
    lat
}
