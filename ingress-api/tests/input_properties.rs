//! Properties of every parser between a client's bytes and the handlers: the
//! `POST /orders` decoder, the pagination cursors, the query string
//! extractor, page limits, emails and passwords. Valid input always parses
//! and round-trips; input outside a limit is refused with problem+json
//! naming the field and the limit; arbitrary input never panics.
//!
//! No server, database or broker: these drive the same pure functions the
//! handlers call, so each case costs microseconds.

use axum::body::Body;
use axum::extract::FromRequestParts;
use axum::http::{Request, StatusCode};
use axum::response::IntoResponse;
use chrono::{DateTime, TimeZone, Utc};
use ingress_api::error::{ApiError, FieldError};
use ingress_api::http::cursor;
use ingress_api::http::orders::{decode_order_request, page_limit, ListOrdersParams};
use ingress_api::http::users::{check_password, parse_email};
use ingress_api::json_body::contains_escaped_nul;
use ingress_api::query_params::QueryParams;
use orderflow_core::domain::OrderLine;
use orderflow_core::limits::{
    MAX_BODY_BYTES, MAX_EMAIL_LEN, MAX_LINE_QUANTITY, MAX_ORDER_LINES, MAX_PAGE_LIMIT,
    MAX_PASSWORD_LEN, MAX_SKU_LEN, MIN_LINE_QUANTITY, MIN_ORDER_LINES, MIN_PASSWORD_LEN,
};
use proptest::prelude::*;
use serde_json::{json, Value};
use uuid::Uuid;

fn sku() -> impl Strategy<Value = String> {
    "[A-Za-z0-9._-]{1,64}"
}

fn quantity() -> impl Strategy<Value = i64> {
    prop_oneof![
        Just(MIN_LINE_QUANTITY),
        Just(MAX_LINE_QUANTITY),
        MIN_LINE_QUANTITY..=MAX_LINE_QUANTITY
    ]
}

fn valid_lines() -> impl Strategy<Value = Vec<(String, i64)>> {
    proptest::collection::vec((sku(), quantity()), MIN_ORDER_LINES..=MAX_ORDER_LINES)
}

fn body_of(lines: &[(String, i64)]) -> Value {
    json!({"items": lines.iter().map(|(sku, quantity)| json!({"sku": sku, "quantity": quantity})).collect::<Vec<_>>()})
}

fn pairs(lines: &[OrderLine]) -> Vec<(String, i64)> {
    lines
        .iter()
        .map(|line| (line.sku.as_str().to_owned(), line.quantity.get()))
        .collect()
}

/// The problem+json a client receives for `error`: status and body.
fn problem(error: ApiError) -> (StatusCode, Value) {
    let response = error.into_response();
    let status = response.status();
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let bytes = futures::executor::block_on(axum::body::to_bytes(response.into_body(), usize::MAX))
        .unwrap();
    (status, serde_json::from_slice(&bytes).unwrap())
}

/// The refused fields of a 422 problem, as (field, limit).
fn refused_fields(error: ApiError) -> Vec<(String, Option<i64>)> {
    let (status, body) = problem(error);
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["field"].as_str().unwrap().to_owned(), e["limit"].as_i64()))
        .collect()
}

