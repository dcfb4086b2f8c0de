#!/usr/bin/env bash
# bench/tracking/run.sh: what usage tracking and the verification log cost
# the verify path, measured in one run on two throwaway clusters built from
# the same binaries: one with apikey in shared_preload_libraries
# (log_verifications = failures, flush every second), one without.
#
#   1. in-server: apikey_verify over a shuffled loop table, tracked against
#      untracked (target >= 0.9), and against a PL/pgSQL verify that
#      UPDATEs last_used_at per call (what products do by hand);
#   2. in-server, two backends at once on different keys against one
#      backend alone: it should scale (no lock two keys share);
#   3. pgbench -M prepared, 2 clients on random keys: tracked against
#      untracked, end to end.
# Rounds alternate the order; medians are reported.  Writes
# bench/results/tracking.txt.
#
#   bench/tracking/run.sh      BENCH_KEYS=20000 BENCH_ROUNDS=5 BENCH_SECONDS=5
set -euo pipefail
BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
REPO_ROOT=$(cd "$BENCH_DIR/.." && pwd)
export REPO_ROOT
cd "$REPO_ROOT"
NKEYS=${BENCH_KEYS:-20000}
ROUNDS=${BENCH_ROUNDS:-5}
SECS=${BENCH_SECONDS:-5}
for v in NKEYS ROUNDS SECS; do
	[[ ${!v} =~ ^[1-9][0-9]*$ ]] || { echo "run.sh: $v must be a positive integer" >&2; exit 2; }
done
say() { printf '== %s\n' "$*" >&2; }

. scripts/build.sh
. scripts/cluster.sh
if [ "${BENCH_SKIP_BUILD:-0}" != 1 ]; then
	say "build and install apikey"
	apikey_build_install
fi

# two clusters: cluster_start keeps only the last one's PG* variables
say "start the tracked and the untracked cluster"
# every key is used within one flush interval here: track them all
cluster_start 'shared_preload_libraries = apikey' 'apikey.flush_interval = 1000' \
	"apikey.max_tracked_keys = $((NKEYS * 2))" 'jit = off' 'shared_buffers = 128MB'
TRACKED=(-h "$PGHOST" -p "$PGPORT")
cluster_start 'jit = off' 'shared_buffers = 128MB'
UNTRACKED=(-h "$PGHOST" -p "$PGPORT")

setup() {
	psql -X -q -v ON_ERROR_STOP=1 "$@" -v nkeys="$NKEYS" -d postgres <<'SQL'
SET client_min_messages = error;
CREATE EXTENSION apikey;
CREATE SCHEMA bench;
CREATE TABLE bench.k (i int PRIMARY KEY, id bigint, key text NOT NULL);
INSERT INTO bench.k SELECT g, c.key_id, c.key
  FROM generate_series(1, :nkeys) g, LATERAL apikey.apikey_create('b' || g, '{jobs:read}') c;
CREATE TABLE bench.loop AS SELECT key FROM bench.k ORDER BY random();
-- two halves of the keys, for two backends at once
CREATE TABLE bench.loop_a AS SELECT key FROM bench.k WHERE i % 2 = 0 ORDER BY random();
CREATE TABLE bench.loop_b AS SELECT key FROM bench.k WHERE i % 2 = 1 ORDER BY random();
-- by hand: look the key up by its hash, check it, and UPDATE its last use
CREATE TABLE bench.usage (id bigint PRIMARY KEY, last_used_at timestamptz, use_count bigint NOT NULL DEFAULT 0);
INSERT INTO bench.usage (id) SELECT id FROM bench.k;
CREATE FUNCTION bench.plpgsql_verify_update(key text) RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
	r record;
BEGIN
	SELECT id, enabled, expires_at INTO r FROM apikey.keys
	 WHERE secret_hash = sha256(convert_to(key, 'UTF8'));
	IF NOT FOUND OR NOT r.enabled OR r.expires_at <= now() THEN
		RETURN false;
	END IF;
	UPDATE bench.usage SET last_used_at = now(), use_count = use_count + 1 WHERE id = r.id;
	RETURN true;
END
$$;
VACUUM ANALYZE;
SQL
}
say "create $NKEYS keys in each"
setup "${TRACKED[@]}"
setup "${UNTRACKED[@]}"

