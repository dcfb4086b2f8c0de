-- bench/summary.sql: the final tables, from bench.timing and bench.pgbench.
\set ON_ERROR_STOP 1
\pset footer off
\pset null ''

\echo 'In-server, one backend, jit off: per-call µs = (time - loop time) / rows'
\echo '(loop row: the loop itself, µs per row, not subtracted)'
SELECT name AS variant, label AS "what each row does",
       round(best::numeric, 1) AS best_ms, round(med::numeric, 1) AS median_ms,
       round(us_best::numeric, 3) AS "µs/call best", round(us_med::numeric, 3) AS "µs/call median",
       all_rows_passed AS "all as expected"
  FROM bench.per_call ORDER BY ord;

\echo 'In-server ratios of per-call cost (< 1: apikey_verify is faster)'
\echo '(best: of the best times; median: of the median times; paired: median over rounds of the'
\echo ' ratio within one round, which is the most robust against a machine whose load drifts)'
SELECT p.label AS ratio,
       round((a.us_best / NULLIF(b.us_best, 0))::numeric, 3) AS best,
       round((a.us_med / NULLIF(b.us_med, 0))::numeric, 3) AS median,
       round(pr.r::numeric, 3) AS paired
  FROM bench.ratio AS p
  JOIN bench.per_call AS a ON a.name = p.a
  JOIN bench.per_call AS b ON b.name = p.b
  LEFT JOIN bench.paired AS pr ON pr.a = p.a AND pr.b = p.b
 ORDER BY p.ord;

\echo 'Bulk creation, INSERT ... SELECT over generate_series (keys per second; apikey_create summed over the sweep''s stages)'
CREATE TEMP VIEW bulk AS
SELECT what, sum(n) AS n, sum(ms) AS ms FROM bench.bulk GROUP BY what;
SELECT b.what, b.n AS keys, round(b.ms::numeric, 0) AS ms,
       round((b.n * 1000 / b.ms)::numeric, 0) AS "keys/s",
       round(((b.ms / b.n) / (p.ms / p.n))::numeric, 2) AS "time per key vs plain INSERT"
  FROM bulk AS b, bulk AS p
 WHERE p.what = 'plain INSERT'
 ORDER BY b.what DESC;

\echo 'Size per million keys (apikey.keys after VACUUM, scaled linearly from this run)'
SELECT pg_size_pretty((pg_table_size('apikey.keys') * 1e6 / n)::bigint) AS "table (incl. TOAST)",
       pg_size_pretty((pg_indexes_size('apikey.keys') * 1e6 / n)::bigint) AS "all indexes",
       pg_size_pretty((pg_relation_size('apikey.keys_hash_prefix_idx') * 1e6 / n)::bigint) AS "hash prefix index",
       pg_size_pretty((pg_relation_size('apikey.keys_secret_hash_idx') * 1e6 / n)::bigint) AS "unique hash index"
  FROM (SELECT count(*)::numeric AS n FROM apikey.keys) AS c;

\if :have_pgbench
\echo 'pgbench, the key sent by the client as a parameter, as an application does: each transaction'
\echo 'fetches a random key (\\gset) and sends it back in a second statement (best of the rounds)'
\echo '(ratios of TPS, > 1: more transactions per second than the reference; zipf variants against floor_zipf_p)'
SELECT clients, name AS variant, label AS "statement", round(tps::numeric, 0) AS tps,
       round(lat_ms::numeric, 3) AS "latency ms",
       round(vs_floor::numeric, 3) AS "tps vs floor",
       round(vs_echo::numeric, 3) AS "tps vs echo_p"
  FROM bench.pgb_ratio ORDER BY clients DESC, ord;

\echo 'Backends sharing a hot set of 50000 keys (hot50k_p): verified-key cache hit rates, apikey.stats scope backend, near the end of the run'
SELECT backends, round(min_rate::numeric, 4) AS "lowest hit rate", round(avg_rate::numeric, 4) AS "average hit rate",
       hits, misses, round(tps::numeric, 0) AS tps
  FROM bench.hitrate ORDER BY id;

\echo 'Sweep: pgbench at each key count, per-transaction latency from pgbench -l (µs)'
SELECT nkeys AS keys, name AS variant, clients, round(tps::numeric, 0) AS tps, p50, p99
  FROM bench.sweep
 ORDER BY nkeys, array_position(ARRAY['echo_p', 'floor_p', 'readme_p', 'readme_p@ref'], name);
\endif

\echo 'The shared verified-key cache at the end of the run (apikey.cache_stats)'
SELECT keys, capacity, pg_size_pretty(bytes) AS memory, variable_bytes FROM apikey.cache_stats();
