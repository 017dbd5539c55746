//! `sluice topic create|list|describe|delete|alter-config|add-partitions`. `describe`
//! shows each partition's size from its leader's DescribeLogDirs answer.
//!
//! Calls about several topics report each topic's outcome: a line on stdout for what
//! succeeded, an `error:` line on stderr for what failed, and exit 1 if any failed.

use std::collections::BTreeMap;

use clap::Subcommand;
use sluice_client::admin::{
    Admin, AlterConfigOp, ConfigResource, ListedOffset, NewTopic, OffsetSpec, TopicDescription,
};
use sluice_client::{ClientConfig, ClientError, TopicPartition};
use sluice_protocol::error_code::ErrorCode;

use crate::cli::key_value;
use crate::error::{client_line, CliError, Context as _, Result};
use crate::format::json::Json;
use crate::format::table::{cell, Style, Table};

/// `sluice topic` commands.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  sluice topic list\n  sluice topic create orders --partitions 6\n  \
    sluice topic describe orders"
)]
pub struct Args {
    #[command(subcommand)]
    command: TopicCommand,
}

#[derive(Debug, Subcommand)]
enum TopicCommand {
    /// Create topics.
    #[command(after_help = "Example:\n  sluice topic create orders --partitions 6 \
        --config retention.ms=86400000 --config cleanup.policy=delete")]
    Create {
        /// The topics' names.
        #[arg(required = true)]
        topics: Vec<String>,
        /// Partition count (default: the broker's num.partitions).
        #[arg(long)]
        partitions: Option<i32>,
        /// Replication factor (default: the broker's).
        #[arg(long)]
        replication_factor: Option<i16>,
        /// A topic config (repeatable).
        #[arg(long = "config", value_name = "KEY=VALUE", value_parser = key_value)]
        configs: Vec<(String, String)>,
        /// Succeed when a topic already exists.
        #[arg(long)]
        if_not_exists: bool,
        /// Only check that the topics could be created.
        #[arg(long)]
        validate_only: bool,
    },
    /// List topics: name, partition count, topic id.
    #[command(after_help = "Example:\n  sluice topic list --json")]
    List {
        /// Include internal topics (__consumer_offsets).
        #[arg(long)]
        internal: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Each partition's leader, replicas, in-sync replicas, log start and end offsets and
    /// size (or, with --configs, the topic's configs that are not defaults).
    #[command(after_help = "Example:\n  sluice topic describe orders payments\n\n\
        SIZE is the partition's log on its leader in bytes (DescribeLogDirs), - where the \
        leader does not serve DescribeLogDirs or may not describe its log dirs.")]
    Describe {
        /// The topics.
        #[arg(required = true)]
        topics: Vec<String>,
        /// Show the configs that differ from the defaults instead of the partitions.
        #[arg(long)]
        configs: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Delete topics.
    #[command(after_help = "Example:\n  sluice topic delete old-orders")]
    Delete {
        /// The topics.
        #[arg(required = true)]
        topics: Vec<String>,
    },
    /// Set or remove topic configs, leaving the others as they are.
    #[command(after_help = "Example:\n  sluice topic alter-config orders --config \
        retention.ms=3600000 --delete-config segment.bytes")]
    AlterConfig {
        /// The topic.
        topic: String,
        /// A config to set (repeatable).
        #[arg(long = "config", value_name = "KEY=VALUE", value_parser = key_value)]
        set: Vec<(String, String)>,
        /// A config whose override to remove (repeatable).
        #[arg(long = "delete-config", value_name = "KEY")]
        delete: Vec<String>,
    },
    /// Raise a topic's partition count.
    #[command(after_help = "Examples:\n  sluice topic add-partitions orders --total 12\n  \
        sluice topic add-partitions orders --add 2")]
    AddPartitions {
        /// The topic.
        topic: String,
        /// The new total partition count.
        #[arg(long, required_unless_present = "add", conflicts_with = "add")]
        total: Option<i32>,
        /// How many partitions to add.
        #[arg(long)]
        add: Option<i32>,
    },
}

/// Runs a `sluice topic` command.
pub async fn run(config: &ClientConfig, args: Args) -> Result<()> {
    let admin = Admin::new(config)?;
    let outcome = match args.command {
        TopicCommand::Create {
            topics,
            partitions,
            replication_factor,
            configs,
            if_not_exists,
            validate_only,
        } => {
            let new: Vec<NewTopic> = topics
                .iter()
                .map(|name| NewTopic {
                    name: name.clone(),
                    partitions,
                    replication_factor,
                    configs: configs.clone(),
                })
                .collect();
            let results = admin.create_topics(&new, validate_only).await?;
            report(results.into_iter().map(|(name, r)| match r {
                Err(e) if if_not_exists && e.code() == Some(ErrorCode::TOPIC_ALREADY_EXISTS) => {
                    Ok(format!("topic {name} exists already"))
                }
                Err(e) => Err(e),
                Ok(()) if validate_only => Ok(format!("topic {name} could be created")),
                Ok(()) => Ok(format!("created topic {name}")),
            }))
        }
        TopicCommand::List { internal, json } => list(&admin, internal, json).await,
        TopicCommand::Describe { topics, configs: true, json } => {
            describe_configs(&admin, &topics, json).await
        }
        TopicCommand::Describe { topics, configs: false, json } => {
            describe(&admin, &topics, json).await
        }
        TopicCommand::Delete { topics } => {
            let results = admin.delete_topics(&topics).await?;
            report(results.into_iter().map(|(name, r)| r.map(|()| format!("deleted topic {name}"))))
        }
        TopicCommand::AlterConfig { topic, set, delete } => {
            if set.is_empty() && delete.is_empty() {
                let why = "nothing to alter: give --config KEY=VALUE or --delete-config KEY";
                return Err(CliError::Usage(why.into()));
            }
            let mut ops: Vec<AlterConfigOp> =
                set.iter().map(|(k, v)| AlterConfigOp::set(k, v)).collect();
            ops.extend(delete.iter().map(AlterConfigOp::delete));
            admin.incremental_alter_configs(&ConfigResource::topic(&topic), &ops).await?;
            println!("altered configs of topic {topic}");
            Ok(())
        }
        TopicCommand::AddPartitions { topic, total, add } => {
            let total = match (total, add) {
                (Some(total), _) => total,
                (None, add) => {
                    let described = admin.describe_topics(std::slice::from_ref(&topic)).await?;
                    let now = described.first().map_or(0, |d| d.partitions.len() as i32);
                    now + add.unwrap_or(0)
                }
            };
            let results = admin.create_partitions(&[(topic, total)], false).await?;
            report(
                results.into_iter().map(|(name, r)| {
                    r.map(|()| format!("topic {name} now has {total} partitions"))
                }),
            )
        }
    };
    admin.close().await;
    outcome
}

/// Prints each outcome: its line on stdout, or an error line on stderr.
fn report(outcomes: impl IntoIterator<Item = Result<String, ClientError>>) -> Result<()> {
    let mut failed = 0;
    for outcome in outcomes {
        match outcome {
            Ok(line) => println!("{line}"),
            Err(e) => {
                failed += 1;
                eprintln!("{}", client_line(&e));
            }
        }
    }
    if failed > 0 {
        return Err(CliError::Reported(format!("{failed} topics")));
    }
    Ok(())
}

async fn list(admin: &Admin, internal: bool, json: bool) -> Result<()> {
    let topics = admin.list_topics(internal).await?;
    let mut table = Table::new(&["TOPIC", "PARTITIONS", "TOPIC-ID"]);
    for t in &topics {
        table.row(vec![t.name.clone(), t.partitions.to_string(), t.id.to_string()]);
    }
    Style::detect(json).print(&[&table], || {
        Json::Arr(
            topics
                .iter()
                .map(|t| {
                    Json::Obj(vec![
                        ("name", Json::str(&t.name)),
                        ("partitions", Json::Int(t.partitions as i64)),
                        ("id", Json::str(t.id.to_string())),
                        ("internal", Json::Bool(t.internal)),
                    ])
                })
                .collect(),
        )
    });
    Ok(())
}

async fn describe(admin: &Admin, topics: &[String], json: bool) -> Result<()> {
    let described = admin.describe_topics(topics).await?;
    let tps: Vec<TopicPartition> = described
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(|p| TopicPartition::new(t.name.as_str(), p.partition))
        })
        .collect();
    let offsets = |spec: OffsetSpec| {
        let specs: Vec<(TopicPartition, OffsetSpec)> =
            tps.iter().map(|tp| (tp.clone(), spec)).collect();
        async move { admin.list_offsets(&specs).await }
    };
    let starts = offsets(OffsetSpec::Earliest).await?;
    let ends = offsets(OffsetSpec::Latest).await?;
    let leaders: BTreeMap<TopicPartition, i32> = described
        .iter()
        .flat_map(|t| {
            t.partitions.iter().filter_map(|p| {
                p.leader.map(|leader| (TopicPartition::new(t.name.as_str(), p.partition), leader))
            })
        })
        .collect();
    let sizes = sizes(admin, &leaders).await?;
    let size =
        |t: &TopicDescription, p: i32| sizes.get(&TopicPartition::new(t.name.as_str(), p)).copied();
    let at = |map: &BTreeMap<TopicPartition, ListedOffset>, t: &TopicDescription, p: i32| {
        map.get(&TopicPartition::new(t.name.as_str(), p)).map(|o| o.offset)
    };
    let ids = |ids: &[i32]| ids.iter().map(i32::to_string).collect::<Vec<_>>().join(",");
    let mut table = Table::new(&[
        "TOPIC",
        "PARTITION",
        "LEADER",
        "REPLICAS",
        "ISR",
        "LOG-START-OFFSET",
        "LOG-END-OFFSET",
        "SIZE",
    ]);
    for t in &described {
        for p in &t.partitions {
            table.row(vec![
                t.name.clone(),
                p.partition.to_string(),
                cell(p.leader),
                ids(&p.replicas),
                ids(&p.isr),
                cell(at(&starts, t, p.partition)),
                cell(at(&ends, t, p.partition)),
                cell(size(t, p.partition)),
            ]);
        }
    }
    Style::detect(json).print(&[&table], || {
        let nodes = |ids: &[i32]| Json::Arr(ids.iter().map(|&n| Json::from(n)).collect());
        Json::Arr(
            described
                .iter()
                .map(|t| {
                    let partitions = t
                        .partitions
                        .iter()
                        .map(|p| {
                            Json::Obj(vec![
                                ("partition", Json::from(p.partition)),
                                ("leader", Json::opt(p.leader, Json::from)),
                                ("leader_epoch", Json::opt(p.leader_epoch, Json::from)),
                                ("replicas", nodes(&p.replicas)),
                                ("isr", nodes(&p.isr)),
                                (
                                    "log_start_offset",
                                    Json::opt(at(&starts, t, p.partition), Json::from),
                                ),
                                (
                                    "log_end_offset",
                                    Json::opt(at(&ends, t, p.partition), Json::from),
                                ),
                                (
                                    "size_bytes",
                                    Json::opt(size(t, p.partition), |b| Json::Int(b as i64)),
                                ),
                            ])
                        })
                        .collect();
                    Json::Obj(vec![
                        ("name", Json::str(&t.name)),
                        ("id", Json::str(t.id.to_string())),
                        ("internal", Json::Bool(t.internal)),
                        ("partitions", Json::Arr(partitions)),
                    ])
                })
                .collect(),
        )
    });
    Ok(())
}

