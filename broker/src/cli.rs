//! Command-line flags of `sluiced` and how they become a [`Config`]: defaults, then the
//! `--config` file, then flags.

use std::path::PathBuf;

use clap::Parser;

use crate::config::{host_port, parse_properties, Config, ConfigError};

/// `sluiced`: a single-node log broker that speaks the Kafka protocol.
#[derive(Debug, Parser)]
#[command(name = "sluiced", version, about)]
pub struct Args {
    /// Address to listen on for Kafka clients.
    #[arg(long, value_name = "HOST:PORT")]
    pub listen: Option<String>,
    /// Address clients are told to connect to (defaults to the listen address).
    #[arg(long, value_name = "HOST:PORT")]
    pub advertised_listener: Option<String>,
    /// Directory holding the partitions (Kafka's `log.dirs`).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// This broker's node id.
    #[arg(long, value_name = "N")]
    pub node_id: Option<i32>,
    /// A Java properties file with Kafka broker property names.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Serve the console, its JSON API, Prometheus metrics and /health over HTTP here.
    #[arg(long, value_name = "HOST:PORT")]
    pub metrics: Option<String>,
    /// Log lines as text (the default) or as one JSON object per line.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Partitions of an auto-created topic (`num.partitions`).
    #[arg(long, value_name = "N")]
    pub num_partitions: Option<i32>,
    /// Create topics on first use (`auto.create.topics.enable`).
    #[arg(long, value_name = "BOOL")]
    pub auto_create_topics: Option<bool>,
    /// Any broker property, as Kafka's `--override`: `--override log.flush.interval.messages=1`.
    #[arg(long = "override", value_name = "KEY=VALUE")]
    pub overrides: Vec<String>,
}

/// How `sluiced` writes its log lines (to stderr).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// tracing-subscriber's text format, coloured on a terminal.
    Text,
    /// One JSON object per line: `timestamp`, `level`, `fields` (with `message`), `target`.
    Json,
}

/// The validated config and the keys that were not recognised (to be logged).
pub fn config_from(args: &Args) -> Result<(Config, Vec<String>), ConfigError> {
    let mut config = Config::default();
    let mut unknown = Vec::new();
    if let Some(path) = &args.config {
        unknown.extend(config.apply_file(path)?);
    }
    if !args.overrides.is_empty() {
        unknown.extend(config.apply_properties(&parse_properties(&args.overrides.join("\n")))?);
    }
    if let Some(listen) = &args.listen {
        let (host, port) = host_port(listen)?;
        let host = if host == "localhost" { "127.0.0.1".to_string() } else { host };
        config.listen = format!("{host}:{port}").parse().map_err(|_| ConfigError::Invalid {
            key: "--listen".into(),
            value: listen.clone(),
            reason: "expected an IP address and port".into(),
        })?;
        config.advertise_listen_address();
    }
    if let Some(adv) = &args.advertised_listener {
        let (host, port) = host_port(adv)?;
        config.advertised_host = host;
        config.advertised_port = port;
    }
    if let Some(dir) = &args.data_dir {
        config.data_dir = dir.clone();
    }
    if let Some(id) = args.node_id {
        config.node_id = id;
    }
    if let Some(m) = &args.metrics {
        let (host, port) = host_port(m)?;
        config.metrics =
            Some(format!("{host}:{port}").parse().map_err(|_| ConfigError::Invalid {
                key: "--metrics".into(),
                value: m.clone(),
                reason: "expected an IP address and port".into(),
            })?);
    }
    if let Some(n) = args.num_partitions {
        if n < 1 {
            return Err(ConfigError::Invalid {
                key: "--num-partitions".into(),
                value: n.to_string(),
                reason: "at least 1".into(),
            });
        }
        config.num_partitions = n;
    }
    if let Some(b) = args.auto_create_topics {
        config.auto_create_topics = b;
    }
    Ok((config, unknown))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_the_config_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("server.properties");
        std::fs::write(&file, "listeners=PLAINTEXT://127.0.0.1:1111\nnum.partitions=4\n").unwrap();
        let args = Args::parse_from([
            "sluiced",
            "--config",
            file.to_str().unwrap(),
            "--listen",
            "127.0.0.1:2222",
            "--override",
            "log.flush.interval.messages=1",
        ]);
        let (c, unknown) = config_from(&args).unwrap();
        assert!(unknown.is_empty());
        assert_eq!(c.listen.port(), 2222);
        assert_eq!(c.advertised_port, 2222);
        assert_eq!(c.num_partitions, 4);
        assert!(c.log.is_durable());
    }

    #[test]
    fn the_console_listener_is_a_property_and_the_flag_wins() {
        let set = |extra: &[&str]| {
            let args = Args::parse_from([&["sluiced"], extra].concat());
            config_from(&args).unwrap().0.metrics
        };
        assert_eq!(set(&[]), None);
        let by_property = ["--override", "sluice.console.listener=127.0.0.1:8080"];
        assert_eq!(set(&by_property), Some("127.0.0.1:8080".parse().unwrap()));
        let both = [&by_property[..], &["--metrics", "127.0.0.1:9090"]].concat();
        assert_eq!(set(&both), Some("127.0.0.1:9090".parse().unwrap()));
        let bad = Args::parse_from(["sluiced", "--override", "sluice.console.listener=nope"]);
        assert!(config_from(&bad).is_err());
        assert_eq!(Args::parse_from(["sluiced"]).log_format, LogFormat::Text);
        let json = Args::parse_from(["sluiced", "--log-format", "json"]);
        assert_eq!(json.log_format, LogFormat::Json);
        assert!(Args::try_parse_from(["sluiced", "--log-format", "xml"]).is_err());
    }

    #[test]
    fn no_arguments_is_the_embedded_default() {
        let (c, _) = config_from(&Args::parse_from(["sluiced"])).unwrap();
        assert_eq!(c.listen, "127.0.0.1:9092".parse().unwrap());
        assert_eq!(c.data_dir, PathBuf::from("./data"));
        assert!(c.auto_create_topics);
    }
}
