#!/usr/bin/env bash
# dump_restore.sh: pg_dump a database using apikey, drop it, pg_restore it,
# and check that every key still verifies and the audit log is intact and
# not duplicated.  TAP output.  Needs PGHOST/PGPORT/PGUSER of a running
# cluster with apikey installed (scripts/test.sh provides them).
set -u

. "$(dirname "${BASH_SOURCE[0]}")/tap.inc"
q() { psql -X -Atq -v ON_ERROR_STOP=1 -d "$1" -c "$2"; }

db=apikey_dump_src
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
chmod 755 "$work"

q postgres "DROP DATABASE IF EXISTS $db"
q postgres "CREATE DATABASE $db"
q $db "CREATE EXTENSION apikey"
# five keys: plain, rotated with grace, disabled, updated, deleted
q $db "CREATE TABLE public.raw AS SELECT k.key_id, k.key, 'k' || g AS tag
         FROM generate_series(1, 5) g,
              LATERAL apikey.apikey_create('key ' || g, '{jobs:read}', owner => 'o' || g) k"
q $db "INSERT INTO public.raw SELECT key_id, apikey.apikey_rotate(key_id, '1 day'), 'k2-new' FROM public.raw WHERE tag = 'k2'"
q $db "UPDATE apikey.keys SET enabled = false WHERE id = (SELECT key_id FROM public.raw WHERE tag = 'k3')"
q $db "UPDATE apikey.keys SET scopes = '{jobs:read,jobs:write}' WHERE id = (SELECT key_id FROM public.raw WHERE tag = 'k4')"
q $db "DELETE FROM apikey.keys WHERE id = (SELECT key_id FROM public.raw WHERE tag = 'k5')"

codes="SELECT string_agg(tag || '=' || (apikey.apikey_verify(key, '{jobs:read}')).code, ',' ORDER BY tag) FROM public.raw"
audit="SELECT string_agg(id || ':' || action || ':' || key_id || ':' || actor_current_user, ',' ORDER BY id) FROM apikey.audit"
before_codes=$(q $db "$codes")
before_audit=$(q $db "$audit")
before_keys=$(q $db "SELECT string_agg(id || name || encode(secret_hash, 'hex') || coalesce(encode(grace_secret_hash, 'hex'), ''), ',' ORDER BY id) FROM apikey.keys")
ok "$before_codes" "k1=VALID,k2=VALID,k2-new=VALID,k3=DISABLED,k4=VALID,k5=NOT_FOUND" "codes before the dump"
ok "$(q $db "SELECT count(*) FROM apikey.audit")" "9" "nine audit rows before the dump"

pg_dump -Fc -d $db -f "$work/db.dump"
ok "$?" "0" "pg_dump -Fc succeeds"
pg_dump -d $db -f "$work/db.sql"
ok "$?" "0" "pg_dump (plain SQL) succeeds"

q postgres "DROP DATABASE $db"
q postgres "CREATE DATABASE $db"
pg_restore -d $db --exit-on-error "$work/db.dump"
ok "$?" "0" "pg_restore succeeds"

ok "$(q $db "$codes")" "$before_codes" "every key verifies as before after pg_restore"
ok "$(q $db "$audit")" "$before_audit" "audit log identical after pg_restore (no duplicated create rows)"
ok "$(q $db "SELECT string_agg(id || name || encode(secret_hash, 'hex') || coalesce(encode(grace_secret_hash, 'hex'), ''), ',' ORDER BY id) FROM apikey.keys")" "$before_keys" "keys and hashes identical after pg_restore"

# new keys and audit rows continue the sequences instead of colliding
q $db "INSERT INTO public.raw SELECT key_id, key, 'k6' FROM apikey.apikey_create('key 6', '{jobs:read}')" >/dev/null
ok "$(q $db "SELECT key_id FROM public.raw WHERE tag = 'k6'")" "6" "key ids continue after restore"
ok "$(q $db "SELECT action || ':' || key_id FROM apikey.audit ORDER BY id DESC LIMIT 1")" "create:6" "audit continues after restore"
ok "$(q $db "SELECT count(*) FROM apikey.audit")" "10" "one new audit row for the new key"

# the same with a plain SQL dump replayed through psql
q postgres "DROP DATABASE $db"
q postgres "CREATE DATABASE $db"
psql -X -q -v ON_ERROR_STOP=1 -d $db -f "$work/db.sql" >/dev/null 2>&1
ok "$?" "0" "plain SQL dump replays"
ok "$(q $db "$codes")" "$before_codes" "every key verifies as before after replaying the SQL dump"
ok "$(q $db "$audit")" "$before_audit" "audit log identical after replaying the SQL dump"

q postgres "DROP DATABASE $db"
tap_done
