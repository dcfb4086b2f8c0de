-- bench/results_md.sql: the Markdown body of bench/RESULTS.md, from the
-- bench.* tables of this run (run.sh writes the header and the profile).
-- psql -At; variables: have_pgbench (true/false), sweep_max (largest key
-- count), sweep_min (smallest).
\set ON_ERROR_STOP 1
\pset footer off

CREATE TEMP TABLE target (ord int, what text, want text, got float8, ok boolean, unit text DEFAULT '×');
INSERT INTO target (ord, what, want, got, ok)
SELECT 1, 'In-server, a hot set of 10000 keys in random order: throughput vs the SQL floor over the same keys', '≥ 2.5×', 1 / NULLIF(r, 0), 1 / NULLIF(r, 0) >= 2.5
  FROM bench.paired WHERE a = 'verify_hot' AND b = 'floor_hot'
UNION ALL
SELECT 2, 'In-server, keys never verified before: throughput vs the SQL floor over the same keys', '≥ 1.0×', 1 / NULLIF(r, 0), 1 / NULLIF(r, 0) >= 1.0
  FROM bench.paired WHERE a = 'verify_cold' AND b = 'floor_cold'
UNION ALL
SELECT 9, 'A malformed key, times cheaper than a NOT_FOUND', '≥ 3×', r, r >= 3
  FROM bench.paired WHERE a = 'not_found' AND b = 'malformed';
\if :have_pgbench
INSERT INTO target (ord, what, want, got, ok)
SELECT x.ord1 * 10 + c.clients,
       format(x.what, c.clients), x.want, r.tps / ref.tps, r.tps / ref.tps >= x.bound
  FROM (SELECT DISTINCT clients FROM bench.pgb) AS c
  CROSS JOIN (VALUES (3, 'floor_p', 'End to end, README form (readme_p), %s client(s), every key of the main count at random after a warm pass: TPS vs floor_p', '≥ 1.0×', 1.0),
                     (4, 'echo_p', 'End to end, README form, %s client(s): TPS vs SELECT $1 (echo_p)', '≥ 0.8×', 0.8),
                     (5, 'plpgsql_p', 'End to end, README form, %s client(s): TPS vs the PL/pgSQL + pgcrypto peer (plpgsql_p)', '≥ 1.5×', 1.5))
       AS x(ord1, ref, what, want, bound)
  JOIN bench.pgb AS r ON r.clients = c.clients AND r.name = 'readme_p'
  JOIN bench.pgb AS ref ON ref.clients = c.clients AND ref.name = x.ref
UNION ALL
SELECT 60, format('%s backends sharing a hot set of 50000 keys (hot50k_p): the lowest backend''s verified-key cache hit rate (apikey.stats, scope backend)', backends), '≥ 95%',
       min_rate, min_rate >= 0.95
  FROM bench.hitrate
UNION ALL
SELECT 70, format('p99 latency of readme_p at %s keys vs at %s keys (readme_p@ref: the reference cluster, measured right after)', :sweep_max, :sweep_min), '≤ 1.5×',
       hi.p99::float8 / NULLIF(lo.p99, 0), hi.p99::float8 / NULLIF(lo.p99, 0) <= 1.5
  FROM bench.sweep AS hi, bench.sweep AS lo
 WHERE hi.name = 'readme_p' AND lo.name = 'readme_p@ref'
   AND hi.nkeys = :sweep_max AND lo.nkeys = :sweep_max;
UPDATE target SET unit = '%', got = got * 100 WHERE ord = 60;
\endif

\qecho '## Targets of issue 18'
\qecho
\qecho '| target | wanted | measured | met |'
\qecho '|---|---|---|---|'
SELECT format('| %s | %s | %s%s | %s |', what, want, coalesce(round(got::numeric, 2)::text, '?'), unit, CASE WHEN ok THEN 'yes' ELSE '**no**' END)
  FROM target ORDER BY ord;
\qecho
\qecho 'In-server figures are paired ratios (the median over rounds of the ratio within one round); pgbench figures are the best TPS over the rounds of each variant, with the variant order rotated between rounds.'
\qecho

