-- bench/loop.sql: the in-server loop table, built when the key table has
-- the main size (BENCH_KEYS).  psql variables: nloop, rounds.
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
-- cycled); "hot" is one of 10000 keys (a hot set: with 100000 loop rows
-- each is verified 10 times a round, in random order), so after the
-- warm-up round every verification of it is a hit.
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
               WHERE k.i = 1 + abs(hashtext(l.key)) % least(10000, (SELECT count(*) FROM bench.k)));

-- Keys never verified before: for each round (0 is the warm-up) its own
-- nloop / 5 keys, made here and verified by no other variant, so that
-- verify_cold meets every key for the first time (neither cached nor
-- tracked) and floor_cold looks up the same ones.
CREATE TABLE bench.cold (round int NOT NULL, key text NOT NULL);
INSERT INTO bench.cold (round, key)
SELECT g.i % (:rounds + 1), c.key
  FROM generate_series(1, (:rounds + 1) * ceil(:nloop::numeric / 5)::int) AS g(i),
       LATERAL apikey.apikey_create('cold-' || g.i, '{jobs:read}') AS c;
CREATE INDEX ON bench.cold (round);

-- the rows each variant runs over: the loop's, or a round's cold keys
UPDATE bench.variant
   SET nrows = CASE WHEN name LIKE '%cold' THEN (SELECT count(*) FROM bench.cold WHERE round = 0)
                    ELSE (SELECT count(*) FROM bench.loop) END;

-- per in-server variant: best and median round, per-call µs net of the
-- loop's own cost per row (the loop row: the loop itself), and whether
-- every row got its expected code
CREATE VIEW bench.per_call AS
WITH r AS (SELECT count(*)::float8 AS nloop FROM bench.loop),
t AS (
	SELECT name, min(ms) AS best, percentile_cont(0.5) WITHIN GROUP (ORDER BY ms) AS med,
	       min(n) AS nmin, max(n) AS nmax, count(*) AS rounds
	  FROM bench.timing GROUP BY name
),
l AS (SELECT best AS lbest, med AS lmed FROM t WHERE name = 'loop')
SELECT v.ord, v.name, v.label, t.best, t.med, t.rounds,
       CASE WHEN v.name = 'loop' THEN t.best * 1000 / r.nloop
            ELSE t.best * 1000 / v.nrows - l.lbest * 1000 / r.nloop END AS us_best,
       CASE WHEN v.name = 'loop' THEN t.med * 1000 / r.nloop
            ELSE t.med * 1000 / v.nrows - l.lmed * 1000 / r.nloop END AS us_med,
       t.nmin = v.nrows AND t.nmax = v.nrows AS all_rows_passed
  FROM bench.variant v JOIN t USING (name), l, r;

VACUUM ANALYZE apikey.keys;
VACUUM ANALYZE bench.loop;
VACUUM ANALYZE bench.cold;
SELECT (SELECT count(*) FROM apikey.keys) AS keys,
       (SELECT count(*) FROM bench.loop) AS loop_rows,
       (SELECT count(DISTINCT hot) FROM bench.loop) AS hot_keys,
       (SELECT count(*) FROM bench.cold) AS cold_keys,
       pg_size_pretty(pg_total_relation_size('apikey.keys')) AS keys_size;
