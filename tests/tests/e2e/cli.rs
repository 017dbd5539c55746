//! The `sluice` CLI against the real broker: produce and consume round trips (format
//! strings and JSON, compared exactly), kcat interop both ways, a group's lag as a
//! confluent-kafka consumer left it, offset resets (planned, then executed), Kafka's
//! perf-tool output lines (and the live line only on a terminal), and error paths that
//! must exit non-zero with one `error:` line.

use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use sluice_tests::{sluice_cli_path, BrokerProcess};

/// `sluice --bootstrap-server <broker> args...`, run to completion.
fn sluice(broker: &BrokerProcess, args: &[&str]) -> Output {
    sluice_with_input(broker, args, b"")
}

fn command(broker: &BrokerProcess, args: &[&str]) -> Command {
    let mut c = Command::new(sluice_cli_path());
    c.arg("--bootstrap-server").arg(broker.bootstrap()).args(args);
    c.env_remove("SLUICE_BOOTSTRAP_SERVER");
    c
}

/// As [`sluice`], with `input` on stdin.
fn sluice_with_input(broker: &BrokerProcess, args: &[&str], input: &[u8]) -> Output {
    let mut child = command(broker, args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sluice runs");
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

/// stdout of a run that must succeed, as text.
fn ok(out: &Output) -> String {
    succeeded(out);
    String::from_utf8(out.stdout.clone()).expect("utf-8 output")
}

/// Fails the test, with the run's output, unless it succeeded.
fn succeeded(out: &Output) {
    assert!(
        out.status.success(),
        "sluice failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A run that must fail with exactly one stderr line starting with `prefix`.
fn one_error_line(out: &Output, prefix: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "expected a failure, got success; stderr: {stderr}");
    let lines: Vec<&str> = stderr.trim_end().lines().collect();
    assert_eq!(lines.len(), 1, "one line: {stderr:?}");
    assert!(lines[0].starts_with(prefix), "{:?} should start with {prefix:?}", lines[0]);
}

fn create(broker: &BrokerProcess, topic: &str, partitions: &str) {
    ok(&sluice(broker, &["topic", "create", topic, "--partitions", partitions]));
}

#[test]
fn produce_then_consume_with_a_format_string_and_as_json() {
    let broker = BrokerProcess::start(&[]);
    create(&broker, "cli-round-trip", "1");
    let mut input = b"k1:hello\nk2:w\xc3\xb6rld\n:empty key\nno key here\nk5:\nk6:a:b\n".to_vec();
    input.extend_from_slice(b"k7:\xff\xfe\n");
    let produce = ["produce", "cli-round-trip", "-K", ":", "-H", "src=cli", "--header", "n=1"];
    let out = sluice_with_input(&broker, &produce, &input);
    ok(&out);
    assert_eq!(String::from_utf8_lossy(&out.stderr), "7 records acknowledged\n");

    let consume = |extra: &[&str]| {
        let mut args = vec!["consume", "cli-round-trip", "--exit-at-end"];
        args.extend_from_slice(extra);
        let out = sluice(&broker, &args);
        succeeded(&out);
        out.stdout
    };
    let formatted = consume(&["--format", "%t/%p/%o %k|%K|%s|%S|%h\\n"]);
    let mut expected = Vec::new();
    let rows: [(&[u8], &[u8]); 7] = [
        (b"k1|2", b"hello|5"),
        (b"k2|2", "w\u{f6}rld|6".as_bytes()),
        (b"|0", b"empty key|9"),
        (b"|-1", b"no key here|11"),
        (b"k5|2", b"|0"),
        (b"k6|2", b"a:b|3"),
        (b"k7|2", b"\xff\xfe|2"),
    ];
    for (offset, (key, value)) in rows.iter().enumerate() {
        expected.extend_from_slice(format!("cli-round-trip/0/{offset} ").as_bytes());
        expected.extend_from_slice(key);
        expected.push(b'|');
        expected.extend_from_slice(value);
        expected.extend_from_slice(b"|src=cli,n=1\n");
    }
    assert_eq!(String::from_utf8_lossy(&formatted), String::from_utf8_lossy(&expected));
    assert_eq!(formatted, expected, "byte for byte");

    let stamps = String::from_utf8(consume(&["-f", "%T\\n"])).unwrap();
    let stamps: Vec<&str> = stamps.lines().collect();
    assert_eq!(stamps.len(), 7);
    let fields = [
        r#""key":"k1","value":"hello""#,
        r#""key":"k2","value":"wörld""#,
        r#""key":"","value":"empty key""#,
        r#""key":null,"value":"no key here""#,
        r#""key":"k5","value":"""#,
        r#""key":"k6","value":"a:b""#,
        r#""key":"k7","value":"//4=","value_base64":true"#,
    ];
    let expected: String = fields
        .iter()
        .enumerate()
        .map(|(offset, kv)| {
            format!(
                "{{\"topic\":\"cli-round-trip\",\"partition\":0,\"offset\":{offset},\
                 \"timestamp\":{},\"timestamp_type\":\"CreateTime\",{kv},\"headers\":\
                 [{{\"key\":\"src\",\"value\":\"cli\"}},{{\"key\":\"n\",\"value\":\"1\"}}]}}\n",
                stamps[offset]
            )
        })
        .collect();
    assert_eq!(String::from_utf8(consume(&["--json"])).unwrap(), expected);

    // Where to start, and how many.
    let tail = consume(&["--offset", "-2", "-f", "%o\\n"]);
    assert_eq!(String::from_utf8(tail).unwrap(), "5\n6\n");
    let two = sluice(&broker, &["consume", "cli-round-trip", "-o", "3", "-c", "2", "-f", "%o,"]);
    assert_eq!(ok(&two), "3,4,");
    let late = format!("@{}", stamps[6].parse::<i64>().unwrap() + 1);
    assert_eq!(consume(&["--offset", &late]), b"", "nothing at or after that time");
}

#[test]
fn kcat_reads_what_sluice_wrote_and_sluice_reads_what_kcat_wrote() {
    let broker = BrokerProcess::start(&[]);
    create(&broker, "from-sluice", "1");
    let lines = "a:1\nb:two words\nc:with:colons\n:no key\n";
    ok(&sluice_with_input(
        &broker,
        &["produce", "from-sluice", "--key-separator", ":"],
        lines.as_bytes(),
    ));
    let out = Command::new("kcat")
        .args(["-b", &broker.bootstrap(), "-C", "-t", "from-sluice", "-e", "-f", "%k:%s\\n"])
        .output()
        .expect("kcat is installed (scripts/test installs it)");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8(out.stdout).unwrap(), lines);

    create(&broker, "from-kcat", "1");
    let mut kcat = Command::new("kcat")
        .args(["-b", &broker.bootstrap(), "-P", "-t", "from-kcat", "-K:"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let written = "x:1\ny:two words\nz:with:colons\n";
    kcat.stdin.take().unwrap().write_all(written.as_bytes()).unwrap();
    assert!(kcat.wait().unwrap().success(), "kcat produce");
    let out = sluice(&broker, &["consume", "from-kcat", "-e", "-f", "%k:%s\\n"]);
    assert_eq!(ok(&out), written);
}

/// A confluent-kafka (librdkafka) consumer in `group` reads `count` records of `topic`
/// and commits after the last, then closes.
fn confluent_consume(broker: &BrokerProcess, group: &str, topic: &str, count: usize) {
    let script = r#"
import sys
from confluent_kafka import Consumer
bootstrap, group, topic, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
c = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
              "auto.offset.reset": "earliest", "enable.auto.commit": False})
c.subscribe([topic])
got = 0
while got < count:
    m = c.poll(10)
    if m is None or m.error():
        continue
    got += 1
    if got == count:
        c.commit(message=m, asynchronous=False)
c.close()
"#;
    let out = Command::new("python3")
        .args(["-c", script, &broker.bootstrap(), group, topic, &count.to_string()])
        .output()
        .expect("python3 runs");
    assert!(out.status.success(), "confluent consumer: {}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn group_lag_and_offset_resets() {
    let broker = BrokerProcess::start(&["--override", "group.initial.rebalance.delay.ms=0"]);
    create(&broker, "lagged", "1");
    let records: String = (0..10).map(|i| format!("record {i}\n")).collect();
    ok(&sluice_with_input(&broker, &["produce", "lagged"], records.as_bytes()));
    confluent_consume(&broker, "lagging", "lagged", 4);
    let describe = || ok(&sluice(&broker, &["group", "describe", "--group", "lagging"]));
    assert_eq!(describe(), "lagging\tlagged\t0\t4\t10\t6\t-\t-\t-\n", "committed 4 of 10: lag 6");
    let json = ok(&sluice(&broker, &["group", "describe", "--group", "lagging", "--json"]));
    assert!(json.contains(r#""state":"Empty""#), "{json}");
    assert!(json.contains(r#""committed_offset":4,"log_end_offset":10,"lag":6"#), "{json}");
    let listed = ok(&sluice(&broker, &["group", "list"]));
    assert!(listed.lines().any(|l| l == "lagging\tEmpty\tconsumer"), "{listed}");

    // A plan alone changes nothing.
    let reset = ["group", "reset-offsets", "--group", "lagging", "--topic", "lagged"];
    let plan = sluice(&broker, &[&reset[..], &["--to-earliest"]].concat());
    assert_eq!(ok(&plan), "lagging\tlagged\t0\t4\t0\n");
    assert!(String::from_utf8_lossy(&plan.stderr).contains("--execute"));
    assert_eq!(
        describe(),
        "lagging\tlagged\t0\t4\t10\t6\t-\t-\t-\n",
        "unchanged without --execute"
    );

    // Executed, the committed offset is the one printed.
    let executed = sluice(&broker, &[&reset[..], &["--shift-by", "3", "--execute"]].concat());
    let printed = ok(&executed);
    assert_eq!(printed, "lagging\tlagged\t0\t4\t7\n");
    let new_offset = printed.trim_end().rsplit('\t').next().unwrap();
    assert_eq!(describe(), format!("lagging\tlagged\t0\t{new_offset}\t10\t3\t-\t-\t-\n"));
    let clamped = sluice(&broker, &[&reset[..], &["--to-offset", "99", "--execute"]].concat());
    assert_eq!(ok(&clamped), "lagging\tlagged\t0\t7\t10\n", "kept within the log");

    // Not while the group has members.
    let mut member = command(&broker, &["consume", "lagged", "--group", "active"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        // GROUP_ID_NOT_FOUND until the member has joined.
        let out = sluice(&broker, &["group", "describe", "--group", "active", "--json"]);
        let state = String::from_utf8_lossy(&out.stdout);
        if state.contains(r#""state":"Stable""#) {
            break;
        }
        assert!(Instant::now() < deadline, "the member never joined: {state}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let refused = sluice(
        &broker,
        &["group", "reset-offsets", "--group", "active", "--topic", "lagged", "--to-earliest"],
    );
    one_error_line(&refused, "error: group active is Stable with 1 members");
    member.kill().unwrap();
    member.wait().unwrap();
}

/// Kafka's ProducerPerformance final line.
const FINAL_LINE: &str = r"^(\d+) records sent, \d+\.\d{6} records/sec \(\d+\.\d{2} MB/sec\), \d+\.\d{2} ms avg latency, \d+\.\d{2} ms max latency, (\d+) ms 50th, (\d+) ms 95th, (\d+) ms 99th, (\d+) ms 99\.9th\.$";

#[test]
fn perf_produce_prints_kafkas_lines_and_a_live_line_only_on_a_terminal() {
    let broker = BrokerProcess::start(&[]);
    let perf = format!(
        "{} --bootstrap-server {} perf produce --topic perf --num-records 200000 \
         --record-size 100 --throughput -1",
        sluice_cli_path().display(),
        broker.bootstrap()
    );
    let args: Vec<&str> = perf.split(' ').skip(1).collect();
    let piped = ok(&Command::new(sluice_cli_path()).args(&args).output().unwrap());
    assert!(
        !piped.contains('\r') && !piped.contains("\x1b[K"),
        "no live line in a pipe: {piped:?}"
    );
    let last = piped.lines().last().unwrap_or_default();
    let caps = regex::Regex::new(FINAL_LINE).unwrap().captures(last);
    let caps = caps.unwrap_or_else(|| panic!("not Kafka's final line: {last:?}"));
    assert_eq!(&caps[1], "200000");
    let pcts: Vec<u64> = (2..=5).map(|i| caps[i].parse().unwrap()).collect();
    assert!(pcts.windows(2).all(|w| w[0] <= w[1]), "percentiles in order: {pcts:?}");
    let periodic = regex::Regex::new(
        r"^\d+ records sent, \d+\.\d records/sec \(\d+\.\d{2} MB/sec\), \d+\.\d ms avg latency, \d+\.\d ms max latency\.$",
    )
    .unwrap();
    for line in piped.lines().filter(|l| *l != last) {
        assert!(periodic.is_match(line), "not Kafka's periodic line: {line:?}");
    }
    let records = ok(&sluice(&broker, &["topic", "describe", "perf"]));
    let end: u64 =
        records.lines().map(|l| l.split('\t').nth(6).unwrap().parse::<u64>().unwrap()).sum();
    assert_eq!(end, 200_000, "every record acknowledged is in the log");

    assert!(Command::new("which").arg("script").output().unwrap().status.success(), "script(1)");
    let tty = Command::new("script").args(["-qc", &perf, "/dev/null"]).output().unwrap();
    assert!(tty.status.success(), "{}", String::from_utf8_lossy(&tty.stderr));
    let tty = String::from_utf8_lossy(&tty.stdout);
    assert!(tty.contains("\r\x1b[K"), "a live line on a terminal: {tty:?}");
    let final_line = tty.rsplit("\x1b[K").next().unwrap().trim_end();
    assert!(regex::Regex::new(FINAL_LINE).unwrap().is_match(final_line), "{final_line:?}");
}

#[test]
fn perf_consume_prints_kafkas_columns() {
    let broker = BrokerProcess::start(&["--override", "group.initial.rebalance.delay.ms=0"]);
    let produce =
        ["perf", "produce", "--topic", "pc", "--num-records", "5000", "--record-size", "10"];
    ok(&sluice(&broker, &produce));
    let out = ok(&sluice(&broker, &["perf", "consume", "--topic", "pc", "--messages", "5000"]));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0],
        "start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec, \
         rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec"
    );
    assert_eq!(lines.len(), 2, "{out}");
    let fields: Vec<&str> = lines[1].split(", ").collect();
    assert_eq!(fields.len(), 10, "{:?}", lines[1]);
    let time = regex::Regex::new(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d:\d{3}$").unwrap();
    assert!(time.is_match(fields[0]) && time.is_match(fields[1]), "{:?}", lines[1]);
    assert_eq!((fields[2], fields[4]), ("0.0477", "5000"), "MB (2^20 bytes) and records");
    let decimal = regex::Regex::new(r"^\d+\.\d{4}$").unwrap();
    for i in [3, 5, 8, 9] {
        assert!(decimal.is_match(fields[i]), "{i}: {:?}", lines[1]);
    }
    // Kafka's --date-format: a SimpleDateFormat pattern.
    let iso = ["--hide-header", "--date-format", "yyyy-MM-dd'T'HH:mm:ss.SSSX", "--group", "iso"];
    let out = ok(&sluice(
        &broker,
        &[&["perf", "consume", "--topic", "pc", "--messages", "10"][..], &iso[..]].concat(),
    ));
    let iso_time = regex::Regex::new(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$").unwrap();
    let fields: Vec<&str> = out.trim_end().split(", ").collect();
    assert!(iso_time.is_match(fields[0]) && iso_time.is_match(fields[1]), "{out}");
}

#[test]
fn failures_exit_non_zero_with_one_error_line() {
    let broker = BrokerProcess::start(&[]);
    create(&broker, "exists", "1");
    let again = sluice(&broker, &["topic", "create", "exists"]);
    one_error_line(&again, "error: TOPIC_ALREADY_EXISTS: create topic exists");
    assert_eq!(
        ok(&sluice(&broker, &["topic", "create", "exists", "--if-not-exists"])),
        "topic exists exists already\n"
    );

    let start = Instant::now();
    let unknown = sluice(&broker, &["consume", "no-such-topic", "--timeout", "300"]);
    one_error_line(
        &unknown,
        "error: UNKNOWN_TOPIC_OR_PARTITION: topic 'no-such-topic' does not exist",
    );
    assert!(start.elapsed() < Duration::from_secs(20), "{:?}", start.elapsed());
    let listed = ok(&sluice(&broker, &["topic", "list"]));
    assert!(!listed.contains("no-such-topic"), "looking did not create it: {listed}");

    let bad = sluice(&broker, &["consume", "exists", "--offset", "yesterday"]);
    one_error_line(&bad, "error: invalid value 'yesterday' for '--offset <OFFSET>'");
    let bad = sluice(&broker, &["consume", "exists", "--format", "%x"]);
    one_error_line(&bad, "error: invalid value '%x' for '--format <FORMAT>'");
    let partition = sluice(&broker, &["consume", "exists", "--partition", "7"]);
    one_error_line(
        &partition,
        "error: UNKNOWN_TOPIC_OR_PARTITION: topic exists has 1 partitions; partition 7 does not exist",
    );
    let group = sluice(&broker, &["group", "describe", "--group", "nobody"]);
    one_error_line(&group, "error: GROUP_ID_NOT_FOUND: group nobody does not exist");
}

#[test]
fn cluster_shows_the_broker_and_its_api_versions_from_a_command_config() {
    let broker = BrokerProcess::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let props = dir.path().join("client.properties");
    let text = format!("# as Kafka's tools take them\nbootstrap.servers={}\n", broker.bootstrap());
    std::fs::write(&props, text + "request.timeout.ms=5000\n").unwrap();
    let out = Command::new(sluice_cli_path())
        .args(["cluster", "--command-config"])
        .arg(&props)
        .env_remove("SLUICE_BOOTSTRAP_SERVER")
        .output()
        .unwrap();
    let text = ok(&out);
    let (brokers, apis) = text.split_once("\n\n").expect("two tables");
    let row: Vec<&str> = brokers.split('\t').collect();
    assert_eq!(row.len(), 5, "{brokers:?}");
    assert_eq!(&row[1..], ["0", &broker.bootstrap(), "-", "yes"], "{brokers:?}");
    assert!(apis.lines().any(|l| l == "0\t0\tProduce\t3\t11"), "{apis}");
    assert!(apis.lines().any(|l| l.starts_with("0\t60\tDescribeCluster\t")), "{apis}");
    let json = ok(&sluice(&broker, &["cluster", "--json"]));
    assert!(json.starts_with(r#"{"cluster_id":""#) && json.contains(r#""controller":0"#), "{json}");
}

/// Bytes of `topic-partition`'s `.log` segment files.
fn segment_bytes(broker: &BrokerProcess, topic: &str, partition: i32) -> u64 {
    std::fs::read_dir(broker.data_dir.join(format!("{topic}-{partition}")))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .map(|p| p.metadata().unwrap().len())
        .sum()
}

/// The SIZE column (the eighth) of `topic describe`'s tab-separated rows, by partition.
fn sizes(out: &str) -> Vec<String> {
    out.lines()
        .map(|l| {
            let cells: Vec<&str> = l.split('\t').collect();
            assert_eq!(cells.len(), 8, "TOPIC .. LOG-END-OFFSET SIZE: {l:?}");
            cells[7].to_string()
        })
        .collect()
}

#[test]
fn topic_describe_shows_each_partitions_size_as_on_disk() {
    let mut broker = BrokerProcess::start(&[]);
    create(&broker, "sized", "2");
    let lines: String = (0..50).map(|i| format!("record number {i}\n")).collect();
    let produce = ["produce", "sized", "--partition", "0"];
    ok(&sluice_with_input(&broker, &produce, lines.as_bytes()));
    let first = sizes(&ok(&sluice(&broker, &["topic", "describe", "sized"])));
    let p0: u64 = first[0].parse().unwrap();
    assert!(p0 > 50 * 15, "50 records of 15+ bytes in {p0} bytes");
    assert_eq!(first[1], "0", "an empty partition");

    ok(&sluice_with_input(&broker, &produce, lines.as_bytes()));
    let grown = sizes(&ok(&sluice(&broker, &["topic", "describe", "sized"])));
    let p0_grown: u64 = grown[0].parse().unwrap();
    assert!(p0_grown > p0 + 50 * 15, "grows with what is produced: {p0} -> {p0_grown}");
    let json = ok(&sluice(&broker, &["topic", "describe", "sized", "--json"]));
    assert!(json.contains(&format!(r#""log_end_offset":100,"size_bytes":{p0_grown}}}"#)), "{json}");
    assert!(json.contains(r#""log_end_offset":0,"size_bytes":0}"#), "{json}");

    let describe = format!(
        "{} --bootstrap-server {} topic describe sized",
        sluice_cli_path().display(),
        broker.bootstrap()
    );
    let tty = Command::new("script").args(["-qc", &describe, "/dev/null"]).output().unwrap();
    let tty = String::from_utf8_lossy(&tty.stdout);
    let header = tty.lines().next().unwrap_or_default();
    assert!(header.contains("LOG-END-OFFSET") && header.trim_end().ends_with("SIZE"), "{tty}");
    assert!(tty.lines().nth(1).is_some_and(|l| l.trim_end().ends_with(&grown[0])), "{tty}");

    // A clean stop trims the active segment to its data: the files hold what was shown.
    broker.stop();
    assert_eq!(segment_bytes(&broker, "sized", 0), p0_grown);
    assert_eq!(segment_bytes(&broker, "sized", 1), 0);
}

type ApiList = Vec<kafka_protocol::messages::api_versions_response::ApiVersion>;

/// A broker behind a proxy that edits its ApiVersions answers with `edit`, so that it
/// advertises other APIs than it serves. The broker advertises the proxy's address, so
/// clients that bootstrap through the proxy stay on it. Returns the broker and the
/// proxy's `host:port`.
fn broker_advertising(edit: fn(&mut ApiList)) -> (BrokerProcess, String) {
    use std::collections::HashMap;
    use std::io::Read;
    use std::net::{TcpListener, TcpStream};
    use std::sync::{Arc, Mutex};

    use bytes::{Bytes, BytesMut};
    use sluice_protocol::api_key::ApiKey;
    use sluice_protocol::messages::Response;

    fn frame(from: &mut TcpStream) -> Option<Vec<u8>> {
        let mut len = [0u8; 4];
        from.read_exact(&mut len).ok()?;
        let mut body = vec![0u8; i32::from_be_bytes(len) as usize];
        from.read_exact(&mut body).ok()?;
        Some(body)
    }
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let proxy = listener.local_addr().unwrap().to_string();
    let broker = BrokerProcess::start(&["--advertised-listener", &proxy]);
    let upstream = broker.addr;
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(mut client) = client else { return };
            let Ok(mut server) = TcpStream::connect(upstream) else { return };
            // Correlation id -> version of each ApiVersions request in flight.
            let asked: Arc<Mutex<HashMap<i32, i16>>> = Arc::default();
            let (mut client_w, mut server_r) =
                (client.try_clone().unwrap(), server.try_clone().unwrap());
            let requests = asked.clone();
            std::thread::spawn(move || {
                while let Some(f) = frame(&mut client) {
                    let key = i16::from_be_bytes([f[0], f[1]]);
                    if key == ApiKey::ApiVersions as i16 {
                        let version = i16::from_be_bytes([f[2], f[3]]);
                        let id = i32::from_be_bytes([f[4], f[5], f[6], f[7]]);
                        requests.lock().unwrap().insert(id, version);
                    }
                    let mut out = (f.len() as i32).to_be_bytes().to_vec();
                    out.extend_from_slice(&f);
                    if server.write_all(&out).is_err() {
                        return;
                    }
                }
            });
            std::thread::spawn(move || {
                while let Some(mut f) = frame(&mut server_r) {
                    let id = i32::from_be_bytes([f[0], f[1], f[2], f[3]]);
                    if let Some(version) = asked.lock().unwrap().remove(&id) {
                        // ApiVersions answers have response header v0: the body follows the id.
                        let body = Bytes::copy_from_slice(&f[4..]);
                        if let Ok(Response::ApiVersions(mut r)) =
                            Response::decode(ApiKey::ApiVersions, version, body)
                        {
                            edit(&mut r.api_keys);
                            let mut out = BytesMut::new();
                            Response::ApiVersions(r).encode(version, &mut out).unwrap();
                            f.truncate(4);
                            f.extend_from_slice(&out);
                        }
                    }
                    let mut out = (f.len() as i32).to_be_bytes().to_vec();
                    out.extend_from_slice(&f);
                    if client_w.write_all(&out).is_err() {
                        return;
                    }
                }
            });
        }
    });
    (broker, proxy)
}

/// `sluice --bootstrap-server <addr> args...`, run to completion.
fn sluice_at(addr: &str, args: &[&str]) -> Output {
    Command::new(sluice_cli_path())
        .arg("--bootstrap-server")
        .arg(addr)
        .args(args)
        .env_remove("SLUICE_BOOTSTRAP_SERVER")
        .output()
        .unwrap()
}

#[test]
fn topic_describe_shows_unknown_sizes_where_the_broker_lacks_describe_log_dirs() {
    let (broker, proxy) = broker_advertising(|apis| apis.retain(|a| a.api_key != 35));
    create(&broker, "old", "2");
    ok(&sluice_with_input(&broker, &["produce", "old", "--partition", "1"], b"a\nb\n"));
    let cluster = ok(&sluice_at(&proxy, &["cluster"]));
    assert!(!cluster.contains("DescribeLogDirs"), "the proxy hides API 35: {cluster}");
    let out = sluice_at(&proxy, &["topic", "describe", "old"]);
    assert_eq!(String::from_utf8_lossy(&out.stderr), "", "no error");
    assert_eq!(sizes(&ok(&out)), ["-", "-"], "unknown, not failed");
    let json = ok(&sluice_at(&proxy, &["topic", "describe", "old", "--json"]));
    assert!(json.contains(r#""log_end_offset":2,"size_bytes":null}"#), "{json}");
}

#[test]
fn perf_produce_refuses_transactions_naming_what_lacks_support() {
    let perf = |addr: &str, extra: &[&str]| {
        let mut args = vec!["perf", "produce", "--topic", "txn", "--num-records", "10"];
        args.extend_from_slice(&["--record-size", "10", "--throughput", "-1"]);
        args.extend_from_slice(extra);
        sluice_at(addr, &args)
    };
    // A broker that does not advertise the transaction APIs is named.
    let (broker, proxy) = broker_advertising(|apis| {
        apis.retain(|api| api.api_key != 24 && api.api_key != 26);
    });
    let lacks = format!(
        "the broker at {proxy} does not support transactions (its ApiVersions has no \
         AddPartitionsToTxn or EndTxn)"
    );
    let out = perf(&proxy, &["--transactional-id", "t1"]);
    one_error_line(&out, &format!("error: --transactional-id: {lacks}"));
    let out = perf(&proxy, &["--transaction-duration-ms", "100"]);
    one_error_line(&out, &format!("error: --transaction-duration-ms: {lacks}"));
    let out = perf(&proxy, &["--producer-props", "transactional.id=t2"]);
    one_error_line(&out, &format!("error: transactional.id: {lacks}"));
    let listed = ok(&sluice(&broker, &["topic", "list"]));
    assert!(!listed.contains("txn"), "nothing was produced: {listed}");
}

#[test]
fn perf_produce_in_transactions_then_consume_read_committed() {
    let broker = BrokerProcess::start(&[]);
    create(&broker, "perf-txn", "1");
    let args = [
        "perf",
        "produce",
        "--topic",
        "perf-txn",
        "--num-records",
        "5000",
        "--record-size",
        "10",
        "--throughput",
        "-1",
        "--transaction-duration-ms",
        "10",
    ];
    let out = sluice(&broker, &args);
    succeeded(&out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("5000 records sent"), "{stdout}");
    let consume = [
        "consume",
        "perf-txn",
        "--exit-at-end",
        "--isolation-level",
        "read_committed",
        "--format",
        "x\\n",
    ];
    let read = ok(&sluice(&broker, &consume));
    assert_eq!(read.lines().count(), 5000, "every record committed and read once");
}

/// Kafka's `--print-metrics` table at the end of `out`: name -> value, after checking its
/// header, alignment and order.
fn metrics_table(
    out: &str,
    group: &str,
    client_id: &str,
) -> std::collections::BTreeMap<String, f64> {
    let lines: Vec<&str> = out.lines().collect();
    let header = lines.iter().rposition(|l| l.starts_with("Metric Name")).expect("a metrics table");
    assert_eq!(lines[header - 1], "", "a blank line before the table");
    let width = lines[header].find("   Value").expect("header: Metric Name ... Value");
    let row = regex::Regex::new(r"^([a-z-]+):([a-z-]+):\{client-id=([a-z-]+)\} *: (\d+\.\d{3})$")
        .unwrap();
    let mut names = Vec::new();
    let mut values = std::collections::BTreeMap::new();
    for line in &lines[header + 1..] {
        let caps = row.captures(line).unwrap_or_else(|| panic!("not a metric line: {line:?}"));
        assert_eq!(line.find(" : "), Some(width), "aligned: {line:?}");
        names.push(line[..width].trim_end().to_string());
        if &caps[1] == group {
            assert_eq!(&caps[3], client_id, "{line}");
            values.insert(caps[2].to_string(), caps[4].parse().unwrap());
        }
    }
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted, "sorted by name, as Kafka's TreeMap");
    values
}

#[test]
fn perf_tools_print_the_clients_metrics_as_kafka_does() {
    let broker = BrokerProcess::start(&["--override", "group.initial.rebalance.delay.ms=0"]);
    let produce = [
        "perf",
        "produce",
        "--topic",
        "metered",
        "--num-records",
        "20000",
        "--record-size",
        "10",
        "--throughput",
        "-1",
        "--print-metrics",
    ];
    let out = ok(&sluice(&broker, &produce));
    let summary = out.lines().find(|l| l.starts_with("20000 records sent, "));
    assert!(summary.is_some(), "the summary comes first: {out}");
    let m = metrics_table(&out, "producer-metrics", "perf-producer-client");
    assert_eq!(m["record-send-total"], 20000.0, "{m:?}");
    assert_eq!((m["record-error-total"], m["record-retry-total"]), (0.0, 0.0));
    assert!(m["request-total"] >= 2.0 && m["request-latency-avg"] > 0.0, "{m:?}");
    assert!(m["request-latency-max"] >= m["request-latency-avg"], "{m:?}");
    assert!(m["outgoing-byte-total"] > 20000.0 * 10.0, "{m:?}");
    assert!(m["batch-size-avg"] > 0.0 && m["batch-size-max"] >= m["batch-size-avg"], "{m:?}");
    assert!(m["records-per-request-avg"] >= 1.0 && m["record-send-rate"] > 0.0, "{m:?}");

    let consume =
        ["perf", "consume", "--topic", "metered", "--messages", "20000", "--print-metrics"];
    let out = ok(&sluice(&broker, &consume));
    let fetch = metrics_table(&out, "consumer-fetch-manager-metrics", "perf-consumer-client");
    assert_eq!(fetch["records-consumed-total"], 20000.0, "{fetch:?}");
    assert_eq!(fetch["bytes-consumed-total"], 200000.0, "values of 10 bytes: {fetch:?}");
    assert!(fetch["fetch-total"] >= 1.0 && fetch["fetch-size-max"] > 0.0, "{fetch:?}");
    let network = metrics_table(&out, "consumer-metrics", "perf-consumer-client");
    assert!(network["incoming-byte-total"] > 200000.0, "{network:?}");
    assert!(network["connection-creation-total"] >= 1.0, "{network:?}");
    let without =
        ok(&sluice(&broker, &["perf", "consume", "--topic", "metered", "--messages", "10"]));
    assert!(!without.contains("Metric Name"), "only when asked: {without}");
}

#[test]
fn perf_produce_warm_up_gets_its_own_steady_state_summary() {
    let broker = BrokerProcess::start(&[]);
    // 8 s at 5,000 records/s: the steady state starts after 1 s, and its first 5 s line
    // comes at 6 s.
    let perf = [
        "perf",
        "produce",
        "--topic",
        "warm",
        "--num-records",
        "40000",
        "--record-size",
        "20",
        "--throughput",
        "5000",
        "--warmup-records",
        "5000",
    ];
    let out = ok(&sluice(&broker, &perf));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0],
        "Warmup first 5000 records. Steady state results will print after the complete test summary."
    );
    let steady_at = lines.iter().position(|l| *l == "In steady state.").expect(&out);
    let periodic = regex::Regex::new(
        r"^\d+ records sent, \d+\.\d records/sec \(\d+\.\d{2} MB/sec\), \d+\.\d ms avg latency, \d+\.\d ms max latency\.$",
    )
    .unwrap();
    assert!(periodic.is_match(lines[steady_at + 1]), "a steady 5 s line follows: {out}");
    let n = lines.len();
    let total = regex::Regex::new(FINAL_LINE).unwrap();
    let caps = total.captures(lines[n - 2]).unwrap_or_else(|| panic!("whole run: {out}"));
    assert_eq!(&caps[1], "40000");
    let steady = lines[n - 1].strip_prefix("35000 steady state records sent, ");
    let steady = steady.unwrap_or_else(|| panic!("the steady state's line last: {out}"));
    assert!(total.is_match(&format!("35000 records sent, {steady}")), "{steady}");
    let rate: f64 = steady.split(' ').next().unwrap().parse().unwrap();
    assert!((3500.0..=5500.0).contains(&rate), "paced at 5,000/s: {rate}");

    let refused = sluice(
        &broker,
        &[
            "perf",
            "produce",
            "--topic",
            "warm",
            "--num-records",
            "10",
            "--record-size",
            "1",
            "--throughput",
            "-1",
            "--warmup-records",
            "10",
        ],
    );
    one_error_line(&refused, "error: --warmup-records 10: must be fewer than --num-records 10");
}
