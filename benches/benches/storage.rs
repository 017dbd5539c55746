//! Storage engine benchmarks, each next to a baseline measured in the same run:
//!
//! - `append/*`: `PartitionLog::append` (`log_append`: validation, pwritev into the page
//!   cache, index) of 1 KiB, 16 KiB and 1 MiB batches, against a memcpy of the same bytes
//!   into a large pre-faulted buffer (the ceiling for a copy into memory), plain `write(2)`
//!   appends to a file, and stores into a fresh mmap'd, fallocated file (`mmap_store`:
//!   what appends cost when they copied into the mapping, the design this replaced).
//! - `lookup/random_offset_1GiB`: `read` of the batch holding a random offset in a 1 GiB
//!   partition of 1 KiB batches; `..._read_1MiB`: the same with a 1 MiB fetch limit.
//! - `recovery/scan`: opening a segment after a crash, with its index deleted, so the
//!   whole log is scanned and every CRC checked.
//! - `compaction/clean_*`: one log cleaner pass (`PartitionLog::clean`: offset map, filter,
//!   rewrite, swap) over a log of 15 overwrites of 100,000 keys in 64 MiB segments,
//!   uncompressed and lz4; throughput is bytes of log cleaned, next to `recovery/scan`'s.
//! - `compaction/while_cleaning`: appends and reads of one partition while its cleaner
//!   cleans it back to back, against the same without the cleaner, in alternating rounds;
//!   printed as ratios (the target is at least 0.8).
//!
//! `cargo bench -p sluice-benches --bench storage`. Under `cargo test --benches` each
//! benchmark runs once on small data.

use std::hint::black_box;
use std::io::Write;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rand::Rng;
use sluice_broker::storage::testing::batch;
use sluice_broker::storage::{now_ms, CleanerResources, LogConfig, PartitionLog};
use sluice_protocol::record::{BatchBuilder, Compression};
use std::sync::atomic::AtomicBool;

/// Whether this is a real benchmark run (`cargo bench`) rather than a test pass.
fn full_run() -> bool {
    std::env::args().any(|a| a == "--bench")
}

/// Bytes appended per measured round of the append benchmarks.
fn round_bytes() -> usize {
    if full_run() {
        256 << 20
    } else {
        4 << 20
    }
}

fn append(c: &mut Criterion) {
    let mut group = c.benchmark_group("append");
    group.sample_size(10).measurement_time(Duration::from_secs(8));
    for size in [1024usize, 16 * 1024, 1 << 20] {
        let one = batch(0, 10, size - 61);
        let per_round = round_bytes() / one.len();
        let bytes = (per_round * one.len()) as u64;
        group.throughput(Throughput::Bytes(bytes));

        let mut ring = vec![1u8; round_bytes() + one.len()];
        group.bench_with_input(BenchmarkId::new("memcpy", size), &one, |b, one| {
            b.iter(|| {
                for i in 0..per_round {
                    let at = i * one.len();
                    ring[at..at + one.len()].copy_from_slice(one);
                }
                black_box(&ring);
            })
        });

        group.bench_with_input(BenchmarkId::new("log_append", size), &one, |b, one| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let dir = tempfile::tempdir().unwrap();
                    let log = PartitionLog::open(dir.path(), LogConfig::default()).unwrap();
                    let start = Instant::now();
                    for _ in 0..per_round {
                        log.append(one).unwrap();
                    }
                    total += start.elapsed();
                }
                total
            })
        });

        group.bench_with_input(BenchmarkId::new("mmap_store", size), &one, |b, one| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let dir = tempfile::tempdir().unwrap();
                    let f = std::fs::OpenOptions::new()
                        .read(true)
                        .write(true)
                        .create(true)
                        .truncate(true)
                        .open(dir.path().join("m.log"))
                        .unwrap();
                    f.set_len(bytes).unwrap();
                    // SAFETY: a private temporary file no one else maps or truncates.
                    let mut map = unsafe { memmap2::MmapMut::map_mut(&f).unwrap() };
                    let start = Instant::now();
                    for i in 0..per_round {
                        let at = i * one.len();
                        map[at..at + one.len()].copy_from_slice(one);
                    }
                    total += start.elapsed();
                }
                total
            })
        });

        group.bench_with_input(BenchmarkId::new("write_syscall", size), &one, |b, one| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let dir = tempfile::tempdir().unwrap();
                    let mut f = std::fs::File::create(dir.path().join("w.log")).unwrap();
                    let start = Instant::now();
                    for _ in 0..per_round {
                        f.write_all(one).unwrap();
                    }
                    total += start.elapsed();
                }
                total
            })
        });
    }
    group.finish();
}

