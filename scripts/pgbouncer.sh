# pgbouncer.sh: a throwaway pgbouncer in front of the throwaway cluster, in
# transaction pooling mode (as behind PostgREST or an application).  Source
# it after scripts/cluster.sh and cluster_start:
#
#   . scripts/pgbouncer.sh
#   pgbouncer_start USER PASSWORD [USER PASSWORD ...]
#                                   # sets PGBOUNCER_PORT; stopped on exit
#
# It listens on 127.0.0.1 only, on a free port, and lets each USER in with
# its PASSWORD (SCRAM); it reaches the cluster over its unix socket.  As root it
# runs as the cluster's unprivileged user, like the server.

PGBOUNCER_DIR=
PGBOUNCER_PORT=

pgbouncer_stop() {
	if [ -n "$PGBOUNCER_DIR" ] && [ -d "$PGBOUNCER_DIR" ]; then
		if [ -f "$PGBOUNCER_DIR/pgbouncer.pid" ]; then
			kill "$(cat "$PGBOUNCER_DIR/pgbouncer.pid")" 2>/dev/null || true
			sleep 0.2
		fi
		rm -rf "$PGBOUNCER_DIR"
	fi
	PGBOUNCER_DIR=
}

pgbouncer_start() {
	local i
	command -v pgbouncer >/dev/null || { echo "pgbouncer: not installed (scripts/install-deps.sh)" >&2; return 1; }
	PGBOUNCER_DIR=$(mktemp -d "${TMPDIR:-/tmp}/apikey-pgbouncer.XXXXXX")
	on_exit pgbouncer_stop
	chmod 700 "$PGBOUNCER_DIR"
	PGBOUNCER_PORT=$(free_port) || return 1
	: >"$PGBOUNCER_DIR/userlist.txt"
	while [ $# -ge 2 ]; do
		printf '"%s" "%s"\n' "$1" "$2" >>"$PGBOUNCER_DIR/userlist.txt"
		shift 2
	done
	cat >"$PGBOUNCER_DIR/pgbouncer.ini" <<INI
[databases]
* = host=$PGHOST port=$PGPORT

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $PGBOUNCER_PORT
unix_socket_dir =
auth_type = scram-sha-256
auth_file = $PGBOUNCER_DIR/userlist.txt
pool_mode = transaction
max_client_conn = 200
default_pool_size = 4
server_reset_query =
ignore_startup_parameters = extra_float_digits,options
logfile = $PGBOUNCER_DIR/pgbouncer.log
pidfile = $PGBOUNCER_DIR/pgbouncer.pid
INI
	if [ "$(id -u)" -eq 0 ]; then
		chown -R "${PG_RUN_AS:-postgres}" "$PGBOUNCER_DIR"
	fi
	as_pg pgbouncer -d -q "$PGBOUNCER_DIR/pgbouncer.ini" || {
		cat "$PGBOUNCER_DIR/pgbouncer.log" >&2
		return 1
	}
	for i in $(seq 1 50); do
		(echo >"/dev/tcp/127.0.0.1/$PGBOUNCER_PORT") 2>/dev/null && break
		sleep 0.1
	done
	export PGBOUNCER_PORT
}
