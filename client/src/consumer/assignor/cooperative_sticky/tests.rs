use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use proptest::prelude::*;

use super::*;
use crate::consumer::assignor::tests::{
    assignable, check_valid, counts, member, render, same_topics, scenario, scenario_with, spread,
    Scenario,
};

fn owning(m: MemberSubscription, generation: i32, owned: &[(&str, i32)]) -> MemberSubscription {
    MemberSubscription {
        owned_partitions: owned.iter().map(|&(t, p)| (t.to_owned(), p)).collect(),
        generation,
        ..m
    }
}

fn run(
    topics: &[(&str, u32)],
    members: &[MemberSubscription],
) -> (BTreeMap<String, String>, BTreeMap<String, String>) {
    let result = CooperativeStickyAssignor.assign_cooperative(&counts(topics), members);
    let assignment = result.assignment.iter().map(|(m, tps)| (m.clone(), render(tps))).collect();
    let withheld =
        result.withheld.iter().map(|((t, p), m)| (format!("{t}-{p}"), m.clone())).collect();
    (assignment, withheld)
}

/// The same members, now owning what `assignment` gave them, in `generation`.
fn next_round(
    members: &[MemberSubscription],
    assignment: &GroupAssignment,
    generation: i32,
) -> Vec<MemberSubscription> {
    members
        .iter()
        .map(|m| MemberSubscription {
            owned_partitions: assignment[&m.member_id].clone(),
            generation,
            ..m.clone()
        })
        .collect()
}

#[test]
fn the_javadoc_example() {
    // StickyAssignor's Javadoc: C0, C1 and C2 subscribe to t0..t3 of two partitions each.
    let topics = [("t0", 2), ("t1", 2), ("t2", 2), ("t3", 2)];
    let all = ["t0", "t1", "t2", "t3"];
    let members = [member("C0", &all), member("C1", &all), member("C2", &all)];
    let (assignment, withheld) = run(&topics, &members);
    assert_eq!(assignment["C0"], "t0-0 t1-1 t3-0");
    assert_eq!(assignment["C1"], "t0-1 t2-0 t3-1");
    assert_eq!(assignment["C2"], "t1-0 t2-1");
    assert!(withheld.is_empty());

    // C1 leaves. Traced by hand through Java's constrained algorithm: both keep what they
    // own (below the quota of 4), and C1's partitions t0-1, t2-0, t3-1 are dealt
    // round-robin from C0, which reaches its quota at once. Nothing was owned by another
    // member, so nothing is withheld. (The Javadoc's figures predate that algorithm.)
    let members = [
        owning(member("C0", &all), 5, &[("t0", 0), ("t1", 1), ("t3", 0)]),
        owning(member("C2", &all), 5, &[("t1", 0), ("t2", 1)]),
    ];
    let (assignment, withheld) = run(&topics, &members);
    assert_eq!(assignment["C0"], "t0-0 t0-1 t1-1 t3-0");
    assert_eq!(assignment["C2"], "t1-0 t2-0 t2-1 t3-1");
    assert!(withheld.is_empty());
}

#[test]
fn a_joining_member_waits_for_revoked_partitions() {
    let members = [
        owning(member("a", &["t"]), 3, &[("t", 0), ("t", 1), ("t", 2)]),
        owning(member("b", &["t"]), 3, &[("t", 3), ("t", 4), ("t", 5)]),
        member("c", &["t"]),
    ];
    let (assignment, withheld) = run(&[("t", 6)], &members);
    // Each keeps its two lowest; t-2 and t-5 go to c only once revoked.
    assert_eq!(assignment["a"], "t-0 t-1");
    assert_eq!(assignment["b"], "t-3 t-4");
    assert_eq!(assignment["c"], "");
    assert_eq!(withheld, BTreeMap::from([("t-2".into(), "c".into()), ("t-5".into(), "c".into())]));

    let members = [
        owning(member("a", &["t"]), 4, &[("t", 0), ("t", 1)]),
        owning(member("b", &["t"]), 4, &[("t", 3), ("t", 4)]),
        member("c", &["t"]),
    ];
    let (assignment, withheld) = run(&[("t", 6)], &members);
    assert_eq!(assignment["c"], "t-2 t-5");
    assert!(withheld.is_empty());
}

