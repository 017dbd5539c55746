use std::time::Duration;

use super::*;
use crate::storage::io::FaultyIo;
use crate::storage::testing::batch;
use crate::storage::LogConfig;

fn durable(dir: &std::path::Path, io: &Arc<FaultyIo>) -> Arc<Partition> {
    let config = LogConfig { flush_messages: 1, ..LogConfig::default() };
    let log = PartitionLog::open_with_io(dir, config, Arc::clone(io) as _).unwrap();
    Arc::new(Partition::new("t", 0, log))
}

fn records(n: i32) -> ValidRecords<Bytes> {
    ValidRecords::new(Bytes::from(batch(0, n, 100))).unwrap()
}

/// Appends in order, as a connection does, each acknowledgement waiting in its own task.
async fn append_and_wait(p: &Arc<Partition>, n: usize) -> Vec<Result<i64, StorageError>> {
    let mut waits = Vec::new();
    for _ in 0..n {
        let (info, sync_to) = p.append(records(2), None).await.unwrap();
        let offset = sync_to.expect("durable mode asks for a sync");
        assert_eq!(offset, info.last_offset + 1);
        let p = Arc::clone(p);
        waits.push(tokio::spawn(async move {
            p.sync_to(offset).await?;
            assert!(p.log().unwrap().flushed_offset() >= offset, "acknowledged before the sync");
            Ok(info.last_offset)
        }));
    }
    let mut out = Vec::new();
    for w in waits {
        out.push(tokio::time::timeout(Duration::from_secs(10), w).await.unwrap().unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_waiting_for_durability_share_syncs() {
    let dir = tempfile::tempdir().unwrap();
    let io = Arc::new(FaultyIo::new());
    io.slow_syncs(Duration::from_millis(5));
    let p = durable(dir.path(), &io);
    let done = append_and_wait(&p, 200).await;
    let last: Vec<i64> = done.into_iter().map(Result::unwrap).collect();
    assert_eq!(last, (0..200).map(|i| 2 * i + 1).collect::<Vec<_>>());
    assert_eq!(p.log().unwrap().flushed_offset(), 400);
    // 200 appends in well under one 5 ms sync: a handful of syncs cover them all.
    assert!(io.syncs() <= 10, "{} syncs for 200 appends", io.syncs());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_sync_fails_every_waiter_and_none_hangs() {
    let dir = tempfile::tempdir().unwrap();
    let io = Arc::new(FaultyIo::new());
    // Long enough that all 20 appends are in before the failure poisons the log.
    io.slow_syncs(Duration::from_millis(100));
    let p = durable(dir.path(), &io);
    io.fail_nth_sync(1);
    let done = append_and_wait(&p, 20).await;
    assert!(done.iter().all(Result::is_err), "{done:?}");
    assert!(p.log().unwrap().is_poisoned());
    assert!(matches!(p.append(records(1), None).await, Err(StorageError::Poisoned { .. })));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_whose_waiter_left_runs_on_in_the_tracker_until_it_ends() {
    let dir = tempfile::tempdir().unwrap();
    let io = Arc::new(FaultyIo::new());
    io.slow_syncs(Duration::from_millis(300));
    let config = LogConfig { flush_messages: 1, ..LogConfig::default() };
    let log = PartitionLog::open_with_io(dir.path(), config, Arc::clone(&io) as _).unwrap();
    let tasks = TaskTracker::new();
    let p = Arc::new(Partition::new("t", 0, log).tracked_by(&tasks));
    let (_, sync_to) = p.append(records(2), None).await.unwrap();
    let offset = sync_to.expect("durable mode asks for a sync");
    let waiter = tokio::spawn({
        let p = Arc::clone(&p);
        async move { p.sync_to(offset).await }
    });
    let started = async {
        while tasks.is_empty() {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), started).await.expect("a tracked sync");
    // The request goes away (its connection closed); its sync does not.
    waiter.abort();
    tasks.close();
    tokio::time::timeout(Duration::from_secs(10), tasks.wait()).await.unwrap();
    assert!(p.log().unwrap().flushed_offset() >= offset, "the tracker ended before the sync");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inline_and_handed_off_appends_land_in_order_and_wake_fetches() {
    let dir = tempfile::tempdir().unwrap();
    let log = PartitionLog::open(dir.path(), LogConfig::default()).unwrap();
    let p = Arc::new(Partition::new("t", 0, log));
    // A 6 KB set stays inline, a 1.3 MB one goes to a thread.
    let large_bytes = batch(0, 12_000, 1_300_000);
    let small = ValidRecords::new(Bytes::from(batch(0, 64, 6_000))).unwrap();
    let large = ValidRecords::new(Bytes::from(large_bytes.clone())).unwrap();
    assert!(small.len() <= INLINE_APPEND_BYTES && large.len() > INLINE_APPEND_BYTES);
    let mut next = 0;
    for (set, count) in [(small.clone(), 64), (large, 12_000), (small, 64)] {
        let waiter = Arc::new(Notify::new());
        p.register_waiter(&waiter);
        let (info, sync_to) = p.append(set, None).await.unwrap();
        assert_eq!((info.base_offset, info.last_offset), (next, next + count - 1));
        assert_eq!(sync_to, None, "no sync outside durable mode");
        tokio::time::timeout(Duration::from_secs(5), waiter.notified())
            .await
            .expect("the append wakes a waiting fetch");
        next += count;
    }
    assert_eq!(p.log().unwrap().log_end_offset(), next);
    // The handed-off set is stored whole, its base offset patched to 64.
    let stored = p.read(64, 1).unwrap().slice.unwrap().read_to_vec().unwrap();
    assert_eq!(stored.len(), large_bytes.len());
    assert_eq!(stored[..8], 64i64.to_be_bytes());
    assert_eq!(stored[8..], large_bytes[8..]);
}

#[tokio::test]
async fn appends_schedule_the_partition_only_when_they_make_it_due_sooner() {
    let dir = tempfile::tempdir().unwrap();
    let schedule = Arc::new(Schedule::default());
    let log = PartitionLog::open(dir.path(), crate::storage::testing::small_config()).unwrap();
    let p = Partition::new("t", 0, log).scheduled_in(&schedule);
    assert!(schedule.is_empty(), "an empty log has nothing due");
    p.append(records(10), None).await.unwrap();
    assert!(schedule.is_empty(), "nor one with no flush policy and no producer");
    // Rolls seal segments, which the flusher syncs: due now, once.
    while p.opened().unwrap().segment_base_offsets().len() < 3 {
        p.append(records(10), None).await.unwrap();
    }
    assert_eq!(schedule.len(), 1, "scheduled once, however many appends");
    let due = schedule.take_due(now_ms());
    assert_eq!(due.len(), 1);
    let log = due[0].0.upgrade().unwrap();
    log.flush_if_due(now_ms()).unwrap();
    assert_eq!(log.background_due(now_ms()), None, "the visit left nothing due");
    assert!(schedule.take_due(i64::MAX - 1).is_empty());
}
