//! Request memory held by the connections: a request that waits (a long-polling fetch)
//! keeps no view of its frame, and frames being read count against the broker's request
//! budget (`queued.max.request.bytes`) from their size prefix on, so many clients sending
//! large frames at once cannot make the broker hold them all.

use std::io::Write;
use std::time::Duration;

use kafka_protocol::protocol::StrBytes;
use sluice_protocol::messages::Request;
use sluice_tests::hostile::{allowed_growth, encode_frame, Probe, FIXED_ALLOWANCE};
use sluice_tests::{BrokerProcess, RawClient};

use crate::client::{ensure_topic, fetch_request};

const MIB: u64 = 1 << 20;

/// A Fetch v12 that long-polls an empty partition for `wait_ms`, padded to `padding`
/// bytes by its rack id (decoded as a view of the frame).
fn padded_fetch(wait_ms: i32, padding: usize) -> Vec<u8> {
    let mut f = fetch_request("idle", 0, wait_ms, 1);
    f.rack_id = StrBytes::from_string("r".repeat(padding));
    encode_frame(12, &Request::Fetch(f))
}

/// Without its request dropped before the wait, each long poll kept its 4 MiB frame: 60
/// pipelined on one connection held 240 MiB (and the connection's budget).
#[test]
fn long_polls_keep_no_view_of_their_frames() {
    let b = BrokerProcess::start(&[
        "--override",
        "sluice.queued.max.request.bytes.per.connection=1073741824",
    ]);
    ensure_topic(&mut RawClient::connect(b.addr), "idle");
    let frame = padded_fetch(1000, 4 << 20);
    let probe = Probe::start(b.addr);
    b.reset_peak_rss();
    let before = b.rss_bytes();
    let mut c = RawClient::connect(b.addr);
    let mut writer = c.stream.try_clone().unwrap();
    let sent = std::thread::spawn({
        let frame = frame.clone();
        move || {
            for _ in 0..60 {
                writer.write_all(&frame).unwrap();
            }
        }
    });
    for i in 0..60 {
        assert!(c.read_frame().is_some(), "response {i}");
    }
    sent.join().unwrap();
    let growth = b.peak_rss_bytes().saturating_sub(before);
    let latencies = probe.finish();
    println!(
        "60 pipelined long polls of {} bytes: peak RSS +{} MiB; probe p99 {:?}",
        frame.len(),
        growth / MIB,
        latencies.quantile(0.99)
    );
    assert!(growth <= allowed_growth(frame.len()), "peak RSS grew {} MiB", growth / MIB);
    assert!(latencies.quantile(0.99) < Duration::from_secs(2), "{:?}", latencies.quantile(0.99));
}

/// Twelve clients each send three quarters of a 16 MiB frame and stall: without the
/// broker-wide budget the broker read and held all of them (144 MiB); with a budget of
/// 32 MiB, two are read and the others wait in their sockets until the first are done.
#[test]
fn frames_being_read_count_against_the_broker_budget() {
    let budget = 32 * MIB;
    let mut b = BrokerProcess::start(&[
        "--override",
        &format!("queued.max.request.bytes={budget}"),
        "--override",
        &format!("sluice.queued.max.request.bytes.per.connection={budget}"),
    ]);
    ensure_topic(&mut RawClient::connect(b.addr), "idle");
    let frame = padded_fetch(0, 16 << 20);
    let split = frame.len() * 3 / 4;
    b.reset_peak_rss();
    let before = b.rss_bytes();
    let mut clients: Vec<RawClient> = (0..12).map(|_| RawClient::connect(b.addr)).collect();
    std::thread::scope(|s| {
        let writers: Vec<_> = clients
            .iter()
            .map(|c| {
                let mut w = c.stream.try_clone().unwrap();
                let frame = &frame;
                s.spawn(move || {
                    w.write_all(&frame[..split]).unwrap();
                    std::thread::sleep(Duration::from_secs(2));
                    w.write_all(&frame[split..]).unwrap();
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(1500));
        let stalled = b.peak_rss_bytes().saturating_sub(before);
        println!("12 stalled 16 MiB frames: peak RSS +{} MiB", stalled / MIB);
        assert!(stalled <= budget + FIXED_ALLOWANCE, "peak RSS grew {} MiB", stalled / MIB);
        for w in writers {
            w.join().unwrap();
        }
    });
    for (i, c) in clients.iter_mut().enumerate() {
        c.stream.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        assert!(c.read_frame().is_some(), "client {i} is answered once the others are done");
    }
    assert!(b.is_running(), "{}", b.log());
}

/// A client that sends a frame's size prefix and then trickles its body would hold its
/// share of the budget until the idle timeout (10 minutes): the body gets 10 s and a
/// second per MiB, then the connection is closed and the share goes back.
#[test]
fn a_body_trickled_in_is_cut_off_and_its_share_goes_back() {
    let mib = MIB.to_string();
    let mut b = BrokerProcess::start(&[
        "--override",
        &format!("queued.max.request.bytes={mib}"),
        "--override",
        &format!("sluice.queued.max.request.bytes.per.connection={mib}"),
    ]);
    ensure_topic(&mut RawClient::connect(b.addr), "idle");
    let frame = padded_fetch(0, 900 << 10);
    let mut slow = RawClient::connect(b.addr);
    slow.stream.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    slow.stream.write_all(&frame[..1000]).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    // The whole budget is the slow client's: this frame waits for it.
    let started = std::time::Instant::now();
    let mut waiting = RawClient::connect(b.addr);
    waiting.stream.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    waiting.stream.write_all(&frame).unwrap();
    assert!(waiting.read_frame().is_some(), "answered once the slow client is cut off");
    let waited = started.elapsed();
    println!("the waiting client was answered after {waited:?}");
    assert!(waited >= Duration::from_secs(5), "it waited for the budget: {waited:?}");
    assert!(slow.read_frame().is_none(), "the slow client's connection is closed");
    assert!(b.is_running(), "{}", b.log());
    b.stop();
}
