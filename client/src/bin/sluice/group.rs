//! `sluice group list|describe|delete|reset-offsets`, after Kafka's kafka-consumer-groups:
//! the same columns, and a reset that only prints its plan without `--execute`.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use clap::Subcommand;
use sluice_client::admin::{
    Admin, GroupDescription, GroupState, ListedOffset, MemberAssignment, MemberDescription,
    OffsetAndMetadata, OffsetSpec,
};
use sluice_client::{ClientConfig, ClientError, TopicPartition};
use sluice_protocol::error_code::ErrorCode;

use crate::error::{client_line, CliError, Result};
use crate::format::json::Json;
use crate::format::table::{cell, Style, Table};
use crate::format::time::parse_datetime;

/// `sluice group` commands.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  sluice group list\n  sluice group describe --group billing\n  \
    sluice group reset-offsets --group billing --topic orders --to-earliest --execute"
)]
pub struct Args {
    #[command(subcommand)]
    command: GroupCommand,
}

#[derive(Debug, Subcommand)]
enum GroupCommand {
    /// List groups with their state and protocol type.
    #[command(after_help = "Example:\n  sluice group list --json")]
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Per partition: the committed offset, the log end offset, the lag and the member
    /// that owns it; members without partitions get a row of their own.
    #[command(after_help = "Example:\n  sluice group describe --group billing\n\n\
        Columns (tab-separated when piped): GROUP TOPIC PARTITION CURRENT-OFFSET \
        LOG-END-OFFSET LAG CONSUMER-ID HOST CLIENT-ID; - where there is no value.")]
    Describe {
        /// The group (repeatable).
        #[arg(long = "group", required = true)]
        groups: Vec<String>,
        /// Print JSON, with the group's state, protocol and members.
        #[arg(long)]
        json: bool,
    },
    /// Delete groups that have no members, with their committed offsets.
    #[command(after_help = "Example:\n  sluice group delete --group old-billing")]
    Delete {
        /// The group (repeatable).
        #[arg(long = "group", required = true)]
        groups: Vec<String>,
    },
    /// Plan, and with --execute commit, new offsets for a group that has no members.
    ResetOffsets(Reset),
}

/// `sluice group reset-offsets` flags.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    sluice group reset-offsets --group billing --topic orders --to-earliest\n  \
    sluice group reset-offsets --group billing --topic orders:0,1 --shift-by -100 --execute\n  \
    sluice group reset-offsets --group billing --all-topics --to-datetime 2024-05-06T07:00:00Z\n\n\
    Prints GROUP TOPIC PARTITION CURRENT-OFFSET NEW-OFFSET per partition. Nothing changes \
    without --execute. Offsets are kept within each partition's log start and end, and \
    the group must have no members (Empty, or Dead: no such group yet).")]
struct Reset {
    /// The group.
    #[arg(long)]
    group: String,
    /// A topic, or TOPIC:P,P for some of its partitions (repeatable).
    #[arg(long = "topic", value_name = "TOPIC[:P,P]", required_unless_present = "all_topics")]
    topics: Vec<String>,
    /// Every topic the group has committed offsets for.
    #[arg(long, conflicts_with = "topics")]
    all_topics: bool,
    #[command(flatten)]
    to: ResetTo,
    /// Commit the new offsets (without it, only the plan is printed).
    #[arg(long)]
    execute: bool,
    /// Only print the plan (the default; accepted for Kafka's scripts).
    #[arg(long, conflicts_with = "execute")]
    dry_run: bool,
}

#[derive(Debug, clap::Args)]
#[group(required = true, multiple = false)]
struct ResetTo {
    /// To each partition's log start offset.
    #[arg(long)]
    to_earliest: bool,
    /// To each partition's log end offset.
    #[arg(long)]
    to_latest: bool,
    /// To this offset.
    #[arg(long, value_name = "N")]
    to_offset: Option<i64>,
    /// To the first offset at or after this time (RFC 3339 or ms), else the end.
    #[arg(long, value_name = "TIME", value_parser = parse_datetime)]
    to_datetime: Option<i64>,
    /// Move the committed offset by N (negative: back).
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    shift_by: Option<i64>,
}

