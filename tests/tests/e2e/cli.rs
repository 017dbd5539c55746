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
