//! RecordBatch benchmarks, each next to a baseline measured in the same run:
//!
//! - `validate/*`: `RecordBatch::parse_verified` (header checks and CRC-32C) of a 1 MiB
//!   batch, against a memcpy of the same bytes (bytes throughput).
//! - `iterate/*`: decoding every record of an uncompressed batch of 100-byte records with
//!   `RecordBatch::records` + `Records` (elements throughput: per record), against a bare
//!   loop that only reads each record's length varint and skips it.
//! - `build/*`: `BatchBuilder` appends and `build` (CRC included) for the same records.
//! - `compress/*`, `decompress/*`: each codec through `sluice_protocol::record::compression`
//!   against the library's own default call, on a 256 KiB records section of 100-byte
//!   JSON-like records (bytes throughput of the uncompressed size).
//!
//! `cargo bench -p sluice-benches --bench record`. Under `cargo test --benches` each
//! benchmark runs once.

use std::hint::black_box;
use std::io::{Read, Write};
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use sluice_protocol::record::batch::HEADER_LEN;
use sluice_protocol::record::compression::{self, Compression};
use sluice_protocol::record::{BatchBuilder, RecordBatch};
use sluice_protocol::varint;

/// Builds an uncompressed batch of about `bytes` bytes of ~100-byte JSON-like records.
fn batch_of(bytes: usize) -> (Vec<u8>, usize) {
    let mut b = BatchBuilder::with_capacity(Compression::None, bytes);
    let mut n = 0usize;
    while b.uncompressed_size() + 100 <= bytes {
        let key = format!("user-{:03}", n % 997);
        let value = format!(
            "{{\"id\":{n:08},\"user\":\"{key}\",\"event\":\"page_view\",\"page\":\"/p/{:04}\",\"ok\":true}}",
            n % 5000
        );
        b.append(1_700_000_000_000 + n as i64, Some(key.as_bytes()), Some(value.as_bytes()), &[])
            .expect("small record");
        n += 1;
    }
    (b.build().expect("non-empty batch"), n)
}

fn validate(c: &mut Criterion) {
    let mut group = c.benchmark_group("validate");
    let (batch, _) = batch_of(1 << 20);
    group.throughput(Throughput::Bytes(batch.len() as u64));
    let mut dst = vec![0u8; batch.len()];
    group.bench_function(BenchmarkId::new("memcpy", "1MiB"), |b| {
        b.iter(|| {
            dst.copy_from_slice(black_box(&batch));
            black_box(&dst);
        })
    });
    group.bench_function(BenchmarkId::new("parse_verified", "1MiB"), |b| {
        b.iter(|| RecordBatch::parse_verified(black_box(&batch)).expect("valid batch").size())
    });
    group.finish();
}

fn iterate(c: &mut Criterion) {
    let mut group = c.benchmark_group("iterate");
    let (batch, n) = batch_of(64 << 10);
    let record_bytes = (batch.len() - HEADER_LEN) / n;
    group.throughput(Throughput::Elements(n as u64));
    let id = format!("{record_bytes}B");
    group.bench_function(BenchmarkId::new("skip_lengths", &id), |b| {
        b.iter(|| {
            let mut section = &black_box(&batch)[HEADER_LEN..];
            let mut count = 0u32;
            while let Ok((len, used)) = varint::get_varint(section) {
                section = &section[used + len as usize..];
                count += 1;
            }
            count
        })
    });
    group.bench_function(BenchmarkId::new("records", &id), |b| {
        b.iter(|| {
            let parsed = RecordBatch::parse(black_box(&batch)).expect("valid batch");
            let records = parsed.records(0).expect("uncompressed");
            let mut sum = 0usize;
            for r in &records {
                let r = r.expect("valid record");
                sum += r.value().map_or(0, <[u8]>::len) + r.key().map_or(0, <[u8]>::len);
            }
            sum
        })
    });
    group.finish();
}

