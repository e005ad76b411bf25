-- orderflow's initial schema: users, catalogue, stock, orders, the append-only
-- stock ledger, the event outbox and the notifier's inbox.
--
-- Every constraint is named so the code can map a violation to a precise error.
-- Quantities are bigint so sums over the ledger can never overflow.

create table users (
    id uuid primary key,
    email text not null,
    password_hash text not null,
    role text not null,
    active boolean not null default true,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    constraint users_email_key unique (email),
    constraint users_role_check check (role in ('admin', 'manager', 'staff', 'customer')),
    constraint users_email_lowercase check (email = lower(email))
);

create table products (
    id bigint generated always as identity primary key,
    sku text not null,
    name text not null,
    price_cents bigint not null,
    unit text not null default 'each',
    category text,
    low_stock_threshold bigint not null default 0,
    archived_at timestamptz,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    constraint products_sku_key unique (sku),
    constraint products_sku_format check (sku ~ '^[A-Za-z0-9._-]{1,64}$'),
    constraint products_price_nonnegative check (price_cents >= 0),
    constraint products_threshold_nonnegative check (low_stock_threshold >= 0)
);

create index products_category_idx on products (category) where category is not null;

create table locations (
    id bigint generated always as identity primary key,
    code text not null,
    name text not null,
    archived_at timestamptz,
    created_at timestamptz not null default now(),
    constraint locations_code_key unique (code),
    constraint locations_code_format check (code ~ '^[A-Za-z0-9._-]{1,64}$')
);

insert into locations (code, name) values ('main', 'Main warehouse');

-- One row per (product, location). Every writer locks the rows of a product in
-- (product_id, location_id) order, so two writers never deadlock.
create table stock_levels (
    product_id bigint not null,
    location_id bigint not null,
    on_hand bigint not null default 0,
    reserved bigint not null default 0,
    updated_at timestamptz not null default now(),
    constraint stock_levels_pkey primary key (product_id, location_id),
    constraint stock_levels_product_fkey foreign key (product_id) references products (id),
    constraint stock_levels_location_fkey foreign key (location_id) references locations (id),
    constraint stock_levels_on_hand_nonnegative check (on_hand >= 0),
    constraint stock_levels_reserved_nonnegative check (reserved >= 0),
    constraint stock_levels_reserved_within_on_hand check (reserved <= on_hand)
);

create index stock_levels_location_idx on stock_levels (location_id);

create table orders (
    id uuid primary key,
    customer_id uuid not null,
    status text not null,
    reason text,
    idempotency_key text,
    -- SHA-256 of the normalised order lines; the same Idempotency-Key with
    -- another body is refused by comparing it.
    request_hash bytea not null,
    partition integer not null,
    -- JetStream stream sequence of the command that placed the order; null
    -- while only the ingress has recorded it as pending.
    stream_seq bigint,
    -- The partition lease epoch under which the order was decided: proof, per
    -- partition, that no stale worker committed after a takeover.
    decided_epoch bigint,
    created_at timestamptz not null,
    decided_at timestamptz,
    updated_at timestamptz not null default now(),
    -- customer_id comes from a signed token and deliberately has no foreign
    -- key: an accepted order must always be decidable, and a batch that
    -- failed on a missing user (say, after restoring an older backup) would
    -- block its whole partition.
    constraint orders_status_check check (status in ('pending', 'confirmed', 'rejected', 'cancelled', 'fulfilled')),
    constraint orders_reason_only_when_rejected check ((status = 'rejected') = (reason is not null)),
    constraint orders_decided_at_when_decided check ((status = 'pending') = (decided_at is null))
);

create index orders_customer_created_idx on orders (customer_id, created_at desc, id desc);
create index orders_status_created_idx on orders (status, created_at desc, id desc);

create table order_lines (
    order_id uuid not null,
    line_no integer not null,
    sku text not null,
    quantity bigint not null,
    constraint order_lines_pkey primary key (order_id, line_no),
    constraint order_lines_order_fkey foreign key (order_id) references orders (id),
    constraint order_lines_quantity_range check (quantity between 1 and 10000)
);

