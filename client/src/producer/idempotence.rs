//! The idempotent producer's decisions, sans I/O: which broker answers settle a batch,
//! which send it again, and which need a new producer epoch first (KIP-360).
//!
//! With idempotence the broker keeps, per producer id and epoch, the last sequences it
//! wrote to each partition: a batch sent twice is written once, and a batch whose sequence
//! does not follow is refused with OUT_OF_ORDER_SEQUENCE_NUMBER. So a retry must reuse
//! the batch's sequence, and after a batch fails for good the sequences that follow it
//! have a gap the broker would never accept: the producer bumps its epoch, which starts
//! every partition's sequences again from 0.

use sluice_protocol::error_code::ErrorCode;

use crate::error::refreshes_metadata;

/// What to do with a batch after the broker's answer for its partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Written (or written before: a duplicate).
    Done,
    /// Send it again, with the same sequence, after a backoff.
    Retry {
        /// Look the leader up again first.
        refresh_metadata: bool,
    },
    /// Bump the epoch, then send it again under new sequences.
    BumpAndRetry,
    /// Fail its records; `bump`: it held a sequence, so the epoch must be bumped before
    /// the partition's next batch.
    Fail {
        /// Whether an epoch bump must follow.
        bump: bool,
    },
}

/// The facts about a batch that the verdict depends on.
#[derive(Debug, Clone, Copy)]
pub struct Attempt {
    /// Idempotence is on.
    pub idempotent: bool,
    /// The batch has a sequence assigned under the current epoch.
    pub sequenced: bool,
    /// Sends so far, including the one answered.
    pub attempts: u32,
    /// `retries`.
    pub retries: u32,
    /// An earlier batch of the same partition is waiting to be sent again: an
    /// OUT_OF_ORDER_SEQUENCE_NUMBER then only means this one arrived before it.
    pub earlier_retry_pending: bool,
}

/// The verdict for `code` (the partition's error code, or `None` for a lost connection
/// or a request timeout, after which the outcome is unknown).
pub fn verdict(code: Option<ErrorCode>, a: Attempt) -> Verdict {
    let retries_left = a.attempts <= a.retries;
    let fail = Verdict::Fail { bump: a.idempotent && a.sequenced };
    let Some(code) = code else {
        // The broker may have written it: only the same sequence keeps it single.
        return if retries_left { Verdict::Retry { refresh_metadata: true } } else { fail };
    };
    match code {
        ErrorCode::NONE | ErrorCode::DUPLICATE_SEQUENCE_NUMBER => Verdict::Done,
        ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER if a.idempotent => {
            if a.earlier_retry_pending {
                Verdict::Retry { refresh_metadata: false }
            } else if retries_left {
                // The broker lost our sequence state (or never wrote what preceded):
                // nothing of this batch was written, so new sequences cannot duplicate it.
                Verdict::BumpAndRetry
            } else {
                fail
            }
        }
        ErrorCode::UNKNOWN_PRODUCER_ID | ErrorCode::INVALID_PRODUCER_EPOCH if a.idempotent => {
            if retries_left {
                Verdict::BumpAndRetry
            } else {
                fail
            }
        }
        code if code.is_retriable() && retries_left => {
            Verdict::Retry { refresh_metadata: refreshes_metadata(code) }
        }
        _ => fail,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempt() -> Attempt {
        Attempt {
            idempotent: true,
            sequenced: true,
            attempts: 1,
            retries: 10,
            earlier_retry_pending: false,
        }
    }

    #[test]
    fn duplicates_settle_and_leader_moves_retry_with_a_refresh() {
        assert_eq!(verdict(Some(ErrorCode::NONE), attempt()), Verdict::Done);
        assert_eq!(verdict(Some(ErrorCode::DUPLICATE_SEQUENCE_NUMBER), attempt()), Verdict::Done);
        assert_eq!(
            verdict(Some(ErrorCode::NOT_LEADER_OR_FOLLOWER), attempt()),
            Verdict::Retry { refresh_metadata: true }
        );
        assert_eq!(verdict(None, attempt()), Verdict::Retry { refresh_metadata: true });
    }

    #[test]
    fn sequence_errors_bump_the_epoch_unless_an_earlier_batch_explains_them() {
        assert_eq!(verdict(Some(ErrorCode::UNKNOWN_PRODUCER_ID), attempt()), Verdict::BumpAndRetry);
        assert_eq!(
            verdict(Some(ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER), attempt()),
            Verdict::BumpAndRetry
        );
        let behind = Attempt { earlier_retry_pending: true, ..attempt() };
        assert_eq!(
            verdict(Some(ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER), behind),
            Verdict::Retry { refresh_metadata: false }
        );
    }

    #[test]
    fn a_fatal_error_fails_and_bumps_only_a_sequenced_batch() {
        assert_eq!(
            verdict(Some(ErrorCode::MESSAGE_TOO_LARGE), attempt()),
            Verdict::Fail { bump: true }
        );
        let plain = Attempt { idempotent: false, sequenced: false, ..attempt() };
        assert_eq!(
            verdict(Some(ErrorCode::MESSAGE_TOO_LARGE), plain),
            Verdict::Fail { bump: false }
        );
        let spent = Attempt { attempts: 11, ..attempt() };
        assert_eq!(
            verdict(Some(ErrorCode::NOT_LEADER_OR_FOLLOWER), spent),
            Verdict::Fail { bump: true }
        );
    }
}
