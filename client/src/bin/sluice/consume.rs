//! `sluice consume TOPIC`: records printed with a kcat format string or as JSON lines,
//! from a start kcat understands, until a count, the end, an idle timeout or Ctrl-C.
//!
//! Without `--group` the partitions are assigned (all, or `--partition`); with `--group`
//! and no `--partition` the consumer joins the group and `--offset` applies the first time
//! each partition is assigned. On exit, a partition whose fetched records were not all
//! printed (`--count` cut a batch) is moved back to the first one not printed, so that
//! the group's commit on close does not skip them.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sluice_client::admin::{Admin, OffsetSpec, TopicDescription};
use sluice_client::consumer::{BoxFuture, Consumer, RebalanceListener};
use sluice_client::{ClientConfig, ClientError, TopicPartition};
use sluice_protocol::error_code::ErrorCode;

use crate::cli::{key_value, with_properties};
use crate::error::{CliError, Context as _, Result};
use crate::format::{record_json, RecordFormat};

const EXAMPLES: &str = "\
Examples:
  sluice consume orders --offset beginning --exit-at-end --format '%o %k=%s\\n'
  sluice consume orders --partition 2 --offset -10 --json
  sluice consume orders --group billing --count 100
  sluice consume orders --offset @1714979289123 --timeout 5000
  sluice consume payments --isolation-level read_committed --exit-at-end

--offset: beginning, end, stored (the group's committed offset), N (that offset), -N (N
before the end), @TIMESTAMP_MS or s@TIMESTAMP_MS (the first record at or after that time).
Default: beginning, or stored with --group (earliest when nothing is committed).
--format tokens (kcat's): %t topic, %p partition, %o offset, %k key, %K key length,
%s value, %S value length, %T timestamp (ms), %h headers as k=v,k=v, %% a percent sign;
escapes \\n \\r \\t \\\\. Null prints as nothing and its length as -1.
--json prints one object per record; a key or value that is not UTF-8 is base64 with
\"key_base64\": true (or value_base64), and null is null, not \"\".";

/// Where consumption starts (kcat's `-o`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartAt {
    /// The log start offset.
    Beginning,
    /// The end: only records produced from now on.
    End,
    /// The group's committed offset (`auto.offset.reset` when there is none).
    Stored,
    /// This offset.
    Offset(i64),
    /// This many records before the end (not before the start).
    FromEnd(i64),
    /// The first record at or after this time (ms), else the end.
    Time(i64),
}

/// Parses `--offset`.
///
/// # Errors
/// A message listing what is accepted.
pub fn parse_offset(s: &str) -> Result<StartAt, String> {
    let bad =
        || format!("'{s}' is not beginning, end, stored, N, -N or @TIMESTAMP_MS (N at least 0)");
    let number = |n: &str| n.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(bad);
    match s {
        "beginning" => Ok(StartAt::Beginning),
        "end" => Ok(StartAt::End),
        "stored" => Ok(StartAt::Stored),
        _ => {
            if let Some(ts) = s.strip_prefix("s@").or_else(|| s.strip_prefix('@')) {
                number(ts).map(StartAt::Time)
            } else if let Some(n) = s.strip_prefix('-') {
                number(n).map(StartAt::FromEnd)
            } else {
                number(s).map(StartAt::Offset)
            }
        }
    }
}

/// `sluice consume` flags.
#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct Args {
    /// The topic.
    topic: String,
    /// Where to start (see below).
    #[arg(long, short = 'o', value_parser = parse_offset, allow_hyphen_values = true)]
    offset: Option<StartAt>,
    /// Consume only this partition (repeatable; default: all).
    #[arg(long, short = 'p')]
    partition: Vec<i32>,
    /// Consume as a member of this group (committing as it goes).
    #[arg(long, short = 'G')]
    group: Option<String>,
    /// Exit after printing this many records.
    #[arg(long, short = 'c')]
    count: Option<u64>,
    /// Exit once every assigned partition reached the end it had when assigned (kcat -e).
    #[arg(long, short = 'e')]
    exit_at_end: bool,
    /// Exit after MS without a record; also how long to wait for the topic to exist.
    #[arg(long, value_name = "MS")]
    timeout: Option<u64>,
    /// How to print each record (kcat's tokens, see below).
    #[arg(long, short = 'f', value_parser = RecordFormat::parse, default_value = "%s\\n")]
    format: RecordFormat,
    /// Print each record as one JSON object per line instead.
    #[arg(long, short = 'J', conflicts_with = "format")]
    json: bool,
    /// read_committed: only records of committed transactions, up to the last stable
    /// offset (also the end of --exit-at-end); read_uncommitted (default): everything.
    #[arg(long, value_parser = ["read_uncommitted", "read_committed"])]
    isolation_level: Option<String>,
    /// Any consumer property (Java client names), repeatable.
    #[arg(long = "property", short = 'X', value_name = "KEY=VALUE", value_parser = key_value)]
    properties: Vec<(String, String)>,
}