#[test]
fn the_higher_generation_owns_a_contested_partition() {
    let members = [
        owning(member("a", &["t"]), 5, &[("t", 0), ("t", 1)]),
        owning(member("b", &["t"]), 6, &[("t", 1)]),
    ];
    let (assignment, withheld) = run(&[("t", 2)], &members);
    assert_eq!(assignment["a"], "t-0");
    assert_eq!(assignment["b"], "t-1");
    assert!(withheld.is_empty());

    // In the same generation, neither claim counts: the partition is dealt, but withheld.
    let members = [
        owning(member("a", &["t"]), 6, &[("t", 0), ("t", 1)]),
        owning(member("b", &["t"]), 6, &[("t", 1)]),
    ];
    let (assignment, withheld) = run(&[("t", 2)], &members);
    assert_eq!(assignment["a"], "t-0");
    assert_eq!(assignment["b"], "");
    assert_eq!(withheld, BTreeMap::from([("t-1".into(), "b".into())]));
}

#[test]
fn claims_to_missing_partitions_are_ignored() {
    let members =
        [owning(member("a", &["t"]), 1, &[("t", 7), ("t", -1), ("gone", 0)]), member("b", &["t"])];
    let (assignment, withheld) = run(&[("t", 2), ("gone", 1)], &members);
    assert_eq!(assignment["a"], "t-0");
    assert_eq!(assignment["b"], "t-1");
    assert!(withheld.is_empty());
}

#[test]
fn chains_balance_where_single_moves_cannot() {
    // a can take only x, c only y, b either: loads 3, 2, 1. No single move helps (each
    // pair differs by one); x-2 from a to b and y-0 from b to c does.
    let members = [
        owning(member("a", &["x"]), 1, &[("x", 0), ("x", 1), ("x", 2)]),
        owning(member("b", &["x", "y"]), 1, &[("x", 3), ("y", 0)]),
        owning(member("c", &["y"]), 1, &[("y", 1)]),
    ];
    let topics = [("x", 4), ("y", 2)];
    let (assignment, withheld) = run(&topics, &members);
    assert_eq!(assignment["a"], "x-0 x-1");
    assert_eq!(assignment["b"], "x-3");
    assert_eq!(assignment["c"], "y-1");
    assert_eq!(withheld, BTreeMap::from([("x-2".into(), "b".into()), ("y-0".into(), "c".into())]));

    let members = [
        owning(member("a", &["x"]), 2, &[("x", 0), ("x", 1)]),
        owning(member("b", &["x", "y"]), 2, &[("x", 3)]),
        owning(member("c", &["y"]), 2, &[("y", 1)]),
    ];
    let (assignment, withheld) = run(&topics, &members);
    assert_eq!(assignment["a"], "x-0 x-1");
    assert_eq!(assignment["b"], "x-2 x-3");
    assert_eq!(assignment["c"], "y-0 y-1");
    assert!(withheld.is_empty());
}

#[test]
fn a_stale_claim_does_not_skip_the_revocation() {
    // b's claim to t-1 lost to a's newer one; b no longer subscribes to u, so balancing
    // may give b t-1, but only once a has revoked it.
    let members = [
        owning(member("a", &["t", "u"]), 6, &[("t", 0), ("t", 1), ("u", 0)]),
        owning(member("b", &["t"]), 5, &[("t", 1)]),
    ];
    let result =
        CooperativeStickyAssignor.assign_cooperative(&counts(&[("t", 2), ("u", 1)]), &members);
    assert!(!result.assignment["b"].contains(&("t".to_owned(), 1)));
    assert_eq!(result.withheld, BTreeMap::from([(("t".to_owned(), 1), "b".to_owned())]));
}

#[test]
fn user_data_is_the_generation() {
    assert_eq!(&CooperativeStickyAssignor::subscription_user_data(258)[..], [0, 0, 1, 2]);
    assert_eq!(&CooperativeStickyAssignor::subscription_user_data(-1)[..], [0xff; 4]);
}

