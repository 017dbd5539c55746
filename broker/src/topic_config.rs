//! The one table of topic configs: every topic config Kafka 4.x documents, each with
//! Kafka's name, type, bounds and allowed values, the broker property it inherits from,
//! its documentation line, whether Sluice acts on it, and how it maps onto a topic's
//! [`EffectiveConfig`]: a field Sluice acts on ([`Mapping::Field`]), or a value that has
//! no effect on a single node without a remote tier and is only validated, kept and shown
//! ([`Mapping::Kept`]: `preallocate`, the throttled replica lists, `local.retention.ms`).
//! A name not in the table is refused as Kafka refuses it, INVALID_CONFIG.
//!
//! Every path that reads or writes a topic config goes through [`TOPIC_CONFIGS`]:
//! CreateTopics, AlterConfigs and IncrementalAlterConfigs ([`validate`], and
//! [`alter_list`] for APPEND and SUBTRACT), the catalog ([`retain_valid`], [`effective`]),
//! DescribeConfigs ([`config_value`], the types, synonyms and docs), and the broker's own
//! properties (`config.rs` parses `log.segment.bytes` with the row of `segment.bytes`).
//! So a value cannot be accepted in one path and refused in another.
//!
//! Invariants:
//! - A value is checked in two steps: Kafka's rule ([`Valid`], with its type: an INT must
//!   fit in an i32, as Java's `Integer.parseInt`), then what Sluice supports ([`Support`]).
//!   Both refusals are INVALID_CONFIG.
//! - Kafka's defaults (`ConfigKey::default`) are Sluice's built-in defaults; a unit test
//!   checks that the effective config of a topic without overrides renders them, and
//!   another that the README's table is this one, row by row.
//! - Internal topics ([`crate::topic_rules::is_internal`]) never take a config that deletes
//!   their records: [`check_internal`].
//!
//! The rows are in `topic_config/table.rs`, with Kafka 4.0's bounds. So `segment.bytes`
//! (and `log.segment.bytes`) is at least 1 MiB, as KIP-1030 raised it from 3.9's 14 bytes:
//! at 14 every batch rolls a segment, and each segment holds descriptors and mappings, so
//! one client could exhaust the broker's. Tests and small-segment setups use the operator
//! property `sluice.internal.log.segment.bytes` (at least 14), as Kafka 4.0's tests use
//! `internal.segment.bytes`; it is no topic config, and replaces the segment size of every
//! topic's log ([`TopicDefaults::storage_log`]) while DescribeConfigs still shows
//! `segment.bytes` as configured.

use std::collections::{BTreeMap, HashSet};

use thiserror::Error;

use crate::storage::LogConfig;
use crate::topic_rules::{is_internal, TopicError};

mod value;

use value::distinct_items;
pub use value::{list_items, ConfigKey, ConfigType, Invalid, Support, Valid, Value};

/// How a topic config maps onto the effective config.
#[derive(Debug, Clone, Copy)]
pub enum Mapping {
    /// A setting Sluice acts on, in a field of [`EffectiveConfig`].
    Field {
        /// Sets the field to a value `parse` returned.
        apply: fn(&mut EffectiveConfig, &Value),
        /// The field as DescribeConfigs shows it.
        render: fn(&EffectiveConfig) -> String,
    },
    /// A setting only kept and shown ([`EffectiveConfig::kept`]).
    Kept,
}

/// A topic config: its Kafka definition, the broker property it inherits from, what Sluice
/// supports of it, and how it maps onto the effective config.
#[derive(Debug, Clone, Copy)]
pub struct TopicConfig {
    /// Kafka's definition.
    pub key: ConfigKey,
    /// The broker property it falls back to (its DescribeConfigs synonym), with the same
    /// rule; `None` where Kafka has none (`remote.storage.enable`).
    pub broker: Option<&'static str>,
    /// Whether Kafka defines a default for that broker property: DescribeConfigs lists
    /// the property as a DEFAULT_CONFIG synonym only then (not `log.retention.ms`, whose
    /// default comes from `log.retention.hours`).
    pub broker_default: bool,
    /// What Sluice supports of the values Kafka's rule allows.
    pub support: Support,
    /// Whether Sluice acts on the value (false: accepted, kept and shown only, as it has no
    /// effect on a single node without a remote tier).
    pub honoured: bool,
    /// What Sluice does with it, as the README's table says.
    pub note: &'static str,
    /// Where the value goes.
    pub mapping: Mapping,
}