/// Runs `sluice consume`.
pub async fn run(config: &ClientConfig, args: Args) -> Result<()> {
    let start = args.offset.unwrap_or(match args.group {
        Some(_) => StartAt::Stored,
        None => StartAt::Beginning,
    });
    if start == StartAt::Stored && args.group.is_none() {
        let why = "--offset stored needs --group: offsets are stored per group";
        return Err(CliError::Usage(why.into()));
    }
    let admin = Arc::new(Admin::new(config)?);
    let outcome = consume_with(config, &args, start, &admin).await;
    admin.close().await;
    outcome
}

async fn consume_with(
    config: &ClientConfig,
    args: &Args,
    start: StartAt,
    admin: &Arc<Admin>,
) -> Result<()> {
    let described = find_topic(admin, &args.topic, args.timeout).await?;
    let count = described.partitions.len();
    for &p in &args.partition {
        if p < 0 || p as usize >= count {
            let (topic, partitions) = (args.topic.clone(), count as u32);
            return Err(ClientError::UnknownPartition { topic, partition: p, partitions }.into());
        }
    }
    // Asking about the topic must not create it: the admin found that it exists.
    let mut props = vec![("allow.auto.create.topics".to_string(), "false".to_string())];
    if let Some(group) = &args.group {
        props.push(("group.id".into(), group.clone()));
        if config.get("auto.offset.reset").is_none() {
            props.push(("auto.offset.reset".into(), "earliest".into()));
        }
    }
    if let Some(level) = &args.isolation_level {
        props.push(("isolation.level".into(), level.clone()));
    }
    props.extend(args.properties.iter().cloned());
    let mut consumer = Consumer::new(&with_properties(config, &props))?;
    if args.group.is_some() && args.partition.is_empty() {
        let listener = SeekOnAssign { start, seen: HashSet::new(), admin: admin.clone() };
        consumer.subscribe(&[args.topic.as_str()], Some(Box::new(listener)))?;
    } else {
        let partitions: Vec<i32> = if args.partition.is_empty() {
            described.partitions.iter().map(|p| p.partition).collect()
        } else {
            args.partition.clone()
        };
        let tps: Vec<TopicPartition> =
            partitions.iter().map(|&p| TopicPartition::new(args.topic.as_str(), p)).collect();
        consumer.assign(tps.iter().cloned());
        seek(&mut consumer, admin, &tps, start).await?;
    }
    let stop = Arc::new(AtomicBool::new(false));
    let interrupt = tokio::spawn({
        let stop = stop.clone();
        async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                stop.store(true, Ordering::Release);
            }
        }
    });
    let outcome = consume(&mut consumer, args, &stop).await;
    interrupt.abort();
    let closed = consumer.close().await.context("commit on close");
    outcome?;
    closed
}

/// The loop: polls and prints until a stop condition.
async fn consume(consumer: &mut Consumer, args: &Args, stop: &AtomicBool) -> Result<()> {
    let mut out = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout());
    let mut text = Vec::with_capacity(1 << 16);
    let mut printed = 0u64;
    let mut ends: HashMap<TopicPartition, i64> = HashMap::new();
    // First offset not printed, per partition, once --count is reached.
    let mut unprinted: HashMap<TopicPartition, i64> = HashMap::new();
    let idle = args.timeout.map(Duration::from_millis);
    let mut last_record = Instant::now();
    loop {
        if stop.load(Ordering::Acquire) || args.count.is_some_and(|c| printed >= c) {
            break;
        }
        if args.exit_at_end && at_end(consumer, &mut ends).await? {
            break;
        }
        // Short polls: a stop condition is seen within this long.
        let mut wait = Duration::from_millis(200);
        if let Some(idle) = idle {
            let left = idle.saturating_sub(last_record.elapsed());
            if left.is_zero() {
                break;
            }
            wait = wait.min(left);
        }
        let records =
            consumer.poll(wait).await.with_context(|| format!("consume from {}", args.topic))?;
        if records.is_empty() {
            continue;
        }
        last_record = Instant::now();
        for r in &records {
            if args.count.is_some_and(|c| printed >= c) {
                let tp = TopicPartition::new(r.topic.clone(), r.partition);
                unprinted.entry(tp).or_insert(r.offset);
                continue;
            }
            if args.json {
                let _ = writeln!(text, "{}", record_json(r));
            } else {
                args.format.write(r, &mut text);
            }
            printed += 1;
        }
        let written = out.write_all(&text).and_then(|()| out.flush());
        text.clear();
        match written {
            Ok(()) => {}
            // The reader went away (`| head`): done, as any Unix filter.
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => break,
            Err(source) => {
                return Err(CliError::Io { context: "writing to stdout".into(), source })
            }
        }
    }
    for (tp, offset) in unprinted {
        consumer.seek(&tp, offset)?;
    }
    Ok(())
}

