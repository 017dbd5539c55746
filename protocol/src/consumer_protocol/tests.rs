use bytes::{Buf, Bytes};
use kafka_protocol::messages::{
    consumer_protocol_assignment, consumer_protocol_subscription, ConsumerProtocolAssignment,
    ConsumerProtocolSubscription, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use proptest::prelude::*;

use super::*;

fn tp(topic: &str, partitions: &[i32]) -> TopicPartitions {
    TopicPartitions { topic: topic.to_owned(), partitions: partitions.to_vec() }
}

fn full_subscription() -> Subscription {
    Subscription {
        topics: vec!["foo".into()],
        user_data: Some(Bytes::from_static(&[1, 2])),
        owned_partitions: vec![tp("foo", &[0, 2])],
        generation_id: 7,
        rack_id: Some("r1".into()),
    }
}

#[test]
fn subscription_v0_golden_bytes() {
    let sub = Subscription { topics: vec!["t0".into(), "t1".into()], ..Subscription::default() };
    #[rustfmt::skip]
    let expected: &[u8] = &[
        0, 0,                   // version 0
        0, 0, 0, 2,             // 2 topics
        0, 2, b't', b'0',       // "t0"
        0, 2, b't', b'1',       // "t1"
        0xff, 0xff, 0xff, 0xff, // user_data: null
    ];
    let bytes = sub.encode(0).unwrap();
    assert_eq!(&bytes[..], expected);
    assert_eq!(Subscription::decode(&bytes).unwrap(), sub);
}

/// The v1 bytes of `full_subscription`; v2 and v3 append to them.
#[rustfmt::skip]
const SUBSCRIPTION_V1_BODY: &[u8] = &[
    0, 0, 0, 1,                 // 1 topic
    0, 3, b'f', b'o', b'o',     // "foo"
    0, 0, 0, 2, 1, 2,           // user_data: 2 bytes
    0, 0, 0, 1,                 // 1 owned topic
    0, 3, b'f', b'o', b'o',     // "foo"
    0, 0, 0, 2,                 // 2 partitions
    0, 0, 0, 0,                 // 0
    0, 0, 0, 2,                 // 2
];

#[test]
fn subscription_v1_to_v3_golden_bytes() {
    let sub = full_subscription();
    let with_version = |v: u8, tail: &[u8]| {
        let mut out = vec![0, v];
        out.extend_from_slice(SUBSCRIPTION_V1_BODY);
        out.extend_from_slice(tail);
        out
    };
    assert_eq!(sub.encode(1).unwrap()[..], with_version(1, &[])[..]);
    // v2 appends the generation, 7.
    assert_eq!(sub.encode(2).unwrap()[..], with_version(2, &[0, 0, 0, 7])[..]);
    // v3 appends the rack id, "r1".
    let v3 = with_version(3, &[0, 0, 0, 7, 0, 2, b'r', b'1']);
    assert_eq!(sub.encode(3).unwrap()[..], v3[..]);
    assert_eq!(Subscription::decode(&Bytes::from(v3)).unwrap(), sub);

    // A null rack id is a length of -1.
    let no_rack = Subscription { rack_id: None, ..sub.clone() };
    let v3_null = with_version(3, &[0, 0, 0, 7, 0xff, 0xff]);
    assert_eq!(no_rack.encode(3).unwrap()[..], v3_null[..]);
    assert_eq!(Subscription::decode(&Bytes::from(v3_null)).unwrap(), no_rack);
}

/// The bytes real clients put in the JoinGroup and SyncGroup requests of
/// `protocol/tests/fixtures/` (also the fuzz seeds): kafka-python's v0 subscription,
/// librdkafka's v3 one (empty user data and rack id, no owned partitions) and the
/// assignment both sent for one partition. Each re-encodes byte for byte.
#[test]
fn real_clients_golden_bytes() {
    let golden = |sub: Subscription| Subscription { topics: vec!["golden".into()], ..sub };
    #[rustfmt::skip]
    let kafka_python: &[u8] = &[
        0, 0,                                   // version 0
        0, 0, 0, 1, 0, 6, b'g', b'o', b'l', b'd', b'e', b'n', // ["golden"]
        0, 0, 0, 0,                             // user_data: empty
    ];
    let sub = golden(Subscription { user_data: Some(Bytes::new()), ..Subscription::default() });
    assert_eq!(Subscription::decode(&Bytes::from_static(kafka_python)).unwrap(), sub);
    assert_eq!(&sub.encode(0).unwrap()[..], kafka_python);

    #[rustfmt::skip]
    let librdkafka: &[u8] = &[
        0, 3,                                   // version 3
        0, 0, 0, 1, 0, 6, b'g', b'o', b'l', b'd', b'e', b'n', // ["golden"]
        0, 0, 0, 0,                             // user_data: empty
        0, 0, 0, 0,                             // no owned partitions
        0xff, 0xff, 0xff, 0xff,                 // generation_id: -1
        0, 0,                                   // rack_id: ""
    ];
    let sub = golden(Subscription {
        user_data: Some(Bytes::new()),
        rack_id: Some(String::new()),
        ..Subscription::default()
    });
    assert_eq!(Subscription::decode(&Bytes::from_static(librdkafka)).unwrap(), sub);
    assert_eq!(&sub.encode(3).unwrap()[..], librdkafka);

    #[rustfmt::skip]
    let assigned: &[u8] = &[
        0, 0,                                   // version 0
        0, 0, 0, 1, 0, 6, b'g', b'o', b'l', b'd', b'e', b'n', // "golden"
        0, 0, 0, 1, 0, 0, 0, 0,                 // [0]
        0, 0, 0, 0,                             // user_data: empty
    ];
    let assignment =
        Assignment { assigned_partitions: vec![tp("golden", &[0])], user_data: Some(Bytes::new()) };
    assert_eq!(Assignment::decode(&Bytes::from_static(assigned)).unwrap(), assignment);
    assert_eq!(&assignment.encode(0).unwrap()[..], assigned);
}

#[test]
fn assignment_golden_bytes() {
    let assignment = Assignment { assigned_partitions: vec![tp("t", &[1, 0])], user_data: None };
    #[rustfmt::skip]
    let body: &[u8] = &[
        0, 0, 0, 1,             // 1 topic
        0, 1, b't',             // "t"
        0, 0, 0, 2,             // 2 partitions
        0, 0, 0, 1,             // 1
        0, 0, 0, 0,             // 0
        0xff, 0xff, 0xff, 0xff, // user_data: null
    ];
    for version in 0..=LATEST_ASSIGNMENT_VERSION {
        let bytes = assignment.encode(version).unwrap();
        assert_eq!(bytes[..2], version.to_be_bytes());
        assert_eq!(&bytes[2..], body, "version {version}");
        assert_eq!(Assignment::decode(&bytes).unwrap(), assignment);
    }
    assert_eq!(assignment.partitions(), vec![("t".to_owned(), 1), ("t".to_owned(), 0)]);
}

/// Two topics, one of them without partitions, and user data: a member's assignment as
/// DescribeGroups reports it to the admin client.
#[test]
fn assignment_with_an_empty_topic_and_user_data_golden_bytes() {
    #[rustfmt::skip]
    let golden: &[u8] = &[
        0, 1,                               // version 1
        0, 0, 0, 2,                         // 2 topics
        0, 2, b'a', b'b',                   // "ab"
        0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 3, // [0, 3]
        0, 1, b'c',                         // "c"
        0, 0, 0, 0,                         // []
        0, 0, 0, 1, 0xff,                   // user_data: 1 byte
    ];
    let assignment = Assignment {
        assigned_partitions: vec![tp("ab", &[0, 3]), tp("c", &[])],
        user_data: Some(Bytes::from_static(&[0xff])),
    };
    assert_eq!(&assignment.encode(1).unwrap()[..], golden);
    assert_eq!(Assignment::decode(&Bytes::from_static(golden)).unwrap(), assignment);

    // Null user data, then bytes of a later version.
    let mut bytes = golden[..golden.len() - 5].to_vec();
    bytes.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 9, 9, 9]);
    let decoded = Assignment::decode(&Bytes::from(bytes)).unwrap();
    assert_eq!(decoded, Assignment { user_data: None, ..assignment });
}

