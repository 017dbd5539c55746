//! End-to-end tests: each starts the real `sluiced` binary on a free port with a
//! temporary data directory. All of them compile into this one test binary.

mod bad_input;
mod cli;
mod client;
mod compaction;
mod configs;
mod console;
mod durable_files;
mod groups;
mod hostile;
mod idempotence;
mod interop;
mod log_dirs;
mod many_partitions;
mod old_versions;
mod pipelining;
mod producers;
mod resources;
mod restart;
mod rust_admin;
mod rust_consumer;
mod rust_groups;
mod rust_mirror;
mod rust_passthrough;
mod rust_producer;
mod rust_stream;
mod serving;
mod transactions;
mod transactions_coordinator;
