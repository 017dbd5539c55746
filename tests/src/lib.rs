//! Harness for the end-to-end tests: starts the real `sluiced` binary on a free port
//! with a temporary data directory, and speaks the Kafka protocol to it over raw TCP.
//!
//! The binaries are `target/<profile>/sluiced` and `target/<profile>/sluice` next to the
//! test executable (build them first: `cargo build --bins`), or whatever `SLUICED` and
//! `SLUICE_CLI` name.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use kafka_protocol::protocol::StrBytes;
use sluice_protocol::api_key::ApiKey;
use sluice_protocol::header::{RequestHeader, ResponseHeader};
use sluice_protocol::messages::{Request, Response};

pub mod hostile;

/// Path of the `sluiced` binary under test.
pub fn sluiced_path() -> PathBuf {
    binary_path("sluiced", "SLUICED")
}

/// Path of the `sluice` CLI under test: `target/<profile>/sluice`, or whatever
/// `SLUICE_CLI` names.
pub fn sluice_cli_path() -> PathBuf {
    binary_path("sluice", "SLUICE_CLI")
}

/// `target/<profile>/<name>` next to the test executable, unless `env` names another.
fn binary_path(name: &str, env: &str) -> PathBuf {
    if let Some(p) = std::env::var_os(env) {
        return PathBuf::from(p);
    }
    // target/<profile>/deps/<test binary> -> target/<profile>/<name>
    let exe = std::env::current_exe().expect("test executable path");
    let profile_dir = exe.parent().and_then(Path::parent).expect("target/<profile>");
    let bin = profile_dir.join(name);
    assert!(bin.exists(), "{} not found: run `cargo build --bins` first", bin.display());
    bin
}

/// Path of the `sluice-mirror` binary under test: `target/<profile>/sluice-mirror`, or
/// whatever `SLUICE_MIRROR` names.
pub fn mirror_path() -> PathBuf {
    if let Some(p) = std::env::var_os("SLUICE_MIRROR") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("test executable path");
    let profile_dir = exe.parent().and_then(Path::parent).expect("target/<profile>");
    let bin = profile_dir.join("sluice-mirror");
    assert!(bin.exists(), "{} not found: run `cargo build --bins` first", bin.display());
    bin
}

/// A free TCP port on 127.0.0.1 (bound, then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A running broker process, killed when dropped.
#[derive(Debug)]
pub struct BrokerProcess {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its data directory (kept across restarts).
    pub data_dir: PathBuf,
    /// Where the metrics endpoint listens.
    pub metrics: SocketAddr,
    extra: Vec<String>,
    open_file_limit: Option<u64>,
    child: Option<Child>,
    _tmp: Option<tempfile::TempDir>,
}

impl BrokerProcess {
    /// Starts a broker with a fresh data directory and extra flags.
    pub fn start(extra: &[&str]) -> BrokerProcess {
        Self::start_with(extra, None)
    }

    /// Starts a broker whose soft and hard limits on open files are both `limit`.
    pub fn start_with_open_file_limit(extra: &[&str], limit: u64) -> BrokerProcess {
        Self::start_with(extra, Some(limit))
    }

    fn start_with(extra: &[&str], open_file_limit: Option<u64>) -> BrokerProcess {
        let tmp = tempfile::tempdir().unwrap();
        let data_dir = tmp.path().join("data");
        let mut b = BrokerProcess {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            metrics: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir,
            extra: extra.iter().map(|s| s.to_string()).collect(),
            open_file_limit,
            child: None,
            _tmp: Some(tmp),
        };
        b.spawn(free_port());
        b
    }

