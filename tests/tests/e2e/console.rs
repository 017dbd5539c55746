//! The console on the metrics listener: `/metrics` parsed by a strict Prometheus text
//! parser, its counters moving by exactly what a test produced and fetched; `/api` JSON
//! against what the admin APIs report for the same topics and groups (a confluent-kafka
//! workload); `/health`; refused HTTP; the page in a headless Chromium; its load time with
//! 1,000 partitions.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use kafka_protocol::messages::create_topics_response::CreateTopicsResponse;
use serde_json::Value;
use sluice_client::admin::{Admin, GroupState, MemberAssignment, NewTopic, OffsetSpec};
use sluice_client::{ClientConfig, TopicPartition};
use sluice_protocol::error_code::ErrorCode;
use sluice_protocol::messages::{Request, Response};
use sluice_protocol::record::Compression;
use sluice_tests::{BrokerProcess, RawClient};

use crate::client::{batch, create_request, fetch_request, produce_request, produce_response};
use crate::rust_producer::runtime;

/// Status, head and body of one request sent as `raw`.
fn http_raw(addr: SocketAddr, raw: &[u8]) -> (u16, String, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    // The server may answer and close before it has read everything: ignore write errors.
    let _ = s.write_all(raw);
    let mut bytes = Vec::new();
    let _ = s.read_to_end(&mut bytes);
    let text = String::from_utf8(bytes).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, head.to_owned(), body.to_owned())
}

fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let (status, _, body) =
        http_raw(addr, format!("GET {path} HTTP/1.1\r\nHost: sluiced\r\n\r\n").as_bytes());
    (status, body)
}

fn get_json(addr: SocketAddr, path: &str) -> Value {
    let (status, body) = get(addr, path);
    assert_eq!(status, 200, "{path}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body}"))
}

/// A series: metric name and its labels.
type Series = (String, BTreeMap<String, String>);

/// Parses the Prometheus text format (0.0.4) strictly: every sample belongs to a family
/// declared by one `# TYPE` line before it, a family's lines are contiguous, names and
/// labels are well formed, values are numbers, no series appears twice.
fn parse_prometheus(text: &str) -> HashMap<Series, f64> {
    let name_ok = |n: &str| {
        let mut chars = n.chars();
        chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    };
    let mut types: HashMap<String, String> = HashMap::new();
    let mut finished: Vec<String> = Vec::new();
    let mut current: Option<String> = None;
    let mut samples = HashMap::new();
    for (n, line) in text.lines().enumerate() {
        let at = format!("line {}: {line:?}", n + 1);
        if let Some(rest) = line.strip_prefix("# ") {
            let mut parts = rest.splitn(3, ' ');
            let (kind, name) = (parts.next().unwrap(), parts.next().expect(&at));
            assert!(name_ok(name), "{at}: bad name");
            if kind == "TYPE" {
                let t = parts.next().expect(&at);
                assert!(
                    ["counter", "gauge", "histogram", "summary", "untyped"].contains(&t),
                    "{at}: bad type"
                );
                assert!(types.insert(name.to_owned(), t.to_owned()).is_none(), "{at}: TYPE twice");
                if let Some(c) = current.replace(name.to_owned()) {
                    finished.push(c);
                }
            }
            continue;
        }
        assert!(!line.is_empty() && !line.starts_with('#'), "{at}: stray line");
        let (series, value) = line.rsplit_once(' ').expect(&at);
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v.parse().unwrap_or_else(|_| panic!("{at}: bad value")),
        };
        let (name, labels) = match series.split_once('{') {
            Some((name, rest)) => {
                let inner = rest.strip_suffix('}').expect(&at);
                (name, parse_labels(inner, &at))
            }
            None => (series, BTreeMap::new()),
        };
        assert!(name_ok(name), "{at}: bad name");
        let family = if types.contains_key(name) {
            name.to_owned()
        } else {
            let base = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| name.strip_suffix(s))
                .filter(|b| {
                    matches!(types.get(*b).map(String::as_str), Some("histogram" | "summary"))
                })
                .unwrap_or_else(|| panic!("{at}: no TYPE for {name}"));
            base.to_owned()
        };
        assert_eq!(current.as_deref(), Some(family.as_str()), "{at}: family lines not contiguous");
        assert!(!finished.contains(&family), "{at}: family split");
        let key = (name.to_owned(), labels);
        assert!(samples.insert(key, value).is_none(), "{at}: duplicate series");
    }
    samples
}

