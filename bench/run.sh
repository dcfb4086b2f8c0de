#!/usr/bin/env bash
# bench/run.sh: benchmark apikey_verify against a plain-SQL floor and a
# hand-written PL/pgSQL verify, in-server and with pgbench, on a throwaway
# cluster, at growing key counts.  Writes bench/RESULTS.md (the targets of
# issue 18, met or not), bench/results/sweep.svg (throughput and p50/p99
# latency against key count) and bench/results/latest.txt (every table, and
# the EXPLAIN output of every in-server query).  See bench/README.md.
#
#   bench/run.sh                 defaults: 10k, 100k, 1M keys; about 13 min
#   BENCH_10M=1 bench/run.sh     also 10M keys (about 30 min more; see
#                                BENCH_SHARED_BUFFERS, BENCH_CREATE_SESSIONS)
#
# Environment:
#   BENCH_KEYS=100000            key count of the in-server loops and the main
#                                pgbench runs
#   BENCH_SWEEP="10000 100000 1000000"  key counts of the sweep (BENCH_KEYS is
#                                added if missing); keys are added, never
#                                removed, so the counts are taken in order
#   BENCH_10M=0                  1: add 10000000 to the sweep
#   BENCH_SHARED_BUFFERS=256MB   shared_buffers of both clusters (6GB with
#                                BENCH_10M=1: room for the keys' table and
#                                indexes, as a DBA would size it)
#   BENCH_CREATE_SESSIONS=1      sessions creating keys at once (2 with
#                                BENCH_10M=1); with more than 1, bulk
#                                creation is reported on its own row
#   BENCH_LOOP=100000            rows of the shuffled in-server loop table
#   BENCH_ROUNDS=5               in-server rounds (best and median reported)
#   BENCH_SECONDS=10             seconds per main pgbench variant (0: skip
#                                pgbench, the sweep's too)
#   BENCH_SWEEP_SECONDS=5        seconds per sweep pgbench variant
#   BENCH_PGBENCH_ROUNDS=2       pgbench rounds, variant order rotated (best TPS
#                                reported)
#   BENCH_CLIENTS=2              pgbench clients (and threads); the README
#                                form and its references also run with 1
#   BENCH_PGBENCH_MODE=prepared  pgbench -M (prepared or extended; the
#                                scripts pass scopes as a parameter)
#   BENCH_PERF=auto              1: perf-profile in-server loops into
#                                bench/results/perf-<variant>.txt; auto: if
#                                perf is installed; 0: never
#   BENCH_PERF_VARIANTS="verify verify_hot floor"  which loops to profile
#   BENCH_PERF_SECONDS=5         length of each profile
#   BENCH_PERF_KEEP=             a directory to keep the perf.data files in
#   BENCH_SKIP_BUILD=0           1: do not build/install the extension first
#   BENCH_RESULTS=bench/results  where latest.txt, sweep.* and perf-*.txt go;
#                                RESULTS.md goes to its parent
#   BENCH_FEATURES=1             1: the 1.1 features on, as production runs
#                                them (apikey preloaded: usage tracking,
#                                log_verifications = failures); 0: not preloaded
#
# Idempotent: every run starts from a fresh cluster, which is stopped and
# removed on exit.  Works as root (the server runs as "postgres") or as a
# normal user (scripts/build.sh stages a private install).
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$BENCH_DIR/.." && pwd)
export REPO_ROOT
cd "$REPO_ROOT"

NKEYS=${BENCH_KEYS:-100000}
NLOOP=${BENCH_LOOP:-100000}
ROUNDS=${BENCH_ROUNDS:-5}
SECONDS_EACH=${BENCH_SECONDS:-10}
SWEEP_SECONDS=${BENCH_SWEEP_SECONDS:-5}
PGB_ROUNDS=${BENCH_PGBENCH_ROUNDS:-2}
CLIENTS=${BENCH_CLIENTS:-2}
PGB_MODE=${BENCH_PGBENCH_MODE:-prepared}
PERF=${BENCH_PERF:-auto}
PERF_SECONDS=${BENCH_PERF_SECONDS:-5}
FEATURES=${BENCH_FEATURES:-1}
SCOPES='{jobs:read}'
SWEEP_LIST=${BENCH_SWEEP:-10000 100000 1000000}
SHARED_BUFFERS=${BENCH_SHARED_BUFFERS:-256MB}
CREATE_SESSIONS=${BENCH_CREATE_SESSIONS:-1}
if [ "${BENCH_10M:-0}" = 1 ]; then
	SWEEP_LIST="$SWEEP_LIST 10000000"
	SHARED_BUFFERS=${BENCH_SHARED_BUFFERS:-6GB}
	CREATE_SESSIONS=${BENCH_CREATE_SESSIONS:-2}
