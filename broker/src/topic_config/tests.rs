use super::*;
use crate::config::Config;

fn builtin() -> EffectiveConfig {
    EffectiveConfig::from_defaults(&TopicDefaults::from_config(&Config::default()))
}

fn overrides(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

#[test]
fn every_row_parses_its_default_and_sluice_starts_from_kafkas_defaults() {
    let builtin = builtin();
    for row in TOPIC_CONFIGS {
        let value = row.parse(row.key.default).unwrap_or_else(|e| panic!("{}: {e}", row.name()));
        assert_eq!(value.render(), row.key.default, "{}", row.name());
        assert_eq!(config_value(&builtin, row.name()), row.key.default, "{}", row.name());
        let mut c = builtin.clone();
        row.apply(&mut c, &value);
        assert_eq!(config_value(&c, row.name()), row.key.default, "{} round trip", row.name());
    }
    for row in BROKER_CONFIGS.iter().filter(|r| !r.default.is_empty()) {
        row.parse(row.default).unwrap_or_else(|e| panic!("{}: {e}", row.name));
    }
}

#[test]
fn rows_are_unique_and_every_broker_synonym_is_distinct() {
    let names: HashSet<&str> = TOPIC_CONFIGS.iter().map(TopicConfig::name).collect();
    assert_eq!(names.len(), TOPIC_CONFIGS.len());
    let brokers: Vec<&str> = TOPIC_CONFIGS.iter().filter_map(|r| r.broker).collect();
    assert_eq!(brokers.iter().collect::<HashSet<_>>().len(), brokers.len());
    let mut sorted = TOPIC_CONFIGS.to_vec();
    sorted.sort_by_key(|r| r.name());
    assert!(sorted.iter().zip(TOPIC_CONFIGS).all(|(a, b)| a.name() == b.name()), "by name");
    for row in BROKER_CONFIGS {
        assert!(by_broker_name(row.name).is_none(), "{} is a synonym too", row.name);
    }
}

#[test]
fn every_minimum_is_inclusive_and_one_below_is_refused() {
    for row in TOPIC_CONFIGS.iter().map(|r| &r.key).chain(BROKER_CONFIGS) {
        if let Valid::AtLeast(min) = row.valid {
            assert!(row.parse(&min.to_string()).is_ok(), "{} at {min}", row.name);
            assert_eq!(
                row.parse(&(min - 1).to_string()),
                Err(Invalid::Below(min)),
                "{} below {min}",
                row.name
            );
        }
    }
}

#[test]
fn int_configs_refuse_2_pow_31_and_long_configs_2_pow_63() {
    for row in TOPIC_CONFIGS.iter().map(|r| &r.key).chain(BROKER_CONFIGS) {
        let unbounded_above = matches!(row.valid, Valid::Any | Valid::AtLeast(_));
        match row.config_type {
            ConfigType::Int if unbounded_above => {
                assert!(row.parse("2147483647").is_ok(), "{}", row.name);
                assert_eq!(
                    row.parse("2147483648"),
                    Err(Invalid::NotNumber(ConfigType::Int)),
                    "{}",
                    row.name
                );
                assert!(row.parse("8796093022208").is_err(), "{}: 8 TiB", row.name);
            }
            ConfigType::Int => {
                assert_eq!(
                    row.parse("2147483648"),
                    Err(Invalid::NotNumber(ConfigType::Int)),
                    "{}",
                    row.name
                );
            }
            ConfigType::Long => {
                assert!(row.parse("9223372036854775807").is_ok(), "{}", row.name);
                assert!(row.parse("9223372036854775808").is_err(), "{}", row.name);
            }
            _ => {}
        }
        if matches!(row.config_type, ConfigType::Int | ConfigType::Long) {
            assert!(row.parse("soon").is_err(), "{}", row.name);
            assert!(row.parse("").is_err(), "{}", row.name);
            assert!(row.parse("1.5").is_err(), "{}", row.name);
        }
    }
}

#[test]
fn kafkas_bounds_per_config() {
    let refused = |name: &str, value: &str| topic_config(name).unwrap().parse(value).is_err();
    for (name, ok, bad) in [
        ("segment.bytes", "1048576", "1048575"),
        ("segment.index.bytes", "4", "3"),
        ("segment.ms", "1", "0"),
        ("flush.messages", "1", "0"),
        ("flush.ms", "0", "-1"),
        ("retention.ms", "-1", "-2"),
        ("index.interval.bytes", "0", "-1"),
        ("max.message.bytes", "0", "-1"),
        ("message.timestamp.type", "LogAppendTime", "logappendtime"),
        ("cleanup.policy", "compact, delete", "compact,remove"),
        ("compression.type", "producer", "brotli"),
        ("min.insync.replicas", "1", "0"),
    ] {
        assert!(!refused(name, ok), "{name}={ok}");
        assert!(refused(name, bad), "{name}={bad}");
    }
    // Kafka takes any long for retention.bytes: negative means no limit.
    assert!(!refused("retention.bytes", "-5"));
    assert_eq!(topic_config("segment.ms").unwrap().parse(" 60000 "), Ok(Value::Number(60000)));
}

#[test]
fn the_internal_segment_size_is_a_broker_property_from_14_bytes_not_a_topic_config() {
    let name = "sluice.internal.log.segment.bytes";
    assert!(topic_config(name).is_none() && by_broker_name(name).is_none());
    let row = broker_config(name).unwrap();
    assert_eq!(
        (row.parse("14"), row.parse("13")),
        (Ok(Value::Number(14)), Err(Invalid::Below(14)))
    );
    let mut config = Config::default();
    let defaults = TopicDefaults::from_config(&config);
    let c = effective(&defaults, &overrides(&[("segment.bytes", "2097152")])).unwrap();
    assert_eq!(defaults.storage_log(&c).segment_bytes, 2 << 20, "unset: segment.bytes");
    config.internal_segment_bytes = Some(4096);
    let defaults = TopicDefaults::from_config(&config);
    let c = effective(&defaults, &overrides(&[("segment.bytes", "2097152")])).unwrap();
    assert_eq!(defaults.storage_log(&c).segment_bytes, 4096);
    assert_eq!(config_value(&c, "segment.bytes"), "2097152", "shown as configured");
}

#[test]
fn what_kafka_allows_but_sluice_does_not_is_refused_with_the_reason() {
    let row = topic_config("compression.type").unwrap();
    assert!(row.key.parse("gzip").is_ok(), "Kafka's rule");
    assert!(matches!(row.parse("gzip"), Err(Invalid::Unsupported(_))));
    let row = topic_config("min.insync.replicas").unwrap();
    assert!(matches!(row.parse("2"), Err(Invalid::Unsupported(_))));
    let row = topic_config("cleanup.policy").unwrap();
    assert!(matches!(row.parse(""), Err(Invalid::Unsupported(_))));
}

#[test]
fn effective_applies_overrides_and_names_the_refused_one() {
    let defaults = TopicDefaults::from_config(&Config::default());
    let c = effective(
        &defaults,
        &overrides(&[
            ("flush.ms", "9223372036854775807"),
            ("segment.index.bytes", "2147483647"),
            ("cleanup.policy", "compact , delete"),
            ("message.timestamp.type", "LogAppendTime"),
        ]),
    )
    .unwrap();
    assert_eq!(c.log.flush_ms, -1, "Long.MAX_VALUE: never");
    assert_eq!(c.log.segment_index_bytes, i32::MAX as u64);
    assert_eq!(c.cleanup_policy, "compact,delete");
    assert_eq!(c.timestamp_type, TimestampType::LogAppendTime);
    for (k, v) in [("segment.index.bytes", "8796093022208"), ("no.such", "1")] {
        match effective(&defaults, &overrides(&[(k, v)])) {
            Err(TopicError::InvalidConfig { key, value, reason }) => {
                assert_eq!((key.as_str(), value.as_str()), (k, v), "{reason}");
            }
            other => panic!("{k}={v}: {other:?}"),
        }
    }
}

#[test]
fn validated_overrides_are_stored_as_rendered() {
    let defaults = TopicDefaults::from_config(&Config::default());
    let mut o = overrides(&[
        ("cleanup.policy", " delete ,compact,delete,delete "),
        ("retention.ms", " +1000"),
        ("message.timestamp.type", "LogAppendTime "),
    ]);
    validate("t", &defaults, &mut o).unwrap();
    let want = overrides(&[
        ("cleanup.policy", "delete,compact"),
        ("retention.ms", "1000"),
        ("message.timestamp.type", "LogAppendTime"),
    ]);
    assert_eq!(o, want);
}

#[test]
fn catalog_values_the_table_refuses_are_dropped_not_fatal() {
    let kept = retain_valid(
        "t",
        overrides(&[
            ("segment.index.bytes", "8796093022208"),
            ("segment.bytes", "14"),
            ("retention.ms", "1000"),
            ("gone.config", "x"),
        ]),
    );
    assert_eq!(kept, overrides(&[("retention.ms", "1000")]));
}

#[test]
fn internal_topics_refuse_configs_that_delete_records() {
    let defaults = TopicDefaults::from_config(&Config::default());
    let safe = [("cleanup.policy", "compact"), ("retention.ms", "-1"), ("retention.bytes", "-1")];
    assert!(validate("__consumer_offsets", &defaults, &mut overrides(&safe)).is_ok());
    let with = |k: &str, v: &str| {
        let mut o = overrides(&safe);
        o.insert(k.into(), v.into());
        validate("__consumer_offsets", &defaults, &mut o)
    };
    for (k, v) in [
        ("retention.ms", "1000"),
        ("retention.bytes", "0"),
        ("cleanup.policy", "delete"),
        ("cleanup.policy", "compact,delete"),
    ] {
        assert!(matches!(with(k, v), Err(TopicError::PolicyViolation { .. })), "{k}={v}");
    }
    assert!(with("segment.bytes", "1048576").is_ok());
    // Without overrides the defaults (7 days, delete) would delete offsets.
    assert!(validate("__consumer_offsets", &defaults, &mut BTreeMap::new()).is_err());
    assert!(validate("orders", &defaults, &mut BTreeMap::new()).is_ok());
}

#[test]
fn append_and_subtract_keep_order_and_are_linear() {
    let key = &topic_config("cleanup.policy").unwrap().key;
    let alter = |base: &str, change: &str, append: bool| alter_list(key, base, change, append);
    assert_eq!(alter("delete", "compact", true).unwrap(), "delete,compact");
    assert_eq!(alter("delete", "delete, compact,compact", true).unwrap(), "delete,compact");
    assert_eq!(alter("delete,compact", "delete", false).unwrap(), "compact");
    assert_eq!(alter("delete", "delete,nothing", false).unwrap(), "", "then refused as empty");
    assert_eq!(alter("", "compact", true).unwrap(), "compact");
    assert_eq!(alter("delete", "compact,remove", true), Err(Invalid::NotOneOf(CLEANUP_POLICIES)));
    // 200,000 items each way: a search per item (the old `contains`) took 9.7 s for 40,000
    // items in a debug build, so minutes here; linear, well under a second. Repeats and
    // foreign items cost no memory per item.
    let repeated = vec!["compact"; 200_000].join(",");
    let foreign: String = (0..200_000).map(|i| format!("p{i},")).collect();
    let started = std::time::Instant::now();
    assert_eq!(alter("delete", &repeated, true).unwrap(), "delete,compact");
    assert_eq!(alter("delete,compact", &repeated, false).unwrap(), "delete");
    assert_eq!(alter("delete", &foreign, false).unwrap(), "delete");
    assert!(alter("delete", &foreign, true).is_err());
    assert!(started.elapsed() < std::time::Duration::from_secs(30), "{:?}", started.elapsed());
    let row = topic_config("cleanup.policy").unwrap();
    assert_eq!(row.parse(&repeated), Ok(Value::List(vec!["compact".into()])));
}

#[test]
fn errors_repeat_at_most_256_bytes_of_a_value() {
    let defaults = TopicDefaults::from_config(&Config::default());
    let huge = "é".repeat(1 << 20);
    match effective(&defaults, &overrides(&[("retention.ms", &huge)])) {
        Err(TopicError::InvalidConfig { value, .. }) => assert!(value.len() <= 256),
        other => panic!("{other:?}"),
    }
}

/// Kafka 4.x's documented topic configs (4.1's topic configs page), by name: the table
/// knows each of them and no other.
const KAFKA_4_TOPIC_CONFIGS: &[&str] = &[
    "cleanup.policy",
    "compression.gzip.level",
    "compression.lz4.level",
    "compression.type",
    "compression.zstd.level",
    "delete.retention.ms",
    "file.delete.delay.ms",
    "flush.messages",
    "flush.ms",
    "follower.replication.throttled.replicas",
    "index.interval.bytes",
    "leader.replication.throttled.replicas",
    "local.retention.bytes",
    "local.retention.ms",
    "max.compaction.lag.ms",
    "max.message.bytes",
    "message.timestamp.after.max.ms",
    "message.timestamp.before.max.ms",
    "message.timestamp.type",
    "min.cleanable.dirty.ratio",
    "min.compaction.lag.ms",
    "min.insync.replicas",
    "preallocate",
    "remote.log.copy.disable",
    "remote.log.delete.on.disable",
    "remote.storage.enable",
    "retention.bytes",
    "retention.ms",
    "segment.bytes",
    "segment.index.bytes",
    "segment.jitter.ms",
    "segment.ms",
    "unclean.leader.election.enable",
];

#[test]
fn the_table_is_kafka_4s_topic_configs_and_removed_ones_are_unknown() {
    let names: Vec<&str> = TOPIC_CONFIGS.iter().map(TopicConfig::name).collect();
    assert_eq!(names, KAFKA_4_TOPIC_CONFIGS);
    for gone in [
        "message.format.version",
        "message.downconversion.enable",
        "message.timestamp.difference.max.ms",
        "internal.segment.bytes",
    ] {
        let defaults = TopicDefaults::from_config(&Config::default());
        match effective(&defaults, &overrides(&[(gone, "1")])) {
            Err(TopicError::InvalidConfig { reason, .. }) => {
                assert_eq!(reason, "unknown topic config")
            }
            other => panic!("{gone}: {other:?}"),
        }
    }
}

#[test]
fn kept_configs_are_stored_and_shown_and_fall_back_to_the_broker_property() {
    let mut config = Config::default();
    config.topic_kept.insert("preallocate", "true".into());
    let defaults = TopicDefaults::from_config(&config);
    let c = effective(&defaults, &overrides(&[("file.delete.delay.ms", "500")])).unwrap();
    assert_eq!(config_value(&c, "file.delete.delay.ms"), "500");
    assert_eq!(config_value(&c, "preallocate"), "true", "the broker property");
    assert_eq!(config_value(&c, "unclean.leader.election.enable"), "false", "Kafka's default");
    for row in TOPIC_CONFIGS.iter().filter(|r| !r.honoured) {
        assert!(matches!(row.mapping, Mapping::Kept), "{} is not acted on", row.name());
    }
}

#[test]
fn new_rules_bounds_levels_and_replica_lists() {
    let parse = |name: &str, value: &str| topic_config(name).unwrap().parse(value);
    assert_eq!(parse("compression.lz4.level", "17"), Ok(Value::Number(17)));
    assert_eq!(parse("compression.lz4.level", "18"), Err(Invalid::Above(17)));
    assert_eq!(parse("compression.lz4.level", "0"), Err(Invalid::Below(1)));
    assert!(parse("compression.zstd.level", "-131072").is_ok());
    assert_eq!(parse("compression.zstd.level", "-131073"), Err(Invalid::Below(-131_072)));
    assert_eq!(parse("compression.zstd.level", "23"), Err(Invalid::Above(22)));
    for ok in ["-1", "1", "9"] {
        assert!(parse("compression.gzip.level", ok).is_ok(), "{ok}");
    }
    for bad in ["0", "-2", "10"] {
        assert_eq!(parse("compression.gzip.level", bad), Err(Invalid::NotGzipLevel), "{bad}");
    }
    let replicas = "leader.replication.throttled.replicas";
    for ok in ["", "*", "0:1", "0:1, 1:2", "10 : 3"] {
        assert!(parse(replicas, ok).is_ok(), "{ok:?}");
    }
    for bad in ["*,0:1", "0", "a:1", "0:1:2", "0:", ":1", "all"] {
        assert_eq!(parse(replicas, bad), Err(Invalid::NotThrottledReplicas), "{bad:?}");
    }
    assert_eq!(parse("local.retention.ms", "-2"), Ok(Value::Number(-2)));
    assert_eq!(parse("local.retention.bytes", "-3"), Err(Invalid::Below(-2)));
    assert_eq!(parse("preallocate", "TRUE"), Ok(Value::Bool(true)));
    assert_eq!(parse("preallocate", "yes"), Err(Invalid::NotBoolean));
    assert!(matches!(parse("remote.storage.enable", "true"), Err(Invalid::Unsupported(_))));
    assert_eq!(parse("remote.storage.enable", "false"), Ok(Value::Bool(false)));
    assert_eq!(parse("message.timestamp.before.max.ms", "-1"), Err(Invalid::Below(0)));
}

#[test]
fn timestamp_bounds_and_the_broker_cleanup_policy_reach_the_effective_config() {
    let mut config = Config::default();
    let props = crate::config::parse_properties(
        "log.cleanup.policy=compact\nlog.message.timestamp.before.max.ms=60000\n",
    );
    config.apply_properties(&props).unwrap();
    let defaults = TopicDefaults::from_config(&config);
    let c = effective(&defaults, &overrides(&[("message.timestamp.after.max.ms", "0")])).unwrap();
    assert_eq!(c.timestamps, TimestampBounds { before_max_ms: 60_000, after_max_ms: 0 });
    assert_eq!((c.cleanup_policy.as_str(), c.log.cleanup_compact), ("compact", true));
    assert!(!c.log.cleanup_delete, "log.cleanup.policy=compact does not delete");
    let c = effective(&defaults, &overrides(&[("cleanup.policy", "delete")])).unwrap();
    assert!(c.log.cleanup_delete && !c.log.cleanup_compact);
    assert_eq!(builtin().timestamps, TimestampBounds::default());
    assert_eq!(builtin().cleanup_policy, "delete");
}

/// The README's row of a topic config, rendered from the table.
fn readme_row(row: &TopicConfig) -> String {
    let k = &row.key;
    let rule = match k.valid {
        Valid::Any if k.config_type == ConfigType::Boolean => "true or false".to_owned(),
        Valid::Any if k.name == "retention.bytes" => "any; negative = no limit".to_owned(),
        Valid::Any => "any".to_owned(),
        Valid::AtLeast(n) => format!(">= {n}"),
        Valid::OneOf(values) => values.join(", "),
        Valid::ListOf(values) => format!("items of {}", values.join(", ")),
        Valid::Fraction => "0 to 1".to_owned(),
        Valid::Between(a, b) => format!("{a} to {b}"),
        Valid::GzipLevel => "1 to 9, or -1".to_owned(),
        Valid::ThrottledReplicas => "`*` or partition:broker items".to_owned(),
    };
    let default = match k.default {
        "9223372036854775807" => "2^63-1",
        "" => "empty",
        d => d,
    };
    let broker = row.broker.map_or_else(|| "none".to_owned(), |b| format!("`{b}`"));
    format!(
        "| `{}` | {} | {rule} | {default} | {broker} | {} |",
        k.name,
        k.config_type.name(),
        row.note
    )
}

#[test]
fn readme_lists_the_table_as_it_is() {
    let readme = include_str!("../../../README.md");
    let header = "| topic config | type | Kafka's rule | default | broker property | in Sluice |";
    let shown: Vec<&str> = readme
        .lines()
        .skip_while(|l| *l != header)
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .collect();
    let want: Vec<String> = TOPIC_CONFIGS.iter().map(readme_row).collect();
    if shown != want {
        let path = std::env::temp_dir().join("sluice-readme-topic-configs.md");
        std::fs::write(&path, want.join("\n") + "\n").unwrap();
        panic!(
            "README.md's topic config table differs from the table; the table's is in {}",
            path.display()
        );
    }
    for row in BROKER_CONFIGS {
        assert!(readme.contains(row.name), "README.md lacks {}", row.name);
    }
}

#[test]
fn a_catalog_with_an_8_tib_index_setting_still_opens() {
    use crate::topics::Topics;
    let dir = tempfile::tempdir().unwrap();
    let defaults = TopicDefaults::from_config(&Config::default());
    {
        let topics = Topics::load(dir.path(), defaults.clone()).unwrap();
        let cfg = overrides(&[("segment.index.bytes", "4096"), ("retention.ms", "1000")]);
        topics.create("old", 1, 1, cfg, false).unwrap();
        topics.close_all();
    }
    // As an older broker, which took any u64, would have written it.
    let path = dir.path().join("topics.catalog");
    let text = std::fs::read_to_string(&path).unwrap();
    let body = &text[..text.rfind("crc ").unwrap()];
    let body = body.replace("segment.index.bytes=4096", "segment.index.bytes=8796093022208");
    std::fs::write(&path, format!("{body}crc {:08x}\n", crc32fast::hash(body.as_bytes()))).unwrap();
    let topics = Topics::load(dir.path(), defaults).unwrap();
    let t = topics.get("old").unwrap();
    assert_eq!(t.overrides, overrides(&[("retention.ms", "1000")]));
    assert_eq!(topics.effective_config(&t).log.segment_index_bytes, 10 << 20);
}

#[test]
fn segment_jitter_is_below_its_bound_stable_and_spread_over_partitions() {
    use std::path::PathBuf;
    let defaults = TopicDefaults::from_config(&Config::default());
    let o = overrides(&[("segment.jitter.ms", "100000"), ("segment.ms", "600")]);
    let log = effective(&defaults, &o).unwrap().log;
    let mut seen = HashSet::new();
    for p in 0..50 {
        let dir = PathBuf::from(format!("/data/orders-{p}"));
        let j = log.roll_jitter_ms(&dir, 0);
        assert!((0..600).contains(&j), "below min(jitter, segment.ms): {j}");
        assert_eq!(j, log.roll_jitter_ms(&dir, 0), "the same after a restart");
        seen.insert(j);
    }
    assert!(seen.len() > 25, "partitions created together roll apart: {seen:?}");
    assert_eq!(builtin().log.roll_jitter_ms(std::path::Path::new("/data/orders-0"), 0), 0);
}

#[test]
fn a_segment_rolls_early_by_its_jitter() {
    use crate::storage::testing::batch;
    use crate::storage::PartitionLog;
    let root = tempfile::tempdir().unwrap();
    let defaults = TopicDefaults::from_config(&Config::default());
    let o = overrides(&[("segment.jitter.ms", "60000"), ("segment.ms", "60000")]);
    let config = effective(&defaults, &o).unwrap().log;
    // A partition whose first segment rolls at least 59.5 s early: within half a second.
    let dir = (0..)
        .map(|p| root.path().join(format!("t-{p}")))
        .find(|d| config.roll_jitter_ms(d, 0) >= 59_500)
        .unwrap();
    let log = PartitionLog::open(&dir, config.clone()).unwrap();
    log.append(&batch(0, 1, 10)).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(600));
    log.append(&batch(0, 1, 10)).unwrap();
    assert_eq!(log.segment_base_offsets().len(), 2, "rolled by segment.ms less the jitter");
    let no_jitter = PartitionLog::open(
        &root.path().join("plain"),
        crate::storage::LogConfig { segment_jitter_ms: 0, ..config },
    )
    .unwrap();
    no_jitter.append(&batch(0, 1, 10)).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(600));
    no_jitter.append(&batch(0, 1, 10)).unwrap();
    assert_eq!(no_jitter.segment_base_offsets().len(), 1);
}
