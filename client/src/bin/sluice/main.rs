//! `sluice`: topics, produce, consume, consumer groups, perf tests and the cluster of any
//! Kafka-protocol broker, on the sluice-client library.
//!
//! Module map: [`cli`] (global flags, the client config, one-line errors), one module per
//! command group ([`topic`], [`produce`], [`consume`], [`group`], [`perf`], [`cluster`]),
//! [`delivery`] (acknowledgements of sent records, for produce and perf) and [`format`](mod@format)
//! (kcat format strings, JSON, tables, times).

mod cli;
mod cluster;
mod consume;
mod delivery;
mod format;
mod group;
mod perf;
mod produce;
mod topic;

use std::process::ExitCode;

fn main() -> ExitCode {
    let args = match cli::parse() {
        Ok(args) => args,
        Err(exit) => return exit,
    };
    let outcome = tokio::runtime::Runtime::new().map_err(anyhow::Error::from).and_then(|runtime| {
        let outcome = runtime.block_on(cli::run(args));
        // A thread blocked reading stdin must not hold the exit up.
        runtime.shutdown_background();
        outcome
    });
    cli::exit(outcome)
}
