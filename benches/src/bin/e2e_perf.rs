//! The end-to-end perf harness: starts `target/release/sluiced` on a free port with a
//! temporary data directory and drives it over loopback with librdkafka (the `rdkafka`
//! crate), 100-byte records, one partition.
//!
//! ```text
//! cargo build --release --bin sluiced
//! cargo run --release -p sluice-benches --features librdkafka --bin e2e_perf [-- RECORDS]
//! ```
//!
//! It reports, each next to the loopback TCP throughput measured in the same run (a plain
//! socket copy, the ceiling, with the congestion control the broker gives loopback
//! connections):
//! - produce: records/s, MB/s, broker CPU seconds per million records (from /proc) and the
//!   whole machine's: on loopback the receiver's TCP input runs on the sender's CPU, so a
//!   change can move work between broker and client without saving any;
//! - consume from the beginning: the same;
//! - end-to-end latency at 10,000 records/s with the default `fetch.wait.max.ms` (500):
//!   p50 / p99 / p99.9; then the same beside a 100 MB/s bulk producer, sent to the same
//!   broker and, as the baseline, to a second one;
//! - durable mode (`log.flush.interval.messages=1`): 8 concurrent producers, pipelined
//!   and, as the baseline, with one request in flight per connection.
//!
//! `SLUICE_PERF_AB=1` instead compares two brokers in one run, for a change too small to
//! see across runs on a shared machine: broker A is `SLUICED` with
//! `SLUICE_PERF_BROKER_ARGS`, broker B is `SLUICED_B` (default: the same binary) with
//! `SLUICE_PERF_B_ARGS`. Both run side by side; produce and consume alternate between them
//! (A B, B A, ...), and the medians of each side are printed with their ratio B / A.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use sluice_benches::{cpu_seconds_of, default_sluiced, Broker};

const RECORD: usize = 100;

/// The broker's default congestion control for connections from this host.
const LOOPBACK_CC: &str = sluice_broker::config::DEFAULT_LOOPBACK_CONGESTION_CONTROL;

