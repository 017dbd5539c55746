//! `sluice perf consume`: Kafka's ConsumerPerformance. A header, then (without
//! `--show-detailed-stats`) one line at the end:
//! `start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec,
//! rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec`, or with it a line per
//! reporting interval (`time, threadId, ...`). MB are 2^20 bytes of keys and values;
//! rebalance time is the time spent without partitions, as Kafka's listener measures it.
//! Times print in `--date-format` (a SimpleDateFormat pattern, Kafka's default
//! `yyyy-MM-dd HH:mm:ss:SSS`), in UTC (Kafka uses the local zone). `--print-metrics`
//! prints the consumer's metrics at the end, as Kafka's tool does.

use std::collections::HashSet;
use std::io::{IsTerminal, Write as _};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sluice_client::consumer::{BoxFuture, Consumer, RebalanceListener};
use sluice_client::{ClientConfig, TopicPartition};

use super::{layered, metrics_table, Rng};
use crate::cli::key_value;
use crate::error::{CliError, Context as _, Result};
use crate::format::time::{now_ms, DateFormat, KAFKA_DATE_FORMAT};

const EXAMPLES: &str = "\
Examples:
  sluice perf consume --topic bench --messages 1000000
  sluice perf consume --include 'bench-.*' --messages 500000 --show-detailed-stats

  sluice perf consume --topic bench --messages 1000000 --print-metrics

Not supported from Kafka's tool: --socket-buffer-size.";

/// `sluice perf consume` flags (Kafka's names).
#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct Args {
    /// The topic to consume.
    #[arg(long, required_unless_present = "include", conflicts_with = "include")]
    topic: Option<String>,
    /// Consume every topic whose name matches this regex.
    #[arg(long)]
    include: Option<String>,
    /// How many records to consume.
    #[arg(long)]
    messages: u64,
    /// The group to consume in [default: perf-consumer-RANDOM].
    #[arg(long)]
    group: Option<String>,
    /// With no committed offset, start at the end instead of the beginning.
    #[arg(long)]
    from_latest: bool,
    /// Give up after this many ms without a record.
    #[arg(long, default_value_t = 10_000)]
    timeout: u64,
    /// Interval between detailed lines, in ms.
    #[arg(long, default_value_t = 5_000, value_parser = clap::value_parser!(u64).range(1..))]
    reporting_interval: u64,
    /// A line per reporting interval instead of one at the end.
    #[arg(long)]
    show_detailed_stats: bool,
    /// Leave out the header line.
    #[arg(long)]
    hide_header: bool,
    /// max.partition.fetch.bytes.
    #[arg(long, default_value_t = 1024 * 1024)]
    fetch_size: u64,
    /// Consumer properties (Java client names), winning over --consumer.config.
    #[arg(long, num_args = 1.., value_name = "PROP-NAME=PROP-VALUE", value_parser = key_value)]
    consumer_props: Vec<(String, String)>,
    /// Consumer properties file.
    #[arg(long = "consumer.config", alias = "consumer-config", value_name = "CONFIG-FILE")]
    consumer_config: Option<PathBuf>,
    /// Print the consumer's metrics at the end.
    #[arg(long)]
    print_metrics: bool,
    /// How times print: a java.text.SimpleDateFormat pattern, in UTC.
    #[arg(long, default_value = KAFKA_DATE_FORMAT, value_parser = DateFormat::parse)]
    date_format: DateFormat,
}

/// Time spent joining, as Kafka's `ConsumerPerfRebListener` counts it.
#[derive(Debug)]
struct Joins {
    total_ms: i64,
    round_ms: i64,
    started_ms: i64,
    assigned: HashSet<TopicPartition>,
}

struct JoinTimer(Arc<Mutex<Joins>>);

