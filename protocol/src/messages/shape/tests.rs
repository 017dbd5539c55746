//! Tests for the shape walk: hand-written edge cases, then a differential check against
//! kafka-protocol for every API and version Sluice advertises.
//!
//! The differential check uses the generated walkers a second time, with a [`Writer`] in
//! place of the [`Walker`]: visiting a message's fields and writing random values for each
//! yields a random valid encoding of any struct in any version. For each one:
//! the walker must span exactly its bytes; `Request::decode` / `Response::decode` must
//! accept it; encoding the result must give back the same bytes. Then random mutations of
//! those bytes check that whatever kafka-protocol accepts, the walker accepts with the
//! same length, so the walk and the decode never disagree on where an array count is.
//! (Mutants the walker rejects as `ArrayTooLong` are not given to kafka-protocol alone:
//! that is the allocation that aborts.)

use bytes::{Bytes, BytesMut};

use super::*;
use crate::api_key::SUPPORTED_APIS;
use crate::header::RequestHeader;
use crate::messages::{Request, Response};

#[test]
fn hostile_array_count_is_rejected() {
    // Metadata v0: topics ARRAY with count i32::MAX and nothing behind it.
    let body = [0x7f, 0xff, 0xff, 0xff, 0];
    assert_eq!(
        walk_request(ApiKey::Metadata, 0, &body),
        Err(ShapeError::ArrayTooLong { at: 0, count: i32::MAX as u64, remaining: 1 })
    );
    // Metadata v9: COMPACT_ARRAY with count u32::MAX - 1.
    let body = [0xff, 0xff, 0xff, 0xff, 0x0f, 0];
    assert!(matches!(
        walk_request(ApiKey::Metadata, 9, &body),
        Err(ShapeError::ArrayTooLong { count: 0xffff_fffe, .. })
    ));
}

#[test]
fn valid_bodies_span_their_length() {
    // Metadata v1, null topics (all topics).
    assert_eq!(walk_request(ApiKey::Metadata, 1, &[0xff, 0xff, 0xff, 0xff]), Ok(4));
    // Metadata v4: one topic "ab", allow_auto_topic_creation.
    let body = [0, 0, 0, 1, 0, 2, b'a', b'b', 1];
    assert_eq!(walk_request(ApiKey::Metadata, 4, &body), Ok(9));
    // ApiVersions v0 has no fields.
    assert_eq!(walk_request(ApiKey::ApiVersions, 0, &[]), Ok(0));
}

#[test]
fn truncation_and_negative_lengths() {
    assert!(matches!(
        walk_request(ApiKey::Metadata, 4, &[0, 0, 0, 1, 0, 9, b'a']),
        Err(ShapeError::Truncated { at: 6, needed: 9, remaining: 1 })
    ));
    assert!(matches!(
        walk_request(ApiKey::Metadata, 4, &[0, 0, 0, 1, 0xff, 0xfe]),
        Err(ShapeError::NegativeLength { at: 4, len: -2 })
    ));
    assert_eq!(
        walk_request(ApiKey::LeaderAndIsr, 0, &[]),
        Err(ShapeError::UnknownApi { api_key: ApiKey::LeaderAndIsr })
    );
}

#[test]
fn tags_above_i32_max_are_refused() {
    // InitProducerId v4 (flexible): transactional_id null, timeout, producer id, epoch,
    // then one tagged field numbered 2^32 - 1.
    let mut body = vec![0, 0, 0, 0, 0x6e, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0];
    body.extend_from_slice(&[1, 0xff, 0xff, 0xff, 0xff, 0x0f, 0]);
    assert_eq!(
        walk_request(ApiKey::InitProducerId, 4, &body),
        Err(ShapeError::InvalidTag { at: 16, tag: u32::MAX })
    );
    let last = body.len() - 2;
    body[last] = 0x07; // 2^31 - 1: the largest valid tag
    assert_eq!(walk_request(ApiKey::InitProducerId, 4, &body), Ok(body.len()));
}

#[test]
fn a_request_may_hold_a_million_array_elements_and_no_more() {
    // Metadata v0: an array of topic names, each an empty string (two bytes).
    let body = |topics: u32| {
        let mut b = topics.to_be_bytes().to_vec();
        b.resize(4 + 2 * topics as usize, 0);
        b
    };
    let most = MAX_REQUEST_ELEMENTS as u32;
    let ok = body(most);
    assert_eq!(walk_request(ApiKey::Metadata, 0, &ok), Ok(ok.len()));
    assert_eq!(
        walk_request(ApiKey::Metadata, 0, &body(most + 1)),
        Err(ShapeError::TooManyElements { at: 0, limit: MAX_REQUEST_ELEMENTS })
    );
    // Responses come from a broker the client chose: no cap. Metadata v0: no brokers,
    // then topics of error code 0, an empty name and no partitions (eight bytes each).
    let mut response = 0i32.to_be_bytes().to_vec();
    response.extend_from_slice(&(most + 1).to_be_bytes());
    response.resize(response.len() + 8 * (most as usize + 1), 0);
    assert_eq!(walk_response(ApiKey::Metadata, 0, &response), Ok(response.len()));
}

