//! sluice-mirror's throughput in one run, two release brokers on loopback, 100-byte
//! records, 6 partitions: the mirror passing batches through, the mirror forced to
//! records, and librdkafka producing the same records into the target (the producer-only
//! baseline).
//!
//! ```text
//! cargo build --release --bin sluiced
//! cargo run --release -p sluice-benches --features librdkafka --bin mirror_perf [-- RECORDS]
//! ```
//!
//! The mirror runs in this process, so its CPU per million records is this process's
//! CPU during the phase.

use std::time::{Duration, Instant};

use bytes::Bytes;
use rdkafka::config::ClientConfig as RdConfig;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer as _};
use sluice_benches::{cpu_seconds_of, Broker};
use sluice_client::admin::{Admin, NewTopic};
use sluice_client::mirror::{Mirror, MirrorConfig, Mode};
use sluice_client::producer::{Producer, ProducerRecord};
use sluice_client::ClientConfig;

const RECORD: usize = 100;
const PARTITIONS: i32 = 6;

fn main() {
    let n: u64 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(3_000_000);
    let (source, target) = (Broker::start(&[]), Broker::start(&[]));
    let rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        for (broker, topic) in [(&source, "bench"), (&target, "rd")] {
            let admin = Admin::new(
                &ClientConfig::new().with("bootstrap.servers", broker.bootstrap.as_str()),
            )
            .unwrap();
            admin
                .create_topics(&[NewTopic::new(topic).partitions(PARTITIONS)], false)
                .await
                .unwrap();
            admin.close().await;
        }
        fill(&source.bootstrap, n).await;
    });
    println!("{n} records of {RECORD} bytes in {PARTITIONS} partitions");
    let baseline = rd_produce(&target.bootstrap, n);
    report("librdkafka producing into the target (baseline)", n, baseline, None);
    for (mode, prefix) in [(Mode::Batches, "b."), (Mode::Records, "r.")] {
        let run = rt.block_on(mirror(&source, &target, mode, prefix, n));
        report(&format!("mirror, {mode:?}"), n, run, Some(baseline));
    }
}

/// (seconds, CPU seconds of this process).
type Run = (f64, f64);

fn report(what: &str, n: u64, (secs, cpu): Run, baseline: Option<Run>) {
    let mb = n as f64 * RECORD as f64 / secs / 1e6;
    let ratio = baseline
        .map(|(b, _)| format!(", {:.2}x the baseline's rate", b / secs))
        .unwrap_or_default();
    println!(
        "{what}: {:.0} records/s, {mb:.1} MB/s, CPU {:.3} s per million records{ratio}",
        n as f64 / secs,
        cpu / (n as f64 / 1e6)
    );
}

async fn fill(bootstrap: &str, n: u64) {
    let config = ClientConfig::new()
        .with("bootstrap.servers", bootstrap)
        .with("linger.ms", "5")
        .with("batch.size", "262144")
        .with("buffer.memory", "268435456");
    let producer = Producer::new(&config).unwrap();
    let topic: std::sync::Arc<str> = "bench".into();
    for i in 0..n {
        let r = ProducerRecord::new(topic.clone(), Bytes::from_static(&[b'x'; RECORD]))
            .partition((i % PARTITIONS as u64) as i32);
        drop(producer.send(r).await.unwrap());
    }
    producer.close(Duration::from_secs(60)).await.unwrap();
}

async fn mirror(source: &Broker, target: &Broker, mode: Mode, prefix: &str, n: u64) -> Run {
    let mut config = MirrorConfig::new(&source.bootstrap, &target.bootstrap, "bench");
    config.mode = mode;
    config.rename_prefix = prefix.to_string();
    config.group = format!("perf-{prefix}");
    config.target.set("linger.ms", "5");
    config.target.set("batch.size", "262144");
    let mirror = Mirror::new(config).unwrap();
    let stats = mirror.stats();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (cpu0, start) = (cpu_seconds_of("self"), Instant::now());
    let run = tokio::spawn(async move {
        mirror
            .run(async {
                let _ = stopped.await;
            })
            .await
    });
    while stats.snapshot().records < n {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let cpu = cpu_seconds_of("self") - cpu0;
    let _ = stop.send(());
    run.await.unwrap().unwrap();
    (elapsed, cpu)
}

fn rd_produce(bootstrap: &str, n: u64) -> Run {
    let p: BaseProducer = RdConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("linger.ms", "5")
        .set("batch.size", "1000000")
        .set("acks", "all")
        .set("queue.buffering.max.kbytes", "1048576")
        .set("queue.buffering.max.messages", "1000000")
        .set("delivery.report.only.error", "true")
        .create()
        .unwrap();
    let payload = [b'x'; RECORD];
    let (cpu0, start) = (cpu_seconds_of("self"), Instant::now());
    for i in 0..n {
        let partition = (i % PARTITIONS as u64) as i32;
        while p
            .send(BaseRecord::<(), [u8]>::to("rd").payload(&payload[..]).partition(partition))
            .is_err()
        {
            p.poll(Duration::from_millis(1));
        }
    }
    p.flush(Duration::from_secs(120)).unwrap();
    (start.elapsed().as_secs_f64(), cpu_seconds_of("self") - cpu0)
}