/// Each partition's size on its leader, from DescribeLogDirs. A leader that does not
/// serve it, or refuses to describe its log dirs (CLUSTER_AUTHORIZATION_FAILED), leaves
/// its partitions' sizes unknown rather than failing the description.
///
/// # Errors
/// Any other failure of DescribeLogDirs.
async fn sizes(
    admin: &Admin,
    leaders: &BTreeMap<TopicPartition, i32>,
) -> Result<BTreeMap<TopicPartition, u64>> {
    let mut brokers: Vec<i32> = leaders.values().copied().collect();
    brokers.sort_unstable();
    brokers.dedup();
    let partitions: Vec<TopicPartition> = leaders.keys().cloned().collect();
    let mut sizes = BTreeMap::new();
    for (broker, dirs) in admin.describe_log_dirs(&brokers, Some(&partitions)).await? {
        let dirs = match dirs {
            Ok(dirs) => dirs,
            Err(ClientError::UnsupportedVersion { .. }) => continue,
            Err(e) if e.code() == Some(ErrorCode::CLUSTER_AUTHORIZATION_FAILED) => continue,
            Err(e) => return Err(e).context(format!("describe log dirs of broker {broker}")),
        };
        for dir in dirs {
            for (tp, replica) in dir.replicas {
                // The leader's own replica; a future one is a copy on its way to another dir.
                if leaders.get(&tp) == Some(&broker) && !replica.is_future {
                    sizes.insert(tp, replica.size);
                }
            }
        }
    }
    Ok(sizes)
}

