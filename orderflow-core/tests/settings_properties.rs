//! `Settings::from_lookup` against arbitrary environments: it never panics,
//! and a number outside its range is refused with the variable's name.

use std::collections::HashMap;

use orderflow_core::settings::{
    Settings, MAX_JWT_TTL_SECONDS, MAX_PUBLISH_TIMEOUT_MS, MAX_RECONCILE_INTERVAL_SECONDS,
    MAX_STREAM_REPLICAS,
};
use proptest::prelude::*;

/// Every variable `from_lookup` reads.
const VARIABLES: [&str; 21] = [
    "DATABASE_URL",
    "NATS_URL",
    "ORDERFLOW_HTTP_ADDR",
    "ORDERFLOW_METRICS_ADDR",
    "ORDERFLOW_PARTITIONS",
    "ORDERFLOW_NAMESPACE",
    "ORDERFLOW_JWT_SECRET",
    "ORDERFLOW_JWT_TTL_SECONDS",
    "ORDERFLOW_ADMIN_EMAIL",
    "ORDERFLOW_ADMIN_PASSWORD",
    "ORDERFLOW_BATCH_MAX",
    "ORDERFLOW_PUBLISH_TIMEOUT_MS",
    "ORDERFLOW_ORDERS_MAX_MSGS",
    "ORDERFLOW_ORDERS_MAX_BYTES",
    "ORDERFLOW_EVENTS_MAX_BYTES",
    "ORDERFLOW_RECONCILE_INTERVAL_SECONDS",
    "ORDERFLOW_LOG_FORMAT",
    "ORDERFLOW_ENV",
    "ORDERFLOW_RATE_LIMIT_PER_CLIENT",
    "ORDERFLOW_MAX_CONNECTIONS",
    "ORDERFLOW_STREAM_REPLICAS",
];

/// The numeric variables and the range each accepts.
fn ranges() -> Vec<(&'static str, i128, i128)> {
    vec![
        ("ORDERFLOW_PARTITIONS", 1, 1024),
        ("ORDERFLOW_BATCH_MAX", 1, 10_000),
        ("ORDERFLOW_JWT_TTL_SECONDS", 1, MAX_JWT_TTL_SECONDS.into()),
        (
            "ORDERFLOW_PUBLISH_TIMEOUT_MS",
            1,
            MAX_PUBLISH_TIMEOUT_MS.into(),
        ),
        ("ORDERFLOW_ORDERS_MAX_MSGS", 1, i64::MAX.into()),
        ("ORDERFLOW_ORDERS_MAX_BYTES", 1, i64::MAX.into()),
        ("ORDERFLOW_EVENTS_MAX_BYTES", 1, i64::MAX.into()),
        ("ORDERFLOW_RATE_LIMIT_PER_CLIENT", 0, u32::MAX.into()),
        ("ORDERFLOW_MAX_CONNECTIONS", 1, usize::MAX as i128),
        ("ORDERFLOW_STREAM_REPLICAS", 1, MAX_STREAM_REPLICAS as i128),
        (
            "ORDERFLOW_RECONCILE_INTERVAL_SECONDS",
            0,
            MAX_RECONCILE_INTERVAL_SECONDS.into(),
        ),
    ]
}

fn from_map(map: &HashMap<&str, String>) -> anyhow::Result<Settings> {
    Settings::from_lookup(|name| map.get(name).cloned())
}

/// Values a person might plausibly mistype, plus anything at all.
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        any::<i128>().prop_map(|n| n.to_string()),
        any::<u64>().prop_map(|n| n.to_string()),
        "-?[0-9]{1,25}",
        "[0-9.:a-z]{0,30}",
        Just(String::new()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn any_environment_is_parsed_or_refused_by_name_without_a_panic(
        values in proptest::collection::vec(proptest::option::of(value()), VARIABLES.len())
    ) {
        let map: HashMap<&str, String> = VARIABLES
            .iter()
            .zip(values)
            .filter_map(|(name, value)| value.map(|v| (*name, v)))
            .collect();
        if let Err(err) = from_map(&map) {
            let text = format!("{err:#}");
            prop_assert!(
                VARIABLES.iter().any(|name| text.contains(name)),
                "the refusal names no variable: {text}"
            );
        }
    }

    #[test]
    fn a_number_is_accepted_exactly_within_its_range_and_refused_by_name(
        which in 0..7usize,
        number in prop_oneof![
            any::<i64>().prop_map(i128::from),
            any::<u64>().prop_map(i128::from),
            -3..3i128,
            1020..1030i128,
            9_995..10_005i128,
        ]
    ) {
        let (name, low, high) = ranges()[which];
        let map = HashMap::from([(name, number.to_string())]);
        match from_map(&map) {
            Ok(_) => prop_assert!((low..=high).contains(&number), "{name}={number} accepted"),
            Err(err) => {
                let text = format!("{err:#}");
                prop_assert!(!(low..=high).contains(&number), "{name}={number} refused: {text}");
                prop_assert!(text.contains(name), "{text}");
            }
        }
    }
}
