//! Shared helpers for Sluice's benchmarks: the release broker started on a free port with
//! a temporary data directory, and CPU time read from /proc.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// utime + stime of process `pid` (or `self`), in seconds.
pub fn cpu_seconds_of(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat.rsplit_once(')').unwrap().1.split_whitespace().collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    ticks / 100.0
}

/// A `sluiced` process for a benchmark.
#[derive(Debug)]
pub struct Broker {
    child: Child,
    /// `host:port` to connect to.
    pub bootstrap: String,
    metrics: String,
    bin: PathBuf,
    args: Vec<String>,
    dir: tempfile::TempDir,
}

impl Broker {
    /// Starts `SLUICED` (default: `sluiced` beside this binary) with `extra` arguments
    /// and `SLUICE_PERF_BROKER_ARGS`.
    pub fn start(extra: &[&str]) -> Broker {
        // Extra broker arguments for experiments, e.g. `--override queued.max.requests=1`.
        let env = std::env::var("SLUICE_PERF_BROKER_ARGS").unwrap_or_default();
        let args: Vec<String> =
            extra.iter().copied().chain(env.split_whitespace()).map(String::from).collect();
        let bin = std::env::var_os("SLUICED").map(PathBuf::from).unwrap_or_else(default_sluiced);
        Broker::start_with(bin, &args)
    }

    /// Starts `bin` with `args`.
    pub fn start_with(bin: PathBuf, args: &[String]) -> Broker {
        let dir = tempfile::tempdir().unwrap();
        let free = || TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let (port, metrics_port) = (free(), free());
        let bootstrap = format!("127.0.0.1:{port}");
        let metrics = format!("127.0.0.1:{metrics_port}");
        let child = spawn(&bin, &bootstrap, &metrics, dir.path(), args);
        eprintln!("broker pid {}", child.id());
        Broker { child, bootstrap, metrics, bin, args: args.to_vec(), dir }
    }

    /// The broker's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Stops the broker with SIGTERM (a clean shutdown); returns how long it took.
    pub fn stop(&mut self) -> Duration {
        let started = std::time::Instant::now();
        // SAFETY: kill(2) on the pid of a child this struct owns and has not reaped.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let _ = self.child.wait();
        started.elapsed()
    }

    /// Kills the broker with SIGKILL (a crash).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts the broker again on its data directory and ports, after [`Self::stop`] or
    /// [`Self::kill`]; returns when it accepts connections.
    pub fn restart(&mut self) {
        self.child = spawn(&self.bin, &self.bootstrap, &self.metrics, self.dir.path(), &self.args);
        eprintln!("broker pid {}", self.child.id());
    }

    /// A counter from the metrics endpoint (summed over its labels).
    pub fn metric(&self, name: &str) -> u64 {
        let mut s = TcpStream::connect(&self.metrics).unwrap();
        s.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).unwrap();
        text.lines()
            .filter(|l| l.strip_prefix(name).is_some_and(|r| r.starts_with([' ', '{'])))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum()
    }

    /// utime + stime of the broker process, in seconds.
    pub fn cpu_seconds(&self) -> f64 {
        cpu_seconds_of(&self.child.id().to_string())
    }
}

