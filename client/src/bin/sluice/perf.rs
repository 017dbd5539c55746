//! `sluice perf produce|consume`: Kafka's kafka-producer-perf-test and
//! kafka-consumer-perf-test, with their options and output lines, so scripts that parse
//! Kafka's figures parse these. On a terminal, a live progress line takes the place of
//! the periodic lines.

pub mod consume;
pub mod produce;

use std::path::Path;
use std::time::{Duration, Instant};

use clap::Subcommand;
use sluice_client::metrics::Metric;
use sluice_client::ClientConfig;

use crate::cli::with_properties;
use crate::error::{CliError, Result};

/// `sluice perf` commands.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  sluice perf produce --topic bench --num-records 1000000 --record-size 100 \
    --throughput -1\n  sluice perf consume --topic bench --messages 1000000"
)]
pub struct Args {
    #[command(subcommand)]
    command: PerfCommand,
}

#[derive(Debug, Subcommand)]
enum PerfCommand {
    /// Produce records as fast as allowed; latency is send to acknowledgement.
    Produce(produce::Args),
    /// Consume records as a group member as fast as they come.
    Consume(consume::Args),
}

/// Runs a `sluice perf` command.
pub async fn run(config: &ClientConfig, args: Args) -> Result<()> {
    match args.command {
        PerfCommand::Produce(args) => produce::run(config, args).await,
        PerfCommand::Consume(args) => consume::run(config, args).await,
    }
}

/// `config`, then the properties of `file` (Kafka's `--producer.config`), then `props`
/// (`--producer-props`, which win, as in Kafka).
fn layered(
    config: &ClientConfig,
    file: Option<&Path>,
    props: &[(String, String)],
) -> Result<ClientConfig> {
    let mut config = config.clone();
    if let Some(path) = file {
        for (k, v) in ClientConfig::from_properties_file(path)?.iter() {
            config.set(k, v);
        }
    }
    Ok(with_properties(&config, props))
}

/// Why a transactional perf run (`what`: the option that asked for one) cannot run, if
/// it cannot: the first broker whose ApiVersions lacks AddPartitionsToTxn or EndTxn
/// (KIP-98's APIs a transactional producer needs).
pub async fn no_transactions(config: &ClientConfig, what: &str) -> Option<CliError> {
    use sluice_protocol::api_key::ApiKey;
    // The transactional producer's properties (transactional.id, transaction.timeout.ms)
    // are none of the admin client's.
    let mut admin = ClientConfig::new();
    for (k, v) in config.iter().filter(|(k, _)| !k.starts_with("transaction")) {
        admin.set(k, v);
    }
    let (cluster, versions) = match crate::cluster::broker_versions(&admin).await {
        Ok(found) => found,
        Err(e) => return Some(e),
    };
    for (broker, table) in cluster.brokers.iter().zip(&versions) {
        let missing: Vec<&str> =
            [(ApiKey::AddPartitionsToTxn, "AddPartitionsToTxn"), (ApiKey::EndTxn, "EndTxn")]
                .iter()
                .filter(|(api, _)| table.advertised(*api).is_none())
                .map(|(_, name)| *name)
                .collect();
        if !missing.is_empty() {
            return Some(CliError::Unsupported(format!(
                "{what}: the broker at {} does not support transactions (its ApiVersions has \
                 no {})",
                broker.addr,
                missing.join(" or ")
            )));
        }
    }
    None
}

/// Kafka's `ToolsUtils.printMetrics` (`--print-metrics`): a blank line, a header, then one
/// line per metric, `group:name:{tag=value, ...}` padded to the longest, ` : `, and the
/// value with three decimals, sorted by that name.
pub fn metrics_table(metrics: &[Metric]) -> String {
    let mut rows: Vec<(String, f64)> = metrics
        .iter()
        .map(|m| {
            let tags: Vec<String> = m.tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
            (format!("{}:{}:{{{}}}", m.group, m.name, tags.join(", ")), m.value)
        })
        .collect();
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    // A name that comes twice keeps its last value, as Kafka's TreeMap does.
    rows.dedup_by(|later, earlier| {
        let same = later.0 == earlier.0;
        if same {
            earlier.1 = later.1;
        }
        same
    });
    if rows.is_empty() {
        return String::new();
    }
    let width = rows.iter().map(|(name, _)| name.chars().count()).max().unwrap_or(0);
    let mut out = format!("\n{:<width$}   Value\n", "Metric Name");
    for (name, value) in rows {
        out.push_str(&format!("{name:<width$} : {value:.3}\n"));
    }
    out
}

