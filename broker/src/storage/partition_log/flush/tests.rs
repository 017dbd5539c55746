use super::*;
use crate::storage::testing::{batch, idempotent_batch, small_config};

#[test]
fn a_log_is_due_for_the_flusher_only_when_it_has_something_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let log = PartitionLog::open(dir.path(), small_config()).unwrap();
    let now = now_ms();
    assert_eq!(log.background_due(now), None, "empty");
    log.append(&batch(0, 10, 100)).unwrap();
    assert_eq!(log.background_due(now), None, "unflushed, with no flush policy: the page cache's");

    let mut config = small_config();
    config.flush_ms = 60_000;
    log.set_config(config.clone());
    let last_flush = lock(&log.flush).last_flush_ms;
    assert_eq!(log.background_due(now), Some(last_flush + 60_000), "flush.ms");
    config.flush_messages = 10;
    log.set_config(config);
    assert_eq!(log.background_due(now), Some(now), "flush.messages reached");
    assert!(log.flush_if_due(now).unwrap().is_some());
    assert_eq!(log.background_due(now), None, "synced: nothing left to do");

    log.set_config(small_config());
    log.append(&idempotent_batch(7, 0, 0, 1)).unwrap();
    let expiration = small_config().producer_id_expiration_ms;
    let due = log.background_due(now).expect("a producer to expire");
    assert!((now..=now_ms()).contains(&(due - expiration)), "{due}: its last append + expiration");

    // A roll seals a segment the flusher must sync (and record in the recovery point).
    while log.segment_base_offsets().len() == 1 {
        log.append(&batch(0, 10, 1000)).unwrap();
    }
    assert_eq!(log.background_due(now), Some(now), "a sealed segment to sync");
    log.flush_if_due(now).unwrap();
    assert_eq!(log.background_due(now), Some(due), "only the producer's expiry is left");
    log.close().unwrap();
    assert_eq!(log.background_due(now), None, "closed");
}
