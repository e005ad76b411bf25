//! Staff stock operations, each one short transaction that locks the
//! product's stock rows in the same (product, location) order the processor
//! uses, writes the ledger and the outbox, and commits.
//!
//! Lock order, the same in every writer so none deadlocks with another:
//! the locations an operation names (`for share`, by id), then the product
//! row (`for share`), then all the product's stock rows by location id.
//! Archiving a location takes its row exclusively before its stock rows, and
//! changing a product takes the product row before its stock rows; the
//! processor takes its products `for share` in id order, then their stock
//! rows in (product, location) order. [`operate`] runs one operation through those steps; the
//! HTTP handlers only validate their input and plan the movements.

use chrono::Utc;
use orderflow_core::event::{
    is_low, threshold_crossing, Event, EventEnvelope, StockChanged, StockThresholdCrossed,
};
use orderflow_core::limits::MAX_STOCK_OPERATION_QUANTITY;
use orderflow_core::naming::Naming;
use serde::Serialize;
use sqlx::{PgPool, Postgres, Transaction};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::error::{ApiError, ApiResult, FieldError};

/// Longest free-text reason a stock operation may carry.
pub const MAX_REASON_LEN: usize = 200;

/// The reasons an adjustment to a counted quantity may give.
pub const ADJUST_REASONS: [&str; 4] = ["cycle_count", "damage", "loss", "found"];

/// Every kind of ledger row, as `stock_movements_kind_check` allows them.
pub const MOVEMENT_KINDS: [&str; 8] = [
    "receive",
    "ship",
    "adjust",
    "transfer_in",
    "transfer_out",
    "reserve",
    "release",
    "fulfil",
];

/// A (product, location) stock level: what every stock operation answers.
#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
pub struct StockLevel {
    pub sku: String,
    /// Location code.
    pub location: String,
    pub on_hand: i64,
    /// Units held for confirmed orders.
    pub reserved: i64,
    /// on_hand less reserved: what may still be shipped, moved or promised.
    pub available: i64,
}

/// One of the product's stock rows as locked.
#[derive(Debug, Clone, Copy)]
pub struct LockedLevel {
    pub location_id: i64,
    pub on_hand: i64,
    pub reserved: i64,
}

/// A product's stock as one operation found and locked it.
#[derive(Debug, Clone)]
pub struct LockedProduct {
    pub product_id: i64,
    pub sku: String,
    pub threshold: i64,
    pub archived: bool,
    /// available over all locations before the operation.
    pub available_before: i64,
    /// Every stock row of the product, by location id.
    pub levels: Vec<LockedLevel>,
}

impl LockedProduct {
    /// (on_hand, reserved) at one location; zero where there is no row.
    pub fn at(&self, location_id: i64) -> (i64, i64) {
        self.levels
            .iter()
            .find(|l| l.location_id == location_id)
            .map_or((0, 0), |l| (l.on_hand, l.reserved))
    }

    /// Units at one location that are neither reserved nor gone.
    pub fn available_at(&self, location_id: i64) -> i64 {
        let (on_hand, reserved) = self.at(location_id);
        on_hand - reserved
    }
}

/// A location an operation names, locked against archiving.
#[derive(Debug, Clone)]
pub struct ActiveLocation {
    pub id: i64,
    pub code: String,
}

/// The kinds of ledger row staff operations write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MovementKind {
    Receive,
    Ship,
    Adjust,
    TransferOut,
    TransferIn,
}

impl MovementKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MovementKind::Receive => "receive",
            MovementKind::Ship => "ship",
            MovementKind::Adjust => "adjust",
            MovementKind::TransferOut => "transfer_out",
            MovementKind::TransferIn => "transfer_in",
        }
    }
}

/// One change to on_hand that an operation plans, at one of its locations.
#[derive(Debug, Clone, Copy)]
pub struct Movement {
    /// Index into the operation's locations.
    pub location: usize,
    pub kind: MovementKind,
    pub on_hand_delta: i64,
}

/// What a stock operation acts on and who asks.
pub struct Operation<'a> {
    pub actor: Uuid,
    pub sku: &'a str,
    /// (request field, location code) for each location the operation names.
    pub locations: &'a [(&'a str, &'a str)],
    /// Stored on every ledger row the operation writes.
    pub reason: Option<&'a str>,
    /// Archived products take no new stock, but their remaining stock may
    /// still be shipped, moved or counted.
    pub accepts_archived_product: bool,
}

