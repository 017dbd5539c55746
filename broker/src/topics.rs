//! The topic catalog: names, topic ids, partition counts and per-topic config overrides,
//! durable in `<data_dir>/topics.catalog` (its format in [`catalog`]), and the partitions
//! of every topic.
//!
//! The file is rewritten whole (temporary file, fsync, rename, directory fsync) on every
//! change, once for a batch of topics created together. Partition directories are
//! `<name>-<index>`, as Kafka's. A deleted topic's directories are renamed to
//! `<name>-<index>.<id>-delete` first and removed afterwards, so a crash in between leaves
//! nothing that looks like a partition.
//!
//! A start opens only the partitions a crash left to recover: after a clean shutdown (the
//! data directory's marker) none, after a crash those the recovery journal names (every
//! partition written since the last clean shutdown). Every other partition opens on first
//! use.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use thiserror::Error;
use uuid::Uuid;

use crate::partition::{LogOpener, Partition};
use crate::storage::io::RealIo;
use crate::storage::{
    durable, CleanShutdown, LogConfig, PartitionLog, RecoveryJournal, SegmentHandles, StorageError,
    CLEAN_SHUTDOWN_MARKER,
};
use crate::topic_config::{canonical, check_internal, retain_valid, validate};
// The config functions moved to `topic_config`; re-exported for existing callers.
pub use crate::topic_config::{config_value, effective, EffectiveConfig, TopicDefaults};

/// Topics the broker itself writes; clients may read them but not produce to them.
pub const INTERNAL_TOPICS: &[&str] = &["__consumer_offsets", "__transaction_state"];

/// Whether `name` is one of the broker's internal topics.
pub fn is_internal(name: &str) -> bool {
    INTERNAL_TOPICS.contains(&name)
}

/// What clients may not do to an internal topic: each would lose what the broker keeps
/// there (deleting `__consumer_offsets` or its records erases every group's committed
/// offsets at the next start).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProtectedOperation {
    /// CreateTopics (auto-creation skips them): the broker creates its internal topics
    /// itself.
    Create,
    /// DeleteTopics.
    Delete,
    /// DeleteRecords.
    DeleteRecords,
    /// CreatePartitions.
    AddPartitions,
}

impl ProtectedOperation {
    fn verb(self) -> &'static str {
        match self {
            ProtectedOperation::Create => "create",
            ProtectedOperation::Delete => "delete",
            ProtectedOperation::DeleteRecords => "delete records of",
            ProtectedOperation::AddPartitions => "add partitions to",
        }
    }
}

/// Refuses `operation` on an internal topic. Creation is refused also for a name that
/// differs from an internal one only by `.` versus `_` (`__consumer.offsets`): it would
/// collide with the internal topic, which the broker could then not create.
///
/// # Errors
/// [`TopicError::Internal`] when `name` is one of [`INTERNAL_TOPICS`] (or, to create, one
/// of their look-alikes).
pub fn refuse_if_internal(name: &str, operation: ProtectedOperation) -> Result<(), TopicError> {
    let look_alike = || {
        operation == ProtectedOperation::Create
            && INTERNAL_TOPICS.iter().any(|t| normal_name(t) == normal_name(name))
    };
    if is_internal(name) || look_alike() {
        return Err(TopicError::Internal { topic: name.to_owned(), operation });
    }
    Ok(())
}

/// Longest legal topic name (Kafka's limit).
pub const MAX_TOPIC_NAME: usize = 249;

/// Most partitions one CreateTopics or CreatePartitions request may add: Kafka's controller
/// refuses larger requests with POLICY_VIOLATION. Each partition holds open files and
/// mappings, so without a bound one request could exhaust the broker's descriptors.
pub const MAX_PARTITIONS_PER_REQUEST: i64 = 10_000;

/// The POLICY_VIOLATION message for a request over [`MAX_PARTITIONS_PER_REQUEST`].
pub fn too_many_partitions_message() -> String {
    format!(
        "excessively large number of partitions per request (at most \
         {MAX_PARTITIONS_PER_REQUEST} new ones)"
    )
}

