//! Kafka's `RangeAssignor` (`range`): each topic on its own, its partitions cut into
//! contiguous ranges over the members subscribed to it, in Java's member order; the first
//! `partitions % members` members get one partition more. Members subscribed to the same
//! topics therefore get the same partition numbers of each (co-partitioned joins), at the
//! cost of balance across topics: the first members get the extra partition of every
//! topic.

use std::collections::BTreeMap;

use super::{
    member_order, Assignor, Group, GroupAssignment, MemberSubscription, RebalanceProtocol,
};

/// Contiguous ranges per topic, as Java's `RangeAssignor`.
#[derive(Debug, Clone, Copy, Default)]
pub struct RangeAssignor;

impl RangeAssignor {
    /// The protocol name.
    pub const NAME: &'static str = "range";
}

impl Assignor for RangeAssignor {
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
        let mut assigned = vec![Vec::new(); group.members.len()];
        for (t, &(_, count)) in group.topics.iter().enumerate() {
            let mut subscribers = group.subscribers[t].clone();
            subscribers.sort_by(|&a, &b| member_order(group.members[a], group.members[b]));
            // Every topic in `group.topics` has a subscriber, and i32 counts fit usize.
            let n = subscribers.len();
            let count = count as usize;
            let (per_member, with_extra) = (count / n, count % n);
            for (i, &m) in subscribers.iter().enumerate() {
                let start = per_member * i + i.min(with_extra);
                let len = per_member + usize::from(i < with_extra);
                // Ranges stay below `count`, itself at most i32::MAX.
                assigned[m].extend((start..start + len).map(|p| (t, p as i32)));
            }
        }
        group.finish(assigned)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consumer::assignor::tests::{assign, member, static_member};

    #[test]
    fn the_javadoc_example() {
        // RangeAssignor's Javadoc: C0 and C1 subscribe to t0 and t1, three partitions each.
        let members = [member("C0", &["t0", "t1"]), member("C1", &["t0", "t1"])];
        let got = assign(&RangeAssignor, &[("t0", 3), ("t1", 3)], &members);
        assert_eq!(got["C0"], "t0-0 t0-1 t1-0 t1-1");
        assert_eq!(got["C1"], "t0-2 t1-2");
    }

    #[test]
    fn extra_partitions_go_to_the_first_members_of_each_topic() {
        let members =
            [member("c", &["t"]), member("a", &["t", "u"]), member("b", &["t", "u", "gone"])];
        let got = assign(&RangeAssignor, &[("t", 7), ("u", 1), ("unsubscribed", 4)], &members);
        assert_eq!(got["a"], "t-0 t-1 t-2 u-0");
        assert_eq!(got["b"], "t-3 t-4");
        assert_eq!(got["c"], "t-5 t-6");
    }

    #[test]
    fn static_members_sort_by_instance_id_before_dynamic_ones() {
        let members = [
            member("a-dynamic", &["t"]),
            static_member("z-member", "instance-1", &["t"]),
            static_member("b-member", "instance-2", &["t"]),
        ];
        let got = assign(&RangeAssignor, &[("t", 4)], &members);
        assert_eq!(got["z-member"], "t-0 t-1");
        assert_eq!(got["b-member"], "t-2");
        assert_eq!(got["a-dynamic"], "t-3");
    }
}
