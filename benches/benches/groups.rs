//! Group coordinator measurements (harness = false; `cargo bench -p sluice-benches --bench
//! groups`):
//!
//! 1. The state machine alone, in process: 50 members join and sync (the v4+ flow with
//!    MEMBER_ID_REQUIRED), and OffsetCommit steps per second with writes completed at
//!    once. This is the coordinator's CPU cost, without I/O.
//! 2. The real broker (`SLUICED`, else `target/release/sluiced`, skipped when absent),
//!    over TCP with raw protocol clients: the time for 50 members, one thread and
//!    connection each, to join and all hold an assignment of one generation
//!    (`group.initial.rebalance.delay.ms=0`, members heartbeat every 100 ms, as a
//!    rebalance reaches running members through their heartbeats); and OffsetCommit
//!    throughput on one group from 1 and from 16 connections, in the default (page cache)
//!    and the durable (`log.flush.interval.messages=1`) mode.
//!
//! The machine is shared and noisy: compare numbers from one run.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use sluice_broker::group::request::{
    CommitRequest, GroupReply, GroupRequest, JoinRequest, OffsetToCommit, SyncRequest,
};
use sluice_broker::group::state::{GroupConfig, GroupMachine, Input, Output, TimerKey};
use sluice_broker::group::types::Protocol;
use sluice_broker::group::types::TopicPartition;
use sluice_protocol::header::{RequestHeader, ResponseHeader};
use sluice_protocol::kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use sluice_protocol::kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use sluice_protocol::kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use sluice_protocol::kafka_protocol::messages::*;
use sluice_protocol::kafka_protocol::protocol::StrBytes;
use sluice_protocol::messages::{Request, Response};

const MEMBERS: usize = 50;

fn main() {
    machine_join();
    machine_commits();
    let bin = std::env::var_os("SLUICED").map(std::path::PathBuf::from).unwrap_or_else(|| {
        // target/release/deps/groups-<hash> -> target/release/sluiced, wherever the
        // bench runs from (cargo sets the package directory as the working directory).
        let exe = std::env::current_exe().expect("bench executable path");
        exe.parent()
            .and_then(|d| d.parent())
            .map_or_else(|| "target/release/sluiced".into(), |d| d.join("sluiced"))
    });
    // `cargo test --benches` runs this without `--bench`: only the quick state-machine
    // part then, not minutes of load against a debug build.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    if !bin.exists() {
        println!("{} not found: skipping the broker measurements", bin.display());
        return;
    }
    let broker = Broker::start(&bin, &[]);
    for _ in 0..3 {
        broker_join(broker.addr);
    }
    broker_commits(broker.addr, "page cache");
    drop(broker);
    let durable = Broker::start(&bin, &["--override", "log.flush.interval.messages=1"]);
    broker_commits(durable.addr, "durable");
}

/// Steps the machine, completing writes at once; returns the replies.
fn step(c: &mut GroupMachine, input: Input, replies: &mut Vec<(u64, GroupReply)>) {
    let mut inputs = vec![input];
    while let Some(i) = inputs.pop() {
        for o in c.step(i, 0) {
            match o {
                Output::Reply { token: t, reply: r } => replies.push((t, r)),
                Output::Write { id, records: _ } => {
                    inputs.push(Input::Written { id, result: Ok(()) })
                }
                Output::SetTimer { .. } => {}
            }
        }
    }
}

fn machine_join() {
    let config = GroupConfig { initial_rebalance_delay_ms: 0, ..GroupConfig::default() };
    let rounds = 200;
    let start = Instant::now();
    for _ in 0..rounds {
        let mut c = GroupMachine::new(config.clone(), 1);
        c.finish_loading(0);
        let mut replies = Vec::new();
        let join = |id: &str| JoinRequest {
            group_id: "g".into(),
            member_id: id.into(),
            instance_id: None,
            client_id: "bench".into(),
            client_host: String::new(),
            session_timeout_ms: 10_000,
            rebalance_timeout_ms: 10_000,
            protocol_type: "consumer".into(),
            protocols: vec![Protocol {
                name: "range".into(),
                metadata: Bytes::from_static(&[0; 40]),
            }],
            require_known_member_id: true,
            supports_skip_assignment: false,
        };
        // All members ask for an id, then join with it in one join phase (the group is
        // held in PreparingRebalance by a first member that the timer has not released).
        let mut ids = Vec::new();
        for t in 0..MEMBERS as u64 {
            step(
                &mut c,
                Input::Request { token: t, request: GroupRequest::Join(join("")) },
                &mut replies,
            );
            let Some((_, GroupReply::Join(r))) = replies.pop() else { panic!("member id") };
            ids.push(r.member_id);
        }
        for (t, id) in ids.iter().enumerate() {
            step(
                &mut c,
                Input::Request { token: 100 + t as u64, request: GroupRequest::Join(join(id)) },
                &mut replies,
            );
        }
        // The first expiry extends the initial delay (members arrived during it), by
        // zero ms here; the second ends the join phase.
        for _ in 0..2 {
            let timer = Input::Timer(TimerKey::Join("g".into()));
            step(&mut c, timer, &mut replies);
        }
        let joined = replies.drain(..).filter(|(_, r)| matches!(r, GroupReply::Join(_))).count();
        assert_eq!(joined, MEMBERS);
        let assignments: Vec<(String, Bytes)> =
            ids.iter().map(|id| (id.clone(), Bytes::from_static(&[1; 64]))).collect();
        for (t, id) in ids.iter().enumerate().rev() {
            let sync = SyncRequest {
                group_id: "g".into(),
                generation: 1,
                member_id: id.clone(),
                instance_id: None,
                protocol_type: None,
                protocol_name: None,
                assignments: if t == 0 { assignments.clone() } else { Vec::new() },
            };
            step(
                &mut c,
                Input::Request { token: 200 + t as u64, request: GroupRequest::Sync(sync) },
                &mut replies,
            );
        }
        assert_eq!(replies.len(), MEMBERS, "every member synced");
    }
    let per = start.elapsed() / rounds;
    println!("state machine: {MEMBERS} members join and sync in {per:?} (mean of {rounds})");
}

