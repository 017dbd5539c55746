//! The figures of `sluice perf produce`, as Kafka's ProducerPerformance keeps and prints
//! them: [`Stats`] (totals, the 5 s window, the latency sample and its percentiles, and
//! the lines printed from them) and [`Perf`], the whole run's figures and, after the
//! warm-up, the steady state's.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use sluice_client::ClientError;

use crate::delivery::Outcomes;
use crate::error::client_line;
use crate::format::time::now_ms;

/// The run's figures and, after the warm-up, the steady state's.
#[derive(Debug)]
pub(super) struct Perf {
    pub(super) total: Stats,
    /// Made when the first steady-state record is acknowledged.
    pub(super) steady: Option<Stats>,
    pub(super) steady_records: u64,
    /// When the first steady-state record was sent (the steady figures start there).
    pub(super) steady_start: Arc<AtomicI64>,
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
pub(super) struct Stats {
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
    pub(super) failed: BTreeMap<String, u64>,
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
    pub(super) fn new(records: u64, live: bool, start_ms: i64) -> Stats {
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

    pub(super) fn print_total(&self) {
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
