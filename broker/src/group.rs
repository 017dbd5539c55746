//! The group coordinator: Kafka's classic consumer group protocol and committed offsets,
//! for every group (a single node coordinates them all).
//!
//! - [`state`]: the coordinator as a sans-I/O state machine, [`state::GroupMachine`]
//!   (`step(input, now) -> outputs`), answering the [`request`] types
//!   ([`request::GroupRequest`], [`request::GroupReply`]). Its behaviour is split by concern:
//!   [`rebalance`] (JoinGroup and the join phase), [`assignment`] (SyncGroup),
//!   [`liveness`] (Heartbeat, LeaveGroup, expiry of members) and [`offsets`] (commits,
//!   fetches, deletion, expiry, listing); [`membership`] keeps one group's bookkeeping.
//! - [`types`]: the plain types the others share (tokens, partitions, committed offsets,
//!   group states, protocols); it uses none of them, so their imports form no cycle.
//! - [`records`]: keys and values of `__consumer_offsets` in Kafka's schemas.
//! - [`store`]: the internal topic on the storage engine: loading and appends (the log cleaner compacts it).
//! - `driver`: the task that owns the clock, timers and log writes and runs the machine.
//! - [`GroupCoordinator`]: the handle the request handlers in `api/` call.
//!
//! Invariants: the driver is the only writer of `__consumer_offsets` and the only owner
//! of the state machine; handlers reach it through a bounded channel and wait on a
//! oneshot for their reply, so the machine itself never blocks and never locks.
//!
//! The driver runs on a thread of its own (a current-thread runtime): a step is O(n log n)
//! in its request's elements, and a request of 2^18 elements must not hold up an
//! async worker that other clients' connections run on.

pub mod assignment;
mod driver;
pub mod liveness;
pub mod membership;
pub mod offsets;
pub mod rebalance;
pub mod records;
pub mod request;
pub mod state;
pub mod store;
pub mod types;

#[cfg(test)]
mod tests;

use std::sync::Arc;

use thiserror::Error;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::blocking;
use crate::config::Config;
use crate::topics::{TopicError, Topics};
use driver::Command;
use request::{
    CommitRequest, DeleteOffsetsResult, GroupDescription, GroupListing, GroupOffsets, GroupReply,
    GroupRequest, HeartbeatRequest, JoinRequest, JoinResult, LeaveResult, LeavingMember,
    ListFilter, OffsetToCommit, SyncRequest, SyncResult, TxnMember,
};
use sluice_protocol::error_code::ErrorCode;
use state::GroupConfig;
use store::OffsetsLog;
use types::TopicPartition;

/// Requests queued for the driver before handlers wait to send.
const QUEUE: usize = 1024;

/// Elements of a request's list past which a handler reads it on a blocking thread.
const OFF_WORKER_ELEMENTS: usize = 4096;