impl RebalanceListener for JoinTimer {
    fn on_partitions_revoked<'a>(
        &'a mut self,
        _consumer: &'a mut Consumer,
        partitions: &'a [TopicPartition],
    ) -> BoxFuture<'a, ()> {
        let mut joins = self.0.lock().expect("lock");
        for tp in partitions {
            joins.assigned.remove(tp);
        }
        if joins.assigned.is_empty() {
            joins.started_ms = now_ms();
        }
        Box::pin(async {})
    }

    fn on_partitions_assigned<'a>(
        &'a mut self,
        _consumer: &'a mut Consumer,
        partitions: &'a [TopicPartition],
    ) -> BoxFuture<'a, ()> {
        let mut joins = self.0.lock().expect("lock");
        if joins.assigned.is_empty() {
            let took = now_ms() - joins.started_ms;
            joins.total_ms += took;
            joins.round_ms += took;
        }
        joins.assigned.extend(partitions.iter().cloned());
        Box::pin(async {})
    }
}

/// Runs `sluice perf consume`.
pub async fn run(config: &ClientConfig, args: Args) -> Result<()> {
    let group = args.group.clone().unwrap_or_else(|| {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64);
        format!("perf-consumer-{}", Rng::new(seed).below(100_000))
    });
    let mut props = vec![
        ("group.id".to_string(), group),
        ("max.partition.fetch.bytes".to_string(), args.fetch_size.to_string()),
        ("auto.offset.reset".into(), if args.from_latest { "latest" } else { "earliest" }.into()),
        ("check.crcs".into(), "false".into()),
    ];
    if config.get("client.id") == Some("sluice") {
        props.push(("client.id".into(), "perf-consumer-client".into()));
    }
    let base = crate::cli::with_properties(config, &props);
    let config = layered(&base, args.consumer_config.as_deref(), &args.consumer_props)?;
    let mut consumer = Consumer::new(&config)?;
    let start_ms = now_ms();
    let joins = Arc::new(Mutex::new(Joins {
        total_ms: 0,
        round_ms: 0,
        started_ms: start_ms,
        assigned: HashSet::new(),
    }));
    let listener = Box::new(JoinTimer(joins.clone()));
    match (&args.topic, &args.include) {
        (Some(topic), _) => consumer.subscribe(&[topic.as_str()], Some(listener))?,
        (None, Some(pattern)) => consumer.subscribe_pattern(pattern, Some(listener))?,
        (None, None) => return Err(CliError::Usage("--topic or --include is required".into())),
    }
    if !args.hide_header {
        let first =
            if args.show_detailed_stats { "time, threadId" } else { "start.time, end.time" };
        println!(
            "{first}, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec, \
             rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec"
        );
    }
    let live = std::io::stdout().is_terminal() && !args.show_detailed_stats;
    let (mut read, mut bytes) = (0u64, 0u64);
    let (mut last_read, mut last_bytes) = (0u64, 0u64);
    let mut last_report = start_ms;
    let mut last_consumed = start_ms;
    let mut last_live = Instant::now();
    let mut now = start_ms;
    while read < args.messages && now - last_consumed <= args.timeout as i64 {
        let records = consumer.poll(Duration::from_millis(100)).await.context("consume")?;
        now = now_ms();
        if !records.is_empty() {
            last_consumed = now;
        }
        for r in &records {
            read += 1;
            bytes += r.key.as_ref().map_or(0, |k| k.len() as u64);
            bytes += r.value.as_ref().map_or(0, |v| v.len() as u64);
            if now - last_report >= args.reporting_interval as i64 {
                if args.show_detailed_stats {
                    let mut joins = joins.lock().expect("lock");
                    let interval = Interval { bytes, last_bytes, read, last_read };
                    let line = interval.line(&args.date_format, last_report, now, joins.round_ms);
                    println!("{line}");
                    joins.round_ms = 0;
                }
                (last_report, last_read, last_bytes) = (now, read, bytes);
            }
        }
        if live && last_live.elapsed() >= Duration::from_millis(500) {
            last_live = Instant::now();
            let secs = (now - start_ms).max(1) as f64 / 1000.0;
            let mb = bytes as f64 / (1024.0 * 1024.0);
            let mut out = std::io::stdout().lock();
            let _ = write!(
                out,
                "\r\x1b[K{read} records consumed, {mb:.4} MB, {:.1} records/sec ({:.4} MB/sec)",
                read as f64 / secs,
                mb / secs
            );
            let _ = out.flush();
        }
    }
    if live {
        print!("\r\x1b[K");
    }
    if read < args.messages {
        println!(
            "WARNING: Exiting before consuming the expected number of messages: timeout ({} ms) \
             exceeded. You can use the --timeout option to increase the timeout.",
            args.timeout
        );
    }
    let end_ms = now_ms();
    let metrics = args.print_metrics.then(|| consumer.metrics());
    let closed = consumer.close().await;
    if !args.show_detailed_stats {
        let join_ms = joins.lock().expect("lock").total_ms;
        println!("{}", total_line(&args.date_format, start_ms, end_ms, bytes, read, join_ms));
    }
    if let Some(metrics) = metrics {
        print!("{}", metrics_table(&metrics));
    }
    Ok(closed?)
}