fi

for v in NKEYS NLOOP ROUNDS SECONDS_EACH SWEEP_SECONDS PGB_ROUNDS CLIENTS PERF_SECONDS CREATE_SESSIONS; do
	if ! [[ ${!v} =~ ^[0-9]+$ ]]; then
		echo "run.sh: $v must be a non-negative integer" >&2
		exit 2
	fi
done
if [ "$NKEYS" -lt 1 ] || [ "$NLOOP" -lt 1 ] || [ "$ROUNDS" -lt 1 ] || [ "$CREATE_SESSIONS" -lt 1 ]; then
	echo "run.sh: BENCH_KEYS, BENCH_LOOP, BENCH_ROUNDS and BENCH_CREATE_SESSIONS must be at least 1" >&2
	exit 2
fi
if ! [[ $SHARED_BUFFERS =~ ^[0-9]+(kB|MB|GB)$ ]]; then
	echo "run.sh: BENCH_SHARED_BUFFERS must be a size such as 256MB or 6GB" >&2
	exit 2
fi
for n in $SWEEP_LIST; do
	if ! [[ $n =~ ^[0-9]+$ ]] || [ "$n" -lt 1 ]; then
		echo "run.sh: BENCH_SWEEP must list positive integers" >&2
		exit 2
	fi
done
# the sweep's key counts, ascending, with the main one
mapfile -t SIZES < <(printf '%s\n' $SWEEP_LIST "$NKEYS" | sort -n -u)
MAXKEYS=${SIZES[${#SIZES[@]} - 1]}
case "$PERF" in
	auto) command -v perf >/dev/null 2>&1 && PERF=1 || PERF=0 ;;
	0 | 1) ;;
	*) echo "run.sh: BENCH_PERF must be 0, 1 or auto" >&2; exit 2 ;;
esac
case "$FEATURES" in
	0 | 1) ;;
	*) echo "run.sh: BENCH_FEATURES must be 0 or 1" >&2; exit 2 ;;
esac
case "$PGB_MODE" in
	prepared | extended) ;;
	*) echo "run.sh: BENCH_PGBENCH_MODE must be prepared or extended" >&2; exit 2 ;;
esac