/// Why a topic operation failed; mapped to Kafka error codes in `error.rs`.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum TopicError {
    /// Name empty, too long, `.`/`..`, or with characters outside `[a-zA-Z0-9._-]`.
    #[error("invalid topic name {name:?}: {reason}")]
    InvalidName {
        /// The name.
        name: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// A topic with this name exists.
    #[error("topic {0} already exists")]
    AlreadyExists(String),
    /// A topic exists whose name differs only by `.` versus `_` (Kafka refuses these:
    /// the two would share metric names).
    #[error("topic {name:?} collides with existing topic {existing:?}")]
    Collides {
        /// The name asked for.
        name: String,
        /// The existing topic.
        existing: String,
    },
    /// No such topic.
    #[error("topic {0} does not exist")]
    Unknown(String),
    /// A partition count below 1 (or not above the current one, when adding).
    #[error("invalid partition count {count} for topic {topic}: {reason}")]
    InvalidPartitions {
        /// The topic.
        topic: String,
        /// The requested count.
        count: i32,
        /// What is wrong.
        reason: &'static str,
    },
    /// A replication factor other than 1 (or -1, the default) on a single node.
    #[error("replication factor {0} is not possible on a single node")]
    InvalidReplicationFactor(i16),
    /// An unknown topic config or a bad value.
    #[error("invalid config {key}={value:?}: {reason}")]
    InvalidConfig {
        /// The config name.
        key: String,
        /// The value.
        value: String,
        /// What is wrong.
        reason: String,
    },
    /// A client asked for something that would lose an internal topic's data.
    #[error("cannot {} internal topic {topic}", operation.verb())]
    Internal {
        /// The topic.
        topic: String,
        /// What was asked.
        operation: ProtectedOperation,
    },
    /// A config change an internal topic refuses: it would delete records the broker
    /// needs (POLICY_VIOLATION).
    #[error("topic {topic} is internal: {reason}")]
    PolicyViolation {
        /// The topic.
        topic: String,
        /// Which config, and why.
        reason: String,
    },
    /// The storage engine failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// A topic to create, as CreateTopics and auto-creation ask for it.
#[derive(Debug, Clone)]
pub struct NewTopic {
    /// Its name.
    pub name: String,
    /// Its partition count.
    pub partitions: i32,
    /// Its replication factor (1, or -1 for the default).
    pub replication_factor: i16,
    /// Its config overrides.
    pub overrides: BTreeMap<String, String>,
}

/// A topic: its id, partitions and config overrides.
#[derive(Debug)]
pub struct Topic {
    /// The topic name.
    pub name: String,
    /// The topic id (Metadata v10+, Fetch v13+).
    pub id: Uuid,
    /// Partitions, by index.
    pub partitions: Vec<Arc<Partition>>,
    /// Topic-level config overrides (Kafka topic config names).
    pub overrides: BTreeMap<String, String>,
}

impl Topic {
    /// The partition with this index.
    pub fn partition(&self, index: i32) -> Option<&Arc<Partition>> {
        usize::try_from(index).ok().and_then(|i| self.partitions.get(i))
    }
}

/// Checks a topic name against Kafka's rules.
///
/// # Errors
/// [`TopicError::InvalidName`].
pub fn validate_name(name: &str) -> Result<(), TopicError> {
    let reason = if name.is_empty() {
        "empty"
    } else if name == "." || name == ".." {
        "`.` and `..` are not allowed"
    } else if name.len() > MAX_TOPIC_NAME {
        "longer than 249 characters"
    } else if !name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')) {
        "only ASCII letters, digits, `.`, `_` and `-` are allowed"
    } else {
        return Ok(());
    };
    Err(TopicError::InvalidName { name: name.into(), reason })
}

#[derive(Debug, Default)]
struct Catalog {
    by_name: HashMap<String, Arc<Topic>>,
    by_id: HashMap<Uuid, String>,
    /// Each name with `.` read as `_`, to the topic's name: two names that differ only by
    /// `.` versus `_` collide, and a lookup here keeps creation O(1) in the topic count.
    by_normal_name: HashMap<String, String>,
}

