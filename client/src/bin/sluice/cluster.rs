//! `sluice cluster`: the cluster id, the controller, the brokers, and the API versions
//! each broker and this client both speak (a fresh connection to each broker, its
//! ApiVersions answer intersected with the client's ranges).

use sluice_client::admin::{Admin, ClusterDescription};
use sluice_client::config::AdminConfig;
use sluice_client::net::connection::ConnectionSettings;
use sluice_client::net::{ApiVersionTable, Connection};
use sluice_client::ClientConfig;
use sluice_protocol::api_key::{ApiKey, VersionRange};

use crate::error::Result;
use crate::format::json::Json;
use crate::format::table::{cell, Style, Table};

/// `sluice cluster` flags.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  sluice cluster\n  sluice cluster --json\n\n\
    Two tables: CLUSTER-ID NODE ADDRESS RACK CONTROLLER per broker, then NODE KEY API \
    MIN-VERSION MAX-VERSION per API a broker serves in a version this client speaks.")]
pub struct Args {
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// The cluster, and the API versions each of its brokers advertised (a fresh connection
/// to each).
///
/// # Errors
/// A broker that cannot be reached, or the cluster's description failing.
pub async fn broker_versions(
    config: &ClientConfig,
) -> Result<(ClusterDescription, Vec<ApiVersionTable>)> {
    let admin = Admin::new(config)?;
    let described = admin.describe_cluster().await;
    admin.close().await;
    let cluster = described?;
    let common = AdminConfig::new(config)?.common;
    let settings = ConnectionSettings {
        client_id: common.client_id,
        request_timeout: common.request_timeout,
        setup_timeout: common.connection_setup_timeout,
        receive_max_bytes: common.receive_max_bytes,
        metrics: Default::default(),
    };
    let mut versions = Vec::new();
    for b in &cluster.brokers {
        let conn = Connection::connect(&b.addr, &settings).await?;
        versions.push(conn.versions().clone());
        conn.close();
    }
    Ok((cluster, versions))
}

/// Runs `sluice cluster`.
pub async fn run(config: &ClientConfig, args: Args) -> Result<()> {
    let (cluster, tables) = broker_versions(config).await?;
    let versions: Vec<Vec<(i16, VersionRange)>> =
        tables.iter().map(|t| t.ranges().collect()).collect();
    let name =
        |key: i16| ApiKey::try_from(key).map_or_else(|_| key.to_string(), |k| format!("{k:?}"));
    let mut brokers = Table::new(&["CLUSTER-ID", "NODE", "ADDRESS", "RACK", "CONTROLLER"]);
    let mut apis = Table::new(&["NODE", "KEY", "API", "MIN-VERSION", "MAX-VERSION"]);
    for (b, ranges) in cluster.brokers.iter().zip(&versions) {
        let controller = if cluster.controller == Some(b.node_id) { "yes" } else { "no" };
        brokers.row(vec![
            cell(cluster.cluster_id.as_ref()),
            b.node_id.to_string(),
            b.addr.clone(),
            cell(b.rack.as_ref()),
            controller.to_string(),
        ]);
        for (key, range) in ranges {
            apis.row(vec![
                b.node_id.to_string(),
                key.to_string(),
                name(*key),
                range.min.to_string(),
                range.max.to_string(),
            ]);
        }
    }
    Style::detect(args.json).print(&[&brokers, &apis], || {
        let brokers = cluster
            .brokers
            .iter()
            .zip(&versions)
            .map(|(b, ranges)| {
                let apis = ranges
                    .iter()
                    .map(|(key, range)| {
                        Json::Obj(vec![
                            ("key", Json::Int(i64::from(*key))),
                            ("name", Json::Str(name(*key))),
                            ("min_version", Json::Int(i64::from(range.min))),
                            ("max_version", Json::Int(i64::from(range.max))),
                        ])
                    })
                    .collect();
                Json::Obj(vec![
                    ("node_id", Json::from(b.node_id)),
                    ("address", Json::str(&b.addr)),
                    ("rack", Json::opt(b.rack.as_ref(), Json::str)),
                    ("api_versions", Json::Arr(apis)),
                ])
            })
            .collect();
        Json::Obj(vec![
            ("cluster_id", Json::opt(cluster.cluster_id.as_ref(), Json::str)),
            ("controller", Json::opt(cluster.controller, Json::from)),
            ("brokers", Json::Arr(brokers)),
        ])
    });
    Ok(())
}
