//! Domain types that parse rather than validate: once a value of one of these
//! types exists, it is known to be within the limits of [`crate::limits`].

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::limits::{MAX_LINE_QUANTITY, MAX_SKU_LEN, MIN_LINE_QUANTITY};

/// Why a raw value was refused, phrased for the client who sent it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ParseError {
    /// What the value must be, for example "must be between 1 and 10000".
    pub message: String,
}

impl ParseError {
    fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }
}

/// A stock-keeping unit: `[A-Za-z0-9._-]{1,64}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Sku(String);

impl Sku {
    /// Parses a sku, refusing anything outside `[A-Za-z0-9._-]{1,64}`.
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        let valid_chars = raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if raw.is_empty() || raw.len() > MAX_SKU_LEN || !valid_chars {
            return Err(ParseError::new(format!(
                "must match [A-Za-z0-9._-]{{1,{MAX_SKU_LEN}}}"
            )));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Sku {
    type Error = ParseError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Sku> for String {
    fn from(value: Sku) -> Self {
        value.0
    }
}

impl fmt::Display for Sku {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The quantity on one order line: 1 to 10,000.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "i64", into = "i64")]
pub struct Quantity(i64);

impl Quantity {
    pub fn get(self) -> i64 {
        self.0
    }
}

impl TryFrom<i64> for Quantity {
    type Error = ParseError;
    fn try_from(value: i64) -> Result<Self, Self::Error> {
        if !(MIN_LINE_QUANTITY..=MAX_LINE_QUANTITY).contains(&value) {
            return Err(ParseError::new(format!(
                "must be between {MIN_LINE_QUANTITY} and {MAX_LINE_QUANTITY}"
            )));
        }
        Ok(Self(value))
    }
}

impl From<Quantity> for i64 {
    fn from(value: Quantity) -> Self {
        value.0
    }
}

/// One line of an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OrderLine {
    /// The product ordered.
    #[schema(value_type = String, pattern = "^[A-Za-z0-9._-]{1,64}$")]
    pub sku: Sku,
    /// How many units, 1 to 10,000.
    #[schema(value_type = i64, minimum = 1, maximum = 10000)]
    pub quantity: Quantity,
}

/// SHA-256 of an order's lines in order, the identity of an order's body for
/// `Idempotency-Key` comparisons. Whitespace and key order in the client's JSON
/// do not matter; the lines and their order do.
pub fn request_hash(lines: &[OrderLine]) -> Vec<u8> {
    let mut hasher = Sha256::new();
    for line in lines {
        hasher.update(line.sku.as_str().as_bytes());
        hasher.update(b"\t");
        hasher.update(line.quantity.get().to_string().as_bytes());
        hasher.update(b"\n");
    }
    hasher.finalize().to_vec()
}

/// A user's role. Rights nest: admin includes manager, manager includes staff.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Admin,
    Manager,
    Staff,
    Customer,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Manager => "manager",
            Role::Staff => "staff",
            Role::Customer => "customer",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        match raw {
            "admin" => Ok(Role::Admin),
            "manager" => Ok(Role::Manager),
            "staff" => Ok(Role::Staff),
            "customer" => Ok(Role::Customer),
            _ => Err(ParseError::new(
                "must be one of admin, manager, staff, customer",
            )),
        }
    }

    /// Whether this role has at least the rights of `required`. Customers hold
    /// only customer rights; staff and above also act as customers.
    pub fn includes(self, required: Role) -> bool {
        fn rank(role: Role) -> u8 {
            match role {
                Role::Customer => 0,
                Role::Staff => 1,
                Role::Manager => 2,
                Role::Admin => 3,
            }
        }
        rank(self) >= rank(required)
    }
}

/// Where an order is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    Pending,
    Confirmed,
    Rejected,
    Cancelled,
    Fulfilled,
}

impl OrderStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Pending => "pending",
            OrderStatus::Confirmed => "confirmed",
            OrderStatus::Rejected => "rejected",
            OrderStatus::Cancelled => "cancelled",
            OrderStatus::Fulfilled => "fulfilled",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        match raw {
            "pending" => Ok(OrderStatus::Pending),
            "confirmed" => Ok(OrderStatus::Confirmed),
            "rejected" => Ok(OrderStatus::Rejected),
            "cancelled" => Ok(OrderStatus::Cancelled),
            "fulfilled" => Ok(OrderStatus::Fulfilled),
            _ => Err(ParseError::new(
                "must be one of pending, confirmed, rejected, cancelled, fulfilled",
            )),
        }
    }
}

/// Why an order was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RejectReason {
    /// Some line asked for more than is available over all active locations.
    InsufficientStock,
    /// Some line names a sku that is not in the catalogue.
    UnknownSku,
    /// Some line names an archived product.
    ProductArchived,
}

