//! Segments merged by the cleaner: how many are left and how large, what reads show, the
//! aborted-transaction index, readers during a swap, and a crash or an I/O error at each
//! step of a swap that replaces several segments.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use sluice_protocol::record::{batch, Compression};

use super::tests::{compact_config, copy_dir, latest, records, resources};
use super::*;
use crate::storage::cleaner::tests::keyed_batch;
use crate::storage::io::{FaultyIo, FileIo};
use crate::storage::partition_log::Isolation;
use crate::storage::segment::next_offset_from_headers;
use crate::storage::txn_index::{AbortedTxn, TxnMarker};
use crate::storage::{segment_file_name, FileSlice, LogConfig};

type Record = (i64, String, Option<String>);

const KEYS: usize = 1000;

/// Whether `key` is written in `round`: a fixed pseudo-random draw below `share` of 1000,
/// so that the last record of a key may be in any round.
fn drawn(key: usize, round: usize, share: u64) -> bool {
    let mut x = (key as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15)
        ^ (round as u64 + 1).wrapping_mul(0xc2b2_ae3d_27d4_eb4f);
    x ^= x >> 29;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^= x >> 32;
    x % 1000 < share
}

/// Overwrites of `KEYS` keys in `rounds`, each key in a round with a chance of
/// `share`/1000, ten records a batch, every 13th a tombstone: the latest records end up
/// spread over the whole history, a few in each segment.
fn scatter(log: &PartitionLog, rounds: std::ops::Range<usize>, share: u64) {
    scatter_with_transactions(log, rounds, share, 0);
}

/// [`scatter`] with a transaction after every `txn_every` batches (0: none), aborted and
/// committed in turn, each of its own producer.
fn scatter_with_transactions(
    log: &PartitionLog,
    rounds: std::ops::Range<usize>,
    share: u64,
    txn_every: usize,
) {
    let mut n = 0usize;
    for round in rounds {
        let keys: Vec<usize> = (0..KEYS).filter(|&k| drawn(k, round, share)).collect();
        for (i, chunk) in keys.chunks(10).enumerate() {
            let owned: Vec<(String, Option<String>)> = chunk
                .iter()
                .map(|k| {
                    n += 1;
                    (format!("key-{k}"), (!n.is_multiple_of(13)).then(|| format!("v{round}-{k}")))
                })
                .collect();
            let recs: Vec<(Option<&str>, Option<&str>)> =
                owned.iter().map(|(k, v)| (Some(k.as_str()), v.as_deref())).collect();
            log.append(&keyed_batch(Compression::None, 0, 1_000, &recs)).unwrap();
            if txn_every > 0 && i % txn_every == txn_every - 1 {
                let pid = (round * 1000 + i) as i64;
                transaction(log, pid, round, i % (2 * txn_every) != txn_every - 1);
            }
        }
    }
}

/// Appends until the active segment rolls, so that everything before is sealed.
fn seal(log: &PartitionLog) {
    let n = log.segment_base_offsets().len();
    while log.segment_base_offsets().len() == n {
        let key = format!("seal-{}", log.log_end_offset());
        log.append(&keyed_batch(Compression::None, 0, 1_000, &[(Some(&key), Some("x"))])).unwrap();
    }
}

/// A transaction of producer `pid` over two keys, aborted or committed.
fn transaction(log: &PartitionLog, pid: i64, round: usize, commit: bool) {
    let (a, b) = (format!("txn-{pid}-a"), format!("txn-{pid}-b"));
    let value = format!("t{round}");
    let recs = [(Some(a.as_str()), Some(value.as_str())), (Some(b.as_str()), None)];
    let mut bytes = keyed_batch(Compression::None, 0, 1_000, &recs);
    let attributes = i16::from_be_bytes([bytes[21], bytes[22]]) | batch::attributes::TRANSACTIONAL;
    bytes[21..23].copy_from_slice(&attributes.to_be_bytes());
    batch::set_producer(&mut bytes, pid, 0, 0);
    log.append(&bytes).unwrap();
    let marker = TxnMarker { producer_id: pid, producer_epoch: 0, coordinator_epoch: 0, commit };
    log.append_txn_marker(&marker).unwrap();
}