impl TopicConfig {
    /// Kafka's name.
    pub fn name(&self) -> &'static str {
        self.key.name
    }

    /// Sets the config in `c` to `value`, a value [`Self::parse`] returned.
    pub fn apply(&self, c: &mut EffectiveConfig, value: &Value) {
        match self.mapping {
            Mapping::Field { apply, .. } => apply(c, value),
            Mapping::Kept => {
                c.kept.insert(self.name(), value.render());
            }
        }
    }

    /// The config's value in `c`, as DescribeConfigs shows it.
    pub fn render(&self, c: &EffectiveConfig) -> String {
        match self.mapping {
            Mapping::Field { render, .. } => render(c),
            Mapping::Kept => {
                c.kept.get(self.name()).map_or_else(|| self.key.default.to_owned(), Clone::clone)
            }
        }
    }

    /// Parses a value: Kafka's rule, then Sluice's support.
    ///
    /// # Errors
    /// [`Invalid`] saying what is wrong.
    pub fn parse(&self, value: &str) -> Result<Value, Invalid> {
        let parsed = self.key.parse(value)?;
        match self.support {
            Support::All => Ok(parsed),
            Support::Only(values, reason) if !values.contains(&parsed.render().as_str()) => {
                Err(Invalid::Unsupported(reason))
            }
            Support::NonEmpty(reason) if parsed == Value::List(vec![]) => {
                Err(Invalid::Unsupported(reason))
            }
            _ => Ok(parsed),
        }
    }
}

/// The row of a topic config.
pub fn topic_config(name: &str) -> Option<&'static TopicConfig> {
    TOPIC_CONFIGS.iter().find(|c| c.name() == name)
}

/// The topic config whose broker synonym is `property` (`log.segment.bytes`).
pub fn by_broker_name(property: &str) -> Option<&'static TopicConfig> {
    TOPIC_CONFIGS.iter().find(|c| c.broker == Some(property))
}

/// The row of a broker-only property.
pub fn broker_config(name: &str) -> Option<&'static ConfigKey> {
    BROKER_CONFIGS.iter().find(|c| c.name == name)
}

/// A double as Java's `Double.toString` writes it for the values configs take: `0.5`,
/// `1.0`.
pub fn render_double(d: f64) -> String {
    if d.fract() == 0.0 && d.abs() < 1e7 {
        format!("{d:.1}")
    } else {
        d.to_string()
    }
}

/// Kafka's name of a timestamp type.
pub fn timestamp_type_name(t: TimestampType) -> &'static str {
    match t {
        TimestampType::CreateTime => "CreateTime",
        TimestampType::LogAppendTime => "LogAppendTime",
    }
}

/// Timestamps a topic stores: as the producer set them, or the broker's append time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampType {
    /// `CreateTime`: the producer's timestamp.
    CreateTime,
    /// `LogAppendTime`: the broker overwrites it on append.
    LogAppendTime,
}

/// Broker-wide defaults a topic's effective config starts from.
#[derive(Debug, Clone)]
pub struct TopicDefaults {
    /// The log settings.
    pub log: LogConfig,
    /// `message.max.bytes`.
    pub max_message_bytes: i32,
    /// `log.message.timestamp.type`.
    pub timestamp_type: TimestampType,
    /// `sluice.internal.log.segment.bytes`: the segment size of every topic's log, whatever
    /// its `segment.bytes`.
    pub internal_segment_bytes: Option<u64>,
    /// `log.cleanup.policy`, items joined by commas.
    pub cleanup_policy: String,
    /// `log.message.timestamp.before.max.ms` and `.after.max.ms`.
    pub timestamps: TimestampBounds,
    /// Broker defaults of the configs Sluice only keeps ([`Mapping::Kept`]).
    pub kept: BTreeMap<&'static str, String>,
    /// `sluice.log.open.segments.max`, resolved.
    pub open_segments_max: usize,
}

impl TopicDefaults {
    /// The settings a topic's partition logs run with: `c.log`, with the segment size of
    /// `sluice.internal.log.segment.bytes` when the operator set it. [`crate::topics`]
    /// opens and reconfigures every log with this.
    pub fn storage_log(&self, c: &EffectiveConfig) -> LogConfig {
        let mut log = c.log.clone();
        if let Some(bytes) = self.internal_segment_bytes {
            log.segment_bytes = bytes;
        }
        log
    }
}

