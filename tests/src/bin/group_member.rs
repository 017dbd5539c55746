//! A sluice-client group member in its own process, for tests that kill it with SIGKILL.
//!
//! Usage: group_member BOOTSTRAP GROUP TOPIC SESSION_TIMEOUT_MS. Joins GROUP subscribed to
//! TOPIC with the cooperative-sticky assignor and polls forever; prints `owned N` each
//! time the number of partitions it owns changes.

use std::io::Write;
use std::time::Duration;

use sluice_client::consumer::Consumer;
use sluice_client::ClientConfig;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, bootstrap, group, topic, session] = &args[..] else {
        eprintln!("usage: group_member BOOTSTRAP GROUP TOPIC SESSION_TIMEOUT_MS");
        std::process::exit(2);
    };
    let config = ClientConfig::new()
        .with("bootstrap.servers", bootstrap.as_str())
        .with("group.id", group.as_str())
        .with("session.timeout.ms", session.as_str())
        .with("heartbeat.interval.ms", "500")
        .with("partition.assignment.strategy", "cooperative-sticky")
        .with("auto.offset.reset", "earliest");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    rt.block_on(async {
        let mut consumer = Consumer::new(&config).expect("consumer");
        consumer.subscribe(&[topic.as_str()], None).expect("subscribe");
        let mut owned = usize::MAX;
        loop {
            if let Err(e) = consumer.poll(Duration::from_millis(200)).await {
                eprintln!("poll: {e}");
            }
            let now = consumer.assignment().len();
            if now != owned {
                owned = now;
                println!("owned {owned}");
                std::io::stdout().flush().ok();
            }
        }
    });
}