/// Every aborted transaction that read_committed reads from the log start are told of.
fn aborted(log: &PartitionLog) -> BTreeSet<(i64, i64, i64, i64)> {
    let mut out = BTreeSet::new();
    let mut offset = log.log_start_offset();
    loop {
        let read = log.read_isolated(offset, 1 << 20, Isolation::ReadCommitted).unwrap();
        let Some(slice) = read.slice else { break };
        out.extend(
            read.aborted
                .iter()
                .map(|a| (a.producer_id, a.first_offset, a.last_offset, a.last_stable_offset)),
        );
        let bytes = slice.read_to_vec().unwrap();
        let mut pos = 0;
        while pos < bytes.len() {
            let b = sluice_protocol::record::RecordBatch::parse_verified(&bytes[pos..]).unwrap();
            offset = b.last_offset() + 1;
            pos += b.size();
        }
    }
    out
}

/// Asserts two readings are the same, naming the first difference (not every record).
#[track_caller]
fn assert_same(got: &[Record], want: &[Record], what: &str) {
    if let Some(i) = (0..got.len().max(want.len())).find(|&i| got.get(i) != want.get(i)) {
        panic!(
            "{what}: {} records, {} expected; first difference at {i}: {:?} for {:?}",
            got.len(),
            want.len(),
            got.get(i),
            want.get(i)
        );
    }
}

/// Sizes of the sealed segments' `.log` files, oldest first.
fn sealed_sizes(log: &PartitionLog) -> Vec<u64> {
    let bases = log.segment_base_offsets();
    let size = |b: i64| fs::metadata(log.dir().join(segment_file_name(b, "log"))).unwrap().len();
    bases[..bases.len() - 1].iter().map(|&b| size(b)).collect()
}

/// Names of the files in `dir`, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut out: Vec<String> =
        fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    out.sort();
    out
}

/// Segments in offset order, none holding offsets of the next; no file left of a swap,
/// and none of a segment that is not in the list; no replaced segment held open.
fn assert_sound(log: &PartitionLog) {
    let segments = log.segments();
    for w in segments.windows(2) {
        assert!(
            w[0].next_offset() <= w[1].base_offset(),
            "segment {} ends at {}, past the next one's base {}",
            w[0].base_offset(),
            w[0].next_offset(),
            w[1].base_offset()
        );
    }
    let bases: BTreeSet<i64> = segments.iter().map(|s| s.base_offset()).collect();
    for name in names(log.dir()) {
        assert!(!name.ends_with(".cleaned") && !name.ends_with(".swap"), "left: {name}");
        let Some((stem, ext)) = name.split_once('.') else { continue };
        if stem.len() == 20 && ["log", "index", "timeindex", "txnindex"].contains(&ext) {
            assert!(bases.contains(&stem.parse().unwrap()), "{name} belongs to no segment");
        }
    }
    assert!(log.handles.open_count() <= segments.len());
}

/// What a reader expects of a pass over the sealed part of `before`: the latest record
/// of each key at its offset; the active segment as it was.
fn compacted(before: &[Record], active_base: i64) -> Vec<Record> {
    let sealed: Vec<Record> = before.iter().filter(|r| r.0 < active_base).cloned().collect();
    latest(&sealed)
        .into_iter()
        .chain(before.iter().filter(|r| r.0 >= active_base).cloned())
        .collect()
}