/// What an order decoder may answer: lines within every limit, or a refusal
/// that is the client's fault. Never a panic and never a 5xx.
fn assert_within_limits_or_refused(body: &[u8]) -> Result<(), TestCaseError> {
    match decode_order_request(body) {
        Ok(lines) => {
            prop_assert!((MIN_ORDER_LINES..=MAX_ORDER_LINES).contains(&lines.len()));
            for line in &lines {
                let sku = line.sku.as_str();
                prop_assert!((1..=MAX_SKU_LEN).contains(&sku.len()));
                prop_assert!(sku
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')));
                prop_assert!((MIN_LINE_QUANTITY..=MAX_LINE_QUANTITY).contains(&line.quantity.get()));
            }
        }
        Err(error) => {
            let (status, body) = problem(error);
            prop_assert!(
                matches!(status.as_u16(), 400 | 413 | 422),
                "{status}: {body}"
            );
        }
    }
    Ok(())
}

/// Arbitrary JSON, nested a few levels.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        any::<String>().prop_map(Value::from),
        sku().prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            proptest::collection::btree_map(
                prop_oneof![
                    Just("items".to_owned()),
                    Just("sku".to_owned()),
                    Just("quantity".to_owned()),
                    any::<String>()
                ],
                inner,
                0..4
            )
            .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

fn timestamp() -> impl Strategy<Value = DateTime<Utc>> {
    // Cursors keep microseconds; years 1 to 9999 have an RFC 3339 form.
    (-62_135_596_800_000_000i64..253_402_300_799_000_000i64)
        .prop_map(|micros| Utc.timestamp_micros(micros).unwrap())
}

/// Runs the query string extractor the list handlers use.
fn list_orders_query(query: &str) -> Option<Result<ListOrdersParams, ApiError>> {
    let request = Request::builder()
        .uri(format!("/orders?{query}"))
        .body(Body::empty())
        .ok()?;
    let (mut parts, _) = request.into_parts();
    Some(
        futures::executor::block_on(QueryParams::<ListOrdersParams>::from_request_parts(
            &mut parts,
            &(),
        ))
        .map(|QueryParams(params)| params),
    )
}

/// Found by the fuzzer: an unknown empty key was refused naming the field "".
#[test]
fn an_unknown_empty_key_is_refused_naming_the_body() {
    let error = decode_order_request(br#"{"": 1, "items": []}"#).unwrap_err();
    assert_eq!(refused_fields(error), vec![("body".to_owned(), None)]);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn too_few_or_too_many_lines_are_refused_naming_items_and_the_limit(
        count in prop_oneof![Just(0usize), MAX_ORDER_LINES + 1..MAX_ORDER_LINES * 2],
    ) {
        let lines = vec![("A-1".to_owned(), 1); count];
        let error = decode_order_request(&serde_json::to_vec(&body_of(&lines)).unwrap()).unwrap_err();
        let limit = if count < MIN_ORDER_LINES { MIN_ORDER_LINES } else { MAX_ORDER_LINES };
        prop_assert_eq!(refused_fields(error), vec![("items".to_owned(), Some(limit as i64))]);
    }

    #[test]
    fn a_body_over_the_size_limit_is_refused_naming_the_body_and_the_limit(
        lines in proptest::collection::vec((sku(), quantity()), 1..3),
        extra in 1..4096usize,
    ) {
        // Valid JSON padded with whitespace: only its size is wrong.
        let mut bytes = serde_json::to_vec(&body_of(&lines)).unwrap();
        bytes.resize(MAX_BODY_BYTES + extra, b' ');
        let (status, body) = problem(decode_order_request(&bytes).unwrap_err());
        prop_assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        prop_assert_eq!(&body["errors"][0]["field"], "body");
        prop_assert_eq!(&body["errors"][0]["limit"], MAX_BODY_BYTES as i64);
        // At the limit exactly the same body is accepted.
        bytes.truncate(MAX_BODY_BYTES);
        prop_assert!(decode_order_request(&bytes).is_ok());
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_are_accepted_only_within_limits(
        bytes in prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..512),
            any::<String>().prop_map(String::into_bytes),
        ],
    ) {
        assert_within_limits_or_refused(&bytes)?;
    }

    #[test]
    fn arbitrary_json_never_panics_and_is_accepted_only_within_limits(
        value in prop_oneof![
            json_value(),
            json_value().prop_map(|v| json!({"items": v})),
            proptest::collection::vec((json_value(), json_value()), 0..4)
                .prop_map(|items| json!({"items": items.into_iter()
                    .map(|(sku, quantity)| json!({"sku": sku, "quantity": quantity}))
                    .collect::<Vec<_>>()})),
        ],
    ) {
        assert_within_limits_or_refused(&serde_json::to_vec(&value).unwrap())?;
    }

    #[test]
    fn a_nul_character_is_found_in_exactly_the_json_strings_that_hold_one(
        text in prop_oneof![any::<String>(), "[a\\\\\u{0}u0]{0,12}"],
    ) {
        let json = serde_json::to_vec(&json!({"name": text, "items": [text]})).unwrap();
        prop_assert_eq!(contains_escaped_nul(&json), text.contains('\0'));
        if text.contains('\0') {
            // Refused before it reaches a handler, whose database cannot store it.
            let fields = refused_fields(decode_order_request(&json).unwrap_err());
            prop_assert_eq!(fields, vec![("body".to_owned(), None)]);
        }
    }

    #[test]
    fn a_nul_character_in_the_query_string_is_refused_as_a_field(
        before in "[a-z=&]{0,10}",
        after in "[a-z=&]{0,10}",
    ) {
        let error = list_orders_query(&format!("{before}%00{after}")).unwrap().unwrap_err();
        prop_assert_eq!(refused_fields(error), vec![("query".to_owned(), None)]);
    }

    #[test]
    fn a_text_cursor_decodes_to_what_was_encoded(key in any::<String>()) {
        prop_assert_eq!(cursor::decode_text(&cursor::encode_text(&key)).unwrap(), key);
    }

    #[test]
    fn a_time_and_id_cursor_decodes_to_what_was_encoded(time in timestamp(), id in any::<u128>()) {
        let id = Uuid::from_u128(id);
        prop_assert_eq!(cursor::decode_time_id(&cursor::encode_time_id(time, id)).unwrap(), (time, id));
    }

    #[test]
    fn arbitrary_cursors_are_refused_cleanly_naming_the_cursor(
        raw in prop_oneof![
            any::<String>(),
            "[A-Za-z0-9_-]{0,80}",
            any::<String>().prop_map(|s| cursor::encode_text(&s)),
            ".{0,40}\\|.{0,40}".prop_map(|s| cursor::encode_text(&s)),
        ],
    ) {
        for result in [
            cursor::decode_time_id(&raw).map(|_| ()),
            cursor::decode_text(&raw).map(|_| ()),
        ] {
            if let Err(error) = result {
                prop_assert_eq!(refused_fields(error), vec![("cursor".to_owned(), None)]);
            }
        }
    }

    #[test]
    fn a_page_limit_is_accepted_exactly_between_one_and_the_maximum(
        limit in prop_oneof![any::<i64>(), -2..MAX_PAGE_LIMIT + 3],
    ) {
        match page_limit(Some(limit)) {
            Ok(accepted) => prop_assert!((1..=MAX_PAGE_LIMIT).contains(&accepted) && accepted == limit),
            Err(error) => {
                prop_assert!(!(1..=MAX_PAGE_LIMIT).contains(&limit));
                prop_assert_eq!(refused_fields(error), vec![("limit".to_owned(), Some(MAX_PAGE_LIMIT))]);
            }
        }
    }

    #[test]
    fn query_strings_parse_their_parameters_or_are_refused_as_a_field(
        limit in any::<i64>(),
        status in "[a-z]{0,12}",
        noise in "[ -~]{0,60}",
    ) {
        let params = list_orders_query(&format!("limit={limit}&status={status}")).unwrap().unwrap();
        prop_assert_eq!(params.limit, Some(limit));
        prop_assert_eq!(params.status.as_deref(), if status.is_empty() { Some("") } else { Some(status.as_str()) });
        if let Some(Err(error)) = list_orders_query(&noise) {
            let fields = refused_fields(error);
            prop_assert_eq!(fields.len(), 1);
            prop_assert_eq!(fields[0].0.as_str(), "query");
        }
    }

    #[test]
    fn a_normalised_email_is_accepted_again_unchanged(
        local in "[A-Za-z0-9._+-]{1,40}",
        domain in "[A-Za-z0-9.-]{1,40}",
        padding in "[ \t]{0,3}",
    ) {
        let email = parse_email(&format!("{padding}{local}@{domain}{padding}")).unwrap();
        prop_assert_eq!(&email, &format!("{local}@{domain}").to_lowercase());
        prop_assert_eq!(parse_email(&email).unwrap(), email);
    }

    #[test]
    fn any_email_is_normalised_within_its_limit_or_refused_with_it(
        raw in prop_oneof![any::<String>(), ".{0,5}@.{0,5}", "[a-z]{200,260}@x"],
    ) {
        match parse_email(&raw) {
            Ok(email) => {
                prop_assert!(email.len() <= MAX_EMAIL_LEN);
                prop_assert_eq!(email.matches('@').count(), 1);
                prop_assert!(!email.starts_with('@') && !email.ends_with('@'));
                prop_assert!(!email.contains(char::is_whitespace));
            }
            Err(FieldError { field, limit, .. }) => {
                prop_assert_eq!(field, "email");
                prop_assert_eq!(limit, Some(MAX_EMAIL_LEN as i64));
            }
        }
    }

    #[test]
    fn a_password_is_accepted_exactly_within_its_length_limits(
        raw in prop_oneof![any::<String>(), ".{0,10}", ".{120,140}"],
    ) {
        let length = raw.chars().count();
        match check_password(&raw) {
            Ok(()) => prop_assert!((MIN_PASSWORD_LEN..=MAX_PASSWORD_LEN).contains(&length)),
            Err(FieldError { field, limit, .. }) => {
                prop_assert_eq!(field, "password");
                let expected = if length < MIN_PASSWORD_LEN { MIN_PASSWORD_LEN } else { MAX_PASSWORD_LEN };
                prop_assert!(!(MIN_PASSWORD_LEN..=MAX_PASSWORD_LEN).contains(&length));
                prop_assert_eq!(limit, Some(expected as i64));
            }
        }
    }
}

// Whole orders of up to 100 lines cost more to generate: fewer cases.
proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn a_valid_order_always_decodes_to_its_lines_and_round_trips(
        lines in valid_lines(),
        pretty in any::<bool>(),
    ) {
        let body = body_of(&lines);
        let bytes = if pretty { serde_json::to_vec_pretty(&body) } else { serde_json::to_vec(&body) }.unwrap();
        let decoded = decode_order_request(&bytes).unwrap();
        prop_assert_eq!(pairs(&decoded), lines.clone());
        // What the API keeps (the lines) encodes back to the same request.
        let again = serde_json::to_vec(&json!({"items": decoded})).unwrap();
        prop_assert_eq!(pairs(&decode_order_request(&again).unwrap()), lines);
    }

    #[test]
    fn a_quantity_outside_its_limits_is_refused_naming_the_line_and_the_limit(
        lines in valid_lines(),
        index in any::<proptest::sample::Index>(),
        bad in prop_oneof![i64::MIN..MIN_LINE_QUANTITY, MAX_LINE_QUANTITY + 1..=i64::MAX, -1..=0i64],
    ) {
        let mut lines = lines;
        let index = index.index(lines.len());
        lines[index].1 = bad;
        let error = decode_order_request(&serde_json::to_vec(&body_of(&lines)).unwrap()).unwrap_err();
        let limit = if bad < MIN_LINE_QUANTITY { MIN_LINE_QUANTITY } else { MAX_LINE_QUANTITY };
        prop_assert_eq!(
            refused_fields(error),
            vec![(format!("items[{index}].quantity"), Some(limit))]
        );
    }

    #[test]
    fn a_sku_outside_its_alphabet_or_length_is_refused_naming_the_line_and_the_limit(
        lines in valid_lines(),
        index in any::<proptest::sample::Index>(),
        bad in prop_oneof![
            Just(String::new()),
            "[A-Za-z0-9._-]{65,80}",
            // Not NUL, which is refused with the whole body before the
            // lines are read (see the NUL properties).
            "[A-Za-z0-9]{0,10}[^A-Za-z0-9._\u{0}-][A-Za-z0-9]{0,10}",
        ],
    ) {
        let mut lines = lines;
        let index = index.index(lines.len());
        lines[index].0 = bad;
        let error = decode_order_request(&serde_json::to_vec(&body_of(&lines)).unwrap()).unwrap_err();
        prop_assert_eq!(
            refused_fields(error),
            vec![(format!("items[{index}].sku"), Some(MAX_SKU_LEN as i64))]
        );
    }
}
