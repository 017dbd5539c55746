//! Unit tests for `messages`: the zero-copy claim and ApiVersions' exact bytes.

use bytes::BufMut;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::protocol::StrBytes;

use super::*;

fn produce_frame(version: i16, records: Bytes) -> Bytes {
    let mut partition = PartitionProduceData::default();
    partition.index = 0;
    partition.records = Some(records);
    let mut topic = TopicProduceData::default();
    topic.name = StrBytes::from_static_str("events").into();
    topic.partition_data = vec![partition];
    let mut produce = ProduceRequest::default();
    produce.acks = -1;
    produce.timeout_ms = 30_000;
    produce.topic_data = vec![topic];
    let header = RequestHeader::new(ApiKey::Produce, version, 7, None);
    let mut out = BytesMut::new();
    header.encode(&mut out).expect("header");
    Request::Produce(produce).encode(version, &mut out).expect("body");
    out.freeze()
}

#[test]
fn produce_records_point_into_the_frame() {
    let records = Bytes::from(vec![0xab; 64 * 1024]);
    for version in [3, 8, 9, 11] {
        let frame = produce_frame(version, records.clone());
        let range = frame.as_ptr() as usize..frame.as_ptr() as usize + frame.len();
        let (header, body) = RequestHeader::decode(frame.clone()).expect("header");
        let Ok(Request::Produce(produce)) = Request::decode(&header, body) else {
            panic!("v{version} did not decode as Produce");
        };
        let got = produce.topic_data[0].partition_data[0].records.as_ref().expect("records");
        assert_eq!(got, &records);
        let start = got.as_ptr() as usize;
        assert!(range.contains(&start), "v{version}: records copied out of the frame");
        assert!(range.contains(&(start + got.len() - 1)), "v{version}");
        let name = &produce.topic_data[0].name.0;
        assert!(range.contains(&(name.as_ptr() as usize)), "v{version}: topic name copied");
    }
}

#[test]
fn decode_checks_the_advertised_range() {
    let header = RequestHeader::new(ApiKey::Fetch, 3, 1, None);
    assert_eq!(
        Request::decode(&header, Bytes::new()),
        Err(DecodeError::UnsupportedVersion {
            api_key: ApiKey::Fetch,
            version: 3,
            advertised: VersionRange::new(4, 17)
        })
    );
    let header = RequestHeader::new(ApiKey::LeaderAndIsr, 0, 1, None);
    assert_eq!(
        Request::decode(&header, Bytes::new()),
        Err(DecodeError::UnsupportedApi { api_key: ApiKey::LeaderAndIsr })
    );
    // Produce v0 is advertised (old librdkafka looks for it) and so decodes; serving it
    // is the broker's decision.
    let frame = produce_frame(0, Bytes::from_static(b"x"));
    let (header, body) = RequestHeader::decode(frame).expect("header");
    assert!(matches!(Request::decode(&header, body), Ok(Request::Produce(_))));
}

#[test]
fn hostile_count_is_a_shape_error() {
    let header = RequestHeader::new(ApiKey::Metadata, 0, 1, None);
    let body = Bytes::from_static(&[0x7f, 0xff, 0xff, 0xff]);
    assert!(matches!(
        Request::decode(&header, body),
        Err(DecodeError::Shape { source: ShapeError::ArrayTooLong { .. }, .. })
    ));
}

/// The expected ApiVersions body, written field by field from the Kafka spec.
fn expected_api_versions(version: i16, error: i16) -> Vec<u8> {
    let mut b = Vec::new();
    b.put_i16(error);
    if version >= 3 {
        b.put_u8(SUPPORTED_APIS.len() as u8 + 1); // compact array: count + 1, one byte
    } else {
        b.put_i32(SUPPORTED_APIS.len() as i32);
    }
    for s in &SUPPORTED_APIS {
        b.put_i16(s.key as i16);
        b.put_i16(s.advertised.min);
        b.put_i16(s.advertised.max);
        if version >= 3 {
            b.put_u8(0); // no tagged fields per entry
        }
    }
    if version >= 1 {
        b.put_i32(0); // throttle_time_ms
    }
    if version >= 3 {
        // No tagged fields: SupportedFeatures, FinalizedFeaturesEpoch, FinalizedFeatures
        // and ZkMigrationReady are at their defaults and must not be written.
        b.put_u8(0);
    }
    b
}