fn main() {
    let records: u64 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(5_000_000);
    println!(
        "machine: {} cores, {}; each line gives the CPU steal (time the hypervisor ran \
         others) during its phase",
        num_cpus(),
        cpu_model()
    );
    // The broker's connections from this host use LOOPBACK_CC (its default
    // `sluice.loopback.congestion.control`), so the ceiling and the floors below do too;
    // the system's default is shown beside it.
    let system_cc = system_congestion_control();
    let loopback = loopback_mb_per_s(2 << 30, LOOPBACK_CC);
    let system = loopback_mb_per_s(2 << 30, &system_cc);
    println!(
        "loopback TCP copy (ceiling): {loopback:.0} MB/s with {LOOPBACK_CC}, as the broker's \
         loopback connections ({system:.0} MB/s with the system's {system_cc})\n"
    );
    if std::env::var_os("SLUICE_PERF_AB").is_some() {
        return ab(records, loopback);
    }

    // SLUICE_PERF_ONLY=produce|consume|latency|durable runs one phase (profiling).
    let only = std::env::var("SLUICE_PERF_ONLY").ok();
    let run = |phase: &str| {
        only.as_deref().is_none_or(|o| o == phase || (o == "consume" && phase == "produce"))
    };
    if run("produce") {
        // On this VM the first write to a page of memory the guest has not touched lately
        // costs a fault in the host, several times the copy itself, so a first produce
        // into fresh page cache measures the hypervisor. A broker that has run a while
        // recycles page cache (retention deletes segments); the measured run below does
        // the same: its pages were freed moments ago by the warm-up's removed data dir.
        let warmup = Broker::start(&[]);
        mark_phase();
        let (secs, cpu) = produce(&warmup.bootstrap, "warmup", records, 5, 1, &warmup);
        report("produce acks=1, warm-up into fresh page cache", records, secs, cpu, loopback);
    }
    let broker = Broker::start(&[]);
    if run("produce") {
        mark_phase();
        let (secs, cpu) = produce(&broker.bootstrap, "perf", records, 5, 1, &broker);
        report("produce acks=1", records, secs, cpu, loopback);
        // The floor: the CPU of bare 1 MiB write(2)s of the same bytes into a new file on
        // the same file system, i.e. the kernel's copy into new page-cache pages.
        let bytes = broker.metric("sluice_produced_bytes_total");
        let raw = write_cpu_seconds(bytes);
        println!(
            "  bare write(2) of the same {:.0} MB: {:.3} s CPU per million records; broker / bare = {:.2}",
            bytes as f64 / 1e6,
            raw / (records as f64 / 1e6),
            cpu / raw
        );
    }
    if run("consume") {
        mark_phase();
        let (secs, cpu, sent) = consume(&broker.bootstrap, "perf", records, &broker);
        report("consume from beginning", records, secs, cpu, loopback);
        // The floor: the CPU of a bare sendfile(2) of the same bytes to a loopback reader
        // (on loopback the sender's CPU also runs the receiver's TCP input path), with the
        // broker's congestion control.
        let raw = sendfile_cpu_seconds(sent);
        println!(
            "  bare sendfile of the same {:.0} MB: {:.3} s CPU per million records; broker / bare = {:.2}",
            sent as f64 / 1e6,
            raw / (records as f64 / 1e6),
            cpu / raw
        );
    }
    if run("latency") {
        // Three runs: one 10 s run on a shared machine says little about a p99.
        for _ in 0..3 {
            mark_phase();
            latency(&broker.bootstrap, 10_000, Duration::from_secs(10));
        }
    }
    if run("loaded") {
        // The same, while another producer writes 1 MB batches at 100 MB/s: a slow append
        // on the broker must not hold up the small ones. The baseline sends that load to a
        // second broker process instead, which loads the machine's two cores alike but
        // shares nothing inside the broker.
        let other = Broker::start(&[]);
        for (label, bulk_broker) in [("same broker", &broker), ("baseline: other broker", &other)] {
            mark_phase();
            let stop = Arc::new(AtomicBool::new(false));
            let bulk = {
                let (bootstrap, stop) = (bulk_broker.bootstrap.clone(), Arc::clone(&stop));
                std::thread::spawn(move || bulk_load(&bootstrap, 1_000_000, &stop))
            };
            latency(&broker.bootstrap, 10_000, Duration::from_secs(10));
            stop.store(true, Ordering::Relaxed);
            let sent = bulk.join().unwrap();
            println!("  under load ({label}): {sent} records produced alongside");
        }
    }
    drop(broker);
    if !run("durable") {
        return;
    }

    // Baseline in the same run: one request in flight per connection (Kafka's muting),
    // then pipelined. Twice each, alternating, since the first run on fresh page-cache
    // pages is slower on this VM whatever it runs.
    for _ in 0..2 {
        for (label, limit) in [("serial (queued.max.requests=1)", "1"), ("pipelined", "500")] {
            durable(records, label, limit, loopback);
        }
    }
}

/// Runs the A/B comparison described in the module doc.
fn ab(records: u64, loopback: f64) {
    let env_args = |var: &str| -> Vec<String> {
        std::env::var(var).unwrap_or_default().split_whitespace().map(String::from).collect()
    };
    let bin = |var: &str| std::env::var_os(var).map(PathBuf::from);
    let a_bin = bin("SLUICED").unwrap_or_else(default_sluiced);
    let b_bin = bin("SLUICED_B").unwrap_or_else(|| a_bin.clone());
    let a = Broker::start_with(a_bin, &env_args("SLUICE_PERF_BROKER_ARGS"));
    let b = Broker::start_with(b_bin, &env_args("SLUICE_PERF_B_ARGS"));
    for broker in [&a, &b] {
        produce(&broker.bootstrap, "warmup", records, 5, 1, broker);
    }
    // Per side: (produce broker CPU, consume broker CPU, consume whole-machine CPU), each
    // in seconds per million records.
    let mut figures: [Vec<[f64; 3]>; 2] = [vec![], vec![]];
    let per_million = records as f64 / 1e6;
    for round in 0..4 {
        let order = if round % 2 == 0 { [0, 1] } else { [1, 0] };
        for side in order {
            let (name, broker) = if side == 0 { ("A", &a) } else { ("B", &b) };
            let topic = format!("ab{round}");
            mark_phase();
            let (secs, cpu) = produce(&broker.bootstrap, &topic, records, 5, 1, broker);
            report(&format!("{name} produce"), records, secs, cpu, loopback);
            mark_phase();
            let (secs, consume_cpu, _) = consume(&broker.bootstrap, &topic, records, broker);
            let machine = machine_busy_seconds();
            report(&format!("{name} consume"), records, secs, consume_cpu, loopback);
            figures[side].push([
                cpu / per_million,
                consume_cpu / per_million,
                machine / per_million,
            ]);
            // Keeps the page cache from growing by the whole run; whether the next round's
            // pages are new to the VM is still up to the host (see the warm-up note in
            // main), so compare medians, not single rounds.
            delete_topic(&broker.bootstrap, &topic);
        }
    }
    let median = |side: usize, i: usize| {
        let mut v: Vec<f64> = figures[side].iter().map(|f| f[i]).collect();
        v.sort_by(f64::total_cmp);
        (v[v.len() / 2 - 1] + v[v.len() / 2]) / 2.0
    };
    for (i, what) in
        ["produce, broker", "consume, broker", "consume, whole machine"].iter().enumerate()
    {
        let (ma, mb) = (median(0, i), median(1, i));
        println!(
            "median CPU s per million records, {what}: A {ma:.3}, B {mb:.3}, B / A = {:.2}",
            mb / ma
        );
    }
}

