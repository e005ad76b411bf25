//! Latency histograms, the run report, and how it is printed.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::invariants::Check;

/// Latencies in microseconds, from 1 µs to one hour, to three significant
/// digits: a percentile read back is within 0.1 % of the true value.
#[derive(Debug, Clone)]
pub struct LatencyHistogram {
    histogram: Histogram<u64>,
    /// The exact largest value; the histogram only knows its bucket.
    max: Duration,
}

const LOWEST_MICROS: u64 = 1;
const HIGHEST_MICROS: u64 = 3_600_000_000;

impl Default for LatencyHistogram {
    fn default() -> Self {
        Self {
            histogram: Histogram::new_with_bounds(LOWEST_MICROS, HIGHEST_MICROS, 3)
                .expect("valid histogram bounds"),
            max: Duration::ZERO,
        }
    }
}

impl LatencyHistogram {
    pub fn record(&mut self, latency: Duration) {
        let micros = (latency.as_micros() as u64).clamp(LOWEST_MICROS, HIGHEST_MICROS);
        self.histogram
            .record(micros)
            .expect("clamped into the histogram's range");
        self.max = self.max.max(latency);
    }

    pub fn merge(&mut self, other: &LatencyHistogram) {
        self.histogram
            .add(&other.histogram)
            .expect("histograms with the same bounds");
        self.max = self.max.max(other.max);
    }

    pub fn count(&self) -> u64 {
        self.histogram.len()
    }

    /// The latency at quantile `q` (0.5 is the median): the smallest value
    /// that at least `q` of the recorded values are at or below.
    pub fn quantile(&self, q: f64) -> Duration {
        if self.count() == 0 {
            return Duration::ZERO;
        }
        if q >= 1.0 {
            return self.max;
        }
        Duration::from_micros(self.histogram.value_at_quantile(q)).min(self.max)
    }

    pub fn summary(&self) -> Percentiles {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        Percentiles {
            count: self.count(),
            mean: self.histogram.mean() / 1000.0,
            p50: ms(self.quantile(0.50)),
            p90: ms(self.quantile(0.90)),
            p99: ms(self.quantile(0.99)),
            p999: ms(self.quantile(0.999)),
            max: ms(self.max),
        }
    }
}

/// Percentiles of one latency, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Percentiles {
    pub count: u64,
    pub mean: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
}

/// Everything one run measured and checked; `--json` writes it as is.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// `orderflow` (the stack) or `baseline` (per-order locking).
    pub system: &'static str,
    /// The run's id, part of every sku it created (`LG-<run>-<n>`).
    pub run_id: String,
    /// When the first order was due, Unix seconds.
    pub started_at_unix: f64,
    pub workload: WorkloadReport,
    pub drive: DriveReport,
    /// Requests made.
    pub sent: u64,
    /// Orders answered 2xx with an order id.
    pub accepted: u64,
    /// Requests that failed, by HTTP status (`http_503`) or by `timeout`,
    /// `connect`, `error`, `no_order_id`.
    pub failed: BTreeMap<String, u64>,
    /// From the first scheduled send to the last answer.
    pub sending_seconds: f64,
    pub accepted_per_second: f64,
    /// Accepted orders the database holds as decided.
    pub decided: u64,
    pub confirmed: u64,
    /// Rejected accepted orders, by reason.
    pub rejected: BTreeMap<String, u64>,
    /// From the first scheduled send to the last decision.
    pub decision_seconds: f64,
    pub decided_per_second: f64,
    /// `POST /orders`: from the scheduled send (open loop) or the send
    /// (closed loop) to the answer.
    pub post_orders_ms: Percentiles,
    /// From the scheduled send until the decision could be known: the
    /// order's decision event arriving (orderflow) or the answer, sent after
    /// the commit (baseline).
    pub send_to_decision_ms: Percentiles,
    /// Where `send_to_decision_ms` comes from: `events` or `answers`.
    pub decision_source: &'static str,
    /// Accepted orders whose decision was observed there; fewer than
    /// `decided` when events were missed (NATS drops a slow subscriber's).
    pub decisions_observed: u64,
    /// From the scheduled send to the order's `decided_at` in the database:
    /// for orderflow the start of the batch transaction that decided it,
    /// before its locks and commit; for the baseline the moment it decided,
    /// before its commit.
    pub send_to_decided_at_ms: Percentiles,
    /// Open loop only: how late the sender itself was behind the schedule; a
    /// large lag means the client, not the server, limited the run.
    pub sender_lag_ms: Option<Percentiles>,
    pub invariants: Vec<Check>,
    pub invariants_hold: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct WorkloadReport {
    pub shape: &'static str,
    pub products: usize,
    pub zipf_s: Option<f64>,
    pub lines: u32,
    pub quantity: i64,
    pub stock_per_product: i64,
    pub customers: u32,
    pub seed: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct DriveReport {
    /// `open` (fixed rate) or `closed` (N connections).
    pub mode: &'static str,
    pub rate: Option<f64>,
    pub connections: Option<usize>,
    pub max_in_flight: Option<usize>,
    pub orders: Option<u64>,
    pub duration_seconds: Option<f64>,
}

/// `compare`: the baseline and the stack under the same workload.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    pub baseline: Report,
    pub orderflow: Report,
    /// orderflow's decided/s over the baseline's.
    pub decided_per_second_ratio: f64,
    /// orderflow's accepted/s over the baseline's.
    pub accepted_per_second_ratio: f64,
}

