use super::*;

fn cand(member: usize, group: u8, proficiency: u8, active: usize) -> Candidate {
    Candidate {
        member,
        proficiency,
        group,
        percent: 0,
        active,
        last_assigned: None,
    }
}

#[test]
fn cascade_prefers_lower_group_then_proficiency_then_load() {
    let candidates = [
        cand(0, 2, 9, 0),
        cand(1, 1, 3, 1),
        cand(2, 1, 5, 2),
        cand(3, 1, 5, 1),
    ];
    assert_eq!(cascade(&candidates), Some(3));
    assert_eq!(
        cascade(&candidates[..1]),
        Some(0),
        "group 2 only when group 1 has nobody"
    );
    assert_eq!(cascade(&[]), None);
}

#[test]
fn cascade_breaks_ties_by_idle_time() {
    let mut a = cand(0, 1, 5, 0);
    let mut b = cand(1, 1, 5, 0);
    a.last_assigned = Some(Timestamp::from_unix_seconds(200));
    b.last_assigned = Some(Timestamp::from_unix_seconds(100));
    assert_eq!(cascade(&[a, b]), Some(1));
}

#[test]
fn percent_allocation_follows_the_shares_exactly_over_a_cycle() {
    let shares = [50u8, 30, 20];
    let candidates: Vec<_> = shares
        .iter()
        .enumerate()
        .map(|(i, &p)| Candidate {
            percent: p,
            ..cand(i, 1, 1, 0)
        })
        .collect();
    let mut counters = Vec::new();
    let mut counts = [0; 3];
    for _ in 0..100 {
        counts[percent(&candidates, &mut counters, 3).unwrap()] += 1;
    }
    assert_eq!(counts, [50, 30, 20]);
    // Smooth: the 50 % agent never gets three in a row.
    let mut counters = Vec::new();
    let picks: Vec<_> = (0..10)
        .map(|_| percent(&candidates, &mut counters, 3).unwrap())
        .collect();
    assert!(
        !picks.windows(3).any(|w| w.iter().all(|&p| p == 0)),
        "{picks:?}"
    );
}
