//! The flash: one line saying what a product page form did, carried in a
//! short-lived cookie across the redirect after it and shown once.

/// What a product page form did, as the flash cookie carries it across the
/// redirect after it: `<operation>[:<quantity>:<location>[:<to location>]]`.
/// Location codes are `[A-Za-z0-9._-]`, safe in a cookie as they are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Done {
    Received {
        quantity: i64,
        location: String,
    },
    Shipped {
        quantity: i64,
        location: String,
    },
    Transferred {
        quantity: i64,
        from: String,
        to: String,
    },
    Counted {
        quantity: i64,
        location: String,
    },
    /// The product was added to the catalogue.
    Created,
    /// The product's fields were changed.
    Edited,
    /// The product was archived.
    Archived,
}

fn location_code(value: &str) -> Option<String> {
    let ok = !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    ok.then(|| value.to_owned())
}

impl Done {
    pub fn encode(&self) -> String {
        match self {
            Done::Received { quantity, location } => format!("receive:{quantity}:{location}"),
            Done::Shipped { quantity, location } => format!("ship:{quantity}:{location}"),
            Done::Transferred { quantity, from, to } => {
                format!("transfer:{quantity}:{from}:{to}")
            }
            Done::Counted { quantity, location } => format!("adjust:{quantity}:{location}"),
            Done::Created => "created".to_owned(),
            Done::Edited => "edited".to_owned(),
            Done::Archived => "archived".to_owned(),
        }
    }

    /// The operation in a cookie value; anything else (a tampered cookie)
    /// is ignored rather than shown.
    pub fn decode(value: &str) -> Option<Self> {
        let parts: Vec<&str> = value.split(':').collect();
        let quantity = |text: &str| text.parse::<i64>().ok().filter(|q| *q >= 0);
        match parts.as_slice() {
            ["receive", q, location] => Some(Done::Received {
                quantity: quantity(q).filter(|q| *q > 0)?,
                location: location_code(location)?,
            }),
            ["ship", q, location] => Some(Done::Shipped {
                quantity: quantity(q).filter(|q| *q > 0)?,
                location: location_code(location)?,
            }),
            ["transfer", q, from, to] => Some(Done::Transferred {
                quantity: quantity(q).filter(|q| *q > 0)?,
                from: location_code(from)?,
                to: location_code(to)?,
            }),
            ["adjust", q, location] => Some(Done::Counted {
                quantity: quantity(q)?,
                location: location_code(location)?,
            }),
            ["created"] => Some(Done::Created),
            ["edited"] => Some(Done::Edited),
            ["archived"] => Some(Done::Archived),
            _ => None,
        }
    }

    pub fn message(&self) -> String {
        match self {
            Done::Received { quantity, location } => format!("Received {quantity} at {location}"),
            Done::Shipped { quantity, location } => format!("Shipped {quantity} from {location}"),
            Done::Transferred { quantity, from, to } => {
                format!("Transferred {quantity} from {from} to {to}")
            }
            Done::Counted { quantity, location } => {
                format!("Counted {quantity} at {location}")
            }
            Done::Created => "Product created".to_owned(),
            Done::Edited => "Changes saved".to_owned(),
            Done::Archived => "Product archived".to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_done_operation_survives_its_cookie_and_a_tampered_one_is_dropped() {
        for done in [
            Done::Received {
                quantity: 12,
                location: "east-2".into(),
            },
            Done::Shipped {
                quantity: 3,
                location: "main".into(),
            },
            Done::Transferred {
                quantity: 2,
                from: "main".into(),
                to: "east-2".into(),
            },
            Done::Counted {
                quantity: 0,
                location: "main".into(),
            },
            Done::Created,
            Done::Edited,
            Done::Archived,
        ] {
            assert_eq!(Done::decode(&done.encode()), Some(done));
        }
        assert_eq!(Done::decode("receive:12:<script>"), None);
        assert_eq!(Done::decode("receive:0:main"), None);
        assert_eq!(Done::decode("ship:3:<script>"), None);
        assert_eq!(Done::decode("ship:0:main"), None);
        assert_eq!(Done::decode("transfer:2:main"), None);
        assert_eq!(Done::decode("7:main"), None);
    }
}
