//! Who exports the replica-wide gauges (queue depth, stock, ledger drift):
//! the replica that owns partition 0, exactly one at a time.
//!
//! A replica that loses partition 0 must not keep exporting its last values:
//! they would freeze, and a dashboard or alert taking `max` over replicas
//! would keep showing a queue or a drift that is long gone. So on losing it,
//! a replica sets its copies to 0 once, and the new owner's values win.

use crate::coordinator::OwnedPartitions;

/// What a gauge loop should do on this tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Turn {
    /// This replica owns partition 0: measure and export.
    Export,
    /// This replica has just lost partition 0: zero what it exported.
    Resign,
    /// Another replica exports; nothing to do.
    Idle,
}

pub struct GaugeOwner {
    owned: OwnedPartitions,
    exporting: bool,
}

impl GaugeOwner {
    pub fn new(owned: OwnedPartitions) -> Self {
        Self {
            owned,
            exporting: false,
        }
    }

    pub fn turn(&mut self) -> Turn {
        let owns = self
            .owned
            .lock()
            .expect("owned partitions lock")
            .contains(&0);
        let turn = match (owns, self.exporting) {
            (true, _) => Turn::Export,
            (false, true) => Turn::Resign,
            (false, false) => Turn::Idle,
        };
        self.exporting = owns;
        turn
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::sync::{Arc, Mutex};

    use super::*;

    #[test]
    fn resigns_once_after_losing_partition_zero() {
        let owned: OwnedPartitions = Arc::new(Mutex::new(BTreeSet::new()));
        let mut owner = GaugeOwner::new(owned.clone());
        assert_eq!(owner.turn(), Turn::Idle);
        owned.lock().unwrap().insert(1);
        assert_eq!(
            owner.turn(),
            Turn::Idle,
            "partition 1 alone does not export"
        );
        owned.lock().unwrap().insert(0);
        assert_eq!(owner.turn(), Turn::Export);
        assert_eq!(owner.turn(), Turn::Export);
        owned.lock().unwrap().remove(&0);
        assert_eq!(owner.turn(), Turn::Resign);
        assert_eq!(owner.turn(), Turn::Idle);
    }
}
