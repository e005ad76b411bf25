//! Every Prometheus metric orderflow exports, named once. The README's metric
//! table lists the same names.

/// Counter: orders accepted with 202.
pub const ORDERS_ACCEPTED: &str = "orderflow_orders_accepted_total";
/// Counter, label `outcome` (`confirmed`, `rejected`) and `reason`: decided orders.
pub const ORDERS_DECIDED: &str = "orderflow_orders_decided_total";
/// Counter, label `outcome` (`cancelled`, `fulfilled`): confirmed orders settled.
pub const ORDERS_SETTLED: &str = "orderflow_orders_settled_total";
/// Histogram, seconds from acceptance to decision.
pub const DECISION_LATENCY: &str = "orderflow_decision_latency_seconds";
/// Histogram: orders per batch.
pub const BATCH_SIZE: &str = "orderflow_batch_size";
/// Histogram: seconds to decide and commit one batch.
pub const BATCH_COMMIT: &str = "orderflow_batch_commit_seconds";
/// Counter, label `stream` (`orders`, `events`): messages terminated as
/// undecodable.
pub const POISON_MESSAGES: &str = "orderflow_poison_messages_total";
/// Counter, label `reason` (`undecodable`, `database`): order commands
/// moved to the dead-letter stream.
pub const DEAD_LETTERS: &str = "orderflow_dead_letters_total";
/// Gauge, label `partition`: 1 when this replica holds the partition.
pub const PARTITION_OWNED: &str = "orderflow_partition_owned";
/// Gauge: live order-processor replicas, as this replica counts them; each
/// owns at most ceil(partitions / replicas) partitions.
pub const PROCESSOR_REPLICAS: &str = "orderflow_processor_replicas";
/// Gauge: outbox rows waiting to be published.
pub const OUTBOX_BACKLOG: &str = "orderflow_outbox_backlog";
/// Counter: events the relay published.
pub const OUTBOX_PUBLISHED: &str = "orderflow_outbox_published_total";
/// Counter, labels `method`, `route`, `status`.
pub const HTTP_REQUESTS: &str = "orderflow_http_requests_total";
/// Histogram, labels `method`, `route`: seconds to answer.
pub const HTTP_LATENCY: &str = "orderflow_http_request_duration_seconds";
/// Counter, label `client` (`user`, `address`): requests refused with 429 by
/// the per-client rate limit.
pub const HTTP_RATE_LIMITED: &str = "orderflow_http_rate_limited_total";
/// Gauge, label `route`: requests ingress-api has read the head of and not
/// yet answered.
pub const HTTP_IN_FLIGHT: &str = "orderflow_http_requests_in_flight";
/// Gauge: HTTP connections ingress-api holds open.
pub const HTTP_OPEN_CONNECTIONS: &str = "orderflow_http_open_connections";
/// Counter: logins refused with 429 because their email failed too often.
pub const LOGIN_THROTTLED: &str = "orderflow_login_throttled_total";
/// Counter, label `reason`: orders refused with 503 because the queue could not take them.
pub const ORDERS_UNAVAILABLE: &str = "orderflow_orders_unavailable_total";
/// Counter, labels `channel`, `outcome`: notifier deliveries.
pub const NOTIFIER_DELIVERIES: &str = "orderflow_notifier_deliveries_total";
/// Counter, label `reason`: events the notifier handed back to wait (an
/// event type it does not know yet).
pub const NOTIFIER_DEFERRED: &str = "orderflow_notifier_deferred_total";
/// Counter: events the notifier dropped as already handled.
pub const NOTIFIER_DUPLICATES: &str = "orderflow_notifier_duplicates_total";
/// Gauge: (product, location) stock levels that differ from their ledger
/// sums; exported by the processor replica that owns partition 0.
pub const LEDGER_DRIFT: &str = "orderflow_ledger_drift_rows";
/// Gauge: when the ledger was last reconciled, in Unix seconds.
pub const LEDGER_RECONCILED_AT: &str = "orderflow_ledger_reconciled_timestamp_seconds";
/// Gauge: live event streams (Server-Sent Events) open on this replica.
pub const LIVE_CONNECTIONS: &str = "orderflow_live_connections";
/// Gauge, label `partition`: orders queued and not yet acked (pending plus
/// delivered-but-unacked); exported by the processor owning partition 0.
pub const QUEUE_DEPTH: &str = "orderflow_queue_depth";
/// Gauge, label `partition`: seconds the oldest undecided order has waited;
/// 0 when none waits.
pub const QUEUE_OLDEST_AGE: &str = "orderflow_queue_oldest_pending_age_seconds";
/// Gauge: active products whose available units are at or below their
/// low-stock threshold; exported by the processor that owns partition 0.
pub const LOW_STOCK_PRODUCTS: &str = "orderflow_low_stock_products";
/// Gauge, label `location`: units available (on hand minus reserved) of
/// active products at each active location; exported by the processor that
/// owns partition 0.
pub const STOCK_AVAILABLE: &str = "orderflow_stock_available_units";
/// Gauge: webhook deliveries waiting to be sent or retried.
pub const WEBHOOK_BACKLOG: &str = "orderflow_webhook_backlog";
/// Gauge: dead webhook deliveries waiting for a replay.
pub const WEBHOOK_DEAD_LETTERS: &str = "orderflow_webhook_dead_letters";
/// Histogram: seconds one webhook request took.
pub const WEBHOOK_REQUEST_DURATION: &str = "orderflow_webhook_request_duration_seconds";
