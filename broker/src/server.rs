//! The accept loop, the broker's periodic tasks, and the ordered shutdown.
//!
//! Shutdown order, each step bounded: stop accepting → connections finish the request in
//! flight (a long-polling fetch returns at once, a waiting JoinGroup/SyncGroup is answered)
//! → the transaction and group coordinators write what they hold and stop → the partition
//! syncs that requests left running end → sync and cleanly close every partition, then
//! write the data directory's one clean-shutdown marker → return.

use std::io;
use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::time::Duration;

use nix::sys::socket::{getsockopt, setsockopt, sockopt::TcpCongestion};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::blocking;
use crate::broker::{Broker, Drivers};
use crate::connection::RequestBudget;
use crate::log_cleaner::{LogCleaner, LogSource};
use crate::storage::{now_ms, LogConfig, StorageError};

/// How long connections get to finish their in-flight request at shutdown.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// The client listener, and what its accepted connections need set.
#[derive(Debug)]
pub struct Listener {
    socket: TcpListener,
    /// The system's congestion control, put back on connections from other hosts when
    /// the listener carries the loopback one.
    network_congestion_control: Option<String>,
}

impl Listener {
    /// The address it listens on.
    ///
    /// # Errors
    /// getsockname(2)'s.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// Accepts a connection and sets its congestion control for where it comes from.
    async fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let (stream, peer) = self.socket.accept().await?;
        self.set_congestion_control(&stream, peer);
        Ok((stream, peer))
    }

    /// Gives a connection from another host the system's congestion control back.
    fn set_congestion_control(&self, stream: &TcpStream, peer: SocketAddr) {
        let Some(name) = &self.network_congestion_control else { return };
        if from_this_host(stream, peer) {
            return;
        }
        if let Err(e) = set_tcp_congestion_control(stream, name) {
            tracing::debug!(%peer, error = %e, "cannot restore the system's congestion control");
        }
    }
}

/// Opens the client listener with the configured socket buffer sizes and loopback
/// congestion control, which accepted connections inherit (SO_RCVBUF must be set before
/// listen(2) for the window scale that a large receive buffer needs).
///
/// The congestion control `sluice.loopback.congestion.control` names is set on the
/// listener, so that a connection has it from its first packet; a connection from another
/// host is given the system's back as it is accepted. (Set on an established connection
/// instead, it would come too late: BBR switches pacing on when it starts, and pacing
/// stays on after a change.) With BBR, the usual cause of this, a consumer on the same
/// host cost the broker three times the CPU per byte served that it costs with Reno.
///
/// # Errors
/// The socket, bind or listen error, or the kernel refusing a congestion control that
/// was configured (the default, if refused, is left out with a warning).
pub fn bind(config: &crate::config::Config) -> io::Result<Listener> {
    let socket = if config.listen.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    socket.set_reuseaddr(true)?;
    if let Ok(n) = u32::try_from(config.socket_send_buffer_bytes) {
        socket.set_send_buffer_size(n)?;
    }
    if let Ok(n) = u32::try_from(config.socket_receive_buffer_bytes) {
        socket.set_recv_buffer_size(n)?;
    }
    let network_congestion_control =
        set_loopback_congestion_control(&socket, &config.loopback_congestion_control)?;
    socket.bind(config.listen)?;
    Ok(Listener { socket: socket.listen(1024)?, network_congestion_control })
}

/// Sets `name` on the listener; returns the system's congestion control when it differs.
fn set_loopback_congestion_control(socket: &TcpSocket, name: &str) -> io::Result<Option<String>> {
    if name.is_empty() {
        return Ok(None);
    }
    let set = tcp_congestion_control(socket).and_then(|system| {
        if system == name {
            return Ok(None);
        }
        set_tcp_congestion_control(socket, name)?;
        Ok(Some(system))
    });
    match set {
        Ok(system) => Ok(system),
        Err(e) if name == crate::config::DEFAULT_LOOPBACK_CONGESTION_CONTROL => {
            tracing::warn!(name, error = %e, "cannot set the congestion control of loopback connections; they keep the system's");
            Ok(None)
        }
        Err(e) => Err(io::Error::new(
            e.kind(),
            format!("sluice.loopback.congestion.control={name}: the kernel refused it: {e}"),
        )),
    }
}

/// Whether the peer is on this host, so that the connection runs over the loopback
/// device: a loopback address, or this host's own address on another interface.
fn from_this_host(stream: &TcpStream, peer: SocketAddr) -> bool {
    let ip = peer.ip().to_canonical();
    ip.is_loopback() || stream.local_addr().is_ok_and(|local| local.ip().to_canonical() == ip)
}

