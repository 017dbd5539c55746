//! Requests that wait (a long-polling fetch) hold their frames until answered. Without a
//! byte budget a client could pipeline `queued.max.requests` (500) of them per connection,
//! each up to 100 MiB: about 50 GB from one client.

use std::io::Write;
use std::time::Duration;

use kafka_protocol::protocol::StrBytes;
use sluice_protocol::messages::Request;
use sluice_tests::hostile::{encode_frame, Probe, FIXED_ALLOWANCE};
use sluice_tests::{BrokerProcess, RawClient};

use crate::client::{ensure_topic, fetch_request};

const MIB: u64 = 1 << 20;

/// A Fetch v12 that long-polls an empty partition for `wait_ms`, padded to about 4 MiB
/// by its rack id (kept as a view of the frame while it waits).
fn padded_fetch(wait_ms: i32) -> Vec<u8> {
    let mut f = fetch_request("idle", 0, wait_ms, 1);
    f.rack_id = StrBytes::from_string("r".repeat(4 << 20));
    encode_frame(12, &Request::Fetch(f))
}

/// Pipelines `frame` `times` times on each of `connections` connections (writing from
/// one thread and reading every response on another, per connection); returns the
/// broker's peak resident set growth.
fn pipeline(b: &mut BrokerProcess, frame: &[u8], connections: usize, times: usize) -> u64 {
    b.reset_peak_rss();
    let before = b.rss_bytes();
    std::thread::scope(|s| {
        for _ in 0..connections {
            s.spawn(|| {
                let mut c = RawClient::connect(b.addr);
                c.stream.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
                let mut writer = c.stream.try_clone().unwrap();
                let sent = s.spawn(move || {
                    for _ in 0..times {
                        writer.write_all(frame).unwrap();
                    }
                });
                for i in 0..times {
                    assert!(c.read_frame().is_some(), "response {i} of {times}");
                }
                sent.join().unwrap();
            });
        }
    });
    assert!(b.is_running(), "{}", b.log());
    b.peak_rss_bytes().saturating_sub(before)
}

#[test]
fn one_connection_holds_at_most_its_budget_of_waiting_requests() {
    let per_connection = 32 * MIB;
    let mut b = BrokerProcess::start(&[
        "--override",
        &format!("sluice.queued.max.request.bytes.per.connection={per_connection}"),
    ]);
    ensure_topic(&mut RawClient::connect(b.addr), "idle");
    let frame = padded_fetch(300);
    let probe = Probe::start(b.addr);
    // 60 frames of 4 MiB: 240 MiB if all were read at once.
    let growth = pipeline(&mut b, &frame, 1, 60);
    let latencies = probe.finish();
    println!(
        "{} byte frames x60 on one connection: peak RSS +{} MiB; probe p99 {:?}",
        frame.len(),
        growth / MIB,
        latencies.quantile(0.99)
    );
    assert!(growth <= per_connection + FIXED_ALLOWANCE, "peak RSS grew {} MiB", growth / MIB);
    assert!(latencies.quantile(0.99) < Duration::from_secs(2), "{:?}", latencies.quantile(0.99));
}

#[test]
fn all_connections_together_hold_at_most_the_broker_budget() {
    let budget = 48 * MIB;
    let mut b = BrokerProcess::start(&[
        "--override",
        &format!("queued.max.request.bytes={budget}"),
        "--override",
        &format!("sluice.queued.max.request.bytes.per.connection={budget}"),
    ]);
    ensure_topic(&mut RawClient::connect(b.addr), "idle");
    let frame = padded_fetch(300);
    // Four connections of 30 frames: 192 MiB at once under the per-connection budgets
    // alone.
    let growth = pipeline(&mut b, &frame, 4, 30);
    println!("4 connections x30 frames: peak RSS +{} MiB", growth / MIB);
    assert!(growth <= budget + FIXED_ALLOWANCE, "peak RSS grew {} MiB", growth / MIB);
}