impl Comparison {
    pub fn new(baseline: Report, orderflow: Report) -> Self {
        let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { f64::INFINITY };
        Self {
            decided_per_second_ratio: ratio(
                orderflow.decided_per_second,
                baseline.decided_per_second,
            ),
            accepted_per_second_ratio: ratio(
                orderflow.accepted_per_second,
                baseline.accepted_per_second,
            ),
            baseline,
            orderflow,
        }
    }

    pub fn render(&self) -> String {
        let (b, o) = (&self.baseline, &self.orderflow);
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{:<28}{:>12}{:>12}{:>9}",
            "", "orderflow", "baseline", "ratio"
        );
        let row = |out: &mut String, name: &str, a: f64, b: f64, digits: usize| {
            let ratio = if b > 0.0 { a / b } else { f64::INFINITY };
            let _ = writeln!(out, "{name:<28}{a:>12.digits$}{b:>12.digits$}{ratio:>8.2}x");
        };
        row(
            &mut out,
            "accepted/s",
            o.accepted_per_second,
            b.accepted_per_second,
            0,
        );
        row(
            &mut out,
            "decided/s",
            o.decided_per_second,
            b.decided_per_second,
            0,
        );
        row(
            &mut out,
            "POST /orders p99 ms",
            o.post_orders_ms.p99,
            b.post_orders_ms.p99,
            1,
        );
        row(
            &mut out,
            "send to decision p99 ms",
            o.send_to_decision_ms.p99,
            b.send_to_decision_ms.p99,
            1,
        );
        out
    }
}

