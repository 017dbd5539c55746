//! Kafka's `RoundRobinAssignor` (`roundrobin`): every partition of every subscribed topic,
//! sorted by topic then partition, dealt to the members in Java's member order, one each
//! in turn, passing over members not subscribed to the partition's topic. Balanced to
//! within one partition when all members subscribe to the same topics; otherwise members
//! with rare topics may end up with more.

use std::collections::BTreeMap;

use super::{
    member_order, Assignor, Group, GroupAssignment, MemberSubscription, RebalanceProtocol,
};

/// Partitions dealt in turn, as Java's `RoundRobinAssignor`.
#[derive(Debug, Clone, Copy, Default)]
pub struct RoundRobinAssignor;

impl RoundRobinAssignor {
    /// The protocol name.
    pub const NAME: &'static str = "roundrobin";
}

impl Assignor for RoundRobinAssignor {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn protocol(&self) -> RebalanceProtocol {
        RebalanceProtocol::Eager
    }

    fn assign(
        &self,
        partitions_per_topic: &BTreeMap<String, u32>,
        members: &[MemberSubscription],
    ) -> GroupAssignment {
        let group = Group::new(partitions_per_topic, members);
        let mut order: Vec<usize> = (0..group.members.len()).collect();
        order.sort_by(|&a, &b| member_order(group.members[a], group.members[b]));
        let mut assigned = vec![Vec::new(); group.members.len()];
        // Java's CircularIterator: where the last partition went, the next one starts.
        let mut next = 0;
        for (t, &(_, count)) in group.topics.iter().enumerate() {
            for p in 0..count {
                // Ends within one turn: every topic in `group.topics` has a subscriber.
                while !group.is_subscribed(order[next], t) {
                    next = (next + 1) % order.len();
                }
                assigned[order[next]].push((t, p));
                next = (next + 1) % order.len();
            }
        }
        group.finish(assigned)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consumer::assignor::tests::{assign, member};

    #[test]
    fn the_javadoc_examples() {
        // RoundRobinAssignor's Javadoc, first example: C0 and C1 subscribe to t0 and t1,
        // three partitions each.
        let members = [member("C0", &["t0", "t1"]), member("C1", &["t0", "t1"])];
        let got = assign(&RoundRobinAssignor, &[("t0", 3), ("t1", 3)], &members);
        assert_eq!(got["C0"], "t0-0 t0-2 t1-1");
        assert_eq!(got["C1"], "t0-1 t1-0 t1-2");

        // Second example: C0 subscribes to t0; C1 to t0 and t1; C2 to t0, t1 and t2, of
        // 1, 2 and 3 partitions.
        let members =
            [member("C0", &["t0"]), member("C1", &["t0", "t1"]), member("C2", &["t0", "t1", "t2"])];
        let got = assign(&RoundRobinAssignor, &[("t0", 1), ("t1", 2), ("t2", 3)], &members);
        assert_eq!(got["C0"], "t0-0");
        assert_eq!(got["C1"], "t1-0");
        assert_eq!(got["C2"], "t1-1 t2-0 t2-1 t2-2");
    }

    #[test]
    fn an_empty_group_gets_nothing() {
        assert!(assign(&RoundRobinAssignor, &[("t", 3)], &[]).is_empty());
        let got = assign(&RoundRobinAssignor, &[], &[member("a", &["t"])]);
        assert_eq!(got["a"], "");
    }
}