RESULTS=${BENCH_RESULTS:-$BENCH_DIR/results}
mkdir -p "$RESULTS"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/apikey-bench.XXXXXX")
chmod 755 "$WORK"
PERF_PSQL_PID=
REF_DIR=
cleanup() {
	if [ -n "$PERF_PSQL_PID" ]; then
		kill "$PERF_PSQL_PID" 2>/dev/null || true
	fi
	if declare -F cluster_stop >/dev/null; then
		cluster_stop
		[ -n "$REF_DIR" ] && (CLUSTER_DIR=$REF_DIR && cluster_stop)
	fi
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'cleanup; exit 130' INT TERM

say() { printf '== %s\n' "$*" >&2; }

# ---------------------------------------------------------------- build
if [ "${BENCH_SKIP_BUILD:-0}" != 1 ]; then
	say "build and install apikey"
	. scripts/build.sh
	apikey_build_install
fi

# -------------------------------------------------------------- cluster
. scripts/cluster.sh
# cluster_start installs its own traps (cluster_stop); put ours back, which
# also calls cluster_stop
say "start a throwaway cluster, and a reference cluster that keeps ${SIZES[0]} keys"
SERVER_CONF=("shared_buffers = $SHARED_BUFFERS" 'jit = off')
if [ "$FEATURES" = 1 ]; then
	# room for every key, so no use is dropped for want of an entry, within
	# the setting's bounds (1000 .. 10000000, its maximum)
	TRACKED=$((MAXKEYS * 2 > 1000 ? MAXKEYS * 2 : 1000))
	TRACKED=$((TRACKED > 10000000 ? 10000000 : TRACKED))
	SERVER_CONF+=('shared_preload_libraries = apikey'
		"apikey.max_tracked_keys = $TRACKED"
		'apikey.log_verifications = failures' 'apikey.flush_interval = 1000')
fi
# The reference cluster, configured alike, keeps the sweep's smallest key
# count: each sweep point also runs readme_p there, right after the main
# cluster's, so that latency at N keys is compared with latency at few
# keys measured in the same minutes, not at the start of the run.
cluster_start "${SERVER_CONF[@]}"
REF_DIR=$CLUSTER_DIR
REF_PORT=$PGPORT
CLUSTER_DIR=
cluster_start "${SERVER_CONF[@]}"
trap cleanup EXIT
trap 'cleanup; exit 130' INT TERM

PSQL=(psql -X -q -v ON_ERROR_STOP=1 -d postgres)
PSQL_REF=(psql -X -q -v ON_ERROR_STOP=1 -h "$REF_DIR" -p "$REF_PORT" -d postgres)

# ---------------------------------------------------------------- setup
say "bench schema, PL/pgSQL verifies, variants"
"${PSQL[@]}" -f "$BENCH_DIR/setup.sql" >"$WORK/setup.out" 2>&1 || { cat "$WORK/setup.out" >&2; exit 1; }
mapfile -t VARIANTS < <("${PSQL[@]}" -At -c "SELECT name FROM bench.variant ORDER BY ord")

# settle PSQL...: VACUUM ANALYZE what key creation changed, CHECKPOINT,
# wait (up to 10 min) until no autovacuum worker runs, and read the keys'
# table and indexes into shared_buffers, so that the measurements that
# follow do not share the machine with the writing of the new keys
settle() {
	local i
	"$@" -c "VACUUM ANALYZE apikey.keys" -c "VACUUM ANALYZE apikey.audit" \
		-c "VACUUM ANALYZE bench.k" -c "VACUUM ANALYZE bench.usage" -c "CHECKPOINT"
	for i in $(seq 1 600); do
		[ "$("$@" -At -c "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'autovacuum worker'")" = 0 ] && break
		sleep 1
	done
	"$@" -At -c "SELECT sum(pg_prewarm(c)) FROM unnest(ARRAY['apikey.keys_hash_prefix_idx', 'apikey.keys_secret_hash_idx',
		'apikey.keys', 'bench.k_pkey', 'bench.k']::regclass[]) AS c" >/dev/null
}

# add_keys N PSQL...: create keys until there are N through the psql
# command given (in CREATE_SESSIONS sessions at once when there are enough
# to create), timed by the clock here, then settle
add_keys() {
	local target=$1 have sessions=1 what=apikey_create per lo hi s t0 t1 pids=()
	shift
	say "create keys up to $target"
	have=$("$@" -At -c "SELECT count(*) FROM bench.k")
	if [ "$target" -gt "$have" ]; then
		if [ "$CREATE_SESSIONS" -gt 1 ] && [ $((target - have)) -ge $((CREATE_SESSIONS * 10000)) ]; then
			sessions=$CREATE_SESSIONS
			what="apikey_create, $sessions sessions"
		fi
		per=$(((target - have + sessions - 1) / sessions))
		t0=$(date +%s%N)
		for s in $(seq 0 $((sessions - 1))); do
			lo=$((have + 1 + s * per))
			hi=$((lo + per - 1 > target ? target : lo + per - 1))
			"$@" -c "SET jit = off" -c "SELECT bench.add_key_range($lo, $hi)" >/dev/null &
			pids+=($!)
		done
		for s in "${pids[@]}"; do
			wait "$s" || { echo "run.sh: key creation failed" >&2; exit 1; }
		done
		t1=$(date +%s%N)
		"$@" -c "INSERT INTO bench.bulk VALUES ('$what', $((target - have)), $(((t1 - t0) / 1000))e-3)" \
			-c "SELECT bench.usage_rows()" >/dev/null
	fi
	settle "$@"
}

say "reference cluster: bench schema"
"${PSQL_REF[@]}" -f "$BENCH_DIR/setup.sql" >"$WORK/setup-ref.out" 2>&1 || { cat "$WORK/setup-ref.out" >&2; exit 1; }
add_keys "${SIZES[0]}" "${PSQL_REF[@]}"

