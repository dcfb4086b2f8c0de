#!/usr/bin/env bash
# bench/flush_p99.sh: what the worker's flush does to the README form's
# tail latency when most verifications are a key's first use (the sweep's
# p99 at 1M keys, bench/RESULTS.md).  On a throwaway cluster with
# FLUSH_P99_KEYS keys (default 1000000), pgbench -M prepared with 2 clients
# runs the README form over keys drawn uniformly at random, 8 s per run,
# alternating apikey.flush_interval = 1s and 60s for FLUSH_P99_ROUNDS
# rounds (default 2), and prints p50 and p99 per run from pgbench -l.
set -euo pipefail
cd "$(dirname "$0")/.." && export REPO_ROOT=$PWD
NKEYS=${FLUSH_P99_KEYS:-1000000}
ROUNDS=${FLUSH_P99_ROUNDS:-2}
. scripts/build.sh; apikey_build_install >/dev/null
. scripts/cluster.sh
cluster_start "shared_preload_libraries = 'apikey'" "apikey.max_tracked_keys = $((NKEYS * 2))" \
	"shared_buffers = 256MB" "jit = off" >/dev/null
W=$(mktemp -d); chmod 777 "$W"; on_exit "rm -rf '$W'"
psql -Xq -v ON_ERROR_STOP=1 -c "CREATE EXTENSION apikey" \
	-c "CREATE TABLE k (i int PRIMARY KEY, key text)" \
	-c "INSERT INTO k SELECT i, (apikey.apikey_create('k' || i, '{jobs:read}')).key FROM generate_series(1, $NKEYS) i" \
	-c "VACUUM ANALYZE" -c "CHECKPOINT" >/dev/null
cat >"$W/r.pgbench" <<PG
\set i random(1, $NKEYS)
SELECT key FROM k WHERE i = :i \gset
SELECT valid, key_id, scopes FROM apikey.apikey_verify(CAST(:key AS text), CAST(:scopes AS text[]));
PG
for round in $(seq 1 "$ROUNDS"); do
	for ms in 1000 60000; do
		psql -Xq -c "ALTER SYSTEM SET apikey.flush_interval = $ms" -c "SELECT pg_reload_conf()" >/dev/null
		sleep 2
		tps=$(cd "$W" && "$($PG_CONFIG --bindir)/pgbench" -n -M prepared -c 2 -j 2 -T 8 -l --log-prefix=log \
			-D scopes='{}' -f r.pgbench postgres 2>&1 | sed -n 's/^tps = \([0-9]*\).*/\1/p')
		awk '{print $3}' "$W"/log.* | sort -n | awk -v r="$round" -v ms="$ms" -v tps="$tps" \
			'{a[NR] = $1} END {printf "round %s flush_interval %5s ms: tps %s, p50 %s us, p99 %s us\n", r, ms, tps, a[int(NR * 0.5)], a[int(NR * 0.99)]}'
		rm -f "$W"/log.*
	done
done
