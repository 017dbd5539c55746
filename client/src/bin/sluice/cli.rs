//! The top of `sluice`: global flags, the client configuration they make, the command
//! groups, and how a failure becomes one line on stderr and a non-zero exit.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use sluice_client::{ClientConfig, ClientError};
use sluice_protocol::error_code::ErrorCode;

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
    fn config(&self) -> anyhow::Result<ClientConfig> {
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
pub async fn run(cli: Cli) -> anyhow::Result<()> {
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

/// The process exit for `outcome`, its error printed first.
pub fn exit(outcome: anyhow::Result<()>) -> ExitCode {
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.is::<Reported>() => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("{}", one_line(&e));
            ExitCode::FAILURE
        }
    }
}

/// The failures were printed already, one line each (a call about several topics or
/// groups reports each failure): exit non-zero without another line.
#[derive(Debug, thiserror::Error)]
#[error("{0} failed")]
pub struct Reported(pub String);

/// `error: ` and the error chain on one line, led by Kafka's error name when the broker
/// sent one: `error: TOPIC_ALREADY_EXISTS: create topic x: Topic 'x' already exists.`
pub fn one_line(e: &anyhow::Error) -> String {
    let code = e.chain().find_map(|c| c.downcast_ref::<ClientError>()).and_then(kafka_code);
    let parts: Vec<String> = e
        .chain()
        .map(|c| match c.downcast_ref::<ClientError>() {
            Some(ce) => client_error(ce),
            None => c.to_string(),
        })
        .collect();
    let text = parts.join(": ");
    let text: Vec<&str> = text.split_whitespace().collect();
    match code {
        Some(code) => format!("error: {}: {}", code_name(code), text.join(" ")),
        None => format!("error: {}", text.join(" ")),
    }
}

/// The Kafka error `e` is, or stands for: the client reports a topic or partition the
/// metadata lacks as its own error, where Kafka's tools name UNKNOWN_TOPIC_OR_PARTITION.
fn kafka_code(e: &ClientError) -> Option<ErrorCode> {
    match e {
        ClientError::UnknownTopic { .. } | ClientError::UnknownPartition { .. } => {
            Some(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION)
        }
        other => other.code(),
    }
}

/// A client error without its code (the line leads with the name): what was asked, and
/// the broker's message.
pub fn client_error(e: &ClientError) -> String {
    match e {
        ClientError::Kafka { message: Some(m), context, .. } => format!("{context}: {m}"),
        ClientError::Kafka { message: None, context, .. } => context.clone(),
        other => other.to_string(),
    }
}

/// Kafka's name of `code` (`TOPIC_ALREADY_EXISTS`), or its number for one this build
/// does not know.
pub fn code_name(code: ErrorCode) -> String {
    code.name().map_or_else(|| code.to_string(), str::to_string)
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
    fn errors_are_one_line_led_by_kafkas_name() {
        let e = ClientError::kafka(
            ErrorCode::TOPIC_ALREADY_EXISTS,
            Some("Topic 'x' already exists.\n".into()),
            "create topic x",
        );
        assert_eq!(
            one_line(&anyhow::Error::from(e)),
            "error: TOPIC_ALREADY_EXISTS: create topic x: Topic 'x' already exists."
        );
        let e = anyhow::Error::from(ClientError::Closed).context("consume from t");
        assert_eq!(one_line(&e), "error: consume from t: client is closed");
        let e = ClientError::UnknownTopic { topic: "t".into() };
        assert_eq!(
            one_line(&e.into()),
            "error: UNKNOWN_TOPIC_OR_PARTITION: topic t is not in the cluster's metadata"
        );
    }

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
