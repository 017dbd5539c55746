//! The operator's view: the HTTP listener of `--metrics HOST:PORT` serves the status page
//! (`/`, `/topics/NAME`, `/groups/ID`), its data as JSON (`/api/...`), Prometheus text
//! (`/metrics`) and `/health`.
//!
//! - [`http`]: the strict, bounded HTTP/1.x parser (no I/O).
//! - [`view`]: snapshots of the broker, topics and groups, and their JSON.
//! - [`exposition`]: `/metrics` with the JMX exporter's names for Kafka's MBeans.
//! - [`page`]: the HTML, rendered here with the stylesheet embedded in the binary.
//! - [`rates`]: the 15-minute ring of 10 s samples the charts draw.
//!
//! Invariants: it reads counters and snapshots, never the log, so it never blocks the
//! data path; snapshot work runs on a blocking thread. It faces the network, so it is
//! bounded: [`MAX_CONNECTIONS`] at once (the permit is taken before accept), a request
//! head of at most [`http::MAX_HEAD_BYTES`] that must arrive within [`HEAD_TIMEOUT`], a
//! response that must be written within [`WRITE_TIMEOUT`], one request per connection.

pub mod exposition;
pub mod http;
pub mod page;
pub mod rates;
pub mod view;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::blocking;
use crate::broker::Broker;
use crate::storage::now_ms;
use http::{Method, Response};
use rates::{Rates, Sample};

/// Console connections served at once; more wait in the listen backlog.
pub const MAX_CONNECTIONS: usize = 32;
/// Time a client gets to send its request head.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(5);
/// Time a response gets to be written.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest a connection is read after its response, before it is closed.
const LINGER_TIME: Duration = Duration::from_secs(1);
/// Most bytes read after a response.
const LINGER_BYTES: usize = 256 * 1024;
/// Time `/health` gives the storage probe.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// What the handlers share.
#[derive(Debug)]
struct Console {
    broker: Arc<Broker>,
    rates: Rates,
    started: Instant,
    shutdown: CancellationToken,
}

/// Serves the console on `addr` until shutdown.
pub async fn serve(addr: SocketAddr, broker: Arc<Broker>, shutdown: CancellationToken) {
    let listener = match TcpListener::bind(addr).await {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(%addr, error = %e, "cannot bind the console and metrics listener");
            return;
        }
    };
    tracing::info!(%addr, "console and metrics listening");
    let started = broker.metrics.started;
    let console = Arc::new(Console { broker, rates: Rates::default(), started, shutdown });
    let tasks = TaskTracker::new();
    tasks.spawn(sample_rates(Arc::clone(&console)));
    let limit = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let permit = tokio::select! {
            p = Arc::clone(&limit).acquire_owned() => p.expect("invariant: the semaphore is never closed"),
            () = console.shutdown.cancelled() => break,
        };
        let stream = tokio::select! {
            r = listener.accept() => match r {
                Ok((s, _)) => s,
                Err(e) => {
                    // Out of descriptors, most likely: wait instead of spinning on the error.
                    tracing::debug!(error = %e, "console accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = console.shutdown.cancelled() => break,
        };
        let console = Arc::clone(&console);
        tasks.spawn(async move {
            serve_one(&console, stream).await;
            drop(permit);
        });
    }
    tasks.close();
    let _ = tokio::time::timeout(Duration::from_secs(2), tasks.wait()).await;
}

/// Takes a rate sample every [`rates::SAMPLE_MS`], the first at once.
async fn sample_rates(console: Arc<Console>) {
    let mut tick = tokio::time::interval(Duration::from_millis(rates::SAMPLE_MS as u64));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = console.shutdown.cancelled() => return,
        }
        let c = Arc::clone(&console);
        // A failed sample is skipped: the rates take the next one.
        if let Some(sample) =
            blocking::run("rate sample", move || sample_now(&c.broker)).or_log().await
        {
            console.rates.push(sample);
        }
    }
}

/// The all-topics counters now.
fn sample_now(broker: &Broker) -> Sample {
    let mut totals = crate::metrics::TopicTotals::default();
    for t in broker.topics.list() {
        for p in &t.partitions {
            totals.add(p.counters());
        }
    }
    Sample { at_ms: now_ms(), totals }
}

