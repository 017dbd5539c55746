//! `sluice perf produce`: Kafka's ProducerPerformance. Every 5 s (on a terminal: a live
//! line instead) `N records sent, R records/sec (M MB/sec), A ms avg latency, X ms max
//! latency.`, and at the end the same with six-decimal records/sec and the 50th, 95th,
//! 99th and 99.9th latency percentiles; records/sec and MB (2^20 bytes) per second as
//! Kafka computes them, latencies in whole milliseconds from send to acknowledgement, at
//! most 500,000 of them kept for the percentiles (every n/500,000-th, as Kafka samples).
//!
//! As Kafka 4's tool: `--warmup-records N` keeps a second set of figures for the records
//! sent after the first N (the steady state), which then prints the 5 s lines (after an
//! `In steady state.` line) and a final `M steady state records sent, ...` line after the
//! whole run's; `--print-metrics` prints the producer's metrics at the end. As Kafka's
//! tool, a transactional run (`--transactional-id`, `--transaction-duration-ms`, or
//! `transactional.id` in the producer properties) commits a transaction every
//! `--transaction-duration-ms` (3000 by default) and at the end; a broker that lacks
//! AddPartitionsToTxn or EndTxn is named before anything is sent.
//!
//! This file parses the flags and runs the sends; `stats.rs` keeps the figures and prints
//! their lines.

mod stats;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use sluice_client::producer::{Producer, ProducerRecord};
use sluice_client::ClientConfig;

use super::{layered, metrics_table, no_transactions, Rng, TokenBucket};
use crate::cli::key_value;
use crate::delivery::Tracker;
use crate::error::{CliError, Context as _, Result};
use crate::format::time::now_ms;
use stats::{Perf, Stats};

const EXAMPLES: &str = "\
Examples:
  sluice perf produce --topic bench --num-records 1000000 --record-size 100 --throughput -1 \\
      --producer-props acks=1 linger.ms=5 batch.size=1000000
  sluice perf produce --topic bench --num-records 50000 --payload-file lines.txt --throughput 5000

  sluice perf produce --topic bench --num-records 1100000 --record-size 100 --throughput -1 \\
      --warmup-records 100000 --print-metrics

  sluice perf produce --topic bench --num-records 1000000 --record-size 100 --throughput -1 \\
      --transactional-id perf-txn --transaction-duration-ms 100

--transaction-duration-ms alone uses the transactional id
performance-producer-default-transactional-id, as Kafka's tool.";

/// `sluice perf produce` flags (Kafka's names).
#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct Args {
    /// Produce to this topic.
    #[arg(long)]
    topic: String,
    /// How many records to produce.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    num_records: u64,
    #[command(flatten)]
    payload: PayloadArgs,
    /// What separates payloads in --payload-file.
    #[arg(long, default_value = "\\n")]
    payload_delimiter: String,
    /// At most this many records per second (a token bucket); -1: no limit.
    #[arg(long, allow_hyphen_values = true, default_value_t = -1.0)]
    throughput: f64,
    /// Producer properties (Java client names), winning over --producer.config.
    #[arg(long, num_args = 1.., value_name = "PROP-NAME=PROP-VALUE", value_parser = key_value)]
    producer_props: Vec<(String, String)>,
    /// Producer properties file.
    #[arg(long = "producer.config", alias = "producer-config", value_name = "CONFIG-FILE")]
    producer_config: Option<PathBuf>,
    /// Print the producer's metrics at the end.
    #[arg(long)]
    print_metrics: bool,
    /// The first N records are the warm-up: a second summary covers only those after.
    #[arg(long, value_name = "WARMUP-RECORDS", default_value_t = 0)]
    warmup_records: u64,
    /// Produce in transactions with this transactional id.
    #[arg(long, value_name = "TRANSACTIONAL-ID")]
    transactional_id: Option<String>,
    /// Commit a transaction after this many ms (default 3000 when transactional).
    #[arg(long, value_name = "TRANSACTION-DURATION", value_parser = clap::value_parser!(u64).range(1..))]
    transaction_duration_ms: Option<u64>,
}

#[derive(Debug, clap::Args)]
#[group(required = true, multiple = false)]
struct PayloadArgs {
    /// Each record's size in bytes (random upper-case letters).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    record_size: Option<u32>,
    /// Payloads chosen at random from this UTF-8 file, split at --payload-delimiter.
    #[arg(long)]
    payload_file: Option<PathBuf>,
    /// Each payload is the record's number: 0, 1, 2, ...
    #[arg(long)]
    payload_monotonic: bool,
}

