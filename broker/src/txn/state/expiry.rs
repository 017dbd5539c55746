//! The periodic checks: the abort of ongoing transactions past their timeout (fenced with
//! the epoch bumped), the retry of Complete* writes that failed, and the removal of ids
//! idle past `transactional.id.expiration.ms`.

use super::*;

impl TxnMachine {
    pub(super) fn abort_timed_out(&mut self, now: i64) {
        self.out.push(Output::SetTimer {
            timer: TimerKey::AbortTimedOut,
            at_ms: now.saturating_add(self.config.abort_interval_ms),
        });
        for id in std::mem::take(&mut self.retry_complete) {
            if !self.busy(&id) {
                self.write_complete(&id, now);
            }
        }
        let mut expired: Vec<(String, i64, i16)> = self
            .txns
            .values()
            .filter(|t| {
                t.state == TxnState::Ongoing
                    && t.start_ms.saturating_add(i64::from(t.timeout_ms)) < now
                    && !self.busy(&t.id)
            })
            .map(|t| (t.id.clone(), t.producer_id, t.producer_epoch))
            .collect();
        expired.sort();
        for (id, producer_id, epoch) in expired {
            tracing::info!(txn = %id, producer_id, epoch, "aborting a timed-out transaction");
            // Fenced with the epoch bumped, as an InitProducerId would.
            let bumped = if epoch < i16::MAX { epoch + 1 } else { epoch };
            self.end_txn(None, &id, producer_id, bumped, false, false, now);
        }
    }

    pub(super) fn expire_ids(&mut self, now: i64) {
        self.out.push(Output::SetTimer {
            timer: TimerKey::ExpireIds,
            at_ms: now.saturating_add(self.config.remove_expired_interval_ms),
        });
        let mut expired: Vec<String> = self
            .txns
            .values()
            .filter(|t| {
                t.state.is_complete_or_empty()
                    && t.last_update_ms.saturating_add(self.config.id_expiration_ms) <= now
                    && !self.busy(&t.id)
            })
            .map(|t| t.id.clone())
            .collect();
        expired.sort();
        for id in expired {
            // Not described or listed while the tombstone is written (Kafka's Dead).
            self.issue(&id, None, Then::Remove);
        }
    }
}
