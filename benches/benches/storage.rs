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

criterion_group!(benches, append, lookup, recovery, compaction);
criterion_main!(benches);