#[test]
fn uvarint_matches_kafka_protocol_on_overlong_input() {
    let mut w =
        Walker { buf: &[0xff, 0xff, 0xff, 0xff, 0xff, 0x01], pos: 0, elements_left: u64::MAX };
    assert_eq!(w.uvarint(), Ok(u32::MAX));
    assert_eq!(w.pos, 5, "stops after five bytes like kafka-protocol");
}

/// SplitMix64: a tiny deterministic generator, so failures reproduce from the seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Writes a random valid encoding of whatever struct the generated code visits.
struct Writer {
    out: Vec<u8>,
    rng: Rng,
    depth: u32,
}

impl Writer {
    fn put_uvarint(&mut self, mut v: u32) {
        while v >= 0x80 {
            self.out.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.out.push(v as u8);
    }

    fn ascii(&mut self, len: usize) {
        for _ in 0..len {
            self.out.push(b'a' + self.rng.below(26) as u8);
        }
    }

    fn random(&mut self, len: usize) {
        for _ in 0..len {
            self.out.push(self.rng.next() as u8);
        }
    }

    /// Element count for the next array: small, and zero once nesting is deep.
    fn count(&mut self) -> u32 {
        if self.depth >= 4 {
            0
        } else {
            self.rng.below(3) as u32
        }
    }

    fn elements(&mut self, count: u32, mut element: impl FnMut(&mut Self) -> Walked) -> Walked {
        self.depth += 1;
        for _ in 0..count {
            element(self)?;
        }
        self.depth -= 1;
        Ok(())
    }
}

impl Visitor for Writer {
    fn fixed(&mut self, n: usize) -> Walked {
        self.random(n);
        Ok(())
    }

    fn boolean(&mut self) -> Walked {
        let b = self.rng.below(2) as u8;
        self.out.push(b);
        Ok(())
    }

    fn string(&mut self) -> Walked {
        let len = self.rng.below(6) as usize;
        self.out.extend_from_slice(&(len as i16).to_be_bytes());
        self.ascii(len);
        Ok(())
    }

    fn compact_string(&mut self) -> Walked {
        let len = self.rng.below(6) as usize;
        self.put_uvarint(len as u32 + 1);
        self.ascii(len);
        Ok(())
    }

    fn bytes(&mut self) -> Walked {
        let len = self.rng.below(8) as usize;
        self.out.extend_from_slice(&(len as i32).to_be_bytes());
        self.random(len);
        Ok(())
    }

    fn compact_bytes(&mut self) -> Walked {
        let len = self.rng.below(8) as usize;
        self.put_uvarint(len as u32 + 1);
        self.random(len);
        Ok(())
    }

    /// Only tagged-field counts of structs with known tags come here: write none, so
    /// kafka-protocol's re-encoding (known tags only when not default) matches.
    fn uvarint(&mut self) -> Result<u32, ShapeError> {
        self.put_uvarint(0);
        Ok(0)
    }

    fn tag(&mut self) -> Result<u32, ShapeError> {
        unreachable!("tag counts written by `uvarint` are zero")
    }

    fn skip(&mut self, n: usize) -> Walked {
        self.random(n);
        Ok(())
    }

    fn array(&mut self, element: impl FnMut(&mut Self) -> Walked) -> Walked {
        let count = self.count();
        self.out.extend_from_slice(&(count as i32).to_be_bytes());
        self.elements(count, element)
    }

    fn compact_array(&mut self, element: impl FnMut(&mut Self) -> Walked) -> Walked {
        let count = self.count();
        self.put_uvarint(count + 1);
        self.elements(count, element)
    }

    fn unknown_tagged_fields(&mut self) -> Walked {
        let count = self.rng.below(3) as u32;
        self.put_uvarint(count);
        let mut tag = 0;
        for _ in 0..count {
            // Increasing, unique tags: the order kafka-protocol's BTreeMap writes them in.
            tag += 1 + self.rng.below(40) as u32;
            let size = self.rng.below(4) as usize;
            self.put_uvarint(tag);
            self.put_uvarint(size as u32);
            self.random(size);
        }
        Ok(())
    }

