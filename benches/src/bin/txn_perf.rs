//! Transactions' cost in sluice-client, in one run against one release `sluiced`:
//! 100-byte records, one partition, acks=all, linger.ms 5, batch.size 1 MB.
//!
//! ```text
//! cargo build --release --bin sluiced
//! cargo run --release -p sluice-benches --bin txn_perf [-- RECORDS]
//! ```
//!
//! Reports, with the ratios the issue sets targets for:
//! - produce: idempotent beside transactional (transactions of 1,000 records, each
//!   committed before the next begins), records/s; target 0.80x;
//! - consume the transactional topic from the beginning: read_uncommitted beside
//!   read_committed (the same records, COMMIT markers between them), records/s; target
//!   0.90x; and read_committed of a topic where one transaction in ten is aborted.
//!
//! Each phase runs twice, alternating the two sides; the better run of each is reported.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use sluice_benches::{cpu_seconds_of, Broker};
use sluice_client::consumer::Consumer;
use sluice_client::producer::{Producer, ProducerRecord};
use sluice_client::{ClientConfig, TopicPartition};

const RECORD: usize = 100;
const PAYLOAD: [u8; RECORD] = [b'x'; RECORD];
const PER_TXN: u64 = 1_000;

#[derive(Debug, Clone, Copy)]
struct Run {
    secs: f64,
    cpu: f64,
    records: u64,
}

impl Run {
    fn rate(&self) -> f64 {
        self.records as f64 / self.secs
    }
    fn line(&self, who: &str) -> String {
        format!(
            "{who:>22}: {:>10.0} records/s {:>7.1} MB/s, client CPU {:.3} s per million records",
            self.rate(),
            self.rate() * RECORD as f64 / 1e6,
            self.cpu / (self.records as f64 / 1e6)
        )
    }
    fn best(self, other: Run) -> Run {
        if other.rate() > self.rate() {
            other
        } else {
            self
        }
    }
}

fn config(bootstrap: &str) -> ClientConfig {
    ClientConfig::new().with("bootstrap.servers", bootstrap)
}

fn producer_config(bootstrap: &str) -> ClientConfig {
    config(bootstrap)
        .with("acks", "all")
        .with("enable.idempotence", "true")
        .with("linger.ms", "5")
        .with("batch.size", "1000000")
        .with("buffer.memory", "1073741824")
}

/// `n` records to `topic`, idempotent, or in transactions of [`PER_TXN`] under
/// `transactional_id` (one in `abort_every` aborted; 0: none).
async fn produce(
    bootstrap: &str,
    topic: &str,
    n: u64,
    transactional_id: Option<&str>,
    abort_every: u64,
) -> Run {
    let mut cfg = producer_config(bootstrap);
    if let Some(id) = transactional_id {
        cfg.set("transactional.id", id);
    }
    let producer = Producer::new(&cfg).unwrap();
    let topic: Arc<str> = topic.into();
    let record = || ProducerRecord::new(topic.clone(), Bytes::from_static(&PAYLOAD)).partition(0);
    if transactional_id.is_some() {
        producer.init_transactions().await.unwrap();
    }
    let (cpu0, start) = (cpu_seconds_of("self"), Instant::now());
    let mut sent = 0;
    let mut txn = 0;
    while sent < n {
        if transactional_id.is_some() {
            producer.begin_transaction().unwrap();
        }
        let batch = PER_TXN.min(n - sent);
        for _ in 0..batch {
            drop(producer.send(record()).await.unwrap());
        }
        sent += batch;
        txn += 1;
        if transactional_id.is_some() {
            if abort_every > 0 && txn % abort_every == 0 {
                producer.abort_transaction().await.unwrap();
            } else {
                producer.commit_transaction().await.unwrap();
            }
        }
    }
    producer.flush().await;
    let run =
        Run { secs: start.elapsed().as_secs_f64(), cpu: cpu_seconds_of("self") - cpu0, records: n };
    producer.close(Duration::from_secs(5)).await.unwrap();
    run
}

/// Reads `topic` from the beginning under `isolation` until `n` records arrived.
async fn consume(bootstrap: &str, topic: &str, n: u64, isolation: &str) -> Run {
    let cfg = config(bootstrap)
        .with("auto.offset.reset", "earliest")
        .with("isolation.level", isolation)
        .with("max.partition.fetch.bytes", "10485760")
        .with("max.poll.records", "100000");
    let mut c = Consumer::new(&cfg).unwrap();
    c.assign([TopicPartition::new(topic, 0)]);
    let (cpu0, start) = (cpu_seconds_of("self"), Instant::now());
    let mut got = 0u64;
    while got < n {
        for r in c.poll(Duration::from_secs(5)).await.unwrap() {
            std::hint::black_box(&r.value);
            got += 1;
        }
    }
    assert_eq!(got, n, "{isolation} read exactly the records it should");
    Run { secs: start.elapsed().as_secs_f64(), cpu: cpu_seconds_of("self") - cpu0, records: n }
}

fn main() {
    let n: u64 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(2_000_000);
    let n = n.div_ceil(PER_TXN) * PER_TXN;
    let broker = Broker::start(&[]);
    let bs = broker.bootstrap.clone();
    let rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let mut idem: Option<Run> = None;
        let mut txn: Option<Run> = None;
        for round in 0..2 {
            let i = produce(&bs, &format!("idem-{round}"), n, None, 0).await;
            let t =
                produce(&bs, &format!("txn-{round}"), n, Some(&format!("perf-{round}")), 0).await;
            idem = Some(idem.map_or(i, |r| r.best(i)));
            txn = Some(txn.map_or(t, |r| r.best(t)));
        }
        let (idem, txn) = (idem.unwrap(), txn.unwrap());
        println!("produce, {n} records of {RECORD} bytes, acks=all, transactions of {PER_TXN}");
        println!("{}\n{}", idem.line("idempotent"), txn.line("transactional"));
        println!("{:>22}  {:.2}x records/s (target 0.80x)", "ratio", txn.rate() / idem.rate());

        let mut ru: Option<Run> = None;
        let mut rc: Option<Run> = None;
        for _ in 0..2 {
            let u = consume(&bs, "txn-0", n, "read_uncommitted").await;
            let c = consume(&bs, "txn-0", n, "read_committed").await;
            ru = Some(ru.map_or(u, |r| r.best(u)));
            rc = Some(rc.map_or(c, |r| r.best(c)));
        }
        let (ru, rc) = (ru.unwrap(), rc.unwrap());
        println!("consume the transactional topic, {n} records, a COMMIT marker per {PER_TXN}");
        println!("{}\n{}", ru.line("read_uncommitted"), rc.line("read_committed"));
        println!("{:>22}  {:.2}x records/s (target 0.90x)", "ratio", rc.rate() / ru.rate());

        produce(&bs, "txn-mixed", n, Some("perf-mixed"), 10).await;
        let kept = n - n / PER_TXN / 10 * PER_TXN;
        let mixed = consume(&bs, "txn-mixed", kept, "read_committed").await;
        println!("{}", mixed.line("read_committed, 10% aborted"));
    });
}