/// The final line.
fn total_line(
    dates: &DateFormat,
    start_ms: i64,
    end_ms: i64,
    bytes: u64,
    read: u64,
    join_ms: i64,
) -> String {
    let secs = (end_ms - start_ms) as f64 / 1000.0;
    let fetch_ms = end_ms - start_ms - join_ms;
    let fetch_secs = fetch_ms as f64 / 1000.0;
    let mb = bytes as f64 / (1024.0 * 1024.0);
    format!(
        "{}, {}, {mb:.4}, {:.4}, {read}, {:.4}, {join_ms}, {fetch_ms}, {:.4}, {:.4}",
        dates.format(start_ms),
        dates.format(end_ms),
        mb / secs,
        read as f64 / secs,
        mb / fetch_secs,
        read as f64 / fetch_secs,
    )
}

/// What changed over one reporting interval.
struct Interval {
    bytes: u64,
    last_bytes: u64,
    read: u64,
    last_read: u64,
}

impl Interval {
    /// Kafka's detailed line: `time, threadId, MB so far, MB/s, records so far, records/s,
    /// rebalance ms, fetch ms, fetch MB/s, fetch records/s`, the rates over the interval.
    fn line(&self, dates: &DateFormat, from_ms: i64, to_ms: i64, join_ms: i64) -> String {
        let ms = (to_ms - from_ms) as f64;
        let mb = |b: u64| b as f64 / (1024.0 * 1024.0);
        let interval_mb = mb(self.bytes - self.last_bytes);
        let interval_read = (self.read - self.last_read) as f64;
        let fetch_ms = to_ms - from_ms - join_ms;
        let per_fetch_sec = |v: f64| if fetch_ms <= 0 { 0.0 } else { 1000.0 * v / fetch_ms as f64 };
        format!(
            "{}, 0, {:.4}, {:.4}, {}, {:.4}, {join_ms}, {fetch_ms}, {:.4}, {:.4}",
            dates.format(to_ms),
            mb(self.bytes),
            1000.0 * interval_mb / ms,
            self.read,
            interval_read / ms * 1000.0,
            per_fetch_sec(interval_mb),
            per_fetch_sec(interval_read),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_follow_kafkas_formats() {
        let start = 1_714_979_289_123;
        let kafka = DateFormat::parse(KAFKA_DATE_FORMAT).unwrap();
        assert_eq!(
            total_line(&kafka, start, start + 2000, 3 << 20, 30_000, 500),
            "2024-05-06 07:08:09:123, 2024-05-06 07:08:11:123, 3.0000, 1.5000, 30000, \
             15000.0000, 500, 1500, 2.0000, 20000.0000"
        );
        let interval = Interval { bytes: 2 << 20, last_bytes: 1 << 20, read: 200, last_read: 100 };
        assert_eq!(
            interval.line(&kafka, start, start + 1000, 0),
            "2024-05-06 07:08:10:123, 0, 2.0000, 1.0000, 200, 100.0000, 0, 1000, 1.0000, 100.0000"
        );
        let iso = DateFormat::parse("yyyy-MM-dd'T'HH:mm:ss.SSSX").unwrap();
        assert!(total_line(&iso, start, start + 2000, 0, 0, 0)
            .starts_with("2024-05-06T07:08:09.123Z, 2024-05-06T07:08:11.123Z, "));
    }
}
