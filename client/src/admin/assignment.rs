//! The consumer protocol's assignment: the bytes a consumer group's leader hands each
//! member in SyncGroup, which DescribeGroups reports back. Sans I/O.
//!
//! Layout (big-endian; Kafka's `ConsumerProtocolAssignment` schema, versions 0–3 alike):
//! ```text
//! version             i16
//! assigned partitions i32 count, then per topic:
//!     topic           i16 length, UTF-8 bytes
//!     partitions      i32 count, then an i32 each
//! user data           i32 length (-1: null), bytes
//! ```
//! Bytes after the user data are ignored: a later version may append fields, and Kafka's
//! reader ignores them too. The bytes come from other clients, so every count is checked
//! against the bytes left before anything is allocated for it, and anything that does not
//! fit the layout is refused rather than guessed at.

use bytes::Bytes;

/// A decoded consumer-protocol assignment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConsumerAssignment {
    /// The version the leader wrote.
    pub version: i16,
    /// Partitions per topic, in the order the leader listed them.
    pub partitions: Vec<(String, Vec<i32>)>,
    /// The assignor's user data; `None` when null.
    pub user_data: Option<Bytes>,
}

impl ConsumerAssignment {
    /// Decodes `bytes`, or `None` if they do not hold an assignment. The user data is a
    /// view of `bytes`, not a copy.
    pub fn decode(bytes: &Bytes) -> Option<Self> {
        let mut r = Reader { bytes, at: 0 };
        let version = r.i16()?;
        if version < 0 {
            return None;
        }
        let topics = r.count(6)?;
        let mut partitions = Vec::with_capacity(topics);
        for _ in 0..topics {
            let len = usize::try_from(r.i16()?).ok()?;
            let topic = std::str::from_utf8(r.take(len)?).ok()?.to_string();
            let n = r.count(4)?;
            let mut indexes = Vec::with_capacity(n);
            for _ in 0..n {
                indexes.push(r.i32()?);
            }
            partitions.push((topic, indexes));
        }
        let user_data = match r.i32()? {
            -1 => None,
            len => {
                let len = usize::try_from(len).ok()?;
                r.take(len)?;
                Some(bytes.slice(r.at - len..r.at))
            }
        };
        Some(ConsumerAssignment { version, partitions, user_data })
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        let end = self.at.checked_add(n).filter(|&end| end <= self.bytes.len())?;
        let out = &self.bytes[self.at..end];
        self.at = end;
        Some(out)
    }

    fn i16(&mut self) -> Option<i16> {
        Some(i16::from_be_bytes(self.take(2)?.try_into().ok()?))
    }

    fn i32(&mut self) -> Option<i32> {
        Some(i32::from_be_bytes(self.take(4)?.try_into().ok()?))
    }

    /// An array count whose elements take at least `min_size` bytes each: refused when
    /// the bytes left cannot hold that many, so no allocation trusts the wire.
    fn count(&mut self, min_size: usize) -> Option<usize> {
        let n = usize::try_from(self.i32()?).ok()?;
        let left = self.bytes.len() - self.at;
        (n.checked_mul(min_size)? <= left).then_some(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Version 1, topic "ab" with partitions 0 and 3, topic "c" with none, user data 0xff.
    const GOLDEN: &[u8] = &[
        0, 1, // version
        0, 0, 0, 2, // two topics
        0, 2, b'a', b'b', 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 3, // "ab": [0, 3]
        0, 1, b'c', 0, 0, 0, 0, // "c": []
        0, 0, 0, 1, 0xff, // user data
    ];

    #[test]
    fn decodes_the_golden_bytes() {
        let a = ConsumerAssignment::decode(&Bytes::from_static(GOLDEN)).unwrap();
        assert_eq!(a.version, 1);
        assert_eq!(a.partitions, vec![("ab".to_string(), vec![0, 3]), ("c".to_string(), vec![])]);
        assert_eq!(a.user_data.as_deref(), Some(&[0xff][..]));
    }

    #[test]
    fn null_user_data_and_trailing_fields() {
        let mut bytes = GOLDEN[..GOLDEN.len() - 5].to_vec();
        bytes.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 9, 9, 9]);
        let a = ConsumerAssignment::decode(&Bytes::from(bytes)).unwrap();
        assert_eq!(a.user_data, None);
        assert_eq!(a.partitions.len(), 2, "bytes after the user data are a later version's");
    }

    #[test]
    fn every_truncation_is_refused() {
        for len in 0..GOLDEN.len() {
            let cut = Bytes::copy_from_slice(&GOLDEN[..len]);
            assert_eq!(ConsumerAssignment::decode(&cut), None, "cut at {len}");
        }
    }

    #[test]
    fn garbage_does_not_panic_or_allocate_from_counts() {
        let cases: &[&[u8]] = &[
            &[0xff, 0xff],                                           // negative version
            &[0, 0, 0x7f, 0xff, 0xff, 0xff],                         // 2^31-1 topics in no bytes
            &[0, 0, 0xff, 0xff, 0xff, 0xff],                         // negative topic count
            &[0, 0, 0, 0, 0, 1, 0xff, 0xff],                         // negative topic length
            &[0, 0, 0, 0, 0, 1, 0, 1, 0xc3, 0, 0, 0, 0, 0, 0, 0, 0], // invalid UTF-8
            &[0, 0, 0, 0, 0, 1, 0, 0, 0x7f, 0xff, 0xff, 0xff],       // huge partition count
            &[0, 0, 0, 0, 0, 0, 0x7f, 0xff, 0xff, 0xff],             // user data past the end
            &[0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xfe],             // user data length -2
        ];
        for case in cases {
            assert_eq!(ConsumerAssignment::decode(&Bytes::copy_from_slice(case)), None, "{case:?}");
        }
        // A deterministic spray of pseudo-random inputs: any outcome but a panic is fine.
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..20_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let len = (state % 48) as usize;
            let bytes: Vec<u8> = (0..len).map(|i| (state >> (i % 8 * 8)) as u8).collect();
            let _ = ConsumerAssignment::decode(&Bytes::from(bytes));
        }
    }

    #[test]
    fn an_empty_assignment_decodes() {
        let a = ConsumerAssignment::decode(&Bytes::from_static(&[
            0, 3, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff,
        ]));
        assert_eq!(a, Some(ConsumerAssignment { version: 3, partitions: vec![], user_data: None }));
    }
}
