//! The sticky assignment when members subscribe to different topics (Java's
//! `GeneralAssignmentBuilder`): keep what members validly own, give every other partition
//! to its least loaded subscriber, then balance.
//!
//! Balancing moves partitions along chains: member `a` gives a partition to `b`, which
//! gives one of a topic `c` subscribes to on to `c`, and so on; only the ends change load.
//! A chain from a member with `k` partitions to one with `k - 2` or fewer makes the
//! assignment strictly more balanced (the sum of squared loads falls by at least 2), and
//! when no such chain exists no assignment the subscriptions allow is more balanced: the
//! optimality condition of a convex-cost flow. Java moves one partition at a time between
//! two members and stops when no single move helps, which can leave a member two or more
//! partitions behind where only a chain would help; the result here is as balanced as
//! possible, always.
//!
//! Stickiness: moves prefer partitions the giver did not own before this rebalance, so
//! balancing first spends partitions that are moving anyway.
//!
//! Cost: a chain is found by one breadth-first search over members, each topic expanded
//! once, `O(members + topics + sum of subscribers per topic)`; each chain lowers the sum
//! of squared loads, so there are at most `O(partitions * max load)` of them, and in
//! practice about as many as the partitions that must move.

use std::collections::{BTreeMap, VecDeque};

use super::Tp;
use crate::consumer::assignor::{java_cmp, Group};

/// A member's partitions of one topic.
#[derive(Debug, Default)]
struct Held {
    /// Owned before this rebalance, ascending.
    kept: Vec<i32>,
    /// Given in this rebalance.
    fresh: Vec<i32>,
}

impl Held {
    fn is_empty(&self) -> bool {
        self.kept.is_empty() && self.fresh.is_empty()
    }

    /// One partition to give away: a fresh one if any, else the highest kept one.
    fn take(&mut self) -> Option<i32> {
        self.fresh.pop().or_else(|| self.kept.pop())
    }
}

#[derive(Debug)]
struct Balancer<'g, 'a> {
    group: &'g Group<'a>,
    /// Per member, its partitions by topic index.
    held: Vec<BTreeMap<usize, Held>>,
    /// Per member, how many partitions it holds.
    load: Vec<usize>,
}

/// Each member's partitions, given each member's validly owned ones.
pub(super) fn assign(group: &Group<'_>, owned: &[Vec<Tp>]) -> Vec<Vec<Tp>> {
    let members = group.members.len();
    let mut b = Balancer {
        group,
        held: (0..members).map(|_| BTreeMap::new()).collect(),
        load: vec![0; members],
    };
    let mut taken: Vec<Vec<bool>> =
        group.topics.iter().map(|&(_, count)| vec![false; count as usize]).collect();
    for (m, partitions) in owned.iter().enumerate() {
        let mut partitions = partitions.clone();
        partitions.sort_unstable();
        // A topic the member no longer subscribes to is given up (revoked).
        for (t, p) in partitions.into_iter().filter(|&(t, _)| group.is_subscribed(m, t)) {
            b.held[m].entry(t).or_default().kept.push(p);
            b.load[m] += 1;
            taken[t][p as usize] = true;
        }
    }

    // Java's order: topics with the fewest subscribers first (their partitions have the
    // fewest places to go), then by name.
    let mut topics: Vec<usize> = (0..group.topics.len()).collect();
    topics.sort_by(|&a, &b| {
        group.subscribers[a]
            .len()
            .cmp(&group.subscribers[b].len())
            .then_with(|| java_cmp(group.topics[a].0, group.topics[b].0))
    });
    for t in topics {
        for p in 0..group.topics[t].1 {
            if !taken[t][p as usize] {
                let m = *group.subscribers[t]
                    .iter()
                    .min_by_key(|&&m| (b.load[m], m))
                    .expect("invariant: a listed topic has a subscriber");
                b.give(m, t, p);
            }
        }
    }

    while b.rebalance_once() {}

    b.held
        .into_iter()
        .map(|by_topic| {
            by_topic
                .into_iter()
                .flat_map(|(t, h)| h.kept.into_iter().chain(h.fresh).map(move |p| (t, p)))
                .collect()
        })
        .collect()
}

impl Balancer<'_, '_> {
    fn give(&mut self, m: usize, t: usize, p: i32) {
        self.held[m].entry(t).or_default().fresh.push(p);
        self.load[m] += 1;
    }

    /// Moves partitions along one chain that improves the balance, starting from the most
    /// loaded members; false when there is none.
    fn rebalance_once(&mut self) -> bool {
        let mut levels: Vec<usize> = self.load.clone();
        levels.sort_unstable_by(|a, b| b.cmp(a));
        levels.dedup();
        let Some(&lowest) = levels.last() else {
            return false;
        };
        for level in levels.into_iter().take_while(|&l| l >= lowest + 2) {
            if let Some(chain) = self.find_chain(level) {
                for (from, to, t) in chain {
                    let held = self.held[from]
                        .get_mut(&t)
                        .expect("invariant: chain hops hold their topic");
                    let p = held.take().expect("invariant: chain hops hold their topic");
                    if held.is_empty() {
                        self.held[from].remove(&t);
                    }
                    self.load[from] -= 1;
                    self.give(to, t, p);
                }
                return true;
            }
        }
        false
    }

    /// A shortest chain from a member with at least `level` partitions to one with at
    /// most `level - 2`, as hops `(from, to, topic)` from the loaded end.
    fn find_chain(&self, level: usize) -> Option<Vec<(usize, usize, usize)>> {
        let members = self.load.len();
        let mut parent: Vec<Option<(usize, usize)>> = vec![None; members];
        let mut seen = vec![false; members];
        let mut expanded = vec![false; self.group.topics.len()];
        let mut queue = VecDeque::new();
        for m in (0..members).filter(|&m| self.load[m] >= level) {
            seen[m] = true;
            queue.push_back(m);
        }
        while let Some(from) = queue.pop_front() {
            for (&t, _) in self.held[from].iter().filter(|(_, h)| !h.is_empty()) {
                // Whoever a topic leads to, the first member holding it reached already.
                if std::mem::replace(&mut expanded[t], true) {
                    continue;
                }
                for &to in &self.group.subscribers[t] {
                    if seen[to] {
                        continue;
                    }
                    seen[to] = true;
                    parent[to] = Some((from, t));
                    if self.load[to] + 2 <= level {
                        let mut chain = Vec::new();
                        let mut at = to;
                        while let Some((prev, topic)) = parent[at] {
                            chain.push((prev, at, topic));
                            at = prev;
                        }
                        chain.reverse();
                        return Some(chain);
                    }
                    queue.push_back(to);
                }
            }
        }
        None
    }
}
