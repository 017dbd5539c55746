//! `sluiced`, the Sluice broker: a single-node log broker that speaks the Kafka protocol.
//!
//! The module map follows the request path: [`server`] (accept loop, limits, shutdown)
//! → [`connection`] (the only module that touches a socket) → [`dispatch`] (one `match`
//! on the API) → [`api`] (one module per Kafka API) → [`partition`] (the async face of a
//! log) → [`storage`] (the synchronous partition log). [`topics`] is the durable topic
//! catalog, [`topic_config`] the one table of topic configs, [`topic_rules`] what any topic
//! may be (names, internal topics, [`topic_rules::TopicError`]); [`config`] and [`cli`] turn
//! Kafka's property names and flags into a validated [`config::Config`]; [`error`] maps internal errors to Kafka error codes in one place. [`metrics`] keeps the counters and
//! [`console`] serves them: the status page, `/api`, `/metrics` and `/health`. [`blocking`]
//! is the one way onto tokio's blocking threads.

pub mod api;
pub mod blocking;
pub mod broker;
pub mod cli;
pub mod config;
pub mod connection;
pub mod console;
pub mod dispatch;
pub mod error;
pub mod group;
pub mod heavy;
pub mod internal_log;
pub mod log_cleaner;
pub mod metrics;
pub mod partition;
pub mod producer_ids;
pub mod schedule;
pub mod server;
pub mod storage;
pub mod topic_config;
pub mod topic_rules;
pub mod topics;
pub mod txn;
