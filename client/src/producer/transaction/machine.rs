//! The transaction manager's state machine, sans I/O: [`TransactionState`], the moves
//! Kafka allows between states, and [`Machine`], which keeps the state with the partitions
//! of the current transaction and the error that spoiled it.

use std::collections::HashSet;

use super::class::Class;
use crate::error::{ClientError, Result, TransactionErrorKind};
use crate::metadata::TopicPartition;
use crate::producer::accumulator::ProducerStamp;

/// Where a transactional producer is in its life (Java's `TransactionManager.State`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum TransactionState {
    /// `init_transactions` not called yet.
    Uninitialized = 0,
    /// Getting the producer id and epoch.
    Initializing = 1,
    /// Between transactions.
    Ready = 2,
    /// Records and offsets may be sent.
    InTransaction = 3,
    /// `commit_transaction` is flushing and ending the transaction.
    Committing = 4,
    /// `abort_transaction` is ending the transaction.
    Aborting = 5,
    /// The transaction cannot commit; only `abort_transaction` helps.
    AbortableError = 6,
    /// Only `close` is left.
    FatalError = 7,
}

impl TransactionState {
    pub(super) fn from_u8(v: u8) -> Self {
        use TransactionState::*;
        [
            Uninitialized,
            Initializing,
            Ready,
            InTransaction,
            Committing,
            Aborting,
            AbortableError,
            FatalError,
        ][usize::from(v.min(7))]
    }

    /// Whether Kafka allows moving from `self` to `to`.
    pub fn can_become(self, to: TransactionState) -> bool {
        use TransactionState::*;
        match to {
            Uninitialized => matches!(self, Ready | AbortableError),
            Initializing => matches!(self, Uninitialized | Initializing | Aborting),
            Ready => matches!(self, Initializing | Committing | Aborting),
            InTransaction => self == Ready,
            Committing => matches!(self, InTransaction | Committing),
            Aborting => matches!(self, InTransaction | AbortableError | Aborting),
            AbortableError => {
                matches!(self, InTransaction | Committing | AbortableError | Initializing)
            }
            FatalError => true,
        }
    }
}

/// The transaction manager's state, sans I/O.
#[derive(Debug)]
pub struct Machine {
    state: TransactionState,
    /// What put the producer in `AbortableError` or `FatalError`.
    error: Option<ClientError>,
    /// The producer id and epoch from InitProducerId.
    pub stamp: Option<ProducerStamp>,
    /// Partitions the coordinator knows to be in the current transaction.
    pub partitions: HashSet<TopicPartition>,
    /// Partitions sent to in this transaction before they were added. The first record
    /// to each wakes the sender, whose drain names the partition blocked and adds it
    /// while the batch lingers (Java's `newPartitionsInTransaction`); before, the add
    /// waited for the sender's next wake, the linger's end, and delayed the commit.
    pub new_partitions: HashSet<TopicPartition>,
    /// The coordinator knows of the transaction (a partition or offsets were added): it
    /// must be ended with EndTxn.
    pub started: bool,
    /// A sequenced batch failed: the epoch must be bumped (KIP-360) before the next
    /// transaction, or its sequences would not follow.
    pub epoch_bump_required: bool,
}

impl Default for Machine {
    fn default() -> Self {
        Machine {
            state: TransactionState::Uninitialized,
            error: None,
            stamp: None,
            partitions: HashSet::new(),
            new_partitions: HashSet::new(),
            started: false,
            epoch_bump_required: false,
        }
    }
}

impl Machine {
    /// The current state.
    pub fn state(&self) -> TransactionState {
        self.state
    }

    /// Moves to `to`, or says why that is not allowed now: the error that spoiled the
    /// transaction when there is one, else an invalid-state error naming `operation`.
    ///
    /// # Errors
    /// [`ClientError::Transaction`].
    pub fn transition(&mut self, to: TransactionState, operation: &str) -> Result<()> {
        if self.state.can_become(to) && self.state != TransactionState::FatalError {
            if to == TransactionState::Ready || to == TransactionState::InTransaction {
                self.error = None;
            }
            if to == TransactionState::InTransaction {
                self.partitions.clear();
                self.new_partitions.clear();
                self.started = false;
            }
            self.state = to;
            return Ok(());
        }
        Err(self.refusal(operation))
    }

    /// The error for `operation` attempted in the current state.
    pub fn refusal(&self, operation: &str) -> ClientError {
        match (&self.error, self.state) {
            (Some(e), TransactionState::AbortableError | TransactionState::FatalError) => {
                let kind = if self.state == TransactionState::FatalError {
                    TransactionErrorKind::Fatal
                } else {
                    TransactionErrorKind::Abortable
                };
                ClientError::Transaction {
                    kind,
                    code: e.code(),
                    reason: format!("cannot {operation}: an earlier failure: {e}"),
                }
            }
            _ => ClientError::Transaction {
                kind: TransactionErrorKind::InvalidState,
                code: None,
                reason: format!("cannot {operation} in state {:?}", self.state),
            },
        }
    }

