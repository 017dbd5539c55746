//! Produce and fetch rates over the last 15 minutes: a ring of the all-topics counters
//! sampled every 10 s, from which the page draws its charts. Rates are differences of
//! consecutive samples, so a counter read costs nothing between samples.

use std::collections::VecDeque;
use std::sync::{Mutex, PoisonError};

use crate::metrics::TopicTotals;

/// Time between samples.
pub const SAMPLE_MS: i64 = 10_000;
/// Samples kept: 15 minutes, and the one before them to difference against.
pub const SAMPLES: usize = 15 * 60 * 1000 / SAMPLE_MS as usize + 1;

/// One sample of the all-topics counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    /// When it was taken (ms since the epoch).
    pub at_ms: i64,
    /// The counters then.
    pub totals: TopicTotals,
}

/// Rates between two samples, per second.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    /// End of the interval (ms since the epoch).
    pub at_ms: i64,
    /// Records appended per second.
    pub messages_in: f64,
    /// Record bytes appended per second.
    pub bytes_in: f64,
    /// Record bytes fetched per second.
    pub bytes_out: f64,
    /// Partitions fetched per second (fetch requests as Kafka counts them).
    pub fetch_requests: f64,
}

/// The ring of samples.
#[derive(Debug, Default)]
pub struct Rates {
    samples: Mutex<VecDeque<Sample>>,
}

impl Rates {
    /// Adds a sample, dropping the oldest past [`SAMPLES`].
    pub fn push(&self, sample: Sample) {
        let mut s = self.samples.lock().unwrap_or_else(PoisonError::into_inner);
        if s.len() == SAMPLES {
            s.pop_front();
        }
        s.push_back(sample);
    }

    /// The rates between consecutive samples, oldest first, then the rate from the last
    /// sample to `now` (so a chart has a point before the first 10 s are up).
    pub fn rates(&self, now: Sample) -> Vec<Rate> {
        let s = self.samples.lock().unwrap_or_else(PoisonError::into_inner);
        let mut out = Vec::with_capacity(s.len());
        let mut previous: Option<&Sample> = None;
        for sample in s.iter().chain(std::iter::once(&now)) {
            if let Some(p) = previous {
                if sample.at_ms > p.at_ms {
                    out.push(rate(p, sample));
                }
            }
            previous = Some(sample);
        }
        out
    }
}

fn rate(a: &Sample, b: &Sample) -> Rate {
    let seconds = (b.at_ms - a.at_ms) as f64 / 1000.0;
    let per_second = |x: u64, y: u64| y.saturating_sub(x) as f64 / seconds;
    Rate {
        at_ms: b.at_ms,
        messages_in: per_second(a.totals.messages_in, b.totals.messages_in),
        bytes_in: per_second(a.totals.bytes_in, b.totals.bytes_in),
        bytes_out: per_second(a.totals.bytes_out, b.totals.bytes_out),
        fetch_requests: per_second(a.totals.fetch_requests, b.totals.fetch_requests),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(at_ms: i64, messages_in: u64) -> Sample {
        Sample { at_ms, totals: TopicTotals { messages_in, ..TopicTotals::default() } }
    }

    #[test]
    fn rates_are_differences_per_second_and_the_ring_keeps_fifteen_minutes() {
        let r = Rates::default();
        assert!(r.rates(sample(0, 0)).is_empty());
        r.push(sample(0, 0));
        let rates = r.rates(sample(5_000, 500));
        assert_eq!(rates.len(), 1, "the live point");
        assert_eq!(rates[0].messages_in, 100.0);
        for i in 1..200 {
            r.push(sample(i * SAMPLE_MS, i as u64 * 1000));
        }
        let rates = r.rates(sample(199 * SAMPLE_MS, 199_000));
        assert_eq!(rates.len(), SAMPLES - 1, "no live point at the sample's own time");
        assert!(rates.iter().all(|x| x.messages_in == 100.0));
        assert_eq!(rates.last().unwrap().at_ms, 199 * SAMPLE_MS);
    }
}