    fn spawn(&mut self, port: u16) {
        let metrics_port = free_port();
        self.addr = SocketAddr::from(([127, 0, 0, 1], port));
        self.metrics = SocketAddr::from(([127, 0, 0, 1], metrics_port));
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.data_dir.with_extension("log"))
            .unwrap();
        let mut command = Command::new(sluiced_path());
        if let Some(limit) = self.open_file_limit {
            use std::os::unix::process::CommandExt;
            let rlimit = libc::rlimit { rlim_cur: limit, rlim_max: limit };
            // SAFETY: setrlimit(2) is async-signal-safe and touches only the child, between
            // fork and exec; `rlimit` is a plain value copied into the closure.
            unsafe {
                command.pre_exec(move || {
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &rlimit) == 0 {
                        Ok(())
                    } else {
                        Err(std::io::Error::last_os_error())
                    }
                });
            }
        }
        let child = command
            .arg("--listen")
            .arg(self.addr.to_string())
            .arg("--data-dir")
            .arg(&self.data_dir)
            .arg("--metrics")
            .arg(self.metrics.to_string())
            .args(&self.extra)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start sluiced");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        // The console listener opens just after the Kafka port: wait for both, so a test
        // that goes to the console first does not find it refused.
        for addr in [self.addr, self.metrics] {
            while TcpStream::connect(addr).is_err() {
                if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                    panic!("sluiced exited at start with {status}: {}", self.log());
                }
                let log = self.log();
                assert!(
                    Instant::now() < deadline,
                    "sluiced did not start listening on {addr}: {log}"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }

    /// The broker's log output so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.data_dir.with_extension("log")).unwrap_or_default()
    }

    /// `host:port` for client configs.
    pub fn bootstrap(&self) -> String {
        self.addr.to_string()
    }

    /// Sends SIGTERM and waits for a graceful exit; panics if it does not exit cleanly.
    pub fn stop(&mut self) {
        let mut child = self.child.take().expect("running");
        // SAFETY: kill(2) with a pid we own; no memory is involved.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                assert!(status.success(), "sluiced exited with {status}: {}", self.log());
                return;
            }
            assert!(Instant::now() < deadline, "sluiced ignored SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends SIGSTOP: the broker stops answering, its sockets stay open.
    pub fn pause(&self) {
        self.signal(libc::SIGSTOP);
    }

    /// Sends SIGCONT after [`Self::pause`].
    pub fn resume(&self) {
        self.signal(libc::SIGCONT);
    }

    fn signal(&self, signal: i32) {
        let child = self.child.as_ref().expect("running");
        // SAFETY: kill(2) with a pid we own; no memory is involved.
        unsafe { libc::kill(child.id() as i32, signal) };
    }

    /// Sends SIGKILL: a crash.
    pub fn kill(&mut self) {
        let mut child = self.child.take().expect("running");
        child.kill().unwrap();
        child.wait().unwrap();
    }

    /// Starts the broker again on the same data directory (new ports).
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "stop or kill it first");
        self.spawn(free_port());
    }

    /// Starts the broker again on the same data directory and the same port, so that
    /// running clients reconnect to it as to a restarted Kafka broker.
    pub fn restart_on_same_port(&mut self) {
        assert!(self.child.is_none(), "stop or kill it first");
        self.spawn(self.addr.port());
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        self.child.as_mut().is_some_and(|c| c.try_wait().unwrap().is_none())
    }

    /// The broker's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// The broker's resident set size now, in bytes (`VmRSS` in /proc).
    pub fn rss_bytes(&self) -> u64 {
        self.proc_status_kib("VmRSS:") * 1024
    }

    /// The largest resident set size the broker has had, in bytes (`VmHWM` in /proc):
    /// a request's transient peak counts even after its memory is freed.
    pub fn peak_rss_bytes(&self) -> u64 {
        self.proc_status_kib("VmHWM:") * 1024
    }

    /// Resets the broker's peak resident set to its current size (`5` into
    /// /proc/PID/clear_refs), so that [`Self::peak_rss_bytes`] then measures what follows.
    pub fn reset_peak_rss(&self) {
        std::fs::write(format!("/proc/{}/clear_refs", self.pid()), "5").unwrap();
    }

    fn proc_status_kib(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("{field} in /proc/{}/status", self.pid()))
    }

    /// Reads a counter from the metrics endpoint.
    pub fn metric(&self, name: &str) -> u64 {
        let mut s = TcpStream::connect(self.metrics).unwrap();
        s.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok()))
            .unwrap_or(0)
    }
}

impl Drop for BrokerProcess {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A raw Kafka protocol connection.
#[derive(Debug)]
pub struct RawClient {
    /// The socket.
    pub stream: TcpStream,
    correlation: i32,
}

impl RawClient {
    /// Connects with a 10 s read timeout.
    pub fn connect(addr: SocketAddr) -> RawClient {
        let stream = TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        RawClient { stream, correlation: 0 }
    }

    /// Sends a request and reads its response.
    pub fn call(&mut self, version: i16, request: Request) -> Response {
        self.send(version, &request);
        self.receive(request.api_key(), version)
    }

    /// Sends a request without reading the response; returns its correlation id.
    pub fn send(&mut self, version: i16, request: &Request) -> i32 {
        self.correlation += 1;
        let header = RequestHeader::new(
            request.api_key(),
            version,
            self.correlation,
            Some(StrBytes::from_static_str("sluice-tests")),
        );
        let mut buf = BytesMut::new();
        request.encode_frame(&header, &mut buf).unwrap();
        self.stream.write_all(&buf).unwrap();
        self.correlation
    }

    /// Reads the response to the last request sent.
    pub fn receive(&mut self, api_key: ApiKey, version: i16) -> Response {
        self.receive_for(api_key, version, self.correlation)
    }

    /// Reads the next response, which must answer request `correlation` (pipelined
    /// requests are answered in the order they were sent).
    pub fn receive_for(&mut self, api_key: ApiKey, version: i16, correlation: i32) -> Response {
        let frame = self.read_frame().expect("a response frame");
        let header = RequestHeader::new(api_key, version, correlation, None);
        let (rh, body) =
            ResponseHeader::decode(frame, ResponseHeader::for_request(&header).header_version)
                .unwrap();
        assert_eq!(rh.correlation_id, correlation, "responses come in request order");
        Response::decode(api_key, version, body).unwrap()
    }

    /// Reads one size-prefixed frame; `None` at end of stream.
    pub fn read_frame(&mut self) -> Option<Bytes> {
        let mut size = [0u8; 4];
        self.stream.read_exact(&mut size).ok()?;
        let mut frame = vec![0u8; i32::from_be_bytes(size) as usize];
        self.stream.read_exact(&mut frame).ok()?;
        Some(Bytes::from(frame))
    }
}
