//! Interop with real third-party clients: kcat (Debian's, librdkafka 2.0.2), the Python
//! clients confluent-kafka (librdkafka) and kafka-python, and Apache Kafka's Java client,
//! whose programs live in tests/interop/. The README's test command installs them.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use sluice_tests::BrokerProcess;

fn interop_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("interop")
}

/// Runs a Python interop script against `broker`; fails with its output if it fails.
fn python(script: &str, broker: &BrokerProcess) {
    let out = Command::new("python3")
        .arg(interop_dir().join(script))
        .arg(broker.bootstrap())
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "{script} failed:\n{}\n{}\nbroker log:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        broker.log()
    );
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

#[test]
fn java_client_interop() {
    let jars = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/java-client");
    assert!(
        jars.join("kafka-clients-4.3.0.jar").exists(),
        "no Java client in {}: run python3 tests/interop/fetch_java_client.py \
         (the README's test command does)",
        jars.display()
    );
    // No initial rebalance delay: the program's groups form as soon as their members join.
    let broker = BrokerProcess::start(&["--override", "group.initial.rebalance.delay.ms=0"]);
    // Java runs a single source file directly, compiling it in memory.
    let out = Command::new("java")
        .arg("-cp")
        .arg(format!("{}/*", jars.display()))
        .arg(interop_dir().join("JavaInterop.java"))
        .arg(broker.bootstrap())
        .output()
        .expect("java runs");
    assert!(
        out.status.success(),
        "JavaInterop failed:\n{}\n{}\nbroker log:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        broker.log()
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("java interop OK"));
}
