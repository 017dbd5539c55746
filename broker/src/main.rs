//! `sluiced`: parse flags, read the config, open the data directory, serve until
//! SIGINT or SIGTERM.

use anyhow::Context;
use clap::Parser;
use sluice_broker::{blocking, broker::Broker, cli, server};
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    use std::io::IsTerminal;
    let args = cli::Args::parse();
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let logs = tracing_subscriber::fmt().with_writer(std::io::stderr).with_env_filter(filter);
    match args.log_format {
        cli::LogFormat::Text => logs.with_ansi(std::io::stderr().is_terminal()).init(),
        cli::LogFormat::Json => logs.json().init(),
    }
    let (config, unknown) = cli::config_from(&args)?;
    for key in unknown {
        tracing::warn!(key, "unknown setting ignored");
    }
    if let Some(bytes) = config.internal_segment_bytes {
        // Below 1 MiB it costs descriptors and maps per roll: a test setting, so say so.
        tracing::warn!(bytes, "sluice.internal.log.segment.bytes is set: every topic's segments roll at this size, whatever its segment.bytes");
    }
    raise_open_file_limit();
    let listen = config.listen;
    let (broker, drivers) = blocking::run("broker open", move || Broker::open(config)).await?;
    let listener =
        server::bind(&broker.config).with_context(|| format!("cannot listen on {listen}"))?;
    let shutdown = CancellationToken::new();
    // Not tracked: it holds and writes nothing, so it is dropped with the runtime.
    tokio::spawn(on_signal(shutdown.clone()));
    tracing::info!(listen = %listener.local_addr()?, data_dir = %broker.config.data_dir.display(), "sluiced ready");
    server::run(broker, drivers, listener, shutdown).await;
    Ok(())
}

/// Raises the soft limit on open files to the hard limit, as Go's runtime and most servers
/// do: every partition holds its segment and index files open, and a low soft limit
/// (often 1024) would refuse topics long before the machine runs short.
fn raise_open_file_limit() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else { return };
    if soft >= hard {
        return;
    }
    match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
        Ok(()) => tracing::info!(from = soft, to = hard, "raised the open file limit"),
        Err(e) => tracing::warn!(soft, hard, error = %e, "cannot raise the open file limit"),
    }
}

async fn on_signal(shutdown: CancellationToken) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) =
        (signal(SignalKind::terminate()), signal(SignalKind::interrupt()))
    else {
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    tracing::info!("signal received");
    shutdown.cancel();
}
