#!/usr/bin/env bash
# bench/rls/run.sh: what the identity helpers cost in a row-level security
# policy evaluated once per row.  One 100k-row table per policy variant,
# scanned by count(*) as the request's role after the PostgREST hook
# authenticated a key; rounds alternate the variants, and the per-row cost
# is the difference to the same scan without any policy.  Writes
# bench/results/rls.txt (with EXPLAIN of each scan).
#
#   bench/rls/run.sh        BENCH_RLS_ROWS=100000 BENCH_RLS_ROUNDS=7
set -euo pipefail
BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
REPO_ROOT=$(cd "$BENCH_DIR/.." && pwd)
export REPO_ROOT
cd "$REPO_ROOT"
ROWS=${BENCH_RLS_ROWS:-100000}
ROUNDS=${BENCH_RLS_ROUNDS:-7}
[[ $ROWS =~ ^[0-9]+$ && $ROUNDS =~ ^[0-9]+$ ]] || { echo "run.sh: BENCH_RLS_ROWS and BENCH_RLS_ROUNDS are integers" >&2; exit 2; }

. scripts/build.sh
. scripts/cluster.sh
[ "${BENCH_SKIP_BUILD:-0}" = 1 ] || apikey_build_install
cluster_start "jit = off" "max_parallel_workers_per_gather = 0"
out="$REPO_ROOT/bench/results/rls.txt"
mkdir -p "$(dirname "$out")"

{
	echo "# bench/rls/run.sh, $(date -u +%Y-%m-%dT%H:%MZ), BENCH_RLS_ROWS=$ROWS BENCH_RLS_ROUNDS=$ROUNDS"
	echo "# PostgreSQL $(psql -X -Atc 'SHOW server_version'), $(nproc) cores, jit off, no parallel workers"
	PGOPTIONS="-c bench.rows=$ROWS -c bench.rounds=$ROUNDS" psql -X -q -P pager=off -v ON_ERROR_STOP=1 -v rows="$ROWS" <<'SQL'
CREATE EXTENSION apikey;
CREATE ROLE bench_anon NOLOGIN IN ROLE apikey_verifier;
-- half the rows belong to the key's owner
CREATE TABLE data AS SELECT g AS id, CASE WHEN g % 2 = 0 THEN 'acme' ELSE 'globex' END AS tenant, md5(g::text) AS v
  FROM generate_series(1, :rows) g;
CREATE TABLE t_none AS SELECT * FROM data;
CREATE TABLE t_const AS SELECT * FROM data;
CREATE TABLE t_setting AS SELECT * FROM data;
CREATE TABLE t_owner AS SELECT * FROM data;
CREATE TABLE t_owner_scope AS SELECT * FROM data;
ALTER TABLE t_const ENABLE ROW LEVEL SECURITY;
ALTER TABLE t_setting ENABLE ROW LEVEL SECURITY;
ALTER TABLE t_owner ENABLE ROW LEVEL SECURITY;
ALTER TABLE t_owner_scope ENABLE ROW LEVEL SECURITY;
CREATE POLICY p ON t_const USING (tenant = 'acme');
CREATE POLICY p ON t_setting USING (tenant = current_setting('apikey.owner', true));
CREATE POLICY p ON t_owner USING (tenant = apikey.current_owner());
CREATE POLICY p ON t_owner_scope USING (tenant = apikey.current_owner() AND apikey.has_scope('things:read'));
GRANT SELECT ON data, t_none, t_const, t_setting, t_owner, t_owner_scope TO bench_anon;
VACUUM ANALYZE;
SELECT key AS k FROM apikey.apikey_create('bench', '{things:read,other:write}', owner => 'acme') \gset

CREATE FUNCTION scan_ms(tbl text, filter text) RETURNS float8 LANGUAGE plpgsql AS $$
DECLARE
	t0 timestamptz;
	n bigint;
BEGIN
	t0 := clock_timestamp();
	EXECUTE format('SELECT count(*) FROM %I %s', tbl, filter) INTO n;
	IF n <> current_setting('bench.rows')::int / 2 THEN
		RAISE EXCEPTION '% counted % rows', tbl, n;
	END IF;
	RETURN extract(epoch FROM clock_timestamp() - t0) * 1000;
END
$$;
CREATE TEMP TABLE timings (round int, variant text, ms float8);
GRANT ALL ON timings TO bench_anon;

BEGIN;
SELECT set_config('request.headers', json_build_object('x-api-key', :'k')::text, true) IS NOT NULL AS request;
SELECT apikey.postgrest_pre_request();
SET LOCAL ROLE bench_anon;
SELECT apikey.current_owner() AS owner;
\echo '== plans'
EXPLAIN (COSTS OFF) SELECT count(*) FROM t_none WHERE tenant = 'acme';
EXPLAIN (COSTS OFF) SELECT count(*) FROM t_owner;
EXPLAIN (COSTS OFF) SELECT count(*) FROM t_owner_scope;
DO $$
DECLARE
	r int;
	v text;
	variants text[][] := ARRAY[
		ARRAY['none: no policy, WHERE tenant = ''acme''', 't_none', 'WHERE tenant = ''acme'''],
		ARRAY['const: policy tenant = ''acme''', 't_const', ''],
		ARRAY['setting: policy tenant = current_setting(''apikey.owner'')', 't_setting', ''],
		ARRAY['owner: policy tenant = apikey.current_owner()', 't_owner', ''],
		ARRAY['owner+scope: ... AND apikey.has_scope(''things:read'')', 't_owner_scope', '']];
	i int;
BEGIN
	FOR i IN 1 .. array_length(variants, 1) LOOP	-- warm up
		PERFORM scan_ms(variants[i][2], variants[i][3]);
	END LOOP;
	FOR r IN 1 .. current_setting('bench.rounds')::int LOOP
		FOR i IN 1 .. array_length(variants, 1) LOOP
			-- rotate the order each round
			v := variants[1 + (i + r) % array_length(variants, 1)][1];
			INSERT INTO timings SELECT r, v, scan_ms(variants[1 + (i + r) % array_length(variants, 1)][2],
													  variants[1 + (i + r) % array_length(variants, 1)][3]);
		END LOOP;
	END LOOP;
END
$$;
COMMIT;

\echo '== median scan time per variant, and the per-row cost over the scan without a policy'
WITH med AS (
	SELECT variant, percentile_cont(0.5) WITHIN GROUP (ORDER BY ms) AS ms FROM timings GROUP BY variant
)
SELECT m.variant, round(m.ms::numeric, 2) AS median_ms,
	   round(((m.ms - n.ms) * 1e6 / current_setting('bench.rows')::int)::numeric, 1) AS extra_ns_per_row,
	   round((m.ms / n.ms)::numeric, 3) AS ratio_to_none
  FROM med m, med n WHERE n.variant LIKE 'none%' ORDER BY m.ms;
SQL
} >"$out"
cat "$out"