#[test]
fn the_generation_comes_from_the_subscription_or_else_its_user_data() {
    let v1 = Subscription {
        topics: vec!["t".into()],
        user_data: Some(CooperativeStickyAssignor::subscription_user_data(41)),
        ..Subscription::default()
    };
    let member = |s: &Subscription| {
        CooperativeStickyAssignor.member_subscription("m".into(), None, s.clone()).generation
    };
    // What a pre-v2 Java client sends: the generation only in the user data.
    assert_eq!(member(&v1), 41);
    assert_eq!(member(&Subscription { generation_id: 7, ..v1.clone() }), 7);
    let short = Subscription { user_data: Some(Bytes::from_static(&[0, 0, 1])), ..v1.clone() };
    assert_eq!(member(&short), -1);
    assert_eq!(member(&Subscription { user_data: None, ..v1 }), -1);
}

/// What the assignment meant before the cooperative rule held partitions back.
fn intended(result: &CooperativeAssignment) -> GroupAssignment {
    let mut all = result.assignment.clone();
    for (tp, m) in &result.withheld {
        all.get_mut(m).expect("withheld for a member").push(tp.clone());
    }
    all
}

/// As balanced as the subscriptions allow: within one partition when all subscribe alike;
/// otherwise no chain of members (each holding a partition of a topic the next one
/// subscribes to) runs from one member to another with two fewer partitions.
fn check_balanced(
    assignment: &GroupAssignment,
    members: &[MemberSubscription],
) -> Result<(), TestCaseError> {
    if same_topics(members) {
        let (max, min) = spread(assignment);
        prop_assert!(max - min <= 1, "{assignment:?}");
        return Ok(());
    }
    let n = members.len();
    let mut reach = vec![vec![false; n]; n];
    for (x, from) in members.iter().enumerate() {
        for (y, to) in members.iter().enumerate() {
            reach[x][y] =
                x != y && assignment[&from.member_id].iter().any(|(t, _)| to.topics.contains(t));
        }
    }
    for k in 0..n {
        for x in 0..n {
            for y in 0..n {
                reach[x][y] = reach[x][y] || (reach[x][k] && reach[k][y]);
            }
        }
    }
    let load = |i: usize| assignment[&members[i].member_id].len();
    for x in 0..n {
        for y in 0..n {
            prop_assert!(
                !reach[x][y] || load(x) < load(y) + 2,
                "{} could pass on to {}: {assignment:?}",
                members[x].member_id,
                members[y].member_id
            );
        }
    }
    Ok(())
}

/// The member whose claim counts: the only claimant of the highest claiming generation.
fn valid_owner(members: &[MemberSubscription], tp: &(String, i32)) -> Option<String> {
    let claimants: Vec<&MemberSubscription> =
        members.iter().filter(|m| m.owned_partitions.contains(tp)).collect();
    let top = claimants.iter().map(|m| m.generation).max()?;
    match claimants.iter().filter(|m| m.generation == top).collect::<Vec<_>>()[..] {
        [m] => Some(m.member_id.clone()),
        _ => None,
    }
}

/// The cooperative rule, checked: no member gets a partition another member claims unless
/// it claims it too, nor one whose valid owner is another member; and the assignment plus
/// what is withheld is every partition, once.
fn check_cooperative(
    result: &CooperativeAssignment,
    partitions_per_topic: &BTreeMap<String, u32>,
    members: &[MemberSubscription],
) -> Result<(), TestCaseError> {
    let assigned = check_valid(&result.assignment, partitions_per_topic, members)?;
    let withheld: BTreeSet<(String, i32)> = result.withheld.keys().cloned().collect();
    prop_assert!(assigned.is_disjoint(&withheld));
    prop_assert_eq!(&(&assigned | &withheld), &assignable(partitions_per_topic, members));
    check_valid(&intended(result), partitions_per_topic, members)?;
    for y in members {
        for tp in &result.assignment[&y.member_id] {
            let claimed_by_other = members
                .iter()
                .any(|x| x.member_id != y.member_id && x.owned_partitions.contains(tp));
            prop_assert!(
                !claimed_by_other || y.owned_partitions.contains(tp),
                "{tp:?} moved straight to {}",
                y.member_id
            );
            let owner = valid_owner(members, tp);
            prop_assert!(
                owner.is_none() || owner.as_ref() == Some(&y.member_id),
                "{tp:?} taken from {owner:?} by {}",
                y.member_id
            );
        }
    }
    Ok(())
}