/// Reads one request head, answers it, closes.
async fn serve_one(console: &Arc<Console>, mut stream: TcpStream) {
    let mut buf = Vec::with_capacity(1024);
    let read = tokio::time::timeout(HEAD_TIMEOUT, async {
        let mut chunk = [0u8; 2048];
        loop {
            match http::parse_head(&buf) {
                Ok(Some(head)) => return Ok(head),
                Ok(None) => {}
                Err(refusal) => return Err(Some(refusal)),
            }
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return Err(None),
                // Never more than the limit and one chunk: the parser refuses past it.
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
    })
    .await;
    let (response, head_only) = match read {
        Ok(Ok(head)) => (route(console, &head).await, head.method == Method::Head),
        Ok(Err(Some(refusal))) => (Response::text(refusal.status, refusal.reason + "\n"), false),
        Ok(Err(None)) => return,
        Err(_) => (Response::text(408, "request head not received in time\n"), false),
    };
    let bytes = response.to_bytes(head_only);
    let written = tokio::time::timeout(WRITE_TIMEOUT, async {
        stream.write_all(&bytes).await?;
        stream.shutdown().await
    })
    .await;
    if matches!(written, Ok(Ok(()))) {
        linger(&mut stream).await;
    }
}

/// Reads and drops what the client still sends (a body, the rest of an oversized head),
/// for at most [`LINGER_TIME`] and [`LINGER_BYTES`]: closing a socket with unread bytes
/// makes the kernel reset the connection, and a reset can discard the response before
/// the client has read it.
async fn linger(stream: &mut TcpStream) {
    let mut left = LINGER_BYTES;
    let mut chunk = [0u8; 4096];
    let _ = tokio::time::timeout(LINGER_TIME, async {
        while left > 0 {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => left = left.saturating_sub(n),
            }
        }
    })
    .await;
}

/// The response to a request.
async fn route(console: &Arc<Console>, head: &http::Head) -> Response {
    let path = head.path.trim_end_matches('/');
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    match segments.as_slice() {
        [] => page_response(page::overview(&snapshot(console).await)),
        ["topics", name] => {
            let snap = snapshot(console).await;
            match page::topic(&snap, name) {
                Some(html) => page_response(html),
                None => Response::text(404, format!("no topic {name}\n")),
            }
        }
        ["groups", id] => {
            let snap = snapshot(console).await;
            match page::group(&snap, id) {
                Some(html) => page_response(html),
                None => Response::text(404, format!("no group {id}\n")),
            }
        }
        ["metrics"] => {
            let snap = snapshot(console).await;
            let text =
                exposition::render(&console.broker, &snap.broker, &snap.topics, &snap.groups);
            Response {
                status: 200,
                content_type: "text/plain; version=0.0.4; charset=utf-8",
                body: text.into_bytes(),
            }
        }
        ["health"] => health(console).await,
        ["api", rest @ ..] => api(console, rest).await,
        _ => Response::text(404, format!("no page at {}\n", head.path)),
    }
}

fn page_response(html: String) -> Response {
    Response { status: 200, content_type: "text/html; charset=utf-8", body: html.into_bytes() }
}

fn json_response(status: u16, value: &serde_json::Value) -> Response {
    let mut body = serde_json::to_vec_pretty(value).unwrap_or_default();
    body.push(b'\n');
    Response { status, content_type: "application/json", body }
}

/// Everything the page, `/api` and `/metrics` show, read at one moment.
#[derive(Debug)]
pub struct Snapshot {
    /// The broker.
    pub broker: view::BrokerView,
    /// Every topic, sorted by name.
    pub topics: Vec<view::TopicView>,
    /// Every group, sorted by id.
    pub groups: Vec<view::GroupView>,
    /// Rates over the last 15 minutes, oldest first.
    pub rates: Vec<rates::Rate>,
}

async fn snapshot(console: &Arc<Console>) -> Snapshot {
    let c = Arc::clone(console);
    let (broker, topics, rates) = blocking::run("console snapshot", move || {
        let (broker, topics) = view::broker_and_topics(&c.broker, c.started);
        let now = Sample { at_ms: now_ms(), totals: broker.totals };
        (broker, topics, c.rates.rates(now))
    })
    .await;
    let groups = view::groups(&console.broker).await;
    Snapshot { broker, topics, groups, rates }
}