fn parse_labels(inner: &str, at: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    let mut rest = inner;
    while !rest.is_empty() {
        let (name, after) = rest.split_once("=\"").unwrap_or_else(|| panic!("{at}: bad label"));
        assert!(
            !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "{at}: bad label name {name:?}"
        );
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next() {
                Some((_, '\\')) => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, c @ ('\\' | '"'))) => value.push(c),
                    _ => panic!("{at}: bad escape"),
                },
                Some((i, '"')) => break i,
                Some((_, c)) => value.push(c),
                None => panic!("{at}: unterminated label value"),
            }
        };
        assert!(labels.insert(name.to_owned(), value).is_none(), "{at}: label twice");
        rest = &after[end + 1..];
        rest = rest.strip_prefix(',').unwrap_or(rest);
    }
    labels
}

fn scrape(broker: &BrokerProcess) -> HashMap<Series, f64> {
    let (status, body) = get(broker.metrics, "/metrics");
    assert_eq!(status, 200);
    parse_prometheus(&body)
}

fn value(m: &HashMap<Series, f64>, name: &str, labels: &[(&str, &str)]) -> f64 {
    let labels = labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    m.get(&(name.to_owned(), labels)).copied().unwrap_or(0.0)
}

fn meter(m: &HashMap<Series, f64>, part: &str, topic: Option<&str>) -> f64 {
    let name = format!("kafka_server_brokertopicmetrics_{part}_total");
    match topic {
        Some(t) => value(m, &name, &[("topic", t)]),
        None => value(m, &name, &[]),
    }
}

#[test]
fn prometheus_text_parser_refuses_malformed_exposition() {
    let ok = "# TYPE a counter\na 1\na{x=\"q\\\"\"} 2\n# TYPE h histogram\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n";
    assert_eq!(parse_prometheus(ok).len(), 5);
    for bad in [
        "a 1\n",
        "# TYPE a counter\na one\n",
        "# TYPE a counter\na 1\na 2\n",
        "# TYPE a counter\n# TYPE b counter\nb 1\na 1\n",
        "# TYPE a counter\na{x=\"1} 1\n",
        "# TYPE a counter\n# TYPE a gauge\n",
        "# TYPE 1a counter\n",
    ] {
        assert!(std::panic::catch_unwind(|| parse_prometheus(bad)).is_err(), "{bad:?}");
    }
}