# ---------------------------------------------------------------- perf
# perf_variant NAME: profile one in-server variant's loop in a fresh backend
perf_variant() {
	local v=$1 bpid= out="$RESULTS/perf-$1.txt"
	PGAPPNAME=apikey-bench-perf "${PSQL[@]}" -At -c "SET jit = off" \
		-c "SELECT bench.time_variant('$v', 0) FROM generate_series(1, 100000)" \
		>/dev/null 2>&1 &
	PERF_PSQL_PID=$!
	for _ in $(seq 1 50); do
		bpid=$("${PSQL[@]}" -At -c "SELECT pid FROM pg_stat_activity WHERE application_name = 'apikey-bench-perf' AND state = 'active'")
		[ -n "$bpid" ] && break
		sleep 0.1
	done
	if [ -z "$bpid" ]; then
		echo "perf: could not find the profiled backend for $v; skipped" >&2
	else
		sleep 1	# past plpgsql's first-call setup
		perf record -q -g -o "$WORK/perf-$v.data" -p "$bpid" -- sleep "$PERF_SECONDS" >/dev/null 2>&1 || true
		"${PSQL[@]}" -c "SELECT pg_cancel_backend($bpid)" >/dev/null 2>&1 || true
		{
			echo "perf profile of the in-server loop \"$v\": $("${PSQL[@]}" -At -c "SELECT label FROM bench.variant WHERE name = '$v'")"
			echo "(backend $bpid, ${PERF_SECONDS}s, perf record -g; user-space samples only unless"
			echo " perf_event_paranoid allows kernel ones; hex addresses are static functions"
			echo " of the stripped postgres binary)"
			echo
			echo "== Self time by symbol (perf report --no-children -g none), top 50"
			perf report -i "$WORK/perf-$v.data" --no-children --stdio -g none --percent-limit 0.2 2>/dev/null |
				grep -v '^#' | grep -v '^$' | head -50
			echo
			echo "== Self time by shared object"
			perf report -i "$WORK/perf-$v.data" --no-children --stdio -g none --sort dso 2>/dev/null |
				grep -v '^#' | grep -v '^$'
			echo
			echo "== Inclusive time of named functions (perf report --children -g none), >= 0.3%"
			perf report -i "$WORK/perf-$v.data" --children --stdio -g none --percent-limit 0.3 2>/dev/null |
				grep -v '^#' | grep -v '^$' | grep -vE '\] 0x[0-9a-f]+ *$' | head -120
			echo
			echo "== Call graph (perf report --no-children --stdio), first 400 lines"
			perf report -i "$WORK/perf-$v.data" --no-children --stdio 2>/dev/null | grep -v '^$' | head -400
		} >"$out" || true
		echo "perf report for $v written to $out" >&2
		if [ -n "${BENCH_PERF_KEEP:-}" ]; then
			mkdir -p "$BENCH_PERF_KEEP" && cp "$WORK/perf-$v.data" "$BENCH_PERF_KEEP/"
		fi
	fi
	kill "$PERF_PSQL_PID" 2>/dev/null || true
	wait "$PERF_PSQL_PID" 2>/dev/null || true
	PERF_PSQL_PID=
}