/// A topic's settings after overrides.
#[derive(Debug, Clone)]
pub struct EffectiveConfig {
    /// Log settings.
    pub log: LogConfig,
    /// `max.message.bytes`.
    pub max_message_bytes: i32,
    /// `message.timestamp.type`.
    pub timestamp_type: TimestampType,
    /// `cleanup.policy`, items joined by commas.
    pub cleanup_policy: String,
    /// `message.timestamp.before.max.ms` and `.after.max.ms`.
    pub timestamps: TimestampBounds,
    /// The values of the configs Sluice only keeps, where an override or the broker
    /// property set them (otherwise Kafka's default applies).
    pub kept: BTreeMap<&'static str, String>,
}

impl EffectiveConfig {
    /// The config of a topic without overrides.
    pub fn from_defaults(defaults: &TopicDefaults) -> Self {
        EffectiveConfig {
            log: defaults.log.clone(),
            max_message_bytes: defaults.max_message_bytes,
            timestamp_type: defaults.timestamp_type,
            cleanup_policy: defaults.cleanup_policy.clone(),
            timestamps: defaults.timestamps,
            kept: defaults.kept.clone(),
        }
    }
}

/// How far a CreateTime record's timestamp may be from the broker's clock
/// (`message.timestamp.before.max.ms`, `message.timestamp.after.max.ms`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimestampBounds {
    /// Most milliseconds before the broker's clock.
    pub before_max_ms: i64,
    /// Most milliseconds after the broker's clock.
    pub after_max_ms: i64,
}

impl Default for TimestampBounds {
    /// Kafka 4.0's defaults: any age, at most one hour ahead (KIP-1030).
    fn default() -> Self {
        TimestampBounds { before_max_ms: i64::MAX, after_max_ms: 3_600_000 }
    }
}

impl TimestampBounds {
    /// The lowest and highest timestamp a record appended at `now` may have.
    pub fn range(&self, now: i64) -> (i64, i64) {
        (now.saturating_sub(self.before_max_ms), now.saturating_add(self.after_max_ms))
    }
}

fn invalid(key: &str, value: &str, why: Invalid) -> TopicError {
    TopicError::InvalidConfig {
        key: shown(key).into(),
        value: shown(value).into(),
        reason: why.to_string(),
    }
}

/// Most bytes of a refused name or value an error message repeats.
const SHOWN_BYTES: usize = 256;

