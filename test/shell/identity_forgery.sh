#!/usr/bin/env bash
# identity_forgery.sh: the request identity (apikey.key_id, apikey.owner,
# apikey.scopes) cannot be forged from outside the hook: not by PGOPTIONS
# at connection time, not by SET before the library is loaded (the
# placeholder is discarded when it loads), not by ALTER ROLE/DATABASE SET.
# TAP output; needs a running cluster (scripts/test.sh).
set -u
REPO_ROOT=${REPO_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
. "$REPO_ROOT/test/shell/tap.inc"

db=apikey_forgery
q() { psql -X -Atq -v ON_ERROR_STOP=1 -d $db "$@" 2>&1; }
psql -X -Atq -d postgres -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" >/dev/null 2>&1
q -c "CREATE EXTENSION apikey" >/dev/null
psql -X -Atq -d postgres -c "DROP ROLE IF EXISTS forger" -c "CREATE ROLE forger LOGIN IN ROLE apikey_verifier" >/dev/null 2>&1

# a new session has not loaded the library: the names are placeholders
ok "$(PGOPTIONS='-c apikey.key_id=7 -c apikey.owner=acme -c apikey.scopes={*}' q -U forger -c "SELECT apikey.current_key_id() IS NULL, apikey.current_owner() IS NULL, apikey.has_scope('admin')" | tail -n 1)" \
	"t|t|f" "PGOPTIONS -c apikey.key_id/owner/scopes: the helpers see no identity"
ok "$(PGOPTIONS='-c apikey.key_id=7' q -U forger -c "SELECT apikey.current_key_id()" -c "SELECT current_setting('apikey.key_id', true)" | tail -n 1)" \
	"" "PGOPTIONS value is gone from current_setting once the library is loaded"
ok "$(q -U forger -c "SET apikey.key_id = '7'" -c "SET apikey.owner = 'acme'" -c "SELECT coalesce(apikey.current_key_id()::text, 'none'), coalesce(apikey.current_owner(), 'none')" | tail -n 1)" \
	"none|none" "SET before the library is loaded: discarded when it loads"
ok "$(q -U forger -c "SELECT apikey.current_key_id()" -c "SET apikey.key_id = '7'" | grep -o 'permission denied')" \
	"permission denied" "SET once the library is loaded: refused"
ok "$(q -U forger -c "ALTER ROLE forger SET apikey.key_id = '7'" | grep -o 'permission denied\|can only be set' | head -n 1)" \
	"permission denied" "ALTER ROLE ... SET by the role itself: refused"
ok "$(q -c "SELECT apikey.current_key_id()" -c "ALTER DATABASE $db SET apikey.owner = 'acme'" | grep -o 'can only be set')" \
	"can only be set" "ALTER DATABASE ... SET, even by a superuser, once the library is loaded: refused"
# a superuser session that has not loaded the library can store one: it is
# discarded (with a WARNING) wherever the library loads
q -c "ALTER DATABASE $db SET apikey.owner = 'acme'" -c "ALTER DATABASE $db SET apikey.key_id = '7'" >/dev/null
ok "$(q -U forger -c "SELECT coalesce(apikey.current_key_id()::text, 'none'), coalesce(apikey.current_owner(), 'none'), current_setting('apikey.owner', true)" | tail -n 1)" \
	"none|none|" "ALTER DATABASE ... SET stored before the library was loaded: discarded when it loads"
q -c "ALTER DATABASE $db RESET ALL" >/dev/null

# the hook's own settings a superuser may set per role, as PostgREST users do
q -c "ALTER ROLE forger SET apikey.header = 'apikey'" >/dev/null
ok "$(q -U forger -c "SHOW apikey.header")" "apikey" "ALTER ROLE ... SET apikey.header by a superuser applies at login"
ok "$(q -U forger -c "SELECT apikey.current_key_id()" -c "SET apikey.header = 'x-api-key'" | grep -o 'permission denied')" \
	"permission denied" "and the role itself cannot change it back"

# a role cannot weaken the hook by setting its settings before the library loads
ok "$(q -U forger -c "SET apikey.require_key = off" -c "SET apikey.postgrest_scopes = off" -c "BEGIN" \
	-c "SELECT set_config('request.headers', '{}', true)" -c "SELECT apikey.postgrest_pre_request()" | grep -o 'API key required')" \
	"API key required" "SET apikey.require_key = off before the library loads: discarded, the hook still refuses"

psql -X -Atq -d postgres -c "DROP DATABASE $db" -c "DROP ROLE forger" >/dev/null 2>&1
tap_done