#[test]
fn many_small_segments_merge_into_about_one_per_segment_bytes_of_what_survives() {
    let dir = tempfile::tempdir().unwrap();
    let config = compact_config();
    let log = PartitionLog::open(dir.path(), config.clone()).unwrap();
    scatter(&log, 0..20, 300);
    seal(&log);
    let before = records(&log);
    let originals = log.segment_base_offsets().len();
    let stop = AtomicBool::new(false);
    // Groups are sized by the segments before cleaning (Kafka's rule): full segments are
    // cleaned one each, and the next pass, with nothing new to clean, merges what they kept.
    let first = log.clean(&resources(&stop), 10_000).unwrap().unwrap();
    let bases_and_sizes = |log: &PartitionLog| -> BTreeSet<(i64, u64)> {
        log.segment_base_offsets().into_iter().zip(sealed_sizes(log)).collect()
    };
    let cleaned_once = bases_and_sizes(&log);
    let second = log.clean(&resources(&stop), 10_000).unwrap().unwrap();
    assert!(second.segments_merged > 0, "{first:?} {second:?}");
    let active_base = *log.segment_base_offsets().last().unwrap();
    let after = records(&log);
    assert_same(&after, &compacted(&before, active_base), "after two passes");
    let sizes = sealed_sizes(&log);
    let surviving: u64 = sizes.iter().sum();
    // What the second pass merged holds at most segment.bytes. A segment cleaned alone
    // may have grown a little on the first: a kept tombstone's batch is rewritten with
    // its records' timestamps re-based on the delete horizon (as in Kafka).
    let merged: Vec<u64> =
        bases_and_sizes(&log).difference(&cleaned_once).map(|&(_, size)| size).collect();
    assert!(!merged.is_empty() && merged.iter().all(|&s| s <= config.segment_bytes), "{merged:?}");
    assert!(sizes.iter().all(|&s| s <= config.segment_bytes * 11 / 10), "{sizes:?}");
    // Grouped in order and greedily: no two neighbours would fit in one segment, so
    // there are fewer than twice as many as the bytes need, and a further pass (nothing
    // to clean, nothing to merge) changes nothing.
    assert!(sizes.windows(2).all(|w| w[0] + w[1] > config.segment_bytes), "{sizes:?}");
    assert!(
        sizes.len() as u64 <= 2 * surviving.div_ceil(config.segment_bytes),
        "{} segments for {surviving} bytes: {sizes:?}",
        sizes.len()
    );
    assert!(sizes.len() * 3 < originals, "{} segments left of {originals}", sizes.len());
    let gone = first.segments_merged
        + first.segments_removed
        + second.segments_merged
        + second.segments_removed;
    assert_eq!(originals - log.segment_base_offsets().len(), gone, "{first:?} {second:?}");
    let third = log.clean(&resources(&stop), 10_000).unwrap().unwrap();
    assert_eq!((third.segments_cleaned, third.segments_removed), (0, 0), "{third:?}");
    assert_sound(&log);
    // Every record is found at its offset through the rebuilt indexes.
    for r in after.iter().step_by(7) {
        let bytes = log.read(r.0, 1).unwrap().slice.unwrap().read_to_vec().unwrap();
        let b = sluice_protocol::record::RecordBatch::parse_verified(&bytes).unwrap();
        assert!(b.base_offset() <= r.0 && r.0 <= b.last_offset(), "{r:?} in {}", b.base_offset());
    }
    // Reopened after a clean close and after a crash: the same segments and records.
    let bases = log.segment_base_offsets();
    log.close().unwrap();
    drop(log);
    let log = PartitionLog::open(dir.path(), config.clone()).unwrap();
    assert_eq!(log.segment_base_offsets(), bases);
    assert_same(&records(&log), &after, "reopened");
    fs::remove_file(dir.path().join(".clean-shutdown")).unwrap();
    drop(log);
    let log = PartitionLog::open(dir.path(), config).unwrap();
    assert_eq!(log.segment_base_offsets(), bases);
    assert_same(&records(&log), &after, "reopened after a crash");
    assert_sound(&log);
}

