//! The open-loop schedule: when each order is due.
//!
//! Order `i` is due at `start + i / rate`, computed from `i` (never by adding
//! up intervals, which would drift), and every latency of that order is
//! measured from that moment. When the sender falls behind (the machine
//! stalls, or every in-flight slot is taken) the orders that came due in the
//! meantime go out at once, still carrying their scheduled times: the wait is
//! counted against the system, not forgotten. This is what keeps the figures
//! free of coordinated omission.

use std::time::Duration;

/// A fixed-rate schedule of `orders` orders.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Schedule {
    rate: f64,
    orders: u64,
}

impl Schedule {
    pub fn new(rate: f64, orders: u64) -> Self {
        assert!(rate.is_finite() && rate > 0.0, "a positive rate");
        Self { rate, orders }
    }

    /// As many orders as `rate` gives in `duration`.
    pub fn for_duration(rate: f64, duration: Duration) -> Self {
        Self::new(rate, (rate * duration.as_secs_f64()).floor() as u64)
    }

    pub fn orders(&self) -> u64 {
        self.orders
    }

    pub fn rate(&self) -> f64 {
        self.rate
    }

    /// When order `index` is due, from the start of the run.
    pub fn due(&self, index: u64) -> Duration {
        Duration::from_secs_f64(index as f64 / self.rate)
    }

    /// The orders due by `elapsed` that have not been sent yet, given that
    /// `sent` of them have: what the sender sends now, each with `due(i)`.
    pub fn due_by(&self, elapsed: Duration, sent: u64) -> std::ops::Range<u64> {
        // Order i is due when i / rate <= elapsed, i.e. i <= elapsed * rate.
        let due = ((elapsed.as_secs_f64() * self.rate).floor() as u64)
            .saturating_add(1)
            .min(self.orders);
        sent..due.max(sent)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_are_spaced_one_interval_apart_from_the_start() {
        let schedule = Schedule::new(1000.0, 5000);
        assert_eq!(schedule.due(0), Duration::ZERO);
        assert_eq!(schedule.due(1), Duration::from_millis(1));
        assert_eq!(schedule.due(1000), Duration::from_secs(1));
        assert_eq!(schedule.due(4999), Duration::from_millis(4999));
    }

    #[test]
    fn the_schedule_does_not_drift_over_millions_of_orders() {
        // 1/3 s has no exact binary representation; adding it up would drift.
        let schedule = Schedule::new(3.0, 10_000_000);
        assert_eq!(schedule.due(9_000_000), Duration::from_secs(3_000_000));
        let fast = Schedule::new(12_345.0, 10_000_000);
        let due = fast.due(9_876_543).as_secs_f64();
        assert!((due - 9_876_543.0 / 12_345.0).abs() < 1e-6);
    }

    #[test]
    fn a_duration_gives_rate_times_seconds_orders() {
        assert_eq!(
            Schedule::for_duration(250.0, Duration::from_secs(10)).orders(),
            2500
        );
        assert_eq!(
            Schedule::for_duration(3.0, Duration::from_millis(1500)).orders(),
            4
        );
    }

    #[test]
    fn a_stalled_sender_sends_what_came_due_at_once_with_their_scheduled_times() {
        let schedule = Schedule::new(1000.0, 10_000);
        // On time: at 5 ms orders 0 to 5 are due.
        assert_eq!(schedule.due_by(Duration::from_millis(5), 0), 0..6);
        // The sender stalls for 100 ms after order 5: the 100 orders that
        // came due are all sent now, and each keeps its own due time, so the
        // first of them is already 99 ms late when it leaves.
        let late = schedule.due_by(Duration::from_micros(105_500), 6);
        assert_eq!(late, 6..106);
        assert_eq!(schedule.due(late.start), Duration::from_millis(6));
        let lag = Duration::from_micros(105_500) - schedule.due(late.start);
        assert_eq!(lag, Duration::from_micros(99_500));
        // Nothing is sent twice, and nothing beyond the planned orders.
        assert_eq!(schedule.due_by(Duration::from_millis(50), 106), 106..106);
        assert_eq!(
            schedule.due_by(Duration::from_secs(3600), 9_990),
            9_990..10_000
        );
    }
}