#[test]
fn api_versions_bytes_for_every_version() {
    for version in 0..=4 {
        let reply = api_versions_response(version);
        assert_eq!(reply.version, version);
        let mut out = BytesMut::new();
        reply.into_response().encode(version, &mut out).expect("encodes");
        assert_eq!(&out[..], &expected_api_versions(version, 0)[..], "v{version}");
    }
}

#[test]
fn api_versions_unsupported_version_gets_v0_with_full_list() {
    for version in [5, 127, -1] {
        let reply = api_versions_response(version);
        assert_eq!(reply.version, 0);
        assert_eq!(reply.body.error_code, 35);
        assert_eq!(reply.body.api_keys.len(), SUPPORTED_APIS.len());
        let mut out = BytesMut::new();
        reply.clone().into_response().encode(reply.version, &mut out).expect("v0");
        assert_eq!(&out[..], &expected_api_versions(0, 35)[..]);
    }
}

#[test]
fn api_versions_frame_uses_response_header_v0() {
    let request = RequestHeader::new(ApiKey::ApiVersions, 3, 0x0a0b0c0d, None);
    let reply = api_versions_response(3);
    let mut out = BytesMut::new();
    let header = ResponseHeader::for_request(&request);
    reply.into_response().encode_frame(header, 3, &mut out).expect("frame");
    let body = expected_api_versions(3, 0);
    assert_eq!(&out[..4], &((4 + body.len()) as i32).to_be_bytes());
    assert_eq!(&out[4..8], &[0x0a, 0x0b, 0x0c, 0x0d], "correlation id, no tagged fields");
    assert_eq!(&out[8..], &body[..]);
}

#[test]
fn failed_encode_leaves_the_buffer_unchanged() {
    let mut out = BytesMut::from(&b"keep"[..]);
    let mut metadata = MetadataResponse::default();
    metadata.cluster_authorized_operations = 5; // v8–v10 only
    let err = Response::Metadata(metadata)
        .encode_frame(ResponseHeader { correlation_id: 1, header_version: 0 }, 1, &mut out)
        .expect_err("cluster_authorized_operations does not exist in v1");
    assert!(matches!(err, EncodeError::Body { api_key: ApiKey::Metadata, version: 1, .. }));
    assert_eq!(&out[..], b"keep");
}

/// A DescribeLogDirs request for `version`: topic "t" partitions 0 and 2, or null (every
/// topic).
fn describe_log_dirs_request(all: bool) -> DescribeLogDirsRequest {
    use kafka_protocol::messages::describe_log_dirs_request::DescribableLogDirTopic;
    let topic = DescribableLogDirTopic::default()
        .with_topic(StrBytes::from_static_str("t").into())
        .with_partitions(vec![0, 2]);
    DescribeLogDirsRequest::default().with_topics((!all).then(|| vec![topic]))
}

/// A DescribeLogDirs response with the fields `version` has: one log dir, one topic, one
/// partition of 4096 bytes.
fn describe_log_dirs_response(version: i16) -> DescribeLogDirsResponse {
    use kafka_protocol::messages::describe_log_dirs_response::{
        DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
    };
    let partition = DescribeLogDirsPartition::default()
        .with_partition_index(2)
        .with_partition_size(4096)
        .with_offset_lag(0)
        .with_is_future_key(false);
    let topic = DescribeLogDirsTopic::default()
        .with_name(StrBytes::from_static_str("t").into())
        .with_partitions(vec![partition]);
    let mut dir = DescribeLogDirsResult::default()
        .with_log_dir(StrBytes::from_static_str("/d"))
        .with_topics(vec![topic]);
    if version >= 4 {
        dir = dir.with_total_bytes(1 << 40).with_usable_bytes(1 << 39);
    }
    DescribeLogDirsResponse::default().with_throttle_time_ms(0).with_results(vec![dir])
}