impl Catalog {
    /// Drops `topic` from the indexes beside `by_name`.
    fn forget(&mut self, topic: &Topic) {
        self.by_id.remove(&topic.id);
        let normal = normal_name(&topic.name);
        if self.by_normal_name.get(&normal) == Some(&topic.name) {
            self.by_normal_name.remove(&normal);
        }
    }
}

/// A partition's directory name, `<topic>-<index>` as Kafka's.
fn partition_dir_name(topic: &str, index: i32) -> String {
    format!("{topic}-{index}")
}

/// `name` with `.` read as `_`.
fn normal_name(name: &str) -> String {
    name.replace('.', "_")
}

/// Every topic of the broker.
#[derive(Debug)]
pub struct Topics {
    data_dir: PathBuf,
    defaults: TopicDefaults,
    catalog: RwLock<Catalog>,
    /// Serialises changes (create, delete, alter) and catalog writes.
    change: Mutex<()>,
    /// Catalog writes since start (each rewrites and syncs the whole catalog).
    catalog_writes: AtomicU64,
    /// The one bound on open segment files, shared by every partition.
    segment_handles: Arc<SegmentHandles>,
    /// The partitions written since the last clean shutdown.
    journal: Arc<RecoveryJournal>,
}

impl Topics {
    /// Loads the catalog. The partitions a crash left to recover (those the recovery
    /// journal names, or every one for a data directory without a journal) are opened and
    /// recovered, in parallel, before the broker serves, as in Kafka; every other one
    /// opens on first use (a partition that cannot be opened then answers that use with
    /// its storage error).
    ///
    /// # Errors
    /// An unreadable or corrupt catalog or journal, or a partition to recover that cannot
    /// be opened.
    pub fn load(data_dir: &Path, defaults: TopicDefaults) -> Result<Self, TopicError> {
        fs::create_dir_all(data_dir)
            .map_err(|e| StorageError::io("create data dir", data_dir, e))?;
        remove_deleted_dirs(data_dir);
        let marker = data_dir.join(CLEAN_SHUTDOWN_MARKER);
        let to_recover =
            if marker.exists() { Some(HashSet::new()) } else { RecoveryJournal::read(data_dir)? };
        let recover = |dir_name: &str| to_recover.as_ref().is_none_or(|n| n.contains(dir_name));
        let mut listed = Vec::new();
        for (name, id, count, overrides) in catalog::read(data_dir)? {
            let overrides = retain_valid(&name, overrides);
            let log = defaults.storage_log(&effective(&defaults, &overrides)?);
            listed.push((name, id, count, overrides, log));
        }
        let recovering: Vec<(usize, i32)> = listed
            .iter()
            .enumerate()
            .flat_map(|(t, (name, _, count, _, _))| {
                (0..*count).filter(|&i| recover(&partition_dir_name(name, i))).map(move |i| (t, i))
            })
            .collect();
        // Until the next clean shutdown: a crash before the recovery's writes are on disk
        // leaves these to recover again.
        let names: Vec<String> =
            recovering.iter().map(|&(t, i)| partition_dir_name(&listed[t].0, i)).collect();
        let journal =
            Arc::new(RecoveryJournal::create(data_dir, names.iter().map(String::as_str))?);
        let topics = Topics {
            data_dir: data_dir.to_owned(),
            segment_handles: SegmentHandles::new(defaults.open_segments_max),
            defaults,
            catalog: RwLock::new(Catalog::default()),
            change: Mutex::new(()),
            catalog_writes: AtomicU64::new(0),
            journal,
        };
        // One parallel pass over every topic: many small topics recover as fast as a few
        // large ones.
        let mut recovered = in_parallel(recovering, |(t, i)| {
            let (name, _, _, _, log) = &listed[t];
            topics.open_partition(name, i, log.clone(), NOT_CLEAN)
        })
        .into_iter();
        // In order: the recovered partitions come as `recovering` listed them.
        for (name, id, count, overrides, log) in listed {
            let mut partitions = Vec::with_capacity(count.max(0) as usize);
            for i in 0..count {
                if recover(&partition_dir_name(&name, i)) {
                    partitions.push(recovered.next().expect("invariant: one result each")?);
                    continue;
                }
                let opener = LogOpener {
                    config: log.clone(),
                    handles: Arc::clone(&topics.segment_handles),
                    clean_shutdown: CleanShutdown::DataDir { clean: true },
                };
                let dir = topics.partition_dir(&name, i);
                let lazy =
                    Partition::lazy(&name, i, dir, opener).journaled_in(&topics.journal, false);
                partitions.push(Arc::new(lazy));
            }
            topics.insert(Arc::new(Topic { name, id, partitions, overrides }));
        }
        // Before the first append: from here a crash must not look like a clean close.
        durable::remove(&RealIo, &marker)?;
        Ok(topics)
    }

