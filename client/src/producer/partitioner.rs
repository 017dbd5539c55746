//! Which partition a record goes to, as Kafka's Java client chooses it (its
//! `BuiltInPartitioner`), so that a Sluice producer and a Java one put each key in the
//! same partition of the same topic:
//! - a record with a key: `murmur2(key)` with the sign bit cleared, modulo the partition
//!   count (Java's `Utils.toPositive(Utils.murmur2(key)) % numPartitions`);
//! - a record without a key: the uniform sticky partitioner of KIP-794: every keyless
//!   record goes to one partition until `batch.size` bytes have gone there, then to
//!   another chosen at random, so batches fill instead of each partition getting a
//!   trickle.
//!
//! [`Partitioner`] is the trait for a custom choice.

/// Chooses a record's partition.
pub trait Partitioner: Send {
    /// The partition (in `0..partitions`) for a record with this key (`None`: no key),
    /// of `size` bytes; `partitions` is at least 1.
    fn partition(&mut self, key: Option<&[u8]>, size: usize, partitions: u32) -> u32;
}

/// Kafka's murmur2 hash, as `org.apache.kafka.common.utils.Utils.murmur2` computes it
/// (seed `0x9747b28c`, little-endian 4-byte blocks, Java's 32-bit arithmetic).
pub fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let mut h = SEED ^ data.len() as u32;
    let mut blocks = data.chunks_exact(4);
    for block in &mut blocks {
        let mut k = u32::from_le_bytes([block[0], block[1], block[2], block[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let tail = blocks.remainder();
    if !tail.is_empty() {
        for (i, &b) in tail.iter().enumerate().rev() {
            h ^= u32::from(b) << (8 * i);
        }
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// The partition of a keyed record, as the Java client computes it.
pub fn partition_for_key(key: &[u8], partitions: u32) -> u32 {
    // Java's Utils.toPositive: the sign bit cleared, not the absolute value.
    (murmur2(key) & 0x7fff_ffff) as u32 % partitions.max(1)
}

/// The Java client's default: murmur2 for keys, KIP-794's uniform sticky choice without.
#[derive(Debug, Clone)]
pub struct DefaultPartitioner {
    batch_size: usize,
    sticky: Option<u32>,
    produced: usize,
    random: u64,
}

impl DefaultPartitioner {
    /// A partitioner that moves keyless records on after `batch_size` bytes (the
    /// producer's `batch.size`), choosing with a generator seeded by `seed`.
    pub fn new(batch_size: usize, seed: u64) -> DefaultPartitioner {
        DefaultPartitioner {
            batch_size: batch_size.max(1),
            sticky: None,
            produced: 0,
            random: seed | 1,
        }
    }

    /// The next number of a xorshift generator: uniform enough to spread partitions, and
    /// no dependency for it.
    fn next_random(&mut self) -> u64 {
        let mut x = self.random;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.random = x;
        x
    }
}

impl Partitioner for DefaultPartitioner {
    fn partition(&mut self, key: Option<&[u8]>, size: usize, partitions: u32) -> u32 {
        let partitions = partitions.max(1);
        if let Some(key) = key {
            return partition_for_key(key, partitions);
        }
        let current = match self.sticky {
            // A topic that shrank in the metadata (or another topic): choose again.
            Some(p) if p < partitions && self.produced < self.batch_size => p,
            _ => {
                self.produced = 0;
                let p = (self.next_random() % u64::from(partitions)) as u32;
                self.sticky = Some(p);
                p
            }
        };
        self.produced += size;
        current
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Kafka 4.3's `Utils.murmur2` and `toPositive(murmur2) % 7` and `% 100` for these
    /// keys, computed with the kafka-clients jar (`tests/interop/JavaPartitioner.java`
    /// checks many more keys against the jar itself).
    const JAVA: &[(&str, i32, u32, u32)] = &[
        ("", 275_646_681, 2, 81),
        ("a", -1_563_381_124, 5, 24),
        ("ab", 316_155_434, 0, 34),
        ("abc", 479_470_107, 4, 7),
        ("abcd", -1_323_649_548, 5, 0),
        ("abcde", 461_995_741, 4, 41),
        ("21", -973_932_308, 3, 40),
        ("foobar", -790_332_482, 0, 66),
        ("kafka", -798_503_068, 3, 80),
        ("a somewhat longer key!", -1_637_699_434, 2, 14),
    ];

    #[test]
    fn keys_hash_and_partition_as_in_the_java_client() {
        for &(key, hash, of7, of100) in JAVA {
            assert_eq!(murmur2(key.as_bytes()), hash, "murmur2({key:?})");
            assert_eq!(partition_for_key(key.as_bytes(), 7), of7, "{key:?} of 7");
            assert_eq!(partition_for_key(key.as_bytes(), 100), of100, "{key:?} of 100");
        }
    }

    #[test]
    fn keyless_records_stick_to_a_partition_for_a_batch_then_move() {
        let mut p = DefaultPartitioner::new(1000, 42);
        let first = p.partition(None, 100, 16);
        for _ in 0..9 {
            assert_eq!(p.partition(None, 100, 16), first, "within batch.size");
        }
        // 1,000 bytes went to it: the next record chooses again, and over many batches
        // every partition gets some.
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..1000 {
            seen.insert(p.partition(None, 1000, 16));
        }
        assert_eq!(seen.len(), 16);
        // A key always wins over the sticky choice.
        assert_eq!(p.partition(Some(b"foobar"), 10, 100), 66);
        // Fewer partitions than the sticky one: a valid one is chosen.
        assert!(p.partition(None, 1, 1) == 0);
    }
}
