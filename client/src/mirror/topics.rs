//! Which source topics are mirrored, under what name, and making the target match:
//! missing topics created with the source's partition count and the topic configs that
//! apply, partitions added where the source has more.
//!
//! Loops: a mirror never copies a topic into itself (same cluster, same name), never
//! copies a checkpoint topic (its own or an opposite mirror's), never copies a topic
//! whose name matches `--exclude`, and never copies another mirror's copies: a
//! checkpoint topic `<P>sluice-mirror.offset-syncs` in the source says that a mirror
//! writes topics named `<P>...` into it, and those are skipped (as MirrorMaker 2 skips
//! remote topics). So two mirrors in opposite directions with prefixes `A.` (A→B) and
//! `B.` (B→A) do not loop. Without a prefix a copy cannot be told from its original, so
//! mirrors without prefixes in opposite directions must exclude each other's topics.

use std::collections::{BTreeMap, HashMap};

use regex::Regex;

use super::{checkpoint, MirrorError};
use crate::admin::{Admin, ConfigResource, ConfigSource, NewTopic, TopicListing};
use crate::error::ClientError;

/// Topic configs never copied: the target must keep the source's timestamps (so not
/// `LogAppendTime`, and no bound that refuses old ones), and replication and throttling
/// are the target cluster's own business.
const NOT_COPIED: &[&str] = &[
    "message.timestamp.type",
    "message.timestamp.difference.max.ms",
    "message.timestamp.before.max.ms",
    "message.timestamp.after.max.ms",
    "min.insync.replicas",
    "unclean.leader.election.enable",
    "leader.replication.throttled.replicas",
    "follower.replication.throttled.replicas",
];

/// The topics a mirror copies and the names they get on the target.
#[derive(Debug, Clone)]
pub struct TopicFilter {
    include: Regex,
    exclude: Option<Regex>,
    prefix: String,
}

impl TopicFilter {
    /// Topics whose whole name matches `include` and not `exclude`, renamed to
    /// `prefix` + name on the target.
    ///
    /// # Errors
    /// [`MirrorError::Config`] for a pattern that is not a valid regex.
    pub fn new(include: &str, exclude: Option<&str>, prefix: &str) -> Result<Self, MirrorError> {
        let whole = |name: &str, re: &str| {
            Regex::new(&format!("^(?:{re})$")).map_err(|e| MirrorError::Config {
                name: name.into(),
                value: re.into(),
                reason: e.to_string(),
            })
        };
        Ok(TopicFilter {
            include: whole("topics", include)?,
            exclude: exclude.map(|re| whole("exclude", re)).transpose()?,
            prefix: prefix.to_string(),
        })
    }

    /// Whether `name` is mirrored. Names starting with `__` are the cluster's own
    /// (offsets, transactions) and never are, nor are mirrors' checkpoint topics.
    pub fn matches(&self, name: &str) -> bool {
        !name.starts_with("__")
            && !checkpoint::is_checkpoint_topic(name)
            && self.include.is_match(name)
            && !self.exclude.as_ref().is_some_and(|re| re.is_match(name))
    }

    /// The name of `source` on the target.
    pub fn target_name(&self, source: &str) -> String {
        format!("{}{source}", self.prefix)
    }

    /// Whether no topic is renamed.
    pub fn renames(&self) -> bool {
        !self.prefix.is_empty()
    }
}

/// A source topic being mirrored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MirroredTopic {
    /// Its name on the source.
    pub source: String,
    /// Its name on the target.
    pub target: String,
    /// Its partition count on the source (the target has at least as many).
    pub partitions: usize,
}

/// The source topics that match `filter`, by name.
///
/// # Errors
/// The source's metadata error.
pub async fn matching(
    source: &Admin,
    filter: &TopicFilter,
) -> Result<Vec<TopicListing>, MirrorError> {
    let topics = source
        .list_topics(false)
        .await
        .map_err(|e| MirrorError::client("list source topics", e))?;
    let copies = copy_prefixes(topics.iter().map(|t| t.name.as_str()));
    Ok(topics
        .into_iter()
        .filter(|t| filter.matches(&t.name))
        .filter(|t| !copies.iter().any(|p| t.name.starts_with(p.as_str())))
        .collect())
}

/// The prefixes other mirrors write into a cluster whose topics are `names`: each
/// non-empty `<P>` of a checkpoint topic `<P>sluice-mirror.offset-syncs`.
fn copy_prefixes<'a>(names: impl Iterator<Item = &'a str>) -> Vec<String> {
    names
        .filter_map(|n| n.strip_suffix(checkpoint::SUFFIX))
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .collect()
}

