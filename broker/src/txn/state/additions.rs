//! What an ongoing transaction takes in: AddPartitionsToTxn (and v4's `verify_only`
//! check), AddOffsetsToTxn and TxnOffsetCommit, each checked against the producer's id
//! and epoch and against the bounds of one transaction.

use super::*;

impl TxnMachine {
    /// The checks AddPartitionsToTxn, AddOffsetsToTxn and TxnOffsetCommit share.
    fn check_producer(&self, txn_id: &str, producer_id: i64, epoch: i16) -> Result<(), ErrorCode> {
        if txn_id.is_empty() {
            return Err(ErrorCode::INVALID_REQUEST);
        }
        let Some(t) = self.txns.get(txn_id) else {
            return Err(ErrorCode::INVALID_PRODUCER_ID_MAPPING);
        };
        if t.producer_id != producer_id {
            return Err(ErrorCode::INVALID_PRODUCER_ID_MAPPING);
        }
        if t.producer_epoch != epoch {
            return Err(ErrorCode::PRODUCER_FENCED);
        }
        if self.busy(txn_id) || t.state.is_prepare() {
            return Err(ErrorCode::CONCURRENT_TRANSACTIONS);
        }
        Ok(())
    }

    pub(super) fn verify(
        &self,
        txn_id: &str,
        producer_id: i64,
        epoch: i16,
        partitions: &[TopicPartition],
    ) -> Vec<ErrorCode> {
        if let Err(e) = self.check_producer(txn_id, producer_id, epoch) {
            return vec![e; partitions.len()];
        }
        let t = &self.txns[txn_id];
        partitions
            .iter()
            .map(|p| {
                if t.state == TxnState::Ongoing && t.partitions.contains(p) {
                    ErrorCode::NONE
                } else {
                    ErrorCode::INVALID_TXN_STATE
                }
            })
            .collect()
    }

    /// Kafka's `prepareAddPartitions`: from Empty or Complete* a new transaction starts.
    fn begin_or_continue(t: &TxnMetadata, now: i64) -> TxnMetadata {
        let mut next = t.clone();
        if t.state != TxnState::Ongoing {
            next.partitions.clear();
            next.offsets.clear();
            next.start_ms = now;
        }
        next.state = TxnState::Ongoing;
        next.last_update_ms = now;
        next
    }

    pub(super) fn add_partitions(
        &mut self,
        token: Token,
        txn_id: &str,
        producer_id: i64,
        epoch: i16,
        partitions: Vec<TopicPartition>,
        now: i64,
    ) {
        if let Err(e) = self.check_producer(txn_id, producer_id, epoch) {
            return self.reply(token, TxnReply::AddPartitions(e));
        }
        let t = &self.txns[txn_id];
        if t.state == TxnState::Ongoing && partitions.iter().all(|p| t.partitions.contains(p)) {
            return self.reply(token, TxnReply::AddPartitions(ErrorCode::NONE));
        }
        let mut next = Self::begin_or_continue(t, now);
        next.partitions.extend(partitions);
        if next.partitions.len() > MAX_TXN_PARTITIONS {
            return self.reply(token, TxnReply::AddPartitions(ErrorCode::INVALID_REQUEST));
        }
        self.issue(txn_id, Some(next), Then::Added(token));
    }

    pub(super) fn add_offsets(
        &mut self,
        token: Token,
        txn_id: &str,
        producer_id: i64,
        epoch: i16,
        group: String,
        now: i64,
    ) {
        if let Err(e) = self.check_producer(txn_id, producer_id, epoch) {
            return self.reply(token, TxnReply::Error(e));
        }
        if group.is_empty() {
            return self.reply(token, TxnReply::Error(ErrorCode::INVALID_GROUP_ID));
        }
        let t = &self.txns[txn_id];
        if t.state == TxnState::Ongoing && t.offsets.contains_key(&group) {
            return self.reply(token, TxnReply::Error(ErrorCode::NONE));
        }
        let mut next = Self::begin_or_continue(t, now);
        next.offsets.insert(group, BTreeMap::new());
        if next.offsets.len() > MAX_TXN_GROUPS {
            return self.reply(token, TxnReply::Error(ErrorCode::INVALID_REQUEST));
        }
        self.issue(txn_id, Some(next), Then::Ok(token));
    }

    #[expect(
        clippy::too_many_arguments,
        reason = "the fields of TxnOffsetCommit, as Kafka's handler takes them"
    )]
    pub(super) fn txn_offset_commit(
        &mut self,
        token: Token,
        txn_id: &str,
        producer_id: i64,
        epoch: i16,
        group: String,
        offsets: Vec<(TopicPartition, PendingOffset)>,
        now: i64,
    ) {
        let check = self.check_producer(txn_id, producer_id, epoch).map_err(|e| {
            // What Kafka's log layer answers for a batch of another epoch in
            // `__consumer_offsets`.
            if e == ErrorCode::PRODUCER_FENCED {
                ErrorCode::INVALID_PRODUCER_EPOCH
            } else {
                e
            }
        });
        if let Err(e) = check {
            return self.reply(token, TxnReply::Error(e));
        }
        let t = &self.txns[txn_id];
        if t.state != TxnState::Ongoing || !t.offsets.contains_key(&group) {
            // The group was not added by AddOffsetsToTxn (KIP-890 part 1's verification).
            return self.reply(token, TxnReply::Error(ErrorCode::INVALID_TXN_STATE));
        }
        let mut next = t.clone();
        next.last_update_ms = now;
        let g = next.offsets.entry(group).or_default();
        for (tp, o) in offsets {
            if o.metadata.len() > self.config.offset_metadata_max_bytes {
                return self.reply(token, TxnReply::Error(ErrorCode::OFFSET_METADATA_TOO_LARGE));
            }
            g.insert(tp, o);
        }
        if next.offsets_count() > MAX_TXN_OFFSETS {
            return self.reply(token, TxnReply::Error(ErrorCode::INVALID_REQUEST));
        }
        if next.metadata_bytes() > MAX_TXN_METADATA_BYTES {
            return self.reply(token, TxnReply::Error(ErrorCode::OFFSET_METADATA_TOO_LARGE));
        }
        self.issue(txn_id, Some(next), Then::Ok(token));
    }
}
