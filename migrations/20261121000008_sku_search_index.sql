-- The trigram index on sku moves onto lower(sku).
--
-- pg_trgm's GIN operator class also answers equality, so with the index on
-- sku itself the planner served `sku = any($1)` from it whenever it guessed
-- the GIN lookup cheaper than the unique btree. For skus sharing a prefix (as
-- those of one catalogue or of one load run do) a trigram lookup reads most
-- of the table: 65 ms to find 50 skus among 2,000 products, and it was most
-- of the order-processor's time per batch. On lower(sku) the index can only
-- serve a query about lower(sku), which the fragment search is (sku ilike
-- '%x%' and lower(sku) like lower('%x%') match the same skus, which are
-- ASCII); equality on sku is left to products_sku_key.
drop index if exists products_sku_trgm_idx;
create index products_sku_search_trgm_idx on products using gin (lower(sku) gin_trgm_ops);
