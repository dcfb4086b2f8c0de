-- bench/summary.sql: the final tables, from bench.timing and bench.pgbench.
\set ON_ERROR_STOP 1
\pset footer off
\pset null ''

CREATE TEMP VIEW s AS
WITH r AS (SELECT count(*)::float8 AS nrows FROM bench.loop),
t AS (
	SELECT name, min(ms) AS best, percentile_cont(0.5) WITHIN GROUP (ORDER BY ms) AS med,
	       min(n) AS nmin, max(n) AS nmax, count(*) AS rounds
	  FROM bench.timing GROUP BY name
),
l AS (SELECT best AS lbest, med AS lmed FROM t WHERE name = 'loop')
SELECT v.ord, v.name, v.label, t.best, t.med, t.rounds,
       CASE WHEN v.name = 'loop' THEN t.best * 1000 / r.nrows
            ELSE (t.best - l.lbest) * 1000 / r.nrows END AS us_best,
       CASE WHEN v.name = 'loop' THEN t.med * 1000 / r.nrows
            ELSE (t.med - l.lmed) * 1000 / r.nrows END AS us_med,
       t.nmin = r.nrows AND t.nmax = r.nrows AS all_rows_passed
  FROM bench.variant v JOIN t USING (name), l, r;

\echo 'In-server, one backend, jit off: per-call µs = (time - loop time) / rows'
\echo '(loop row: the loop itself, µs per row, not subtracted)'
SELECT name AS variant, label AS "what each row does",
       round(best::numeric, 1) AS best_ms, round(med::numeric, 1) AS median_ms,
       round(us_best::numeric, 3) AS "µs/call best", round(us_med::numeric, 3) AS "µs/call median",
       all_rows_passed AS "all as expected"
  FROM s ORDER BY ord;

\echo 'In-server ratios of per-call cost (< 1: apikey_verify is faster)'
\echo '(best: of the best times; median: of the median times; paired: median over rounds of the'
\echo ' ratio within one round, which is the most robust against a machine whose load drifts)'
CREATE TEMP VIEW net AS
SELECT t.round, t.name, t.ms - l.ms AS net
  FROM bench.timing AS t
  JOIN bench.timing AS l ON l.round = t.round AND l.name = 'loop';

SELECT p.label AS ratio,
       round((a.us_best / b.us_best)::numeric, 3) AS best,
       round((a.us_med / b.us_med)::numeric, 3) AS median,
       (SELECT round(percentile_cont(0.5) WITHIN GROUP (ORDER BY na.net / nb.net)::numeric, 3)
          FROM net AS na JOIN net AS nb ON nb.round = na.round
         WHERE na.name = p.a AND nb.name = p.b) AS paired
  FROM (VALUES (1, 'apikey_verify(key) / SQL floor', 'verify', 'floor'),
               (2, 'apikey_verify(key) / plpgsql_verify(key, ''{}'')', 'verify', 'plpgsql'),
               (3, 'apikey_verify(key, ''{jobs:read}'') / SQL floor', 'verify_scope', 'floor'),
               (4, 'apikey_verify(key, ''{jobs:read}'') / plpgsql_verify(key, ''{jobs:read}'')', 'verify_scope', 'plpgsql_scope'),
               (5, 'plpgsql_verify(key, ''{}'') / SQL floor', 'plpgsql', 'floor'),
               (6, 'NOT_FOUND / MALFORMED (how much cheaper a malformed key is)', 'not_found', 'malformed'),
               (7, 'NOT_FOUND / SQL floor', 'not_found', 'floor'))
       AS p(ord, label, a, b)
  JOIN s AS a ON a.name = p.a
  JOIN s AS b ON b.name = p.b
 ORDER BY p.ord;

\echo 'Bulk creation, one INSERT ... SELECT over generate_series (keys per second)'
SELECT b.what, b.n AS keys, round(b.ms::numeric, 0) AS ms,
       round((b.n * 1000 / b.ms)::numeric, 0) AS "keys/s",
       round((b.ms / p.ms)::numeric, 2) AS "time vs plain INSERT"
  FROM bench.bulk AS b, bench.bulk AS p
 WHERE p.what = 'plain INSERT'
 ORDER BY b.what DESC;

\echo 'Size per million keys (apikey.keys after VACUUM, scaled linearly from this run)'
SELECT pg_size_pretty((pg_table_size('apikey.keys') * 1e6 / n)::bigint) AS "table (incl. TOAST)",
       pg_size_pretty((pg_indexes_size('apikey.keys') * 1e6 / n)::bigint) AS "all indexes",
       pg_size_pretty((pg_relation_size('apikey.keys_hash_prefix_idx') * 1e6 / n)::bigint) AS "hash prefix index",
       pg_size_pretty((pg_relation_size('apikey.keys_secret_hash_idx') * 1e6 / n)::bigint) AS "unique hash index"
  FROM (SELECT count(*)::numeric AS n FROM apikey.keys) AS c;

\if :have_pgbench
\echo 'pgbench -M prepared, 2 clients, one random key per transaction (best of the pgbench rounds)'
\echo '(time/tx vs floor = floor TPS / variant TPS; < 1: faster than the floor)'
WITH b AS (
	SELECT DISTINCT ON (name) name, label, tps, lat_ms, xacts
	  FROM bench.pgbench ORDER BY name, tps DESC
), f AS (SELECT tps AS ftps FROM b WHERE name = 'floor')
SELECT name AS variant, label AS "statement", round(tps::numeric, 0) AS tps,
       round(lat_ms::numeric, 3) AS "latency ms", xacts AS transactions,
       round((ftps / tps)::numeric, 3) AS "time/tx vs floor"
  FROM b, f
 WHERE name NOT LIKE '%\_p'
 ORDER BY array_position(ARRAY['pick', 'floor', 'plpgsql', 'verify', 'verify_scope'], name);

\echo 'pgbench, the key sent by the client as a parameter, as an application does: each transaction'
\echo 'fetches a random key (\\gset) and sends it back in a second statement (best of the rounds)'
\echo '(ratios of TPS, > 1: more transactions per second than the reference)'
WITH b AS (
	SELECT DISTINCT ON (name) name, label, tps, lat_ms
	  FROM bench.pgbench WHERE name LIKE '%\_p' ORDER BY name, tps DESC
), f AS (SELECT tps AS ftps FROM b WHERE name = 'floor_p'),
   e AS (SELECT tps AS etps FROM b WHERE name = 'echo_p')
SELECT name AS variant, label AS "statement", round(tps::numeric, 0) AS tps,
       round(lat_ms::numeric, 3) AS "latency ms",
       round((tps / ftps)::numeric, 3) AS "tps vs floor_p",
       round((tps / etps)::numeric, 3) AS "tps vs echo_p"
  FROM b, f, e
 ORDER BY array_position(ARRAY['echo_p', 'floor_p', 'readme_p', 'target_p'], name);
\endif