async fn describe_configs(admin: &Admin, topics: &[String], json: bool) -> Result<()> {
    let resources: Vec<ConfigResource> = topics.iter().map(ConfigResource::topic).collect();
    let mut table = Table::new(&["TOPIC", "CONFIG", "VALUE", "SOURCE"]);
    let mut docs = Vec::new();
    for (resource, entries) in admin.describe_configs(&resources).await? {
        let entries = entries?;
        let set: Vec<_> = entries.iter().filter(|e| !e.is_default).collect();
        for e in &set {
            let value =
                if e.sensitive { "(sensitive)".to_string() } else { cell(e.value.as_ref()) };
            table.row(vec![
                resource.name.clone(),
                e.name.clone(),
                value,
                format!("{:?}", e.source),
            ]);
        }
        let configs = set
            .iter()
            .map(|e| {
                Json::Obj(vec![
                    ("name", Json::str(&e.name)),
                    ("value", Json::opt(e.value.as_ref(), Json::str)),
                    ("source", Json::str(format!("{:?}", e.source))),
                    ("sensitive", Json::Bool(e.sensitive)),
                    ("read_only", Json::Bool(e.read_only)),
                ])
            })
            .collect();
        docs.push(Json::Obj(vec![
            ("name", Json::str(&resource.name)),
            ("configs", Json::Arr(configs)),
        ]));
    }
    Style::detect(json).print(&[&table], || Json::Arr(docs));
    Ok(())
}