# loop_ms FN [TABLE] PSQL-ARGS...: ms for one in-server loop of FN over
# every key of TABLE (bench.loop)
loop_ms() {
	local fn=$1 tbl=bench.loop
	shift
	case "${1:-}" in bench.*) tbl=$1; shift ;; esac
	psql -X -At -v ON_ERROR_STOP=1 "$@" -d postgres -c "
DO \$\$
DECLARE t0 timestamptz; n bigint;
BEGIN
	t0 := clock_timestamp();
	SELECT count(*) FILTER (WHERE $fn) INTO n FROM $tbl l;
	IF n <> (SELECT count(*) FROM $tbl) THEN RAISE EXCEPTION 'only % valid', n; END IF;
	RAISE NOTICE '%', extract(epoch FROM clock_timestamp() - t0) * 1000;
END
\$\$" 2>&1 | sed -n 's/^NOTICE:  //p'
}
median() { sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }

say "in-server loops, $ROUNDS rounds"
: >/tmp/apikey-bench-tracked; : >/tmp/apikey-bench-untracked; : >/tmp/apikey-bench-plpgsql
loop_ms "(apikey.apikey_verify(l.key)).valid" "${TRACKED[@]}" >/dev/null	# warm up
loop_ms "(apikey.apikey_verify(l.key)).valid" "${UNTRACKED[@]}" >/dev/null
for r in $(seq 1 "$ROUNDS"); do
	if [ $((r % 2)) -eq 1 ]; then
		loop_ms "(apikey.apikey_verify(l.key)).valid" "${TRACKED[@]}" >>/tmp/apikey-bench-tracked
		loop_ms "(apikey.apikey_verify(l.key)).valid" "${UNTRACKED[@]}" >>/tmp/apikey-bench-untracked
	else
		loop_ms "(apikey.apikey_verify(l.key)).valid" "${UNTRACKED[@]}" >>/tmp/apikey-bench-untracked
		loop_ms "(apikey.apikey_verify(l.key)).valid" "${TRACKED[@]}" >>/tmp/apikey-bench-tracked
	fi
	loop_ms "bench.plpgsql_verify_update(l.key)" "${TRACKED[@]}" >>/tmp/apikey-bench-plpgsql
done
t_ms=$(median </tmp/apikey-bench-tracked)
u_ms=$(median </tmp/apikey-bench-untracked)
p_ms=$(median </tmp/apikey-bench-plpgsql)

say "one backend alone against two at once, on different keys, $ROUNDS rounds"
verify="(apikey.apikey_verify(l.key)).valid"
: >/tmp/apikey-bench-one; : >/tmp/apikey-bench-two
for r in $(seq 1 "$ROUNDS"); do
	loop_ms "$verify" bench.loop_a "${TRACKED[@]}" >>/tmp/apikey-bench-one
	loop_ms "$verify" bench.loop_a "${TRACKED[@]}" >/tmp/apikey-bench-a &
	loop_ms "$verify" bench.loop_b "${TRACKED[@]}" >/tmp/apikey-bench-b
	wait
	# both halves done: the slower one's time
	cat /tmp/apikey-bench-a /tmp/apikey-bench-b | sort -g | tail -n 1 >>/tmp/apikey-bench-two
done
one_ms=$(median </tmp/apikey-bench-one)
two_ms=$(median </tmp/apikey-bench-two)