    fn remove(&self, name: &str) {
        let mut c = self.catalog.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(t) = c.by_name.remove(name) {
            c.forget(&t);
        }
    }

    fn insert(&self, topic: Arc<Topic>) {
        let mut c = self.catalog.write().unwrap_or_else(PoisonError::into_inner);
        c.by_id.insert(topic.id, topic.name.clone());
        c.by_normal_name.insert(normal_name(&topic.name), topic.name.clone());
        c.by_name.insert(topic.name.clone(), topic);
    }

    fn partition_dir(&self, topic: &str, index: i32) -> PathBuf {
        self.data_dir.join(partition_dir_name(topic, index))
    }

    /// Opens (creating or recovering it as needed) partition `index` of `topic`.
    fn open_partition(
        &self,
        topic: &str,
        index: i32,
        log: LogConfig,
        clean_shutdown: CleanShutdown,
    ) -> Result<Arc<Partition>, StorageError> {
        let dir = self.partition_dir(topic, index);
        let handles = Arc::clone(&self.segment_handles);
        let opened =
            PartitionLog::open_shared(&dir, log, Arc::new(RealIo), handles, clean_shutdown)?;
        // Named in the journal already: recovered at start, or new and named before this.
        Ok(Arc::new(Partition::new(topic, index, opened).journaled_in(&self.journal, true)))
    }

    fn open_partitions(
        &self,
        name: &str,
        from: i32,
        to: i32,
        config: &EffectiveConfig,
        clean_shutdown: CleanShutdown,
    ) -> Result<Vec<Arc<Partition>>, TopicError> {
        let log = self.defaults.storage_log(config);
        // A crash part way through creating them leaves them to recover.
        let names: Vec<String> = (from..to).map(|i| partition_dir_name(name, i)).collect();
        self.journal.add(names.iter().map(String::as_str))?;
        let results = in_parallel((from..to).collect(), |i| {
            let dir = self.partition_dir(name, i);
            let existed = dir.exists();
            (self.open_partition(name, i, log.clone(), clean_shutdown), existed, dir)
        });
        let mut opened = Vec::with_capacity(results.len());
        let mut failure = None;
        for (result, existed, dir) in results {
            match result {
                Ok(p) => opened.push((p, existed)),
                Err(e) => {
                    if !existed {
                        let _ = fs::remove_dir_all(&dir);
                    }
                    failure.get_or_insert(e);
                }
            }
        }
        if let Some(e) = failure {
            // Out of file descriptors or maps, say, part way through a large topic:
            // leave no directories behind that no catalog entry names.
            let mut new = vec![];
            for (p, existed_before) in opened {
                if existed_before {
                    let _ = p.close_unsynced();
                } else {
                    new.push(p);
                }
            }
            discard(new);
            return Err(e.into());
        }
        Ok(opened.into_iter().map(|(p, _)| p).collect())
    }

