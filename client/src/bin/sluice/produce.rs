//! `sluice produce TOPIC`: one record per line of stdin or `--file`, each acknowledged
//! or reported.
//!
//! Lines are read on a thread of their own (stdin blocks) and handed over in chunks; a
//! line is sent as it arrives, so typing at a terminal produces at once. The summary goes
//! to stderr, stdout stays empty.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, IsTerminal, Read};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use sluice_client::producer::{Producer, ProducerRecord};
use sluice_client::{ClientConfig, ClientError};
use tokio::sync::mpsc;

use crate::cli::{key_value, with_properties};
use crate::delivery::{Outcomes, Tracker};
use crate::error::{client_line, CliError, Context as _, Result};
use crate::format::time::now_ms;

const EXAMPLES: &str = "\
Examples:
  printf 'k1:hello\\nk2:world\\n' | sluice produce orders --key-separator :
  sluice produce orders --file events.txt --header source=import --compression zstd
  sluice produce orders --acks 1 --linger-ms 20 -X enable.idempotence=false < lines.txt

Each line (without its newline) is one record; with --key-separator the text before the
first separator is the key, and a line without one has a null key. Prints how many records
were acknowledged on stderr, and one line per distinct error; exits 1 if any failed.";

/// `sluice produce` flags.
#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct Args {
    /// The topic.
    topic: String,
    /// Read the records from FILE instead of stdin.
    #[arg(long, short = 'f', value_name = "FILE")]
    file: Option<PathBuf>,
    /// Split each line at the first SEP: key before, value after (kcat's -K).
    #[arg(long, short = 'K', value_name = "SEP")]
    key_separator: Option<String>,
    /// A header on every record (repeatable).
    #[arg(long = "header", short = 'H', value_name = "KEY=VALUE", value_parser = key_value)]
    headers: Vec<(String, String)>,
    /// Send every record to this partition (default: by key, or sticky for null keys).
    #[arg(long, short = 'p')]
    partition: Option<i32>,
    /// compression.type: none, gzip, snappy, lz4 or zstd.
    #[arg(long, short = 'z', value_name = "CODEC")]
    compression: Option<String>,
    /// acks: 0, 1 or all (idempotence needs all; with 0 or 1 it is turned off).
    #[arg(long)]
    acks: Option<String>,
    /// linger.ms: how long a batch waits for more records.
    #[arg(long, value_name = "MS")]
    linger_ms: Option<u64>,
    /// batch.size in bytes.
    #[arg(long, value_name = "BYTES")]
    batch_size: Option<u64>,
    /// Any other producer property (Java client names), repeatable.
    #[arg(long = "property", short = 'X', value_name = "KEY=VALUE", value_parser = key_value)]
    properties: Vec<(String, String)>,
}

/// Runs `sluice produce`.
pub async fn run(config: &ClientConfig, args: Args) -> Result<()> {
    let mut props = Vec::new();
    let flags = [
        ("acks", args.acks.clone()),
        ("compression.type", args.compression.clone()),
        ("linger.ms", args.linger_ms.map(|v| v.to_string())),
        ("batch.size", args.batch_size.map(|v| v.to_string())),
    ];
    for (name, value) in flags {
        if let Some(value) = value {
            props.push((name.to_string(), value));
        }
    }
    props.extend(args.properties.iter().cloned());
    let producer = Producer::new(&with_properties(config, &props))?;
    let input: Box<dyn Read + Send> = match &args.file {
        Some(path) => Box::new(
            std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?,
        ),
        None => Box::new(std::io::stdin()),
    };
    let mut lines = read_lines(input);
    let live = std::io::stderr().is_terminal();
    let tick = live.then_some(Duration::from_millis(200));
    let mut tracker = Tracker::start(Tally { live, ..Tally::default() }, tick);
    let topic: Arc<str> = args.topic.as_str().into();
    let headers: Vec<(String, Option<Bytes>)> =
        args.headers.iter().map(|(k, v)| (k.clone(), Some(Bytes::from(v.clone())))).collect();
    let separator = args.key_separator.as_deref().map(str::as_bytes);
    let mut refused: BTreeMap<String, u64> = BTreeMap::new();
    let mut fatal = None;
    'read: while let Some(chunk) = lines.recv().await {
        let chunk = match chunk {
            Ok(chunk) => chunk,
            Err(source) => {
                fatal = Some(CliError::Io { context: "reading input".into(), source });
                break;
            }
        };
        for line in chunk {
            let bytes = line.len();
            let mut record = record(&topic, line, separator, &headers);
            record.partition = args.partition;
            let sent = now_ms();
            record.timestamp = Some(sent);
            match producer.send(record).await {
                Ok(delivery) => {
                    if tracker.push(sent, bytes, delivery) {
                        tracker.flush().await;
                    }
                }
                // This record alone cannot be sent; the next may be.
                Err(e @ ClientError::RecordTooLarge { .. }) => {
                    *refused.entry(client_line(&e)).or_default() += 1;
                }
                Err(source) => {
                    let context = Some(format!("produce to {topic}"));
                    fatal = Some(CliError::Client { context, source });
                    break 'read;
                }
            }
        }
        // Before waiting for more input: what was sent is seen to be acknowledged.
        tracker.flush().await;
    }
    producer.flush().await;
    let tally = tracker.finish().await;
    let closed = producer.close(Duration::from_secs(30)).await;
    if live {
        eprint!("\r\x1b[K");
    }
    eprintln!("{} records acknowledged", tally.acked);
    let mut failed = refused;
    for (error, n) in tally.failed {
        *failed.entry(error).or_default() += n;
    }
    for (error, n) in &failed {
        let error = error.strip_prefix("error: ").unwrap_or(error);
        eprintln!("error: {n} record{} failed: {error}", if *n == 1 { "" } else { "s" });
    }
    if let Some(e) = fatal {
        return Err(e);
    }
    closed?;
    if !failed.is_empty() {
        return Err(CliError::Reported(format!("producing to {topic}")));
    }
    Ok(())
}

