#!/usr/bin/env bash
# readme_snippet.sh: every example in the README's "Key format" section is
# true: the Python checksum snippet, run as printed, accepts the README's
# example key and keys the server mints, and refuses one-character changes.
# TAP output; needs a running cluster (scripts/test.sh) and python3.
set -u
REPO_ROOT=${REPO_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
. "$REPO_ROOT/test/shell/tap.inc"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# the first ```python block of the README, as printed
awk '/^```python$/ {on = 1; next} /^```$/ && on {exit} on' "$REPO_ROOT/README.md" >"$work/snippet.py"
ok "$(grep -c 'def looks_valid' "$work/snippet.py")" "1" "the README has the checksum snippet"

example=$(grep -o 'dbackup_[0-9A-Za-z]\{10,\}' "$REPO_ROOT/README.md" | sort -u)
ok "$(echo "$example" | wc -l)" "1" "the README shows one full example key"

db=apikey_readme
psql -X -Atq -d postgres -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" 2>/dev/null
psql -X -Atq -d $db -c "CREATE EXTENSION apikey"
psql -X -Atq -d $db -c "SELECT key FROM generate_series(1, 20) g, LATERAL apikey.apikey_create('k' || g, '{}', prefix => CASE WHEN g % 2 = 0 THEN 'dbaudit_live' ELSE 'sk_test' END)" >"$work/keys"

cat >>"$work/snippet.py" <<'PY'

import sys
keys = [l.strip() for l in open(sys.argv[1]) if l.strip()]
good = sum(looks_valid(k) for k in keys)
# one character changed anywhere: the checksum must catch it
bad = 0
for k in keys:
    for i in range(len(k)):
        c = "A" if k[i] != "A" else "B"
        bad += looks_valid(k[:i] + c + k[i + 1:])
print(good, len(keys), bad)
PY
ok "$(python3 "$work/snippet.py" <(echo "$example"))" "1 1 0" "the snippet accepts the README's example key and no changed copy of it"
ok "$(python3 "$work/snippet.py" "$work/keys")" "20 20 0" "and accepts 20 minted keys, refusing every one-character change"
ok "$(psql -X -Atq -d $db -c "SELECT (apikey.apikey_verify('$example')).code")" "NOT_FOUND" "the server sees the example key as well formed"

psql -X -Atq -d postgres -c "DROP DATABASE $db" 2>/dev/null
tap_done
