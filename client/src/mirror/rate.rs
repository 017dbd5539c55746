//! `--max-rate`: a token bucket in records or bytes per second. Sans I/O: it says how
//! long to wait; the fetch loop sleeps.
//!
//! A batch larger than the bucket is let through and leaves the bucket in debt, so a
//! single batch never stalls the mirror forever and the average rate still holds.

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, Instant};

/// What `--max-rate` limits.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Rate {
    /// Records per second (`10000rps`).
    Records(f64),
    /// Bytes per second (`50MBps`, `500KBps`, `1000Bps`; MB = 10^6 bytes).
    Bytes(f64),
}

impl Rate {
    /// The per-second figure.
    pub fn per_second(self) -> f64 {
        match self {
            Rate::Records(r) | Rate::Bytes(r) => r,
        }
    }
}

/// A `--max-rate` value that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("rate {0:?}: expected a positive number followed by rps, Bps, KBps, MBps or GBps")]
pub struct BadRate(pub String);

impl FromStr for Rate {
    type Err = BadRate;

    fn from_str(s: &str) -> Result<Self, BadRate> {
        let bad = || BadRate(s.to_string());
        let split = s.find(|c: char| !(c.is_ascii_digit() || c == '.')).ok_or_else(bad)?;
        let (number, unit) = s.split_at(split);
        let n: f64 = number.parse().map_err(|_| bad())?;
        if !(n.is_finite() && n > 0.0) {
            return Err(bad());
        }
        Ok(match unit {
            "rps" => Rate::Records(n),
            "Bps" => Rate::Bytes(n),
            "KBps" => Rate::Bytes(n * 1e3),
            "MBps" => Rate::Bytes(n * 1e6),
            "GBps" => Rate::Bytes(n * 1e9),
            _ => return Err(bad()),
        })
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rate::Records(r) => write!(f, "{r}rps"),
            Rate::Bytes(b) => write!(f, "{}MBps", b / 1e6),
        }
    }
}

/// A token bucket holding at most one second of tokens.
#[derive(Debug)]
pub struct TokenBucket {
    rate: Rate,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket for `rate`.
    pub fn new(rate: Rate, now: Instant) -> Self {
        TokenBucket { rate, tokens: rate.per_second(), last: now }
    }

    /// Takes a batch of `records` records and `bytes` bytes; returns how long to wait
    /// before sending it (zero when the bucket had enough).
    pub fn take(&mut self, records: u64, bytes: u64, now: Instant) -> Duration {
        let per_second = self.rate.per_second();
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * per_second).min(per_second);
        self.tokens -= match self.rate {
            Rate::Records(_) => records as f64,
            Rate::Bytes(_) => bytes as f64,
        };
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / per_second)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse_in_records_or_bytes() {
        assert_eq!("10000rps".parse(), Ok(Rate::Records(10000.0)));
        assert_eq!("50MBps".parse(), Ok(Rate::Bytes(50e6)));
        assert_eq!("1.5KBps".parse(), Ok(Rate::Bytes(1500.0)));
        for bad in ["", "50", "MBps", "0rps", "-1rps", "5 MBps", "5mbps"] {
            assert!(bad.parse::<Rate>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_bucket_holds_the_average_rate_and_one_second_of_burst() {
        let start = Instant::now();
        let mut b = TokenBucket::new(Rate::Records(1000.0), start);
        assert_eq!(b.take(1000, 0, start), Duration::ZERO, "a full second of burst");
        let wait = b.take(500, 0, start);
        assert_eq!(wait, Duration::from_millis(500), "in debt by half a second");
        // Idle for long: the bucket refills only to one second's worth.
        let later = start + Duration::from_secs(60);
        assert_eq!(b.take(1000, 0, later), Duration::ZERO);
        assert!(b.take(1, 0, later) > Duration::ZERO);
        let mut bytes = TokenBucket::new(Rate::Bytes(1e6), start);
        assert_eq!(bytes.take(1, 3_000_000, start), Duration::from_secs(2), "bytes count");
    }
}
