//! Deciding a batch of orders against locked stock, in memory.
//!
//! The caller has locked every stock row the batch touches and loaded them into
//! a [`StockBook`], then applies the batch's commands to it in queue order:
//! [`decide_order`] for a placement (so the first order for the last unit gets
//! it), [`release`] for a cancellation and [`ship`] for a fulfilment. Nothing
//! here talks to the database, which keeps the rules easy to test
//! exhaustively.

use std::collections::{BTreeMap, HashMap};

use orderflow_core::domain::{OrderLine, RejectReason};

/// One (product, location) stock row as locked for the batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Level {
    pub location_id: i64,
    pub on_hand: i64,
    pub reserved: i64,
    /// False at archived locations, whose stock is never allocated.
    pub allocatable: bool,
}

impl Level {
    pub fn available(&self) -> i64 {
        self.on_hand - self.reserved
    }
}

/// A product and its stock rows, ordered by location id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductStock {
    pub product_id: i64,
    pub sku: String,
    pub archived: bool,
    pub low_stock_threshold: i64,
    pub levels: Vec<Level>,
}

impl ProductStock {
    /// Units that can still be promised: on hand less reserved, at locations
    /// orders may be allocated from.
    pub fn allocatable(&self) -> i64 {
        self.levels
            .iter()
            .filter(|l| l.allocatable)
            .map(Level::available)
            .sum()
    }

    /// On hand less reserved over every location, the figure low-stock
    /// thresholds are measured against.
    pub fn available(&self) -> i64 {
        self.levels.iter().map(Level::available).sum()
    }
}

/// The locked stock of every product a batch names, by sku.
#[derive(Debug, Clone, Default)]
pub struct StockBook {
    pub products: HashMap<String, ProductStock>,
}

/// Units of one product reserved at one location for one order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Allocation {
    pub product_id: i64,
    pub location_id: i64,
    pub quantity: i64,
}

/// What became of one order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Confirmed { allocations: Vec<Allocation> },
    Rejected(RejectReason),
}

/// Decides `orders` in the order given, reserving in `book` as it goes.
/// Returns one outcome per order, in the same order.
pub fn decide_batch(orders: &[&[OrderLine]], book: &mut StockBook) -> Vec<Outcome> {
    orders
        .iter()
        .map(|lines| decide_order(lines, book))
        .collect()
}

/// Gives a confirmed order's reservations back: reserved falls where they were.
pub fn release(book: &mut StockBook, allocations: &[Allocation]) {
    for allocation in allocations {
        if let Some(level) = book.level_mut(allocation.product_id, allocation.location_id) {
            level.reserved -= allocation.quantity;
        }
    }
}

/// Ships a confirmed order: on hand and reserved both fall where it was
/// allocated.
pub fn ship(book: &mut StockBook, allocations: &[Allocation]) {
    for allocation in allocations {
        if let Some(level) = book.level_mut(allocation.product_id, allocation.location_id) {
            level.on_hand -= allocation.quantity;
            level.reserved -= allocation.quantity;
        }
    }
}

impl StockBook {
    fn level_mut(&mut self, product_id: i64, location_id: i64) -> Option<&mut Level> {
        self.products
            .values_mut()
            .find(|p| p.product_id == product_id)?
            .levels
            .iter_mut()
            .find(|l| l.location_id == location_id)
    }
}

/// Decides one order against `book`, reserving its lines if it is confirmed.
pub fn decide_order(lines: &[OrderLine], book: &mut StockBook) -> Outcome {
    // A sku may appear on several lines; the order needs their sum. A BTreeMap
    // keeps the allocation order deterministic.
    let mut wanted: BTreeMap<&str, i64> = BTreeMap::new();
    for line in lines {
        *wanted.entry(line.sku.as_str()).or_default() += line.quantity.get();
    }
    let mut worst: Option<RejectReason> = None;
    for (sku, quantity) in &wanted {
        let reason = match book.products.get(*sku) {
            None => Some(RejectReason::UnknownSku),
            Some(product) if product.archived => Some(RejectReason::ProductArchived),
            Some(product) if product.allocatable() < *quantity => {
                Some(RejectReason::InsufficientStock)
            }
            Some(_) => None,
        };
        worst = match (worst, reason) {
            (Some(current), Some(new)) => Some(more_telling(current, new)),
            (current, new) => current.or(new),
        };
    }
    if let Some(reason) = worst {
        return Outcome::Rejected(reason);
    }
    let mut allocations = Vec::new();
    for (sku, quantity) in wanted {
        let product = book
            .products
            .get_mut(sku)
            .expect("every sku was checked above");
        allocate(product, quantity, &mut allocations);
    }
    Outcome::Confirmed { allocations }
}