/// Deletes `topic` with librdkafka's admin client.
fn delete_topic(bootstrap: &str, topic: &str) {
    let admin: AdminClient<DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", bootstrap).create().expect("admin");
    let results = block_on(admin.delete_topics(&[topic], &AdminOptions::new())).expect("delete");
    for result in results {
        result.expect("delete topic");
    }
}

/// Runs a future to completion on this thread (the admin client's futures need no runtime).
fn block_on<F: std::future::Future>(future: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl std::task::Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = std::task::Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = std::task::Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        if let std::task::Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
        std::thread::park();
    }
}

/// Durable mode (`log.flush.interval.messages=1`), 8 producers with acks=all.
fn durable(records: u64, label: &str, queued_max_requests: &str, loopback: f64) {
    let queued = format!("queued.max.requests={queued_max_requests}");
    let broker =
        Broker::start(&["--override", "log.flush.interval.messages=1", "--override", &queued]);
    let per = records / 8;
    mark_phase();
    let start = Instant::now();
    let cpu0 = broker.cpu_seconds();
    let client0 = own_cpu_seconds();
    std::thread::scope(|s| {
        for _ in 0..8 {
            s.spawn(|| produce(&broker.bootstrap, "durable", per, 5, -1, &broker));
        }
    });
    let secs = start.elapsed().as_secs_f64();
    report(
        &format!("durable, 8 producers, acks=all, {label}"),
        per * 8,
        secs,
        broker.cpu_seconds() - cpu0,
        loopback,
    );
    let n = (per * 8) as f64;
    let requests = broker.metric("sluice_requests_total{api_key=\"0\"}");
    let syncs = broker.metric("sluice_log_syncs_total");
    println!(
        "  client CPU {:.3} s per million records; {requests} produce requests ({:.0} records each), {syncs} syncs ({:.0} records each)",
        (own_cpu_seconds() - client0) / n * 1e6,
        n / requests.max(1) as f64,
        n / syncs.max(1) as f64,
    );
}

/// utime + stime of this process (the clients), in seconds.
fn own_cpu_seconds() -> f64 {
    cpu_seconds_of("self")
}

fn report(what: &str, records: u64, secs: f64, cpu: f64, loopback: f64) {
    let rate = records as f64 / secs;
    let mb = rate * RECORD as f64 / 1e6;
    println!(
        "{what}: {rate:.0} records/s, {mb:.1} MB/s ({:.3} of loopback), broker CPU {:.3} s per million records (whole machine {:.3}), steal {:.1} %",
        mb / loopback,
        cpu / (records as f64 / 1e6),
        machine_busy_seconds() / (records as f64 / 1e6),
        steal_percent()
    );
}

/// (steal, total, busy) jiffies of all CPUs, from /proc/stat.
fn cpu_jiffies() -> (u64, u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let fields: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest time is inside user)
    let at = |i: usize| fields.get(i).copied().unwrap_or(0);
    (at(7), fields.iter().take(8).sum(), at(0) + at(1) + at(2) + at(5) + at(6))
}

static PHASE_MARK: std::sync::Mutex<(u64, u64, u64)> = std::sync::Mutex::new((0, 0, 0));

/// Starts a phase: steal and whole-machine CPU are reported from here.
fn mark_phase() {
    *PHASE_MARK.lock().unwrap() = cpu_jiffies();
}

/// Steal since the last mark, as a percentage of all CPU time.
fn steal_percent() -> f64 {
    let (steal0, total0, _) = *PHASE_MARK.lock().unwrap();
    let (steal, total, _) = cpu_jiffies();
    100.0 * (steal - steal0) as f64 / (total - total0).max(1) as f64
}

