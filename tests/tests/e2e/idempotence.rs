//! Idempotent producers: confluent-kafka with `enable.idempotence=true` produces 100,000
//! records while a raw client resends batches the producer already wrote (same producer
//! id, epoch and sequence): exactly 100,000 records are stored.

use std::process::Command;

use sluice_tests::{BrokerProcess, RawClient};

use crate::client::{ensure_topic, fetch, produce};

#[test]
fn retried_batches_of_an_idempotent_producer_are_stored_once() {
    const N: i64 = 100_000;
    let broker = BrokerProcess::start(&[]);
    let mut c = RawClient::connect(broker.addr);
    ensure_topic(&mut c, "idem");
    ensure_topic(&mut c, "idem-kp");
    let script =
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("interop/idempotent_producer.py");
    let mut producer = Command::new("python3")
        .arg(script)
        .arg(broker.bootstrap())
        .arg("idem")
        .arg(N.to_string())
        .spawn()
        .expect("python3 runs");
    // While it produces, resend the newest batch in the log as a retry would.
    let mut duplicates_acked = 0;
    let mut resent = 0;
    loop {
        if producer.try_wait().unwrap().is_some() {
            break;
        }
        let (_, hw, _) = fetch(&mut c, "idem", 0);
        if hw == 0 {
            std::thread::sleep(std::time::Duration::from_millis(5));
            continue;
        }
        let (err, _, records) = fetch(&mut c, "idem", hw - 1);
        if err != 0 || records.is_empty() {
            continue;
        }
        let batch = sluice_protocol::record::RecordBatch::parse_verified(&records).unwrap();
        assert!(batch.producer_id() >= 0, "the client produced idempotently");
        let (code, base) = produce(&mut c, "idem", records.slice(..batch.size()), -1);
        resent += 1;
        match code {
            0 => {
                assert_eq!(
                    base,
                    batch.base_offset(),
                    "a duplicate is answered with the original offset"
                );
                duplicates_acked += 1;
            }
            45 => {} // OUT_OF_ORDER_SEQUENCE_NUMBER: older than the last five batches
            other => panic!("unexpected error {other} for a resent batch"),
        }
    }
    assert!(producer.wait().unwrap().success(), "the idempotent producer failed: {}", broker.log());
    let (_, hw, _) = fetch(&mut c, "idem", 0);
    assert_eq!(hw, N, "exactly {N} records stored after {resent} resent batches");
    assert!(duplicates_acked > 0, "at least one resend was a true duplicate ({resent} resent)");
}