#[test]
fn an_empty_assignment_decodes() {
    let bytes = Bytes::from_static(&[0, 3, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]);
    assert_eq!(Assignment::decode(&bytes).unwrap(), Assignment::default());
}

/// Assignments come from other clients, through the coordinator: each malformed shape is
/// an error, and none allocates from its counts.
#[test]
fn malformed_assignments_are_refused() {
    #[rustfmt::skip]
    let cases: &[(&[u8], ConsumerProtocolError)] = &[
        // 2^31-1 topics in no bytes.
        (&[0, 0, 0x7f, 0xff, 0xff, 0xff], ConsumerProtocolError::Truncated {
            message: "assignment", field: "assigned_partitions", offset: 2,
            needed: 6 * 0x7fff_ffff, remaining: 0,
        }),
        // A negative topic count.
        (&[0, 0, 0xff, 0xff, 0xff, 0xff], ConsumerProtocolError::NegativeLength {
            message: "assignment", field: "assigned_partitions", offset: 2, length: -1,
        }),
        // A negative topic name length.
        (&[0, 0, 0, 0, 0, 1, 0xff, 0xff, 0, 0, 0, 0], ConsumerProtocolError::NegativeLength {
            message: "assignment", field: "assigned_partitions", offset: 6, length: -1,
        }),
        // A topic name that is not UTF-8.
        (&[0, 0, 0, 0, 0, 1, 0, 1, 0xc3, 0, 0, 0, 0, 0, 0, 0, 0],
            ConsumerProtocolError::InvalidUtf8 {
                message: "assignment", field: "assigned_partitions", offset: 8,
            }),
        // User data running past the end.
        (&[0, 0, 0, 0, 0, 0, 0x7f, 0xff, 0xff, 0xff], ConsumerProtocolError::Truncated {
            message: "assignment", field: "user_data", offset: 6,
            needed: 0x7fff_ffff, remaining: 0,
        }),
    ];
    for (bytes, want) in cases {
        assert_eq!(&Assignment::decode(&Bytes::from_static(bytes)).unwrap_err(), want);
    }
    // Any negative user data length is null, as Java reads it (not only -1).
    let odd = Assignment::decode(&Bytes::from_static(&[0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xfe]));
    assert_eq!(odd.unwrap(), Assignment::default());
}