\qecho '## In-server, one backend, jit off'
\qecho
\qecho '| variant | what each row does | µs/call (best) | µs/call (median) |'
\qecho '|---|---|---|---|'
SELECT format('| %s | %s | %s | %s |', name, replace(label, '|', '\|'),
              round(us_best::numeric, 3), round(us_med::numeric, 3))
  FROM bench.per_call
 WHERE name <> 'loop'
 ORDER BY ord;
\qecho
\qecho '| ratio of per-call cost (< 1: the first is cheaper) | paired |'
\qecho '|---|---|'
SELECT format('| %s | %s |', replace(r.label, '|', '\|'), round(p.r::numeric, 3))
  FROM bench.ratio AS r JOIN bench.paired AS p ON p.a = r.a AND p.b = r.b
 ORDER BY r.ord;
\qecho

\if :have_pgbench
\qecho '## End to end: pgbench -M prepared, the key sent as a parameter'
\qecho
\qecho 'Each transaction fetches a random key (`\\gset`) and sends it back in a second statement, as an application does; the first statement is the same in every variant. Zipf variants draw keys with `random_zipfian(1, n, 1.1)` and are compared with `floor_zipf_p`. `readme_p@flush60s` is the README form with `apikey.flush_interval = 60s`: the difference to `readme_p` is what writing every used key''s usage each second costs on this machine.'
\qecho
\qecho '| clients | variant | TPS | latency ms | TPS vs floor | TPS vs echo_p |'
\qecho '|---|---|---|---|---|---|'
SELECT format('| %s | %s | %s | %s | %s | %s |', clients, name, round(tps::numeric, 0),
              round(lat_ms::numeric, 3), round(vs_floor::numeric, 3), round(vs_echo::numeric, 3))
  FROM bench.pgb_ratio ORDER BY clients DESC, ord;
\qecho
\qecho '## Against key count'
\qecho
\qecho '![throughput and latency against key count](results/sweep.svg)'
\qecho
\qecho '`readme_p@ref` is readme_p on the reference cluster, configured alike but keeping the smallest key count, run right after the main cluster''s variants at the key count of its row: the p99 target compares with it, so both are measured in the same minutes.'
\qecho
\qecho '| keys | variant | TPS | p50 µs | p99 µs |'
\qecho '|---|---|---|---|---|'
SELECT format('| %s | %s | %s | %s | %s |', nkeys, name, round(tps::numeric, 0), p50, p99)
  FROM bench.sweep ORDER BY nkeys, array_position(ARRAY['echo_p', 'floor_p', 'readme_p', 'readme_p@ref'], name);
\qecho
\endif

\qecho '## Bulk creation and size'
\qecho
\qecho '| | keys | keys/s | time per key vs plain INSERT |'
\qecho '|---|---|---|---|'
SELECT format('| %s | %s | %s | %s |', b.what, b.n, round((b.n * 1000 / b.ms)::numeric, 0), round(((b.ms / b.n) / (p.ms / p.n))::numeric, 2))
  FROM (SELECT what, sum(n) AS n, sum(ms) AS ms FROM bench.bulk GROUP BY what) AS b,
       (SELECT sum(n) AS n, sum(ms) AS ms FROM bench.bulk WHERE what = 'plain INSERT') AS p
 ORDER BY b.what DESC;
\qecho
SELECT format('Per million keys (apikey.keys with %s keys, after VACUUM): table %s, all indexes %s (hash prefix index %s, unique hash index %s).',
              n, pg_size_pretty((pg_table_size('apikey.keys') * 1e6 / n)::bigint),
              pg_size_pretty((pg_indexes_size('apikey.keys') * 1e6 / n)::bigint),
              pg_size_pretty((pg_relation_size('apikey.keys_hash_prefix_idx') * 1e6 / n)::bigint),
              pg_size_pretty((pg_relation_size('apikey.keys_secret_hash_idx') * 1e6 / n)::bigint))
  FROM (SELECT count(*)::numeric AS n FROM apikey.keys) AS c;
\qecho