/// Runs one stock operation in one transaction: locks the locations, the
/// product and its stock rows; asks `plan` for the movements (it refuses with
/// an error, typically 409, when the locked stock does not allow them); writes
/// them and their ledger rows under one correlation id; writes the events;
/// commits. Answers the level after at each of the operation's locations, in
/// the order given.
pub async fn operate<F>(
    pool: &PgPool,
    naming: &Naming,
    operation: Operation<'_>,
    plan: F,
) -> ApiResult<Vec<StockLevel>>
where
    F: FnOnce(&LockedProduct, &[ActiveLocation]) -> ApiResult<Vec<Movement>>,
{
    let mut tx = pool.begin().await?;
    let locations = active_locations(&mut tx, operation.locations).await?;
    let location_ids: Vec<i64> = locations.iter().map(|l| l.id).collect();
    let product = lock_product_at(&mut tx, operation.sku, &location_ids).await?;
    if product.archived && !operation.accepts_archived_product {
        return Err(ApiError::field(
            "sku",
            format!("product {} is archived and takes no new stock", product.sku),
        ));
    }
    let movements = plan(&product, &locations)?;
    let correlation_id = Uuid::now_v7();
    for movement in &movements {
        let location = &locations[movement.location];
        sqlx::query(
            "update stock_levels set on_hand = on_hand + $3, updated_at = now()
             where product_id = $1 and location_id = $2",
        )
        .bind(product.product_id)
        .bind(location.id)
        .bind(movement.on_hand_delta)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "insert into stock_movements (product_id, location_id, kind, on_hand_delta, reserved_delta,
                                          actor_id, reason, correlation_id)
             values ($1, $2, $3, $4, 0, $5, $6, $7)",
        )
        .bind(product.product_id)
        .bind(location.id)
        .bind(movement.kind.as_str())
        .bind(movement.on_hand_delta)
        .bind(operation.actor)
        .bind(operation.reason)
        .bind(correlation_id)
        .execute(&mut *tx)
        .await?;
    }
    if !movements.is_empty() {
        record_stock_events(&mut tx, naming, &product).await?;
    }
    let levels: Vec<StockLevel> = sqlx::query_as(
        "select $2::text as sku, l.code as location, s.on_hand, s.reserved,
                s.on_hand - s.reserved as available
         from unnest($3::int8[]) with ordinality as wanted(location_id, position)
         join stock_levels s on s.product_id = $1 and s.location_id = wanted.location_id
         join locations l on l.id = s.location_id
         order by wanted.position",
    )
    .bind(product.product_id)
    .bind(&product.sku)
    .bind(&location_ids)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(levels)
}

/// Refuses a quantity outside `min..=MAX_STOCK_OPERATION_QUANTITY`.
pub fn check_quantity(field: &str, value: i64, min: i64, errors: &mut Vec<FieldError>) {
    if !(min..=MAX_STOCK_OPERATION_QUANTITY).contains(&value) {
        let limit = if value < min {
            min
        } else {
            MAX_STOCK_OPERATION_QUANTITY
        };
        errors.push(quantity_refusal(field, min, limit));
    }
}

/// The refusal of a quantity outside `min..=MAX_STOCK_OPERATION_QUANTITY`,
/// naming the bound it crossed. Also what a form answers for a quantity
/// that is not a number at all: the same words as for one out of range.
pub fn quantity_refusal(field: &str, min: i64, limit: i64) -> FieldError {
    FieldError::new(
        field,
        format!("must be between {min} and {MAX_STOCK_OPERATION_QUANTITY}"),
    )
    .with_limit(limit)
}

pub fn check_reason(reason: Option<&str>, errors: &mut Vec<FieldError>) {
    if let Some(reason) = reason {
        if reason.trim().is_empty() || reason.chars().count() > MAX_REASON_LEN {
            errors.push(
                FieldError::new(
                    "reason",
                    format!("must be 1 to {MAX_REASON_LEN} characters"),
                )
                .with_limit(MAX_REASON_LEN as i64),
            );
        }
    }
}

/// The 409 for taking more than a location has available.
pub fn not_available(product: &LockedProduct, location: &ActiveLocation, wanted: i64) -> ApiError {
    ApiError::Conflict(format!(
        "only {} of {} available at {} (on hand less reserved); {wanted} asked",
        product.available_at(location.id),
        product.sku,
        location.code
    ))
}

/// Looks the product up and locks all its stock rows (creating the row for
/// `location_id` first if there is none), in location order.
pub async fn lock_product(
    tx: &mut Transaction<'_, Postgres>,
    sku: &str,
    location_id: i64,
) -> ApiResult<LockedProduct> {
    lock_product_at(tx, sku, &[location_id]).await
}

/// Looks the product up, holds its row against archiving and changes, creates
/// missing stock rows at `location_ids` and locks all its stock rows in
/// location order. An unknown sku is refused naming the field `sku`.
pub async fn lock_product_at(
    tx: &mut Transaction<'_, Postgres>,
    sku: &str,
    location_ids: &[i64],
) -> ApiResult<LockedProduct> {
    let (product_id, threshold, archived): (i64, i64, bool) = sqlx::query_as(
        "select id, low_stock_threshold, archived_at is not null from products where sku = $1
         for share",
    )
    .bind(sku)
    .fetch_optional(&mut **tx)
    .await?
    .ok_or_else(|| ApiError::field("sku", format!("no product has sku {sku}")))?;
    // New rows are created in location order too: two operations creating
    // the same rows then wait on each other in one order only.
    sqlx::query(
        "insert into stock_levels (product_id, location_id)
         select $1, location_id from unnest($2::int8[]) as wanted(location_id)
         order by location_id
         on conflict do nothing",
    )
    .bind(product_id)
    .bind(location_ids)
    .execute(&mut **tx)
    .await?;
    let levels = lock_levels(tx, product_id).await?;
    Ok(LockedProduct {
        product_id,
        sku: sku.to_owned(),
        threshold,
        archived,
        available_before: levels.iter().map(|l| l.on_hand - l.reserved).sum(),
        levels,
    })
}

