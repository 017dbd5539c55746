//! Transactions (KIP-98, with KIP-447's group metadata): the transaction manager's state
//! machine, sans I/O, and the calls to the transaction coordinator that drive it.
//!
//! As Java's `TransactionManager`:
//! ```text
//! Uninitialized -init_transactions-> Initializing -> Ready -begin-> InTransaction
//! InTransaction -commit-> Committing -> Ready      InTransaction -abort-> Aborting -> Ready
//! InTransaction | Committing | Initializing -abortable error-> AbortableError -abort-> Aborting
//! any -fatal error-> FatalError (only close is left)
//! ```
//! A partition joins the transaction (AddPartitionsToTxn, sent by the sender task) before
//! its first batch of the transaction leaves; commit flushes every send first and fails
//! if any of them failed. Errors are classified as Kafka's are: CONCURRENT_TRANSACTIONS,
//! COORDINATOR_LOAD_IN_PROGRESS and a moved coordinator are retried with backoff; a fenced
//! epoch, INVALID_TXN_STATE and missing authorization are fatal; a failed send or offset
//! commit makes the transaction abortable.
//!
//! Files: `machine.rs` the state machine, `class.rs` what an error means for the
//! transaction, `coordinator.rs` the calls to the coordinators; this file the handle the
//! producer and its sender share.

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::accumulator::ProducerStamp;
use crate::error::{ClientError, Result, TransactionErrorKind};
use crate::net::Connection;

mod class;
mod coordinator;
mod machine;

pub use class::{classify, classify_send, Class};
pub use machine::{Machine, TransactionState};

/// A transactional producer's transaction manager and its coordinator.
#[derive(Debug)]
pub struct Transactions {
    /// `transactional.id`.
    pub id: String,
    /// `transaction.timeout.ms`.
    pub timeout: Duration,
    /// The state, readable without the lock (every send checks it).
    state: AtomicU8,
    /// Bumped by every `begin_transaction`: an answer to an add of an earlier transaction
    /// is dropped.
    generation: AtomicU64,
    machine: Mutex<Machine>,
    coordinator: tokio::sync::Mutex<Option<Arc<Connection>>>,
}

impl Transactions {
    /// The manager of `transactional.id` `id`.
    pub fn new(id: String, timeout: Duration) -> Self {
        Transactions {
            id,
            timeout,
            state: AtomicU8::new(TransactionState::Uninitialized as u8),
            generation: AtomicU64::new(0),
            machine: Mutex::new(Machine::default()),
            coordinator: tokio::sync::Mutex::new(None),
        }
    }

    /// The state now.
    pub fn state(&self) -> TransactionState {
        TransactionState::from_u8(self.state.load(Ordering::Acquire))
    }

    /// The current transaction's number.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Runs `f` on the machine, publishing the state it leaves.
    pub fn with<T>(&self, f: impl FnOnce(&mut Machine) -> T) -> T {
        let mut m = self.machine.lock().expect("lock");
        let out = f(&mut m);
        self.state.store(m.state() as u8, Ordering::Release);
        out
    }

    /// Moves to `to` (see [`Machine::transition`]).
    ///
    /// # Errors
    /// [`ClientError::Transaction`] when the move is not allowed.
    pub fn transition(&self, to: TransactionState, operation: &str) -> Result<()> {
        self.with(|m| m.transition(to, operation))?;
        if to == TransactionState::InTransaction {
            self.generation.fetch_add(1, Ordering::AcqRel);
        }
        Ok(())
    }

    /// Whether a record may be sent now (only inside a transaction).
    ///
    /// # Errors
    /// [`ClientError::Transaction`] outside a transaction or after a failure.
    pub fn check_send(&self) -> Result<()> {
        match self.state() {
            TransactionState::InTransaction => Ok(()),
            _ => Err(self.with(|m| m.refusal("send"))),
        }
    }

    /// Records a failure (see [`Machine::fail`]).
    pub fn fail(&self, class: Class, error: ClientError) -> ClientError {
        self.with(|m| m.fail(class, error))
    }

    /// The producer id and epoch, once initialized.
    pub fn stamp(&self) -> Option<ProducerStamp> {
        self.machine.lock().expect("lock").stamp
    }
}

/// The error of a record whose transaction was aborted before it was sent.
pub fn aborted(reason: &str) -> ClientError {
    ClientError::Transaction {
        kind: TransactionErrorKind::Aborted,
        code: None,
        reason: reason.to_string(),
    }
}