/// CPU seconds every process and interrupt on the machine used since the last mark: on
/// loopback, TCP work moves between the broker's account and the client's, and this sum
/// shows whether a change saved work or only moved it.
fn machine_busy_seconds() -> f64 {
    let (_, _, busy0) = *PHASE_MARK.lock().unwrap();
    let (_, _, busy) = cpu_jiffies();
    (busy - busy0) as f64 / 100.0
}

fn producer(bootstrap: &str, linger_ms: u32, acks: i32) -> BaseProducer {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("linger.ms", linger_ms.to_string())
        .set("batch.size", "1000000")
        .set("acks", acks.to_string())
        .set("compression.type", "none")
        .set("socket.nagle.disable", std::env::var("SLUICE_PERF_NODELAY").unwrap_or("false".into()))
        .set("queue.buffering.max.kbytes", "1048576")
        .set("queue.buffering.max.messages", "1000000")
        // The harness reads no delivery reports: librdkafka then skips building one per
        // record, client CPU this 2-core machine otherwise spends instead of the broker's.
        .set(
            "delivery.report.only.error",
            if std::env::var_os("SLUICE_PERF_ALL_REPORTS").is_some() { "false" } else { "true" },
        )
        .create()
        .expect("producer")
}

/// Produces `n` records; returns (seconds, broker CPU seconds).
fn produce(
    bootstrap: &str,
    topic: &str,
    n: u64,
    linger_ms: u32,
    acks: i32,
    broker: &Broker,
) -> (f64, f64) {
    let p = producer(bootstrap, linger_ms, acks);
    // Metadata first, so the timed loop does not include topic creation.
    p.send(BaseRecord::<(), [u8]>::to(topic).payload(&[0u8; RECORD][..]).partition(0)).ok();
    p.flush(Duration::from_secs(10)).unwrap();
    let payload = [b'x'; RECORD];
    let cpu0 = broker.cpu_seconds();
    let start = Instant::now();
    for _ in 0..n {
        loop {
            match p.send(BaseRecord::<(), [u8]>::to(topic).payload(&payload[..]).partition(0)) {
                Ok(()) => break,
                Err((_, _)) => {
                    p.poll(Duration::from_millis(1));
                }
            }
        }
    }
    p.flush(Duration::from_secs(120)).unwrap();
    (start.elapsed().as_secs_f64(), broker.cpu_seconds() - cpu0)
}

/// Consumes `n` records from the beginning; returns (seconds, broker CPU seconds, record
/// bytes the broker sent with sendfile).
fn consume(bootstrap: &str, topic: &str, n: u64, broker: &Broker) -> (f64, f64, u64) {
    let c = sluice_benches::rd::bulk_consumer(bootstrap, topic);
    let cpu0 = broker.cpu_seconds();
    let (fetches0, sent0) = (
        broker.metric("sluice_requests_total{api_key=\"1\"}"),
        broker.metric("sluice_fetch_sendfile_bytes_total"),
    );
    let client0 = own_cpu_seconds();
    let start = Instant::now();
    let mut got = 0u64;
    while got < n {
        if let Some(m) = c.poll(Duration::from_secs(5)) {
            m.expect("consume");
            got += 1;
        }
    }
    let (secs, cpu) = (start.elapsed().as_secs_f64(), broker.cpu_seconds() - cpu0);
    let client = own_cpu_seconds() - client0;
    let fetches = broker.metric("sluice_requests_total{api_key=\"1\"}") - fetches0;
    let sent = broker.metric("sluice_fetch_sendfile_bytes_total") - sent0;
    println!(
        "  {fetches} fetch requests, {:.0} KB sent with sendfile per fetch; client CPU {:.3} s per million records",
        sent as f64 / fetches.max(1) as f64 / 1e3,
        client / (n as f64 / 1e6)
    );
    (secs, cpu, sent)
}

/// CPU seconds this thread spends writing `bytes` into a new file, 1 MiB per write(2).
fn write_cpu_seconds(bytes: u64) -> f64 {
    let mut file = tempfile::tempfile().unwrap();
    let block = vec![b'x'; 1 << 20];
    let cpu0 = cpu_seconds_of("thread-self");
    let mut left = bytes;
    while left > 0 {
        let n = left.min(block.len() as u64) as usize;
        file.write_all(&block[..n]).unwrap();
        left -= n as u64;
    }
    cpu_seconds_of("thread-self") - cpu0
}