/// Runs a `sluice group` command.
pub async fn run(config: &ClientConfig, args: Args) -> Result<()> {
    let admin = Admin::new(config)?;
    let outcome = match args.command {
        GroupCommand::List { json } => list(&admin, json).await,
        GroupCommand::Describe { groups, json } => describe(&admin, &groups, json).await,
        GroupCommand::Delete { groups } => {
            let mut failed = 0;
            for (group, outcome) in admin.delete_groups(&groups).await? {
                match outcome {
                    Ok(()) => println!("deleted group {group}"),
                    Err(e) => {
                        failed += 1;
                        eprintln!("{}", client_line(&e));
                    }
                }
            }
            if failed > 0 {
                Err(CliError::Reported(format!("{failed} groups")))
            } else {
                Ok(())
            }
        }
        GroupCommand::ResetOffsets(reset) => reset_offsets(&admin, &reset).await,
    };
    admin.close().await;
    outcome
}

async fn list(admin: &Admin, json: bool) -> Result<()> {
    let groups = admin.list_groups().await?;
    let mut table = Table::new(&["GROUP", "STATE", "PROTOCOL-TYPE"]);
    for g in &groups {
        let state = g.state.map(|s| format!("{s:?}"));
        table.row(vec![g.group_id.clone(), cell(state), g.protocol_type.clone()]);
    }
    Style::detect(json).print(&[&table], || {
        Json::Arr(
            groups
                .iter()
                .map(|g| {
                    Json::Obj(vec![
                        ("group", Json::str(&g.group_id)),
                        ("state", Json::opt(g.state, |s| Json::str(format!("{s:?}")))),
                        ("protocol_type", Json::str(&g.protocol_type)),
                    ])
                })
                .collect(),
        )
    });
    Ok(())
}

/// One row of `describe`: a partition the group has an offset for or a member owns.
struct Row<'a> {
    tp: TopicPartition,
    committed: Option<i64>,
    end: Option<i64>,
    owner: Option<&'a MemberDescription>,
}

/// The partitions a member was assigned.
fn assigned(m: &MemberDescription) -> Vec<TopicPartition> {
    match &m.assignment {
        MemberAssignment::Consumer(a) => a
            .assigned_partitions
            .iter()
            .flat_map(|t| t.partitions.iter().map(|&p| TopicPartition::new(t.topic.as_str(), p)))
            .collect(),
        MemberAssignment::Raw(_) => Vec::new(),
    }
}

async fn describe(admin: &Admin, groups: &[String], json: bool) -> Result<()> {
    let described = admin.describe_groups(groups).await?;
    let existing: HashSet<String> =
        admin.list_topics(true).await?.into_iter().map(|t| t.name).collect();
    let mut table = Table::new(&[
        "GROUP",
        "TOPIC",
        "PARTITION",
        "CURRENT-OFFSET",
        "LOG-END-OFFSET",
        "LAG",
        "CONSUMER-ID",
        "HOST",
        "CLIENT-ID",
    ]);
    let mut docs = Vec::new();
    for (group, description) in described {
        let description = description?;
        let committed = admin.list_consumer_group_offsets(&group, None).await?;
        if description.state == GroupState::Dead && committed.is_empty() {
            let what = format!("group {group} does not exist");
            return Err(ClientError::kafka(ErrorCode::GROUP_ID_NOT_FOUND, None, what).into());
        }
        let mut owners: BTreeMap<TopicPartition, &MemberDescription> = BTreeMap::new();
        for m in &description.members {
            for tp in assigned(m) {
                owners.insert(tp, m);
            }
        }
        let tps: BTreeSet<TopicPartition> =
            committed.keys().chain(owners.keys()).cloned().collect();
        // A deleted topic's offsets stay until they expire: they have no log end.
        let live: Vec<(TopicPartition, OffsetSpec)> = tps
            .iter()
            .filter(|tp| existing.contains(&*tp.topic))
            .map(|tp| (tp.clone(), OffsetSpec::Latest))
            .collect();
        let ends = admin.list_offsets(&live).await?;
        let rows: Vec<Row<'_>> = tps
            .iter()
            .map(|tp| Row {
                tp: tp.clone(),
                committed: committed.get(tp).map(|o| o.offset),
                end: ends.get(tp).map(|o| o.offset),
                owner: owners.get(tp).copied(),
            })
            .collect();
        let lag = |r: &Row<'_>| Some((r.end? - r.committed?).max(0));
        for r in &rows {
            table.row(vec![
                group.clone(),
                r.tp.topic.to_string(),
                r.tp.partition.to_string(),
                cell(r.committed),
                cell(r.end),
                cell(lag(r)),
                cell(r.owner.map(|m| &m.member_id)),
                cell(r.owner.map(|m| &m.client_host)),
                cell(r.owner.map(|m| &m.client_id)),
            ]);
        }
        let idle = description.members.iter().filter(|m| assigned(m).is_empty());
        for m in idle {
            let member = [&m.member_id, &m.client_host, &m.client_id].map(|s| s.to_string());
            let mut cells = vec![group.clone()];
            cells.extend(["-", "-", "-", "-", "-"].map(String::from));
            cells.extend(member);
            table.row(cells);
        }
        docs.push(group_json(&description, &rows, lag));
    }
    Style::detect(json).print(&[&table], || Json::Arr(docs));
    Ok(())
}