/// A TCP socket's congestion control algorithm (TCP_CONGESTION).
///
/// # Errors
/// getsockopt(2)'s.
pub fn tcp_congestion_control(socket: &impl AsFd) -> io::Result<String> {
    let name = getsockopt(socket, TcpCongestion)?;
    let name = name.to_string_lossy();
    Ok(name.trim_end_matches('\0').to_string())
}

/// Sets a TCP socket's congestion control algorithm (TCP_CONGESTION).
///
/// # Errors
/// setsockopt(2)'s: ENOENT for an algorithm the kernel does not have, EPERM for one the
/// process may not select (`net.ipv4.tcp_allowed_congestion_control`).
pub fn set_tcp_congestion_control(socket: &impl AsFd, name: &str) -> io::Result<()> {
    Ok(setsockopt(socket, TcpCongestion, &std::ffi::OsString::from(name))?)
}

const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(5);
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// Runs the coordinators' `drivers` and serves clients on `listener` until `shutdown` is
/// cancelled, then shuts down in order.
pub async fn run(
    broker: Arc<Broker>,
    drivers: Drivers,
    listener: Listener,
    shutdown: CancellationToken,
) {
    let connections = TaskTracker::new();
    let background = TaskTracker::new();
    background.spawn(retention_task(Arc::clone(&broker), shutdown.clone()));
    background.spawn(flush_task(Arc::clone(&broker), shutdown.clone()));
    let (b, token) = (Arc::clone(&broker), shutdown.clone());
    // The task holds the broker, and so the coordinator's handle, as long as the driver
    // runs: the driver ends at the shutdown, not when the last other handle goes.
    background.spawn(async move { drivers.groups.run(Arc::clone(&b.topics), token).await });
    let b = Arc::clone(&broker);
    background.spawn(async move {
        let (topics, groups, ids) =
            (Arc::clone(&b.topics), Arc::clone(&b.groups), Arc::clone(&b.producer_ids));
        drivers.txns.run(topics, groups, ids).await
    });
    if let Some(addr) = broker.config.metrics {
        background.spawn(crate::console::serve(addr, Arc::clone(&broker), shutdown.clone()));
    }
    let cleaner = start_cleaner(&broker);
    let limit = Arc::new(Semaphore::new(broker.config.max_connections));
    let queued_bytes = RequestBudget::broker_wide(broker.config.queued_max_request_bytes);
    // Accept fails mostly when descriptors run out; each retry waits twice as long, up to
    // a second, so that the log gets a line a second rather than a hundred.
    let mut accept_backoff = ACCEPT_BACKOFF_MIN;
    loop {
        // The permit is taken before accept: at the limit, new clients wait in the backlog.
        let permit = tokio::select! {
            p = Arc::clone(&limit).acquire_owned() => p.expect("invariant: the semaphore is never closed"),
            () = shutdown.cancelled() => break,
        };
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => {
                    accept_backoff = ACCEPT_BACKOFF_MIN;
                    c
                }
                Err(e) => {
                    tracing::warn!(error = %e, retry_in_ms = accept_backoff.as_millis() as u64, "accept failed");
                    tokio::select! {
                        () = tokio::time::sleep(accept_backoff) => {}
                        () = shutdown.cancelled() => break,
                    }
                    accept_backoff = (accept_backoff * 2).min(ACCEPT_BACKOFF_MAX);
                    continue;
                }
            },
            () = shutdown.cancelled() => break,
        };
        let broker = Arc::clone(&broker);
        let token = shutdown.clone();
        let budget = RequestBudget::new(
            broker.config.queued_max_request_bytes_per_connection,
            queued_bytes.clone(),
        );
        broker.metrics.connections_accepted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        connections.spawn(async move {
            broker.metrics.connections_open.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            crate::connection::serve(stream, peer, Arc::clone(&broker), budget, token).await;
            broker.metrics.connections_open.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
            drop(permit);
        });
    }
    drop(listener);
    tracing::info!("shutting down: draining connections");
    connections.close();
    if tokio::time::timeout(DRAIN_TIMEOUT, connections.wait()).await.is_err() {
        tracing::warn!("connections still open after the drain timeout");
    }
    // After the connections, so their last commits are written; before the partitions
    // close, so the coordinators' writes in hand reach the log. Transactions first: a
    // completion may still be applying offsets through the group coordinator.
    tracing::info!("stopping the transaction coordinator");
    if tokio::time::timeout(Duration::from_secs(5), broker.txns.stop()).await.is_err() {
        tracing::warn!("transaction coordinator did not stop within 5 s");
    }
    tracing::info!("stopping the group coordinator");
    if tokio::time::timeout(Duration::from_secs(5), broker.groups.stop()).await.is_err() {
        tracing::warn!("group coordinator did not stop within 5 s");
    }
    background.close();
    let _ = tokio::time::timeout(Duration::from_secs(5), background.wait()).await;
    // Syncs that requests gone with their connections left running: before the close,
    // which would otherwise race them.
    let syncs = broker.topics.sync_tasks();
    syncs.close();
    if tokio::time::timeout(Duration::from_secs(5), syncs.wait()).await.is_err() {
        tracing::warn!("partition syncs still running after 5 s");
    }
    if let Some(cleaner) = cleaner {
        tracing::info!("stopping the log cleaner");
        // Failed or not, the partitions close next.
        blocking::run("log cleaner shutdown", move || cleaner.shutdown()).or_log().await;
    }
    tracing::info!("closing partitions");
    let b = Arc::clone(&broker);
    // A panic is resumed: a close that panicked is no clean shutdown.
    blocking::run("partition close", move || b.topics.close_all()).await;
    tracing::info!("shutdown complete");
}

