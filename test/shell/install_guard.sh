#!/usr/bin/env bash
# install_guard.sh: CREATE EXTENSION apikey refuses a pre-existing schema
# "apikey" that an ordinary role owns or that already holds objects (such a
# role could otherwise replace apikey_verify), and accepts an empty one owned
# by a superuser.  TAP output; needs a running cluster (scripts/test.sh).
set -u
. "$(dirname "${BASH_SOURCE[0]}")/tap.inc"

q() { PGOPTIONS="-c client_min_messages=error" psql -X -Atq -v ON_ERROR_STOP=1 "$@" 2>&1; }
sqlstate() { psql -X -Atq -v ON_ERROR_STOP=1 -v VERBOSITY=sqlstate "$@" 2>&1 | sed -n 's/^ERROR:  *\([0-9A-Z]\{5\}\).*/\1/p'; }

for d in guard_owned guard_full guard_ok; do
	q -d postgres -c "DROP DATABASE IF EXISTS $d" -c "CREATE DATABASE $d" >/dev/null
done
q -d postgres -c "DROP ROLE IF EXISTS guard_intruder" -c "CREATE ROLE guard_intruder" >/dev/null

q -d guard_owned -c "CREATE SCHEMA apikey AUTHORIZATION guard_intruder" >/dev/null
ok "$(sqlstate -d guard_owned -c "CREATE EXTENSION apikey")" "42501" \
	"a schema apikey owned by an ordinary role is refused (42501)"
ok "$(q -d guard_owned -c "SELECT count(*) FROM pg_extension WHERE extname = 'apikey'")" "0" \
	"and nothing is installed"

q -d guard_full -c "CREATE SCHEMA apikey" -c "CREATE FUNCTION apikey.apikey_verify(text) RETURNS boolean LANGUAGE sql AS 'SELECT true'" >/dev/null
ok "$(sqlstate -d guard_full -c "CREATE EXTENSION apikey")" "55000" \
	"a schema apikey that already holds objects is refused (55000)"

q -d guard_ok -c "CREATE SCHEMA apikey" >/dev/null
ok "$(q -d guard_ok -c "CREATE EXTENSION apikey" -c "SELECT extname FROM pg_extension WHERE extname = 'apikey'")" "apikey" \
	"an empty schema apikey owned by a superuser is used"
ok "$(q -d guard_ok -c "CREATE TABLE k AS SELECT key FROM apikey.apikey_create('g', '{}')" -c "SELECT (apikey.apikey_verify(key)).code FROM k")" "VALID" \
	"and keys work there"

for d in guard_owned guard_full guard_ok; do
	q -d postgres -c "DROP DATABASE $d" >/dev/null
done
q -d postgres -c "DROP ROLE guard_intruder" >/dev/null
tap_done
