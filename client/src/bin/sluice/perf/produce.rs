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

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write as _};
use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use sluice_client::producer::{Producer, ProducerRecord};
use sluice_client::{ClientConfig, ClientError};

use super::{layered, metrics_table, no_transactions, Rng, TokenBucket};
use crate::cli::key_value;
use crate::delivery::{Outcomes, Tracker};
use crate::error::{client_line, CliError, Context as _, Result};
use crate::format::time::now_ms;

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
            let payloads: Vec<Bytes> = text
                .split(delimiter.as_str())
                .filter(|s| !s.is_empty())
                .map(|s| Bytes::from(s.to_string()))
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

/// The run's figures and, after the warm-up, the steady state's.
#[derive(Debug)]
struct Perf {
    total: Stats,
    /// Made when the first steady-state record is acknowledged.
    steady: Option<Stats>,
    steady_records: u64,
    /// When the first steady-state record was sent (the steady figures start there).
    steady_start: Arc<AtomicI64>,
}

impl Outcomes for Perf {
    fn sent(&mut self, _count: usize) {}

    fn settled(
        &mut self,
        latency_ms: i64,
        bytes: usize,
        outcome: Result<(), &ClientError>,
        now_ms: i64,
        steady: bool,
    ) {
        self.total.settled(latency_ms, bytes, outcome, now_ms);
        if steady && outcome.is_ok() {
            let (records, live) = (self.steady_records, self.total.live);
            let start = self.steady_start.load(Ordering::Relaxed);
            let total = &mut self.total;
            let stats = self.steady.get_or_insert_with(|| {
                // As Kafka: once the steady state has begun, only its 5 s lines print.
                total.suppressed = true;
                let mut steady = Stats::new(records, live, start);
                steady.steady = true;
                steady
            });
            stats.settled(latency_ms, bytes, outcome, now_ms);
        }
    }

    fn tick(&mut self, _now: Instant) {
        let mut out = std::io::stdout().lock();
        let _ = write!(out, "\r\x1b[K{}", self.total.live_line(now_ms()));
        let _ = out.flush();
    }
}

/// Kafka's `ProducerPerformance.Stats`: totals, the current 5 s window, and a sample of
/// latencies for the percentiles; times in wall-clock milliseconds, as Kafka's.
#[derive(Debug)]
struct Stats {
    live: bool,
    /// The steady state's figures (`--warmup-records`): `In steady state.` before the
    /// first 5 s line, `steady state` in the final one.
    steady: bool,
    /// No 5 s lines (the steady state's print instead).
    suppressed: bool,
    start_ms: i64,
    sampling: u64,
    latencies: Vec<i64>,
    iteration: u64,
    count: u64,
    bytes: u64,
    total_latency: i64,
    max_latency: i64,
    window: Window,
    failed: BTreeMap<String, u64>,
}

/// One reporting window.
#[derive(Debug)]
struct Window {
    start_ms: i64,
    count: u64,
    bytes: u64,
    total_latency: i64,
    max_latency: i64,
}

impl Window {
    fn new(start_ms: i64) -> Window {
        Window { start_ms, count: 0, bytes: 0, total_latency: 0, max_latency: 0 }
    }
}

/// Kafka's reporting interval, in ms.
const WINDOW_MS: i64 = 5000;

/// Milliseconds between two wall-clock times, as a divisor (at least 1: a rate over no
/// time is not a number worth printing).
fn elapsed(from_ms: i64, to_ms: i64) -> f64 {
    (to_ms - from_ms).max(1) as f64
}

impl Stats {
    fn new(records: u64, live: bool, start_ms: i64) -> Stats {
        let sampling = records / records.min(500_000);
        Stats {
            live,
            steady: false,
            suppressed: false,
            start_ms,
            sampling,
            latencies: Vec::with_capacity((records / sampling + 1) as usize),
            iteration: 0,
            count: 0,
            bytes: 0,
            total_latency: 0,
            max_latency: 0,
            window: Window::new(start_ms),
            failed: BTreeMap::new(),
        }
    }

    /// `N records sent, R records/sec (M MB/sec), A ms avg latency, X ms max latency.`
    fn window_line(&self, now_ms: i64) -> String {
        let w = &self.window;
        let ms = elapsed(w.start_ms, now_ms);
        format!(
            "{} records sent, {:.1} records/sec ({:.2} MB/sec), {:.1} ms avg latency, {:.1} ms max latency.",
            w.count,
            1000.0 * w.count as f64 / ms,
            1000.0 * w.bytes as f64 / ms / (1024.0 * 1024.0),
            w.total_latency as f64 / w.count as f64,
            w.max_latency as f64,
        )
    }

    /// The progress line on a terminal: the totals so far, the window's latencies.
    fn live_line(&self, now_ms: i64) -> String {
        let ms = elapsed(self.start_ms, now_ms);
        let w = &self.window;
        let avg = if w.count == 0 { 0.0 } else { w.total_latency as f64 / w.count as f64 };
        format!(
            "{} records sent, {:.1} records/sec ({:.2} MB/sec), {avg:.1} ms avg latency, {:.1} ms max latency",
            self.count,
            1000.0 * self.count as f64 / ms,
            1000.0 * self.bytes as f64 / ms / (1024.0 * 1024.0),
            w.max_latency as f64,
        )
    }

