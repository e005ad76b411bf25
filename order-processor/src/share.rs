//! The fair share of partitions: how many one replica may own while a given
//! number of replicas are live, and which to give up when it owns more.
//!
//! Every replica uses the ceiling of partitions / replicas. The shares then
//! add up to at least the partition count, so every partition can stay owned,
//! and no replica owns more than one partition above any other once settled
//! (with more replicas than partitions, some own none). A replica claims only
//! while below its share and gives up only what is above it, so it never
//! releases a partition it would claim back on the next round.

use std::collections::BTreeSet;

/// How many partitions one replica may own while `replicas` are live. A
/// replica always counts itself, so fewer than one is taken as one.
pub fn fair_share(partitions: u16, replicas: usize) -> usize {
    usize::from(partitions).div_ceil(replicas.max(1))
}

/// The partitions to give up so that at most `share` of `active` stay: the
/// highest-numbered ones. A fixed choice keeps the lowest partitions, and with
/// them partition 0 and the replica-wide gauges (see `gauge_owner`), where
/// they are when a replica joins.
pub fn surplus(active: &BTreeSet<u16>, share: usize) -> Vec<u16> {
    let excess = active.len().saturating_sub(share);
    active.iter().rev().take(excess).copied().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shares_of_every_replica_count_cover_every_partition_within_one_of_even() {
        for partitions in 1..=64u16 {
            for replicas in 1..=usize::from(partitions) {
                let share = fair_share(partitions, replicas);
                let total = usize::from(partitions);
                assert!(
                    share * replicas >= total,
                    "{partitions} partitions, {replicas} replicas: shares of {share} leave some unowned"
                );
                assert!(
                    share * replicas < total + replicas,
                    "{partitions} partitions, {replicas} replicas: a share of {share} is more than even"
                );
            }
        }
    }

    #[test]
    fn shares_for_eight_partitions() {
        let shares: Vec<usize> = (1..=8).map(|replicas| fair_share(8, replicas)).collect();
        assert_eq!(shares, [8, 4, 3, 2, 2, 2, 2, 1]);
    }

    #[test]
    fn more_replicas_than_partitions_get_one_partition_each_at_most() {
        assert_eq!(fair_share(8, 9), 1);
        assert_eq!(fair_share(8, 1_000), 1);
        assert_eq!(fair_share(1, 3), 1);
    }

    #[test]
    fn no_replica_counted_is_taken_as_this_one_alone() {
        assert_eq!(fair_share(8, 0), 8);
    }

    #[test]
    fn the_surplus_is_the_highest_partitions_above_the_share() {
        let active: BTreeSet<u16> = [0, 2, 3, 5, 6, 7].into();
        assert_eq!(surplus(&active, 4), [7, 6]);
        assert_eq!(surplus(&active, 1), [7, 6, 5, 3, 2]);
    }

    #[test]
    fn nothing_is_surplus_at_or_below_the_share() {
        let active: BTreeSet<u16> = [1, 4].into();
        assert!(surplus(&active, 2).is_empty());
        assert!(surplus(&active, 8).is_empty());
        assert!(surplus(&BTreeSet::new(), 0).is_empty());
    }
}
