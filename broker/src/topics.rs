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

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use tokio_util::task::TaskTracker;
use uuid::Uuid;

use crate::partition::Partition;
use crate::schedule::Schedule;
use crate::storage::{RecoveryJournal, SegmentHandles};
use crate::topic_config::{canonical, check_internal, validate};
use crate::topic_rules::normal_name;
pub use crate::topic_rules::{
    is_internal, refuse_if_internal, too_many_partitions_message, validate_name,
    ProtectedOperation, TopicError, INTERNAL_TOPICS, MAX_PARTITIONS_PER_REQUEST, MAX_TOPIC_NAME,
};
// The config functions moved to `topic_config`; re-exported for existing callers.
pub use crate::topic_config::{config_value, effective, EffectiveConfig, TopicDefaults};

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
    /// The broker defaults with `overrides` applied, worked out once when the topic was
    /// made (a topic is replaced whole when its overrides change): produce reads it per
    /// request.
    pub config: EffectiveConfig,
}

impl Topic {
    /// The partition with this index.
    pub fn partition(&self, index: i32) -> Option<&Arc<Partition>> {
        usize::try_from(index).ok().and_then(|i| self.partitions.get(i))
    }
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
    /// Every partition's sync tasks (see [`Self::sync_tasks`]).
    syncs: TaskTracker,
    /// The partitions the background flusher must visit (see [`Self::schedule`]).
    schedule: Arc<Schedule>,
}

impl Topics {
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

    /// The tasks in which partitions sync for the requests waiting on them (durable mode):
    /// shutdown closes it and waits for them before [`Self::close_all`].
    pub fn sync_tasks(&self) -> &TaskTracker {
        &self.syncs
    }

    /// The background flusher's schedule: every partition with something due, by when.
    pub fn schedule(&self) -> &Schedule {
        &self.schedule
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
        topic.config.clone()
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
                let topic = Topic { name, id, partitions: vec![], overrides, config };
                results.push(Ok(Arc::new(topic)));
                continue;
            }
            if let Err(e) = self.set_aside_leftovers(&name, 0, partitions) {
                results.push(Err(e));
                continue;
            }
            match self.open_partitions(&name, 0, partitions, &config, NOT_CLEAN) {
                Ok(parts) => {
                    let topic = Arc::new(Topic { name, id, partitions: parts, overrides, config });
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
        self.set_aside_leftovers(name, current, count)?;
        let added = self.open_partitions(name, current, count, &topic.config, NOT_CLEAN)?;
        let mut partitions = topic.partitions.clone();
        partitions.extend(added.iter().cloned());
        self.insert(Arc::new(Topic {
            name: topic.name.clone(),
            id: topic.id,
            partitions,
            overrides: topic.overrides.clone(),
            config: topic.config.clone(),
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
            config,
        }));
        self.persist()?;
        Ok(())
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
            config,
        }));
        self.persist()
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

mod catalog;
mod partitions;

use partitions::{discard, NOT_CLEAN};

#[cfg(test)]
mod lazy_open_tests;

#[cfg(test)]
mod shutdown_tests;

#[cfg(test)]
mod tests;