/// Starts `bin` on `bootstrap` and `metrics` with `data_dir`; returns once it accepts
/// connections.
fn spawn(
    bin: &PathBuf,
    bootstrap: &str,
    metrics: &str,
    data_dir: &std::path::Path,
    args: &[String],
) -> Child {
    let mut child = Command::new(bin)
        .args(["--listen", bootstrap, "--metrics", metrics, "--data-dir"])
        .arg(data_dir)
        .args(args)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("start {}: {e} (cargo build --release --bin sluiced)", bin.display())
        });
    while TcpStream::connect(bootstrap).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("sluiced exited during start: {status}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

/// `sluiced` beside this binary in target/release.
pub fn default_sluiced() -> PathBuf {
    std::env::current_exe().unwrap().parent().unwrap().join("sluiced")
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What the librdkafka harnesses share.
#[cfg(feature = "librdkafka")]
pub mod rd {
    use std::time::{Duration, Instant};

    use rdkafka::config::ClientConfig;
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::message::Message;
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
    use rdkafka::{Offset, TopicPartitionList};

    /// A consumer of partition 0 of `topic` from the beginning, tuned for bulk reads.
    pub fn bulk_consumer(bootstrap: &str, topic: &str) -> BaseConsumer {
        let c: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .set("group.id", "perf")
            .set("enable.auto.commit", "false")
            .set("fetch.max.bytes", "52428800")
            .set("max.partition.fetch.bytes", "10485760")
            .set("queued.max.messages.kbytes", "1048576")
            // librdkafka fetches again only when fewer than queued.min.messages (100,000 by
            // default) are queued, else it backs off for fetch.queue.backoff.ms (1 s); one
            // 10 MB fetch holds ~90,000 of these records, so the default leaves the consumer
            // idle most of the time, waiting on its own backoff rather than on the broker.
            .set("queued.min.messages", "1000000")
            .create()
            .expect("consumer");
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(topic, 0, Offset::Beginning).expect("offset");
        c.assign(&tpl).expect("assign");
        c
    }

    /// Bytes per record of the latency run.
    pub const RECORD: usize = 100;

    /// A payload whose first 8 bytes are the nanoseconds since `epoch`.
    pub fn stamped(epoch: Instant) -> [u8; RECORD] {
        let mut payload = [b'x'; RECORD];
        payload[..8].copy_from_slice(&(epoch.elapsed().as_nanos() as u64).to_le_bytes());
        payload
    }

    /// Produce-to-consume latencies (ns) with librdkafka on both sides: `rate` records/s
    /// for `dur` to partition 0 of `topic`, read by a consumer that starts at its end.
    pub fn latencies(bootstrap: &str, topic: &str, rate: u64, dur: Duration) -> Vec<u64> {
        let p: BaseProducer = ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .set("linger.ms", "0")
            .set("acks", "1")
            .set("delivery.report.only.error", "true")
            .create()
            .expect("producer");
        p.send(BaseRecord::<(), [u8]>::to(topic).payload(&[0u8; 16][..]).partition(0)).ok();
        p.flush(Duration::from_secs(10)).expect("flush");
        let c: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .set("group.id", "latency")
            .set("enable.auto.commit", "false")
            .create()
            .expect("consumer");
        // Start at the current end, resolved before the first record is sent.
        let (_, high) = c.fetch_watermarks(topic, 0, Duration::from_secs(10)).expect("watermarks");
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(topic, 0, Offset::Offset(high)).expect("offset");
        c.assign(&tpl).expect("assign");
        let _ = c.poll(Duration::from_millis(500));
        let epoch = Instant::now();
        let total = rate * dur.as_secs();
        let topic_name = topic.to_string();
        let sender = std::thread::spawn(move || {
            let interval = Duration::from_secs_f64(1.0 / rate as f64);
            for i in 0..total {
                let due = epoch + interval * i as u32;
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
                let payload = stamped(epoch);
                while p
                    .send(
                        BaseRecord::<(), [u8]>::to(&topic_name).payload(&payload[..]).partition(0),
                    )
                    .is_err()
                {
                    p.poll(Duration::from_millis(1));
                }
                p.poll(Duration::ZERO);
            }
            p.flush(Duration::from_secs(10)).expect("flush");
        });
        let mut lat = Vec::with_capacity(total as usize);
        while (lat.len() as u64) < total {
            match c.poll(Duration::from_secs(5)) {
                Some(Ok(m)) => {
                    if let Some(payload) = m.payload().filter(|p| p.len() == RECORD) {
                        let sent = u64::from_le_bytes(payload[..8].try_into().expect("8 bytes"));
                        lat.push(epoch.elapsed().as_nanos() as u64 - sent);
                    }
                }
                _ if sender.is_finished() => break,
                _ => {}
            }
        }
        sender.join().expect("sender");
        lat
    }
}
