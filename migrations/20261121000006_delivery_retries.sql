-- Channel deliveries (log, email) become retryable: each row keeps the event
-- it delivers, how often it was tried and when to try next. 'dead' marks a
-- delivery refused for good or out of attempts.

alter table notification_deliveries
    add column payload jsonb,
    add column attempts integer not null default 0,
    add column next_attempt_at timestamptz,
    add column updated_at timestamptz not null default now(),
    add constraint notification_deliveries_outcome_check
        check (outcome in ('pending', 'delivered', 'failed', 'dead')),
    add constraint notification_deliveries_attempts_nonnegative check (attempts >= 0);

create index notification_deliveries_due_idx on notification_deliveries (next_attempt_at)
    where outcome in ('pending', 'failed');