fn machine_commits() {
    let mut c = GroupMachine::new(GroupConfig::default(), 1);
    c.finish_loading(0);
    let mut replies = Vec::new();
    let n = 200_000u64;
    let start = Instant::now();
    for t in 0..n {
        let commit = CommitRequest {
            group_id: "g".into(),
            generation: -1,
            member_id: String::new(),
            instance_id: None,
            retention_ms: -1,
            offsets: vec![OffsetToCommit {
                partition: TopicPartition { topic: "t".into(), partition: (t % 6) as i32 },
                offset: t as i64,
                leader_epoch: -1,
                commit_timestamp: -1,
                metadata: None,
            }],
        };
        step(
            &mut c,
            Input::Request { token: t, request: GroupRequest::Commit(commit) },
            &mut replies,
        );
        replies.clear();
    }
    let rate = n as f64 / start.elapsed().as_secs_f64();
    println!("state machine: {rate:.0} OffsetCommit steps/s (one partition each, no I/O)");
}

/// A broker process on a free port with a temporary data directory.
struct Broker {
    addr: SocketAddr,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Broker {
    fn start(bin: &std::path::Path, extra: &[&str]) -> Broker {
        let dir = tempfile::tempdir().unwrap();
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let child = Command::new(bin)
            .args(["--listen", &addr.to_string(), "--data-dir"])
            .arg(dir.path())
            .args(["--override", "group.initial.rebalance.delay.ms=0"])
            .args(extra)
            .stderr(Stdio::null())
            .spawn()
            .expect("start sluiced");
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(addr).is_err() {
            assert!(Instant::now() < deadline, "sluiced did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Broker { addr, child, _dir: dir }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A minimal blocking Kafka connection.
struct Raw {
    stream: TcpStream,
    correlation: i32,
}

impl Raw {
    fn connect(addr: SocketAddr) -> Raw {
        let stream = TcpStream::connect(addr).unwrap();
        stream.set_nodelay(true).unwrap();
        Raw { stream, correlation: 0 }
    }

    fn call(&mut self, version: i16, request: Request) -> Response {
        self.correlation += 1;
        let key = request.api_key();
        let header = RequestHeader::new(
            key,
            version,
            self.correlation,
            Some(StrBytes::from_static_str("bench")),
        );
        let mut buf = BytesMut::new();
        request.encode_frame(&header, &mut buf).unwrap();
        self.stream.write_all(&buf).unwrap();
        let mut size = [0u8; 4];
        self.stream.read_exact(&mut size).unwrap();
        let mut frame = vec![0u8; i32::from_be_bytes(size) as usize];
        self.stream.read_exact(&mut frame).unwrap();
        let hv = ResponseHeader::for_request(&header).header_version;
        let (_, body) = ResponseHeader::decode(Bytes::from(frame), hv).unwrap();
        Response::decode(key, version, body).unwrap()
    }
}

fn s(v: &str) -> StrBytes {
    StrBytes::from(v.to_owned())
}

/// One member: join (v9), sync (v5), heartbeat every 100 ms, rejoin on
/// REBALANCE_IN_PROGRESS; reports each generation it synced in.
fn member(addr: SocketAddr, group: String, synced: mpsc::Sender<i32>, stop: Arc<AtomicBool>) {
    let mut c = Raw::connect(addr);
    let mut id = String::new();
    while !stop.load(Ordering::Relaxed) {
        let mut j = JoinGroupRequest::default();
        j.group_id = GroupId(s(&group));
        (j.session_timeout_ms, j.rebalance_timeout_ms) = (10_000, 10_000);
        j.member_id = s(&id);
        j.protocol_type = s("consumer");
        let mut p = JoinGroupRequestProtocol::default();
        p.name = s("range");
        p.metadata = Bytes::from_static(&[0; 40]);
        j.protocols = vec![p];
        let Response::JoinGroup(jr) = c.call(9, Request::JoinGroup(j)) else { panic!() };
        id = jr.member_id.to_string();
        if jr.error_code != 0 {
            continue;
        }
        let mut sy = SyncGroupRequest::default();
        sy.group_id = GroupId(s(&group));
        sy.generation_id = jr.generation_id;
        sy.member_id = s(&id);
        sy.assignments = jr
            .members
            .iter()
            .map(|m| {
                let mut a = SyncGroupRequestAssignment::default();
                a.member_id = m.member_id.clone();
                a.assignment = Bytes::from_static(&[1; 64]);
                a
            })
            .collect();
        let Response::SyncGroup(sr) = c.call(5, Request::SyncGroup(sy)) else { panic!() };
        if sr.error_code != 0 {
            continue;
        }
        let _ = synced.send(jr.generation_id);
        loop {
            std::thread::sleep(Duration::from_millis(100));
            if stop.load(Ordering::Relaxed) {
                return;
            }
            let mut h = HeartbeatRequest::default();
            h.group_id = GroupId(s(&group));
            h.generation_id = jr.generation_id;
            h.member_id = s(&id);
            let Response::Heartbeat(hr) = c.call(4, Request::Heartbeat(h)) else { panic!() };
            if hr.error_code != 0 {
                break;
            }
        }
    }
}

fn broker_join(addr: SocketAddr) {
    static ROUND: AtomicU64 = AtomicU64::new(0);
    let group = format!("join-{}", ROUND.fetch_add(1, Ordering::Relaxed));
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpsc::channel();
    let start = Instant::now();
    let members: Vec<_> = (0..MEMBERS)
        .map(|_| {
            let (tx, stop, group) = (tx.clone(), Arc::clone(&stop), group.clone());
            std::thread::spawn(move || member(addr, group, tx, stop))
        })
        .collect();
    // Stable: every member synced in one generation (so it holds all of them).
    let mut counts = std::collections::BTreeMap::<i32, usize>::new();
    let generation = loop {
        let g = rx.recv_timeout(Duration::from_secs(60)).expect("members keep syncing");
        *counts.entry(g).or_default() += 1;
        if counts[&g] == MEMBERS {
            break g;
        }
    };
    let took = start.elapsed();
    stop.store(true, Ordering::Relaxed);
    for m in members {
        let _ = m.join();
    }
    println!("broker: {MEMBERS} members joined and synced in {took:?} (generation {generation}, 100 ms heartbeats)");
}

fn commit_loop(addr: SocketAddr, until: Instant, done: &AtomicU64, partition: i32) {
    let mut c = Raw::connect(addr);
    let mut offset = 0;
    while Instant::now() < until {
        let mut p = OffsetCommitRequestPartition::default();
        p.partition_index = partition;
        p.committed_offset = offset;
        let mut t = OffsetCommitRequestTopic::default();
        t.name = TopicName(s("bench-topic"));
        t.partitions = vec![p];
        let mut r = OffsetCommitRequest::default();
        r.group_id = GroupId(s("bench-commits"));
        r.generation_id_or_member_epoch = -1;
        r.topics = vec![t];
        let Response::OffsetCommit(resp) = c.call(9, Request::OffsetCommit(r)) else { panic!() };
        assert_eq!(resp.topics[0].partitions[0].error_code, 0);
        offset += 1;
        done.fetch_add(1, Ordering::Relaxed);
    }
}

fn broker_commits(addr: SocketAddr, mode: &str) {
    // The topic must exist for its offsets to be accepted.
    let mut c = Raw::connect(addr);
    let mut m = MetadataRequest::default();
    let mut t =
        sluice_protocol::kafka_protocol::messages::metadata_request::MetadataRequestTopic::default(
        );
    t.name = Some(TopicName(s("bench-topic")));
    m.topics = Some(vec![t]);
    m.allow_auto_topic_creation = true;
    c.call(12, Request::Metadata(m));
    for connections in [1, 16] {
        let done = Arc::new(AtomicU64::new(0));
        let until = Instant::now() + Duration::from_secs(3);
        let start = Instant::now();
        let handles: Vec<_> = (0..connections)
            .map(|_| {
                let done = Arc::clone(&done);
                std::thread::spawn(move || commit_loop(addr, until, &done, 0))
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        let rate = done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64();
        println!("broker ({mode}): {rate:.0} OffsetCommits/s on one group from {connections} connection(s)");
    }
}