impl Report {
    /// The compact human table.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let w = &self.workload;
        let shape = match w.zipf_s {
            Some(s) => format!("zipf s={s}"),
            None => w.shape.to_owned(),
        };
        let drive = match self.drive.mode {
            "open" => format!("open loop at {:.0}/s", self.drive.rate.unwrap_or_default()),
            _ => format!(
                "closed loop over {} connections",
                self.drive.connections.unwrap_or_default()
            ),
        };
        let _ = writeln!(
            out,
            "{} (run {}): {shape} over {} product(s), {} line(s) x {} unit(s), {} in stock each; {drive}",
            self.system, self.run_id, w.products, w.lines, w.quantity, w.stock_per_product
        );
        let failed = if self.failed.is_empty() {
            "none".to_owned()
        } else {
            join_counts(&self.failed)
        };
        let _ = writeln!(
            out,
            "  sent {}, accepted {}, failed {failed}",
            self.sent, self.accepted
        );
        if self.failed.contains_key("http_429") {
            let _ = writeln!(
                out,
                "  (429: ingress-api's per-client rate limit; run it with \
                 ORDERFLOW_RATE_LIMIT_PER_CLIENT=0 to benchmark)"
            );
        }
        let _ = writeln!(
            out,
            "  accepted/s  {:>9.0}   ({:.2} s from the first scheduled send to the last answer)",
            self.accepted_per_second, self.sending_seconds
        );
        let _ = writeln!(
            out,
            "  decided/s   {:>9.0}   ({:.2} s from the first scheduled send to the last decision)",
            self.decided_per_second, self.decision_seconds
        );
        let rejected: u64 = self.rejected.values().sum();
        let reasons = if self.rejected.is_empty() {
            String::new()
        } else {
            format!(" ({})", join_counts(&self.rejected))
        };
        let _ = writeln!(
            out,
            "  outcomes    {} decided: {} confirmed, {rejected} rejected{reasons}",
            self.decided, self.confirmed
        );
        let _ = writeln!(
            out,
            "  {:<22}{:>9}{:>9}{:>9}{:>9}{:>10}",
            "latency (ms)", "p50", "p90", "p99", "p99.9", "max"
        );
        let mut latency = |name: &str, p: &Percentiles| {
            let _ = writeln!(
                out,
                "  {name:<22}{:>9.1}{:>9.1}{:>9.1}{:>9.1}{:>10.1}",
                p.p50, p.p90, p.p99, p.p999, p.max
            );
        };
        latency("POST /orders", &self.post_orders_ms);
        latency("send to decision", &self.send_to_decision_ms);
        latency("send to decided_at", &self.send_to_decided_at_ms);
        if let Some(lag) = &self.sender_lag_ms {
            latency("sender lag", lag);
        }
        if self.decisions_observed < self.decided {
            let _ = writeln!(
                out,
                "  (send to decision from {} of {} decisions: the rest of the {} never arrived)",
                self.decisions_observed, self.decided, self.decision_source
            );
        }
        let _ = writeln!(
            out,
            "  invariants  {}",
            if self.invariants_hold {
                "hold".to_owned()
            } else {
                let broken: Vec<&str> = self
                    .invariants
                    .iter()
                    .filter(|c| !c.ok)
                    .map(|c| c.name)
                    .collect();
                format!("BROKEN: {}", broken.join(", "))
            }
        );
        for check in &self.invariants {
            let _ = writeln!(
                out,
                "    {} {:<34} {}",
                if check.ok { "ok    " } else { "FAILED" },
                check.name,
                check.detail
            );
        }
        out
    }
}

fn join_counts(counts: &BTreeMap<String, u64>) -> String {
    counts
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn percentiles_of_one_to_a_thousand_milliseconds() {
        let mut h = LatencyHistogram::default();
        for n in 1..=1000 {
            h.record(ms(n));
        }
        let p = h.summary();
        assert_eq!(p.count, 1000);
        // Nearest rank: the 500th, 900th, 990th and 999th smallest values,
        // to the histogram's three significant digits.
        for (got, want) in [
            (p.p50, 500.0),
            (p.p90, 900.0),
            (p.p99, 990.0),
            (p.p999, 999.0),
        ] {
            assert!((got - want).abs() <= want * 0.001, "{got} vs {want}");
        }
        assert_eq!(p.max, 1000.0);
        assert!((p.mean - 500.5).abs() < 0.5);
    }

    #[test]
    fn one_slow_request_in_a_hundred_sets_p99_but_not_p90() {
        let mut h = LatencyHistogram::default();
        for _ in 0..98 {
            h.record(ms(2));
        }
        h.record(ms(1500));
        h.record(ms(1500));
        let p = h.summary();
        assert!((p.p90 - 2.0).abs() < 0.01);
        assert!((p.p99 - 1500.0).abs() <= 1.5);
        assert_eq!(p.max, 1500.0);
    }

    #[test]
    fn merged_histograms_count_every_value_and_keep_the_exact_max() {
        let mut a = LatencyHistogram::default();
        let mut b = LatencyHistogram::default();
        a.record(Duration::from_micros(1234));
        b.record(Duration::from_micros(987_654));
        a.merge(&b);
        assert_eq!(a.count(), 2);
        assert_eq!(a.quantile(1.0), Duration::from_micros(987_654));
        assert!((a.summary().max - 987.654).abs() < 1e-9);
    }

    #[test]
    fn an_empty_histogram_reads_as_zero_and_extremes_are_clamped() {
        assert_eq!(
            LatencyHistogram::default().summary(),
            Percentiles::default()
        );
        let mut h = LatencyHistogram::default();
        h.record(Duration::ZERO);
        h.record(Duration::from_secs(7200));
        assert_eq!(h.count(), 2);
        assert_eq!(h.quantile(0.5), Duration::from_micros(1));
        assert_eq!(h.quantile(1.0), Duration::from_secs(7200));
    }
}
