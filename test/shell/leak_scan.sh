#!/usr/bin/env bash
# leak_scan.sh: after every other suite has run against the test cluster
# (started with log_min_messages = debug5, log_error_verbosity = verbose,
# and statement texts kept out of the log: log_min_error_statement = panic,
# since they are the callers' SQL, which the README says to parameterize),
# no minted key appears in the server log, in any error or notice the
# suites saw (the pg_regress results, the suites' logs), in any audit row
# or in any view.  A key is anything of a key's shape whose checksum holds.
# TAP output; scripts/test.sh runs it last, with CLUSTER_LOG set.
set -u
REPO_ROOT=${REPO_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
. "$REPO_ROOT/test/shell/tap.inc"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# keys_in FILE...: key-shaped strings with a valid checksum, one per line
keys_in() {
	grep -ohE '[a-z][a-z0-9_]{0,30}[a-z0-9]_[0-9A-Za-z]{38,90}' "$@" 2>/dev/null | sort -u |
		python3 -c '
import sys, zlib
B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
def ok(k):
    body, tail = k[:-6], k[-6:]
    n = zlib.crc32(body.encode()); enc = ""
    for _ in range(6):
        n, r = divmod(n, 62); enc = B62[r] + enc
    return enc == tail
for line in sys.stdin:
    k = line.strip()
    # a key can sit inside a longer token: try every suffix that starts a prefix
    for i in range(len(k)):
        if (i == 0 or k[i - 1] == "_") and ok(k[i:]):
            print(k[i:]); break'
}

lines=$(wc -l <"$CLUSTER_LOG")
ok "$([ "$lines" -gt 10000 ] && echo yes)" "yes" "the server log was written at debug5 ($lines lines)"
ok "$(grep -c 'DEBUG:' "$CLUSTER_LOG" | awk '{print ($1 > 0) ? "yes" : "no"}')" "yes" "with DEBUG lines in it"
found=$(keys_in "$CLUSTER_LOG" | head -n 3)
ok "$found" "" "no minted key in the server log"
[ -n "$found" ] && grep -n "$(echo "$found" | head -n 1)" "$CLUSTER_LOG" | head -n 3 | sed 's/^/# /'
found=$(keys_in "$REPO_ROOT"/results/*.out "$REPO_ROOT"/test/isolation/output_iso/results/*.out | head -n 3)
ok "$found" "" "no key in any output pg_regress and the isolation tester recorded (errors and notices included)"
# (not the server-less unit tests, whose fixed test vectors are key-shaped,
# nor this scan's own log)
logs=()
for f in "$REPO_ROOT"/.build/test-logs/*.log; do
	case "$(basename "$f")" in unit.log | fuzz.log | libfuzzer.log | leak_scan.log) continue ;; esac
	logs+=("$f")
done
found=$(keys_in "${logs[@]}" | head -n 3)
ok "$found" "" "no key in the logs of the suites (pgTAP, shell, TAP, PostgREST replay, Node.js: ${#logs[@]} logs)"

# every database the suites left: audit rows and views
for db in $(psql -X -Atq -d postgres -c "SELECT datname FROM pg_database WHERE NOT datistemplate"); do
	psql -X -Atq -d "$db" -c "SELECT 1 FROM pg_extension WHERE extname = 'apikey'" 2>/dev/null | grep -q 1 || continue
	psql -X -Atq -d "$db" -c "SELECT a::text FROM apikey.audit a" -c "SELECT s::text FROM apikey.key_status s" \
		-c "SELECT s::text FROM apikey.stats s" -c "SELECT current_setting('apikey.key_id') || current_setting('apikey.scopes')" \
		>>"$work/tables" 2>/dev/null
done
ok "$(wc -l <"$work/tables" | awk '{print ($1 > 0) ? "yes" : "no"}')" "yes" "the suites' databases were read"
found=$(keys_in "$work/tables" | head -n 3)
ok "$found" "" "no key in any audit row, key_status, stats or setting"
tap_done
