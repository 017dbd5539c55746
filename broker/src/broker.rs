//! The state every connection shares: config, topics, metrics, cluster identity.

use std::path::Path;
use std::sync::Arc;

use crate::config::Config;
use crate::metrics::Metrics;
use crate::topics::{TopicDefaults, Topics};

/// The broker.
#[derive(Debug)]
pub struct Broker {
    /// Validated settings.
    pub config: Config,
    /// Every topic and its partitions.
    pub topics: Topics,
    /// Counters for the metrics endpoint.
    pub metrics: Metrics,
    /// Kafka's cluster id (22 characters of base64url), kept in `meta.properties`.
    pub cluster_id: String,
    /// Producer id allocation for idempotent producers.
    pub producer_ids: crate::producer_ids::ProducerIds,
    /// The consumer group coordinator (its task is started by the server).
    pub groups: crate::group::GroupCoordinator,
}

impl Broker {
    /// Opens the data directory: cluster identity, topic catalog, every partition.
    ///
    /// # Errors
    /// An unusable data directory or catalog.
    pub fn open(config: Config) -> anyhow::Result<Arc<Broker>> {
        std::fs::create_dir_all(&config.data_dir)?;
        let cluster_id = load_cluster_id(&config.data_dir, config.node_id)?;
        let topics = Topics::load(&config.data_dir, TopicDefaults::from_config(&config))?;
        let producer_ids = crate::producer_ids::ProducerIds::load(&config.data_dir)?;
        let groups = crate::group::GroupCoordinator::new(&config);
        Ok(Arc::new(Broker {
            config,
            topics,
            metrics: Metrics::default(),
            cluster_id,
            producer_ids,
            groups,
        }))
    }
}

/// Reads `meta.properties` (Kafka's file of the same name), creating it on first start.
fn load_cluster_id(data_dir: &Path, node_id: i32) -> anyhow::Result<String> {
    let path = data_dir.join("meta.properties");
    if let Ok(text) = std::fs::read_to_string(&path) {
        let props = crate::config::parse_properties(&text);
        if let Some(id) = props.get("cluster.id") {
            return Ok(id.clone());
        }
    }
    let id = base64url(uuid::Uuid::new_v4().as_bytes());
    let text = format!("version=1\ncluster.id={id}\nnode.id={node_id}\n");
    let tmp = data_dir.join("meta.properties.tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, &path)?;
    Ok(id)
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
}