/// CPU seconds the sending thread spends in sendfile(2) moving `bytes` from a file in the
/// page cache to a loopback TCP reader that discards them; the sending socket uses
/// [`LOOPBACK_CC`], as the broker's do.
fn sendfile_cpu_seconds(bytes: u64) -> f64 {
    let chunk = 256u64 << 20;
    let mut file = tempfile::tempfile().unwrap();
    let block = vec![b'x'; 1 << 20];
    for _ in 0..chunk >> 20 {
        file.write_all(&block).unwrap();
    }
    let (s, reader) = loopback_pair(LOOPBACK_CC, |mut s| {
        let mut buf = vec![0u8; 1 << 20];
        while s.read(&mut buf).unwrap() > 0 {}
    });
    let cpu0 = cpu_seconds_of("thread-self");
    let mut left = bytes;
    while left > 0 {
        let mut pos = 0;
        while pos < chunk.min(left) {
            let want = (chunk.min(left) - pos) as usize;
            pos += sluice_broker::storage::sendfile(&s, &file, pos, want).unwrap() as u64;
        }
        left -= pos;
    }
    let cpu = cpu_seconds_of("thread-self") - cpu0;
    drop(s);
    reader.join().unwrap();
    cpu
}

/// A loopback connection whose accepting end (returned, the sender) has congestion
/// control `cc` from its first packet, as the broker's do; the connecting end is handed
/// to `peer` on a thread of its own.
fn loopback_pair(
    cc: &str,
    peer: impl FnOnce(TcpStream) + Send + 'static,
) -> (TcpStream, std::thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    sluice_broker::server::set_tcp_congestion_control(&listener, cc).unwrap();
    let addr = listener.local_addr().unwrap();
    let thread = std::thread::spawn(move || peer(TcpStream::connect(addr).unwrap()));
    let (s, _) = listener.accept().unwrap();
    assert_eq!(sluice_broker::server::tcp_congestion_control(&s).unwrap(), cc);
    (s, thread)
}

/// The congestion control new TCP sockets get.
fn system_congestion_control() -> String {
    let fresh = TcpListener::bind("127.0.0.1:0").unwrap();
    sluice_broker::server::tcp_congestion_control(&fresh).unwrap()
}

/// Produces about `rate` records/s to topic "bulk" in 10 ms bursts until `stop`; returns
/// the number of records sent.
fn bulk_load(bootstrap: &str, rate: u64, stop: &AtomicBool) -> u64 {
    let p = producer(bootstrap, 5, 1);
    let payload = [b'x'; RECORD];
    let start = Instant::now();
    let mut sent = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let due = (start.elapsed().as_secs_f64() * rate as f64) as u64;
        while sent < due {
            let record = BaseRecord::<(), [u8]>::to("bulk").payload(&payload[..]).partition(0);
            if p.send(record).is_err() {
                p.poll(Duration::from_millis(1));
                continue;
            }
            sent += 1;
        }
        p.poll(Duration::from_millis(10));
    }
    p.flush(Duration::from_secs(30)).unwrap();
    sent
}

/// Produces `rate` records/s for `dur` with linger 0 while a consumer with default
/// settings reads them; each record carries its send time.
fn latency(bootstrap: &str, rate: u64, dur: Duration) {
    let mut lat = sluice_benches::rd::latencies(bootstrap, "latency", rate, dur);
    lat.sort_unstable();
    let pct = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)] as f64 / 1e6;
    println!(
        "end-to-end latency at {rate} records/s ({} records): p50 {:.3} ms, p99 {:.3} ms, p99.9 {:.3} ms, steal {:.1} %",
        lat.len(),
        pct(0.5),
        pct(0.99),
        pct(0.999),
        steal_percent()
    );
}

/// Copies `bytes` through a loopback TCP connection whose sender uses congestion control
/// `cc`; MB/s.
fn loopback_mb_per_s(bytes: usize, cc: &str) -> f64 {
    let (mut s, reader) = loopback_pair(cc, move |mut s| {
        let mut buf = vec![0u8; 1 << 20];
        let mut total = 0;
        while total < bytes {
            let n = s.read(&mut buf).unwrap();
            assert!(n > 0);
            total += n;
        }
    });
    let buf = vec![7u8; 1 << 20];
    let start = Instant::now();
    let mut sent = 0;
    while sent < bytes {
        s.write_all(&buf).unwrap();
        sent += buf.len();
    }
    reader.join().unwrap();
    bytes as f64 / start.elapsed().as_secs_f64() / 1e6
}

fn num_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown cpu".into())
}
