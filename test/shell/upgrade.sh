#!/usr/bin/env bash
# upgrade.sh: ALTER EXTENSION apikey UPDATE from every released version.
# Installs 1.0, creates keys of every kind (plain, bound, rotated in grace,
# disabled, expired, deleted, a manager's), updates step by step (1.0 to
# 1.1 to 1.2) in one database and straight to the default version in
# another, and checks that every key verifies exactly as before, that
# nothing in the keys or the audit changed, that 1.1's additions work on
# the old keys, and that the catalog (objects, columns, constraints,
# indexes, triggers, policies, grants, comments, function definitions) of
# both equals a fresh install's.
# TAP output; needs a running cluster (scripts/test.sh).
set -u
REPO_ROOT=${REPO_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
. "$REPO_ROOT/test/shell/tap.inc"

q() { psql -X -Atq -v ON_ERROR_STOP=1 -d "$@"; }
old=apikey_upgrade_old
fresh=apikey_upgrade_fresh
straight=apikey_upgrade_straight
latest=$(sed -n "s/^default_version *= *'\([^']*\)'/\1/p" "$REPO_ROOT/apikey.control")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# make_keys DB: apikey 1.0 in DB with keys of every kind, listed in public.raw
make_keys() {
	q "$1" -c "CREATE EXTENSION apikey VERSION '1.0'" \
		-c "DO \$\$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'upgrade_mgr') THEN
			CREATE ROLE upgrade_mgr IN ROLE apikey_manager; END IF; END \$\$"
	q "$1" -f "$REPO_ROOT/test/keys_of_every_kind.sql" >/dev/null
	q "$1" >/dev/null <<'SQL'
SET ROLE upgrade_mgr;
CREATE TEMP TABLE mk AS SELECT key_id, key FROM apikey.apikey_create('manager key', '{jobs:read}');
SELECT count(*) FROM apikey.apikey_create('manager shared', '{}', owner => 'org-shared');
SELECT count(*) FROM apikey.apikey_create('manager own', '{}', owner => 'org-mgr');
RESET ROLE;
SELECT count(*) FROM apikey.apikey_create('admin shared', '{}', owner => 'org-shared');
INSERT INTO public.raw SELECT 'mgr', key_id, key FROM mk;
SQL
}

for d in $old $fresh $straight; do
	q postgres -c "DROP DATABASE IF EXISTS $d" -c "CREATE DATABASE $d" 2>/dev/null
done
q postgres -c "DROP ROLE IF EXISTS upgrade_mgr" 2>/dev/null
make_keys $old
ok "$(q $old -c "SELECT extversion FROM pg_extension WHERE extname = 'apikey'")" "1.0" "installed 1.0"


codes="SELECT string_agg(tag || '=' || v.code || ':' || coalesce(v.key_id::text, '-') || ':' || coalesce(v.owner, '-'), ',' ORDER BY tag)
         FROM public.raw, apikey.apikey_verify(key, '{jobs:read}', CASE WHEN tag = 'bound' THEN 'db-1' END,
                                               CASE WHEN tag = 'bound' THEN '10.1.1.1'::inet END) v"
keys="SELECT md5(string_agg((to_jsonb(k) - 'last_used_at' - 'use_count')::text, ',' ORDER BY id)) FROM apikey.keys k"
audit="SELECT count(*) || ':' || md5(string_agg(a::text, ',' ORDER BY id)) FROM apikey.audit a"
before_codes=$(q $old -c "$codes")
before_keys=$(q $old -c "$keys")
before_audit=$(q $old -c "$audit")
ok "$before_codes" "$(q $old -c "SELECT string_agg(e.tag || '=' || e.code || ':' || coalesce(r.key_id::text, '-') || ':' || e.owner, ',' ORDER BY e.tag)
	FROM (VALUES ('bound', 'VALID', 'org-1'), ('gone', 'NOT_FOUND', '-'), ('mgr', 'VALID', '-'),
	             ('off', 'DISABLED', '-'), ('old', 'EXPIRED', '-'), ('plain', 'VALID', '-'),
	             ('rot', 'VALID', '-'), ('rot-new', 'VALID', '-')) AS e(tag, code, owner)
	LEFT JOIN public.raw r ON r.tag = e.tag AND e.code <> 'NOT_FOUND'")" \
	"1.0 (with the current library): every kind of key answers as it should"

q $old -c "ALTER EXTENSION apikey UPDATE TO '1.1'"
ok "$?" "0" "ALTER EXTENSION apikey UPDATE TO '1.1' succeeds"
ok "$(q $old -c "SELECT extversion FROM pg_extension WHERE extname = 'apikey'")" "1.1" "the extension is at 1.1"
ok "$(q $old -c "$codes")" "$before_codes" "after the update every key verifies exactly as before"
ok "$(q $old -c "SELECT md5(string_agg((to_jsonb(k) - 'db_role')::text, ',' ORDER BY id)) FROM apikey.keys k")" \
	"$before_keys" "the keys' rows (hashes included) are unchanged but for db_role (new) and usage (moved out)"
ok "$(q $old -c "SELECT count(*) FROM apikey.usage")" "0" "1.0 maintained no usage, so apikey.usage starts empty"
ok "$(q $old -c "SELECT count(*) FROM apikey.keys WHERE db_role IS NOT NULL")" "0" "db_role is NULL on every old key"
ok "$(q $old -c "$audit")" "$before_audit" "the update wrote nothing to the audit and changed no audit row"
ok "$(q $old -c "SELECT v.grace_until IS NOT NULL FROM public.raw, apikey.apikey_verify(key) v WHERE tag = 'rot'")" "t" \
	"1.1's grace_until is set for the old secret of a key rotated under 1.0"
ok "$(q $old -c "CREATE ROLE upgrade_app NOLOGIN" -c "UPDATE apikey.keys SET db_role = 'upgrade_app' WHERE name = 'plain'" -c "SELECT db_role FROM apikey.key_status WHERE name = 'plain'")" \
	"upgrade_app" "an old key takes a db_role"
ok "$(q $old -c "BEGIN" -c "SELECT set_config('request.headers', json_build_object('x-api-key', key)::text, true) IS NOT NULL FROM public.raw WHERE tag = 'mgr'" \
	-c "SELECT apikey.postgrest_pre_request()" -c "SELECT apikey.current_key_id() = key_id FROM public.raw WHERE tag = 'mgr'" -c "COMMIT" | tail -n 1)" \
	"t" "an old key authenticates through the PostgREST hook"
ok "$(q $old -c "SELECT count(*) FROM public.raw r, apikey.apikey_create('after', '{}') c")" "8" "keys can be created after the update"

# the next step, 1.1 to 1.2
keys11=$(q $old -c "SELECT md5(string_agg(to_jsonb(k)::text, ',' ORDER BY id)) FROM apikey.keys k")
audit11=$(q $old -c "$audit")
q $old -c "ALTER EXTENSION apikey UPDATE TO '1.2'" 2>"$work/update12.err"
ok "$?" "0" "ALTER EXTENSION apikey UPDATE TO '1.2' succeeds"
ok "$(q $old -c "SELECT string_agg(owner || '=' || coalesce(managed_by::text, '-'), ',' ORDER BY owner) FROM apikey.owners")" \
	"org-1=$(q $old -c "SELECT current_user"),org-mgr=upgrade_mgr,org-shared=-" \
	"1.2 registers each owner to the one role whose keys use it, and one used by several roles to none"
ok "$(grep -c "WARNING:  apikey: owner 'org-shared' is used by the keys of several roles" "$work/update12.err")" "1" \
	"and names that one in a WARNING"
ok "$(q $old -c "SELECT extversion FROM pg_extension WHERE extname = 'apikey'")" "1.2" "the extension is at 1.2"
ok "$(q $old -c "$codes")" "$before_codes" "after the second update every key verifies exactly as before"
ok "$(q $old -c "SELECT md5(string_agg((to_jsonb(k) - '{credits,refill_amount,refill_interval,refill_day,credits_set_at}'::text[])::text, ',' ORDER BY id)) FROM apikey.keys k")" "$keys11" \
	"the keys' rows are unchanged by the update to 1.2 (which adds the plan's columns)"
ok "$(q $old -c "SELECT count(*) FROM apikey.keys WHERE num_nonnulls(credits, refill_amount, refill_interval, refill_day, credits_set_at) > 0")" "0" \
	"and every key is unmetered after it"
ok "$(q $old -c "$audit")" "$audit11" "the update to 1.2 wrote nothing to the audit"

# straight from 1.0 to the default version in one ALTER EXTENSION
make_keys $straight
s_codes=$(q $straight -c "$codes")
s_keys=$(q $straight -c "$keys")
s_audit=$(q $straight -c "$audit")
q $straight -c "ALTER EXTENSION apikey UPDATE"
ok "$?" "0" "ALTER EXTENSION apikey UPDATE from 1.0 succeeds"
ok "$(q $straight -c "SELECT extversion FROM pg_extension WHERE extname = 'apikey'")" "$latest" "straight from 1.0: the extension is at $latest"
ok "$(q $straight -c "$codes" | sed 's/:[0-9]*:/:id:/g')" "$(echo "$before_codes" | sed 's/:[0-9]*:/:id:/g')" \
	"straight from 1.0: every key answers as before"
ok "$(q $straight -c "$codes")" "$s_codes" "straight from 1.0: every key verifies exactly as before the update"
ok "$(q $straight -c "SELECT md5(string_agg((to_jsonb(k) - '{db_role,credits,refill_amount,refill_interval,refill_day,credits_set_at}'::text[])::text, ',' ORDER BY id)) FROM apikey.keys k")" \
	"$s_keys" "straight from 1.0: the keys' rows (hashes included) are unchanged but for the columns added since"
ok "$(q $straight -c "$audit")" "$s_audit" "straight from 1.0: the update wrote nothing to the audit"

# one session across the update: the result row follows the new type at
# once (verify keeps the type's descriptor per backend, so it must notice
# that ALTER EXTENSION UPDATE changed it)
sess=apikey_upgrade_session
q postgres -c "DROP DATABASE IF EXISTS $sess" -c "CREATE DATABASE $sess" 2>/dev/null
q $sess -c "CREATE EXTENSION apikey VERSION '1.0'"
ok "$(q $sess -c "CREATE TEMP TABLE k AS SELECT c.key FROM apikey.apikey_create('s', '{}') c" \
	-c "SELECT apikey.apikey_rotate(id, '1 hour') IS NOT NULL FROM apikey.keys WHERE name = 's'" \
	-c "SELECT count(*) FROM k, json_each(row_to_json(apikey.apikey_verify(k.key)))" \
	-c "ALTER EXTENSION apikey UPDATE" \
	-c "SELECT count(*) FROM k, json_each(row_to_json(apikey.apikey_verify(k.key)))" \
	-c "SELECT v.code || ' ' || (v.grace_until IS NOT NULL) FROM k, apikey.apikey_verify(k.key) v")" \
	"t
11
14
VALID true" "in one session: 1.0's 11 columns, then after ALTER EXTENSION UPDATE 1.2's 14, grace_until filled in"
q postgres -c "DROP DATABASE $sess"

# the catalog of the updated database equals a fresh 1.1 install's
q $fresh -c "CREATE EXTENSION apikey"
q $old -f "$REPO_ROOT/test/catalog_snapshot.sql" >"$work/updated.txt" &&
	q $straight -f "$REPO_ROOT/test/catalog_snapshot.sql" >"$work/straight.txt" &&
	q $fresh -f "$REPO_ROOT/test/catalog_snapshot.sql" >"$work/fresh.txt"
ok "$?" "0" "catalog snapshots of the three databases taken"
ok "$(grep -c . "$work/fresh.txt" | awk '{print ($1 > 200) ? "many" : $1}')" "many" "the catalog snapshot lists the extension's objects"
if diff -u "$work/fresh.txt" "$work/updated.txt" >"$work/catalog.diff"; then d=same; else d=different; sed 's/^/# /' "$work/catalog.diff" | head -n 60; fi
ok "$d" "same" "catalog after updating step by step equals a fresh $latest install"
if diff -u "$work/fresh.txt" "$work/straight.txt" >"$work/catalog2.diff"; then d=same; else d=different; sed 's/^/# /' "$work/catalog2.diff" | head -n 60; fi
ok "$d" "same" "catalog after updating straight from 1.0 equals a fresh $latest install"

# the comparison can fail: one changed grant and one changed comment show
q $old -c "GRANT SELECT (hint) ON apikey.keys TO apikey_verifier" -c "COMMENT ON FUNCTION apikey.current_owner() IS 'x'"
q $old -f "$REPO_ROOT/test/catalog_snapshot.sql" >"$work/changed.txt"
ok "$(diff "$work/fresh.txt" "$work/changed.txt" | grep -c '^>')" "2" "the snapshot tells a changed column grant and comment apart"

# and the update path exists for exactly the released versions
ok "$(q $fresh -c "SELECT string_agg(source || '>' || target, ',' ORDER BY source, target) FROM pg_extension_update_paths('apikey') WHERE path IS NOT NULL")" \
	"1.0>1.1,1.0>1.2,1.1>1.2" "update paths: 1.0 to 1.1 and 1.2, 1.1 to 1.2"

for d in $old $fresh $straight; do
	q postgres -c "DROP DATABASE $d"
done
q postgres -c "DROP ROLE upgrade_mgr" -c "DROP ROLE IF EXISTS upgrade_app"
tap_done
