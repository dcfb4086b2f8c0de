-- bench/plain.sql: the reference for bulk creation, timed: a plain INSERT
-- of as many precomputed SHA-256 hashes as apikey_create made, into a copy
-- of apikey.keys with the same columns, constraints and indexes but no
-- triggers.
\set ON_ERROR_STOP 1
CREATE TABLE bench.plain (LIKE apikey.keys INCLUDING ALL);
CREATE TABLE bench.pre AS
SELECT g.i, sha256(convert_to(gen_random_uuid()::text || g.i, 'UTF8')) AS h
  FROM generate_series(1, (SELECT count(*) FROM bench.k)) AS g(i);
SELECT clock_timestamp() AS bulk_t0 \gset
INSERT INTO bench.plain (name, prefix, hint, owner_role, scopes, secret_hash)
SELECT 'plain-' || p.i, 'bench', 'bench_XXXX...XXXX', current_user,
       '{jobs:read,write:databases}', p.h
  FROM bench.pre AS p;
INSERT INTO bench.bulk
SELECT 'plain INSERT', (SELECT count(*) FROM bench.k),
       1000 * extract(epoch FROM clock_timestamp() - :'bulk_t0'::timestamptz);
DROP TABLE bench.pre;
DROP TABLE bench.plain;
VACUUM ANALYZE apikey.keys;
