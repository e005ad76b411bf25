-- Webhooks: endpoints managers register, one delivery row per (endpoint,
-- event) written in the notifier's batch transaction, every attempt recorded.
--
-- A delivery is 'pending' until a 2xx answer makes it 'delivered', or its
-- last allowed attempt fails and makes it 'dead' (the dead-letter record an
-- admin can replay). The dispatcher leases due pending rows with
-- `for update skip locked`, so several notifier replicas share the work.

create table webhooks (
    id uuid primary key,
    url text not null,
    events text[] not null,
    secret text not null,
    active boolean not null default true,
    created_by uuid not null,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    constraint webhooks_events_not_empty check (cardinality(events) > 0),
    constraint webhooks_url_length check (char_length(url) between 1 and 2048),
    constraint webhooks_secret_length check (char_length(secret) between 16 and 256)
);

create table webhook_deliveries (
    id bigint generated always as identity primary key,
    webhook_id uuid not null,
    event_id uuid not null,
    event_type text not null,
    -- What per-endpoint ordering is kept for: the order id of order events,
    -- the sku of stock events, the event id itself for pings.
    ordering_key text not null,
    payload jsonb not null,
    state text not null default 'pending',
    attempts integer not null default 0,
    next_attempt_at timestamptz not null default now(),
    leased_until timestamptz,
    last_status integer,
    last_error text,
    created_at timestamptz not null default now(),
    delivered_at timestamptz,
    dead_at timestamptz,
    constraint webhook_deliveries_webhook_fkey foreign key (webhook_id)
        references webhooks (id) on delete cascade,
    constraint webhook_deliveries_webhook_event_key unique (webhook_id, event_id),
    constraint webhook_deliveries_state_check check (state in ('pending', 'delivered', 'dead')),
    constraint webhook_deliveries_attempts_nonnegative check (attempts >= 0)
);

-- The dispatcher's scan: due pending rows, oldest first.
create index webhook_deliveries_due_idx on webhook_deliveries (next_attempt_at, id)
    where state = 'pending';
-- The ordering check: an earlier pending row of the same endpoint and key.
create index webhook_deliveries_ordering_idx on webhook_deliveries (webhook_id, ordering_key, id)
    where state = 'pending';
-- The API's listings.
create index webhook_deliveries_webhook_idx on webhook_deliveries (webhook_id, id desc);
create index webhook_deliveries_dead_idx on webhook_deliveries (id desc) where state = 'dead';

create table webhook_attempts (
    id bigint generated always as identity primary key,
    delivery_id bigint not null,
    attempt integer not null,
    attempted_at timestamptz not null default now(),
    status_code integer,
    error text,
    duration_ms integer not null,
    constraint webhook_attempts_delivery_fkey foreign key (delivery_id)
        references webhook_deliveries (id) on delete cascade
);

create index webhook_attempts_delivery_idx on webhook_attempts (delivery_id, id);