/// Makes the target hold every topic of `wanted` with at least the source's partitions,
/// and returns those that are ready. A topic the target refuses is logged and left out,
/// to be tried again at the next refresh.
///
/// # Errors
/// A metadata error of either cluster.
pub async fn ensure_targets(
    source: &Admin,
    target: &Admin,
    filter: &TopicFilter,
    wanted: &[TopicListing],
) -> Result<Vec<MirroredTopic>, MirrorError> {
    let existing: HashMap<String, usize> = target
        .list_topics(false)
        .await
        .map_err(|e| MirrorError::client("list target topics", e))?
        .into_iter()
        .map(|t| (t.name, t.partitions))
        .collect();
    let mut ready = Vec::new();
    let mut create = Vec::new();
    let mut grow = Vec::new();
    for t in wanted {
        let m = MirroredTopic {
            source: t.name.clone(),
            target: filter.target_name(&t.name),
            partitions: t.partitions,
        };
        match existing.get(&m.target) {
            None => create.push(m),
            Some(&n) if n < m.partitions => grow.push(m),
            Some(_) => ready.push(m),
        }
    }
    if !create.is_empty() {
        let configs = copied_configs(source, &create).await;
        let new: Vec<NewTopic> = create
            .iter()
            .map(|m| {
                let mut topic = NewTopic::new(&m.target)
                    .partitions(i32::try_from(m.partitions).unwrap_or(i32::MAX));
                for (name, value) in configs.get(&m.source).into_iter().flatten() {
                    topic = topic.config(name, value);
                }
                topic
            })
            .collect();
        let outcomes = target
            .create_topics(&new, false)
            .await
            .map_err(|e| MirrorError::client("create target topics", e))?;
        let outcomes: HashMap<String, Result<(), ClientError>> = outcomes.into_iter().collect();
        for m in create {
            match &outcomes[&m.target] {
                Ok(()) => {
                    tracing::info!(source = %m.source, target = %m.target, partitions = m.partitions, "created target topic");
                    ready.push(m);
                }
                Err(e)
                    if e.code()
                        == Some(sluice_protocol::error_code::ErrorCode::TOPIC_ALREADY_EXISTS) =>
                {
                    ready.push(m)
                }
                Err(e) => {
                    tracing::warn!(topic = %m.target, error = %e, "target refused the topic; retried at the next refresh")
                }
            }
        }
    }
    if !grow.is_empty() {
        let totals: Vec<(String, i32)> = grow
            .iter()
            .map(|m| (m.target.clone(), i32::try_from(m.partitions).unwrap_or(i32::MAX)))
            .collect();
        let outcomes = target
            .create_partitions(&totals, false)
            .await
            .map_err(|e| MirrorError::client("add target partitions", e))?;
        let outcomes: HashMap<String, Result<(), ClientError>> = outcomes.into_iter().collect();
        for m in grow {
            match &outcomes[&m.target] {
                Ok(()) => {
                    tracing::info!(topic = %m.target, partitions = m.partitions, "added target partitions");
                    ready.push(m);
                }
                Err(e) => {
                    tracing::warn!(topic = %m.target, error = %e, "target refused new partitions; retried at the next refresh")
                }
            }
        }
    }
    ready.sort_by(|a, b| a.source.cmp(&b.source));
    Ok(ready)
}

/// The source topics' overrides that apply on the target, by source topic. A topic
/// whose configs cannot be read is created with the target's defaults, and said so.
async fn copied_configs(
    source: &Admin,
    topics: &[MirroredTopic],
) -> BTreeMap<String, Vec<(String, String)>> {
    let resources: Vec<ConfigResource> =
        topics.iter().map(|m| ConfigResource::topic(&m.source)).collect();
    let described = match source.describe_configs(&resources).await {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!(error = %e, "source topic configs unreadable; target defaults used");
            return BTreeMap::new();
        }
    };
    let mut out = BTreeMap::new();
    for (resource, entries) in described {
        match entries {
            Ok(entries) => {
                let copied = entries
                    .into_iter()
                    .filter(|e| e.source == ConfigSource::DynamicTopic && !e.read_only)
                    .filter(|e| !NOT_COPIED.contains(&e.name.as_str()))
                    .filter_map(|e| Some((e.name, e.value?)))
                    .collect();
                out.insert(resource.name, copied);
            }
            Err(e) => {
                tracing::warn!(topic = %resource.name, error = %e, "source topic configs unreadable; target defaults used")
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_names_match_excludes_win_and_internal_topics_never_match() {
        let f = TopicFilter::new("orders|pay.*", Some(r"B\..*"), "A.").unwrap();
        assert!(f.matches("orders"));
        assert!(!f.matches("orders2"), "the whole name must match");
        assert!(f.matches("payments"));
        assert!(!f.matches("B.orders"), "excluded");
        let all = TopicFilter::new(".*", None, "").unwrap();
        assert!(!all.matches("__consumer_offsets"));
        assert!(!all.matches("sluice-mirror.offset-syncs"), "a checkpoint topic");
        assert!(!all.matches("B.sluice-mirror.offset-syncs"), "the opposite mirror's");
        assert_eq!(f.target_name("orders"), "A.orders");
        assert!(f.renames() && !TopicFilter::new("x", None, "").unwrap().renames());
        let bad = TopicFilter::new("(", None, "").unwrap_err();
        assert!(bad.to_string().contains("topics"), "{bad}");
    }

    #[test]
    fn opposite_mirrors_with_excluded_prefixes_do_not_copy_back() {
        // A→B renames to "A.", B→A to "B."; each excludes what the other wrote.
        let a_to_b = TopicFilter::new(".*", Some(r"B\..*"), "A.").unwrap();
        let b_to_a = TopicFilter::new(".*", Some(r"A\..*"), "B.").unwrap();
        let on_b = a_to_b.target_name("orders");
        assert!(!b_to_a.matches(&on_b), "B→A does not copy A's copy back");
        let on_a = b_to_a.target_name("events");
        assert!(!a_to_b.matches(&on_a));
    }

    #[test]
    fn another_mirrors_checkpoint_names_the_prefix_of_its_copies() {
        let names =
            ["orders", "A.orders", "A.sluice-mirror.offset-syncs", "sluice-mirror.offset-syncs"];
        assert_eq!(
            copy_prefixes(names.into_iter()),
            vec!["A.".to_string()],
            "not the empty prefix"
        );
    }
}