#[test]
fn a_group_holds_at_most_segment_bytes_of_its_segments_and_the_indexes_bound_it_too() {
    let original = tempfile::tempdir().unwrap();
    let log =
        PartitionLog::open(original.path(), LogConfig { segment_bytes: 1024, ..compact_config() })
            .unwrap();
    // Distinct keys: cleaning keeps everything, so only merging changes the segments.
    for i in 0..400 {
        let keys: Vec<String> = (0..5).map(|j| format!("k{i}-{j}")).collect();
        let recs: Vec<_> = keys.iter().map(|k| (Some(k.as_str()), Some("value"))).collect();
        log.append(&keyed_batch(Compression::None, 0, 1_000, &recs)).unwrap();
    }
    seal(&log);
    let before = records(&log);
    let originals = sealed_sizes(&log);
    log.close().unwrap();
    drop(log);
    let mut counts = vec![];
    for index_bytes in [4096, 64] {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(original.path(), dir.path());
        // segment.bytes raised since the segments were written: they are small now.
        let config = LogConfig { segment_index_bytes: index_bytes, ..compact_config() };
        let log = PartitionLog::open(dir.path(), config.clone()).unwrap();
        let stop = AtomicBool::new(false);
        let stats = log.clean(&resources(&stop), 10_000).unwrap().unwrap();
        assert_same(&records(&log), &before, "merged");
        let sizes = sealed_sizes(&log);
        assert!(sizes.len() > 1 && stats.segments_merged > 0, "{sizes:?} {stats:?}");
        assert!(sizes.iter().all(|&s| s <= config.segment_bytes), "{sizes:?}");
        assert_eq!(sizes.iter().sum::<u64>(), originals.iter().sum::<u64>());
        assert_eq!(sizes.len() + stats.segments_merged, originals.len());
        // Greedy in order: two neighbouring groups would not have fitted in one.
        if index_bytes == 4096 {
            assert!(sizes.windows(2).all(|w| w[0] + w[1] > config.segment_bytes), "{sizes:?}");
        }
        assert_sound(&log);
        counts.push(sizes.len());
    }
    assert!(counts[1] > counts[0], "a small segment.index.bytes makes smaller groups: {counts:?}");
}

#[test]
fn aborted_transactions_of_merged_segments_stay_listed_across_reopens() {
    let dir = tempfile::tempdir().unwrap();
    let config = compact_config();
    let log = PartitionLog::open(dir.path(), config.clone()).unwrap();
    scatter_with_transactions(&log, 0..6, 400, 4);
    seal(&log);
    let listed = aborted(&log);
    assert!(listed.len() > 20, "{}", listed.len());
    let txn_files = |dir: &Path| names(dir).into_iter().filter(|n| n.ends_with(".txnindex"));
    let files_before = txn_files(dir.path()).count();
    let stop = AtomicBool::new(false);
    log.clean(&resources(&stop), 10_000).unwrap().unwrap();
    let stats = log.clean(&resources(&stop), 10_000).unwrap().unwrap();
    assert!(stats.segments_merged > 0, "{stats:?}");
    assert_eq!(aborted(&log), listed);
    assert_eq!(log.aborted_transaction_count(), listed.len());
    // The merged segments' files hold every entry, fewer files than before.
    let on_disk: Vec<AbortedTxn> = txn_files(dir.path())
        .flat_map(|n| crate::storage::txn_index::read(&dir.path().join(n)).unwrap())
        .collect();
    let as_tuples: BTreeSet<_> = on_disk
        .iter()
        .map(|a| (a.producer_id, a.first_offset, a.last_offset, a.last_stable_offset))
        .collect();
    assert_eq!((on_disk.len(), as_tuples), (listed.len(), listed.clone()));
    let files_after = txn_files(dir.path()).count();
    assert!(
        files_after < files_before,
        "{files_before} -> {files_after} files: {:?}",
        log.segment_base_offsets()
    );
    assert_sound(&log);
    let after = records(&log);
    log.close().unwrap();
    drop(log);
    let log = PartitionLog::open(dir.path(), config.clone()).unwrap();
    assert_eq!(aborted(&log), listed);
    assert_same(&records(&log), &after, "reopened");
    fs::remove_file(dir.path().join(".clean-shutdown")).unwrap();
    drop(log);
    let log = PartitionLog::open(dir.path(), config).unwrap();
    assert_eq!(aborted(&log), listed);
    assert_same(&records(&log), &after, "reopened after a crash");
}

