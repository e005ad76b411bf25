-- Inventory management: searching the catalogue by fragment, and reading the
-- ledger by who did what.
--
-- GET /products?search= matches a fragment anywhere in the name or the sku
-- (ilike '%fragment%'). A btree cannot serve a leading wildcard; trigram GIN
-- indexes can, so a search stays an index lookup at 100,000 products and more
-- (ingress-api/tests/search.rs shows the plan). pg_trgm is a trusted
-- extension: the database owner may create it without being a superuser.
create extension if not exists pg_trgm;

create index products_name_trgm_idx on products using gin (name gin_trgm_ops);
create index products_sku_trgm_idx on products using gin (sku gin_trgm_ops);

-- GET /movements?actor= reads one person's stock operations newest first.
-- Reservations, the bulk of the ledger, carry no actor: the partial index
-- stays small and costs the processor's batches nothing.
create index stock_movements_actor_idx on stock_movements (actor_id, id) where actor_id is not null;

-- GET /movements?from=&to= reads a time window of the ledger. Rows arrive in
-- time order, so a BRIN index serves the window for a few pages of upkeep
-- where a btree would cost every ledger insert another index entry.
create index stock_movements_created_brin on stock_movements using brin (created_at);
