//! Arbitrary bytes as the body of `POST /orders`, through the decoder the
//! handler uses. It must never panic; whatever it accepts must be within
//! every limit, and whatever it refuses must be refused as a client error.

#![no_main]

use ingress_api::error::ApiError;
use ingress_api::http::orders::decode_order_request;
use libfuzzer_sys::fuzz_target;
use orderflow_core::limits::{
    MAX_BODY_BYTES, MAX_LINE_QUANTITY, MAX_ORDER_LINES, MAX_SKU_LEN, MIN_LINE_QUANTITY,
    MIN_ORDER_LINES,
};

fuzz_target!(|body: &[u8]| {
    match decode_order_request(body) {
        Ok(lines) => {
            assert!(body.len() <= MAX_BODY_BYTES);
            assert!((MIN_ORDER_LINES..=MAX_ORDER_LINES).contains(&lines.len()));
            for line in &lines {
                let sku = line.sku.as_str();
                assert!(!sku.is_empty() && sku.len() <= MAX_SKU_LEN, "sku {sku:?}");
                assert!(
                    sku.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')),
                    "sku {sku:?}"
                );
                let quantity = line.quantity.get();
                assert!((MIN_LINE_QUANTITY..=MAX_LINE_QUANTITY).contains(&quantity));
            }
        }
        Err(ApiError::MalformedJson(_)) => {}
        Err(ApiError::PayloadTooLarge { .. }) => assert!(body.len() > MAX_BODY_BYTES),
        Err(ApiError::Validation(errors)) => {
            assert!(!errors.is_empty());
            for error in &errors {
                assert!(!error.field.is_empty() && !error.message.is_empty());
            }
        }
        Err(other) => panic!("an order body refused as {other:?}"),
    }
});