/// Where payloads come from.
enum Payloads {
    /// Slices of one buffer of random letters, used in turn (random payloads per record,
    /// as Kafka makes them, would cost more than the send; a pool keeps them varied for
    /// compression without that).
    Pool(Vec<Bytes>),
    /// From the payload file, picked at random.
    File(Vec<Bytes>, Rng),
    /// The record's number.
    Monotonic,
}

impl Payloads {
    fn new(args: &Args) -> Result<Payloads> {
        let p = &args.payload;
        if let Some(size) = p.record_size {
            let size = size as usize;
            let count = pool_count(size);
            let mut rng = Rng::new(0x5eed);
            let letters: Vec<u8> = (0..size * count).map(|_| b'A' + rng.below(26) as u8).collect();
            // Leaked once (at most 64 MiB, for the life of the process): static payloads are
            // cloned without touching a reference count shared by every record.
            let letters: &'static [u8] = Box::leak(letters.into_boxed_slice());
            let pool = letters.chunks_exact(size).map(Bytes::from_static).collect();
            return Ok(Payloads::Pool(pool));
        }
        if let Some(path) = &p.payload_file {
            let shown = std::fs::canonicalize(path).unwrap_or_else(|_| path.clone());
            println!("Reading payloads from: {}", shown.display());
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("--payload-file {}", path.display()))?;
            let delimiter = args.payload_delimiter.replace("\\n", "\n");
            // Leaked once, as the random pool is: a static payload's clone and drop touch
            // no reference count shared by every record.
            let text: &'static str = Box::leak(text.into_boxed_str());
            let payloads: Vec<Bytes> = text
                .split(delimiter.as_str())
                .filter(|s| !s.is_empty())
                .map(|s| Bytes::from_static(s.as_bytes()))
                .collect();
            if payloads.is_empty() {
                return Err(CliError::Usage(format!(
                    "--payload-file {}: no payloads",
                    path.display()
                )));
            }
            println!("Number of messages read: {}", payloads.len());
            return Ok(Payloads::File(payloads, Rng::new(0)));
        }
        Ok(Payloads::Monotonic)
    }

    fn next(&mut self, i: u64) -> Bytes {
        match self {
            Payloads::Pool(pool) => pool[i as usize & (pool.len() - 1)].clone(),
            Payloads::File(payloads, rng) => payloads[rng.below(payloads.len())].clone(),
            Payloads::Monotonic => Bytes::from(i.to_string()),
        }
    }
}

/// How many random payloads of `size` bytes to make: up to 1024 and 64 MiB, and a power
/// of two, so that picking one in turn is a mask rather than a division.
fn pool_count(size: usize) -> usize {
    (((64 << 20) / size.max(1)).clamp(1, 1024) + 1).next_power_of_two() / 2
}