say "pgbench, 2 clients, tracked and untracked, $ROUNDS x $SECS s"
script=$(mktemp)
chmod 644 "$script"
cat >"$script" <<EOF2
\set i random(1, $NKEYS)
SELECT (apikey.apikey_verify(key)).valid FROM bench.k WHERE i = :i;
EOF2
tps() {
	pgbench -n -M prepared -c 2 -j 2 -T "$SECS" -f "$script" "$@" postgres 2>/dev/null |
		sed -n 's/^tps = \([0-9.]*\).*/\1/p'
}
: >/tmp/apikey-bench-tt; : >/tmp/apikey-bench-tu
for r in $(seq 1 "$ROUNDS"); do
	if [ $((r % 2)) -eq 1 ]; then tps "${TRACKED[@]}" >>/tmp/apikey-bench-tt; tps "${UNTRACKED[@]}" >>/tmp/apikey-bench-tu
	else tps "${UNTRACKED[@]}" >>/tmp/apikey-bench-tu; tps "${TRACKED[@]}" >>/tmp/apikey-bench-tt; fi
done
rm -f "$script"
tt=$(median </tmp/apikey-bench-tt)
tu=$(median </tmp/apikey-bench-tu)
usage=$(psql -X -At "${TRACKED[@]}" -d postgres -c "SELECT sum(use_count) FROM apikey.usage")

out="$BENCH_DIR/results/tracking.txt"
{
	echo "# bench/tracking/run.sh, $(date -u +%Y-%m-%dT%H:%MZ), commit $(git rev-parse --short HEAD 2>/dev/null)$(git diff --quiet 2>/dev/null || echo ' + uncommitted changes')"
	echo "# BENCH_KEYS=$NKEYS BENCH_ROUNDS=$ROUNDS BENCH_SECONDS=$SECS; PostgreSQL $(psql -X -At "${TRACKED[@]}" -d postgres -c 'SHOW server_version'), $(nproc) cores, jit off"
	echo "# tracked: shared_preload_libraries = apikey, log_verifications = failures, flush_interval = 1s, max_tracked_keys = $((NKEYS * 2)); untracked: not preloaded"
	echo
	echo "in-server, $NKEYS shuffled keys per loop, median of $ROUNDS rounds (ms per loop; us per call):"
	printf '  apikey_verify, tracked       %8.1f ms  %5.2f us\n' "$t_ms" "$(echo "$t_ms * 1000 / $NKEYS" | bc -l)"
	printf '  apikey_verify, untracked     %8.1f ms  %5.2f us\n' "$u_ms" "$(echo "$u_ms * 1000 / $NKEYS" | bc -l)"
	printf '  PL/pgSQL verify + UPDATE     %8.1f ms  %5.2f us\n' "$p_ms" "$(echo "$p_ms * 1000 / $NKEYS" | bc -l)"
	printf '  tracked / untracked throughput:        %.3f (target >= 0.9)\n' "$(echo "$u_ms / $t_ms" | bc -l)"
	printf '  tracked / PL/pgSQL+UPDATE throughput:  %.2f\n' "$(echo "$p_ms / $t_ms" | bc -l)"
	echo
	echo "in-server, tracked: $((NKEYS / 2)) keys by one backend alone, and two halves by two backends at once (ms, median of $ROUNDS):"
	printf '  one backend    %8.1f ms  %8.0f verifications/s\n' "$one_ms" "$(echo "($NKEYS / 2) * 1000 / $one_ms" | bc -l)"
	printf '  two backends   %8.1f ms  %8.0f verifications/s   (two / one: %.2f)\n' "$two_ms" "$(echo "$NKEYS * 1000 / $two_ms" | bc -l)" "$(echo "($NKEYS * 1000 / $two_ms) / (($NKEYS / 2) * 1000 / $one_ms)" | bc -l)"
	echo
	echo "pgbench -M prepared, 2 clients, random keys, median tps of $ROUNDS x $SECS s:"
	printf '  tracked   %10.0f tps\n' "$tt"
	printf '  untracked %10.0f tps   (tracked / untracked: %.3f)\n' "$tu" "$(echo "$tt / $tu" | bc -l)"
	echo
	echo "usage the worker wrote during the run: $usage verifications counted in apikey.usage"
} >"$out"
rm -f /tmp/apikey-bench-*
cat "$out"
