#!/usr/bin/env bash
# bench/prefix_index.sh: apikey_verify's probe through the hash index on
# the hash's first 8 bytes (1.2) against the B-tree 1.1 had, both caches
# off so that every call probes.  A throwaway cluster with
# PREFIX_INDEX_KEYS keys (default 100000) in random order; per round, the
# SQL floor and apikey_verify twice each over every key, with the B-tree
# and then the hash index under the name verification looks up (the other
# one renamed away).  Prints per round and kind the ms of each run.
set -euo pipefail
cd "$(dirname "$0")/.." && export REPO_ROOT=$PWD
NKEYS=${PREFIX_INDEX_KEYS:-100000}
ROUNDS=${PREFIX_INDEX_ROUNDS:-6}
. scripts/build.sh; apikey_build_install >/dev/null
. scripts/cluster.sh
cluster_start "shared_preload_libraries = 'apikey'" "apikey.max_tracked_keys = $((NKEYS * 2))" \
	"shared_buffers = 256MB" "jit = off" "apikey.shared_cache_size = 0" >/dev/null
psql -Xq -v ON_ERROR_STOP=1 -c "CREATE EXTENSION apikey" \
	-c "CREATE TABLE k AS SELECT key FROM generate_series(1, $NKEYS) i, apikey.apikey_create('k' || i, '{jobs:read}') ORDER BY random()" \
	-c "CREATE INDEX keys_hash_prefix_bidx ON apikey.keys (apikey.hash_prefix(secret_hash))" \
	-c "VACUUM ANALYZE" >/dev/null
rename() { psql -Xq -c "ALTER INDEX apikey.$1 RENAME TO tmp_idx" -c "ALTER INDEX apikey.$2 RENAME TO $1" -c "ALTER INDEX apikey.tmp_idx RENAME TO $2"; }
run() {
	psql -XAtq -c "SET jit = off" -c "SET apikey.cache_size = 0" -c "CREATE TEMP TABLE t (kind text, ms float8)" \
		-c "CREATE FUNCTION pg_temp.timeit(kind text) RETURNS void LANGUAGE plpgsql AS \$\$
DECLARE t0 timestamptz; n bigint;
BEGIN
	t0 := clock_timestamp();
	IF kind = 'floor' THEN
		SELECT count(*) FILTER (WHERE (SELECT kk.id FROM apikey.keys kk WHERE kk.secret_hash = sha256(convert_to(k.key, 'UTF8'))) IS NOT NULL) INTO n FROM k;
	ELSE
		SELECT count(*) FILTER (WHERE (apikey.apikey_verify(k.key)).valid) INTO n FROM k;
	END IF;
	INSERT INTO t VALUES (kind, extract(epoch FROM clock_timestamp() - t0) * 1000);
END \$\$" \
		-c "SELECT pg_temp.timeit('floor'), pg_temp.timeit('verify'), pg_temp.timeit('floor'), pg_temp.timeit('verify')" \
		-c "SELECT '$1', string_agg(kind || '=' || round(ms::numeric), ' '), round((sum(ms) FILTER (WHERE kind = 'verify') / sum(ms) FILTER (WHERE kind = 'floor'))::numeric, 3) AS verify_per_floor FROM t" | tail -1
}
for r in $(seq 1 "$ROUNDS"); do
	rename keys_hash_prefix_idx keys_hash_prefix_bidx	# the B-tree in use
	run btree
	rename keys_hash_prefix_idx keys_hash_prefix_bidx	# the hash index back
	run hash
done