/// The record for one line: split at the first `separator` into key and value, or all
/// value with a null key. Key and value share the line's buffer.
fn record(
    topic: &Arc<str>,
    line: Vec<u8>,
    separator: Option<&[u8]>,
    headers: &[(String, Option<Bytes>)],
) -> ProducerRecord {
    let line = Bytes::from(line);
    let split = separator
        .filter(|s| !s.is_empty())
        .and_then(|s| line.windows(s.len()).position(|w| w == s).map(|at| (at, s.len())));
    let (key, value) = match split {
        Some((at, len)) => (Some(line.slice(..at)), line.slice(at + len..)),
        None => (None, line),
    };
    ProducerRecord {
        topic: topic.clone(),
        partition: None,
        key,
        value: Some(value),
        headers: headers.to_vec(),
        timestamp: None,
    }
}

/// Reads lines on a thread, without their `\n`, in chunks of what is buffered at once.
///
/// The thread is not joined: it ends at end of input, and a process that exits earlier
/// (a fatal error) must not wait for a terminal that may never send more.
fn read_lines(input: Box<dyn Read + Send>) -> mpsc::Receiver<std::io::Result<Vec<Vec<u8>>>> {
    let (tx, rx) = mpsc::channel(16);
    std::thread::spawn(move || {
        let mut reader = BufReader::with_capacity(1 << 16, input);
        let mut chunk = Vec::new();
        loop {
            let mut line = Vec::new();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) => break,
                Ok(_) => {
                    if line.last() == Some(&b'\n') {
                        line.pop();
                    }
                    chunk.push(line);
                    // Nothing more buffered: the next read may block, so send what we have.
                    let ready = chunk.len() >= 1024 || reader.buffer().is_empty();
                    if ready && tx.blocking_send(Ok(std::mem::take(&mut chunk))).is_err() {
                        return;
                    }
                }
                Err(e) => {
                    let _ = tx.blocking_send(Err(e));
                    return;
                }
            }
        }
        if !chunk.is_empty() {
            let _ = tx.blocking_send(Ok(chunk));
        }
    });
    rx
}

/// Counts of what was sent, acknowledged and failed (by error line).
#[derive(Debug, Default)]
struct Tally {
    live: bool,
    sent: u64,
    acked: u64,
    failed: BTreeMap<String, u64>,
}

impl Outcomes for Tally {
    fn sent(&mut self, count: usize) {
        self.sent += count as u64;
    }

    fn settled(
        &mut self,
        _latency_ms: i64,
        _bytes: usize,
        outcome: Result<(), &ClientError>,
        _: i64,
        _steady: bool,
    ) {
        match outcome {
            Ok(()) => self.acked += 1,
            Err(e) => *self.failed.entry(client_line(e)).or_default() += 1,
        }
    }

    fn tick(&mut self, _now: Instant) {
        if self.live {
            eprint!("\r\x1b[K{} sent, {} acknowledged", self.sent, self.acked);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_split_at_the_first_separator_or_have_a_null_key() {
        let topic: Arc<str> = "t".into();
        let h = [("src".to_string(), Some(Bytes::from_static(b"cli")))];
        let r = record(&topic, b"k::v:w".to_vec(), Some(b"::"), &h);
        assert_eq!((r.key.as_deref(), r.value.as_deref()), (Some(&b"k"[..]), Some(&b"v:w"[..])));
        assert_eq!(r.headers, h);
        let r = record(&topic, b"no key".to_vec(), Some(b":"), &[]);
        assert_eq!((r.key, r.value.as_deref()), (None, Some(&b"no key"[..])));
        let r = record(&topic, b":v".to_vec(), Some(b":"), &[]);
        assert_eq!(r.key.as_deref(), Some(&b""[..]), "an empty key is not a null key");
        let r = record(&topic, b"a:b".to_vec(), None, &[]);
        assert_eq!((r.key, r.value.as_deref()), (None, Some(&b"a:b"[..])));
    }
}