-- Where a confirmed order's reservation sits. A line may be split across
-- locations; fulfilment and cancellation act on exactly these rows.
create table order_allocations (
    order_id uuid not null,
    product_id bigint not null,
    location_id bigint not null,
    quantity bigint not null,
    constraint order_allocations_pkey primary key (order_id, product_id, location_id),
    constraint order_allocations_order_fkey foreign key (order_id) references orders (id),
    constraint order_allocations_level_fkey foreign key (product_id, location_id)
        references stock_levels (product_id, location_id),
    constraint order_allocations_quantity_positive check (quantity > 0)
);

-- The append-only ledger. stock_levels is a cache of its sums per
-- (product, location); the reconciliation query proves they agree.
create table stock_movements (
    id bigint generated always as identity primary key,
    product_id bigint not null,
    location_id bigint not null,
    kind text not null,
    on_hand_delta bigint not null,
    reserved_delta bigint not null,
    order_id uuid,
    actor_id uuid,
    reason text,
    correlation_id uuid not null,
    created_at timestamptz not null default now(),
    constraint stock_movements_level_fkey foreign key (product_id, location_id)
        references stock_levels (product_id, location_id),
    constraint stock_movements_kind_check check (kind in
        ('receive', 'ship', 'adjust', 'transfer_in', 'transfer_out', 'reserve', 'release', 'fulfil')),
    constraint stock_movements_changes_something check (on_hand_delta <> 0 or reserved_delta <> 0)
);

create index stock_movements_level_idx on stock_movements (product_id, location_id, id);
create index stock_movements_order_idx on stock_movements (order_id) where order_id is not null;

create function stock_movements_append_only() returns trigger
language plpgsql as $$
begin
    raise exception 'stock_movements is append-only: % refused', tg_op
        using errcode = 'restrict_violation';
end;
$$;

create trigger stock_movements_no_update_or_delete
    before update or delete on stock_movements
    for each row execute function stock_movements_append_only();

create trigger stock_movements_no_truncate
    before truncate on stock_movements
    for each statement execute function stock_movements_append_only();

-- Events written in the same transaction as the change they describe; the
-- relay publishes them to JetStream with event_id as the message id and then
-- deletes them, so an event exists only if its change committed.
create table outbox (
    id bigint generated always as identity primary key,
    event_id uuid not null,
    subject text not null,
    payload jsonb not null,
    created_at timestamptz not null default now(),
    constraint outbox_event_id_key unique (event_id)
);

-- The fencing record of each partition's worker. A worker takes over by
-- bumping the epoch; every batch locks this row and checks its epoch, so a
-- worker that lost its lease can never commit a batch.
create table partition_leases (
    partition integer primary key,
    epoch bigint not null default 0,
    holder text,
    last_stream_seq bigint not null default 0,
    acquired_at timestamptz,
    updated_at timestamptz not null default now()
);

-- The notifier's inbox: an event id recorded here has had its effects.
create table processed_events (
    event_id uuid primary key,
    subject text not null,
    processed_at timestamptz not null default now()
);

create table stock_alerts (
    id bigint generated always as identity primary key,
    product_id bigint not null,
    sku text not null,
    state text not null,
    available bigint not null,
    threshold bigint not null,
    raised_event_id uuid not null,
    raised_at timestamptz not null,
    resolved_event_id uuid,
    resolved_at timestamptz,
    constraint stock_alerts_product_fkey foreign key (product_id) references products (id),
    constraint stock_alerts_state_check check (state in ('active', 'resolved')),
    constraint stock_alerts_raised_event_key unique (raised_event_id)
);

-- At most one open alert per product: a second low event for the same
-- crossing can never open a second alert.
create unique index stock_alerts_one_active_per_product on stock_alerts (product_id) where state = 'active';

-- What the notifier delivered, through which channel, and how it went.
create table notification_deliveries (
    id bigint generated always as identity primary key,
    event_id uuid not null,
    channel text not null,
    outcome text not null,
    detail text,
    created_at timestamptz not null default now(),
    constraint notification_deliveries_event_channel_key unique (event_id, channel)
);
