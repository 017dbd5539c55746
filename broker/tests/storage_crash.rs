//! Crash test of the durable mode: a child process appends with
//! `flush.messages = 1` and prints each acknowledged offset; the parent kills it with
//! SIGKILL at a random moment, reopens the log, and checks that every acknowledged
//! batch is there, intact, and that appends go on from there.
//!
//! The child is this test binary itself, re-run with a filter that selects
//! `crash_child` and an environment variable that tells it where to write.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rand::Rng;
use sluice_broker::storage::testing::batch;
use sluice_broker::storage::{LogConfig, PartitionLog};
use sluice_protocol::record::RecordBatch;

const DIR_ENV: &str = "SLUICE_CRASH_CHILD_DIR";

fn config() -> LogConfig {
    LogConfig {
        flush_messages: 1,
        segment_bytes: 256 * 1024,
        segment_index_bytes: 64 * 1024,
        ..LogConfig::default()
    }
}

/// The child's body; a no-op unless the parent started it.
#[test]
fn crash_child() {
    let Ok(dir) = std::env::var(DIR_ENV) else { return };
    let log = PartitionLog::open(std::path::Path::new(&dir), config()).unwrap();
    let mut rng = rand::thread_rng();
    loop {
        let count = rng.gen_range(1..5);
        let info = log.append(&batch(0, count, rng.gen_range(10..3000))).unwrap();
        println!("acked {}", info.last_offset);
    }
}

#[test]
fn sigkill_during_durable_appends_keeps_every_acknowledged_batch() {
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut rng = rand::thread_rng();
    let mut acked_total = -1i64;
    for round in 0..4 {
        let mut child = Command::new(&exe)
            .args(["crash_child", "--exact", "--nocapture", "--test-threads=1"])
            .env(DIR_ENV, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut last = -1i64;
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(n) = line.strip_prefix("acked ") {
                    last = n.trim().parse().unwrap();
                }
            }
            last
        });
        // Let it append for a while, then kill it mid-write.
        let deadline = Instant::now() + Duration::from_millis(rng.gen_range(200..700));
        while Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let acked = reader.join().unwrap();
        assert!(acked > acked_total, "round {round}: the child acknowledged nothing new");
        acked_total = acked;

        let log = PartitionLog::open(dir.path(), config()).unwrap();
        assert!(
            log.log_end_offset() > acked_total,
            "round {round}: acknowledged offset {acked_total} lost, log end {}",
            log.log_end_offset()
        );
        // Every batch is whole and valid, and offsets are contiguous from 0.
        let mut offset = 0;
        while offset < log.log_end_offset() {
            let bytes = log.read(offset, 1 << 20).unwrap().slice.unwrap().read_to_vec().unwrap();
            let mut pos = 0;
            while pos < bytes.len() {
                let b =
                    RecordBatch::parse_verified(&bytes[pos..]).expect("no corrupt batch served");
                assert_eq!(b.base_offset(), offset);
                offset = b.last_offset() + 1;
                pos += b.size();
            }
        }
        drop(log);
    }
}
