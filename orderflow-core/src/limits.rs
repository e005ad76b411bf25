//! Input limits. Each is named in the code, the README and the error a client
//! receives when it crosses one.

/// Fewest lines an order may have.
pub const MIN_ORDER_LINES: usize = 1;
/// Most lines an order may have.
pub const MAX_ORDER_LINES: usize = 100;
/// Smallest quantity on an order line.
pub const MIN_LINE_QUANTITY: i64 = 1;
/// Largest quantity on an order line.
pub const MAX_LINE_QUANTITY: i64 = 10_000;
/// Longest sku; skus are `[A-Za-z0-9._-]{1,64}`.
pub const MAX_SKU_LEN: usize = 64;
/// Largest request body accepted by the API, in bytes.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// Longest `Idempotency-Key` header value.
pub const MAX_IDEMPOTENCY_KEY_LEN: usize = 255;
/// Largest quantity one stock operation (receive, ship, ...) may move.
pub const MAX_STOCK_OPERATION_QUANTITY: i64 = 1_000_000_000;
/// Shortest password accepted at registration.
pub const MIN_PASSWORD_LEN: usize = 8;
/// Longest password accepted (argon2 input is bounded to keep hashing cheap to refuse).
pub const MAX_PASSWORD_LEN: usize = 128;
/// Longest email address accepted.
pub const MAX_EMAIL_LEN: usize = 254;
/// Longest product name.
pub const MAX_NAME_LEN: usize = 200;
/// Most items one list page returns.
pub const MAX_PAGE_LIMIT: i64 = 200;
/// Items a list page returns when the client does not say.
pub const DEFAULT_PAGE_LIMIT: i64 = 50;
/// Largest request head (request line and headers) ingress-api reads, in
/// bytes; a larger one is answered 431 and the connection closed. A bearer
/// token is under 1 KiB, so 32 KiB leaves room for any honest client while
/// bounding what each open connection may make the server hold.
pub const MAX_HEADER_BYTES: usize = 32 * 1024;
/// Failed logins for one email within [`LOGIN_FAILURE_WINDOW_SECONDS`] after
/// which further attempts are refused with 429 until the window passes.
pub const MAX_LOGIN_FAILURES: i32 = 5;
/// The window of [`MAX_LOGIN_FAILURES`], from the first failure: 15 minutes.
pub const LOGIN_FAILURE_WINDOW_SECONDS: i64 = 15 * 60;