/// When lines fail for different reasons, report the one the customer can act
/// on least: an unknown sku over an archived one over a shortage.
fn more_telling(a: RejectReason, b: RejectReason) -> RejectReason {
    fn rank(reason: RejectReason) -> u8 {
        match reason {
            RejectReason::UnknownSku => 2,
            RejectReason::ProductArchived => 1,
            RejectReason::InsufficientStock => 0,
        }
    }
    if rank(b) > rank(a) {
        b
    } else {
        a
    }
}

/// Allocation strategy: the location with the most available units first,
/// splitting the line over further locations when one is not enough; ties go
/// to the lower location id so the result is deterministic.
fn allocate(product: &mut ProductStock, mut quantity: i64, out: &mut Vec<Allocation>) {
    let mut order: Vec<usize> = (0..product.levels.len())
        .filter(|i| product.levels[*i].allocatable && product.levels[*i].available() > 0)
        .collect();
    order.sort_by_key(|i| {
        let level = &product.levels[*i];
        (std::cmp::Reverse(level.available()), level.location_id)
    });
    for index in order {
        if quantity == 0 {
            break;
        }
        let level = &mut product.levels[index];
        let take = level.available().min(quantity);
        level.reserved += take;
        quantity -= take;
        out.push(Allocation {
            product_id: product.product_id,
            location_id: level.location_id,
            quantity: take,
        });
    }
    debug_assert_eq!(quantity, 0, "the caller checked availability");
}

#[cfg(test)]
mod tests {
    use super::*;
    use orderflow_core::domain::Sku;

    fn line(sku: &str, quantity: i64) -> OrderLine {
        OrderLine {
            sku: Sku::parse(sku).unwrap(),
            quantity: quantity.try_into().unwrap(),
        }
    }

    fn product(id: i64, sku: &str, levels: &[(i64, i64, i64, bool)]) -> ProductStock {
        ProductStock {
            product_id: id,
            sku: sku.into(),
            archived: false,
            low_stock_threshold: 0,
            levels: levels
                .iter()
                .map(|(location_id, on_hand, reserved, allocatable)| Level {
                    location_id: *location_id,
                    on_hand: *on_hand,
                    reserved: *reserved,
                    allocatable: *allocatable,
                })
                .collect(),
        }
    }

    fn book(products: Vec<ProductStock>) -> StockBook {
        StockBook {
            products: products.into_iter().map(|p| (p.sku.clone(), p)).collect(),
        }
    }

    #[test]
    fn the_first_orders_in_the_queue_get_the_last_units() {
        let mut book = book(vec![product(1, "A", &[(1, 3, 0, true)])]);
        let orders: Vec<Vec<OrderLine>> = (0..5).map(|_| vec![line("A", 1)]).collect();
        let refs: Vec<&[OrderLine]> = orders.iter().map(Vec::as_slice).collect();
        let outcomes = decide_batch(&refs, &mut book);
        let confirmed: Vec<bool> = outcomes
            .iter()
            .map(|o| matches!(o, Outcome::Confirmed { .. }))
            .collect();
        assert_eq!(confirmed, [true, true, true, false, false]);
        assert_eq!(
            outcomes[4],
            Outcome::Rejected(RejectReason::InsufficientStock)
        );
        assert_eq!(book.products["A"].levels[0].reserved, 3);
    }

    #[test]
    fn an_order_with_one_short_line_reserves_nothing_for_any_line() {
        let mut book = book(vec![
            product(1, "A", &[(1, 10, 0, true)]),
            product(2, "B", &[(1, 1, 0, true)]),
        ]);
        let order = vec![line("A", 5), line("B", 2)];
        let outcomes = decide_batch(&[&order], &mut book);
        assert_eq!(
            outcomes,
            vec![Outcome::Rejected(RejectReason::InsufficientStock)]
        );
        assert_eq!(book.products["A"].levels[0].reserved, 0);
        assert_eq!(book.products["B"].levels[0].reserved, 0);
    }