#[test]
fn older_versions_drop_newer_fields() {
    let sub = full_subscription();
    let v0 = Subscription::decode(&sub.encode(0).unwrap()).unwrap();
    assert_eq!(
        v0,
        Subscription {
            topics: sub.topics.clone(),
            user_data: sub.user_data.clone(),
            ..Subscription::default()
        }
    );
    let v2 = Subscription::decode(&sub.encode(2).unwrap()).unwrap();
    assert_eq!(v2, Subscription { rack_id: None, ..sub });
}

#[test]
fn newer_versions_are_read_as_the_latest_and_trailing_bytes_ignored() {
    let sub = full_subscription();
    let mut bytes = sub.encode(3).unwrap().to_vec();
    bytes[1] = 9;
    bytes.extend_from_slice(b"a field from the future");
    assert_eq!(Subscription::decode(&Bytes::from(bytes)).unwrap(), sub);

    // A v1 subscription with trailing bytes: the extra bytes are not a generation.
    let mut v1 = sub.encode(1).unwrap().to_vec();
    v1.extend_from_slice(&[0, 0, 0, 9]);
    assert_eq!(Subscription::decode(&Bytes::from(v1)).unwrap().generation_id, -1);

    let assignment = Assignment {
        assigned_partitions: vec![tp("t", &[3])],
        user_data: Some(Bytes::from_static(b"u")),
    };
    let mut bytes = assignment.encode(1).unwrap().to_vec();
    bytes[1] = 42;
    bytes.push(0xee);
    assert_eq!(Assignment::decode(&Bytes::from(bytes)).unwrap(), assignment);
}

#[test]
fn every_truncation_is_an_error() {
    let sub = full_subscription().encode(3).unwrap();
    for len in 0..sub.len() {
        let err = Subscription::decode(&sub.slice(..len)).unwrap_err();
        assert!(matches!(err, ConsumerProtocolError::Truncated { .. }), "{len}: {err}");
    }
    let assignment = Assignment {
        assigned_partitions: vec![tp("t", &[1, 2]), tp("u", &[])],
        user_data: Some(Bytes::from_static(b"xyz")),
    }
    .encode(1)
    .unwrap();
    for len in 0..assignment.len() {
        let err = Assignment::decode(&assignment.slice(..len)).unwrap_err();
        assert!(matches!(err, ConsumerProtocolError::Truncated { .. }), "{len}: {err}");
    }
}