/// Starts the log cleaner's threads over the partitions of every compacted topic; the
/// cleaner picks the ones due. A compacted partition not yet used since a clean start is
/// opened here if it has a sealed segment (the cleaner cleans nothing else), so that it
/// is cleaned all the same.
fn start_cleaner(broker: &Arc<Broker>) -> Option<LogCleaner> {
    let b = Arc::clone(broker);
    let source: LogSource = Arc::new(move || {
        b.topics
            .list()
            .iter()
            .flat_map(|t| {
                t.partitions
                    .iter()
                    .filter(|p| p.config().cleanup_compact && p.may_have_sealed_segments())
                    .filter_map(|p| match p.log() {
                        Ok(log) => Some((t.name.clone(), p.index(), Arc::clone(log))),
                        Err(e) => {
                            tracing::warn!(topic = %t.name, partition = p.index(), error = %e, "cannot open a compacted partition to clean it");
                            None
                        }
                    })
            })
            .collect()
    });
    match LogCleaner::start(&broker.config.cleaner, source) {
        Ok(c) => Some(c),
        Err(e) => {
            tracing::error!(error = %e, "cannot start the log cleaner: compacted topics are not cleaned");
            None
        }
    }
}

/// Applies `retention.ms` / `retention.bytes` every `log.retention.check.interval.ms`.
/// A partition not opened since the start is opened for it only if its config deletes
/// anything and it has a sealed segment (the active one is never deleted). A pass stops
/// at shutdown.
async fn retention_task(broker: Arc<Broker>, shutdown: CancellationToken) {
    let period = Duration::from_millis(broker.config.retention_check_interval_ms);
    loop {
        tokio::select! {
            () = tokio::time::sleep(period) => {}
            () = shutdown.cancelled() => return,
        }
        let (b, shutdown) = (Arc::clone(&broker), shutdown.clone());
        // A failed pass is logged; the next tick runs another.
        blocking::run("retention pass", move || {
            let now = now_ms();
            for topic in b.topics.list() {
                for p in &topic.partitions {
                    if shutdown.is_cancelled() {
                        return;
                    }
                    let unopened = p.opened().is_none();
                    if unopened && !(retention_applies(&p.config()) && p.may_have_sealed_segments()) {
                        continue;
                    }
                    match p.log().and_then(|log| log.apply_retention(now)) {
                        Ok(0) => {}
                        Ok(n) => tracing::info!(topic = %topic.name, partition = p.index(), segments = n, "retention deleted segments"),
                        // Deleted (or closed) since the pass listed it.
                        Err(StorageError::Closed { .. }) => {}
                        Err(e) => tracing::warn!(topic = %topic.name, partition = p.index(), error = %e, "retention failed"),
                    }
                }
            }
        })
        .or_log()
        .await;
    }
}

/// Whether retention can delete anything of a log with this config (it never opens one
/// for nothing).
fn retention_applies(config: &LogConfig) -> bool {
    config.cleanup_delete && (config.retention_ms >= 0 || config.retention_bytes >= 0)
}