# -------------------------------------------------------------- pgbench
# pgbench_run NAME CLIENTS SECONDS ROUND [LOGPREFIX]: one pgbench run into
# bench.pgbench (and, with LOGPREFIX, per-transaction latencies into
# bench.lat)
pgbench_run() {
	local v=$1 c=$2 secs=$3 r=$4 logp=${5:-} out="$WORK/pgbench-$1-$2-$4.out" tps lat xacts failed label nkeys
	local logargs=() conn=() npick name="$v${PGB_NAME_SUFFIX:-}"
	nkeys=$("${PSQL[@]}" -At -c "SELECT count(*) FROM bench.k")
	npick=$nkeys
	# PGB_REF=1: run on the reference cluster, recorded beside this key count
	if [ "${PGB_REF:-0}" = 1 ]; then
		conn=(-h "$REF_DIR" -p "$REF_PORT")
		npick=$("${PSQL_REF[@]}" -At -c "SELECT count(*) FROM bench.k")
	fi
	if [ -n "$logp" ]; then
		rm -f "$logp".*
		logargs=(-l --log-prefix="$logp")
	fi
	pgbench "${conn[@]}" -n -M "$PGB_MODE" -c "$c" -j "$c" -T "$secs" "${logargs[@]}" \
		-D n="$npick" -D scopes="$SCOPES" \
		-f "$BENCH_DIR/pgbench/$v.pgbench" postgres >"$out" 2>&1 || {
		cat "$out" >&2
		exit 1
	}
	tps=$(sed -n 's/^tps = \([0-9.]*\) (without initial connection time).*/\1/p' "$out")
	lat=$(sed -n 's/^latency average = \([0-9.]*\) ms.*/\1/p' "$out")
	xacts=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$out")
	failed=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' "$out")
	if [ -z "$tps" ] || [ -z "$lat" ] || [ -z "$xacts" ] || [ "${failed:-0}" != 0 ]; then
		cat "$out" >&2
		echo "run.sh: pgbench variant $v failed" >&2
		exit 1
	fi
	label=$(sed -n '1s/^-- [a-z_]*: //p' "$BENCH_DIR/pgbench/$v.pgbench")
	printf '   %-8s keys %-9s %-17s %d client(s) tps %10s  latency %s ms\n' "round $r" "$nkeys" "$name" "$c" "$tps" "$lat" >&2
	"${PSQL[@]}" -c "INSERT INTO bench.pgbench VALUES ('$name', \$l\$$label\$l\$, $r, $tps, $lat, $xacts, $c, $nkeys)"
	if [ -n "$logp" ]; then
		# pgbench -l: client, transaction, latency in µs, script, epoch, µs
		cat "$logp".* | awk -v v="$name" -v n="$nkeys" -v c="$c" '{ print n "\t" v "\t" c "\t" $3 }' |
			"${PSQL[@]}" -c "\\copy bench.lat FROM STDIN"
		rm -f "$logp".*
	fi
}

# hitrate_run SECONDS: HOT_CLIENTS pgbench clients verifying keys of a hot
# set of 50000 (hot50k_p); near the end of the run, each of their
# backends' verified-key cache hit rate from apikey.stats (scope backend),
# into bench.hitrate
HOT_CLIENTS=${BENCH_HOT_CLIENTS:-8}
hitrate_run() {
	local secs=$(($1 > 3 ? $1 : 3)) out="$WORK/pgbench-hot50k.out" pid tps
	pgbench -n -M "$PGB_MODE" -c "$HOT_CLIENTS" -j 2 -T "$secs" \
		-D n="$("${PSQL[@]}" -At -c "SELECT count(*) FROM bench.k")" -D scopes="$SCOPES" \
		-f "$BENCH_DIR/pgbench/hot50k_p.pgbench" postgres >"$out" 2>&1 &
	pid=$!
	sleep $((secs - 1))
	"${PSQL[@]}" -c "INSERT INTO bench.hitrate (backends, min_rate, avg_rate, hits, misses)
SELECT count(*), min(s.cache_hits::float8 / NULLIF(s.cache_hits + s.cache_misses, 0)),
       avg(s.cache_hits::float8 / NULLIF(s.cache_hits + s.cache_misses, 0)),
       sum(s.cache_hits), sum(s.cache_misses)
  FROM apikey.stats AS s JOIN pg_stat_activity AS a ON a.pid = s.pid
 WHERE s.scope = 'backend' AND a.application_name = 'pgbench'"
	wait "$pid" || { cat "$out" >&2; echo "run.sh: pgbench variant hot50k_p failed" >&2; exit 1; }
	tps=$(sed -n 's/^tps = \([0-9.]*\) (without initial connection time).*/\1/p' "$out")
	"${PSQL[@]}" -c "UPDATE bench.hitrate SET tps = $tps WHERE tps IS NULL"
	"${PSQL[@]}" -At -c "SELECT format('   hot50k_p  %s backends, hit rate min %s avg %s, tps %s', backends, round(min_rate::numeric, 4), round(avg_rate::numeric, 4), round(tps)) FROM bench.hitrate ORDER BY id DESC LIMIT 1" >&2
}