    fn invalid(&self, version: i16) -> ShapeError {
        ShapeError::InvalidForVersion { at: self.out.len(), version }
    }
}

#[derive(Clone, Copy, Debug)]
enum Direction {
    Request,
    Response,
}

fn generate(direction: Direction, api_key: ApiKey, version: i16, seed: u64) -> Vec<u8> {
    let walker = match direction {
        Direction::Request => requests::walker::<Writer>(api_key),
        Direction::Response => responses::walker::<Writer>(api_key),
    };
    let walker = walker.expect("invariant: every supported API has a walker");
    let mut w = Writer { out: Vec::new(), rng: Rng(seed), depth: 0 };
    walker(&mut w, version).expect("writing never fails");
    w.out
}

fn walk(
    direction: Direction,
    api_key: ApiKey,
    version: i16,
    body: &[u8],
) -> Result<usize, ShapeError> {
    match direction {
        Direction::Request => walk_request(api_key, version, body),
        Direction::Response => walk_response(api_key, version, body),
    }
}

/// Decodes with kafka-protocol alone (no walk first); returns the bytes it consumed.
fn kafka_decode(direction: Direction, api_key: ApiKey, version: i16, body: &[u8]) -> Option<usize> {
    let mut buf = Bytes::copy_from_slice(body);
    let ok = match direction {
        Direction::Request => {
            matches!(Request::decode_kafka(api_key, version, &mut buf), Some(Ok(_)))
        }
        Direction::Response => {
            matches!(Response::decode_kafka(api_key, version, &mut buf), Some(Ok(_)))
        }
    };
    ok.then(|| body.len() - buf.len())
}

fn round_trip(direction: Direction, api_key: ApiKey, version: i16, body: &[u8]) -> Vec<u8> {
    let mut out = BytesMut::new();
    let bytes = Bytes::copy_from_slice(body);
    match direction {
        Direction::Request => {
            let header = RequestHeader::new(api_key, version, 1, None);
            let request = Request::decode(&header, bytes).expect("generated request decodes");
            assert_eq!(request.api_key(), api_key);
            request.encode(version, &mut out).expect("decoded request encodes");
        }
        Direction::Response => {
            let response =
                Response::decode(api_key, version, bytes).expect("generated response decodes");
            assert_eq!(response.api_key(), api_key);
            response.encode(version, &mut out).expect("decoded response encodes");
        }
    }
    out.to_vec()
}

const SEEDS: u64 = 48;

#[test]
fn every_version_round_trips_and_the_walk_spans_the_message() {
    let mut messages = 0;
    for direction in [Direction::Request, Direction::Response] {
        for s in &SUPPORTED_APIS {
            for version in s.advertised.min..=s.advertised.max {
                for seed in 0..SEEDS {
                    let what = format!("{direction:?} {:?} v{version} seed {seed}", s.key);
                    let body = generate(direction, s.key, version, seed);
                    assert_eq!(walk(direction, s.key, version, &body), Ok(body.len()), "{what}");
                    assert_eq!(
                        kafka_decode(direction, s.key, version, &body),
                        Some(body.len()),
                        "{what}"
                    );
                    assert_eq!(round_trip(direction, s.key, version, &body), body, "{what}");
                    messages += 1;
                }
            }
        }
    }
    // 35 APIs, 196 advertised versions, both directions.
    assert_eq!(messages, 2 * 196 * SEEDS as usize);
}

#[test]
fn default_messages_round_trip() {
    for s in &SUPPORTED_APIS {
        for version in s.advertised.min..=s.advertised.max {
            let header = RequestHeader::new(s.key, version, 1, None);
            let mut body = BytesMut::new();
            let request = Request::default_for(s.key).expect("supported");
            request.encode(version, &mut body).expect("defaults encode");
            let decoded = Request::decode(&header, body.clone().freeze()).expect("decodes");
            assert_eq!(decoded, request, "{:?} v{version}", s.key);
            assert_eq!(walk_request(s.key, version, &body), Ok(body.len()));
        }
    }
}

#[test]
fn whatever_kafka_protocol_accepts_the_walk_accepts_with_the_same_length() {
    let mut rng = Rng(7);
    let mut accepted = 0;
    for direction in [Direction::Request, Direction::Response] {
        for s in &SUPPORTED_APIS {
            for version in s.advertised.min..=s.advertised.max {
                for seed in 0..8 {
                    let body = generate(direction, s.key, version, seed);
                    for _ in 0..24 {
                        let mut mutated = body.clone();
                        mutate(&mut rng, &mut mutated);
                        let what = format!("{direction:?} {:?} v{version} {mutated:02x?}", s.key);
                        let walked = walk(direction, s.key, version, &mutated);
                        if matches!(walked, Err(ShapeError::ArrayTooLong { .. })) {
                            // kafka-protocol alone would try to allocate for this count:
                            // the abort this module prevents.
                            continue;
                        }
                        if let Some(len) = kafka_decode(direction, s.key, version, &mutated) {
                            assert_eq!(walked, Ok(len), "{what}");
                            accepted += 1;
                        }
                    }
                }
            }
        }
    }
    assert!(accepted > 1000, "too few mutants decode to mean anything: {accepted}");
}

/// One random edit: flip a byte, truncate, or insert a byte.
fn mutate(rng: &mut Rng, body: &mut Vec<u8>) {
    if body.is_empty() {
        body.push(rng.next() as u8);
        return;
    }
    let at = rng.below(body.len() as u64) as usize;
    match rng.below(3) {
        0 => body[at] = rng.next() as u8,
        1 => body.truncate(at),
        _ => body.insert(at, rng.next() as u8),
    }
}

#[test]
fn request_elements_counts_every_array_element() {
    // Metadata v4: topics array of 2 (each a string), allow_auto_topic_creation.
    let body = [0, 0, 0, 2, 0, 1, b'a', 0, 1, b'b', 1];
    assert_eq!(request_elements(ApiKey::Metadata, 4, &body), Ok(2));
    // A null array holds none.
    assert_eq!(request_elements(ApiKey::Metadata, 4, &[0xff, 0xff, 0xff, 0xff, 1]), Ok(0));
}
