# cluster.sh: start and stop a throwaway PostgreSQL cluster.  Source it:
#
#   . scripts/cluster.sh
#   cluster_start [extra postgresql.conf lines...]   # sets PGHOST PGPORT PGUSER
#   ...                                               # psql, pg_regress, ...
#   (stopped automatically on exit, even when a step fails)
#
# The cluster lives in a fresh temp dir with its unix socket there, on a free
# port, and never listens on TCP.  PostgreSQL refuses to run as root, so as
# root the server runs as the unprivileged user "postgres" (or $PG_RUN_AS).

PG_BINDIR=${PG_BINDIR:-$(${PG_CONFIG:-pg_config} --bindir)}
CLUSTER_DIR=
CLUSTER_LOG=
CLEANUPS=()

# on_exit CMD...: run CMD when the script exits (last registered runs first),
# also on failure and on INT/TERM
run_cleanups() {
	local i
	for ((i = ${#CLEANUPS[@]} - 1; i >= 0; i--)); do
		eval "${CLEANUPS[i]}"
	done
	CLEANUPS=()
}
on_exit() {
	CLEANUPS+=("$*")
	trap run_cleanups EXIT
	trap 'run_cleanups; exit 130' INT TERM
}

# as_pg CMD...: run a command as the cluster's user
as_pg() {
	if [ "$(id -u)" -eq 0 ]; then
		runuser -u "${PG_RUN_AS:-postgres}" -- "$@"
	else
		"$@"
	fi
}

free_port() {
	local p
	for p in $(shuf -i 20000-60000 -n 50); do
		if ! (echo > /dev/tcp/127.0.0.1/$p) 2>/dev/null &&
			[ ! -e "/tmp/.s.PGSQL.$p" ]; then
			echo "$p"
			return 0
		fi
	done
	echo "cluster: no free port found" >&2
	return 1
}

cluster_stop() {
	if [ -n "$CLUSTER_DIR" ] && [ -d "$CLUSTER_DIR" ]; then
		if [ -f "$CLUSTER_DIR/data/postmaster.pid" ]; then
			as_pg "$PG_BINDIR/pg_ctl" -D "$CLUSTER_DIR/data" -m immediate -w stop >/dev/null 2>&1 || true
		fi
		rm -rf "$CLUSTER_DIR"
	fi
	CLUSTER_DIR=
}

# cluster_start [conf line...]: initdb, configure, start; exports PG* vars
cluster_start() {
	local line
	CLUSTER_DIR=$(mktemp -d "${TMPDIR:-/tmp}/apikey-pg.XXXXXX")
	on_exit cluster_stop
	chmod 755 "$CLUSTER_DIR"
	if [ "$(id -u)" -eq 0 ]; then
		chown "${PG_RUN_AS:-postgres}" "$CLUSTER_DIR"
	fi
	CLUSTER_LOG="$CLUSTER_DIR/server.log"
	PGPORT=$(free_port) || return 1
	as_pg "$PG_BINDIR/initdb" -D "$CLUSTER_DIR/data" -U postgres -A trust \
		--no-sync -E UTF8 --locale=C >"$CLUSTER_DIR/initdb.log" 2>&1 || {
		cat "$CLUSTER_DIR/initdb.log" >&2
		return 1
	}
	{
		echo "listen_addresses = ''"
		echo "unix_socket_directories = '$CLUSTER_DIR'"
		echo "port = $PGPORT"
		echo "fsync = off"
		echo "max_prepared_transactions = 5"
		for line in "$@"; do
			echo "$line"
		done
	} | as_pg tee -a "$CLUSTER_DIR/data/postgresql.conf" >/dev/null
	as_pg "$PG_BINDIR/pg_ctl" -D "$CLUSTER_DIR/data" -l "$CLUSTER_LOG" -w -t 60 start >/dev/null || {
		cat "$CLUSTER_LOG" >&2
		return 1
	}
	export PGHOST="$CLUSTER_DIR" PGPORT PGUSER=postgres PGDATABASE=postgres
}
