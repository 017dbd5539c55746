//! Transitions: a transactional id has at most one write in flight, issued with what to
//! do once it is durable ([`Then`]); when the driver reports it written the new metadata
//! replaces the old and the waiting request is answered, and when the write failed
//! nothing changes and the request is answered as an outage.

use super::*;

/// What to do when a transition's write completes.
#[derive(Debug)]
pub(super) enum Then {
    /// Answer InitProducerId with the new id and epoch.
    Init(Token),
    /// A fence's PrepareAbort: answer the InitProducerId CONCURRENT_TRANSACTIONS, then
    /// complete.
    Fence(Token),
    /// Answer AddPartitionsToTxn.
    Added(Token),
    /// Answer NONE (AddOffsets, TxnOffsetCommit).
    Ok(Token),
    /// A Prepare* from EndTxn (answered NONE) or from the timeout (no one waits): then
    /// complete.
    Prepare(Option<Token>),
    /// The Complete* record: nothing waits.
    Complete,
    /// An expired id's tombstone.
    Remove,
}

#[derive(Debug)]
pub(super) struct Pending {
    txn_id: String,
    /// The metadata once written (`None`: the id is removed).
    next: Option<TxnMetadata>,
    then: Then,
}

impl TxnMachine {
    /// Issues the write of `next` (or a tombstone) for `txn_id`.
    pub(super) fn issue(&mut self, txn_id: &str, next: Option<TxnMetadata>, then: Then) {
        let id = self.next_write;
        self.next_write += 1;
        let record = record(txn_id, next.as_ref());
        self.in_flight.insert(txn_id.to_owned(), id);
        self.writes.insert(id, Pending { txn_id: txn_id.to_owned(), next, then });
        self.out.push(Output::Write { id, record });
        self.index(txn_id);
    }

    pub(super) fn written(&mut self, id: WriteId, result: Result<(), ErrorCode>, now: i64) {
        let Some(p) = self.writes.remove(&id) else { return };
        let txn_id = p.txn_id.clone();
        self.apply_written(p, id, result);
        self.unpark(&txn_id, now);
    }

    fn apply_written(&mut self, p: Pending, id: WriteId, result: Result<(), ErrorCode>) {
        if self.in_flight.get(&p.txn_id) == Some(&id) {
            self.in_flight.remove(&p.txn_id);
        }
        if let Err(e) = result {
            tracing::warn!(txn = %p.txn_id, error = ?e, "__transaction_state write failed");
            // Kafka answers a failed append of the coordinator as an outage the client
            // retries.
            let e = ErrorCode::COORDINATOR_NOT_AVAILABLE;
            match p.then {
                Then::Init(token) | Then::Fence(token) => {
                    self.reply(token, TxnReply::InitProducerId(Err(e)))
                }
                Then::Added(token) => self.reply(token, TxnReply::AddPartitions(e)),
                Then::Ok(token) | Then::Prepare(Some(token)) => {
                    self.reply(token, TxnReply::Error(e))
                }
                Then::Complete => {
                    self.retry_complete.insert(p.txn_id.clone());
                }
                Then::Prepare(None) | Then::Remove => {}
            }
            // A fresh id that was never written is forgotten again, index entry and all.
            if self.txns.get(&p.txn_id).is_some_and(|t| t.producer_epoch == NO_EPOCH) {
                if let Some(t) = self.txns.remove(&p.txn_id) {
                    self.out.push(Output::Index(IndexUpdate::Remove(t.producer_id)));
                }
            }
            self.index(&p.txn_id);
            return;
        }
        let old_pid = self.txns.get(&p.txn_id).map(|t| t.producer_id);
        match p.next {
            Some(next) => {
                let pid = next.producer_id;
                self.txns.insert(p.txn_id.clone(), next);
                if let Some(old) = old_pid.filter(|&old| old != pid) {
                    self.out.push(Output::Index(IndexUpdate::Remove(old)));
                }
            }
            None => {
                self.txns.remove(&p.txn_id);
                if let Some(old) = old_pid {
                    self.out.push(Output::Index(IndexUpdate::Remove(old)));
                }
            }
        }
        match p.then {
            Then::Init(token) => {
                let t = &self.txns[&p.txn_id];
                let answer = Ok((t.producer_id, t.producer_epoch));
                self.reply(token, TxnReply::InitProducerId(answer));
            }
            Then::Fence(token) => {
                self.reply(
                    token,
                    TxnReply::InitProducerId(Err(ErrorCode::CONCURRENT_TRANSACTIONS)),
                );
                self.start_completion(&p.txn_id);
            }
            Then::Added(token) => self.reply(token, TxnReply::AddPartitions(ErrorCode::NONE)),
            Then::Ok(token) => self.reply(token, TxnReply::Error(ErrorCode::NONE)),
            Then::Prepare(token) => {
                if let Some(token) = token {
                    self.reply(token, TxnReply::Error(ErrorCode::NONE));
                }
                self.start_completion(&p.txn_id);
            }
            Then::Complete | Then::Remove => {}
        }
        self.index(&p.txn_id);
    }

    /// Whether `txn_id` is being removed (its tombstone is in flight): Kafka's Dead.
    pub(super) fn dead(&self, txn_id: &str) -> bool {
        self.in_flight
            .get(txn_id)
            .and_then(|w| self.writes.get(w))
            .is_some_and(|p| p.next.is_none())
    }
}
