//! Internal topics: a client cannot erase what the broker keeps in them.

use sluice_tests::BrokerProcess;

use crate::interop::python_with_args;

/// The finding: confluent-kafka's AdminClient could delete `__consumer_offsets`
/// and its records, and after the next restart every group's committed offsets were gone.
#[test]
fn confluent_admin_cannot_erase_committed_offsets_and_they_survive_a_restart() {
    let mut b = BrokerProcess::start(&[]);
    python_with_args("internal_topics.py", &b, &["commit", "keepers", "kept-offsets"]);
    b.stop();
    b.restart();
    python_with_args("internal_topics.py", &b, &["check", "keepers", "kept-offsets"]);
}
