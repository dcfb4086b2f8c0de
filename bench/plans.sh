#!/usr/bin/env bash
# bench/plans.sh: what metering costs a verification.  A throwaway
# preloaded cluster with PLANS_KEYS keys (default 10000) of each kind:
# unmetered, metered (credits of their own), and keys whose owner has a
# plan (credits shared by the owner's keys, 4 owners).  Per round, in
# rotated order, apikey_verify over every key of each kind in random order
# (the keys in the shared cache after a warm-up round), in one backend;
# then PLANS_CLIENTS (4) pgbench clients drawing one owner's balance
# through its keys, against the same clients verifying unmetered keys.
# Prints each round and the ratios (best round of each kind): per-call
# cost metered / unmetered (target <= 1/0.9, i.e. >= 0.9x the speed) and
# the owner-drawing clients' tps / the unmetered clients' tps.
set -euo pipefail
cd "$(dirname "$0")/.." && export REPO_ROOT=$PWD
NKEYS=${PLANS_KEYS:-10000}
ROUNDS=${PLANS_ROUNDS:-6}
CLIENTS=${PLANS_CLIENTS:-4}
SECS=${PLANS_SECONDS:-8}
OUT=${PLANS_OUT:-bench/results/plans.txt}
. scripts/build.sh; apikey_build_install >/dev/null
. scripts/cluster.sh
cluster_start "shared_preload_libraries = 'apikey'" "apikey.max_tracked_keys = $((NKEYS * 4))" \
	"shared_buffers = 256MB" "jit = off" "apikey.log_verifications = off" >/dev/null
psql -Xq -v ON_ERROR_STOP=1 -c "CREATE EXTENSION apikey" \
	-c "INSERT INTO apikey.owners (owner, credits) SELECT 'o' || i, 1000000000000 FROM generate_series(1, 4) i" \
	-c "CREATE TABLE k (kind text, key text, r float8)" \
	-c "INSERT INTO k SELECT 'plain', key, random() FROM generate_series(1, $NKEYS) i, apikey.apikey_create('p' || i, '{jobs:read}')" \
	-c "INSERT INTO k SELECT 'metered', key, random() FROM generate_series(1, $NKEYS) i, apikey.apikey_create('m' || i, '{jobs:read}', credits => 1000000000000)" \
	-c "INSERT INTO k SELECT 'owner', key, random() FROM generate_series(1, $NKEYS) i, apikey.apikey_create('o' || i, '{jobs:read}', owner => 'o' || (i % 4 + 1))" \
	-c "CREATE INDEX ON k (kind, r)" -c "VACUUM ANALYZE" >/dev/null
psql -XAtq -c "SET jit = off" -c "SELECT count(*) FILTER (WHERE (apikey.apikey_verify(key)).valid) FROM k" >/dev/null	# warm-up
{
	echo "bench/plans.sh: $NKEYS keys of each kind, $ROUNDS rounds, $(date -u '+%Y-%m-%d %H:%M UTC'), PostgreSQL $(psql -XAtq -c 'SHOW server_version')"
	kinds=(plain metered owner)
	for r in $(seq 1 "$ROUNDS"); do
		line="round $r:"
		for i in 0 1 2; do
			kind=${kinds[$(((i + r) % 3))]}
			ms=$(psql -XAtq -c "SET jit = off" -c "CREATE TEMP TABLE t AS SELECT clock_timestamp() AS t0" \
				-c "SELECT count(*) FILTER (WHERE (apikey.apikey_verify(key)).valid) FROM (SELECT key FROM k WHERE kind = '$kind' ORDER BY r) s" \
				-c "SELECT round((extract(epoch FROM clock_timestamp() - t0) * 1000)::numeric, 1) FROM t" | tail -1)
			line="$line $kind=${ms}ms"
			echo "$r $kind $ms" >>"$CLUSTER_DIR/loops.tsv"
		done
		echo "$line"
	done
	best() { awk -v k="$1" '$2 == k { if (m == "" || $3 < m) m = $3 } END { print m }' "$CLUSTER_DIR/loops.tsv"; }
	p=$(best plain); m=$(best metered); o=$(best owner)
	echo "best: plain ${p} ms, metered ${m} ms, owner plan ${o} ms ($NKEYS calls each)"
	echo "metered key: $(awk -v a="$p" -v b="$m" 'BEGIN { printf "%.2f", a / b }')x the speed of an unmetered VALID verification (target >= 0.9)"
	echo "key of an owner with a plan: $(awk -v a="$p" -v b="$o" 'BEGIN { printf "%.2f", a / b }')x"
	# pgbench: CLIENTS clients, each on one key of owner o1 (all draw its balance) / on unmetered keys
	# one key per client: unmetered ones (kind 0), keys of owner o1 (kind 1)
	psql -XAtq -c "CREATE TABLE pk (kind int, n int, key text)" \
		-c "INSERT INTO pk SELECT 0, row_number() OVER (), key FROM (SELECT key FROM k WHERE kind = 'plain' LIMIT $CLIENTS) s" \
		-c "INSERT INTO pk SELECT 1, row_number() OVER (), v.key FROM (SELECT key FROM k WHERE kind = 'owner') v,
			apikey.apikey_verify(v.key, '{}', NULL, NULL, 0) r WHERE r.owner = 'o1' LIMIT $CLIENTS" >/dev/null
	cat >"$CLUSTER_DIR/draw.pgbench" <<'PGB'
\set n random(1, :clients)
SELECT v.code FROM pk, apikey.apikey_verify(pk.key) v WHERE pk.kind = :kind AND pk.n = :n;
PGB
	for r in 1 2 3; do
		for kind in plain owner; do
			tps=$(pgbench -n -M prepared -c "$CLIENTS" -j 2 -T "$SECS" -D kind=$([ $kind = owner ] && echo 1 || echo 0) -D clients="$CLIENTS" \
				-f "$CLUSTER_DIR/draw.pgbench" postgres 2>/dev/null | awk '/^tps/ { print int($3) }')
			echo "pgbench round $r: $CLIENTS clients, $kind: $tps tps"
			echo "$kind $tps" >>"$CLUSTER_DIR/tps.tsv"
		done
	done
	pt=$(awk '$1 == "plain" && $2 > m { m = $2 } END { print m }' "$CLUSTER_DIR/tps.tsv")
	ot=$(awk '$1 == "owner" && $2 > m { m = $2 } END { print m }' "$CLUSTER_DIR/tps.tsv")
	echo "$CLIENTS clients drawing one owner's balance: $(awk -v a="$ot" -v b="$pt" 'BEGIN { printf "%.2f", a / b }')x the tps of $CLIENTS clients verifying unmetered keys (best of 3: $ot / $pt)"
	echo "owner's balance after: $(psql -XAtq -c "SELECT credits_remaining FROM apikey.stats WHERE scope = 'owner' AND name = 'o1'") of 1000000000000"
} | tee "$OUT"