    #[test]
    fn an_unknown_sku_outranks_a_shortage_as_the_reason() {
        let mut book = book(vec![product(1, "A", &[(1, 0, 0, true)])]);
        let order = vec![line("A", 1), line("NOPE", 1)];
        assert_eq!(
            decide_batch(&[&order], &mut book),
            vec![Outcome::Rejected(RejectReason::UnknownSku)]
        );
    }

    #[test]
    fn repeated_lines_for_one_sku_are_summed() {
        let mut book = book(vec![product(1, "A", &[(1, 3, 0, true)])]);
        let order = vec![line("A", 2), line("A", 2)];
        assert_eq!(
            decide_batch(&[&order], &mut book),
            vec![Outcome::Rejected(RejectReason::InsufficientStock)]
        );
    }

    #[test]
    fn lines_split_over_locations_most_available_first_skipping_archived_ones() {
        let mut book = book(vec![product(
            1,
            "A",
            &[(1, 4, 0, true), (2, 6, 1, true), (3, 100, 0, false)],
        )]);
        let order = vec![line("A", 8)];
        let outcomes = decide_batch(&[&order], &mut book);
        assert_eq!(
            outcomes,
            vec![Outcome::Confirmed {
                allocations: vec![
                    Allocation {
                        product_id: 1,
                        location_id: 2,
                        quantity: 5
                    },
                    Allocation {
                        product_id: 1,
                        location_id: 1,
                        quantity: 3
                    },
                ]
            }]
        );
        let too_much = vec![line("A", 2)];
        assert_eq!(
            decide_batch(&[&too_much], &mut book),
            vec![Outcome::Rejected(RejectReason::InsufficientStock)]
        );
    }

    #[test]
    fn archived_products_are_refused_with_their_own_reason() {
        let mut archived = product(1, "A", &[(1, 10, 0, true)]);
        archived.archived = true;
        let mut book = book(vec![archived]);
        assert_eq!(
            decide_batch(&[&[line("A", 1)]], &mut book),
            vec![Outcome::Rejected(RejectReason::ProductArchived)]
        );
    }

    #[test]
    fn a_release_frees_units_for_the_next_order_and_a_shipment_takes_them_off_hand() {
        let mut book = book(vec![product(1, "A", &[(1, 2, 0, true), (2, 1, 0, true)])]);
        let Outcome::Confirmed { allocations } = decide_order(&[line("A", 3)], &mut book) else {
            panic!("three units are there")
        };
        assert_eq!(
            decide_order(&[line("A", 1)], &mut book),
            Outcome::Rejected(RejectReason::InsufficientStock)
        );
        release(&mut book, &allocations);
        assert_eq!(book.products["A"].available(), 3);
        let Outcome::Confirmed { allocations } = decide_order(&[line("A", 2)], &mut book) else {
            panic!("released units are available again")
        };
        ship(&mut book, &allocations);
        let levels: Vec<(i64, i64)> = book.products["A"]
            .levels
            .iter()
            .map(|l| (l.on_hand, l.reserved))
            .collect();
        assert_eq!(levels, [(0, 0), (1, 0)]);
    }

    #[test]
    fn no_sequence_of_orders_reserves_more_than_is_on_hand() {
        // A deterministic pseudo-random walk over many batches: whatever the
        // demand, reserved never exceeds on hand anywhere.
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut book = book(vec![
            product(1, "A", &[(1, 50, 0, true), (2, 30, 0, true)]),
            product(2, "B", &[(1, 20, 0, true)]),
        ]);
        let mut confirmed_units = 0;
        for _ in 0..200 {
            let order: Vec<OrderLine> = (0..(next() % 3 + 1))
                .map(|_| {
                    let sku = if next() % 2 == 0 { "A" } else { "B" };
                    line(sku, (next() % 7 + 1) as i64)
                })
                .collect();
            if let [Outcome::Confirmed { allocations }] =
                decide_batch(&[&order], &mut book)[..].as_ref()
            {
                let total: i64 = allocations.iter().map(|a| a.quantity).sum();
                let wanted: i64 = order.iter().map(|l| l.quantity.get()).sum();
                assert_eq!(total, wanted);
                confirmed_units += total;
            }
            for product in book.products.values() {
                for level in &product.levels {
                    assert!(0 <= level.reserved && level.reserved <= level.on_hand);
                }
            }
        }
        let reserved: i64 = book
            .products
            .values()
            .flat_map(|p| p.levels.iter().map(|l| l.reserved))
            .sum();
        assert_eq!(reserved, confirmed_units);
    }
}
