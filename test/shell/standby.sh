#!/usr/bin/env bash
# standby.sh: apikey_verify on a hot standby.  Clones the running test
# cluster with pg_basebackup into a streaming replica, then checks that keys
# verify there, that changes on the primary (create, rotate, disable) reach
# the standby's answers, and that the standby refuses writes.  TAP output.
# Needs PGHOST/PGPORT/PGUSER of a running cluster (scripts/test.sh) and
# PG_BINDIR; the standby runs as the same OS user as the primary.
set -u

REPO_ROOT=${REPO_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
# shellcheck source=../../scripts/cluster.sh
. "$REPO_ROOT/scripts/cluster.sh"

. "$REPO_ROOT/test/shell/tap.inc"
db=apikey_standby
q() { psql -X -Atq -v ON_ERROR_STOP=1 -d $db "$@"; }
qs() { psql -X -Atq -v ON_ERROR_STOP=1 -h "$sdir" -p "$sport" -d $db "$@"; }

sdir=$(mktemp -d "${TMPDIR:-/tmp}/apikey-standby.XXXXXX")
chmod 755 "$sdir"
[ "$(id -u)" -eq 0 ] && chown "${PG_RUN_AS:-postgres}" "$sdir"
stop_standby() {
	[ -f "$sdir/data/postmaster.pid" ] &&
		as_pg "$PG_BINDIR/pg_ctl" -D "$sdir/data" -m immediate -w stop >/dev/null 2>&1
	rm -rf "$sdir"
}
trap stop_standby EXIT

psql -X -Atq -d postgres -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" 2>/dev/null
q -c "CREATE EXTENSION apikey"
q -c "CREATE TABLE public.raw (tag text PRIMARY KEY, key_id bigint, key text)"
q -c "INSERT INTO public.raw SELECT 'live', key_id, key FROM apikey.apikey_create('live', '{jobs:read}')"
q -c "INSERT INTO public.raw SELECT 'off', key_id, key FROM apikey.apikey_create('off', '{jobs:read}')"
q -c "UPDATE apikey.keys SET enabled = false WHERE name = 'off'"

# the replica: a base backup of the running cluster, streaming from it
# (pg_basebackup is a client: the system's; a private stage has only the server)
as_pg "$(${PG_CONFIG:-pg_config} --bindir)/pg_basebackup" -h "$PGHOST" -p "$PGPORT" \
	-U "$PGUSER" -D "$sdir/data" -R -X stream -c fast >/dev/null 2>"$sdir/basebackup.err"
ok "$?" "0" "pg_basebackup of the test cluster"
sport=$(free_port)
{
	echo "port = $sport"
	echo "unix_socket_directories = '$sdir'"
	echo "hot_standby = on"
} | as_pg tee -a "$sdir/data/postgresql.conf" >/dev/null
as_pg "$PG_BINDIR/pg_ctl" -D "$sdir/data" -l "$sdir/standby.log" -w -t 60 start >/dev/null
ok "$?" "0" "standby starts"
ok "$(qs -c "SELECT pg_is_in_recovery()")" "t" "the standby is in recovery (hot standby)"

# wait_replay: until the standby has replayed what the primary has written
wait_replay() {
	local lsn i
	lsn=$(q -c "SELECT pg_current_wal_insert_lsn()")
	for i in $(seq 1 100); do
		[ "$(qs -c "SELECT pg_last_wal_replay_lsn() >= '$lsn'::pg_lsn")" = "t" ] && return 0
		sleep 0.1
	done
	return 1
}
codes="SELECT string_agg(tag || '=' || (apikey.apikey_verify(key, '{jobs:read}')).code, ',' ORDER BY tag) FROM public.raw"

wait_replay
ok "$(qs -c "$codes")" "live=VALID,off=DISABLED" "keys verify on the standby"
ok "$(qs -c "SELECT (apikey.apikey_verify('ak_malformed')).code")" "MALFORMED" "a malformed key is MALFORMED on the standby"

# changes on the primary reach the standby's answers
q -c "INSERT INTO public.raw SELECT 'new', key_id, key FROM apikey.apikey_create('new', '{jobs:read}')"
q -c "INSERT INTO public.raw SELECT 'live2', key_id, apikey.apikey_rotate(key_id) FROM public.raw WHERE tag = 'live'"
q -c "UPDATE apikey.keys SET enabled = true WHERE name = 'off'"
wait_replay
ok "$(qs -c "$codes")" "live=NOT_FOUND,live2=VALID,new=VALID,off=VALID" "create, rotate and enable on the primary show on the standby"

# the standby refuses writes, verify keeps working
err=$(qs -c "SELECT * FROM apikey.apikey_create('nope', '{}')" 2>&1 >/dev/null)
case "$err" in *"read-only transaction"*) r=refused ;; *) r="$err" ;; esac
ok "$r" "refused" "apikey_create is refused on the standby (read-only)"
ok "$(qs -c "SELECT count(*) FROM public.raw WHERE (apikey.apikey_verify(key)).valid")" "3" "three live keys on the standby"

stop_standby
trap - EXIT
psql -X -Atq -d postgres -c "DROP DATABASE $db"
tap_done
