//! The accept loop, the broker's periodic tasks, and the ordered shutdown.
//!
//! Shutdown order, each step bounded: stop accepting → connections finish the request in
//! flight (a long-polling fetch returns at once, a waiting JoinGroup/SyncGroup is answered)
//! → the group coordinator writes what it holds and stops → sync and cleanly close every
//! partition (clean-shutdown markers) → return.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::broker::Broker;
use crate::storage::now_ms;

/// How long connections get to finish their in-flight request at shutdown.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Opens the client listener with the configured socket buffer sizes, which accepted
/// connections inherit (SO_RCVBUF must be set before listen(2) for the window scale that
/// a large receive buffer needs).
///
/// # Errors
/// The socket, bind or listen error.
pub fn bind(config: &crate::config::Config) -> std::io::Result<TcpListener> {
    let socket = if config.listen.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    socket.set_reuseaddr(true)?;
    if let Ok(n) = u32::try_from(config.socket_send_buffer_bytes) {
        socket.set_send_buffer_size(n)?;
    }
    if let Ok(n) = u32::try_from(config.socket_receive_buffer_bytes) {
        socket.set_recv_buffer_size(n)?;
    }
    socket.bind(config.listen)?;
    socket.listen(1024)
}

const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(5);
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// Serves clients on `listener` until `shutdown` is cancelled, then shuts down in order.
pub async fn run(broker: Arc<Broker>, listener: TcpListener, shutdown: CancellationToken) {
    let connections = TaskTracker::new();
    let background = TaskTracker::new();
    background.spawn(retention_task(Arc::clone(&broker), shutdown.clone()));
    background.spawn(flush_task(Arc::clone(&broker), shutdown.clone()));
    let (b, token) = (Arc::clone(&broker), shutdown.clone());
    background.spawn(async move { b.groups.run(Arc::clone(&b), token).await });
    if let Some(addr) = broker.config.metrics {
        background.spawn(crate::metrics::serve(addr, Arc::clone(&broker), shutdown.clone()));
    }
    let limit = Arc::new(Semaphore::new(broker.config.max_connections));
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
        broker.metrics.connections_accepted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        connections.spawn(async move {
            broker.metrics.connections_open.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            crate::connection::serve(stream, peer, Arc::clone(&broker), token).await;
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
    // close, so the coordinator's writes in hand reach the log.
    tracing::info!("stopping the group coordinator");
    if tokio::time::timeout(Duration::from_secs(5), broker.groups.stop()).await.is_err() {
        tracing::warn!("group coordinator did not stop within 5 s");
    }
    background.close();
    let _ = tokio::time::timeout(Duration::from_secs(5), background.wait()).await;
    tracing::info!("closing partitions");
    let b = Arc::clone(&broker);
    let _ = tokio::task::spawn_blocking(move || b.topics.close_all()).await;
    tracing::info!("shutdown complete");
}

/// Applies `retention.ms` / `retention.bytes` every `log.retention.check.interval.ms`.
async fn retention_task(broker: Arc<Broker>, shutdown: CancellationToken) {
    let period = Duration::from_millis(broker.config.retention_check_interval_ms);
    loop {
        tokio::select! {
            () = tokio::time::sleep(period) => {}
            () = shutdown.cancelled() => return,
        }
        let b = Arc::clone(&broker);
        let _ = tokio::task::spawn_blocking(move || {
            let now = now_ms();
            for topic in b.topics.list() {
                for p in &topic.partitions {
                    match p.log().apply_retention(now) {
                        Ok(0) => {}
                        Ok(n) => tracing::info!(topic = %topic.name, partition = p.index(), segments = n, "retention deleted segments"),
                        Err(e) => tracing::warn!(topic = %topic.name, partition = p.index(), error = %e, "retention failed"),
                    }
                }
            }
        })
        .await;
    }
}

/// Syncs partitions whose `flush.ms` / `flush.messages` are due.
async fn flush_task(broker: Arc<Broker>, shutdown: CancellationToken) {
    let period = Duration::from_millis(broker.config.flush_scheduler_interval_ms);
    loop {
        tokio::select! {
            () = tokio::time::sleep(period) => {}
            () = shutdown.cancelled() => return,
        }
        let b = Arc::clone(&broker);
        let _ = tokio::task::spawn_blocking(move || {
            let now = now_ms();
            for topic in b.topics.list() {
                for p in &topic.partitions {
                    if let Err(e) = p.log().flush_if_due(now) {
                        tracing::warn!(topic = %topic.name, partition = p.index(), error = %e, "flush failed");
                    }
                }
            }
        })
        .await;
    }
}