fn lookup(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let log = PartitionLog::open(dir.path(), LogConfig::default()).unwrap();
    let target: u64 = if full_run() { 1 << 30 } else { 8 << 20 };
    // 1 KiB batches of 10 records; appended 64 at a time to keep setup short.
    let mut set = Vec::new();
    for _ in 0..64 {
        set.extend(batch(0, 10, 1024 - 61));
    }
    while log.size_bytes() < target {
        log.append(&set).unwrap();
    }
    let leo = log.log_end_offset();
    let mut group = c.benchmark_group("lookup");
    let mut rng = rand::thread_rng();
    // The lookup itself: find the batch holding the offset (index binary search, then a
    // walk of at most index.interval.bytes of headers) and return it.
    group.bench_function("random_offset_1GiB", |b| {
        b.iter(|| {
            let offset = rng.gen_range(0..leo);
            black_box(log.read(offset, 1).unwrap());
        })
    });
    // What a fetch asks: up to 1 MiB of whole batches from there.
    group.bench_function("random_offset_1GiB_read_1MiB", |b| {
        b.iter(|| {
            let offset = rng.gen_range(0..leo);
            black_box(log.read(offset, 1 << 20).unwrap());
        })
    });
    group.finish();
}

fn recovery(c: &mut Criterion) {
    let size: u64 = if full_run() { 512 << 20 } else { 4 << 20 };
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig { segment_bytes: 1 << 30, ..LogConfig::default() };
    {
        let log = PartitionLog::open(dir.path(), config.clone()).unwrap();
        let mut set = Vec::new();
        for _ in 0..16 {
            set.extend(batch(0, 100, 16 * 1024 - 61));
        }
        while log.size_bytes() < size {
            log.append(&set).unwrap();
        }
        // Dropped without close: the next open recovers.
    }
    let mut group = c.benchmark_group("recovery");
    group.sample_size(10).throughput(Throughput::Bytes(size));
    group.bench_function("scan_without_index", |b| {
        b.iter(|| {
            let _ = std::fs::remove_file(dir.path().join("00000000000000000000.index"));
            let _ = std::fs::remove_file(dir.path().join("00000000000000000000.timeindex"));
            let log = PartitionLog::open(dir.path(), config.clone()).unwrap();
            assert!(log.size_bytes() >= size);
            black_box(log);
        })
    });
    group.finish();
}

/// A log of `rounds` overwrites of `keys` keys, 100 records of 150-byte values a batch.
fn compacted_log(dir: &std::path::Path, config: &LogConfig, codec: Compression, size: u64) {
    let log = PartitionLog::open(dir, config.clone()).unwrap();
    let keys = 100_000;
    let mut n = 0usize;
    // Values: 150-byte cuts of one random 4 KiB text, so that codecs find repeats as they
    // do in real payloads.
    let mut rng = rand::thread_rng();
    let words: Vec<u8> =
        (0..4096).map(|_| b"abcdefghijklmnopqrstuvwxyz0123456789"[rng.gen_range(0..36)]).collect();
    while log.size_bytes() < size {
        let mut b = BatchBuilder::new(codec);
        for _ in 0..100 {
            let at = rng.gen_range(0..words.len() - 150);
            let value = &words[at..at + 150];
            let key = format!("key-{:06}", n % keys);
            b.append(1_700_000_000_000, Some(key.as_bytes()), Some(value), &[]).unwrap();
            n += 1;
        }
        log.append(&b.build().unwrap()).unwrap();
    }
    log.close().unwrap();
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

fn compaction(c: &mut Criterion) {
    let size: u64 = if full_run() { 256 << 20 } else { 4 << 20 };
    let config = LogConfig {
        segment_bytes: if full_run() { 64 << 20 } else { 1 << 20 },
        cleanup_compact: true,
        cleanup_delete: false,
        min_cleanable_dirty_ratio: 0.0,
        ..LogConfig::default()
    };
    let stop = AtomicBool::new(false);
    let res = CleanerResources {
        map_bytes: 128 << 20,
        load_factor: 0.9,
        io_buffer_bytes: 512 << 10,
        throttle: &|_| {},
        stop: &stop,
    };
    let mut group = c.benchmark_group("compaction");
    group.sample_size(10);
    for (name, codec) in
        [("clean_uncompressed", Compression::None), ("clean_lz4", Compression::Lz4)]
    {
        let source = tempfile::tempdir().unwrap();
        compacted_log(source.path(), &config, codec, size);
        // The bytes a pass filters: the sealed segments.
        let probe = tempfile::tempdir().unwrap();
        copy_dir(source.path(), probe.path());
        let log = PartitionLog::open(probe.path(), config.clone()).unwrap();
        let stats = log.clean(&res, now_ms()).unwrap().unwrap();
        drop(log);
        group.throughput(Throughput::Bytes(stats.bytes_read));
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let dir = tempfile::tempdir().unwrap();
                    copy_dir(source.path(), dir.path());
                    let log = PartitionLog::open(dir.path(), config.clone()).unwrap();
                    let started = Instant::now();
                    let stats = log.clean(&res, now_ms()).unwrap().unwrap();
                    total += started.elapsed();
                    black_box(stats);
                }
                total
            })
        });
    }
    group.finish();
}

/// Appends of keyed lz4 batches (100 records of 150 bytes over 100,000 keys) worth
/// `bytes`; returns records appended per second.
fn append_keyed(log: &PartitionLog, batches: &[Vec<u8>], bytes: u64) -> f64 {
    let started = Instant::now();
    let (mut written, mut records) = (0u64, 0u64);
    let mut i = 0;
    while written < bytes {
        let b = &batches[i % batches.len()];
        log.append(b).unwrap();
        written += b.len() as u64;
        records += 100;
        i += 1;
    }
    records as f64 / started.elapsed().as_secs_f64()
}