/// Locks every stock row of a product in location order, as the processor
/// does, and reads them.
pub async fn lock_levels(
    tx: &mut Transaction<'_, Postgres>,
    product_id: i64,
) -> ApiResult<Vec<LockedLevel>> {
    let rows: Vec<(i64, i64, i64)> = sqlx::query_as(
        "select location_id, on_hand, reserved from stock_levels where product_id = $1
         order by location_id for update",
    )
    .bind(product_id)
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(location_id, on_hand, reserved)| LockedLevel {
            location_id,
            on_hand,
            reserved,
        })
        .collect())
}

/// The id of an active location by code, held against archiving until the
/// transaction ends.
pub async fn active_location(
    tx: &mut Transaction<'_, Postgres>,
    field: &str,
    code: &str,
) -> ApiResult<i64> {
    Ok(active_locations(tx, &[(field, code)]).await?[0].id)
}

/// The active locations named by (field, code), in the order given, each held
/// `for share` (taken in id order) so no archive can empty the ground under
/// the operation. Unknown and archived locations are refused naming their
/// fields.
pub async fn active_locations(
    tx: &mut Transaction<'_, Postgres>,
    named: &[(&str, &str)],
) -> ApiResult<Vec<ActiveLocation>> {
    let codes: Vec<&str> = named.iter().map(|(_, code)| *code).collect();
    let rows: Vec<(i64, String, bool)> = sqlx::query_as(
        "select id, code, archived_at is not null from locations where code = any($1)
         order by id for share",
    )
    .bind(&codes)
    .fetch_all(&mut **tx)
    .await?;
    let mut found = Vec::with_capacity(named.len());
    let mut errors = Vec::new();
    for (field, code) in named {
        match rows.iter().find(|(_, c, _)| c == code) {
            None => errors.push(FieldError::new(
                *field,
                format!("no location has code {code}"),
            )),
            Some((_, _, true)) => errors.push(FieldError::new(
                *field,
                format!("location {code} is archived"),
            )),
            Some((id, code, false)) => found.push(ActiveLocation {
                id: *id,
                code: code.clone(),
            }),
        }
    }
    if errors.is_empty() {
        Ok(found)
    } else {
        Err(ApiError::Validation(errors))
    }
}

/// Writes the events describing the product's change to the outbox:
/// `stock.changed`, and `stock.low` or `stock.recovered` on a crossing.
pub async fn record_stock_events(
    tx: &mut Transaction<'_, Postgres>,
    naming: &Naming,
    product: &LockedProduct,
) -> ApiResult<()> {
    let (on_hand, reserved): (i64, i64) = sqlx::query_as(
        "select coalesce(sum(on_hand), 0)::int8, coalesce(sum(reserved), 0)::int8
         from stock_levels where product_id = $1",
    )
    .bind(product.product_id)
    .fetch_one(&mut **tx)
    .await?;
    let after = on_hand - reserved;
    let mut events = vec![Event::StockChanged(StockChanged {
        sku: product.sku.clone(),
        on_hand,
        reserved,
        available: after,
    })];
    events.extend(threshold_crossing(
        &product.sku,
        product.available_before,
        after,
        product.threshold,
    ));
    write_events(tx, naming, events).await
}

/// Writes `stock.low` or `stock.recovered` when moving a product's threshold
/// from `old` to `new` moves its (unchanged) available stock across the line.
/// The caller holds the product's stock rows, so `available` is current.
pub async fn record_threshold_change(
    tx: &mut Transaction<'_, Postgres>,
    naming: &Naming,
    sku: &str,
    available: i64,
    old: i64,
    new: i64,
) -> ApiResult<()> {
    let crossed = StockThresholdCrossed {
        sku: sku.to_owned(),
        available,
        threshold: new,
    };
    let event = match (is_low(available, old), is_low(available, new)) {
        (false, true) => Event::StockLow(crossed),
        (true, false) => Event::StockRecovered(crossed),
        _ => return Ok(()),
    };
    write_events(tx, naming, vec![event]).await
}

/// Writes events to the outbox, to be published once the transaction commits.
async fn write_events(
    tx: &mut Transaction<'_, Postgres>,
    naming: &Naming,
    events: Vec<Event>,
) -> ApiResult<()> {
    let now = Utc::now();
    for event in events {
        let envelope = EventEnvelope::new(event, now);
        sqlx::query("insert into outbox (event_id, subject, payload) values ($1, $2, $3)")
            .bind(envelope.event_id)
            .bind(naming.event_subject(envelope.event.kind()))
            .bind(serde_json::to_value(&envelope).map_err(anyhow::Error::from)?)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}