    /// Renames away the directories a new topic's partitions would open that no topic owns:
    /// a crash between a deletion's catalog write and the removal of its directories leaves
    /// them behind, and the new topic would otherwise serve (or hide behind the old log
    /// start offset) the deleted topic's records. They are kept, as `<dir>.orphaned-<ms>`,
    /// for the operator to look at, not removed.
    fn set_aside_leftovers(&self, name: &str, from: i32, to: i32) -> Result<(), TopicError> {
        for i in from..to {
            let dir = self.partition_dir(name, i);
            // Only a directory: anything else in the way fails the open, as it should.
            if !dir.is_dir() {
                continue;
            }
            let aside =
                dir.with_file_name(format!("{name}-{i}.orphaned-{}", crate::storage::now_ms()));
            fs::rename(&dir, &aside)
                .map_err(|e| StorageError::io("set aside leftover", &dir, e))?;
            tracing::warn!(dir = %dir.display(), kept_as = %aside.display(), "a new topic found a leftover partition directory; set it aside");
        }
        Ok(())
    }

    /// An existing topic whose name differs from `name` only by `.` versus `_`.
    fn colliding(&self, name: &str) -> Option<String> {
        if !name.contains(['.', '_']) {
            return None;
        }
        let c = self.catalog.read().unwrap_or_else(PoisonError::into_inner);
        c.by_normal_name.get(&normal_name(name)).filter(|n| *n != name).cloned()
    }

    /// The topic with this name.
    pub fn get(&self, name: &str) -> Option<Arc<Topic>> {
        self.catalog.read().unwrap_or_else(PoisonError::into_inner).by_name.get(name).cloned()
    }

    /// The topic with this id.
    pub fn get_by_id(&self, id: Uuid) -> Option<Arc<Topic>> {
        let c = self.catalog.read().unwrap_or_else(PoisonError::into_inner);
        c.by_id.get(&id).and_then(|n| c.by_name.get(n)).cloned()
    }