fn group_json(
    d: &GroupDescription,
    rows: &[Row<'_>],
    lag: impl Fn(&Row<'_>) -> Option<i64>,
) -> Json {
    let members = d
        .members
        .iter()
        .map(|m| {
            let partitions = assigned(m)
                .iter()
                .map(|tp| {
                    Json::Obj(vec![
                        ("topic", Json::str(&*tp.topic)),
                        ("partition", Json::from(tp.partition)),
                    ])
                })
                .collect();
            Json::Obj(vec![
                ("member_id", Json::str(&m.member_id)),
                ("group_instance_id", Json::opt(m.group_instance_id.as_ref(), Json::str)),
                ("client_id", Json::str(&m.client_id)),
                ("host", Json::str(&m.client_host)),
                ("assignment", Json::Arr(partitions)),
            ])
        })
        .collect();
    let offsets = rows
        .iter()
        .map(|r| {
            Json::Obj(vec![
                ("topic", Json::str(&*r.tp.topic)),
                ("partition", Json::from(r.tp.partition)),
                ("committed_offset", Json::opt(r.committed, Json::from)),
                ("log_end_offset", Json::opt(r.end, Json::from)),
                ("lag", Json::opt(lag(r), Json::from)),
                ("member_id", Json::opt(r.owner.map(|m| &m.member_id), Json::str)),
            ])
        })
        .collect();
    Json::Obj(vec![
        ("group", Json::str(&d.group_id)),
        ("state", Json::str(format!("{:?}", d.state))),
        ("protocol_type", Json::str(&d.protocol_type)),
        ("protocol", Json::str(&d.protocol)),
        ("members", Json::Arr(members)),
        ("offsets", Json::Arr(offsets)),
    ])
}

/// `TOPIC` or `TOPIC:P,P,...`.
fn topic_spec(spec: &str) -> Result<(String, Option<Vec<i32>>)> {
    let Some((topic, list)) = spec.split_once(':') else { return Ok((spec.to_string(), None)) };
    let partitions =
        list.split(',').map(|p| p.trim().parse::<i32>()).collect::<Result<Vec<i32>, _>>().map_err(
            |e| {
                CliError::Usage(format!("--topic {spec}: partitions are numbers, TOPIC:0,1,2: {e}"))
            },
        )?;
    Ok((topic.to_string(), Some(partitions)))
}

async fn reset_offsets(admin: &Admin, reset: &Reset) -> Result<()> {
    let group = &reset.group;
    let (_, description) = admin.describe_groups(std::slice::from_ref(group)).await?.remove(0);
    let description = description?;
    if !matches!(description.state, GroupState::Empty | GroupState::Dead) {
        return Err(CliError::Refused(format!(
            "group {group} is {:?} with {} members: offsets can be reset only while it has \
             none (Empty); stop its consumers first",
            description.state,
            description.members.len()
        )));
    }
    let committed = admin.list_consumer_group_offsets(group, None).await?;
    let mut tps: BTreeSet<TopicPartition> = BTreeSet::new();
    if reset.all_topics {
        tps.extend(committed.keys().cloned());
    }
    for spec in &reset.topics {
        match topic_spec(spec)? {
            (topic, Some(partitions)) => {
                tps.extend(partitions.iter().map(|&p| TopicPartition::new(topic.as_str(), p)));
            }
            (topic, None) => {
                let described = admin.describe_topics(std::slice::from_ref(&topic)).await?;
                for p in described.iter().flat_map(|t| &t.partitions) {
                    tps.insert(TopicPartition::new(topic.as_str(), p.partition));
                }
            }
        }
    }
    let tps: Vec<TopicPartition> = tps.into_iter().collect();
    let lookup = |spec: OffsetSpec| {
        let specs: Vec<(TopicPartition, OffsetSpec)> =
            tps.iter().map(|tp| (tp.clone(), spec)).collect();
        async move { admin.list_offsets(&specs).await }
    };
    let starts = lookup(OffsetSpec::Earliest).await?;
    let ends = lookup(OffsetSpec::Latest).await?;
    let by_time = match reset.to.to_datetime {
        Some(ms) => lookup(OffsetSpec::Timestamp(ms)).await?,
        None => BTreeMap::new(),
    };
    let edge = |map: &BTreeMap<TopicPartition, ListedOffset>, tp: &TopicPartition| {
        let missing = || CliError::Refused(format!("no log offsets for {tp}"));
        map.get(tp).map(|o| o.offset).ok_or_else(missing)
    };
    let mut plan: Vec<(TopicPartition, Option<i64>, i64)> = Vec::new();
    for tp in &tps {
        let (start, end) = (edge(&starts, tp)?, edge(&ends, tp)?);
        let current = committed.get(tp).map(|o| o.offset);
        let to = &reset.to;
        let target = if to.to_earliest {
            start
        } else if to.to_latest {
            end
        } else if let Some(n) = to.to_offset {
            n
        } else if to.to_datetime.is_some() {
            // No record at or after that time: the end, as Kafka's tool does.
            by_time.get(tp).map(|o| o.offset).filter(|&o| o >= 0).unwrap_or(end)
        } else {
            let by = to.shift_by.unwrap_or(0);
            let current = current.ok_or_else(|| {
                CliError::Refused(format!(
                    "cannot shift {tp} in group {group}: it has no committed offset"
                ))
            })?;
            current.saturating_add(by)
        };
        plan.push((tp.clone(), current, target.clamp(start, end)));
    }
    let mut table = Table::new(&["GROUP", "TOPIC", "PARTITION", "CURRENT-OFFSET", "NEW-OFFSET"]);
    for (tp, current, target) in &plan {
        table.row(vec![
            group.clone(),
            tp.topic.to_string(),
            tp.partition.to_string(),
            cell(*current),
            target.to_string(),
        ]);
    }
    Style::detect(false).print(&[&table], || Json::Null);
    if !reset.execute {
        eprintln!("dry run: nothing changed; add --execute to commit these offsets");
        return Ok(());
    }
    let offsets: Vec<(TopicPartition, OffsetAndMetadata)> =
        plan.iter().map(|(tp, _, target)| (tp.clone(), OffsetAndMetadata::new(*target))).collect();
    let mut failed = 0;
    for (_, outcome) in admin.alter_consumer_group_offsets(group, &offsets).await? {
        if let Err(e) = outcome {
            failed += 1;
            eprintln!("{}", client_line(&e));
        }
    }
    if failed > 0 {
        return Err(CliError::Reported(format!("{failed} partitions")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_specs_name_a_topic_or_some_partitions() {
        assert_eq!(topic_spec("orders").unwrap(), ("orders".into(), None));
        assert_eq!(topic_spec("orders:0, 2").unwrap(), ("orders".into(), Some(vec![0, 2])));
        assert!(topic_spec("orders:x").is_err());
    }
}
