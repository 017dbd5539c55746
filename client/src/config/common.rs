//! [`CommonConfig`], what every client reads, and the exponential backoff (KIP-580) its
//! retry and reconnect waits follow.

use std::time::Duration;

/// What every client reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommonConfig {
    /// `bootstrap.servers`, split.
    pub bootstrap: Vec<String>,
    /// `client.id`.
    pub client_id: String,
    /// `request.timeout.ms`.
    pub request_timeout: Duration,
    /// `metadata.max.age.ms`.
    pub metadata_max_age: Duration,
    /// `reconnect.backoff.ms`.
    pub reconnect_backoff: Duration,
    /// `reconnect.backoff.max.ms`.
    pub reconnect_backoff_max: Duration,
    /// `retry.backoff.ms`.
    pub retry_backoff: Duration,
    /// `retry.backoff.max.ms`.
    pub retry_backoff_max: Duration,
    /// `socket.connection.setup.timeout.ms`.
    pub connection_setup_timeout: Duration,
    /// `receive.message.max.bytes`.
    pub receive_max_bytes: usize,
}

impl CommonConfig {
    /// The wait before attempt `attempt` (1 for the first retry): `retry.backoff.ms`
    /// doubled per attempt up to `retry.backoff.max.ms`, with ±20% jitter (KIP-580).
    pub fn retry_backoff(&self, attempt: u32, jitter: f64) -> Duration {
        exponential(self.retry_backoff, self.retry_backoff_max, attempt, jitter)
    }
}

/// `base * 2^(attempt-1)` capped at `max`, scaled by `1 + 0.2 * jitter` (`jitter` in -1..=1).
pub fn exponential(base: Duration, max: Duration, attempt: u32, jitter: f64) -> Duration {
    let doubled = base.saturating_mul(1u32 << attempt.saturating_sub(1).min(20));
    let capped = doubled.min(max.max(base));
    capped.mul_f64((1.0 + 0.2 * jitter.clamp(-1.0, 1.0)).max(0.0))
}