/// Reads the whole log from its start in 1 MiB fetches (what a consumer catching up
/// does, minus the socket); returns bytes read per second.
fn read_all(log: &PartitionLog) -> f64 {
    let started = Instant::now();
    let mut offset = log.log_start_offset();
    let mut bytes = 0u64;
    while offset < log.log_end_offset() {
        let read = log.read(offset, 1 << 20).unwrap();
        let Some(slice) = read.slice else { break };
        let data = slice.read_to_vec().unwrap();
        bytes += data.len() as u64;
        let mut pos = 0;
        while pos < data.len() {
            let b = sluice_protocol::record::RecordBatch::parse(&data[pos..]).unwrap();
            offset = b.last_offset() + 1;
            pos += b.size();
        }
        black_box(&data);
    }
    bytes as f64 / started.elapsed().as_secs_f64()
}

/// Produce and fetch on a partition while its cleaner works, each next to the same without
/// the cleaner, in alternating rounds of one run (the target: at least 80%). The
/// cleaner thread cleans the partition back to back (dirty ratio 0: every pass that finds
/// a sealed dirty segment rewrites the log), as a broker whose cleaner never rests would.
/// Printed, not a criterion benchmark: the figure is the ratio. Runs when the filter is
/// empty or names `cleaning`.
fn cleaning_interference(_c: &mut Criterion) {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    if !args.is_empty()
        && !args
            .iter()
            .any(|a| "compaction/while_cleaning".contains(a.as_str()) || a.contains("cleaning"))
    {
        return;
    }
    let (base, per_round, rounds) =
        if full_run() { (128u64 << 20, 512u64 << 20, 5) } else { (2 << 20, 1 << 20, 1) };
    let config = LogConfig {
        segment_bytes: if full_run() { 16 << 20 } else { 256 << 10 },
        cleanup_compact: true,
        cleanup_delete: false,
        min_cleanable_dirty_ratio: 0.0,
        ..LogConfig::default()
    };
    let mut rng = rand::thread_rng();
    let words: Vec<u8> =
        (0..4096).map(|_| b"abcdefghijklmnopqrstuvwxyz0123456789"[rng.gen_range(0..36)]).collect();
    let batches: Vec<Vec<u8>> = (0..1000)
        .map(|i| {
            let mut b = BatchBuilder::new(Compression::Lz4);
            for j in 0..100 {
                let at = rng.gen_range(0..words.len() - 150);
                let key = format!("key-{:06}", (i * 100 + j) % 100_000);
                b.append(1_700_000_000_000, Some(key.as_bytes()), Some(&words[at..at + 150]), &[])
                    .unwrap();
            }
            b.build().unwrap()
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let log = PartitionLog::open(dir.path(), config).unwrap();
    append_keyed(&log, &batches, base);
    let stop_cleaner = AtomicBool::new(false);
    let stop = AtomicBool::new(false);
    let res = CleanerResources {
        map_bytes: 128 << 20,
        load_factor: 0.9,
        io_buffer_bytes: 512 << 10,
        throttle: &|_| {},
        stop: &stop,
    };
    let (mut alone, mut cleaning) = ((vec![], vec![]), (vec![], vec![]));
    let mut passes = 0u64;
    for _ in 0..rounds {
        alone.0.push(append_keyed(&log, &batches, per_round));
        alone.1.push(read_all(&log));
        std::thread::scope(|s| {
            let cleaner = s.spawn(|| {
                // At the priority of the broker's cleaner threads.
                sluice_broker::log_cleaner::lower_priority();
                let mut n = 0u64;
                while !stop_cleaner.load(std::sync::atomic::Ordering::Relaxed) {
                    match log.clean(&res, now_ms()).unwrap() {
                        Some(_) => n += 1,
                        None => std::thread::sleep(Duration::from_millis(1)),
                    }
                }
                n
            });
            cleaning.0.push(append_keyed(&log, &batches, per_round));
            cleaning.1.push(read_all(&log));
            stop_cleaner.store(true, std::sync::atomic::Ordering::Relaxed);
            passes += cleaner.join().unwrap();
            stop_cleaner.store(false, std::sync::atomic::Ordering::Relaxed);
        });
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (pa, ra) = (median(&mut alone.0), median(&mut alone.1));
    let (pc, rc) = (median(&mut cleaning.0), median(&mut cleaning.1));
    println!(
        "compaction/while_cleaning ({rounds} rounds, {passes} cleaner passes): \
         append {:.0} records/s alone, {:.0} while cleaning ({:.2}x); \
         read {:.0} MB/s alone, {:.0} while cleaning ({:.2}x)",
        pa,
        pc,
        pc / pa,
        ra / 1e6,
        rc / 1e6,
        rc / ra
    );
}

criterion_group!(benches, append, lookup, recovery, compaction, cleaning_interference);
criterion_main!(benches);