    /// Records a failure of class `class` (a retry class is not a failure); returns the
    /// error to report.
    pub fn fail(&mut self, class: Class, error: ClientError) -> ClientError {
        let kind = match class {
            Class::Fatal => TransactionErrorKind::Fatal,
            _ => TransactionErrorKind::Abortable,
        };
        let to = if kind == TransactionErrorKind::Fatal {
            TransactionState::FatalError
        } else {
            TransactionState::AbortableError
        };
        // An abortable failure while aborting (a batch of the aborted transaction) or
        // after a fatal one changes nothing.
        if self.state.can_become(to) && self.state != TransactionState::FatalError {
            self.state = to;
            self.error = Some(error.clone());
        }
        match error {
            e @ ClientError::Transaction { .. } => e,
            e => ClientError::Transaction { kind, code: e.code(), reason: e.to_string() },
        }
    }
}

#[cfg(test)]
mod tests {
    use sluice_protocol::api_key::ApiKey;
    use sluice_protocol::error_code::ErrorCode;

    use super::*;
    use crate::producer::transaction::{aborted, classify};
    use TransactionState::*;

    fn at(state: TransactionState) -> Machine {
        Machine { state, ..Machine::default() }
    }

    #[test]
    fn the_transitions_are_kafkas() {
        let mut m = Machine::default();
        assert!(m.transition(InTransaction, "begin").is_err(), "begin before init");
        m.transition(Initializing, "init").unwrap();
        m.transition(Ready, "init").unwrap();
        for _ in 0..2 {
            m.transition(InTransaction, "begin").unwrap();
            let twice = m.transition(InTransaction, "begin").unwrap_err();
            assert!(
                matches!(
                    twice,
                    ClientError::Transaction { kind: TransactionErrorKind::InvalidState, .. }
                ),
                "{twice}"
            );
            m.transition(Committing, "commit").unwrap();
            assert!(m.transition(Aborting, "abort").is_err(), "no abort once committing");
            m.transition(Ready, "commit").unwrap();
            m.transition(InTransaction, "begin").unwrap();
            m.transition(Aborting, "abort").unwrap();
            m.transition(Ready, "abort").unwrap();
        }
        assert!(at(Ready).transition(Committing, "commit").is_err(), "commit outside a txn");
        assert!(at(Committing).transition(Committing, "commit").is_ok(), "a commit resumes");
    }

    #[test]
    fn an_abortable_error_allows_only_abort_and_names_its_cause() {
        let mut m = at(InTransaction);
        m.partitions.insert(TopicPartition { topic: "t".into(), partition: 0 });
        let cause = ClientError::kafka(ErrorCode::TOPIC_AUTHORIZATION_FAILED, None, "add t-0");
        let e = m.fail(Class::Abortable, cause);
        assert!(matches!(
            e,
            ClientError::Transaction { kind: TransactionErrorKind::Abortable, .. }
        ));
        assert_eq!(m.state(), AbortableError);
        let commit = m.transition(Committing, "commit").unwrap_err();
        assert_eq!(commit.code(), Some(ErrorCode::TOPIC_AUTHORIZATION_FAILED), "{commit}");
        assert!(m.transition(InTransaction, "begin").is_err());
        m.transition(Aborting, "abort").unwrap();
        // A batch of the aborted transaction failing now changes nothing.
        m.fail(Class::Abortable, aborted("aborted"));
        assert_eq!(m.state(), Aborting);
        m.transition(Ready, "abort").unwrap();
        m.transition(InTransaction, "begin").unwrap();
        assert!(m.partitions.is_empty() && !m.started, "a new transaction starts empty");
    }

    #[test]
    fn a_fatal_error_is_final() {
        let mut m = at(Committing);
        let fenced = ClientError::kafka(ErrorCode::PRODUCER_FENCED, None, "EndTxn");
        m.fail(classify(ApiKey::EndTxn, ErrorCode::PRODUCER_FENCED).unwrap(), fenced);
        assert_eq!(m.state(), FatalError);
        for to in [Initializing, Ready, InTransaction, Committing, Aborting] {
            let e = m.transition(to, "anything").unwrap_err();
            assert!(
                matches!(e, ClientError::Transaction { kind: TransactionErrorKind::Fatal, .. }),
                "{e}"
            );
            assert_eq!(e.code(), Some(ErrorCode::PRODUCER_FENCED));
        }
        m.fail(Class::Abortable, aborted("x"));
        assert_eq!(m.state(), FatalError, "nothing leaves FatalError");
    }
}
