-- bench/loop.sql: the in-server loop table, built when the key table has
-- the main size (BENCH_KEYS).  psql variable: nloop.
\set ON_ERROR_STOP 1
SET jit = off;

-- nloop keys in random order (keys repeat only when nloop > keys), so
-- that the index is probed in an order real traffic would use, not
-- insertion order.
CREATE TABLE bench.loop AS
SELECT k.key
  FROM bench.k AS k,
       generate_series(1, ceil(:nloop::numeric / (SELECT count(*) FROM bench.k))::int) AS rep
 ORDER BY random()
 LIMIT :nloop;

-- Per loop row, keys that fail early and a hot key: "bad" is the row's key
-- with its last character (part of the checksum) changed, so MALFORMED
-- without a table access; "gone" is a well-formed key whose row was
-- deleted, so NOT_FOUND after both index probes (1000 deleted keys,
-- cycled); "hot" is one of 500 keys (fewer than the verified-key cache
-- holds), so after the first round every verification of it is a hit.
CREATE TABLE bench.gone (n int PRIMARY KEY, key text NOT NULL);
INSERT INTO bench.gone (n, key)
SELECT g.i - 1, c.key
  FROM generate_series(1, least(1000, (SELECT count(*) FROM bench.k))) AS g(i),
       LATERAL apikey.apikey_create('gone-' || g.i, '{jobs:read}') AS c;
DELETE FROM apikey.keys WHERE name LIKE 'gone-%';
ALTER TABLE bench.loop ADD COLUMN bad text, ADD COLUMN gone text, ADD COLUMN hot text;
UPDATE bench.loop AS l
   SET bad = left(l.key, -1) || CASE WHEN right(l.key, 1) = 'A' THEN 'B' ELSE 'A' END,
       gone = (SELECT g.key FROM bench.gone AS g
                WHERE g.n = abs(hashtext(l.key)) % (SELECT count(*) FROM bench.gone)),
       hot = (SELECT k.key FROM bench.k AS k
               WHERE k.i = 1 + abs(hashtext(l.key)) % least(500, (SELECT count(*) FROM bench.k)));

VACUUM ANALYZE apikey.keys;
VACUUM ANALYZE bench.loop;
SELECT (SELECT count(*) FROM apikey.keys) AS keys,
       (SELECT count(*) FROM bench.loop) AS loop_rows,
       (SELECT count(DISTINCT hot) FROM bench.loop) AS hot_keys,
       pg_size_pretty(pg_total_relation_size('apikey.keys')) AS keys_size;
