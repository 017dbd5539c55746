//! `sluice-mirror`: mirror topics until SIGINT or SIGTERM, or `verify` a copy.
//!
//! Progress goes to stderr as a live line when it is a terminal, and to the log every
//! ten seconds either way; with `--metrics`, as Prometheus text too.

mod cli;
mod metrics;

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use sluice_client::mirror::verify::{verify, PartitionReport};
use sluice_client::mirror::{Mirror, Stats, TopicFilter};

#[tokio::main]
async fn main() -> anyhow::Result<ExitCode> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let cli = cli::Cli::parse();
    match cli.command {
        Some(cli::Command::Verify(args)) => run_verify(args).await,
        None => run_mirror(cli.run).await,
    }
}

async fn run_mirror(args: cli::RunArgs) -> anyhow::Result<ExitCode> {
    let stop = signal()?;
    let config = args.settings()?.into_config()?;
    let metrics_addr = config.metrics;
    let mirror = Mirror::new(config)?;
    let exporter = match metrics_addr {
        Some(addr) => {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| anyhow::anyhow!("metrics address {addr}: {e}"))?;
            tracing::info!("metrics at http://{}/metrics", listener.local_addr()?);
            Some(tokio::spawn(metrics::serve(listener, mirror.stats())))
        }
        None => None,
    };
    let progress = tokio::spawn(report(mirror.stats()));
    let summary = mirror.run(stop).await;
    progress.abort();
    if let Some(exporter) = exporter {
        exporter.abort();
    }
    if std::io::stderr().is_terminal() {
        eprintln!();
    }
    let summary = summary?;
    let t = &summary.totals;
    let resent = summary.resent.map_or("unknown".to_string(), |n| format!("{n} records"));
    tracing::info!(
        records = t.records,
        bytes = t.bytes,
        batches_passed_through = t.batches,
        batches_as_records = t.record_batches,
        group_offsets_synced = t.group_offsets_synced,
        "stopped; re-sent after the restart (past the last commit): {resent}"
    );
    Ok(ExitCode::SUCCESS)
}

/// A future that resolves at the first SIGINT or SIGTERM; the handlers are installed
/// now, so a signal that comes before the mirror is ready still stops it gracefully.
fn signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    })
}

/// The live line (on a terminal) every second and a log line every ten.
async fn report(stats: Arc<Stats>) {
    let terminal = std::io::stderr().is_terminal();
    let (mut line_at, mut log_at) = (Instant::now(), Instant::now());
    let (mut line_from, mut log_from) = (stats.snapshot(), stats.snapshot());
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        let now = stats.snapshot();
        if terminal {
            let line = now.line(&line_from, line_at.elapsed());
            let _ = write!(std::io::stderr(), "\r\x1b[K{line}");
            (line_from, line_at) = (now.clone(), Instant::now());
        }
        if log_at.elapsed() >= Duration::from_secs(10) {
            tracing::info!("progress: {}", now.line(&log_from, log_at.elapsed()));
            (log_from, log_at) = (now, Instant::now());
        }
    }
}

async fn run_verify(args: cli::VerifyArgs) -> anyhow::Result<ExitCode> {
    let config = args.clusters.settings()?.into_config()?;
    let filter =
        TopicFilter::new(&config.topics, config.exclude.as_deref(), &config.rename_prefix)?;
    let reports = verify(&config.source, &config.target, &filter).await?;
    let mut differ = 0;
    for r in &reports {
        let ok = if args.allow_duplicates {
            r.comparison.is_complete()
        } else {
            r.comparison.is_exact()
        };
        differ += usize::from(!ok);
        println!("{}", describe(r));
    }
    let records: u64 = reports.iter().map(|r| r.comparison.source_records).sum();
    println!(
        "{} partitions, {records} source records: {}",
        reports.len(),
        if differ == 0 {
            "target matches".to_string()
        } else {
            format!("{differ} partitions differ")
        }
    );
    Ok(if differ == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

fn describe(r: &PartitionReport) -> String {
    let c = &r.comparison;
    let mut line = format!(
        "{}-{} -> {}-{}: {} source, {} target records, checksums {:016x} {:016x}",
        r.topic,
        r.partition,
        r.target_topic,
        r.partition,
        c.source_records,
        c.target_records,
        c.source_checksum,
        c.target_checksum
    );
    if c.is_exact() {
        line.push_str(", identical");
        return line;
    }
    if c.duplicates > 0 {
        line.push_str(&format!(", {} duplicates", c.duplicates));
    }
    if c.mismatched > 0 {
        line.push_str(&format!(", {} mismatched", c.mismatched));
    }
    for (from, n) in &c.missing {
        line.push_str(&format!(", {n} missing from source offset {from}"));
    }
    line
}