#[test]
fn readers_keep_reading_while_segments_are_merged_away() {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(PartitionLog::open(dir.path(), compact_config()).unwrap());
    scatter(&log, 0..6, 500);
    seal(&log);
    let stop = AtomicBool::new(false);
    log.clean(&resources(&stop), 10_000).unwrap().unwrap();
    let before = records(&log);
    // A slice of every sealed segment: those that the next pass merges away read the
    // same bytes after their files are gone.
    let bases = log.segment_base_offsets();
    let held: Vec<(i64, FileSlice, Vec<u8>)> = bases[..bases.len() - 1]
        .iter()
        .map(|&b| {
            let slice = log.read(b, 1 << 20).unwrap().slice.unwrap();
            let bytes = slice.read_to_vec().unwrap();
            (b, slice, bytes)
        })
        .collect();
    let done = Arc::new(AtomicBool::new(false));
    let reader = {
        let (log, done, before) = (Arc::clone(&log), Arc::clone(&done), before.clone());
        std::thread::spawn(move || {
            let mut reads = 0;
            while !done.load(Ordering::Acquire) || reads == 0 {
                assert_same(&records(&log), &before, "a read during the merge");
                reads += 1;
            }
            reads
        })
    };
    let stats = log.clean(&resources(&stop), 10_000).unwrap().unwrap();
    done.store(true, Ordering::Release);
    assert!(reader.join().unwrap() > 0);
    assert!(stats.segments_merged > 0, "{stats:?}");
    let now = log.segment_base_offsets();
    assert!(held.iter().any(|(b, _, _)| !now.contains(b)), "{bases:?} -> {now:?}");
    for (b, slice, bytes) in &held {
        assert_eq!(&slice.read_to_vec().unwrap(), bytes, "segment {b}");
    }
    assert_same(&records(&log), &before, "after the merge");
}

/// A log whose sealed segments were cleaned once (small now) and that has new records to
/// clean: the next pass both drops records and merges. Returns the records before it.
fn before_a_merging_pass(dir: &Path) -> Vec<Record> {
    let log = PartitionLog::open(dir, compact_config()).unwrap();
    scatter_with_transactions(&log, 0..6, 500, 8);
    seal(&log);
    let stop = AtomicBool::new(false);
    log.clean(&resources(&stop), 10_000).unwrap().unwrap();
    scatter(&log, 6..7, 300);
    seal(&log);
    let before = records(&log);
    log.close().unwrap();
    before
}

/// The files of the segment at `base` in `dir`: log, indexes and `.txnindex` if any.
fn segment_files(dir: &Path, base: i64) -> Vec<String> {
    ["log", "index", "timeindex", "txnindex"]
        .iter()
        .map(|ext| segment_file_name(base, ext))
        .filter(|n| dir.join(n).exists())
        .collect()
}

