//! Interop with real third-party clients: kcat (Debian's, librdkafka 2.0.2), the Python
//! clients confluent-kafka (librdkafka) and kafka-python, and Apache Kafka's Java client,
//! whose programs live in tests/interop/. The README's test command installs them.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use sluice_tests::BrokerProcess;

fn interop_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("interop")
}

/// Runs a Python interop script against `broker`; fails with its output if it fails.
fn python(script: &str, broker: &BrokerProcess) {
    python_with_args(script, broker, &[]);
}

/// Runs a Python interop script against `broker` with more arguments after the bootstrap
/// address; returns its stdout, failing with all its output and the broker's log if it
/// fails.
pub(crate) fn python_with_args(script: &str, broker: &BrokerProcess, args: &[&str]) -> String {
    let out = Command::new("python3")
        .arg(interop_dir().join(script))
        .arg(broker.bootstrap())
        .args(args)
        .output()
        .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{script} {args:?} failed:\n{stdout}\n{}\nbroker log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        broker.log()
    );
    stdout
}

#[test]
fn kcat_produces_and_consumes_with_every_codec() {
    let broker = BrokerProcess::start(&[]);
    for codec in ["none", "gzip", "snappy", "lz4", "zstd"] {
        let mut child = Command::new("kcat")
            .args([
                "-b",
                &broker.bootstrap(),
                "-t",
                "kcat",
                "-P",
                "-K:",
                "-z",
                codec,
                "-H",
                &format!("codec={codec}"),
            ])
            .stdin(Stdio::piped())
            .spawn()
            .expect("kcat is installed");
        let mut stdin = child.stdin.take().unwrap();
        for i in 0..100 {
            writeln!(stdin, "key{i}:{codec}-value-{i}").unwrap();
        }
        drop(stdin);
        assert!(child.wait().unwrap().success(), "kcat produce with {codec}");
    }
    let out = Command::new("kcat")
        .args([
            "-b",
            &broker.bootstrap(),
            "-t",
            "kcat",
            "-C",
            "-e",
            "-o",
            "beginning",
            "-f",
            "%o|%k|%s|%h\n",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 500, "{text}");
    for (n, codec) in ["none", "gzip", "snappy", "lz4", "zstd"].iter().enumerate() {
        for i in 0..100 {
            let offset = n * 100 + i;
            assert_eq!(lines[offset], format!("{offset}|key{i}|{codec}-value-{i}|codec={codec}"));
        }
    }
}

#[test]
fn confluent_kafka_interop() {
    let broker = BrokerProcess::start(&[]);
    python("confluent_interop.py", &broker);
}

#[test]
fn kafka_python_interop() {
    let broker = BrokerProcess::start(&[]);
    python("kafka_python_interop.py", &broker);
}

/// Kafka's Java client jars, put in target/java-client by the README's test command (or
/// in `$CARGO_TARGET_DIR/java-client`, where a build with its own target dir keeps them).
fn java_client_classpath() -> String {
    let default = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/java-client");
    let jars = std::env::var_os("CARGO_TARGET_DIR")
        .map(|dir| PathBuf::from(dir).join("java-client"))
        .filter(|dir| dir.join("kafka-clients-4.3.0.jar").exists())
        .unwrap_or(default);
    assert!(
        jars.join("kafka-clients-4.3.0.jar").exists(),
        "no Java client in {}: run python3 tests/interop/fetch_java_client.py \
         (the README's test command does)",
        jars.display()
    );
    format!("{}/*", jars.display())
}

/// `java` running one of tests/interop's programs (a single source file, compiled in
/// memory) against `broker`.
pub(crate) fn java(program: &str, broker: &BrokerProcess) -> Command {
    let mut command = Command::new("java");
    command
        .arg("-cp")
        .arg(java_client_classpath())
        .arg(interop_dir().join(program))
        .arg(broker.bootstrap());
    command
}

#[test]
fn java_client_interop() {
    // No initial rebalance delay: the program's groups form as soon as their members join.
    let broker = BrokerProcess::start(&["--override", "group.initial.rebalance.delay.ms=0"]);
    let out = java("JavaInterop.java", &broker).output().expect("java runs");
    assert!(
        out.status.success(),
        "JavaInterop failed:\n{}\n{}\nbroker log:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        broker.log()
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("java interop OK"));
}

#[test]
fn java_idempotent_producer_survives_a_broker_crash() {
    let mut broker = BrokerProcess::start(&["--override", "log.flush.interval.messages=1"]);
    let stderr = tempfile::NamedTempFile::new().unwrap();
    let mut child = java("JavaIdempotentRestart.java", &broker)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(stderr.reopen().unwrap())
        .spawn()
        .expect("java runs");
    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = stdout.next().and_then(Result::ok);
    assert_eq!(
        first.as_deref(),
        Some("producing"),
        "{}",
        std::fs::read_to_string(stderr.path()).unwrap()
    );
    // A stall longer than the producer's request timeout: it gives up on the requests in
    // flight and sends them again on a new connection, while the broker, once resumed, still
    // reads and appends the first copies from the old one. The second copies are duplicates.
    std::thread::sleep(Duration::from_millis(300));
    broker.pause();
    std::thread::sleep(Duration::from_secs(2));
    broker.resume();
    // Then a crash with requests in flight; the broker comes back on the same port while
    // the producer retries, and must know the producer's sequences from its log.
    std::thread::sleep(Duration::from_millis(500));
    broker.kill();
    std::thread::sleep(Duration::from_millis(200));
    broker.restart_on_same_port();
    std::thread::sleep(Duration::from_secs(1));
    writeln!(child.stdin.as_mut().unwrap(), "stop").unwrap();
    let rest: Vec<String> = stdout.map_while(Result::ok).collect();
    let status = child.wait().unwrap();
    eprintln!("{}", rest.join("\n"));
    assert!(
        status.success() && rest.iter().any(|l| l.starts_with("exactly once:")),
        "JavaIdempotentRestart failed: {rest:?}\n{}\nbroker log:\n{}",
        std::fs::read_to_string(stderr.path()).unwrap(),
        broker.log()
    );
}

/// sluice-client's partitioner puts every key where Kafka's Java client does: murmur2 and
/// the partition of 20,000 keys of 0 to 40 random bytes, over 1 to 64 partitions, computed
/// by the kafka-clients jar itself.
#[test]
fn the_client_partitioner_matches_the_java_client_key_for_key() {
    use sluice_client::producer::partitioner::{murmur2, partition_for_key};
    let out = Command::new("java")
        .arg("-cp")
        .arg(java_client_classpath())
        .arg(interop_dir().join("JavaPartitioner.java"))
        .arg("20000")
        .output()
        .expect("java runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    let mut checked = 0;
    for line in text.lines() {
        let f: Vec<&str> = line.split(' ').collect();
        let key: Vec<u8> = if f[0] == "-" {
            Vec::new()
        } else {
            (0..f[0].len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&f[0][i..i + 2], 16).unwrap())
                .collect()
        };
        let (hash, partitions, partition): (i32, u32, u32) =
            (f[1].parse().unwrap(), f[2].parse().unwrap(), f[3].parse().unwrap());
        assert_eq!(murmur2(&key), hash, "murmur2 of {}", f[0]);
        assert_eq!(partition_for_key(&key, partitions), partition, "{} of {partitions}", f[0]);
        checked += 1;
    }
    assert_eq!(checked, 20_000);
}