#[test]
fn hostile_counts_are_refused_before_allocating() {
    let max = [0x7f, 0xff, 0xff, 0xff];
    // Subscription v0 claiming 2^31-1 topics, with 3 bytes after the count.
    let mut topics = vec![0, 0];
    topics.extend_from_slice(&max);
    topics.extend_from_slice(&[0, 1, b'x']);
    assert_eq!(
        Subscription::decode(&Bytes::from(topics)).unwrap_err(),
        ConsumerProtocolError::Truncated {
            message: "subscription",
            field: "topics",
            offset: 2,
            needed: 2 * 0x7fff_ffff,
            remaining: 3,
        }
    );

    // Subscription v1 with no topics, null user data and 2^31-1 owned partitions.
    let mut owned = vec![0, 1, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff];
    owned.extend_from_slice(&max);
    let err = Subscription::decode(&Bytes::from(owned)).unwrap_err();
    assert!(
        matches!(
            err,
            ConsumerProtocolError::Truncated { field: "owned_partitions", needed, .. }
                if needed == 6 * 0x7fff_ffff
        ),
        "{err}"
    );

    // An assignment with one topic of 2^31-1 partitions.
    let mut partitions = vec![0, 0, 0, 0, 0, 1, 0, 1, b't'];
    partitions.extend_from_slice(&max);
    partitions.extend_from_slice(&[0, 0, 0, 1]);
    let err = Assignment::decode(&Bytes::from(partitions)).unwrap_err();
    assert!(
        matches!(err, ConsumerProtocolError::Truncated { offset: 9, remaining: 4, .. }),
        "{err}"
    );

    // User data of 2^31-1 bytes.
    let mut user_data = vec![0, 0, 0, 0, 0, 0];
    user_data.extend_from_slice(&max);
    let err = Subscription::decode(&Bytes::from(user_data)).unwrap_err();
    assert!(
        matches!(err, ConsumerProtocolError::Truncated { field: "user_data", remaining: 0, .. }),
        "{err}"
    );
}

#[test]
fn negative_lengths() {
    // A null topic array is not a subscription.
    let err =
        Subscription::decode(&Bytes::from_static(&[0, 0, 0xff, 0xff, 0xff, 0xff])).unwrap_err();
    assert_eq!(
        err,
        ConsumerProtocolError::NegativeLength {
            message: "subscription",
            field: "topics",
            offset: 2,
            length: -1,
        }
    );
    // Nor is a null topic name.
    let err =
        Subscription::decode(&Bytes::from_static(&[0, 0, 0, 0, 0, 1, 0xff, 0xfe])).unwrap_err();
    assert!(
        matches!(err, ConsumerProtocolError::NegativeLength { length: -2, offset: 6, .. }),
        "{err}"
    );
    // Any negative length of a nullable field is null, as Java reads it.
    let sub =
        Subscription::decode(&Bytes::from_static(&[0, 0, 0, 0, 0, 0, 0x80, 0, 0, 0])).unwrap();
    assert_eq!(sub, Subscription::default());
    let sub = Subscription::decode(&Bytes::from_static(&[
        0, 3, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 1, 0x80, 0,
    ]))
    .unwrap();
    assert_eq!((sub.generation_id, sub.rack_id), (1, None));
}

#[test]
fn bad_versions_and_strings() {
    let err = Assignment::decode(&Bytes::from_static(&[0xff, 0xff, 0, 0, 0, 0])).unwrap_err();
    assert_eq!(
        err,
        ConsumerProtocolError::UnsupportedVersion { message: "assignment", version: -1 }
    );
    let sub = full_subscription();
    for version in [-1, 4, i16::MAX] {
        assert!(matches!(
            sub.encode(version),
            Err(ConsumerProtocolError::UnsupportedVersion { .. })
        ));
    }
    assert!(matches!(
        Assignment::default().encode(4),
        Err(ConsumerProtocolError::UnsupportedVersion { .. })
    ));

    let err = Subscription::decode(&Bytes::from_static(&[0, 0, 0, 0, 0, 1, 0, 2, 0xc3, 0x28]))
        .unwrap_err();
    assert_eq!(
        err,
        ConsumerProtocolError::InvalidUtf8 { message: "subscription", field: "topics", offset: 8 }
    );

    let long = Subscription { topics: vec!["x".repeat(32_768)], ..Subscription::default() };
    assert_eq!(
        long.encode(0).unwrap_err(),
        ConsumerProtocolError::TooLong {
            message: "subscription",
            field: "topics",
            len: 32_768,
            max: 32_767,
        }
    );
    let longest = Subscription { topics: vec!["x".repeat(32_767)], ..Subscription::default() };
    assert_eq!(Subscription::decode(&longest.encode(0).unwrap()).unwrap(), longest);
}

