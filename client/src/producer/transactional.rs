//! The transactional producer's calls (KIP-98, KIP-447): `init_transactions`,
//! `begin_transaction`, `send_offsets_to_transaction`, `commit_transaction` and
//! `abort_transaction`, each a move of the [`transaction`] manager's state around its
//! calls to the coordinators.

use std::sync::Arc;
use std::time::Instant;

use sluice_protocol::api_key::ApiKey;

use super::transaction::{self, Class, TransactionState, Transactions};
use super::{ConsumerGroupMetadata, Producer};
use crate::error::{ClientError, Result};
use crate::metadata::TopicPartition;

impl Producer {
    /// The transaction state, for a transactional producer.
    pub fn transaction_state(&self) -> Option<TransactionState> {
        self.inner.txn.as_ref().map(|t| t.state())
    }

    fn transactions(&self, operation: &str) -> Result<&Arc<Transactions>> {
        self.inner.txn.as_ref().ok_or_else(|| ClientError::Transaction {
            kind: crate::error::TransactionErrorKind::InvalidState,
            code: None,
            reason: format!("cannot {operation}: transactional.id is not set"),
        })
    }

    /// Gets the producer id and epoch of `transactional.id` from its coordinator, which
    /// fences every earlier producer with the same id and ends the transaction it left
    /// open. Call once, before the first transaction; bounded by `max.block.ms` (and may
    /// be called again after it timed out).
    ///
    /// # Errors
    /// [`ClientError::Transaction`] (fatal: fenced, not authorized) or
    /// [`ClientError::MaxBlock`].
    pub async fn init_transactions(&self) -> Result<()> {
        let txn = self.transactions("init transactions")?;
        txn.transition(TransactionState::Initializing, "init transactions")?;
        let deadline = Instant::now() + self.inner.config.max_block;
        match txn.init_producer_id(&self.inner.cluster, deadline, None).await {
            Ok(stamp) => {
                txn.with(|m| m.stamp = Some(stamp));
                txn.transition(TransactionState::Ready, "init transactions")
            }
            Err(e @ ClientError::MaxBlock { .. }) => Err(e),
            Err(e) => Err(txn.fail(Class::Fatal, e)),
        }
    }

    /// Starts a transaction: records sent from now on commit or abort together.
    ///
    /// # Errors
    /// [`ClientError::Transaction`] outside the Ready state.
    pub fn begin_transaction(&self) -> Result<()> {
        self.transactions("begin a transaction")?
            .transition(TransactionState::InTransaction, "begin a transaction")
    }

    /// Makes `offsets` (the consumer's next positions) commit for `group` with the
    /// transaction: AddOffsetsToTxn, then TxnOffsetCommit at the group's coordinator with
    /// the consumer's generation and member id (KIP-447), so a zombie member cannot commit.
    ///
    /// # Errors
    /// [`ClientError::Transaction`]: abortable (the member was fenced, not authorized) or
    /// fatal (the producer was fenced); [`ClientError::MaxBlock`].
    pub async fn send_offsets_to_transaction(
        &self,
        offsets: &[(TopicPartition, crate::consumer::OffsetAndMetadata)],
        group: &ConsumerGroupMetadata,
    ) -> Result<()> {
        let txn = self.transactions("send offsets")?;
        if txn.state() != TransactionState::InTransaction {
            return Err(txn.with(|m| m.refusal("send offsets")));
        }
        let stamp = txn.stamp().expect("invariant: a transaction has a producer id");
        let deadline = Instant::now() + self.inner.config.max_block;
        match txn.send_offsets(&self.inner.cluster, stamp, offsets, group, deadline).await {
            Ok(()) => Ok(()),
            Err(e @ ClientError::MaxBlock { .. }) => Err(e),
            Err(e) => {
                let class = e
                    .code()
                    .and_then(|c| transaction::classify(ApiKey::TxnOffsetCommit, c))
                    .unwrap_or(Class::Abortable);
                Err(txn.fail(class, e))
            }
        }
    }

    /// Flushes every record sent in the transaction, then commits it (EndTxn). If any
    /// record failed, nothing commits: the error is returned and the transaction must be
    /// aborted. After a [`ClientError::MaxBlock`] it may be called again.
    ///
    /// # Errors
    /// [`ClientError::Transaction`] (abortable or fatal), [`ClientError::MaxBlock`].
    pub async fn commit_transaction(&self) -> Result<()> {
        let txn = self.transactions("commit a transaction")?;
        txn.transition(TransactionState::Committing, "commit a transaction")?;
        self.flush().await;
        if txn.state() != TransactionState::Committing {
            return Err(txn.with(|m| m.refusal("commit a transaction")));
        }
        self.end_transaction(txn, true).await
    }

    /// Aborts the transaction: records not yet sent fail with an `Aborted` transaction
    /// error, those in flight are waited for, then the coordinator writes ABORT markers.
    ///
    /// # Errors
    /// [`ClientError::Transaction`] (fatal, or no transaction), [`ClientError::MaxBlock`].
    pub async fn abort_transaction(&self) -> Result<()> {
        let txn = self.transactions("abort a transaction")?;
        txn.transition(TransactionState::Aborting, "abort a transaction")?;
        let released = self
            .inner
            .state
            .lock()
            .expect("lock")
            .accumulator
            .abort_queued(&transaction::aborted("the transaction was aborted"));
        self.inner.memory.add_permits(released);
        self.flush().await;
        self.end_transaction(txn, false).await
    }

    async fn end_transaction(&self, txn: &Arc<Transactions>, commit: bool) -> Result<()> {
        let operation = if commit { "commit a transaction" } else { "abort a transaction" };
        let deadline = Instant::now() + self.inner.config.max_block;
        let (stamp, started, bump) = txn
            .with(|m| (m.stamp.expect("invariant: initialized"), m.started, m.epoch_bump_required));
        if started {
            match txn.end(&self.inner.cluster, stamp, commit, deadline).await {
                Ok(()) => {}
                Err(e @ ClientError::MaxBlock { .. }) => return Err(e),
                Err(e) => return Err(txn.fail(Class::Fatal, e)),
            }
        }
        if bump && !commit {
            // A failed batch left a gap in its partition's sequences: a new epoch starts
            // them again (KIP-360), the coordinator keeps the producer id.
            match txn.init_producer_id(&self.inner.cluster, deadline, Some(stamp)).await {
                Ok(stamp) => txn.with(|m| {
                    m.stamp = Some(stamp);
                    m.epoch_bump_required = false;
                }),
                Err(e @ ClientError::MaxBlock { .. }) => return Err(e),
                Err(e) => return Err(txn.fail(Class::Fatal, e)),
            }
        }
        txn.with(|m| {
            m.partitions.clear();
            m.new_partitions.clear();
            m.started = false;
        });
        txn.transition(TransactionState::Ready, operation)
    }
}
