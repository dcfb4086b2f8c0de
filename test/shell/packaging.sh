#!/usr/bin/env bash
# packaging.sh: the packaging conventions hold.  One version (control file,
# META.json, the Makefile reads the control file), every install and update
# script installed by PGXS's DATA, a LICENSE, META.json valid, and the
# shared library exporting exactly what PostgreSQL calls: every C symbol
# the SQL scripts name, and none of the pure-C modules' internals; and the
# PGXS test targets (installcheck without prove, prove_installcheck).
# TAP output; needs a built tree (scripts/test.sh builds first).
set -u
REPO_ROOT=${REPO_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
cd "$REPO_ROOT" || exit 1
. test/shell/tap.inc

control=$(sed -n "s/^default_version *= *'\([^']*\)'/\1/p" apikey.control)
meta=$(python3 -c "import json; m = json.load(open('META.json')); print(m['version'], m['provides']['apikey']['version'], m['provides']['apikey']['file'])")
oldest=$(ls sql/apikey--*.sql | grep -v -- '--.*--' | sed 's/^sql\/apikey--\(.*\)\.sql$/\1/' | sort -V | head -n 1)
ok "$meta" "$control.0 $control.0 sql/apikey--$oldest.sql" "META.json's versions follow the control file ($control), its file is the install script"
ok "$(make -s --eval 'print-version: ; @echo $(EXTVERSION)' print-version 2>/dev/null)" "$control" "the Makefile reads its version from the control file"
ok "$(ls sql/apikey--*.sql | sort | tr '\n' ' ')" \
	"$(make -s -n install 2>/dev/null | grep -o 'sql/apikey--[^ ]*\.sql' | sort -u | tr '\n' ' ')" \
	"make install installs every install and update script"
# contrib's way: one full script (the oldest version's), then update scripts
ok "$(ls sql/apikey--*.sql | grep -v -- '--.*--' | tr '\n' ' ')" "sql/apikey--$oldest.sql " "one full install script, the oldest version's ($oldest)"
chain=$oldest
while next=$(ls sql/apikey--"$chain"--*.sql 2>/dev/null | head -n 1) && [ -n "$next" ]; do
	chain=$(echo "$next" | sed 's/.*--\(.*\)\.sql$/\1/')
done
ok "$chain" "$control" "update scripts lead from $oldest to the default version"
# no SQL object is written out twice: no CREATE statement appears, the same
# text, in two scripts (or twice in one)
dups=$(python3 - sql/apikey--*.sql <<'PY'
import re, sys
seen = {}
for path in sys.argv[1:]:
    text = re.sub(r'--[^\n]*', '', open(path).read())
    text = re.sub(r'/\*.*?\*/', '', text, flags=re.S)
    for stmt in re.split(r';\s*\n', text):
        s = ' '.join(stmt.split())
        if re.match(r'(?i)create\b', s):
            if s in seen:
                print(seen[s], path, s[:60])
            seen.setdefault(s, path)
PY
)
ok "$dups" "" "no CREATE statement is written out twice across the install and update scripts"
ok "$(grep -c 'Permission to use, copy, modify, and distribute' LICENSE)" "1" "LICENSE holds the PostgreSQL licence text"

exported=$(nm -D --defined-only apikey.so | awk '{print $3}' | sort)
needed=$(grep -ho "'MODULE_PATHNAME', '[a-z_]*'" sql/apikey--*.sql | sed "s/.*, '\(.*\)'/\1/" | sort -u)
missing=$(comm -13 <(echo "$exported") <(echo "$needed") | tr '\n' ' ')
ok "$missing" "" "every C function the SQL scripts name is exported"
ok "$(echo "$exported" | grep -cE '^(kf_|scope_|tracker_|apikey_(probe_key|key_free|evaluate|is_admin|interval_us)$|apikey_(tracker|catalog|actor|identity|secret|check|request|extension|validate|text|code|cache|guard|create_rotate)_|apikey_db_role_(refusal|validate))')" "0" \
	"no internal symbol (key format, scope matcher, module helpers) is exported"
ok "$(echo "$exported" | grep -cxE 'Pg_magic_func|_PG_init|apikey_worker_main')" "3" "the magic block, _PG_init and the worker's entry point are"

# no call cycles between the C files: who calls whom, from the objects
cycles=$(for o in src/*.o; do
	b=$(basename "$o" .o)
	nm "$o" | awk -v b="$b" '$2 ~ /^[TDBR]$/ {print "def", b, $3} $1 == "U" {print "use", b, $2}'
done | python3 -c '
import sys, collections
defs = {}; uses = collections.defaultdict(set)
for line in sys.stdin:
    kind, f, sym = line.split()
    if kind == "def": defs[sym] = f
    else: uses[f].add(sym)
edges = {f: {defs[s] for s in us if s in defs and defs[s] != f} for f, us in uses.items()}
def reach(a):
    seen, todo = set(), [a]
    while todo:
        for y in edges.get(todo.pop(), ()):
            if y not in seen: seen.add(y); todo.append(y)
    return seen
print(" ".join(sorted({" ".join(sorted((a, b))) for a in edges for b in edges[a] if a in reach(b)})))
')
ok "$(ls src/*.o | wc -l | awk '{print ($1 > 20) ? "built" : $1}')" "built" "the objects are there to read the call graph from"
ok "$cycles" "" "no call cycles between the C files"
ok "$(grep -lE '^#(el)?if.*PG_VERSION_NUM' src/*.c src/*.h | tr '\n' ' ')" "src/compat.h " "PG_VERSION_NUM conditions are in src/compat.h only"

# the PGXS test targets: make installcheck runs pg_regress and the isolation
# tester, never prove (it works as any user, root too, against the server
# PGHOST names); make prove_installcheck runs the TAP suites with their
# helper module on prove's path, 009_cross_major.pl only given its directory
ic=$(env -u APIKEY_XMAJOR_DIR make -s -n installcheck 2>/dev/null)
ok "$(echo "$ic" | grep -c '/pg_regress .*--load-extension=apikey'),$(echo "$ic" | grep -c '/pg_isolation_regress '),$(echo "$ic" | grep -c 'prove ')" \
	"1,1,0" "make installcheck runs pg_regress and the isolation tester, not the TAP suites"
pi=$(env -u APIKEY_XMAJOR_DIR make -s -n prove_installcheck 2>/dev/null)
ok "$(echo "$pi" | grep -o 'test/tap/[0-9][^ ]*\.pl' | tr '\n' ' ')" "$(ls test/tap/[0-9]*.pl | grep -v 009_cross_major | tr '\n' ' ')" \
	"make prove_installcheck runs every TAP suite but 009_cross_major.pl"
ok "$(echo "$pi" | grep -c -- ' -I test/tap ')" "1" "with test/tap (ApikeyTap.pm) on prove's path"
pi=$(make -s -n prove_installcheck APIKEY_XMAJOR_DIR=/nonexistent 2>/dev/null)
ok "$(echo "$pi" | grep -o 'test/tap/[0-9][^ ]*\.pl' | tr '\n' ' ')" "$(ls test/tap/[0-9]*.pl | tr '\n' ' ')" \
	"and every one, 009_cross_major.pl too, given APIKEY_XMAJOR_DIR"
tap_done