# main_phase: the in-server loops, profiles and the main pgbench runs, at
# BENCH_KEYS keys
main_phase() {
say "build the shuffled loop table of $NLOOP rows"
"${PSQL[@]}" -v nloop="$NLOOP" -v rounds="$ROUNDS" -f "$BENCH_DIR/loop.sql" >"$WORK/loop.out" 2>&1 ||
	{ cat "$WORK/loop.out" >&2; exit 1; }
cat "$WORK/loop.out" >&2

# -------------------------------------------------------------- explain
# Every in-server query, as planned; the floor must be a SubPlan with an
# Index Scan on keys_secret_hash_idx, and apikey_verify must appear once.
say "EXPLAIN every in-server query"
PLAN_PROBLEMS=()
: >"$WORK/explain.txt"
for v in "${VARIANTS[@]}"; do
	q=$("${PSQL[@]}" -At -c "SELECT query FROM bench.variant WHERE name = '$v'")
	{
		echo "-- $v: $q"
		"${PSQL[@]}" -At -c "SET jit = off" -c "EXPLAIN (VERBOSE, COSTS OFF) $q"
		echo
	} >"$WORK/explain-$v.txt"
	cat "$WORK/explain-$v.txt" >>"$WORK/explain.txt"
done
if ! grep -q 'SubPlan' "$WORK/explain-floor.txt" ||
	! grep -q 'Index Scan using keys_secret_hash_idx' "$WORK/explain-floor.txt"; then
	PLAN_PROBLEMS+=("floor is not a SubPlan with an Index Scan on keys_secret_hash_idx")
fi
if grep -qiE 'Hash (Semi |Anti )?Join|Hash Cond' "$WORK/explain-floor.txt"; then
	PLAN_PROBLEMS+=("floor was turned into a hash join")
fi
for v in verify verify_cold verify_scope verify_hot malformed not_found; do
	# skip the "-- name: query" header line, count calls in the plan proper
	n=$(tail -n +2 "$WORK/explain-$v.txt" | grep -o 'apikey_verify(' | wc -l)
	if [ "$n" -ne 1 ]; then
		PLAN_PROBLEMS+=("$v: apikey_verify appears $n times in the plan, expected once")
	fi
done
for v in plpgsql plpgsql_update; do
	n=$(tail -n +2 "$WORK/explain-$v.txt" | grep -oE 'plpgsql_verify(_update)?\(' | wc -l)
	if [ "$n" -ne 1 ]; then
		PLAN_PROBLEMS+=("$v: plpgsql_verify appears $n times in the plan, expected once")
	fi
done
# one EXPLAIN ANALYZE (no timing) of the floor: the index scan runs once per row
{
	echo "-- floor, EXPLAIN (ANALYZE, TIMING OFF): the Index Scan runs once per loop row"
	"${PSQL[@]}" -At -c "SET jit = off" \
		-c "EXPLAIN (ANALYZE, VERBOSE, COSTS OFF, TIMING OFF, SUMMARY OFF) $("${PSQL[@]}" -At -c "SELECT query FROM bench.variant WHERE name = 'floor'")"
	echo
} >>"$WORK/explain.txt"
for p in "${PLAN_PROBLEMS[@]}"; do
	echo "WARNING: plan check failed: $p" >&2
done

# ------------------------------------------------------------ in-server
# One session, jit off; a warm-up round (not recorded), then ROUNDS rounds,
# each running every variant once in a rotated order.
say "in-server: warm-up round, then $ROUNDS rounds of ${#VARIANTS[@]} variants over $NLOOP rows"
{
	echo "SET jit = off;"
	echo "\\echo warm-up"
	echo "SELECT bench.run_round(0);"
	for r in $(seq 1 "$ROUNDS"); do
		echo "\\echo round $r"
		echo "SELECT bench.run_round($r);"
	done
} >"$WORK/inserver.sql"
"${PSQL[@]}" -At -f "$WORK/inserver.sql" 2>&1 | tee "$WORK/inserver.out" >&2

if [ "$PERF" = 1 ]; then
	if ! command -v perf >/dev/null 2>&1; then
		echo "perf not found (Debian: apt-get install linux-perf); skipped" >&2
	else
		for v in ${BENCH_PERF_VARIANTS:-verify verify_hot floor}; do
			say "perf: profiling the $v loop for ${PERF_SECONDS}s"
			perf_variant "$v"
		done
	fi
fi

HAVE_PGBENCH=false
if [ "$SECONDS_EACH" -gt 0 ] && [ "$PGB_ROUNDS" -gt 0 ]; then
	HAVE_PGBENCH=true
	# the README's form, its references and the hand-written verifies with
	# BENCH_CLIENTS clients; the README form and its references with 1 too
	PGB_RUNS=()
	for v in echo_p floor_p readme_p target_p sub_p plpgsql_p plpgsql_update_p floor_zipf_p readme_zipf_p; do
		PGB_RUNS+=("$v:$CLIENTS")
	done
	# the README form again with usage written once a minute instead of
	# every second: what the worker's writing costs on this machine
	[ "$FEATURES" = 1 ] && PGB_RUNS+=("readme_p:$CLIENTS:flush60s")
	if [ "$CLIENTS" != 1 ]; then
		for v in echo_p floor_p readme_p; do
			PGB_RUNS+=("$v:1")
		done
	fi
	say "pgbench: ${#PGB_RUNS[@]} runs x ${SECONDS_EACH}s x $PGB_ROUNDS round(s), -M $PGB_MODE"
	for r in $(seq 1 "$PGB_ROUNDS"); do
		nv=${#PGB_RUNS[@]}
		for j in $(seq 0 $((nv - 1))); do
			run=${PGB_RUNS[$(((j + r - 1) % nv))]}
			IFS=: read -r pv pc pflag <<<"$run"
			if [ "$pflag" = flush60s ]; then
				"${PSQL[@]}" -c "ALTER SYSTEM SET apikey.flush_interval = '60s'" -c "SELECT pg_reload_conf()" >/dev/null
				sleep 1
				PGB_NAME_SUFFIX=@flush60s pgbench_run "$pv" "$pc" "$SECONDS_EACH" "$r"
				"${PSQL[@]}" -c "ALTER SYSTEM RESET apikey.flush_interval" -c "SELECT pg_reload_conf()" >/dev/null
				sleep 3	# the backlog is written before the next run
			else
				pgbench_run "$pv" "$pc" "$SECONDS_EACH" "$r"
			fi
		done
	done
	if [ "$FEATURES" = 1 ]; then
		say "pgbench: $HOT_CLIENTS clients sharing a hot set of 50000 keys, ${SECONDS_EACH}s, with each backend's hit rate"
		hitrate_run "$SECONDS_EACH"
	fi
fi
}

# sweep_point: echo_p, floor_p and readme_p with per-transaction latencies,
# at the current key count; then readme_p on the reference cluster
# (recorded as readme_p@ref beside this key count)
sweep_point() {
	local v
	[ "$SECONDS_EACH" -gt 0 ] && [ "$SWEEP_SECONDS" -gt 0 ] || return 0
	for v in echo_p floor_p readme_p; do
		pgbench_run "$v" "$CLIENTS" "$SWEEP_SECONDS" 0 "$WORK/lat"
	done
	PGB_REF=1 PGB_NAME_SUFFIX=@ref pgbench_run readme_p "$CLIENTS" "$SWEEP_SECONDS" 0 "$WORK/lat"
}

for size in "${SIZES[@]}"; do
	add_keys "$size" "${PSQL[@]}"
	[ "$size" = "$NKEYS" ] && main_phase
	say "sweep at $size keys"
	sweep_point
done
say "bulk creation reference: a plain INSERT of $MAXKEYS precomputed hashes"
"${PSQL[@]}" -f "$BENCH_DIR/plain.sql" >/dev/null

# -------------------------------------------------------------- summary
say "summary"
{
	echo "apikey benchmark, $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo "git: $(git -C "$REPO_ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(n=$(git -C "$REPO_ROOT" status --porcelain -- src sql 2>/dev/null | grep -c .); [ "$n" -gt 0 ] && echo " + $n uncommitted file(s) in src/ sql/")"
	echo "server: $("${PSQL[@]}" -At -c 'SHOW server_version'), shared_buffers=$SHARED_BUFFERS, jit=off, $(nproc) CPUs ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1))"
	if [ "$FEATURES" = 1 ]; then
		echo "features: on (shared_preload_libraries = apikey: usage tracking and rate-limit buckets in shared memory, log_verifications = failures, flush_interval = 1s)"
	else
		echo "features: off (apikey not preloaded: no usage tracking)"
	fi
	echo "keys: $NKEYS for the in-server loops and main pgbench runs; sweep: ${SIZES[*]} (apikey_create, scopes {jobs:read,write:databases});" \
		"loop: $NLOOP shuffled rows; in-server rounds: $ROUNDS"
	if $HAVE_PGBENCH; then
		echo "pgbench: $CLIENTS clients, ${SECONDS_EACH}s per variant, $PGB_ROUNDS round(s), -M $PGB_MODE, -D scopes=$SCOPES"
	fi
	for p in "${PLAN_PROBLEMS[@]}"; do
		echo "WARNING: plan check failed: $p"
	done
	[ ${#PLAN_PROBLEMS[@]} -eq 0 ] && echo "plan checks: floor is a SubPlan with an Index Scan on keys_secret_hash_idx; each verify is called once per row"
	echo
	"${PSQL[@]}" -v have_pgbench="$HAVE_PGBENCH" -f "$BENCH_DIR/summary.sql"
	echo
	echo "In-server raw times per round (ms):"
	sed 's/^/  /' "$WORK/inserver.out"
	echo
	echo "==================================================================="
	echo "EXPLAIN (VERBOSE, COSTS OFF) of every in-server query"
	echo "==================================================================="
	cat "$WORK/explain.txt"
} >"$WORK/latest.txt"
cp "$WORK/latest.txt" "$RESULTS/latest.txt"

# ------------------------------------------------------ RESULTS.md, plot
say "RESULTS.md and the plot"
RESULTS_MD="$(dirname "$RESULTS")/RESULTS.md"
PLOT_NOTE=
if $HAVE_PGBENCH; then
	"${PSQL[@]}" -c "\\copy (SELECT nkeys, name, round(tps), p50, p99 FROM bench.sweep ORDER BY name, nkeys) TO '$WORK/sweep.tsv'"
	cp "$WORK/sweep.tsv" "$RESULTS/sweep.tsv"
	if command -v gnuplot >/dev/null 2>&1; then
		gnuplot -e "data='$RESULTS/sweep.tsv'; out='$RESULTS/sweep.svg'" "$BENCH_DIR/sweep.gp" ||
			PLOT_NOTE="(gnuplot failed: no plot)"
	else
		PLOT_NOTE="(gnuplot is not installed: no plot; scripts/install-deps.sh installs gnuplot-nox)"
	fi
fi
{
	echo "# apikey benchmark results"
	echo
	echo "Written by \`bash bench/run.sh\` on $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(sed -n 's/^git: //p' "$WORK/latest.txt")."
	echo "$(sed -n 's/^server: //p' "$WORK/latest.txt")."
	echo "Features $(sed -n 's/^features: //p' "$WORK/latest.txt")."
	echo "In-server loops and the main pgbench runs at $NKEYS keys ($NLOOP shuffled loop rows, $ROUNDS rounds);" \
		"pgbench $CLIENTS clients (and 1 for the README form and its references), ${SECONDS_EACH}s per run, $PGB_ROUNDS round(s);" \
		"sweep at ${SIZES[*]} keys, ${SWEEP_SECONDS}s per run. Every table, and the EXPLAIN of every in-server query: [results/latest.txt](results/latest.txt)."
	[ -n "$PLOT_NOTE" ] && echo "$PLOT_NOTE"
	for p in "${PLAN_PROBLEMS[@]}"; do
		echo "WARNING: plan check failed: $p"
	done
	echo
	"${PSQL[@]}" -At -v have_pgbench="$HAVE_PGBENCH" -v sweep_max="$MAXKEYS" -v sweep_min="${SIZES[0]}" \
		-f "$BENCH_DIR/results_md.sql"
	if [ "$PERF" = 1 ]; then
		echo "## Where the time goes (perf, self time)"
		echo
		for v in ${BENCH_PERF_VARIANTS:-verify verify_hot floor}; do
			f="$RESULTS/perf-$v.txt"
			[ -s "$f" ] || continue
			echo "\`$v\`, top symbols ([results/perf-$v.txt](results/perf-$v.txt)):"
			echo
			echo '```'
			sed -n '/^== Self time by symbol/,/^$/p' "$f" | sed -n '2,16p'
			echo '```'
			echo
		done
	fi
} >"$WORK/RESULTS.md"
cp "$WORK/RESULTS.md" "$RESULTS_MD"
echo "results written to $RESULTS_MD and $RESULTS/latest.txt"
# print everything but the EXPLAIN appendix
sed '/^=====/,$d' "$RESULTS/latest.txt"
