//! Partitions are cheap: 5,000 of them on a broker whose open-file limit is 512, every
//! one given records and read back, across a clean restart and a SIGKILL, with the
//! broker's descriptors bounded by its open-segment cache throughout.

use std::collections::BTreeMap;

use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{CreateTopicsRequest, FetchRequest, ProduceRequest};
use sluice_protocol::messages::{Request, Response};
use sluice_protocol::record::Compression;
use sluice_tests::{BrokerProcess, RawClient};

use crate::client::{batch, name, values};

const TOPICS: usize = 10;
const PARTITIONS: i32 = 500;
const OPEN_FILE_LIMIT: u64 = 512;
/// The default bound on open segments is half the open-file limit; the rest of the
/// broker (sockets, epoll, its log, files opened for a moment) stays well within 64.
const MAX_DESCRIPTORS: usize = OPEN_FILE_LIMIT as usize / 2 + BROKER_OWN_DESCRIPTORS;
/// What the broker holds besides segment files.
const BROKER_OWN_DESCRIPTORS: usize = 64;

fn topic(t: usize) -> String {
    format!("many-{t}")
}

fn descriptors(b: &BrokerProcess) -> usize {
    std::fs::read_dir(format!("/proc/{}/fd", b.pid())).unwrap().count()
}

fn assert_bounded(b: &BrokerProcess, when: &str) {
    let n = descriptors(b);
    assert!(n <= MAX_DESCRIPTORS, "{n} descriptors {when}, bound {MAX_DESCRIPTORS}");
}

/// One record set per partition of every topic, one ProduceRequest per topic.
fn produce_round(c: &mut RawClient, round: usize) {
    for t in 0..TOPICS {
        let mut data = TopicProduceData::default();
        data.name = name(&topic(t));
        for p in 0..PARTITIONS {
            let mut pd = PartitionProduceData::default();
            pd.index = p;
            pd.records = Some(batch(&format!("r{round}-p{p}"), 2, Compression::None));
            data.partition_data.push(pd);
        }
        let mut req = ProduceRequest::default();
        req.acks = 1;
        req.timeout_ms = 30_000;
        req.topic_data = vec![data];
        let Response::Produce(r) = c.call(9, Request::Produce(req)) else { panic!("produce") };
        for pr in &r.responses[0].partition_responses {
            assert_eq!(pr.error_code, 0, "{} partition {}", topic(t), pr.index);
            assert_eq!(pr.base_offset, 2 * round as i64, "partition {}", pr.index);
        }
    }
}

/// Every value of every partition, read with one Fetch per topic from offset 0.
fn fetch_everything(c: &mut RawClient) -> BTreeMap<(usize, i32), Vec<String>> {
    let mut out = BTreeMap::new();
    for t in 0..TOPICS {
        let mut ft = FetchTopic::default();
        ft.topic = name(&topic(t));
        for p in 0..PARTITIONS {
            let mut fp = FetchPartition::default();
            fp.partition = p;
            fp.fetch_offset = 0;
            fp.partition_max_bytes = 1 << 20;
            ft.partitions.push(fp);
        }
        let mut f = FetchRequest::default();
        f.max_wait_ms = 0;
        f.max_bytes = 64 << 20;
        f.topics = vec![ft];
        let Response::Fetch(r) = c.call(12, Request::Fetch(f)) else { panic!("fetch") };
        for fp in &r.responses[0].partitions {
            assert_eq!(fp.error_code, 0, "{} partition {}", topic(t), fp.partition_index);
            let records = fp.records.clone().unwrap_or_default();
            let vs = values(&records).into_iter().map(|(_, v)| v).collect();
            out.insert((t, fp.partition_index), vs);
        }
    }
    out
}

fn assert_rounds(c: &mut RawClient, rounds: usize) {
    let got = fetch_everything(c);
    assert_eq!(got.len(), TOPICS * PARTITIONS as usize);
    for ((t, p), vs) in got {
        let want: Vec<String> =
            (0..rounds).flat_map(|r| (0..2).map(move |i| format!("r{r}-p{p}-{i}"))).collect();
        assert_eq!(vs, want, "{} partition {p}", topic(t));
    }
}

#[test]
fn five_thousand_partitions_fit_in_512_descriptors_across_a_restart_and_a_kill() {
    let mut b = BrokerProcess::start_with_open_file_limit(&[], OPEN_FILE_LIMIT);
    let mut c = RawClient::connect(b.addr);
    let mut create = CreateTopicsRequest::default();
    create.timeout_ms = 60_000;
    for t in 0..TOPICS {
        let mut ct = CreatableTopic::default();
        ct.name = name(&topic(t));
        ct.num_partitions = PARTITIONS;
        ct.replication_factor = 1;
        create.topics.push(ct);
    }
    let Response::CreateTopics(r) = c.call(7, Request::CreateTopics(create)) else { panic!() };
    for t in &r.topics {
        assert_eq!(t.error_code, 0, "{:?}: {:?}", t.name, t.error_message);
    }
    assert_bounded(&b, "after creating 5,000 partitions");

    produce_round(&mut c, 0);
    assert_bounded(&b, "after producing to every partition");
    assert_rounds(&mut c, 1);
    assert_bounded(&b, "after reading every partition");

    b.stop();
    b.restart();
    // After a clean stop a start opens no partition: each opens on its first use.
    let at_start = descriptors(&b);
    assert!(at_start <= BROKER_OWN_DESCRIPTORS, "{at_start} descriptors after a clean restart");
    let mut c = RawClient::connect(b.addr);
    assert_rounds(&mut c, 1);
    produce_round(&mut c, 1);
    assert_bounded(&b, "after producing again");

    b.kill();
    b.restart();
    assert_bounded(&b, "after recovering from SIGKILL");
    let mut c = RawClient::connect(b.addr);
    assert_rounds(&mut c, 2);
    assert_bounded(&b, "after reading everything back");
    assert!(b.log().contains("sluiced ready"));
}