/// `s`, cut at 256 bytes (on a character boundary): a refused value of 100 MiB is
/// not copied into the error and its response.
pub fn shown(s: &str) -> &str {
    if s.len() <= SHOWN_BYTES {
        return s;
    }
    let mut end = SHOWN_BYTES;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Applies topic overrides to the broker defaults, validating each.
///
/// # Errors
/// [`TopicError::InvalidConfig`] for an unknown name or a bad value.
pub fn effective(
    defaults: &TopicDefaults,
    overrides: &BTreeMap<String, String>,
) -> Result<EffectiveConfig, TopicError> {
    let mut c = EffectiveConfig::from_defaults(defaults);
    for (k, v) in overrides {
        let row = topic_config(k).ok_or_else(|| invalid(k, v, Invalid::Unknown))?;
        let value = row.parse(v).map_err(|why| invalid(k, v, why))?;
        row.apply(&mut c, &value);
    }
    Ok(c)
}

/// [`effective`], replacing each value in `overrides` by its canonical rendering (trimmed,
/// repeats of a list item dropped): what is stored and written to the catalog is what
/// DescribeConfigs shows, and a value padded to megabytes is not kept.
///
/// # Errors
/// [`TopicError::InvalidConfig`].
pub fn canonical(
    defaults: &TopicDefaults,
    overrides: &mut BTreeMap<String, String>,
) -> Result<EffectiveConfig, TopicError> {
    let mut c = EffectiveConfig::from_defaults(defaults);
    for (k, v) in overrides.iter_mut() {
        let row = topic_config(k).ok_or_else(|| invalid(k, v, Invalid::Unknown))?;
        let value = row.parse(v).map_err(|why| invalid(k, v, why))?;
        row.apply(&mut c, &value);
        *v = value.render();
    }
    Ok(c)
}

/// [`canonical`], then for an internal topic [`check_internal`]: what every change a
/// client asks for (CreateTopics, AlterConfigs, IncrementalAlterConfigs) must pass.
///
/// # Errors
/// [`TopicError::InvalidConfig`], [`TopicError::PolicyViolation`].
pub fn validate(
    topic: &str,
    defaults: &TopicDefaults,
    overrides: &mut BTreeMap<String, String>,
) -> Result<EffectiveConfig, TopicError> {
    let c = canonical(defaults, overrides)?;
    check_internal(topic, &c)?;
    Ok(c)
}

/// The overrides of a stored catalog entry that the table accepts. A value stored by an
/// older broker that no longer passes (an 8 TiB `segment.index.bytes`) is dropped with a
/// warning, so that the topic opens on the default instead of stopping the start.
pub fn retain_valid(topic: &str, overrides: BTreeMap<String, String>) -> BTreeMap<String, String> {
    overrides
        .into_iter()
        .filter(|(k, v)| match topic_config(k).map(|row| row.parse(v)) {
            Some(Ok(_)) => true,
            refused => {
                let reason = match refused {
                    Some(Err(why)) => why,
                    _ => Invalid::Unknown,
                };
                tracing::warn!(topic, key = %k, value = %v, %reason, "stored topic config refused; the default applies");
                false
            }
        })
        .collect()
}

/// Value of a topic config as DescribeConfigs reports it (override or default); empty for
/// an unknown name.
pub fn config_value(c: &EffectiveConfig, name: &str) -> String {
    topic_config(name).map_or_else(String::new, |row| row.render(c))
}

/// Refuses, for an internal topic, a config under which the broker would delete records it
/// still needs: finite retention by time or size, or a cleanup policy other than `compact`.
///
/// Kafka has no such rule (it relies on operators); a refusal here is what Kafka answers
/// when its create or alter policy refuses a change: POLICY_VIOLATION.
///
/// # Errors
/// [`TopicError::PolicyViolation`] naming the config.
pub fn check_internal(topic: &str, c: &EffectiveConfig) -> Result<(), TopicError> {
    if !is_internal(topic) {
        return Ok(());
    }
    let refuse = |reason: String| Err(TopicError::PolicyViolation { topic: topic.into(), reason });
    if c.log.retention_ms != -1 {
        return refuse(format!(
            "retention.ms={} would delete its records: it must stay -1",
            c.log.retention_ms
        ));
    }
    if c.log.retention_bytes >= 0 {
        return refuse(format!(
            "retention.bytes={} would delete its records: it must stay -1",
            c.log.retention_bytes
        ));
    }
    if c.cleanup_policy.is_empty() || c.cleanup_policy.split(',').any(|p| p != "compact") {
        return refuse(format!(
            "cleanup.policy={} would delete its records: it must stay compact",
            c.cleanup_policy
        ));
    }
    Ok(())
}

/// IncrementalAlterConfigs APPEND (`append`) or SUBTRACT on the LIST value `base` of
/// `key`: the items of `base` then those of `change` not in it, or `base` less every item
/// of `change`. Linear in the items (hash sets, no search per item); an APPEND item the
/// config's rule refuses ends it at once, so memory grows with the distinct items the rule
/// allows, and a SUBTRACT keeps only the items of `base`.
///
/// # Errors
/// [`Invalid`] for an APPEND item the rule refuses.
pub fn alter_list(
    key: &ConfigKey,
    base: &str,
    change: &str,
    append: bool,
) -> Result<String, Invalid> {
    let mut items = distinct_items(base, Valid::Any)?;
    if append {
        let mut seen: HashSet<&str> = items.iter().copied().collect();
        for item in distinct_items(change, key.valid)? {
            if seen.insert(item) {
                items.push(item);
            }
        }
    } else {
        let mut gone: HashSet<&str> = HashSet::new();
        let present: HashSet<&str> = items.iter().copied().collect();
        gone.extend(list_items(change).filter(|i| present.contains(i)));
        items.retain(|i| !gone.contains(i));
    }
    Ok(items.join(","))
}

mod table;

pub use table::{
    BROKER_CONFIGS, CLEANUP_POLICIES, COMPRESSION_TYPES, TIMESTAMP_TYPES, TOPIC_CONFIGS,
};

#[cfg(test)]
mod tests;
