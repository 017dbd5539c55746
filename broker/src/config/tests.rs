use super::*;

#[test]
fn parses_java_properties() {
    let text =
        "# comment\n! also\nlisteners=PLAINTEXT://127.0.0.1:19092\nlog.dirs : /tmp/a,/tmp/b\n\
                num.partitions 3\nlong.value = one\\\n   two\n";
    let p = parse_properties(text);
    assert_eq!(p["listeners"], "PLAINTEXT://127.0.0.1:19092");
    assert_eq!(p["log.dirs"], "/tmp/a,/tmp/b");
    assert_eq!(p["num.partitions"], "3");
    assert_eq!(p["long.value"], "onetwo");
}

#[test]
fn applies_kafka_broker_properties() {
    let props = parse_properties(
        "listeners=PLAINTEXT://127.0.0.1:19092\nlog.dirs=/var/sluice\nnum.partitions=6\n\
         log.retention.hours=1\nlog.segment.bytes=1048576\nlog.flush.interval.messages=1\n\
         auto.create.topics.enable=false\nnum.network.threads=3\nsome.typo=1\n",
    );
    let mut c = Config::default();
    let unknown = c.apply_properties(&props).unwrap();
    assert_eq!(unknown, vec!["some.typo".to_string()]);
    assert_eq!(c.listen, "127.0.0.1:19092".parse().unwrap());
    assert_eq!((c.advertised_host.as_str(), c.advertised_port), ("127.0.0.1", 19092));
    assert_eq!(c.data_dir, PathBuf::from("/var/sluice"));
    assert_eq!(c.num_partitions, 6);
    assert_eq!(c.log.retention_ms, 3_600_000);
    assert_eq!(c.log.segment_bytes, 1 << 20);
    assert!(c.log.is_durable());
    assert!(!c.auto_create_topics);
}

#[test]
fn request_byte_budgets_are_bounded_or_unbounded_as_kafka_reads_them() {
    let mut c = Config::default();
    assert_eq!(c.queued_max_request_bytes, Some(1 << 30));
    c.apply_properties(&parse_properties(
        "queued.max.request.bytes=-1\nsluice.queued.max.request.bytes.per.connection=4096\n",
    ))
    .unwrap();
    assert_eq!(
        (c.queued_max_request_bytes, c.queued_max_request_bytes_per_connection),
        (None, 4096)
    );
    for unbounded in ["queued.max.request.bytes=0", "queued.max.request.bytes=-2"] {
        let mut c = Config::default();
        c.apply_properties(&parse_properties(unbounded)).unwrap();
        assert_eq!(c.queued_max_request_bytes, None, "{unbounded}");
    }
    for bad in ["queued.max.request.bytes=1.5", "sluice.queued.max.request.bytes.per.connection=0"]
    {
        assert!(Config::default().apply_properties(&parse_properties(bad)).is_err(), "{bad}");
    }
}

#[test]
fn segments_below_1_mib_take_the_internal_property_not_log_segment_bytes() {
    let err = Config::default()
        .apply_properties(&parse_properties("log.segment.bytes=1000"))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid value \"1000\" for log.segment.bytes: value must be at least 1048576"
    );
    let mut c = Config::default();
    assert!(c
        .apply_properties(&parse_properties("sluice.internal.log.segment.bytes=14"))
        .unwrap()
        .is_empty());
    assert_eq!((c.internal_segment_bytes, c.log.segment_bytes), (Some(14), 1 << 30));
    assert_eq!(Config::default().internal_segment_bytes, None);
}

#[test]
fn retention_ms_wins_over_hours_and_minus_one_means_forever() {
    let props = parse_properties("log.retention.hours=5\nlog.retention.ms=-1\n");
    let mut c = Config::default();
    c.apply_properties(&props).unwrap();
    assert_eq!(c.log.retention_ms, -1);
}

#[test]
fn invalid_values_are_errors_naming_the_key() {
    for text in [
        "num.partitions=zero",
        "num.partitions=0",
        "listeners=SSL://x:1",
        "auto.create.topics.enable=yes",
        "socket.send.buffer.bytes=0",
        "socket.receive.buffer.bytes=-2",
        "sluice.loopback.congestion.control=no such",
        "sluice.loopback.congestion.control=a_name_longer_than_15",
        "log.index.size.max.bytes=2147483648",
        "log.index.size.max.bytes=8796093022208",
        "log.index.size.max.bytes=3",
        "log.segment.bytes=1048575",
        "sluice.internal.log.segment.bytes=13",
        "log.roll.ms=0",
        "log.roll.hours=0",
        "log.retention.ms=-2",
        "log.flush.interval.messages=0",
        "message.max.bytes=2147483648",
        "log.message.timestamp.type=Now",
        "compression.type=brotli",
        "producer.id.expiration.ms=0",
        "queued.max.request.bytes=lots",
    ] {
        let mut c = Config::default();
        let err = c.apply_properties(&parse_properties(text)).unwrap_err();
        let key = text.split('=').next().unwrap();
        assert!(err.to_string().contains(key), "{err}");
    }
}

#[test]
fn topic_defaults_take_the_topic_configs_values() {
    let props = parse_properties(
        "log.index.size.max.bytes=2147483647\nlog.flush.interval.ms=9223372036854775807\n\
         log.retention.bytes=-5\nlog.roll.hours=2\nlog.message.timestamp.type=LogAppendTime\n\
         compression.type=gzip\nproducer.id.expiration.ms=1\nqueued.max.request.bytes=-1\n",
    );
    let mut c = Config::default();
    assert!(c.apply_properties(&props).unwrap().is_empty());
    assert_eq!(c.log.segment_index_bytes, i32::MAX as u64);
    assert_eq!(c.log.flush_ms, -1);
    assert_eq!(c.log.retention_bytes, -5);
    assert_eq!(c.log.segment_ms, 2 * 3_600_000);
    assert_eq!(c.timestamp_type, TimestampType::LogAppendTime);
}

#[test]
fn socket_buffers_default_to_the_kernel_and_take_kafka_keys() {
    let c = Config::default();
    assert_eq!((c.socket_send_buffer_bytes, c.socket_receive_buffer_bytes), (-1, -1));
    let mut c = Config::default();
    let props =
        parse_properties("socket.send.buffer.bytes=262144\nsocket.receive.buffer.bytes=-1\n");
    assert!(c.apply_properties(&props).unwrap().is_empty());
    assert_eq!((c.socket_send_buffer_bytes, c.socket_receive_buffer_bytes), (262_144, -1));
}

#[test]
fn loopback_congestion_control_defaults_to_reno_and_empty_means_the_systems() {
    assert_eq!(Config::default().loopback_congestion_control, "reno");
    for (text, want) in [
        ("sluice.loopback.congestion.control=cubic\n", "cubic"),
        ("sluice.loopback.congestion.control=\n", ""),
    ] {
        let mut c = Config::default();
        assert!(c.apply_properties(&parse_properties(text)).unwrap().is_empty());
        assert_eq!(c.loopback_congestion_control, want);
    }
}

#[test]
fn advertised_listener_is_separate_from_the_bind_address() {
    let props = parse_properties(
        "listeners=PLAINTEXT://0.0.0.0:9092\nadvertised.listeners=PLAINTEXT://broker.local:9093\n",
    );
    let mut c = Config::default();
    c.apply_properties(&props).unwrap();
    assert!(c.listen.ip().is_unspecified());
    assert_eq!((c.advertised_host.as_str(), c.advertised_port), ("broker.local", 9093));
}
