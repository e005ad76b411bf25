-- Revoking access tokens without a database query per request.
--
-- Every access token carries the user's token_version (claim `ver`) at the
-- time it was issued. Deactivating a user, changing their role or their
-- password bumps the version, and ingress-api refuses tokens older than the
-- current version, or of a deactivated user, from an in-memory copy of these
-- columns that each replica refreshes from the rows whose updated_at moved.

alter table users
    add column token_version integer not null default 0,
    add constraint users_token_version_nonnegative check (token_version >= 0);

-- updated_at moves on every change of a row, whoever makes it, and never
-- backwards for one row: the replicas' caches find changes by it. The wall
-- clock at the moment of the update (not the transaction's start) keeps the
-- time between a row's updated_at and its commit short, which is what the
-- replicas' overlapping re-reads rely on.
create function users_touch_updated_at() returns trigger
language plpgsql as $$
begin
    new.updated_at := greatest(clock_timestamp(), old.updated_at + interval '1 microsecond');
    return new;
end;
$$;

create trigger users_touch_updated_at
    before update on users
    for each row execute function users_touch_updated_at();

-- The incremental refresh: rows changed since a moment.
create index users_updated_at_idx on users (updated_at);

-- The initial load: the few users whose tokens may be refused.
create index users_restricted_idx on users (id) where not active or token_version > 0;
