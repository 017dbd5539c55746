//! `sluice`: topics, produce, consume, consumer groups, perf tests and the cluster of any
//! Kafka-protocol broker, on the sluice-client library.
//!
//! Module map: [`cli`] (global flags, the client config), [`error`] (the one error type and
//! its one-line form), one module per command group ([`topic`], [`produce`], [`consume`], [`group`], [`perf`], [`cluster`]),
//! [`delivery`] (acknowledgements of sent records, for produce and perf) and [`format`](mod@format)
//! (kcat format strings, JSON, tables, times).

mod cli;
mod cluster;
mod consume;
mod delivery;
mod error;
mod format;
mod group;
mod perf;
mod produce;
mod topic;

use std::process::ExitCode;

use error::Context as _;

fn main() -> ExitCode {
    let args = match cli::parse() {
        Ok(args) => args,
        Err(exit) => return exit,
    };
    let runtime = tokio::runtime::Runtime::new().context("start the async runtime");
    let outcome = runtime.and_then(|runtime| {
        let outcome = runtime.block_on(cli::run(args));
        // A thread blocked reading stdin must not hold the exit up.
        runtime.shutdown_background();
        outcome
    });
    error::exit(outcome)
}
