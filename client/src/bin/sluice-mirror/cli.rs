//! The command line: raw flags, turned into the library's [`Settings`] (flags override
//! the config file) and validated there.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use sluice_client::mirror::settings::Settings;
use sluice_client::mirror::MirrorError;

/// Replicate topics between Kafka-protocol clusters, batch for batch.
#[derive(Debug, Parser)]
#[command(name = "sluice-mirror", version, args_conflicts_with_subcommands = true)]
pub struct Cli {
    /// `verify`, or nothing to mirror.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// The mirror's flags.
    #[command(flatten)]
    pub run: RunArgs,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Compare source and target partition by partition; exit 1 on any difference.
    Verify(VerifyArgs),
}

/// Where from, where to, and what.
#[derive(Debug, Args)]
pub struct Clusters {
    /// Source cluster bootstrap address (HOST:PORT).
    #[arg(long)]
    pub source: Option<String>,
    /// Target cluster bootstrap address (HOST:PORT).
    #[arg(long)]
    pub target: Option<String>,
    /// Regex the whole topic name must match.
    #[arg(long)]
    pub topics: Option<String>,
    /// Regex of topics never mirrored (e.g. 'B\..*' on the A→B mirror of a pair).
    #[arg(long)]
    pub exclude: Option<String>,
    /// Prefix of each topic's name on the target.
    #[arg(long)]
    pub rename_prefix: Option<String>,
    /// Properties file: the same settings, plus source./target. client properties.
    #[arg(long)]
    pub config: Option<PathBuf>,
}

/// Flags of a mirror run.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Clusters and topics.
    #[command(flatten)]
    pub clusters: Clusters,
    /// Source consumer group the mirror commits its progress in.
    #[arg(long)]
    pub group: Option<String>,
    /// Pace: records or bytes per second (10000rps, 50MBps).
    #[arg(long)]
    pub max_rate: Option<String>,
    /// `batches` (passthrough) or `records` (decode and re-batch).
    #[arg(long)]
    pub mode: Option<String>,
    /// Regex of source group ids whose committed offsets are translated exactly and
    /// committed in the target cluster (groups with members there are left alone).
    #[arg(long, value_name = "REGEX")]
    pub sync_group_offsets: Option<String>,
    /// Serve Prometheus metrics at http://HOST:PORT/metrics.
    #[arg(long, value_name = "HOST:PORT")]
    pub metrics: Option<String>,
}

/// Flags of `verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Clusters and topics.
    #[command(flatten)]
    pub clusters: Clusters,
    /// Exit 0 when every source record is on the target in order, even if some are
    /// there twice (at-least-once after a crash).
    #[arg(long)]
    pub allow_duplicates: bool,
}

impl Clusters {
    /// The config file's settings with these flags over them.
    pub fn settings(&self) -> Result<Settings, MirrorError> {
        let mut s = match &self.config {
            Some(path) => Settings::from_file(path)?,
            None => Settings::new(),
        };
        let flags = [
            ("source", &self.source),
            ("target", &self.target),
            ("topics", &self.topics),
            ("exclude", &self.exclude),
            ("rename.prefix", &self.rename_prefix),
        ];
        for (name, value) in flags {
            if let Some(v) = value {
                s.set(name, v)?;
            }
        }
        Ok(s)
    }
}

impl RunArgs {
    /// The settings of a mirror run.
    pub fn settings(&self) -> Result<Settings, MirrorError> {
        let mut s = self.clusters.settings()?;
        let flags = [
            ("group", &self.group),
            ("max.rate", &self.max_rate),
            ("mode", &self.mode),
            ("sync.group.offsets", &self.sync_group_offsets),
            ("metrics", &self.metrics),
        ];
        for (name, value) in flags {
            if let Some(v) = value {
                s.set(name, v)?;
            }
        }
        Ok(s)
    }
}