impl RejectReason {
    /// Every reason, for metrics that export each one from the start.
    pub const ALL: [RejectReason; 3] = [
        RejectReason::InsufficientStock,
        RejectReason::UnknownSku,
        RejectReason::ProductArchived,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RejectReason::InsufficientStock => "insufficient_stock",
            RejectReason::UnknownSku => "unknown_sku",
            RejectReason::ProductArchived => "product_archived",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "insufficient_stock" => Some(RejectReason::InsufficientStock),
            "unknown_sku" => Some(RejectReason::UnknownSku),
            "product_archived" => Some(RejectReason::ProductArchived),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skus_outside_the_alphabet_or_length_are_refused() {
        assert!(Sku::parse("A-b_c.9").is_ok());
        assert!(Sku::parse(&"x".repeat(64)).is_ok());
        assert!(Sku::parse("").is_err());
        assert!(Sku::parse(&"x".repeat(65)).is_err());
        assert!(Sku::parse("has space").is_err());
        assert!(Sku::parse("ümlaut").is_err());
        assert!(Sku::parse("semi;colon").is_err());
    }

    #[test]
    fn quantities_outside_one_to_ten_thousand_are_refused() {
        assert!(Quantity::try_from(0).is_err());
        assert!(Quantity::try_from(-1).is_err());
        assert!(Quantity::try_from(10_001).is_err());
        assert_eq!(Quantity::try_from(1).unwrap().get(), 1);
        assert_eq!(Quantity::try_from(10_000).unwrap().get(), 10_000);
    }

    #[test]
    fn roles_nest_admin_over_manager_over_staff_over_customer() {
        assert!(Role::Admin.includes(Role::Manager));
        assert!(Role::Manager.includes(Role::Staff));
        assert!(Role::Staff.includes(Role::Customer));
        assert!(!Role::Staff.includes(Role::Manager));
        assert!(!Role::Customer.includes(Role::Staff));
    }

    #[test]
    fn the_request_hash_depends_on_lines_not_on_json_layout() {
        let a: Vec<OrderLine> =
            serde_json::from_str(r#"[{"sku":"A","quantity":1},{"sku":"B","quantity":2}]"#).unwrap();
        let b: Vec<OrderLine> =
            serde_json::from_str(r#"[ { "quantity": 1, "sku": "A" }, {"sku":"B","quantity":2} ]"#)
                .unwrap();
        let c: Vec<OrderLine> =
            serde_json::from_str(r#"[{"sku":"A","quantity":1},{"sku":"B","quantity":3}]"#).unwrap();
        assert_eq!(request_hash(&a), request_hash(&b));
        assert_ne!(request_hash(&a), request_hash(&c));
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    /// The sku rule written out independently of `Sku::parse`.
    fn is_sku(raw: &str) -> bool {
        (1..=MAX_SKU_LEN).contains(&raw.len())
            && raw
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-')
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn every_sku_of_the_alphabet_parses_and_round_trips(raw in "[A-Za-z0-9._-]{1,64}") {
            let sku = Sku::parse(&raw).unwrap();
            prop_assert_eq!(sku.as_str(), raw.as_str());
            let json = serde_json::to_string(&sku).unwrap();
            prop_assert_eq!(serde_json::from_str::<Sku>(&json).unwrap(), sku);
        }

        #[test]
        fn any_string_is_a_sku_exactly_when_it_follows_the_rule(
            raw in prop_oneof![any::<String>(), "[A-Za-z0-9._ ;ü-]{0,70}", "[a-z]{60,70}"]
        ) {
            match Sku::parse(&raw) {
                Ok(sku) => prop_assert!(is_sku(sku.as_str()), "accepted {raw:?}"),
                Err(err) => {
                    prop_assert!(!is_sku(&raw), "refused {raw:?}");
                    prop_assert!(err.message.contains(&MAX_SKU_LEN.to_string()));
                }
            }
            // Deserializing goes through the same rule.
            let json = serde_json::to_string(&raw).unwrap();
            prop_assert_eq!(serde_json::from_str::<Sku>(&json).is_ok(), is_sku(&raw));
        }

        #[test]
        fn a_quantity_exists_exactly_within_its_limits(value in prop_oneof![
            any::<i64>(),
            -2..10_003i64,
        ]) {
            let in_range = (MIN_LINE_QUANTITY..=MAX_LINE_QUANTITY).contains(&value);
            match Quantity::try_from(value) {
                Ok(quantity) => {
                    prop_assert!(in_range);
                    prop_assert_eq!(quantity.get(), value);
                    let json = serde_json::to_string(&quantity).unwrap();
                    prop_assert_eq!(serde_json::from_str::<Quantity>(&json).unwrap(), quantity);
                }
                Err(err) => {
                    prop_assert!(!in_range);
                    prop_assert!(err.message.contains(&MIN_LINE_QUANTITY.to_string()));
                    prop_assert!(err.message.contains(&MAX_LINE_QUANTITY.to_string()));
                }
            }
            prop_assert_eq!(serde_json::from_str::<Quantity>(&value.to_string()).is_ok(), in_range);
        }

        #[test]
        fn order_lines_round_trip_through_json(
            sku in "[A-Za-z0-9._-]{1,64}",
            quantity in MIN_LINE_QUANTITY..=MAX_LINE_QUANTITY,
        ) {
            let line = OrderLine { sku: Sku::parse(&sku).unwrap(), quantity: Quantity::try_from(quantity).unwrap() };
            let json = serde_json::to_vec(&line).unwrap();
            prop_assert_eq!(serde_json::from_slice::<OrderLine>(&json).unwrap(), line);
        }

        #[test]
        fn names_of_roles_statuses_and_reasons_parse_exactly_to_their_variant(
            raw in prop_oneof![
                any::<String>(),
                "(admin|manager|staff|customer|pending|confirmed|rejected|cancelled|fulfilled)",
                "(insufficient_stock|unknown_sku|product_archived|Admin|PENDING| staff)",
            ]
        ) {
            if let Ok(role) = Role::parse(&raw) {
                prop_assert_eq!(role.as_str(), raw.as_str());
            } else {
                prop_assert!(!["admin", "manager", "staff", "customer"].contains(&raw.as_str()));
            }
            if let Ok(status) = OrderStatus::parse(&raw) {
                prop_assert_eq!(status.as_str(), raw.as_str());
            } else {
                prop_assert!(!["pending", "confirmed", "rejected", "cancelled", "fulfilled"]
                    .contains(&raw.as_str()));
            }
            match RejectReason::parse(&raw) {
                Some(reason) => prop_assert_eq!(reason.as_str(), raw.as_str()),
                None => prop_assert!(RejectReason::ALL.iter().all(|r| r.as_str() != raw)),
            }
        }
    }
}