fn build(c: &mut Criterion) {
    let mut group = c.benchmark_group("build");
    let (batch, n) = batch_of(64 << 10);
    let parsed = RecordBatch::parse(&batch).expect("valid batch");
    let records = parsed.records(0).expect("uncompressed");
    let input: Vec<(Vec<u8>, Vec<u8>)> = records
        .iter()
        .map(|r| {
            let r = r.expect("valid record");
            (r.key().unwrap_or_default().to_vec(), r.value().unwrap_or_default().to_vec())
        })
        .collect();
    group.throughput(Throughput::Elements(n as u64));
    group.bench_function(BenchmarkId::new("none", format!("{n}x100B")), |b| {
        b.iter(|| {
            let mut builder = BatchBuilder::with_capacity(Compression::None, batch.len());
            for (i, (k, v)) in input.iter().enumerate() {
                builder.append(i as i64, Some(k), Some(v), &[]).expect("small record");
            }
            builder.build().expect("non-empty").len()
        })
    });
    group.finish();
}

/// The codec libraries' own default calls, for comparison.
fn raw_compress(codec: Compression, input: &[u8]) -> Vec<u8> {
    match codec {
        Compression::None => input.to_vec(),
        Compression::Gzip => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(input).expect("vec write");
            e.finish().expect("vec write")
        }
        Compression::Snappy => snap::raw::Encoder::new().compress_vec(input).expect("small input"),
        Compression::Lz4 => {
            let mut e = lz4_flex::frame::FrameEncoder::new(Vec::new());
            e.write_all(input).expect("vec write");
            e.finish().expect("vec write")
        }
        Compression::Zstd => zstd::bulk::compress(input, 3).expect("valid level"),
    }
}

fn raw_decompress(codec: Compression, input: &[u8], size: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(size);
    match codec {
        Compression::None => out.extend_from_slice(input),
        Compression::Gzip => {
            flate2::read::GzDecoder::new(input).read_to_end(&mut out).expect("valid gzip");
        }
        Compression::Snappy => {
            out = snap::raw::Decoder::new().decompress_vec(input).expect("valid")
        }
        Compression::Lz4 => {
            lz4_flex::frame::FrameDecoder::new(input).read_to_end(&mut out).expect("valid lz4");
        }
        Compression::Zstd => out = zstd::bulk::decompress(input, size).expect("valid zstd"),
    }
    out
}

fn codecs(c: &mut Criterion) {
    let (batch, _) = batch_of(256 << 10);
    let section = &batch[HEADER_LEN..];
    let size = section.len();
    for codec in [Compression::Gzip, Compression::Snappy, Compression::Lz4, Compression::Zstd] {
        let mut group = c.benchmark_group(format!("compress/{codec}"));
        group.throughput(Throughput::Bytes(size as u64)).measurement_time(Duration::from_secs(3));
        group.bench_function("library", |b| b.iter(|| raw_compress(codec, black_box(section))));
        group.bench_function("sluice", |b| {
            b.iter(|| compression::compress(codec, black_box(section)))
        });
        group.finish();

        let packed = compression::compress(codec, section);
        let ratio = size as f64 / packed.len() as f64;
        let raw_packed = raw_compress(codec, section);
        let mut group = c.benchmark_group(format!("decompress/{codec}"));
        group.throughput(Throughput::Bytes(size as u64)).measurement_time(Duration::from_secs(3));
        group.bench_function("library", |b| {
            b.iter(|| raw_decompress(codec, black_box(&raw_packed), size))
        });
        group.bench_function(format!("sluice (ratio {ratio:.1})"), |b| {
            b.iter(|| compression::decompress(codec, black_box(&packed), size).expect("valid"))
        });
        if codec == Compression::Zstd {
            // As the Java client and librdkafka write it: streamed, without a content size.
            let streamed = zstd::stream::encode_all(section, 3).expect("vec write");
            group.bench_function("sluice (streamed frame)", |b| {
                b.iter(|| compression::decompress(codec, black_box(&streamed), size).expect("ok"))
            });
        }
        group.finish();
    }
}

criterion_group!(benches, validate, iterate, build, codecs);
criterion_main!(benches);