/// `read(list)`, on a blocking thread when the list is long enough to hold up an async
/// worker (JoinGroup's protocols, SyncGroup's assignments: up to 2^18).
pub async fn off_worker_if<T, R>(list: Vec<T>, read: impl FnOnce(Vec<T>) -> R + Send + 'static) -> R
where
    T: Send + 'static,
    R: Send + 'static,
{
    if list.len() <= OFF_WORKER_ELEMENTS {
        return read(list);
    }
    blocking::run("long request list", move || read(list)).await
}

/// Why the coordinator cannot serve.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum GroupError {
    /// The internal topic could not be opened or created.
    #[error("cannot open __consumer_offsets: {0}")]
    Topic(#[from] TopicError),
    /// The internal topic exists without a partition 0.
    #[error("__consumer_offsets has no partition 0")]
    NoPartition,
    /// The coordinator task is not running (not started yet, or stopped).
    #[error("the group coordinator is not running")]
    Stopped,
    /// The coordinator answered with another request's reply: a bug in the broker, not
    /// an outage, so it is not answered as one.
    #[error("the group coordinator answered a {asked} request with {answered}")]
    Miswired {
        /// The request's API.
        asked: &'static str,
        /// The reply that came back.
        answered: String,
    },
}

impl GroupError {
    /// The Kafka error a request handler answers for it: a coordinator that does not run
    /// is COORDINATOR_NOT_AVAILABLE (clients look for it again and retry), a miswired
    /// reply UNKNOWN_SERVER_ERROR.
    pub fn error_code(&self) -> ErrorCode {
        match self {
            GroupError::Miswired { .. } => ErrorCode::UNKNOWN_SERVER_ERROR,
            _ => ErrorCode::COORDINATOR_NOT_AVAILABLE,
        }
    }
}

/// The coordinator's task, made with its handle by [`GroupCoordinator::new`] and run once
/// by the server ([`GroupDriver::run`]).
#[derive(Debug)]
pub struct GroupDriver {
    config: GroupConfig,
    commands: mpsc::Receiver<Command>,
}

/// The handle to the coordinator that request handlers use.
#[derive(Debug)]
pub struct GroupCoordinator {
    commands: mpsc::Sender<Command>,
}

impl GroupCoordinator {
    /// A coordinator, and its driver: requests sent before the driver runs wait.
    pub fn new(config: &Config) -> (GroupCoordinator, GroupDriver) {
        let group_config = GroupConfig {
            initial_rebalance_delay_ms: config.group_initial_rebalance_delay_ms as i64,
            offsets_retention_ms: config.offsets_retention_ms,
            offsets_retention_check_interval_ms: config.offsets_retention_check_interval_ms,
            ..GroupConfig::default()
        };
        let (tx, rx) = mpsc::channel(QUEUE);
        let driver = GroupDriver { config: group_config, commands: rx };
        (GroupCoordinator { commands: tx }, driver)
    }

    /// Sends a request and waits for its reply (a JoinGroup may wait for a whole join
    /// phase); `pick` takes the reply's variant for the request's, so the one place where
    /// a reply of the wrong kind could appear is here, where it is logged as the bug it
    /// is.
    ///
    /// # Errors
    /// [`GroupError::Stopped`] when the coordinator does not run,
    /// [`GroupError::Miswired`] for a reply of another request's kind.
    ///
    /// # Cancel safety
    /// Dropping the future drops the reply; the coordinator's state change (a join, a
    /// commit) may still happen, as when a client disconnects.
    async fn call<T>(
        &self,
        asked: &'static str,
        request: GroupRequest,
        pick: impl FnOnce(GroupReply) -> Result<T, Box<GroupReply>>,
    ) -> Result<T, GroupError> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(Command::Request { request, reply: tx })
            .await
            .map_err(|_| GroupError::Stopped)?;
        let reply = rx.await.map_err(|_| GroupError::Stopped)?;
        pick(reply).map_err(|other| {
            let e = GroupError::Miswired { asked, answered: format!("{other:?}") };
            tracing::error!(error = %e, "group coordinator bug");
            e
        })
    }

    /// JoinGroup (waits for the join phase).
    ///
    /// # Errors
    /// [`GroupError::Stopped`], or [`GroupError::Miswired`] (a bug).
    pub async fn join(&self, r: JoinRequest) -> Result<JoinResult, GroupError> {
        self.call("JoinGroup", GroupRequest::Join(r), |reply| match reply {
            GroupReply::Join(r) => Ok(r),
            other => Err(Box::new(other)),
        })
        .await
    }

    /// SyncGroup (waits for the leader's assignment).
    ///
    /// # Errors
    /// As [`Self::join`].
    pub async fn sync(&self, r: SyncRequest) -> Result<SyncResult, GroupError> {
        self.call("SyncGroup", GroupRequest::Sync(r), |reply| match reply {
            GroupReply::Sync(r) => Ok(r),
            other => Err(Box::new(other)),
        })
        .await
    }

    /// Heartbeat.
    ///
    /// # Errors
    /// As [`Self::join`].
    pub async fn heartbeat(&self, r: HeartbeatRequest) -> Result<ErrorCode, GroupError> {
        self.call("Heartbeat", GroupRequest::Heartbeat(r), |reply| match reply {
            GroupReply::Heartbeat(e) => Ok(e),
            other => Err(Box::new(other)),
        })
        .await
    }

    /// LeaveGroup of `members` from `group`.
    ///
    /// # Errors
    /// As [`Self::join`].
    pub async fn leave(
        &self,
        group: String,
        members: Vec<LeavingMember>,
    ) -> Result<LeaveResult, GroupError> {
        self.call("LeaveGroup", GroupRequest::Leave { group, members }, |reply| match reply {
            GroupReply::Leave(r) => Ok(r),
            other => Err(Box::new(other)),
        })
        .await
    }

    /// OffsetCommit: an error per entry, in request order.
    ///
    /// # Errors
    /// As [`Self::join`].
    pub async fn commit(&self, r: CommitRequest) -> Result<Vec<ErrorCode>, GroupError> {
        self.call("OffsetCommit", GroupRequest::Commit(r), |reply| match reply {
            GroupReply::Commit(r) => Ok(r),
            other => Err(Box::new(other)),
        })
        .await
    }

    /// OffsetFetch: per group, the partitions (`None`: all it has).
    ///
    /// # Errors
    /// As [`Self::join`].
    pub async fn fetch_offsets(
        &self,
        groups: Vec<(String, Option<Vec<TopicPartition>>)>,
    ) -> Result<Vec<GroupOffsets>, GroupError> {
        self.call("OffsetFetch", GroupRequest::FetchOffsets(groups), |reply| match reply {
            GroupReply::FetchOffsets(r) => Ok(r),
            other => Err(Box::new(other)),
        })
        .await
    }

    /// OffsetDelete of `partitions` from `group`.
    ///
    /// # Errors
    /// As [`Self::join`].
    pub async fn delete_offsets(
        &self,
        group: String,
        partitions: Vec<TopicPartition>,
    ) -> Result<DeleteOffsetsResult, GroupError> {
        let request = GroupRequest::DeleteOffsets { group, partitions };
        self.call("OffsetDelete", request, |reply| match reply {
            GroupReply::DeleteOffsets(r) => Ok(r),
            other => Err(Box::new(other)),
        })
        .await
    }

    /// ListGroups: an error and the groups.
    ///
    /// # Errors
    /// As [`Self::join`].
    pub async fn list(
        &self,
        filter: ListFilter,
    ) -> Result<(ErrorCode, Vec<GroupListing>), GroupError> {
        self.call("ListGroups", GroupRequest::List(filter), |reply| match reply {
            GroupReply::List { error, groups } => Ok((error, groups)),
            other => Err(Box::new(other)),
        })
        .await
    }

    /// DescribeGroups.
    ///
    /// # Errors
    /// As [`Self::join`].
    pub async fn describe(&self, groups: Vec<String>) -> Result<Vec<GroupDescription>, GroupError> {
        self.call("DescribeGroups", GroupRequest::Describe(groups), |reply| match reply {
            GroupReply::Describe(r) => Ok(r),
            other => Err(Box::new(other)),
        })
        .await
    }

    /// DeleteGroups: an error per group, in request order.
    ///
    /// # Errors
    /// As [`Self::join`].
    pub async fn delete(&self, groups: Vec<String>) -> Result<Vec<ErrorCode>, GroupError> {
        self.call("DeleteGroups", GroupRequest::Delete(groups), |reply| match reply {
            GroupReply::Delete(r) => Ok(r),
            other => Err(Box::new(other)),
        })
        .await
    }

    /// Commits a committed transaction's offsets to `group` as ordinary commits, without
    /// the generation check (TxnOffsetCommit checked the member): an error per entry.
    ///
    /// # Errors
    /// As [`Self::join`].
    pub async fn commit_txn_offsets(
        &self,
        group: String,
        offsets: Vec<OffsetToCommit>,
    ) -> Result<Vec<ErrorCode>, GroupError> {
        let request = GroupRequest::CommitTxnOffsets { group, offsets };
        self.call("TxnOffsetCommit", request, |reply| match reply {
            GroupReply::Commit(r) => Ok(r),
            other => Err(Box::new(other)),
        })
        .await
    }

    /// TxnOffsetCommit's member check (KIP-447): NONE, ILLEGAL_GENERATION,
    /// UNKNOWN_MEMBER_ID, FENCED_INSTANCE_ID, COORDINATOR_LOAD_IN_PROGRESS.
    ///
    /// # Errors
    /// As [`Self::join`].
    pub async fn validate_txn_member(&self, member: TxnMember) -> Result<ErrorCode, GroupError> {
        self.call("TxnOffsetCommit", GroupRequest::ValidateTxnMember(member), |reply| match reply {
            GroupReply::Heartbeat(e) => Ok(e),
            other => Err(Box::new(other)),
        })
        .await
    }

    /// Tells the coordinator that topics were deleted, so their committed offsets go.
    /// Call it from a blocking thread (it waits while the coordinator's queue is full).
    pub fn topics_deleted_blocking(&self, topics: Vec<String>) {
        if !topics.is_empty() {
            // A coordinator that is not running has no offsets to remove.
            let _ = self.commands.blocking_send(Command::TopicsDeleted(topics));
        }
    }

    /// Makes the coordinator finish its writes and exit; returns once it has (at once if
    /// it is not running).
    pub async fn stop(&self) {
        let (tx, rx) = oneshot::channel();
        if self.commands.send(Command::Stop(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }
}

impl GroupDriver {
    /// Runs the coordinator until [`GroupCoordinator::stop`]: opens `__consumer_offsets`
    /// (creating it on first start), loads it, then serves from the coordinator's own
    /// thread. If the topic cannot be opened, logs why and every request fails with
    /// COORDINATOR_NOT_AVAILABLE.
    pub async fn run(self, topics: Arc<Topics>, shutdown: CancellationToken) {
        let opened =
            blocking::run("open __consumer_offsets", move || OffsetsLog::open(&topics)).or_log();
        let Some(opened) = opened.await else {
            return tracing::error!("group coordinator cannot start");
        };
        match opened {
            Ok(log) => {
                let log = Arc::new(log);
                let driver = driver::run(log, self.config, self.commands, shutdown);
                let (done, finished) = oneshot::channel();
                let thread =
                    std::thread::Builder::new().name("sluice-groups".into()).spawn(move || {
                        match tokio::runtime::Builder::new_current_thread().enable_time().build() {
                            Ok(runtime) => runtime.block_on(driver),
                            Err(e) => tracing::error!(error = %e, "group coordinator cannot start"),
                        }
                        let _ = done.send(());
                    });
                match thread {
                    Ok(_) => {
                        let _ = finished.await;
                    }
                    Err(e) => tracing::error!(error = %e, "group coordinator cannot start"),
                }
            }
            Err(e) => tracing::error!(error = %e, "group coordinator cannot start"),
        }
    }
}

#[cfg(test)]
mod handle_tests {
    use super::*;

    #[tokio::test]
    async fn a_reply_of_another_kind_is_a_server_error_and_a_stopped_coordinator_an_outage() {
        let (coordinator, mut parts) = GroupCoordinator::new(&Config::default());
        let driver = tokio::spawn(async move {
            if let Some(Command::Request { request: GroupRequest::Delete(_), reply }) =
                parts.commands.recv().await
            {
                let _ = reply.send(GroupReply::Heartbeat(ErrorCode::NONE));
            }
            parts.commands.close();
        });
        let miswired = coordinator.delete(vec!["g".into()]).await.unwrap_err();
        assert!(matches!(miswired, GroupError::Miswired { asked: "DeleteGroups", .. }));
        assert_eq!(miswired.error_code(), ErrorCode::UNKNOWN_SERVER_ERROR);
        driver.await.unwrap();
        let stopped = coordinator
            .heartbeat(HeartbeatRequest {
                group_id: "g".into(),
                generation: 1,
                member_id: "m".into(),
                instance_id: None,
            })
            .await
            .unwrap_err();
        assert!(matches!(stopped, GroupError::Stopped));
        assert_eq!(stopped.error_code(), ErrorCode::COORDINATOR_NOT_AVAILABLE);
    }
}