/// A scenario whose members claim partitions at random (some missing, some contested),
/// in random generations.
fn claims() -> impl Strategy<Value = Scenario> {
    scenario().prop_flat_map(|(partitions_per_topic, members)| {
        let topics = partitions_per_topic.len();
        let n = members.len();
        let claims = prop::collection::vec(
            (prop::collection::vec((0..=topics, -1i32..9), 0..6), -1i32..=3),
            n,
        );
        (Just(partitions_per_topic), Just(members), claims).prop_map(
            |(partitions_per_topic, members, claims)| {
                let members = members
                    .into_iter()
                    .zip(claims)
                    .map(|(m, (owned, generation))| MemberSubscription {
                        owned_partitions: owned
                            .into_iter()
                            .map(|(t, p)| (format!("t{t}"), p))
                            .collect(),
                        generation,
                        ..m
                    })
                    .collect();
                (partitions_per_topic, members)
            },
        )
    })
}

proptest! {
    #[test]
    fn a_new_group_gets_everything_balanced((partitions_per_topic, members) in scenario()) {
        let result = CooperativeStickyAssignor.assign_cooperative(&partitions_per_topic, &members);
        prop_assert!(result.withheld.is_empty());
        check_cooperative(&result, &partitions_per_topic, &members)?;
        check_balanced(&result.assignment, &members)?;
    }

    #[test]
    fn any_claims_keep_the_cooperative_rule((partitions_per_topic, members) in claims()) {
        let result = CooperativeStickyAssignor.assign_cooperative(&partitions_per_topic, &members);
        check_cooperative(&result, &partitions_per_topic, &members)?;
    }

    #[test]
    fn an_unchanged_group_keeps_its_assignment((partitions_per_topic, members) in scenario()) {
        let first = CooperativeStickyAssignor.assign_cooperative(&partitions_per_topic, &members);
        let members = next_round(&members, &first.assignment, 1);
        let second = CooperativeStickyAssignor.assign_cooperative(&partitions_per_topic, &members);
        prop_assert_eq!(second, first);
    }

    /// A member joins: nothing moves straight from one member to another, and within a
    /// few follow-up rebalances (one when all subscribe alike) nothing is withheld and the
    /// group is balanced.
    #[test]
    fn a_joining_member_gets_partitions_through_revocation(
        (partitions_per_topic, members) in scenario_with(2, any::<bool>()),
    ) {
        let (staying, _) = members.split_at(members.len() - 1);
        let first = CooperativeStickyAssignor.assign_cooperative(&partitions_per_topic, staying);
        let mut assignment = first.assignment;
        let joiner = &members[members.len() - 1];
        assignment.insert(joiner.member_id.clone(), Vec::new());
        let mut rounds = 0;
        loop {
            let current = next_round(&members, &assignment, rounds + 1);
            let result =
                CooperativeStickyAssignor.assign_cooperative(&partitions_per_topic, &current);
            check_cooperative(&result, &partitions_per_topic, &current)?;
            check_balanced(&intended(&result), &current)?;
            rounds += 1;
            assignment = result.assignment;
            if result.withheld.is_empty() {
                break;
            }
            // One follow-up sufficed in every case tried (20,000); that it always does is
            // shown only for groups that subscribe alike, so others may take three.
            let withheld = &result.withheld;
            prop_assert!(rounds < 4, "withholding after {rounds} rebalances: {withheld:?}");
        }
        if same_topics(&members) {
            prop_assert!(rounds <= 2, "{rounds} rebalances");
        }
        check_balanced(&assignment, &members)?;
    }

    /// A member leaves a group that subscribes alike: the others keep all they own.
    #[test]
    fn a_leaving_member_takes_nothing_from_the_others(
        (partitions_per_topic, members) in scenario_with(2, Just(true)),
    ) {
        let first = CooperativeStickyAssignor.assign_cooperative(&partitions_per_topic, &members);
        let staying = next_round(&members[..members.len() - 1], &first.assignment, 1);
        let second = CooperativeStickyAssignor.assign_cooperative(&partitions_per_topic, &staying);
        prop_assert!(second.withheld.is_empty());
        for m in &staying {
            let now: BTreeSet<&(String, i32)> = second.assignment[&m.member_id].iter().collect();
            let kept = m.owned_partitions.iter().all(|tp| now.contains(tp));
            prop_assert!(kept, "{} lost some of {:?}", m.member_id, m.owned_partitions);
        }
        check_balanced(&second.assignment, &staying)?;
    }
}
