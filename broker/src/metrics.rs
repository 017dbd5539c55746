//! Counters the broker keeps, and the plain-text (Prometheus exposition format) HTTP
//! endpoint that serves them.
//!
//! `sluice_fetch_sendfile_bytes_total` and `sluice_response_copied_bytes_total` let a test
//! check that record bytes reach the socket through sendfile(2), not through user space.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::broker::Broker;

/// The broker's counters.
#[derive(Debug)]
pub struct Metrics {
    /// Requests received, by API key (index = key).
    pub requests: Vec<AtomicU64>,
    /// Record bytes sent with sendfile(2).
    pub sendfile_bytes: AtomicU64,
    /// Response bytes written from user-space buffers (headers, non-fetch responses).
    pub copied_bytes: AtomicU64,
    /// Record bytes appended by Produce.
    pub produced_bytes: AtomicU64,
    /// Connections accepted / currently open.
    pub connections_accepted: AtomicU64,
    /// Connections currently open.
    pub connections_open: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            requests: (0..100).map(|_| AtomicU64::new(0)).collect(),
            sendfile_bytes: AtomicU64::new(0),
            copied_bytes: AtomicU64::new(0),
            produced_bytes: AtomicU64::new(0),
            connections_accepted: AtomicU64::new(0),
            connections_open: AtomicU64::new(0),
        }
    }
}

impl Metrics {
    /// Counts a request.
    pub fn request(&self, api_key: i16) {
        if let Some(c) = usize::try_from(api_key).ok().and_then(|k| self.requests.get(k)) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The exposition text.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let counters = [
            ("sluice_fetch_sendfile_bytes_total", &self.sendfile_bytes),
            ("sluice_response_copied_bytes_total", &self.copied_bytes),
            ("sluice_produced_bytes_total", &self.produced_bytes),
            ("sluice_connections_accepted_total", &self.connections_accepted),
            ("sluice_connections_open", &self.connections_open),
        ];
        for (name, c) in counters {
            let _ = writeln!(out, "{name} {}", c.load(Ordering::Relaxed));
        }
        for (key, c) in self.requests.iter().enumerate() {
            let n = c.load(Ordering::Relaxed);
            if n > 0 {
                let _ = writeln!(out, "sluice_requests_total{{api_key=\"{key}\"}} {n}");
            }
        }
        out
    }
}

/// Counters kept by the partition logs, summed over partitions.
fn log_counters(broker: &Broker) -> String {
    let syncs: u64 = broker
        .topics
        .list()
        .iter()
        .flat_map(|t| t.partitions.iter())
        .map(|p| p.log().syncs())
        .sum();
    format!(
        "sluice_log_syncs_total {syncs}\nsluice_catalog_writes_total {}\n",
        broker.topics.catalog_writes()
    )
}

/// Serves `GET /metrics` (any path, in fact) until shutdown.
pub async fn serve(addr: SocketAddr, broker: Arc<Broker>, shutdown: CancellationToken) {
    let listener = match TcpListener::bind(addr).await {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(%addr, error = %e, "cannot bind the metrics endpoint");
            return;
        }
    };
    tracing::info!(%addr, "metrics endpoint listening");
    loop {
        let (mut stream, _) = tokio::select! {
            r = listener.accept() => match r {
                Ok(s) => s,
                Err(_) => {
                    // Out of descriptors, most likely: wait instead of spinning on the error.
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = shutdown.cancelled() => return,
        };
        let body = broker.metrics.render() + &log_counters(&broker);
        tokio::spawn(async move {
            let mut req = [0u8; 1024];
            let _ = tokio::time::timeout(std::time::Duration::from_secs(2), stream.read(&mut req))
                .await;
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: text/plain; version=0.0.4\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes()).await;
            let _ = stream.write_all(body.as_bytes()).await;
        });
    }
}