/// The DescribeLogDirs response body, written field by field from Kafka's schema
/// (`DescribeLogDirsResponse.json`): flexible from v2, the top-level error code from v3,
/// TotalBytes and UsableBytes from v4.
fn expected_describe_log_dirs_response(version: i16) -> Vec<u8> {
    let flexible = version >= 2;
    let mut b = Vec::new();
    let string = |b: &mut Vec<u8>, s: &[u8]| {
        if flexible {
            b.put_u8(s.len() as u8 + 1);
        } else {
            b.put_i16(s.len() as i16);
        }
        b.extend_from_slice(s);
    };
    let count = |b: &mut Vec<u8>, n: usize| {
        if flexible {
            b.put_u8(n as u8 + 1);
        } else {
            b.put_i32(n as i32);
        }
    };
    b.put_i32(0); // throttle_time_ms
    if version >= 3 {
        b.put_i16(0); // error_code
    }
    count(&mut b, 1); // results
    b.put_i16(0); // error_code of the log dir
    string(&mut b, b"/d");
    count(&mut b, 1); // topics
    string(&mut b, b"t");
    count(&mut b, 1); // partitions
    b.put_i32(2);
    b.put_i64(4096); // partition_size
    b.put_i64(0); // offset_lag
    b.put_u8(0); // is_future_key
    if flexible {
        b.put_u8(0); // partition's tagged fields
        b.put_u8(0); // topic's tagged fields
    }
    if version >= 4 {
        b.put_i64(1 << 40); // total_bytes
        b.put_i64(1 << 39); // usable_bytes
    }
    if flexible {
        b.put_u8(0); // result's tagged fields
        b.put_u8(0); // response's tagged fields
    }
    b
}

#[test]
fn describe_log_dirs_round_trips_in_every_version() {
    for version in 0..=4 {
        for all in [false, true] {
            let request = Request::DescribeLogDirs(describe_log_dirs_request(all));
            let header = RequestHeader::new(ApiKey::DescribeLogDirs, version, 9, None);
            let mut frame = BytesMut::new();
            request.encode_frame(&header, &mut frame).expect("request encodes");
            let (decoded_header, body) =
                RequestHeader::decode(frame.freeze().slice(4..)).expect("header");
            assert_eq!(decoded_header.api_version, version);
            let decoded = Request::decode(&decoded_header, body).expect("request decodes");
            assert_eq!(decoded, request, "v{version}, all topics: {all}");
        }
        let response = Response::DescribeLogDirs(describe_log_dirs_response(version));
        let mut body = BytesMut::new();
        response.encode(version, &mut body).expect("response encodes");
        assert_eq!(&body[..], &expected_describe_log_dirs_response(version)[..], "v{version}");
        let decoded = Response::decode(ApiKey::DescribeLogDirs, version, body.freeze());
        assert_eq!(decoded.expect("response decodes"), response, "v{version}");
    }
}

#[test]
fn describe_log_dirs_request_bytes_v0_and_v4() {
    // v0: topics ARRAY of (STRING topic, ARRAY partitions).
    let mut out = BytesMut::new();
    Request::DescribeLogDirs(describe_log_dirs_request(false)).encode(0, &mut out).unwrap();
    assert_eq!(&out[..], &[0, 0, 0, 1, 0, 1, b't', 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 2]);
    // v4: compact arrays and strings, tagged fields; null topics is a count of 0.
    let mut out = BytesMut::new();
    Request::DescribeLogDirs(describe_log_dirs_request(false)).encode(4, &mut out).unwrap();
    assert_eq!(&out[..], &[2, 2, b't', 3, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0]);
    let mut out = BytesMut::new();
    Request::DescribeLogDirs(describe_log_dirs_request(true)).encode(4, &mut out).unwrap();
    assert_eq!(&out[..], &[0, 0]);
    // The top-level error code is ignorable: before v3 it is dropped, not refused.
    let mut v3 = describe_log_dirs_response(2);
    v3.error_code = ErrorCode::CLUSTER_AUTHORIZATION_FAILED.code();
    let mut out = BytesMut::new();
    Response::DescribeLogDirs(v3).encode(2, &mut out).unwrap();
    assert_eq!(&out[..], &expected_describe_log_dirs_response(2)[..]);
}
