#!/usr/bin/env bash
# test/tap/run.sh: the suites on PostgreSQL's own TAP framework
# (PostgreSQL::Test::Cluster, from the server packages), each starting the
# servers it needs with its own configuration (shared_preload_libraries,
# restarts, crashes, a standby).  TAP on stdout; non-zero exit on failure.
#
#   bash test/tap/run.sh [test/tap/NNN_name.pl ...]
#
# Uses the installed extension, or the private stage scripts/build.sh made
# (PG_BINDIR).  PostgreSQL refuses to run as root, so as root the tests run
# as the unprivileged user "postgres" (or $PG_RUN_AS), in a temp directory
# that user owns.
set -uo pipefail
REPO_ROOT=${REPO_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
cd "$REPO_ROOT" || exit 1
. scripts/cluster.sh			# as_pg, on_exit, PG_BINDIR

PG_CONFIG=${PG_CONFIG:-pg_config}
sysbin=$($PG_CONFIG --bindir)
perl_lib=$(dirname "$($PG_CONFIG --pgxs)")/../test/perl
regress=$(dirname "$($PG_CONFIG --pgxs)")/../test/regress/pg_regress

tmp=$(mktemp -d "${TMPDIR:-/tmp}/apikey-tap.XXXXXX")
on_exit "rm -rf '$tmp'"
chmod 755 "$tmp"
[ "$(id -u)" -eq 0 ] && chown "${PG_RUN_AS:-postgres}" "$tmp"

rm -rf "$REPO_ROOT/.build/test-logs/tap"
# 009_cross_major.pl's dumps, kept for the next major's run (scripts/test.sh
# --matrix carries them into each version's Debian root and back)
export APIKEY_XMAJOR_DIR="$REPO_ROOT/.build/xmajor"
mkdir -p "$APIKEY_XMAJOR_DIR"
[ "$(id -u)" -eq 0 ] && chown "${PG_RUN_AS:-postgres}" "$APIKEY_XMAJOR_DIR"
tests=("$@")
[ ${#tests[@]} -gt 0 ] || tests=(test/tap/[0-9]*.pl)
# TESTDATADIR and TESTLOGDIR: where 17 and later put the servers and logs
# (15 derives the same from TESTDIR)
as_pg env PATH="$PG_BINDIR:$sysbin:$PATH" TESTDIR="$tmp" PG_REGRESS="$regress" \
	TESTDATADIR="$tmp/tmp_check" TESTLOGDIR="$tmp/tmp_check/log" APIKEY_XMAJOR_DIR="$APIKEY_XMAJOR_DIR" \
	prove -v -I "$perl_lib" -I test/tap "${tests[@]}"
st=$?
# keep the servers' logs of a failed run
if [ $st -ne 0 ] && [ -d "$tmp/tmp_check/log" ]; then
	mkdir -p "$REPO_ROOT/.build/test-logs/tap"
	cp -r "$tmp/tmp_check/log/." "$REPO_ROOT/.build/test-logs/tap/" 2>/dev/null
	echo "# server logs: .build/test-logs/tap/"
fi
exit $st
