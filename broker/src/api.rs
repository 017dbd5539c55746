//! Request handlers, one module per Kafka API, and [`Reply`], what a handler returns.
//!
//! Handlers never touch the socket: they return a reply that the connection writes.

pub mod alter_configs;
pub mod api_versions;
pub mod create_partitions;
pub mod create_topics;
pub mod delete_groups;
pub mod delete_records;
pub mod delete_topics;
pub mod describe_cluster;
pub mod describe_configs;
pub mod describe_groups;
pub mod describe_log_dirs;
pub mod describe_producers;
pub mod fetch;
pub mod find_coordinator;
pub mod heartbeat;
pub mod incremental_alter_configs;
pub mod init_producer_id;
pub mod join_group;
pub mod leave_group;
pub mod list_groups;
pub mod list_offsets;
pub mod metadata;
pub mod offset_commit;
pub mod offset_delete;
pub mod offset_fetch;
pub mod produce;
pub mod sasl;
pub mod sync_group;

use bytes::{Bytes, BytesMut};
use sluice_protocol::header::{RequestHeader, ResponseHeader};
use sluice_protocol::messages::Response;

use crate::storage::FileSlice;

/// A piece of a response frame.
#[derive(Debug)]
pub enum Part {
    /// Bytes built in memory (sizes, headers, small bodies).
    Bytes(Bytes),
    /// Record bytes that go from the segment file to the socket with sendfile(2).
    File(FileSlice),
}

/// A whole response frame, size prefix included, as parts written in order.
#[derive(Debug)]
pub struct Reply {
    /// The parts.
    pub parts: Vec<Part>,
}

impl Reply {
    /// A reply made of one encoded message.
    ///
    /// # Errors
    /// The encoder's refusal (a field this version does not have): a broker bug, which
    /// the connection logs before closing.
    pub fn message(
        request: &RequestHeader,
        version: i16,
        response: &Response,
    ) -> Result<Reply, sluice_protocol::messages::EncodeError> {
        let mut buf = BytesMut::new();
        response.encode_frame(ResponseHeader::for_request(request), version, &mut buf)?;
        Ok(Reply { parts: vec![Part::Bytes(buf.freeze())] })
    }

    /// Total bytes of the frame.
    pub fn len(&self) -> u64 {
        self.parts
            .iter()
            .map(|p| match p {
                Part::Bytes(b) => b.len() as u64,
                Part::File(f) => f.len,
            })
            .sum()
    }

    /// Bytes of the frame held in memory (file slices excluded).
    pub fn in_memory_len(&self) -> u64 {
        self.parts
            .iter()
            .map(|p| match p {
                Part::Bytes(b) => b.len() as u64,
                Part::File(_) => 0,
            })
            .sum()
    }

    /// Whether the reply has no bytes (never, for a well-formed one).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Which elements of `items` are the first of their value: a handler answers a repeated
/// element once, where it first appears. Sorting indexes costs 5 bytes an element, where
/// a hash set of the values would cost tens, and every element's cost counts when a
/// request holds 2^18 of them.
pub fn first_occurrences<T: Ord>(items: &[T]) -> Vec<bool> {
    let mut order: Vec<u32> = (0..items.len() as u32).collect();
    // Stable: among equal values the first index comes first.
    order.sort_by(|&a, &b| items[a as usize].cmp(&items[b as usize]));
    let mut first = vec![true; items.len()];
    for pair in order.windows(2) {
        if items[pair[0] as usize] == items[pair[1] as usize] {
            first[pair[1] as usize] = false;
        }
    }
    first
}

#[cfg(test)]
mod tests {
    use super::first_occurrences;

    #[test]
    fn only_the_first_of_each_value_is_kept() {
        assert_eq!(
            first_occurrences(&["b", "a", "b", "c", "a", "b"]),
            [true, true, false, true, false, false]
        );
        assert!(first_occurrences::<u8>(&[]).is_empty());
    }
}