/// Whether every assigned partition's position reached the end it had when first seen
/// (none assigned yet: not at the end).
async fn at_end(consumer: &mut Consumer, ends: &mut HashMap<TopicPartition, i64>) -> Result<bool> {
    let assigned = consumer.assignment();
    if assigned.is_empty() {
        return Ok(false);
    }
    let new: Vec<TopicPartition> =
        assigned.iter().filter(|tp| !ends.contains_key(*tp)).cloned().collect();
    if !new.is_empty() {
        ends.extend(consumer.end_offsets(&new).await?);
    }
    for tp in &assigned {
        let Some(&end) = ends.get(tp) else { return Ok(false) };
        if consumer.position(tp).await? < end {
            return Ok(false);
        }
    }
    Ok(true)
}

/// The topic's description, waiting up to `timeout_ms` for it to exist.
///
/// # Errors
/// UNKNOWN_TOPIC_OR_PARTITION when it does not exist (in time).
async fn find_topic(
    admin: &Admin,
    topic: &str,
    timeout_ms: Option<u64>,
) -> Result<TopicDescription> {
    let deadline = Instant::now() + Duration::from_millis(timeout_ms.unwrap_or(0));
    loop {
        match admin.describe_topics(&[topic.to_string()]).await {
            Ok(mut found) if !found.is_empty() => return Ok(found.remove(0)),
            Ok(_) | Err(ClientError::UnknownTopic { .. }) => {
                if Instant::now() >= deadline {
                    let what = format!("topic '{topic}' does not exist");
                    return Err(ClientError::kafka(
                        ErrorCode::UNKNOWN_TOPIC_OR_PARTITION,
                        None,
                        what,
                    )
                    .into());
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Moves `tps` to `start`. Offsets are looked up with the admin client: inside a
/// rebalance listener the consumer can only be borrowed mutably (a shared borrow held
/// across an await would need it to be `Sync`).
async fn seek(
    consumer: &mut Consumer,
    admin: &Admin,
    tps: &[TopicPartition],
    start: StartAt,
) -> Result<(), ClientError> {
    let lookup = |spec: OffsetSpec| {
        let specs: Vec<(TopicPartition, OffsetSpec)> =
            tps.iter().map(|tp| (tp.clone(), spec)).collect();
        async move { admin.list_offsets(&specs).await }
    };
    match start {
        StartAt::Stored => Ok(()),
        StartAt::Beginning => consumer.seek_to_beginning(tps),
        StartAt::End => consumer.seek_to_end(tps),
        StartAt::Offset(offset) => tps.iter().try_for_each(|tp| consumer.seek(tp, offset)),
        StartAt::FromEnd(n) => {
            let ends = lookup(OffsetSpec::Latest).await?;
            let starts = lookup(OffsetSpec::Earliest).await?;
            for tp in tps {
                let (Some(end), Some(first)) = (ends.get(tp), starts.get(tp)) else { continue };
                consumer.seek(tp, end.offset.saturating_sub(n).max(first.offset))?;
            }
            Ok(())
        }
        StartAt::Time(ms) => {
            let found = lookup(OffsetSpec::Timestamp(ms)).await?;
            for tp in tps {
                match found.get(tp).filter(|o| o.offset >= 0) {
                    Some(at) => consumer.seek(tp, at.offset)?,
                    None => consumer.seek_to_end(std::slice::from_ref(tp))?,
                }
            }
            Ok(())
        }
    }
}

/// Applies `--offset` to each partition the first time the group assigns it.
struct SeekOnAssign {
    start: StartAt,
    seen: HashSet<TopicPartition>,
    admin: Arc<Admin>,
}

impl RebalanceListener for SeekOnAssign {
    fn on_partitions_revoked<'a>(
        &'a mut self,
        _consumer: &'a mut Consumer,
        _partitions: &'a [TopicPartition],
    ) -> BoxFuture<'a, ()> {
        Box::pin(async {})
    }

    fn on_partitions_assigned<'a>(
        &'a mut self,
        consumer: &'a mut Consumer,
        partitions: &'a [TopicPartition],
    ) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let new: Vec<TopicPartition> =
                partitions.iter().filter(|tp| self.seen.insert((*tp).clone())).cloned().collect();
            if let Err(e) = seek(consumer, &self.admin, &new, self.start).await {
                // A listener cannot fail the poll: say so, and go on from the stored offset.
                eprintln!("warning: cannot move to --offset: {e}");
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_as_kcat_writes_them() {
        assert_eq!(parse_offset("beginning"), Ok(StartAt::Beginning));
        assert_eq!(parse_offset("end"), Ok(StartAt::End));
        assert_eq!(parse_offset("stored"), Ok(StartAt::Stored));
        assert_eq!(parse_offset("42"), Ok(StartAt::Offset(42)));
        assert_eq!(parse_offset("-10"), Ok(StartAt::FromEnd(10)));
        assert_eq!(parse_offset("@1714979289123"), Ok(StartAt::Time(1_714_979_289_123)));
        assert_eq!(parse_offset("s@5"), Ok(StartAt::Time(5)));
        for bad in ["", "first", "--1", "@", "@-5", "1.5", "s@x"] {
            assert!(parse_offset(bad).unwrap_err().contains(&format!("'{bad}'")), "{bad}");
        }
    }
}
