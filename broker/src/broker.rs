//! The state every connection shares: config, topics, metrics, cluster identity.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use thiserror::Error;

use crate::config::Config;
use crate::metrics::Metrics;
use crate::storage::io::RealIo;
use crate::storage::{durable, StorageError};
use crate::topics::{TopicDefaults, TopicError, Topics};

/// Kafka's file of the broker's identity in the data directory.
const META_PROPERTIES: &str = "meta.properties";

/// The broker.
#[derive(Debug)]
pub struct Broker {
    /// Validated settings.
    pub config: Config,
    /// Every topic and its partitions.
    pub topics: Arc<Topics>,
    /// Counters for the metrics endpoint.
    pub metrics: Metrics,
    /// Kafka's cluster id (22 characters of base64url), kept in `meta.properties`.
    pub cluster_id: String,
    /// Producer id allocation for idempotent producers.
    pub producer_ids: Arc<crate::producer_ids::ProducerIds>,
    /// The consumer group coordinator (its task is started by the server).
    pub groups: Arc<crate::group::GroupCoordinator>,
    /// The transaction coordinator (its driver, in [`Drivers`], is run by the server).
    pub txns: crate::txn::TxnCoordinator,
    /// Low-priority threads for heavy requests.
    pub heavy: crate::heavy::HeavyPool,
}

/// The coordinator tasks that [`Broker::open`] makes with their handles and
/// [`crate::server::run`] runs.
#[derive(Debug)]
pub struct Drivers {
    /// The group coordinator's.
    pub groups: crate::group::GroupDriver,
    /// The transaction coordinator's.
    pub txns: crate::txn::TxnDriver,
}

impl Broker {
    /// Opens the data directory: cluster identity, topic catalog, every partition; and the
    /// coordinators' drivers, for [`crate::server::run`] to run.
    ///
    /// # Errors
    /// An unusable data directory or catalog, or no threads to be had.
    pub fn open(config: Config) -> Result<(Arc<Broker>, Drivers), OpenError> {
        std::fs::create_dir_all(&config.data_dir)
            .map_err(|source| OpenError::DataDir { path: config.data_dir.clone(), source })?;
        // What a crash during a durable write in the data directory left behind.
        durable::remove_stray_temps(&config.data_dir);
        let cluster_id = load_cluster_id(&config.data_dir, config.node_id)?;
        let topics = Arc::new(Topics::load(&config.data_dir, TopicDefaults::from_config(&config))?);
        let producer_ids = Arc::new(crate::producer_ids::ProducerIds::load(&config.data_dir)?);
        let (groups, group_driver) = crate::group::GroupCoordinator::new(&config);
        let groups = Arc::new(groups);
        let (txns, txn_driver) = crate::txn::TxnCoordinator::new(&config);
        let cores = std::thread::available_parallelism().map_or(2, usize::from);
        let heavy = crate::heavy::HeavyPool::start(cores).map_err(OpenError::Threads)?;
        let broker = Arc::new(Broker {
            config,
            topics,
            metrics: Metrics::default(),
            cluster_id,
            producer_ids,
            groups,
            txns,
            heavy,
        });
        Ok((broker, Drivers { groups: group_driver, txns: txn_driver }))
    }
}

/// Why a broker could not open.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The data directory cannot be created.
    #[error("cannot create the data directory {}: {source}", path.display())]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A durable file (`meta.properties`, the producer id block) or a partition's log.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The topic catalog.
    #[error(transparent)]
    Topics(#[from] TopicError),
    /// The low-priority threads for heavy requests could not start.
    #[error("cannot start the threads for heavy requests: {0}")]
    Threads(#[source] std::io::Error),
}

/// Reads `meta.properties` (Kafka's file of the same name), creating it on first start.
///
/// The file is written durably before the id is used anywhere, so a crash on first start
/// leaves no file (and the next start makes one) or the whole file. A file without a
/// whole cluster id is refused: making a new id would silently start a different cluster.
///
/// # Errors
/// [`StorageError::Corrupt`] for a file without a valid `cluster.id`; I/O errors.
fn load_cluster_id(data_dir: &Path, node_id: i32) -> Result<String, StorageError> {
    let path = data_dir.join(META_PROPERTIES);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let props = crate::config::parse_properties(&text);
            return match props.get("cluster.id") {
                Some(id) if is_cluster_id(id) => Ok(id.clone()),
                other => Err(StorageError::Corrupt {
                    path,
                    reason: format!(
                        "no valid cluster.id (found {other:?}, expected 22 base64url characters)"
                    ),
                }),
            };
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(StorageError::io("read", &path, e)),
    }
    let id = base64url(uuid::Uuid::new_v4().as_bytes());
    let text = format!("version=1\ncluster.id={id}\nnode.id={node_id}\n");
    durable::write(&RealIo, &path, text.as_bytes())?;
    Ok(id)
}

/// Whether `id` has the shape of Kafka's cluster ids (a UUID in unpadded base64url).
fn is_cluster_id(id: &str) -> bool {
    id.len() == 22 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Unpadded base64url, as Kafka prints cluster ids.
fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_id_is_22_base64url_characters_and_stable() {
        let dir = tempfile::tempdir().unwrap();
        let a = load_cluster_id(dir.path(), 0).unwrap();
        assert_eq!(a.len(), 22);
        assert!(a.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert_eq!(load_cluster_id(dir.path(), 0).unwrap(), a);
        assert_eq!(base64url(b"Man"), "TWFu");
        assert_eq!(base64url(b"Ma"), "TWE");
    }

    #[test]
    fn a_cut_meta_properties_never_yields_a_different_cluster_id() {
        let dir = tempfile::tempdir().unwrap();
        let id = load_cluster_id(dir.path(), 0).unwrap();
        let path = dir.path().join(META_PROPERTIES);
        let whole = std::fs::read(&path).unwrap();
        for cut in 0..whole.len() {
            std::fs::write(&path, &whole[..cut]).unwrap();
            match load_cluster_id(dir.path(), 0) {
                Ok(got) => assert_eq!(got, id, "cut at {cut}"),
                Err(e) => assert!(matches!(e, StorageError::Corrupt { .. }), "cut at {cut}: {e}"),
            }
        }
    }
}