async fn api(console: &Arc<Console>, rest: &[&str]) -> Response {
    let snap = snapshot(console).await;
    let not_found = |what: String| json_response(404, &serde_json::json!({ "error": what }));
    match rest {
        ["broker"] => json_response(200, &view::broker_json(&snap.broker)),
        ["topics"] => {
            let topics: Vec<_> = snap.topics.iter().map(view::topic_json).collect();
            json_response(200, &serde_json::Value::Array(topics))
        }
        ["topics", name] => match snap.topics.iter().find(|t| t.name == *name) {
            Some(t) => json_response(200, &view::topic_json(t)),
            None => not_found(format!("no topic {name}")),
        },
        ["groups"] => {
            let groups: Vec<_> = snap.groups.iter().map(view::group_json).collect();
            json_response(200, &serde_json::Value::Array(groups))
        }
        ["groups", id] => match snap.groups.iter().find(|g| g.group_id == *id) {
            Some(g) => json_response(200, &view::group_json(g)),
            None => not_found(format!("no group {id}")),
        },
        ["rates"] => {
            let rates: Vec<_> = snap
                .rates
                .iter()
                .map(|r| {
                    serde_json::json!({
                        "time_ms": r.at_ms,
                        "messages_in_per_sec": r.messages_in,
                        "bytes_in_per_sec": r.bytes_in,
                        "bytes_out_per_sec": r.bytes_out,
                        "fetch_requests_per_sec": r.fetch_requests,
                    })
                })
                .collect();
            json_response(200, &serde_json::Value::Array(rates))
        }
        _ => not_found(format!("no api at /api/{}", rest.join("/"))),
    }
}

/// `/health`: 200 when the Kafka listener is accepting (no shutdown under way), the data
/// directory takes a write, and no partition is poisoned; otherwise 503. Each check is
/// in the body; one that could not run (its blocking task failed) counts as failed.
async fn health(console: &Arc<Console>) -> Response {
    let listening = !console.shutdown.is_cancelled();
    let dir = console.broker.config.data_dir.clone();
    // Left to run on past the timeout: a probe stuck in the kernel holds one thread.
    let probe = blocking::run("storage probe", move || probe_storage(&dir)).or_log();
    let writable = match tokio::time::timeout(PROBE_TIMEOUT, probe).await {
        Ok(Some(r)) => r,
        Ok(None) => Err("the probe task failed".to_owned()),
        Err(_) => Err(format!("no answer within {} s", PROBE_TIMEOUT.as_secs())),
    };
    let b = Arc::clone(&console.broker);
    // `None` (`null` in the body): the check failed, which is not healthy.
    let poisoned: Option<Vec<String>> = blocking::run("poisoned partition check", move || {
        let mut out = Vec::new();
        for t in b.topics.list() {
            // A partition not opened since the start has taken no write to fail.
            for p in t.partitions.iter().filter(|p| p.opened().is_some_and(|l| l.is_poisoned())) {
                out.push(format!("{}-{}", t.name, p.index()));
            }
        }
        out
    })
    .or_log()
    .await;
    let healthy = listening && writable.is_ok() && poisoned.as_ref().is_some_and(|p| p.is_empty());
    let body = serde_json::json!({
        "status": if healthy { "ok" } else { "unhealthy" },
        "listening": listening,
        "storage_writable": writable.is_ok(),
        "storage_error": writable.err(),
        "poisoned_partitions": poisoned,
    });
    json_response(if healthy { 200 } else { 503 }, &body)
}

/// Writes and removes a small file in the data directory (not synced: it asks whether
/// the file system takes writes, not how fast the disk is).
fn probe_storage(dir: &std::path::Path) -> Result<(), String> {
    let path = dir.join(".sluice-health-probe");
    std::fs::write(&path, b"ok").map_err(|e| format!("write {}: {e}", path.display()))?;
    std::fs::remove_file(&path).map_err(|e| format!("remove {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_storage_probe_leaves_nothing_and_names_a_directory_it_cannot_write() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(probe_storage(dir.path()), Ok(()));
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "the probe file is removed");
        let missing = dir.path().join("gone");
        let err = probe_storage(&missing).unwrap_err();
        assert!(err.contains("gone/.sluice-health-probe"), "{err}");
    }
}