    /// All topics, sorted by name.
    pub fn list(&self) -> Vec<Arc<Topic>> {
        let c = self.catalog.read().unwrap_or_else(PoisonError::into_inner);
        let mut v: Vec<_> = c.by_name.values().cloned().collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    /// The cache of open segment files (its bound and how many are open now).
    pub fn segment_handles(&self) -> &SegmentHandles {
        &self.segment_handles
    }

    /// The broker-wide topic defaults.
    pub fn defaults(&self) -> &TopicDefaults {
        &self.defaults
    }

    /// The effective config of a topic.
    pub fn effective_config(&self, topic: &Topic) -> EffectiveConfig {
        effective(&self.defaults, &topic.overrides)
            .expect("invariant: overrides were validated when stored")
    }

    /// Creates a topic (or, with `validate_only`, checks that it could be created).
    ///
    /// # Errors
    /// Invalid name, count, replication factor or config; an existing topic; I/O.
    pub fn create(
        &self,
        name: &str,
        partitions: i32,
        replication_factor: i16,
        overrides: BTreeMap<String, String>,
        validate_only: bool,
    ) -> Result<Arc<Topic>, TopicError> {
        let wanted = NewTopic { name: name.to_owned(), partitions, replication_factor, overrides };
        self.create_all(vec![wanted], validate_only)
            .pop()
            .expect("invariant: one result per topic asked for")
    }

    /// Creates topics (or, with `validate_only`, checks that they could be created), with
    /// one catalog write for all of them: a request creating many topics must not rewrite
    /// and sync the whole catalog once per topic. Results are in the order asked.
    ///
    /// # Errors
    /// Per topic: invalid name, count, replication factor or config; an existing or
    /// colliding topic; I/O (a failed catalog write fails every topic it would have named).
    pub fn create_all(
        &self,
        wanted: Vec<NewTopic>,
        validate_only: bool,
    ) -> Vec<Result<Arc<Topic>, TopicError>> {
        if wanted.is_empty() {
            // Not even the change lock: a Metadata request must not wait on an alter.
            return Vec::new();
        }
        let checked: Vec<_> = wanted
            .into_iter()
            .map(|mut t| {
                validate_name(&t.name)?;
                if t.partitions < 1 {
                    return Err(TopicError::InvalidPartitions {
                        topic: t.name,
                        count: t.partitions,
                        reason: "must be at least 1",
                    });
                }
                if t.replication_factor != 1 && t.replication_factor != -1 {
                    return Err(TopicError::InvalidReplicationFactor(t.replication_factor));
                }
                let config = canonical(&self.defaults, &mut t.overrides)?;
                Ok((t, config))
            })
            .collect();
        let _change = self.change.lock().unwrap_or_else(PoisonError::into_inner);
        let mut results = Vec::with_capacity(checked.len());
        let mut created = Vec::new();
        for entry in checked {
            let (t, config) = match entry {
                Ok(entry) => entry,
                Err(e) => {
                    results.push(Err(e));
                    continue;
                }
            };
            if self.get(&t.name).is_some() {
                results.push(Err(TopicError::AlreadyExists(t.name)));
                continue;
            }
            // Under the change lock, so two creations cannot both pass; topics created
            // earlier in this batch are already in the catalog and count.
            if let Some(existing) = self.colliding(&t.name) {
                results.push(Err(TopicError::Collides { name: t.name, existing }));
                continue;
            }
            if let Err(e) = check_internal(&t.name, &config) {
                results.push(Err(e));
                continue;
            }
            let id = new_topic_id();
            let NewTopic { name, partitions, overrides, .. } = t;
            if validate_only {
                results.push(Ok(Arc::new(Topic { name, id, partitions: vec![], overrides })));
                continue;
            }
            if let Err(e) = self.set_aside_leftovers(&name, 0, partitions) {
                results.push(Err(e));
                continue;
            }
            match self.open_partitions(&name, 0, partitions, &config, NOT_CLEAN) {
                Ok(parts) => {
                    let topic = Arc::new(Topic { name, id, partitions: parts, overrides });
                    self.insert(Arc::clone(&topic));
                    created.push(results.len());
                    results.push(Ok(topic));
                }
                Err(e) => results.push(Err(e)),
            }
        }
        if created.is_empty() {
            return results;
        }
        if let Err(e) = self.persist() {
            // Not in the catalog on disk, so not topics: a restart would not know them.
            let message = e.to_string();
            for i in created {
                let Ok(topic) =
                    std::mem::replace(&mut results[i], Err(catalog::write_error(&message)))
                else {
                    unreachable!("invariant: created topics have Ok results")
                };
                self.remove(&topic.name);
                let partitions = topic.partitions.clone();
                drop(topic);
                discard(partitions);
            }
            return results;
        }
        for topic in created.iter().filter_map(|&i| results[i].as_ref().ok()) {
            tracing::info!(topic = %topic.name, partitions = topic.partitions.len(), id = %topic.id, "created topic");
        }
        results
    }

    /// Deletes a topic: removed from the catalog, its logs closed and its directories
    /// removed. Fetches holding slices of its segments finish reading them.
    ///
    /// # Errors
    /// Unknown topic; I/O writing the catalog.
    pub fn delete(&self, name: &str) -> Result<Uuid, TopicError> {
        refuse_if_internal(name, ProtectedOperation::Delete)?;
        let _change = self.change.lock().unwrap_or_else(PoisonError::into_inner);
        let topic = {
            let mut c = self.catalog.write().unwrap_or_else(PoisonError::into_inner);
            let topic = c.by_name.remove(name).ok_or_else(|| TopicError::Unknown(name.into()))?;
            c.forget(&topic);
            topic
        };
        if let Err(e) = self.persist() {
            // The catalog on disk still names it, so it is still a topic.
            self.insert(topic);
            return Err(e);
        }
        for p in &topic.partitions {
            // Its files are about to go: nothing of it needs syncing.
            p.abandon();
            let dir = p.dir().to_owned();
            let gone = dir.with_file_name(format!(
                "{}.{}-delete",
                dir.file_name().and_then(|n| n.to_str()).unwrap_or("partition"),
                topic.id.simple()
            ));
            if fs::rename(&dir, &gone).is_ok() {
                if let Err(e) = fs::remove_dir_all(&gone) {
                    tracing::warn!(dir = %gone.display(), error = %e, "could not remove deleted partition");
                }
            }
        }
        tracing::info!(topic = name, "deleted topic");
        Ok(topic.id)
    }

    /// Raises a topic's partition count (CreatePartitions).
    ///
    /// # Errors
    /// Unknown topic; a count not above the current one; I/O.
    pub fn add_partitions(
        &self,
        name: &str,
        count: i32,
        validate_only: bool,
    ) -> Result<(), TopicError> {
        refuse_if_internal(name, ProtectedOperation::AddPartitions)?;
        let _change = self.change.lock().unwrap_or_else(PoisonError::into_inner);
        let topic = self.get(name).ok_or_else(|| TopicError::Unknown(name.into()))?;
        let current = topic.partitions.len() as i32;
        if count <= current {
            return Err(TopicError::InvalidPartitions {
                topic: name.into(),
                count,
                reason: "must be more than the current partition count",
            });
        }
        if validate_only {
            return Ok(());
        }
        let config = self.effective_config(&topic);
        self.set_aside_leftovers(name, current, count)?;
        let added = self.open_partitions(name, current, count, &config, NOT_CLEAN)?;
        let mut partitions = topic.partitions.clone();
        partitions.extend(added.iter().cloned());
        self.insert(Arc::new(Topic {
            name: topic.name.clone(),
            id: topic.id,
            partitions,
            overrides: topic.overrides.clone(),
        }));
        if let Err(e) = self.persist() {
            self.insert(topic);
            discard(added);
            return Err(e);
        }
        Ok(())
    }

    /// Replaces a topic's config overrides (AlterConfigs semantics: the given set is the
    /// whole new set) and applies them to its partitions.
    ///
    /// # Errors
    /// Unknown topic, invalid config, I/O.
    pub fn set_overrides(
        &self,
        name: &str,
        mut overrides: BTreeMap<String, String>,
        validate_only: bool,
    ) -> Result<(), TopicError> {
        let config = validate(name, &self.defaults, &mut overrides)?;
        let _change = self.change.lock().unwrap_or_else(PoisonError::into_inner);
        let topic = self.get(name).ok_or_else(|| TopicError::Unknown(name.into()))?;
        if validate_only {
            return Ok(());
        }
        let log = self.defaults.storage_log(&config);
        for p in &topic.partitions {
            p.set_config(log.clone());
        }
        self.insert(Arc::new(Topic {
            name: topic.name.clone(),
            id: topic.id,
            partitions: topic.partitions.clone(),
            overrides,
        }));
        self.persist()?;
        Ok(())
    }

    /// Closes every partition cleanly (graceful shutdown), then, if every close succeeded,
    /// syncs the file system once and writes the data directory's clean-shutdown marker:
    /// the next start recovers nothing.
    pub fn close_all(&self) {
        let all: Vec<Arc<Partition>> =
            self.list().iter().flat_map(|t| t.partitions.iter().cloned()).collect();
        let closed = in_parallel(all, |p| match p.close_unsynced() {
            Ok(()) => true,
            Err(e) => {
                tracing::error!(partition = %p.dir().display(), error = %e, "clean close failed");
                false
            }
        });
        if !closed.iter().all(|&ok| ok) {
            tracing::warn!(
                "not every partition closed cleanly: the next start recovers those written to"
            );
            return;
        }
        // One sync of everything the closes wrote, where a sync of each file cost four
        // fsyncs a partition: before the marker, which promises it all.
        if let Err(e) = crate::storage::sync_file_system(&self.data_dir) {
            tracing::error!(error = %e, "cannot sync the data directory's file system: the next start recovers the partitions written to");
            return;
        }
        if let Err(e) = durable::write(&RealIo, &self.data_dir.join(CLEAN_SHUTDOWN_MARKER), b"") {
            tracing::error!(error = %e, "cannot write the clean-shutdown marker");
            return;
        }
        // After the marker: the next start trusts the marker over anything left here.
        if let Err(e) = RecoveryJournal::remove(&self.data_dir) {
            tracing::warn!(error = %e, "cannot remove the recovery journal");
        }
    }

    /// Catalog writes since start.
    pub fn catalog_writes(&self) -> u64 {
        self.catalog_writes.load(Ordering::Relaxed)
    }

    fn persist(&self) -> Result<(), TopicError> {
        self.catalog_writes.fetch_add(1, Ordering::Relaxed);
        catalog::write(&self.data_dir, &self.list())
    }

    /// Changes a topic's overrides with `f` (IncrementalAlterConfigs): `f` gets the current
    /// set and returns the new one, under the change lock, so that concurrent changes to
    /// different keys are not lost.
    ///
    /// # Errors
    /// Unknown topic, `f`'s error, an invalid config, I/O.
    pub fn update_overrides(
        &self,
        name: &str,
        validate_only: bool,
        f: impl FnOnce(&BTreeMap<String, String>) -> Result<BTreeMap<String, String>, TopicError>,
    ) -> Result<(), TopicError> {
        let _change = self.change.lock().unwrap_or_else(PoisonError::into_inner);
        let topic = self.get(name).ok_or_else(|| TopicError::Unknown(name.into()))?;
        let mut overrides = f(&topic.overrides)?;
        let config = validate(name, &self.defaults, &mut overrides)?;
        if validate_only {
            return Ok(());
        }
        let log = self.defaults.storage_log(&config);
        for p in &topic.partitions {
            p.set_config(log.clone());
        }
        self.insert(Arc::new(Topic {
            name: topic.name.clone(),
            id: topic.id,
            partitions: topic.partitions.clone(),
            overrides,
        }));
        self.persist()
    }
}

/// Closes partitions that never made it into the catalog and removes their directories.
/// Removes the directories of new partitions that no catalog entry names. They are
/// dropped first, unclosed (nothing in them is worth a clean-shutdown marker): when
/// descriptors ran out, theirs are the ones the removal needs.
fn discard(partitions: Vec<Arc<Partition>>) {
    let dirs: Vec<PathBuf> = partitions.iter().map(|p| p.dir().to_owned()).collect();
    drop(partitions);
    for dir in dirs {
        if let Err(e) = fs::remove_dir_all(&dir) {
            tracing::warn!(dir = %dir.display(), error = %e, "could not remove a partition of a failed change");
        }
    }
}

fn remove_deleted_dirs(data_dir: &Path) {
    let Ok(entries) = fs::read_dir(data_dir) else { return };
    for e in entries.flatten() {
        if e.file_name().to_str().is_some_and(|n| n.ends_with("-delete")) {
            let _ = fs::remove_dir_all(e.path());
        }
    }
}

/// A random (v4) topic id that avoids the ids Kafka reserves (zero and one).
fn new_topic_id() -> Uuid {
    loop {
        let id = Uuid::new_v4();
        if id.as_u128() > 1 {
            return id;
        }
    }
}

/// Threads that open or close partitions at once: the work waits on syncs and page
/// faults more than on the CPU, so more threads than cores shorten it.
const PARTITION_IO_THREADS: usize = 8;

/// Partitions opened at a start after a crash, or created or added while the broker
/// runs: a directory left behind by a crash is recovered.
const NOT_CLEAN: CleanShutdown = CleanShutdown::DataDir { clean: false };

/// `f` of every item, in order, spread over up to [`PARTITION_IO_THREADS`] threads.
fn in_parallel<T: Send, R: Send>(items: Vec<T>, f: impl Fn(T) -> R + Sync) -> Vec<R> {
    let threads = PARTITION_IO_THREADS.min(items.len());
    if threads <= 1 {
        return items.into_iter().map(f).collect();
    }
    let n = items.len();
    let mut slots: Vec<Option<R>> = (0..n).map(|_| None).collect();
    let queue = Mutex::new(items.into_iter().enumerate());
    let done = Mutex::new(&mut slots);
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| loop {
                let next = queue.lock().unwrap_or_else(PoisonError::into_inner).next();
                let Some((i, item)) = next else { break };
                let r = f(item);
                done.lock().unwrap_or_else(PoisonError::into_inner)[i] = Some(r);
            });
        }
    });
    slots.into_iter().map(|r| r.expect("invariant: every item ran")).collect()
}

mod catalog;

#[cfg(test)]
mod lazy_open_tests;

#[cfg(test)]
mod shutdown_tests;

#[cfg(test)]
mod tests;