#[test]
fn a_crash_at_any_step_of_a_merging_swap_leaves_the_old_segments_or_the_merged_one() {
    let original = tempfile::tempdir().unwrap();
    let before = before_a_merging_pass(original.path());
    let merged = tempfile::tempdir().unwrap();
    copy_dir(original.path(), merged.path());
    let log = PartitionLog::open(merged.path(), compact_config()).unwrap();
    let listed = aborted(&log);
    let stop = AtomicBool::new(false);
    let stats = log.clean(&resources(&stop), 10_000).unwrap().unwrap();
    assert!(stats.segments_merged > 0, "{stats:?}");
    let after = records(&log);
    let merged_bases = log.segment_base_offsets();
    let old_bases: Vec<i64> = names(original.path())
        .iter()
        .filter_map(|n| n.strip_suffix(".log")?.parse().ok())
        .collect();
    log.close().unwrap();
    drop(log);
    // The group with the most segments: the merged segment at `base` ends at `end`.
    let (base, end, members) = merged_bases[..merged_bases.len() - 1]
        .iter()
        .map(|&b| {
            let file = fs::File::open(merged.path().join(segment_file_name(b, "log"))).unwrap();
            let end = next_offset_from_headers(&file, b).unwrap();
            let members: Vec<i64> =
                old_bases.iter().copied().filter(|&o| o >= b && o < end).collect();
            (b, end, members)
        })
        .max_by_key(|(_, _, m)| m.len())
        .unwrap();
    assert!(members.len() >= 3, "{members:?}");
    // The swap replaces its segments whole: up to the base of the segment after them.
    let span_end = old_bases.iter().copied().find(|&o| o >= end).unwrap();
    let new_files = segment_files(merged.path(), base);
    assert!(new_files.iter().any(|n| n.ends_with(".txnindex")), "{new_files:?}");
    let inside = |r: &Record| r.0 >= base && r.0 < span_end;
    let old_view: Vec<Record> = before.clone();
    let new_view: Vec<Record> = {
        let mut v: Vec<Record> = before.iter().filter(|r| !inside(r)).cloned().collect();
        v.extend(after.iter().filter(|r| inside(r)).cloned());
        v.sort();
        v
    };
    assert_ne!(old_view, new_view);

    let copy_new = |dir: &Path, suffix_of: &dyn Fn(&str) -> &'static str| {
        for f in &new_files {
            let to = format!("{f}{}", suffix_of(f));
            fs::copy(merged.path().join(f), dir.join(to)).unwrap();
        }
    };
    let remove_segment = |dir: &Path, b: i64| {
        for f in segment_files(dir, b) {
            fs::remove_file(dir.join(f)).unwrap();
        }
    };
    // (what the crash cut, whether the merged segment is what an open finds)
    type Step<'a> = (&'a str, bool, Box<dyn Fn(&Path) + 'a>);
    let steps: Vec<Step<'_>> = vec![
        ("writing the .cleaned files", false, Box::new(|d| copy_new(d, &|_| ".cleaned"))),
        (
            "the renames to .swap, before the log's",
            false,
            Box::new(|d| copy_new(d, &|f| if f.ends_with(".log") { ".cleaned" } else { ".swap" })),
        ),
        ("the removals, after the commit", true, Box::new(|d| copy_new(d, &|_| ".swap"))),
        (
            "the removals, some done",
            true,
            Box::new(|d| {
                copy_new(d, &|_| ".swap");
                for &b in &members[1..=members.len() / 2] {
                    remove_segment(d, b);
                }
                // One more with its log gone and its indexes not yet.
                fs::remove_file(d.join(segment_file_name(members[members.len() - 1], "log")))
                    .unwrap();
            }),
        ),
        (
            "the final rename",
            true,
            Box::new(|d| {
                copy_new(d, &|f| if f.ends_with(".log") { ".swap" } else { "" });
                for &b in &members[1..] {
                    remove_segment(d, b);
                }
            }),
        ),
    ];
    for (cut, new, make) in &steps {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(original.path(), dir.path());
        make(dir.path());
        // A crash: no clean-shutdown marker.
        let _ = fs::remove_file(dir.path().join(".clean-shutdown"));
        let log = PartitionLog::open(dir.path(), compact_config()).unwrap();
        let got = records(&log);
        let bases: Vec<i64> =
            log.segment_base_offsets().into_iter().filter(|&b| b >= base && b < end).collect();
        if *new {
            assert_same(&got, &new_view, &format!("crash during {cut}"));
            assert_eq!(bases, vec![base], "crash during {cut}");
        } else {
            assert_same(&got, &old_view, &format!("crash during {cut}"));
            assert_eq!(bases, members, "crash during {cut}");
        }
        assert_eq!(aborted(&log), listed, "crash during {cut}");
        assert_sound(&log);
        drop(log);
        // And the same again: recovery left nothing to finish.
        let log = PartitionLog::open(dir.path(), compact_config()).unwrap();
        assert_same(&records(&log), &got, &format!("reopened after a crash during {cut}"));
    }
}

#[test]
fn an_io_error_at_any_step_of_a_merging_pass_loses_no_record_and_leaves_no_overlap() {
    let original = tempfile::tempdir().unwrap();
    let before = before_a_merging_pass(original.path());
    for kind in ["rename", "dir sync", "file sync"] {
        let mut n = 0;
        let completed = loop {
            n += 1;
            assert!(n < 1000, "{kind}: the pass never completed");
            if let Some(done) = clean_failing_at(original.path(), &before, kind, n) {
                break done;
            }
        };
        assert!(completed > 10, "{kind}: {completed} steps before the pass completed");
    }
}