/// Syncs partitions whose `flush.ms` / `flush.messages` are due (and segments sealed since
/// the last tick), and expires idle producer ids (`producer.id.expiration.ms`): the
/// partitions the schedule has due, each then scheduled for its next due time (see
/// [`crate::schedule`]), so a tick costs nothing for partitions with nothing due.
async fn flush_task(broker: Arc<Broker>, shutdown: CancellationToken) {
    let period = Duration::from_millis(broker.config.flush_scheduler_interval_ms);
    loop {
        tokio::select! {
            () = tokio::time::sleep(period) => {}
            () = shutdown.cancelled() => return,
        }
        let (b, shutdown) = (Arc::clone(&broker), shutdown.clone());
        // A failed pass is logged; the next tick runs another.
        blocking::run("flush pass", move || {
            let schedule = b.topics.schedule();
            let now = now_ms();
            for (log, slot) in schedule.take_due(now) {
                if shutdown.is_cancelled() {
                    break;
                }
                // Gone: the topic was deleted.
                let Some(log) = log.upgrade() else { continue };
                let (topic, partition) = (&slot.topic, slot.partition);
                match log.flush_if_due(now) {
                    Ok(Some(took)) => crate::metrics::LOG_FLUSH_TIME.record(took),
                    Ok(None) => {}
                    Err(StorageError::Closed { .. }) => continue,
                    Err(e) => tracing::warn!(%topic, partition, error = %e, "flush failed"),
                }
                let expired = log.remove_expired_producers(now);
                if expired > 0 {
                    tracing::debug!(%topic, partition, expired, "expired producer ids");
                }
                // Whatever is due by now waits for the next tick.
                if let Some(at) = log.background_due(now_ms()) {
                    schedule.insert(&slot, &log, at);
                }
            }
        })
        .or_log()
        .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    /// The system's default congestion control, and another one this process may select
    /// (none when the system's is the only one allowed).
    fn system_and_other() -> (String, Option<String>) {
        let fresh = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let system = tcp_congestion_control(&fresh).unwrap();
        let allowed = std::fs::read_to_string("/proc/sys/net/ipv4/tcp_allowed_congestion_control")
            .unwrap_or_default();
        let other = ["reno", "cubic"]
            .into_iter()
            .find(|&n| n != system && allowed.split_whitespace().any(|a| a == n))
            .map(String::from);
        (system, other)
    }

    #[tokio::test]
    async fn loopback_connections_get_the_configured_congestion_control_others_the_systems() {
        let (system, Some(loopback)) = system_and_other() else {
            eprintln!("only the system's congestion control is allowed here: nothing to test");
            return;
        };
        let config = Config {
            listen: "127.0.0.1:0".parse().unwrap(),
            loopback_congestion_control: loopback.clone(),
            ..Config::default()
        };
        let listener = bind(&config).unwrap();
        let addr = listener.local_addr().unwrap();

        let _client = TcpStream::connect(addr).await.unwrap();
        let (stream, peer) = listener.accept().await.unwrap();
        assert_eq!(tcp_congestion_control(&stream).unwrap(), loopback, "peer {peer}");

        // The same check for a peer on another host: this one's connection has the
        // listener's algorithm until it is told the peer is elsewhere.
        let _client = TcpStream::connect(addr).await.unwrap();
        let (stream, _) = listener.socket.accept().await.unwrap();
        assert_eq!(tcp_congestion_control(&stream).unwrap(), loopback);
        listener.set_congestion_control(&stream, "192.0.2.7:50000".parse().unwrap());
        assert_eq!(tcp_congestion_control(&stream).unwrap(), system);
    }

    #[tokio::test]
    async fn an_empty_setting_leaves_every_connection_the_systems_congestion_control() {
        let (system, _) = system_and_other();
        let config = Config {
            listen: "127.0.0.1:0".parse().unwrap(),
            loopback_congestion_control: String::new(),
            ..Config::default()
        };
        let listener = bind(&config).unwrap();
        let _client = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
        let (stream, _) = listener.accept().await.unwrap();
        assert_eq!(tcp_congestion_control(&stream).unwrap(), system);
    }

    #[tokio::test]
    async fn a_configured_congestion_control_the_kernel_lacks_stops_the_start() {
        let config = Config {
            listen: "127.0.0.1:0".parse().unwrap(),
            loopback_congestion_control: "nosuchalgo".into(),
            ..Config::default()
        };
        let err = bind(&config).unwrap_err();
        assert!(err.to_string().contains("sluice.loopback.congestion.control=nosuchalgo"), "{err}");
    }
}
