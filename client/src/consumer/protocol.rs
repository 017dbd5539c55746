//! The payloads of Kafka's classic consumer protocol (the subscription in JoinGroup, the
//! assignment in SyncGroup): the codec is sluice-protocol's
//! [`consumer_protocol`](sluice_protocol::consumer_protocol), shared with the broker, and
//! is re-exported here under the client's path.

/// The codec's error under the name it had in this crate.
pub use sluice_protocol::consumer_protocol::ConsumerProtocolError as ProtocolError;
pub use sluice_protocol::consumer_protocol::*;
