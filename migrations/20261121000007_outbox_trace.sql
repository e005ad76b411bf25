-- The trace context of each event travels with it: the processor stores the
-- order's context (and the request id that placed or settled it) with the
-- event in the outbox, the relay sends both as NATS headers, and the notifier
-- keeps the context with each webhook delivery, so a webhook request carries
-- a traceparent in the order's trace. Null for events with no single cause
-- (stock changes of a batch) and for rows written before this migration.

alter table outbox
    add column traceparent text,
    add column request_id text;

alter table webhook_deliveries
    add column traceparent text;