#[test]
fn metrics_move_by_exactly_the_records_and_bytes_produced_and_fetched() {
    let broker = BrokerProcess::start(&[]);
    let mut c = RawClient::connect(broker.addr);
    let Response::CreateTopics(CreateTopicsResponse { topics, .. }) =
        c.call(5, Request::CreateTopics(create_request("metered", 2)))
    else {
        panic!("create topics")
    };
    assert_eq!(topics[0].error_code, 0);
    let before = scrape(&broker);
    assert_eq!(meter(&before, "messagesin", Some("metered")), 0.0);

    let a = batch("a", 10, Compression::None);
    let b = batch("b", 5, Compression::Lz4);
    for (partition, records) in [(0, a.clone()), (1, b.clone())] {
        let r = produce_response(&mut c, 9, produce_request("metered", partition, records, 1));
        assert_eq!(r.responses[0].partition_responses[0].error_code, 0);
    }
    // A corrupt batch (one byte of its records flipped, so its CRC fails) and a partition
    // that does not exist: failed produce partitions, one on the topic, one on no topic.
    let mut corrupt = a.to_vec();
    *corrupt.last_mut().unwrap() ^= 0xff;
    let r = produce_response(&mut c, 9, produce_request("metered", 0, corrupt.into(), 1));
    assert_eq!(r.responses[0].partition_responses[0].error_code, ErrorCode::CORRUPT_MESSAGE.code());
    let r = produce_response(&mut c, 9, produce_request("metered", 7, b.clone(), 1));
    assert_ne!(r.responses[0].partition_responses[0].error_code, 0);

    // Partition 0 read whole, then from past its end (OFFSET_OUT_OF_RANGE).
    let Response::Fetch(f) = c.call(12, Request::Fetch(fetch_request("metered", 0, 0, 0))) else {
        panic!("fetch")
    };
    let fetched = f.responses[0].partitions[0].records.clone().unwrap_or_default();
    assert_eq!(fetched.len(), a.len(), "the whole batch comes back as stored");
    let Response::Fetch(f) = c.call(12, Request::Fetch(fetch_request("metered", 999, 0, 0))) else {
        panic!("fetch")
    };
    assert_eq!(f.responses[0].partitions[0].error_code, ErrorCode::OFFSET_OUT_OF_RANGE.code());

    // Request times are recorded once the response is written: wait for the last one.
    let deadline = Instant::now() + Duration::from_secs(5);
    let m = loop {
        let m = scrape(&broker);
        let timed = value(
            &m,
            "kafka_network_requestmetrics_totaltimems_count",
            &[("request", "FetchConsumer")],
        );
        if timed >= 2.0 || Instant::now() > deadline {
            break m;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let topic = Some("metered");
    assert_eq!(meter(&m, "messagesin", topic), 15.0);
    assert_eq!(meter(&m, "bytesin", topic), (a.len() + b.len()) as f64);
    assert_eq!(meter(&m, "bytesout", topic), a.len() as f64);
    assert_eq!(meter(&m, "totalproducerequests", topic), 3.0);
    assert_eq!(meter(&m, "failedproducerequests", topic), 1.0);
    assert_eq!(meter(&m, "totalfetchrequests", topic), 2.0);
    assert_eq!(meter(&m, "failedfetchrequests", topic), 1.0);
    // All topics: the same, and the partition that does not exist.
    assert_eq!(meter(&m, "messagesin", None), 15.0);
    assert_eq!(meter(&m, "bytesout", None), a.len() as f64);
    assert_eq!(meter(&m, "totalproducerequests", None), 4.0);
    assert_eq!(meter(&m, "failedproducerequests", None), 2.0);

    let p = |i: &'static str| [("topic", "metered"), ("partition", i)];
    assert_eq!(value(&m, "kafka_log_log_logendoffset", &p("0")), 10.0);
    assert_eq!(value(&m, "kafka_log_log_logendoffset", &p("1")), 5.0);
    assert_eq!(value(&m, "kafka_log_log_logstartoffset", &p("1")), 0.0);
    assert_eq!(value(&m, "kafka_log_log_size", &p("0")), a.len() as f64);
    assert_eq!(value(&m, "kafka_log_log_numlogsegments", &p("0")), 1.0);

    let produce = [("request", "Produce"), ("version", "9")];
    assert_eq!(value(&m, "kafka_network_requestmetrics_requests_total", &produce), 4.0);
    assert_eq!(
        value(
            &m,
            "kafka_network_requestmetrics_requests_total",
            &[("request", "FetchConsumer"), ("version", "12")]
        ),
        2.0
    );
    for phase in [
        "totaltimems",
        "requestqueuetimems",
        "localtimems",
        "remotetimems",
        "responsequeuetimems",
        "responsesendtimems",
    ] {
        let count = format!("kafka_network_requestmetrics_{phase}_count");
        assert_eq!(value(&m, &count, &[("request", "Produce")]), 4.0, "{phase}");
        let p99 = value(
            &m,
            &format!("kafka_network_requestmetrics_{phase}"),
            &[("request", "Produce"), ("quantile", "0.99")],
        );
        assert!((0.0..10_000.0).contains(&p99), "{phase} p99 {p99} ms");
    }
    let total_p50 = value(
        &m,
        "kafka_network_requestmetrics_totaltimems",
        &[("request", "Produce"), ("quantile", "0.50")],
    );
    assert!(total_p50 > 0.0, "a produce request takes some time: {total_p50}");
    let histogram_count = value(&m, "sluice_request_time_seconds_count", &[("request", "Produce")]);
    let inf =
        value(&m, "sluice_request_time_seconds_bucket", &[("request", "Produce"), ("le", "+Inf")]);
    assert_eq!((histogram_count, inf), (4.0, 4.0));
    let connections = [("listener", "PLAINTEXT"), ("networkProcessor", "0")];
    assert_eq!(value(&m, "kafka_server_socket_server_metrics_connection_count", &connections), 1.0);
    // metered's two partitions and __consumer_offsets'.
    let logs = m.keys().filter(|(name, _)| name == "kafka_log_log_logendoffset").count();
    assert!(logs >= 3, "{logs} partitions");
    assert_eq!(value(&m, "kafka_server_replicamanager_partitioncount", &[]), logs as f64);
    // The broker's own series stay, and agree.
    assert_eq!(value(&m, "sluice_requests_total", &[("api_key", "0")]), 4.0);
    assert_eq!(value(&m, "sluice_produced_bytes_total", &[]), (a.len() + b.len()) as f64);
    assert_eq!(broker.metric("sluice_requests_total{api_key=\"1\"}"), 2);
}

#[test]
fn log_flushes_are_timed_in_durable_mode() {
    let broker = BrokerProcess::start(&["--override", "log.flush.interval.messages=1"]);
    let mut c = RawClient::connect(broker.addr);
    crate::client::ensure_topic(&mut c, "durable");
    for _ in 0..3 {
        let r = produce_response(
            &mut c,
            9,
            produce_request("durable", 0, batch("d", 3, Compression::None), -1),
        );
        assert_eq!(r.responses[0].partition_responses[0].error_code, 0);
    }
    let m = scrape(&broker);
    let flushes = value(&m, "kafka_log_logflushstats_logflushrateandtimems_count", &[]);
    assert!(flushes >= 3.0, "{flushes} flushes timed for 3 durable appends");
    assert_eq!(value(&m, "sluice_log_flush_time_seconds_count", &[]), flushes);
}

#[test]
fn health_answers_and_bad_http_is_refused_with_its_status() {
    let broker = BrokerProcess::start(&[]);
    let addr = broker.metrics;
    let health = get_json(addr, "/health");
    assert_eq!(health["status"], "ok", "{health}");
    assert_eq!(
        (health["listening"].as_bool(), health["storage_writable"].as_bool()),
        (Some(true), Some(true))
    );
    assert_eq!(health["poisoned_partitions"], serde_json::json!([]));
    let (status, head, body) = http_raw(addr, b"HEAD /health HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(status, 200);
    assert!(head.contains("content-length: ") && body.is_empty(), "{head:?} {body:?}");

    for (raw, want) in [
        (&b"POST /metrics HTTP/1.1\r\nHost: x\r\ncontent-length: 0\r\n\r\n"[..], 405),
        (b"GET /no/such/page HTTP/1.1\r\nHost: x\r\n\r\n", 404),
        (b"GET /api/topics/nope HTTP/1.1\r\nHost: x\r\n\r\n", 404),
        (b"HELLO\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\n\r\n", 400),
        (b"GET / HTTP/3\r\nHost: x\r\n\r\n", 505),
        (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", 400),
    ] {
        let (status, _, _) = http_raw(addr, raw);
        assert_eq!(status, want, "{:?}", String::from_utf8_lossy(raw));
    }
    let (status, head, _) = http_raw(addr, b"PUT / HTTP/1.0\r\n\r\n");
    assert_eq!(status, 405);
    assert!(head.contains("allow: GET, HEAD"), "{head}");

    // An oversized head is cut off: 431 after at most the limit and a read's worth, and
    // the connection closed, while the client is still sending.
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: ").unwrap();
    let filler = vec![b'a'; 64 * 1024];
    let mut sent = 0;
    for _ in 0..64 {
        match s.write(&filler) {
            Ok(n) => sent += n,
            Err(_) => break,
        }
    }
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 431 "), "{sent} bytes sent, got {answer:?}");

    // A client that sends nothing is answered 408 and let go.
    let started = Instant::now();
    let (status, _, _) = http_raw(addr, b"");
    assert_eq!(status, 408);
    assert!(started.elapsed() < Duration::from_secs(10));
    // The listener still serves.
    assert_eq!(get(addr, "/health").0, 200);
}

/// Where screenshots go: `$CARGO_TARGET_DIR/console` (or target/ beside the test binary).
fn artifact_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| {
        let exe = std::env::current_exe().unwrap();
        exe.ancestors().nth(3).unwrap().to_path_buf()
    });
    let dir = target.join("console");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A headless Chromium on `url`: the DOM after load, and a screenshot when asked.
fn chromium(url: &str, screenshot: Option<&PathBuf>) -> String {
    let profile = tempfile::tempdir().unwrap();
    let mut cmd = Command::new("chromium");
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--hide-scrollbars",
    ])
    .arg(format!("--user-data-dir={}", profile.path().display()));
    match screenshot {
        Some(path) => {
            cmd.arg(format!("--screenshot={}", path.display())).arg("--window-size=1280,1400");
        }
        None => {
            cmd.arg("--dump-dom");
        }
    }
    let out = cmd
        .arg(url)
        .stderr(Stdio::null())
        .output()
        .expect("chromium runs (apt-get install chromium)");
    assert!(out.status.success(), "chromium {url}: {:?}", out.status);
    String::from_utf8(out.stdout).unwrap()
}

/// The workload's process, stopped when dropped.
struct Workload(Child);

impl Drop for Workload {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_workload(broker: &BrokerProcess) -> Workload {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("interop/console_workload.py");
    let mut child = Command::new("python3")
        .arg(script)
        .arg(broker.bootstrap())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    let stdout = child.stdout.take().unwrap();
    let workload = Workload(child);
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "ready", "the workload did not get ready");
    workload
}

/// The text of `<td class="...{class}...">` cells in the row whose opening tag has `attrs`.
fn cell(dom: &str, attrs: &str, class: &str) -> String {
    let row_start = dom.find(attrs).unwrap_or_else(|| panic!("no row {attrs}"));
    let row = &dom[row_start..];
    let row = &row[..row.find("</tr>").unwrap()];
    let re = regex::Regex::new(&format!(r#"<td class="[^"]*\b{class}\b[^"]*"[^>]*>([^<]*)</td>"#))
        .unwrap();
    re.captures(row).unwrap_or_else(|| panic!("no {class} cell in {row}"))[1].to_owned()
}

#[test]
fn api_json_matches_the_admin_apis_and_chromium_renders_the_page() {
    let broker = BrokerProcess::start(&["--override", "group.initial.rebalance.delay.ms=0"]);
    let _workload = start_workload(&broker);
    let rt = runtime();
    let _enter = rt.enter();
    let admin =
        Admin::new(&ClientConfig::new().with("bootstrap.servers", broker.bootstrap())).unwrap();
    let addr = broker.metrics;

    // Topics: log start and end offsets as ListOffsets reports them.
    let partitions: Vec<TopicPartition> =
        (0..3).map(|p| TopicPartition::new("orders", p)).collect();
    let spec = |s: OffsetSpec| partitions.iter().map(|tp| (tp.clone(), s)).collect::<Vec<_>>();
    let earliest = rt.block_on(admin.list_offsets(&spec(OffsetSpec::Earliest))).unwrap();
    let latest = rt.block_on(admin.list_offsets(&spec(OffsetSpec::Latest))).unwrap();
    let topic = get_json(addr, "/api/topics/orders");
    let listed = topic["partitions"].as_array().unwrap();
    assert_eq!(listed.len(), 3);
    for (tp, p) in partitions.iter().zip(listed) {
        assert_eq!(p["partition"], tp.partition);
        assert_eq!(p["log_start_offset"].as_i64(), Some(earliest[tp].offset), "{tp:?}");
        assert_eq!(p["log_end_offset"].as_i64(), Some(latest[tp].offset), "{tp:?}");
        assert_eq!(latest[tp].offset, 30);
    }
    let all = get_json(addr, "/api/topics");
    let names: Vec<&str> =
        all.as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    let listing = rt.block_on(admin.list_topics(true)).unwrap();
    let mut admin_names: Vec<String> = listing.iter().map(|t| t.name.clone()).collect();
    admin_names.sort();
    assert_eq!(names, admin_names);

    // The group: state, members and assignments as DescribeGroups, offsets as OffsetFetch.
    let described = rt.block_on(admin.describe_groups(&["billing".to_string()])).unwrap();
    let described = described[0].1.as_ref().unwrap();
    let committed = rt.block_on(admin.list_consumer_group_offsets("billing", None)).unwrap();
    let group = get_json(addr, "/api/groups/billing");
    assert_eq!(GroupState::from_name(group["state"].as_str().unwrap()), described.state);
    assert_eq!(described.state, GroupState::Stable);
    assert_eq!(group["protocol"].as_str(), Some(described.protocol.as_str()));
    let members = group["members"].as_array().unwrap();
    assert_eq!(members.len(), described.members.len());
    for (json, m) in members.iter().zip(&described.members) {
        assert_eq!(json["member_id"].as_str(), Some(m.member_id.as_str()));
        assert_eq!(json["client_id"].as_str(), Some(m.client_id.as_str()));
        let MemberAssignment::Consumer(a) = &m.assignment else { panic!("raw assignment") };
        let from_admin: Vec<(String, Vec<i32>)> =
            a.assigned_partitions.iter().map(|t| (t.topic.clone(), t.partitions.clone())).collect();
        let from_json: Vec<(String, Vec<i32>)> = json["assignment"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| {
                let ps =
                    t["partitions"].as_array().unwrap().iter().map(|p| p.as_i64().unwrap() as i32);
                (t["topic"].as_str().unwrap().to_owned(), ps.collect())
            })
            .collect();
        assert_eq!(from_json, from_admin);
    }
    let offsets = group["offsets"].as_array().unwrap();
    assert_eq!(offsets.len(), committed.len());
    for o in offsets {
        let tp = TopicPartition::new(
            o["topic"].as_str().unwrap(),
            o["partition"].as_i64().unwrap() as i32,
        );
        let admin_lag = latest[&tp].offset - committed[&tp].offset;
        assert_eq!(o["committed_offset"].as_i64(), Some(committed[&tp].offset), "{tp:?}");
        assert_eq!(o["lag"].as_i64(), Some(admin_lag), "{tp:?}");
    }
    let lags: Vec<i64> = offsets.iter().map(|o| o["lag"].as_i64().unwrap()).collect();
    assert_eq!(lags, [20, 10, 25]);
    assert_eq!(group["lag"], 55);
    let m = scrape(&broker);
    let lag = |p| {
        value(
            &m,
            "kafka_consumergroup_lag",
            &[("consumergroup", "billing"), ("topic", "orders"), ("partition", p)],
        )
    };
    assert_eq!((lag("0"), lag("1"), lag("2")), (20.0, 10.0, 25.0));
    let broker_json = get_json(addr, "/api/broker");
    assert_eq!(broker_json["node_id"], 0);
    assert!(broker_json["data_dirs"][0]["free_bytes"].as_u64().unwrap() > 0);
    assert!(broker_json["totals"]["messages_in"].as_u64().unwrap() >= 90);

    // The page, as a browser renders it.
    let base = format!("http://{addr}");
    let dom = chromium(&format!("{base}/groups/billing"), None);
    assert!(dom.contains("<h1>Group billing</h1>"), "{dom}");
    assert!(dom.contains("<td id=\"group-state\">Stable</td>"), "{dom}");
    for (p, committed, lag) in [("0", "10", "20"), ("1", "20", "10"), ("2", "5", "25")] {
        let row = format!("data-topic=\"orders\" data-partition=\"{p}\"");
        assert_eq!(cell(&dom, &row, "committed"), committed);
        assert_eq!(cell(&dom, &row, "end"), "30");
        assert_eq!(cell(&dom, &row, "lag"), lag);
    }
    let dom = chromium(&format!("{base}/topics/orders"), None);
    for p in 0..3 {
        let row = format!("<tr data-partition=\"{p}\">");
        assert_eq!(cell(&dom, &row, "start"), "0");
        assert_eq!(cell(&dom, &row, "end"), "30");
    }
    let dom = chromium(&format!("{base}/"), None);
    assert!(
        dom.contains("data-topic=\"orders\"") && dom.contains("data-topic=\"clicks\""),
        "{dom}"
    );
    assert_eq!(cell(&dom, "data-group=\"billing\"", "lag"), "55");
    let chart = regex::Regex::new(r#"<svg class="chart" id="chart-messages-in" data-points="(\d+)"[^>]*>.*?<polyline points="([^"]+)"></polyline>"#).unwrap();
    let drawn = chart.captures(&dom).unwrap_or_else(|| panic!("no drawn chart in {dom}"));
    assert!(drawn[1].parse::<usize>().unwrap() >= 1);
    assert!(drawn[2].split(' ').count() >= 1 && drawn[2].contains(','), "{}", &drawn[2]);
    assert!(dom.matches("<circle").count() >= 3, "a point on each chart");
    let max =
        regex::Regex::new(r#"id="chart-messages-in"[^>]*><text[^>]*>max ([0-9.]+)/s"#).unwrap();
    let max: f64 = max.captures(&dom).expect("chart max")[1].parse().unwrap();
    assert!(max > 0.0, "the running producer shows in the chart");

    let shot = artifact_dir().join("overview.png");
    let _ = std::fs::remove_file(&shot);
    chromium(&format!("{base}/"), Some(&shot));
    let png = std::fs::read(&shot).expect("screenshot written");
    assert!(png.starts_with(b"\x89PNG") && png.len() > 10_000, "{} bytes", png.len());
    chromium(&format!("{base}/groups/billing"), Some(&artifact_dir().join("group.png")));
}

#[test]
fn the_page_loads_in_under_200_ms_with_1000_partitions() {
    let broker = BrokerProcess::start(&[]);
    let rt = runtime();
    let _enter = rt.enter();
    let admin =
        Admin::new(&ClientConfig::new().with("bootstrap.servers", broker.bootstrap())).unwrap();
    let created =
        rt.block_on(admin.create_topics(&[NewTopic::new("wide").partitions(1000)], false)).unwrap();
    assert!(created[0].1.is_ok(), "{created:?}");
    for path in ["/", "/topics/wide", "/api/topics", "/metrics"] {
        let (status, body) = get(broker.metrics, path);
        assert_eq!(status, 200, "{path}");
        let best = (0..5)
            .map(|_| {
                let started = Instant::now();
                get(broker.metrics, path);
                started.elapsed()
            })
            .min()
            .unwrap();
        eprintln!("{path}: {} bytes in {best:?}", body.len());
        assert!(best < Duration::from_millis(200), "{path} took {best:?}");
    }
    let (_, page) = get(broker.metrics, "/topics/wide");
    assert_eq!(page.matches("<tr data-partition=").count(), 1000);
}

#[test]
fn log_format_json_writes_one_json_object_per_line() {
    let mut broker = BrokerProcess::start(&["--log-format", "json"]);
    let mut c = RawClient::connect(broker.addr);
    crate::client::ensure_topic(&mut c, "logged");
    broker.stop();
    let log = broker.log();
    let lines: Vec<Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}")))
        .collect();
    let messages: Vec<&str> =
        lines.iter().filter_map(|l| l["fields"]["message"].as_str()).collect();
    assert!(messages.contains(&"sluiced ready"), "{log}");
    assert!(messages.contains(&"shutdown complete"), "{log}");
    let ready = lines.iter().find(|l| l["fields"]["message"] == "sluiced ready").unwrap();
    assert_eq!(ready["level"], "INFO");
    assert_eq!(ready["fields"]["listen"].as_str(), Some(broker.addr.to_string().as_str()));
    assert!(ready["timestamp"].is_string());
}