/// Cleans a copy of the log in `original` with the `n`th I/O call of `kind` failing, and
/// checks what an open finds after it; `Some(n)` when the pass did not fail.
fn clean_failing_at(original: &Path, before: &[Record], kind: &str, n: u64) -> Option<u64> {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(original, dir.path());
    let io = Arc::new(FaultyIo::new());
    let log = PartitionLog::open_with_io(
        dir.path(),
        compact_config(),
        Arc::clone(&io) as Arc<dyn FileIo>,
    )
    .unwrap();
    let listed = aborted(&log);
    match kind {
        "rename" => io.fail_nth_rename(n),
        "dir sync" => io.fail_nth_dir_sync(n),
        _ => io.fail_nth_file_sync(n),
    }
    let stop = AtomicBool::new(false);
    let failed = log.clean(&resources(&stop), 10_000).is_err();
    // What the failure left, opened as after a crash.
    drop(log);
    let _ = fs::remove_file(dir.path().join(".clean-shutdown"));
    let log = PartitionLog::open(dir.path(), compact_config()).unwrap();
    let got = records(&log);
    let appended: BTreeSet<&Record> = before.iter().collect();
    assert!(got.iter().all(|r| appended.contains(r)), "{kind} {n}: a record not appended");
    assert_same(&latest(&got), &latest(before), &format!("{kind} {n}: the latest per key"));
    assert_eq!(aborted(&log), listed, "{kind} {n}");
    assert_sound(&log);
    (!failed).then_some(n)
}

#[test]
fn a_groups_last_segments_that_keep_nothing_go_after_the_swap_not_in_it() {
    // One batch a segment: three whose records stay, one whose records a later one
    // replaces. Four fit in the cleaning's segment.bytes, five do not.
    let value = "v".repeat(60);
    let batch_of = |prefix: &str| {
        let keys: Vec<String> = (0..10).map(|j| format!("{prefix}-{j}")).collect();
        let recs: Vec<_> = keys.iter().map(|k| (Some(k.as_str()), Some(value.as_str()))).collect();
        keyed_batch(Compression::None, 0, 1_000, &recs)
    };
    let len = batch_of("a0").len() as u64;
    let original = tempfile::tempdir().unwrap();
    let log = PartitionLog::open(
        original.path(),
        LogConfig { segment_bytes: len + 10, ..compact_config() },
    )
    .unwrap();
    for prefix in ["a0", "a1", "a2", "a3", "a3", "a4"] {
        log.append(&batch_of(prefix)).unwrap();
    }
    let bases = log.segment_base_offsets();
    assert_eq!(bases, vec![0, 10, 20, 30, 40, 50]);
    let before = records(&log);
    log.close().unwrap();
    drop(log);
    let config = LogConfig { segment_bytes: 4 * len + 40, ..compact_config() };
    let cleaned = tempfile::tempdir().unwrap();
    copy_dir(original.path(), cleaned.path());
    let log = PartitionLog::open(cleaned.path(), config.clone()).unwrap();
    let stop = AtomicBool::new(false);
    let stats = log.clean(&resources(&stop), 10_000).unwrap().unwrap();
    // [0, 10, 20, 30] cleaned into 0 (30 kept nothing and went), [40] left alone.
    assert_eq!(
        (stats.segments_cleaned, stats.segments_merged, stats.segments_removed),
        (1, 2, 1),
        "{stats:?}"
    );
    assert_eq!(log.segment_base_offsets(), vec![0, 40, 50]);
    let after = records(&log);
    assert_same(&after, &compacted(&before, 50), "cleaned");
    assert_sound(&log);
    drop(log);
    let swap = |ext: &str| format!("{}.swap", segment_file_name(0, ext));
    // A crash after the commit: the swap covers 0..30 only, so 30 stays as it was.
    let dir = tempfile::tempdir().unwrap();
    copy_dir(original.path(), dir.path());
    for f in segment_files(cleaned.path(), 0) {
        let ext = f.split_once('.').unwrap().1.to_owned();
        fs::copy(cleaned.path().join(&f), dir.path().join(swap(&ext))).unwrap();
    }
    let _ = fs::remove_file(dir.path().join(".clean-shutdown"));
    let log = PartitionLog::open(dir.path(), config).unwrap();
    assert_eq!(log.segment_base_offsets(), vec![0, 30, 40, 50]);
    let mut expected: Vec<Record> = after
        .iter()
        .cloned()
        .chain(before.iter().filter(|r| (30..40).contains(&r.0)).cloned())
        .collect();
    expected.sort();
    assert_same(&records(&log), &expected, "after a crash between the swap and the removal");
    assert_sound(&log);
}