    /// The final line, after the percentiles of the sample.
    fn total_line(&self, now_ms: i64) -> String {
        let ms = elapsed(self.start_ms, now_ms);
        let mut sample = self.latencies.clone();
        sample.sort_unstable();
        let pct = |p: f64| sample.get((p * sample.len() as f64) as usize).copied().unwrap_or(0);
        format!(
            "{}{} records sent, {:.6} records/sec ({:.2} MB/sec), {:.2} ms avg latency, {:.2} ms max latency, {} ms 50th, {} ms 95th, {} ms 99th, {} ms 99.9th.",
            self.count,
            if self.steady { " steady state" } else { "" },
            1000.0 * self.count as f64 / ms,
            1000.0 * self.bytes as f64 / ms / (1024.0 * 1024.0),
            self.total_latency as f64 / self.count as f64,
            self.max_latency as f64,
            pct(0.5),
            pct(0.95),
            pct(0.99),
            pct(0.999),
        )
    }

    fn print_total(&self) {
        if self.live {
            print!("\r\x1b[K");
        }
        println!("{}", self.total_line(now_ms()));
    }

    /// A record settled: only acknowledged records count, as in Kafka.
    fn settled(
        &mut self,
        latency_ms: i64,
        bytes: usize,
        outcome: Result<(), &ClientError>,
        now_ms: i64,
    ) {
        // As Kafka: only acknowledged records count.
        if let Err(e) = outcome {
            *self.failed.entry(client_line(e)).or_default() += 1;
            return;
        }
        // The wall clock may step back between send and acknowledgement.
        let latency = latency_ms.max(0);
        self.count += 1;
        self.bytes += bytes as u64;
        self.total_latency += latency;
        self.max_latency = self.max_latency.max(latency);
        let w = &mut self.window;
        w.count += 1;
        w.bytes += bytes as u64;
        w.total_latency += latency;
        w.max_latency = w.max_latency.max(latency);
        if self.iteration.is_multiple_of(self.sampling) {
            self.latencies.push(latency);
        }
        self.iteration += 1;
        if now_ms - self.window.start_ms >= WINDOW_MS {
            if !self.live {
                if self.steady && self.count == self.window.count {
                    println!("In steady state.");
                }
                if !self.suppressed {
                    println!("{}", self.window_line(now_ms));
                }
            }
            self.window = Window::new(now_ms);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_follow_kafkas_formats() {
        let t0 = 1_714_979_289_123;
        let mut stats = Stats::new(1000, false, t0);
        for i in 0..1000 {
            stats.settled(i % 100 + 1, 100, Ok(()), t0);
        }
        let failed = ClientError::kafka(
            sluice_protocol::error_code::ErrorCode::MESSAGE_TOO_LARGE,
            None,
            "produce to t-0",
        );
        stats.settled(0, 100, Err(&failed), t0);
        let end = t0 + 2000;
        assert_eq!(
            stats.total_line(end),
            "1000 records sent, 500.000000 records/sec (0.05 MB/sec), 50.50 ms avg latency, \
             100.00 ms max latency, 51 ms 50th, 96 ms 95th, 100 ms 99th, 100 ms 99.9th."
        );
        assert_eq!(
            stats.window_line(end),
            "1000 records sent, 500.0 records/sec (0.05 MB/sec), 50.5 ms avg latency, 100.0 ms max latency."
        );
        assert_eq!(stats.failed.values().sum::<u64>(), 1, "a failure is not a record sent");
        stats.settled(7, 100, Ok(()), t0 + WINDOW_MS);
        assert_eq!(stats.window.count, 0, "a new window after 5 s");
    }

    #[test]
    fn the_steady_state_has_its_own_figures_after_the_warm_up() {
        let t0 = 1_714_979_289_123;
        let start = Arc::new(AtomicI64::new(0));
        let mut perf = Perf {
            total: Stats::new(10, false, t0),
            steady: None,
            steady_records: 6,
            steady_start: start.clone(),
        };
        for _ in 0..4 {
            perf.settled(100, 10, Ok(()), t0 + 10, false);
        }
        assert!(perf.steady.is_none() && !perf.total.suppressed);
        start.store(t0 + 1000, Ordering::Relaxed);
        let failed = ClientError::kafka(
            sluice_protocol::error_code::ErrorCode::MESSAGE_TOO_LARGE,
            None,
            "produce to t-0",
        );
        perf.settled(2, 10, Err(&failed), t0 + 2000, true);
        for _ in 0..6 {
            perf.settled(2, 10, Ok(()), t0 + 3000, true);
        }
        assert_eq!(perf.total.count, 10, "the whole run counts every record");
        assert!(perf.total.suppressed, "its 5 s lines stop once the steady state begins");
        let steady = perf.steady.as_ref().unwrap();
        assert_eq!(
            steady.total_line(t0 + 3000),
            "6 steady state records sent, 3.000000 records/sec (0.00 MB/sec), 2.00 ms avg \
             latency, 2.00 ms max latency, 2 ms 50th, 2 ms 95th, 2 ms 99th, 2 ms 99.9th."
        );
        assert!(perf.total.total_line(t0 + 3000).starts_with("10 records sent, "));
    }

    #[test]
    fn payload_pools_are_powers_of_two_within_64_mib() {
        for size in [1, 100, 65_536, 65_537, 100_000, 64 << 20, 100 << 20] {
            let n = pool_count(size);
            assert!(n.is_power_of_two() && (n == 1 || n * size <= 64 << 20), "{size}: {n}");
        }
        assert_eq!((pool_count(100), pool_count(100_000)), (1024, 512));
    }

    #[test]
    fn at_most_half_a_million_latencies_are_kept() {
        let mut stats = Stats::new(2_000_000, false, 0);
        assert_eq!(stats.sampling, 4);
        for i in 0..2_000_000 {
            stats.settled(i % 7, 1, Ok(()), 0);
        }
        assert_eq!(stats.latencies.len(), 500_000);
        assert_eq!(Stats::new(7, false, 0).sampling, 1);
    }
}