/// Paces records to a rate: tokens accrue at `rate` per second up to 10 ms worth (at
/// least one), and each record takes one. The burst lets a fast sender sleep in
/// millisecond steps, the timer's resolution, rather than per record.
#[derive(Debug)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket for `rate` records per second.
    pub fn new(rate: f64, now: Instant) -> TokenBucket {
        let burst = (rate / 100.0).max(1.0);
        TokenBucket { rate, burst, tokens: burst, last: now }
    }

    /// Takes a token: `None` when one was there, else how long until one will be.
    pub fn take(&mut self, now: Instant) -> Option<Duration> {
        let accrued = now.saturating_duration_since(self.last).as_secs_f64() * self.rate;
        self.tokens = (self.tokens + accrued).min(self.burst);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            return None;
        }
        Some(Duration::from_secs_f64((1.0 - self.tokens) / self.rate))
    }
}

/// A small fast generator (xorshift64*) for payload bytes and picks: perf tests need
/// spread, not security.
#[derive(Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator seeded with `seed` (0 is replaced: xorshift stays at 0).
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    /// The next number.
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number below `n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bucket_holds_the_rate_and_sleeps_in_steps() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::new(1000.0, t0);
        // A full bucket: 10 ms worth at once, then a wait of one token's time.
        for _ in 0..10 {
            assert_eq!(bucket.take(t0), None);
        }
        let wait = bucket.take(t0).expect("empty");
        assert!((wait.as_secs_f64() - 0.001).abs() < 1e-9, "{wait:?}");
        // Over one simulated second at most rate + burst records pass.
        let mut now = t0;
        let mut passed = 0;
        while now < t0 + Duration::from_secs(1) {
            match bucket.take(now) {
                None => passed += 1,
                Some(wait) => now += wait.max(Duration::from_millis(1)),
            }
        }
        assert!((995..=1010).contains(&passed), "{passed}");
        let mut slow = TokenBucket::new(2.0, t0);
        assert_eq!(slow.take(t0), None);
        assert_eq!(slow.take(t0), Some(Duration::from_millis(500)), "burst of one below 100/s");
    }

    #[test]
    fn metrics_print_as_kafkas_tools_print_them() {
        let m = |group, name, value| Metric {
            group,
            name,
            tags: vec![("client-id", "perf-producer-client".to_string())],
            value,
        };
        let table = metrics_table(&[
            m("producer-metrics", "record-send-total", 1000.0),
            m("producer-metrics", "batch-size-avg", 16384.5),
            m("app-info", "x", 1.0 / 3.0),
        ]);
        // Java's printf("%-67s : %.3f"), as computed for these three names.
        let expected = [
            "",
            "Metric Name                                                           Value",
            "app-info:x:{client-id=perf-producer-client}                         : 0.333",
            "producer-metrics:batch-size-avg:{client-id=perf-producer-client}    : 16384.500",
            "producer-metrics:record-send-total:{client-id=perf-producer-client} : 1000.000",
        ];
        assert_eq!(table, expected.join("\n") + "\n");
        assert_eq!(metrics_table(&[]), "", "no metrics, nothing printed (as Kafka)");
    }

    #[test]
    fn picks_stay_in_range_and_spread() {
        let mut rng = Rng::new(0);
        let mut seen = [0u32; 26];
        for _ in 0..26_000 {
            seen[rng.below(26)] += 1;
        }
        assert!(seen.iter().all(|&n| (700..1300).contains(&n)), "{seen:?}");
    }
}
