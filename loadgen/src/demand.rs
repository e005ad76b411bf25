//! The demand: which products each order names.
//!
//! Order `i` of a run is a pure function of the seed and `i`, so both drivers
//! (and both systems in `compare`) place the same orders in the same sequence,
//! and a run can be repeated exactly.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::args::{Shape, Workload};

/// Draws ranks `0..n` with probability proportional to `1 / (rank + 1)^s`.
///
/// The cumulative weights are computed once; a draw is one uniform number and
/// a binary search, so a sample costs O(log n) for any exponent.
#[derive(Debug, Clone)]
pub struct Zipf {
    /// Cumulative weights: `cumulative[k]` is the weight of ranks `0..=k`.
    cumulative: Vec<f64>,
}

impl Zipf {
    /// `n` ranks with exponent `s` (`s = 0` is uniform).
    pub fn new(n: usize, s: f64) -> Self {
        assert!(n >= 1, "a zipf distribution needs at least one rank");
        assert!(s.is_finite() && s >= 0.0, "the exponent must be >= 0");
        let mut total = 0.0;
        let cumulative = (1..=n)
            .map(|rank| {
                total += (rank as f64).powf(-s);
                total
            })
            .collect();
        Self { cumulative }
    }

    pub fn ranks(&self) -> usize {
        self.cumulative.len()
    }

    /// The probability of drawing `rank`.
    pub fn probability(&self, rank: usize) -> f64 {
        let below = if rank == 0 {
            0.0
        } else {
            self.cumulative[rank - 1]
        };
        (self.cumulative[rank] - below) / self.total()
    }

    fn total(&self) -> f64 {
        *self.cumulative.last().expect("at least one rank")
    }

    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> usize {
        let target = rng.gen::<f64>() * self.total();
        // The first rank whose cumulative weight exceeds the target; the min
        // guards against rounding at the very top.
        self.cumulative
            .partition_point(|&c| c <= target)
            .min(self.ranks() - 1)
    }
}

/// How a product is drawn.
#[derive(Debug, Clone)]
enum Picker {
    /// Every product equally likely (one product: the hot shape).
    Uniform(usize),
    Zipf(Zipf),
}

impl Picker {
    fn pick(&self, rng: &mut StdRng) -> usize {
        match self {
            Picker::Uniform(n) => rng.gen_range(0..*n),
            Picker::Zipf(zipf) => zipf.sample(rng),
        }
    }

    fn products(&self) -> usize {
        match self {
            Picker::Uniform(n) => *n,
            Picker::Zipf(zipf) => zipf.ranks(),
        }
    }
}

/// One order line: the index of a product in the run's fixture, and units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Line {
    pub product: usize,
    pub quantity: i64,
}

/// The orders of a run.
#[derive(Debug, Clone)]
pub struct Demand {
    picker: Picker,
    lines: usize,
    quantity: i64,
    seed: u64,
}

impl Demand {
    pub fn new(workload: &Workload) -> Self {
        let products = workload.product_count();
        let picker = match workload.shape {
            Shape::Hot | Shape::Uniform => Picker::Uniform(products),
            Shape::Zipf => Picker::Zipf(Zipf::new(products, workload.zipf_s)),
        };
        let lines = workload.lines as usize;
        assert!(lines <= products, "validated by Workload::validate");
        Self {
            picker,
            lines,
            quantity: workload.quantity,
            seed: workload.seed,
        }
    }

    /// Order `index`: `lines` distinct products, drawn from the shape in the
    /// order drawn (the first line decides the order's partition).
    pub fn order(&self, index: u64) -> Vec<Line> {
        let mut rng = StdRng::seed_from_u64(mix(self.seed, index));
        let mut lines: Vec<Line> = Vec::with_capacity(self.lines);
        let mut tries = 0;
        while lines.len() < self.lines {
            let product = if tries < 64 * self.lines {
                self.picker.pick(&mut rng)
            } else {
                // A steep zipf over few products can keep drawing the same
                // ones; take the most popular product not yet on the order.
                (0..self.picker.products())
                    .find(|p| lines.iter().all(|l| l.product != *p))
                    .expect("lines <= products")
            };
            tries += 1;
            if lines.iter().all(|l| l.product != product) {
                lines.push(Line {
                    product,
                    quantity: self.quantity,
                });
            }
        }
        lines
    }

