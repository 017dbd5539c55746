//! EndTxn and the completion it starts: Ongoing → Prepare{Commit,Abort} (durable before
//! EndTxn is answered) → the driver's markers and offsets ([`Output::Complete`], reported
//! by [`Input::Completed`]) → Complete{Commit,Abort}.

use super::*;

impl TxnMachine {
    /// Kafka's `endTransaction`; `from_client` false for the coordinator's own aborts.
    #[expect(
        clippy::too_many_arguments,
        reason = "the fields of EndTxn and who asked, as Kafka's endTransaction takes them"
    )]
    pub(super) fn end_txn(
        &mut self,
        token: Option<Token>,
        txn_id: &str,
        producer_id: i64,
        epoch: i16,
        commit: bool,
        from_client: bool,
        now: i64,
    ) {
        let answer = |c: &mut TxnMachine, e: ErrorCode| {
            if let Some(token) = token {
                c.reply(token, TxnReply::Error(e));
            }
        };
        if txn_id.is_empty() {
            return answer(self, ErrorCode::INVALID_REQUEST);
        }
        let Some(t) = self.txns.get(txn_id) else {
            return answer(self, ErrorCode::INVALID_PRODUCER_ID_MAPPING);
        };
        if t.producer_id != producer_id {
            return answer(self, ErrorCode::INVALID_PRODUCER_ID_MAPPING);
        }
        // Strict equality for clients: they never bump the epoch with EndTxn.
        if (from_client && epoch != t.producer_epoch) || epoch < t.producer_epoch {
            return answer(self, ErrorCode::PRODUCER_FENCED);
        }
        if self.in_flight.contains_key(txn_id) {
            return answer(self, ErrorCode::CONCURRENT_TRANSACTIONS);
        }
        let same = |s: TxnState| {
            matches!(
                (s, commit),
                (TxnState::PrepareCommit | TxnState::CompleteCommit, true)
                    | (TxnState::PrepareAbort | TxnState::CompleteAbort, false)
            )
        };
        match t.state {
            TxnState::Ongoing => {
                let mut next = t.clone();
                if epoch != t.producer_epoch {
                    next.producer_epoch = epoch;
                    next.last_producer_epoch = NO_EPOCH;
                }
                next.state = if commit { TxnState::PrepareCommit } else { TxnState::PrepareAbort };
                next.last_update_ms = now;
                self.issue(txn_id, Some(next), Then::Prepare(token));
            }
            TxnState::CompleteCommit | TxnState::CompleteAbort if same(t.state) => {
                answer(self, ErrorCode::NONE)
            }
            // A retry while markers are written: the client retries until it completes.
            TxnState::PrepareCommit | TxnState::PrepareAbort if same(t.state) => {
                answer(self, ErrorCode::CONCURRENT_TRANSACTIONS)
            }
            _ => answer(self, ErrorCode::INVALID_TXN_STATE),
        }
    }

    pub(super) fn start_completion(&mut self, txn_id: &str) {
        let t = &self.txns[txn_id];
        let commit = t.state == TxnState::PrepareCommit;
        let offsets = if commit {
            t.offsets
                .iter()
                .filter(|(_, o)| !o.is_empty())
                .map(|(g, o)| {
                    (g.clone(), o.iter().map(|(tp, o)| (tp.clone(), o.clone())).collect())
                })
                .collect()
        } else {
            Vec::new()
        };
        let c = Completion {
            txn_id: txn_id.to_owned(),
            producer_id: t.producer_id,
            producer_epoch: t.producer_epoch,
            commit,
            partitions: t.partitions.iter().cloned().collect(),
            offsets,
        };
        self.completing.insert(txn_id.to_owned(), (t.producer_id, t.producer_epoch));
        self.out.push(Output::Complete(c));
    }

    pub(super) fn completed(&mut self, txn_id: &str, producer_id: i64, epoch: i16, now: i64) {
        if self.completing.get(txn_id) != Some(&(producer_id, epoch)) {
            return;
        }
        self.completing.remove(txn_id);
        self.write_complete(txn_id, now);
        self.unpark(txn_id, now);
    }

    pub(super) fn write_complete(&mut self, txn_id: &str, now: i64) {
        let Some(t) = self.txns.get(txn_id) else { return };
        if !t.state.is_prepare() {
            return;
        }
        let mut next = t.clone();
        next.state = if t.state == TxnState::PrepareCommit {
            TxnState::CompleteCommit
        } else {
            TxnState::CompleteAbort
        };
        next.partitions.clear();
        next.offsets.clear();
        next.last_update_ms = now;
        self.issue(txn_id, Some(next), Then::Complete);
    }
}
