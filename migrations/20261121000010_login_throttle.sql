-- Login throttling against password guessing.
--
-- Failed logins are counted per email (normalised as login reads it, known
-- account or not, so the throttle does not reveal which emails exist) in a
-- fixed window that opens with the first failure. A row at the limit
-- refuses every login of its email until its window has passed; a
-- successful login deletes the row. In the database rather than in each
-- replica's memory: every replica behind the balancer then counts the same
-- attempts, and a restart does not forgive them.

create table login_failures (
    email text not null,
    failures integer not null,
    window_started_at timestamptz not null,
    constraint login_failures_pkey primary key (email),
    constraint login_failures_failures_positive check (failures > 0)
);

-- Rows whose window has passed are deleted as new failures arrive.
create index login_failures_window_started_at_idx on login_failures (window_started_at);