/// The topics alone, as the broker's coordinator reads them: what follows them is not
/// read, so a subscription cut after its topics still names them.
#[test]
fn topics_alone_decode_and_lies_are_refused() {
    // Version 1, topics ["a", "bc"], null user data, and no owned partitions at all.
    let bytes = [0, 1, 0, 0, 0, 2, 0, 1, b'a', 0, 2, b'b', b'c', 0xff, 0xff, 0xff, 0xff];
    let bytes = Bytes::copy_from_slice(&bytes);
    assert_eq!(Subscription::decode_topics(&bytes), Ok(vec!["a".into(), "bc".into()]));
    assert!(Subscription::decode(&bytes).is_err(), "the owned partitions are missing");
    // 2^31-1 topics in no bytes, a name running past the end, no topic count.
    for lie in [&[0, 1, 0x7f, 0xff, 0xff, 0xff][..], &[0, 1, 0, 0, 0, 1, 0, 9, b'a'], &[0]] {
        let err = Subscription::decode_topics(&Bytes::copy_from_slice(lie)).unwrap_err();
        assert!(matches!(err, ConsumerProtocolError::Truncated { .. }), "{err}");
    }
    let negative = Bytes::from_static(&[0xff, 0xff, 0, 0, 0, 0]);
    assert!(Subscription::decode_topics(&negative).is_err());
}

#[test]
fn grouping_sorts_and_dedups() {
    let pairs =
        vec![("b".to_owned(), 1), ("a".to_owned(), 2), ("b".to_owned(), 0), ("a".to_owned(), 2)];
    let groups = TopicPartitions::group(&pairs);
    assert_eq!(groups, vec![tp("a", &[2]), tp("b", &[0, 1])]);
    assert_eq!(
        TopicPartitions::flatten(&groups),
        vec![("a".to_owned(), 2), ("b".to_owned(), 0), ("b".to_owned(), 1)]
    );
    assert!(TopicPartitions::group(&[]).is_empty());
}

fn name() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9._-]{0,12}|\\PC{0,4}"
}

fn groups() -> impl Strategy<Value = Vec<TopicPartitions>> {
    prop::collection::vec(
        (name(), prop::collection::vec(any::<i32>(), 0..5))
            .prop_map(|(topic, partitions)| TopicPartitions { topic, partitions }),
        0..4,
    )
}

fn user_data() -> impl Strategy<Value = Option<Bytes>> {
    prop::option::of(prop::collection::vec(any::<u8>(), 0..16).prop_map(Bytes::from))
}

fn subscription() -> impl Strategy<Value = Subscription> {
    (
        prop::collection::vec(name(), 0..4),
        user_data(),
        groups(),
        any::<i32>(),
        prop::option::of(name()),
    )
        .prop_map(|(topics, user_data, owned_partitions, generation_id, rack_id)| {
            Subscription { topics, user_data, owned_partitions, generation_id, rack_id }
        })
}

/// What survives encoding at `version`.
fn at_version(mut sub: Subscription, version: i16) -> Subscription {
    if version < 1 {
        sub.owned_partitions.clear();
    }
    if version < 2 {
        sub.generation_id = -1;
    }
    if version < 3 {
        sub.rack_id = None;
    }
    sub
}

fn to_kafka_groups(
    groups: &[TopicPartitions],
) -> Vec<consumer_protocol_subscription::TopicPartition> {
    groups
        .iter()
        .map(|g| {
            consumer_protocol_subscription::TopicPartition::default()
                .with_topic(TopicName(StrBytes::from(g.topic.clone())))
                .with_partitions(g.partitions.clone())
        })
        .collect()
}

