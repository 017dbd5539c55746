//! InitProducerId with a transactional id: a fresh producer id, an epoch bump (with
//! KIP-360's check of the producer's current id and epoch), the rotation of an exhausted
//! epoch to a new producer id, and the fence of a zombie's ongoing transaction.

use super::*;

impl TxnMachine {
    pub(super) fn init_producer_id(
        &mut self,
        token: Token,
        txn_id: String,
        timeout_ms: i32,
        expected: Option<(i64, i16)>,
        now: i64,
    ) {
        let fail =
            |c: &mut TxnMachine, e: ErrorCode| c.reply(token, TxnReply::InitProducerId(Err(e)));
        if txn_id.is_empty() {
            return fail(self, ErrorCode::INVALID_REQUEST);
        }
        if timeout_ms <= 0 || timeout_ms > self.config.max_timeout_ms {
            return fail(self, ErrorCode::INVALID_TRANSACTION_TIMEOUT);
        }
        if !self.txns.contains_key(&txn_id) {
            let producer_id = match self.ids.next_id() {
                Ok(id) => id,
                Err(e) => return fail(self, e),
            };
            // Kafka's fresh metadata: epoch -1, so the first bump below makes it 0.
            let fresh = TxnMetadata {
                id: txn_id.clone(),
                producer_id,
                prev_producer_id: NO_PRODUCER_ID,
                producer_epoch: NO_EPOCH,
                last_producer_epoch: NO_EPOCH,
                timeout_ms,
                state: TxnState::Empty,
                partitions: BTreeSet::new(),
                offsets: BTreeMap::new(),
                start_ms: -1,
                last_update_ms: now,
            };
            self.txns.insert(txn_id.clone(), fresh);
        }
        if self.busy(&txn_id) {
            return fail(self, ErrorCode::CONCURRENT_TRANSACTIONS);
        }
        let t = self.txns[&txn_id].clone();
        if let Some(e) = expected {
            // Kafka's `isValidProducerId`.
            let valid = t.producer_epoch == NO_EPOCH
                || e.0 == t.producer_id
                || (e.0 == t.prev_producer_id && epoch_exhausted(e.1));
            if !valid {
                return fail(self, ErrorCode::PRODUCER_FENCED);
            }
        }
        match t.state {
            TxnState::PrepareCommit | TxnState::PrepareAbort => {
                fail(self, ErrorCode::CONCURRENT_TRANSACTIONS)
            }
            TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort => {
                let mut next = t.clone();
                if epoch_exhausted(t.producer_epoch)
                    && expected.is_none_or(|e| e.1 == t.producer_epoch)
                {
                    let producer_id = match self.ids.next_id() {
                        Ok(id) => id,
                        Err(e) => return fail(self, e),
                    };
                    next.prev_producer_id = t.producer_id;
                    next.producer_id = producer_id;
                    next.producer_epoch = 0;
                    next.last_producer_epoch =
                        if expected.is_some() { t.producer_epoch } else { NO_EPOCH };
                } else {
                    match expected.map(|e| e.1) {
                        None => {
                            next.producer_epoch = t.producer_epoch + 1;
                            next.last_producer_epoch = NO_EPOCH;
                        }
                        Some(e) if t.producer_epoch == NO_EPOCH || e == t.producer_epoch => {
                            next.producer_epoch = t.producer_epoch + 1;
                            next.last_producer_epoch = t.producer_epoch;
                        }
                        // A retry of a bump whose answer was lost: the current epoch again.
                        Some(e) if e == t.last_producer_epoch => {}
                        Some(_) => return fail(self, ErrorCode::PRODUCER_FENCED),
                    }
                }
                next.timeout_ms = timeout_ms;
                next.state = TxnState::Empty;
                next.partitions.clear();
                next.offsets.clear();
                next.start_ms = -1;
                next.last_update_ms = now;
                self.issue(&txn_id, Some(next), Then::Init(token));
            }
            TxnState::Ongoing => {
                // Abort the zombie's transaction with the epoch bumped; the producer's
                // retry then bumps it once more (or rotates the id).
                let mut next = t.clone();
                if t.producer_epoch < i16::MAX {
                    next.producer_epoch = t.producer_epoch + 1;
                }
                next.last_producer_epoch = NO_EPOCH;
                next.state = TxnState::PrepareAbort;
                next.last_update_ms = now;
                self.issue(&txn_id, Some(next), Then::Fence(token));
            }
            TxnState::PrepareEpochFence | TxnState::Dead => {
                fail(self, ErrorCode::CONCURRENT_TRANSACTIONS)
            }
        }
    }
}
