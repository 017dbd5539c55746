//! `--metrics HOST:PORT`: the mirror's counters as Prometheus text at `GET /metrics`.
//!
//! HTTP/1.1, one request per connection (`connection: close`). Limits: at most
//! [`MAX_CONNECTIONS`] at a time (taken before `accept`), a request head of at most
//! [`MAX_HEAD`] bytes read within [`READ_TIMEOUT`]; a request that breaks one gets 400
//! or 431 (or nothing, on a timeout) and its connection is closed. Only `GET` and `HEAD`
//! of `/metrics` are served: another path is 404, another method 405.

use std::sync::Arc;
use std::time::Duration;

use sluice_client::mirror::Stats;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

/// Connections served at once.
pub const MAX_CONNECTIONS: usize = 16;
/// Bytes of a request head, at most.
pub const MAX_HEAD: usize = 8192;
/// How long a client has to send its request head.
pub const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// Serves `listener` until the task is aborted (its connections go with it).
pub async fn serve(listener: TcpListener, stats: Arc<Stats>) {
    let limit = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut connections = JoinSet::new();
    loop {
        let permit = limit.clone().acquire_owned().await.expect("invariant: never closed");
        while connections.try_join_next().is_some() {}
        let stream = match listener.accept().await {
            Ok((s, _)) => s,
            Err(e) => {
                // Out of descriptors, most likely: wait instead of spinning on the error.
                tracing::debug!(error = %e, "metrics accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let stats = stats.clone();
        connections.spawn(async move {
            let _permit = permit;
            if let Err(e) = answer(stream, &stats).await {
                tracing::debug!(error = %e, "metrics connection");
            }
        });
    }
}

async fn answer(mut stream: TcpStream, stats: &Stats) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    let complete = loop {
        if let Some(end) = find(&head, b"\r\n\r\n") {
            break Some(end);
        }
        if head.len() >= MAX_HEAD {
            break None;
        }
        let n = match tokio::time::timeout(READ_TIMEOUT, stream.read(&mut chunk)).await {
            Ok(r) => r?,
            Err(_) => return Ok(()), // too slow: closed without an answer
        };
        if n == 0 {
            return Ok(());
        }
        head.extend_from_slice(&chunk[..n]);
    };
    let response = match complete {
        Some(end) => respond(&head[..end], || stats.snapshot().prometheus()),
        None => status(431, "Request Header Fields Too Large", ""),
    };
    stream.write_all(&response).await?;
    stream.shutdown().await
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The response to a request head (without its final blank line).
fn respond(head: &[u8], body: impl FnOnce() -> String) -> Vec<u8> {
    let Ok(head) = std::str::from_utf8(head) else {
        return status(400, "Bad Request", "the request head is not UTF-8\n");
    };
    let line = head.lines().next().unwrap_or("");
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return status(400, "Bad Request", "a request line is METHOD PATH HTTP/1.1\n");
    };
    if !version.starts_with("HTTP/1.") {
        return status(400, "Bad Request", "HTTP/1.x only\n");
    }
    let path = target.split('?').next().unwrap_or(target);
    match (method, path) {
        ("GET" | "HEAD", "/metrics") => {
            let body = body();
            let mut out = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: text/plain; version=0.0.4; charset=utf-8\r\n\
                 content-length: {}\r\nconnection: close\r\n\r\n",
                body.len()
            )
            .into_bytes();
            if method == "GET" {
                out.extend_from_slice(body.as_bytes());
            }
            out
        }
        (_, "/metrics") => status(405, "Method Not Allowed", "GET /metrics\n"),
        _ => status(404, "Not Found", "the metrics are at /metrics\n"),
    }
}

fn status(code: u16, reason: &str, body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {code} {reason}\r\ncontent-type: text/plain; charset=utf-8\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer_to(head: &str) -> String {
        String::from_utf8(respond(head.as_bytes(), || "sluice_mirror_x 1\n".into())).unwrap()
    }

    #[test]
    fn get_metrics_is_served_and_the_rest_is_refused() {
        let ok = answer_to("GET /metrics HTTP/1.1\r\nHost: x");
        assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok}");
        assert!(
            ok.contains("content-length: 18\r\n") && ok.ends_with("\r\n\r\nsluice_mirror_x 1\n")
        );
        let head = answer_to("HEAD /metrics?x=1 HTTP/1.0");
        assert!(head.starts_with("HTTP/1.1 200 OK") && head.ends_with("\r\n\r\n"), "{head}");
        assert!(answer_to("POST /metrics HTTP/1.1").starts_with("HTTP/1.1 405 "));
        assert!(answer_to("GET / HTTP/1.1").starts_with("HTTP/1.1 404 "));
        assert!(answer_to("GET /metrics").starts_with("HTTP/1.1 400 "));
        assert!(answer_to("GET /metrics SPDY/3").starts_with("HTTP/1.1 400 "));
        assert!(String::from_utf8(respond(&[0xff, 0xfe], String::new))
            .unwrap()
            .starts_with("HTTP/1.1 400 "));
    }

    #[tokio::test]
    async fn an_oversized_head_gets_431_and_the_connection_is_closed() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(serve(listener, Arc::new(Stats::default())));
        let mut c = TcpStream::connect(addr).await.unwrap();
        // Exactly the limit, all of it read: the answer is not lost to a reset.
        let mut junk = b"GET /metrics HTTP/1.1\r\nX: ".to_vec();
        junk.resize(MAX_HEAD, b'a');
        c.write_all(&junk).await.unwrap();
        let mut got = Vec::new();
        let _ = c.read_to_end(&mut got).await;
        assert!(got.starts_with(b"HTTP/1.1 431 "), "{}", String::from_utf8_lossy(&got));
        let mut c = TcpStream::connect(addr).await.unwrap();
        c.write_all(b"GET /metrics HTTP/1.1\r\n\r\n").await.unwrap();
        let mut got = String::new();
        c.read_to_string(&mut got).await.unwrap();
        assert!(got.contains("sluice_mirror_records_total"), "{got}");
        server.abort();
    }
}