proptest! {
    #[test]
    fn subscription_round_trips(sub in subscription(), version in 0..=LATEST_SUBSCRIPTION_VERSION) {
        let bytes = sub.encode(version).unwrap();
        prop_assert_eq!(Subscription::decode(&bytes).unwrap(), at_version(sub, version));
    }

    #[test]
    fn topics_alone_are_the_subscriptions_topics(
        sub in subscription(),
        version in 0..=LATEST_SUBSCRIPTION_VERSION,
    ) {
        let bytes = sub.encode(version).unwrap();
        prop_assert_eq!(Subscription::decode_topics(&bytes).unwrap(), sub.topics);
    }

    #[test]
    fn assignment_round_trips(
        assigned_partitions in groups(),
        user_data in user_data(),
        version in 0..=3i16,
    ) {
        let assignment = Assignment { assigned_partitions, user_data };
        let bytes = assignment.encode(version).unwrap();
        prop_assert_eq!(Assignment::decode(&bytes).unwrap(), assignment);
    }

    /// kafka-protocol's decoders, generated from Kafka's JSON schemas, read our bytes as
    /// we meant them, and we read theirs.
    #[test]
    fn subscription_agrees_with_kafka_protocol(
        sub in subscription(),
        version in 0..=LATEST_SUBSCRIPTION_VERSION,
    ) {
        let ours = sub.encode(version).unwrap();
        let mut body = ours.slice(2..);
        let theirs = ConsumerProtocolSubscription::decode(&mut body, version).unwrap();
        prop_assert_eq!(body.remaining(), 0);
        let sub = at_version(sub, version);
        let topics: Vec<String> = theirs.topics.iter().map(|t| t.to_string()).collect();
        prop_assert_eq!(&topics, &sub.topics);
        prop_assert_eq!(&theirs.user_data, &sub.user_data);
        prop_assert_eq!(&theirs.owned_partitions, &to_kafka_groups(&sub.owned_partitions));
        prop_assert_eq!(theirs.generation_id, sub.generation_id);
        prop_assert_eq!(theirs.rack_id.as_ref().map(|r| r.to_string()), sub.rack_id.clone());

        let mut encoded = version.to_be_bytes().to_vec();
        theirs.encode(&mut encoded, version).unwrap();
        prop_assert_eq!(&encoded[..], &ours[..]);
    }

    #[test]
    fn assignment_agrees_with_kafka_protocol(
        assigned_partitions in groups(),
        user_data in user_data(),
    ) {
        let theirs = ConsumerProtocolAssignment::default()
            .with_assigned_partitions(
                assigned_partitions
                    .iter()
                    .map(|g| {
                        consumer_protocol_assignment::TopicPartition::default()
                            .with_topic(TopicName(StrBytes::from(g.topic.clone())))
                            .with_partitions(g.partitions.clone())
                    })
                    .collect(),
            )
            .with_user_data(user_data.clone());
        let mut encoded = 1i16.to_be_bytes().to_vec();
        theirs.encode(&mut encoded, 1).unwrap();
        let ours = Assignment { assigned_partitions, user_data };
        prop_assert_eq!(&ours.encode(1).unwrap()[..], &encoded[..]);
        prop_assert_eq!(Assignment::decode(&Bytes::from(encoded)).unwrap(), ours);
    }

    /// Any bytes at all decode to a value or an error, never a panic.
    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        let bytes = Bytes::from(bytes);
        let _ = Subscription::decode(&bytes);
        let _ = Assignment::decode(&bytes);
    }

    /// Corrupted and cut encodings decode to a value or an error, never a panic (which
    /// would fail the test).
    #[test]
    fn corrupt_bytes_never_panic(
        sub in subscription(),
        at in any::<prop::sample::Index>(),
        byte in any::<u8>(),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut bytes = sub.encode(LATEST_SUBSCRIPTION_VERSION).unwrap().to_vec();
        let at = at.index(bytes.len());
        bytes[at] = byte;
        bytes.truncate(cut.index(bytes.len() + 1));
        let bytes = Bytes::from(bytes);
        let _ = Subscription::decode(&bytes);
        let _ = Assignment::decode(&bytes);
    }
}
