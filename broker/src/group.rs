//! The group coordinator: Kafka's classic consumer group protocol and committed offsets.
//!
//! - [`state`]: the coordinator as a sans-I/O state machine (`step(input, now) ->
//!   outputs`), answering the [`request`] types. Its behaviour is split by concern:
//!   [`rebalance`] (JoinGroup and the join phase), [`assignment`] (SyncGroup),
//!   [`liveness`] (Heartbeat, LeaveGroup, expiry of members) and [`offsets`] (commits,
//!   fetches, deletion, expiry, listing); [`membership`] keeps one group's bookkeeping.
//! - [`records`]: keys and values of `__consumer_offsets` in Kafka's schemas.

pub mod assignment;
pub mod liveness;
pub mod membership;
pub mod offsets;
pub mod rebalance;
pub mod records;
pub mod request;
pub mod state;

#[cfg(test)]
mod tests;