    /// The JSON body of `POST /orders` for `lines`, with `skus` naming the
    /// fixture's products.
    pub fn body(lines: &[Line], skus: &[String]) -> String {
        let mut body = String::from(r#"{"items":["#);
        for (i, line) in lines.iter().enumerate() {
            if i > 0 {
                body.push(',');
            }
            body.push_str(&format!(
                r#"{{"sku":"{}","quantity":{}}}"#,
                skus[line.product], line.quantity
            ));
        }
        body.push_str("]}");
        body
    }
}

/// SplitMix64 of the seed and the index: neighbouring indexes give unrelated
/// seeds.
fn mix(seed: u64, index: u64) -> u64 {
    let mut z = seed ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn workload(shape: Shape, products: u32, zipf_s: f64, lines: u32) -> Workload {
        Workload {
            shape,
            products,
            zipf_s,
            lines,
            quantity: 2,
            stock: 100,
            customers: 1,
            seed: 7,
        }
    }

    /// Draws `samples` ranks and checks every rank's share against its
    /// probability within five standard deviations (the seed is fixed, so
    /// the outcome is too; the bound says the sampler is right, not lucky).
    fn assert_follows(zipf: &Zipf, samples: usize, seed: u64) {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut counts = vec![0usize; zipf.ranks()];
        for _ in 0..samples {
            counts[zipf.sample(&mut rng)] += 1;
        }
        for (rank, count) in counts.iter().enumerate() {
            let p = zipf.probability(rank);
            let expected = p * samples as f64;
            let sigma = (samples as f64 * p * (1.0 - p)).sqrt();
            assert!(
                (*count as f64 - expected).abs() <= 5.0 * sigma.max(1.0),
                "rank {rank}: {count} draws, expected {expected:.0} ± {sigma:.0}"
            );
        }
    }

    #[test]
    fn zipf_probabilities_fall_as_the_power_of_the_rank() {
        let zipf = Zipf::new(10, 1.0);
        let harmonic: f64 = (1..=10).map(|k| 1.0 / k as f64).sum();
        assert!((zipf.probability(0) - 1.0 / harmonic).abs() < 1e-12);
        assert!((zipf.probability(0) / zipf.probability(1) - 2.0).abs() < 1e-12);
        assert!((zipf.probability(0) / zipf.probability(9) - 10.0).abs() < 1e-9);
        let sum: f64 = (0..10).map(|k| zipf.probability(k)).sum();
        assert!((sum - 1.0).abs() < 1e-12);

        let steep = Zipf::new(4, 2.0);
        assert!((steep.probability(0) / steep.probability(1) - 4.0).abs() < 1e-12);
    }

    #[test]
    fn zipf_with_exponent_zero_is_uniform() {
        let zipf = Zipf::new(8, 0.0);
        for rank in 0..8 {
            assert!((zipf.probability(rank) - 0.125).abs() < 1e-12);
        }
        assert_follows(&zipf, 80_000, 3);
    }

    #[test]
    fn zipf_samples_follow_the_distribution() {
        assert_follows(&Zipf::new(10, 1.0), 200_000, 11);
        assert_follows(&Zipf::new(50, 1.3), 200_000, 12);
    }

    #[test]
    fn zipf_over_a_thousand_products_gives_the_top_one_its_harmonic_share() {
        let zipf = Zipf::new(1000, 1.0);
        let mut rng = StdRng::seed_from_u64(5);
        let samples = 200_000;
        let top = (0..samples).filter(|_| zipf.sample(&mut rng) == 0).count();
        // 1 / H(1000) = 0.1336
        let share = top as f64 / samples as f64;
        assert!((share - 0.1336).abs() < 0.004, "top product share {share}");
    }

    #[test]
    fn zipf_samples_stay_within_the_ranks() {
        let zipf = Zipf::new(3, 5.0);
        let mut rng = StdRng::seed_from_u64(1);
        assert!((0..10_000).all(|_| zipf.sample(&mut rng) < 3));
        let single = Zipf::new(1, 1.0);
        assert!((0..100).all(|_| single.sample(&mut rng) == 0));
    }

    #[test]
    fn the_same_seed_gives_the_same_orders_and_another_seed_others() {
        let w = workload(Shape::Zipf, 100, 1.0, 3);
        let a = Demand::new(&w);
        let b = Demand::new(&w);
        let c = Demand::new(&Workload { seed: 8, ..w });
        let first: Vec<_> = (0..200).map(|i| a.order(i)).collect();
        assert_eq!(first, (0..200).map(|i| b.order(i)).collect::<Vec<_>>());
        assert_ne!(first, (0..200).map(|i| c.order(i)).collect::<Vec<_>>());
        // Order i does not depend on which orders were drawn before it.
        assert_eq!(a.order(150), first[150]);
    }

    #[test]
    fn multi_line_orders_name_distinct_products_even_under_steep_demand() {
        let demand = Demand::new(&workload(Shape::Zipf, 5, 8.0, 5));
        for i in 0..500 {
            let order = demand.order(i);
            assert_eq!(order.len(), 5);
            let mut products: Vec<usize> = order.iter().map(|l| l.product).collect();
            products.sort_unstable();
            assert_eq!(products, [0, 1, 2, 3, 4]);
            assert!(order.iter().all(|l| l.quantity == 2));
        }
    }

    #[test]
    fn the_hot_shape_names_one_product_and_uniform_spreads_evenly() {
        let hot = Demand::new(&workload(Shape::Hot, 1000, 1.0, 1));
        assert!((0..100).all(|i| hot.order(i)
            == [Line {
                product: 0,
                quantity: 2
            }]));

        let uniform = Demand::new(&workload(Shape::Uniform, 4, 1.0, 1));
        let mut counts = [0usize; 4];
        for i in 0..40_000 {
            counts[uniform.order(i)[0].product] += 1;
        }
        assert!(
            counts.iter().all(|c| (9_500..=10_500).contains(c)),
            "{counts:?}"
        );
    }

    #[test]
    fn the_body_is_the_orders_json() {
        let skus = vec!["A-1".to_owned(), "B-2".to_owned()];
        let lines = [
            Line {
                product: 1,
                quantity: 3,
            },
            Line {
                product: 0,
                quantity: 1,
            },
        ];
        let body: serde_json::Value =
            serde_json::from_str(&Demand::body(&lines, &skus)).expect("valid json");
        assert_eq!(
            body,
            serde_json::json!({"items": [{"sku": "B-2", "quantity": 3}, {"sku": "A-1", "quantity": 1}]})
        );
    }
}
