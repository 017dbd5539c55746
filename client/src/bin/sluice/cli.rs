//! The top of `sluice`: global flags, the client configuration they make, and the command
//! groups (how a failure becomes one line on stderr is [`crate::error`]'s).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use sluice_client::ClientConfig;

use crate::error::Result;
use crate::{cluster, consume, group, perf, produce, topic};

const EXAMPLES: &str = "\
Examples:
  sluice topic create orders --partitions 6 --config retention.ms=86400000
  printf 'k1:hello\\nk2:world\\n' | sluice produce orders --key-separator :
  sluice consume orders --offset beginning --exit-at-end --format '%k=%s\\n'
  sluice group describe --group billing
  sluice perf produce --topic bench --num-records 1000000 --record-size 100 --throughput -1

Output is aligned with a header on a terminal and tab-separated without one otherwise.";

/// `sluice`: the command-line client of Kafka-protocol brokers.
#[derive(Debug, Parser)]
#[command(name = "sluice", version, about, after_help = EXAMPLES)]
pub struct Cli {
    #[command(flatten)]
    connect: Connect,
    #[command(subcommand)]
    command: Command,
}

/// Where the cluster is and how to talk to it.
#[derive(Debug, clap::Args)]
struct Connect {
    /// Broker(s) to bootstrap from, comma-separated [default: 127.0.0.1:9092, or
    /// bootstrap.servers of --command-config].
    #[arg(long, global = true, env = "SLUICE_BOOTSTRAP_SERVER", value_name = "HOST:PORT")]
    bootstrap_server: Option<String>,
    /// Client properties file (Java client names: request.timeout.ms=5000, ...).
    #[arg(long, global = true, value_name = "FILE")]
    command_config: Option<PathBuf>,
}

impl Connect {
    /// The properties file, then `--bootstrap-server`; `client.id` is `sluice` unless set.
    fn config(&self) -> Result<ClientConfig> {
        let mut config = match &self.command_config {
            Some(path) => ClientConfig::from_properties_file(path)?,
            None => ClientConfig::new(),
        };
        match &self.bootstrap_server {
            Some(servers) => {
                config.set("bootstrap.servers", servers.as_str());
            }
            None if config.get("bootstrap.servers").is_none() => {
                config.set("bootstrap.servers", "127.0.0.1:9092");
            }
            None => {}
        }
        if config.get("client.id").is_none() {
            config.set("client.id", "sluice");
        }
        Ok(config)
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create, list, describe, delete and alter topics.
    Topic(topic::Args),
    /// Produce one record per line of stdin or a file.
    Produce(produce::Args),
    /// Consume records and print them with a kcat format string or as JSON.
    Consume(consume::Args),
    /// List, describe and delete consumer groups; reset their offsets.
    Group(group::Args),
    /// Kafka's producer and consumer perf tests, with their output lines.
    Perf(perf::Args),
    /// The cluster's id, controller, brokers and the API versions each serves.
    Cluster(cluster::Args),
    /// Prints a shell completion script for bash, zsh, fish, elvish or PowerShell.
    #[command(after_help = "Example:\n  sluice completions bash > /etc/bash_completion.d/sluice")]
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

/// The parsed command line, or the exit for `--help`, `--version` or a usage error (the
/// error printed as one line).
pub fn parse() -> Result<Cli, ExitCode> {
    Cli::try_parse().map_err(|e| {
        if !e.use_stderr() {
            // --help and --version: printed to stdout, a success.
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        let text = e.to_string();
        // clap adds a usage block and a hint after a blank line: the error is before it.
        let first = text.split("\n\n").next().unwrap_or(&text);
        let words: Vec<&str> = first.split_whitespace().collect();
        eprintln!("{}", words.join(" "));
        ExitCode::from(2)
    })
}

/// Runs the command.
pub async fn run(cli: Cli) -> Result<()> {
    let config = cli.connect.config()?;
    match cli.command {
        Command::Topic(args) => topic::run(&config, args).await,
        Command::Produce(args) => produce::run(&config, args).await,
        Command::Consume(args) => consume::run(&config, args).await,
        Command::Group(args) => group::run(&config, args).await,
        Command::Perf(args) => perf::run(&config, args).await,
        Command::Cluster(args) => cluster::run(&config, args).await,
        Command::Completions { shell } => {
            use clap::CommandFactory;
            clap_complete::generate(shell, &mut Cli::command(), "sluice", &mut std::io::stdout());
            Ok(())
        }
    }
}

/// Parses `KEY=VALUE` (for `--config`, `--header`, `--property`).
pub fn key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("expected KEY=VALUE, got '{s}'")),
    }
}

/// Applies `KEY=VALUE` client properties on top of `config`.
pub fn with_properties(config: &ClientConfig, props: &[(String, String)]) -> ClientConfig {
    let mut config = config.clone();
    for (k, v) in props {
        config.set(k.as_str(), v.as_str());
    }
    config
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_parses() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn every_command_has_an_example_in_its_help() {
        use clap::CommandFactory;
        fn walk(c: &clap::Command, path: &str, missing: &mut Vec<String>) {
            let path = format!("{path} {}", c.get_name());
            let help = c.get_after_help().map(|h| h.to_string()).unwrap_or_default();
            if !help.contains("sluice ") {
                missing.push(path.clone());
            }
            for sub in c.get_subcommands() {
                walk(sub, &path, missing);
            }
        }
        let mut missing = Vec::new();
        walk(&Cli::command(), "", &mut missing);
        assert!(missing.is_empty(), "no example in --help of: {missing:?}");
    }

    #[test]
    fn completions_cover_every_command() {
        use clap::CommandFactory;
        let mut out = Vec::new();
        clap_complete::generate(
            clap_complete::Shell::Bash,
            &mut Cli::command(),
            "sluice",
            &mut out,
        );
        let script = String::from_utf8(out).unwrap();
        for command in ["topic", "produce", "consume", "group", "perf", "cluster", "reset-offsets"]
        {
            assert!(script.contains(command), "bash completion lacks {command}");
        }
    }

    #[test]
    fn key_value_needs_a_key() {
        assert_eq!(key_value("a=b=c"), Ok(("a".into(), "b=c".into())));
        assert!(key_value("=b").is_err() && key_value("ab").is_err());
    }
}