/// Runs `sluice perf produce`.
pub async fn run(config: &ClientConfig, args: Args) -> Result<()> {
    if !(args.throughput > 0.0 || args.throughput == -1.0) {
        return Err(CliError::Usage(format!(
            "--throughput {}: records per second above 0, or -1 for no limit",
            args.throughput
        )));
    }
    if args.warmup_records >= args.num_records {
        return Err(CliError::Usage(format!(
            "--warmup-records {}: must be fewer than --num-records {}",
            args.warmup_records, args.num_records
        )));
    }
    let mut config = layered(config, args.producer_config.as_deref(), &args.producer_props)?;
    let transactional = if args.transactional_id.is_some() {
        Some("--transactional-id")
    } else if args.transaction_duration_ms.is_some() {
        Some("--transaction-duration-ms")
    } else {
        config.get("transactional.id").map(|_| "transactional.id")
    };
    if let Some(what) = transactional {
        if let Some(e) = no_transactions(&config, what).await {
            return Err(e);
        }
    }
    // As Kafka's ProducerPerformance.
    let transactional_id = args
        .transactional_id
        .clone()
        .or_else(|| config.get("transactional.id").map(str::to_string))
        .or_else(|| transactional.map(|_| "performance-producer-default-transactional-id".into()));
    if let Some(id) = &transactional_id {
        config.set("transactional.id", id.as_str());
    }
    let transaction_duration = Duration::from_millis(args.transaction_duration_ms.unwrap_or(3000));
    if args.producer_props.iter().all(|(k, _)| k != "client.id")
        && config.get("client.id") == Some("sluice")
    {
        config.set("client.id", "perf-producer-client");
    }
    let mut payloads = Payloads::new(&args)?;
    let producer = Producer::new(&config)?;
    let topic: Arc<str> = args.topic.as_str().into();
    if transactional_id.is_some() {
        producer.init_transactions().await.context("init transactions")?;
    }
    let mut transaction_start: Option<Instant> = None;
    let live = std::io::stdout().is_terminal();
    let warmup = args.warmup_records;
    if warmup > 0 {
        println!(
            "Warmup first {warmup} records. Steady state results will print after the complete \
             test summary."
        );
    }
    let steady_start = Arc::new(AtomicI64::new(0));
    let perf = Perf {
        total: Stats::new(args.num_records, live, now_ms()),
        steady: None,
        steady_records: args.num_records - warmup,
        steady_start: steady_start.clone(),
    };
    let mut tracker = Tracker::start(perf, live.then_some(Duration::from_millis(500)));
    let mut bucket =
        (args.throughput > 0.0).then(|| TokenBucket::new(args.throughput, Instant::now()));
    let mut fatal = None;
    for i in 0..args.num_records {
        if let Some(bucket) = bucket.as_mut() {
            while let Some(wait) = bucket.take(Instant::now()) {
                // The records sent so far are seen to be acknowledged while this waits.
                tracker.flush().await;
                tokio::time::sleep(wait).await;
            }
        }
        if transactional_id.is_some() && transaction_start.is_none() {
            if let Err(source) = producer.begin_transaction() {
                fatal =
                    Some(CliError::Client { context: Some("begin a transaction".into()), source });
                break;
            }
            transaction_start = Some(Instant::now());
        }
        let value = payloads.next(i);
        let bytes = value.len();
        // One clock read per record, for both its timestamp and its latency.
        let sent = now_ms();
        if warmup > 0 && i == warmup {
            steady_start.store(sent, Ordering::Relaxed);
            tracker.begin_steady_state();
        }
        let record = ProducerRecord {
            topic: topic.clone(),
            partition: None,
            key: None,
            value: Some(value),
            headers: Vec::new(),
            timestamp: Some(sent),
        };
        match producer.send(record).await {
            Ok(delivery) => {
                if tracker.push(sent, bytes, delivery) {
                    tracker.flush().await;
                }
            }
            Err(source) => {
                fatal =
                    Some(CliError::Client { context: Some(format!("produce to {topic}")), source });
                break;
            }
        }
        if transaction_start.is_some_and(|at| at.elapsed() >= transaction_duration) {
            transaction_start = None;
            if let Err(source) = producer.commit_transaction().await {
                fatal =
                    Some(CliError::Client { context: Some("commit a transaction".into()), source });
                break;
            }
        }
    }
    if fatal.is_none() && transaction_start.is_some() {
        if let Err(source) = producer.commit_transaction().await {
            fatal = Some(CliError::Client { context: Some("commit a transaction".into()), source });
        }
    }
    producer.flush().await;
    let perf = tracker.finish().await;
    let metrics = args.print_metrics.then(|| producer.metrics());
    let closed = producer.close(Duration::from_secs(30)).await;
    perf.total.print_total();
    if let Some(steady) = &perf.steady {
        steady.print_total();
    }
    if let Some(metrics) = metrics {
        print!("{}", metrics_table(&metrics));
    }
    let stats = perf.total;
    for (error, n) in &stats.failed {
        let error = error.strip_prefix("error: ").unwrap_or(error);
        eprintln!("error: {n} records failed: {error}");
    }
    if let Some(e) = fatal {
        return Err(e);
    }
    closed?;
    if !stats.failed.is_empty() {
        return Err(CliError::Reported(format!("producing to {topic}")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_pools_are_powers_of_two_within_64_mib() {
        for size in [1, 100, 65_536, 65_537, 100_000, 64 << 20, 100 << 20] {
            let n = pool_count(size);
            assert!(n.is_power_of_two() && (n == 1 || n * size <= 64 << 20), "{size}: {n}");
        }
        assert_eq!((pool_count(100), pool_count(100_000)), (1024, 512));
    }
}
