#!/usr/bin/env bash
# pgroot.sh: a Debian root holding PostgreSQL MAJOR, for testing apikey on a
# version the host does not ship.  Run as root.
#
#   scripts/pgroot.sh ensure MAJOR      build the root once (cached), print its path
#   scripts/pgroot.sh run MAJOR CMD...  run CMD inside it (as root, in /src/apikey,
#                                       a copy of this work tree), with /proc,
#                                       /dev and /dev/shm mounted for the run only
#
# Which Debian release ships which major: 15 bookworm, 17 trixie, 18 sid.
# The root is made with debootstrap --variant=minbase from the mirror the
# host's apt already uses (read from /etc/apt/), kept in $APIKEY_ROOTS
# (default /var/cache/apikey/roots) and reused while its package list is
# unchanged.  Mounts are undone on exit, also on failure.
set -euo pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ROOTS=${APIKEY_ROOTS:-/var/cache/apikey/roots}

suite_for() {
	case "$1" in
		15) echo bookworm ;;
		17) echo trixie ;;
		18) echo sid ;;
		*) echo "pgroot: no Debian release known for PostgreSQL $1" >&2; return 1 ;;
	esac
}

# the host's Debian mirror: the first non-security URI apt is configured with
host_mirror() {
	local m
	m=$( { cat /etc/apt/sources.list.d/*.sources 2>/dev/null |
		sed -n 's/^URIs:[[:space:]]*//p' | tr ' ' '\n'
		cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
		sed -n 's/^deb[[:space:]]\+\(\[[^]]*\][[:space:]]\+\)\?\([^[:space:]]\+\).*/\2/p'
	} | grep -v -- '-security' | grep -E '^https?://' | head -n 1)
	[ -n "$m" ] || { echo "pgroot: no Debian mirror found in /etc/apt" >&2; return 1; }
	echo "$m"
}

# what the suites need inside the root (the unit tests and fuzzers run once,
# on the host, so no clang here)
root_packages() {
	echo "postgresql-$1 postgresql-server-dev-$1 postgresql-$1-pgtap" \
		"libtap-parser-sourcehandler-pgtap-perl libipc-run-perl pgbouncer" \
		"gcc make libssl-dev zlib1g-dev bc python3 nodejs npm ca-certificates" \
		"procps locales-all gnuplot-nox"
}

ensure_root() {
	local major=$1 suite mirror root stamp want
	mkdir -p "$ROOTS"
	suite=$(suite_for "$major")
	root="$ROOTS/pg$major-$suite"
	stamp="$root/.apikey-root"
	want="$suite $(root_packages "$major")"
	if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
		echo "$root"
		return 0
	fi
	[ "$(id -u)" -eq 0 ] || { echo "pgroot: building a root needs root" >&2; return 1; }
	command -v debootstrap >/dev/null 2>&1 || {
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
	}
	mirror=$(host_mirror)
	if [ ! -x "$root/usr/bin/apt-get" ]; then
		rm -rf "$root"
		mkdir -p "$ROOTS"
		echo "pgroot: debootstrap $suite from the host's mirror into $root" >&2
		debootstrap --variant=minbase "$suite" "$root" "$mirror" >"$ROOTS/pg$major.debootstrap.log" 2>&1 || {
			tail -n 20 "$ROOTS/pg$major.debootstrap.log" >&2
			return 1
		}
	fi
	echo "deb $mirror $suite main" >"$root/etc/apt/sources.list"
	# sid's Release file may be past its validity date on a frozen mirror
	echo 'Acquire::Check-Valid-Until "false";' >"$root/etc/apt/apt.conf.d/99apikey"
	cp /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true
	echo "pgroot: installing PostgreSQL $major and the test tools in the root" >&2
	with_mounts "$root" env DEBIAN_FRONTEND=noninteractive LC_ALL=C sh -c \
		"apt-get update -qq && apt-get install -y -qq --no-install-recommends $(root_packages "$major")" \
		>"$ROOTS/pg$major.apt.log" 2>&1 || {
		tail -n 20 "$ROOTS/pg$major.apt.log" >&2
		return 1
	}
	id postgres >/dev/null 2>&1 || true
	echo "$want" >"$stamp"
	echo "$root"
}

# with_mounts ROOT CMD...: chroot ROOT CMD with /proc, /dev/shm and /dev/pts
# mounted, unmounting them whatever CMD does
with_mounts() {
	local root=$1 st=0 m
	shift
	local mounted=()
	umount_all() {
		local i
		for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do
			umount -l "${mounted[i]}" 2>/dev/null || true
		done
		mounted=()
	}
	trap umount_all EXIT INT TERM
	mkdir -p "$root/proc" "$root/dev/shm" "$root/dev/pts"
	mount -t proc proc "$root/proc" && mounted+=("$root/proc")
	mount -t tmpfs -o mode=1777 shm "$root/dev/shm" && mounted+=("$root/dev/shm")
	mount -t devpts -o newinstance devpts "$root/dev/pts" 2>/dev/null && mounted+=("$root/dev/pts")
	for m in null zero random urandom tty full; do
		[ -e "$root/dev/$m" ] || cp -a "/dev/$m" "$root/dev/$m"
	done
	chroot "$root" "$@" || st=$?
	umount_all
	trap - EXIT INT TERM
	return $st
}

run_in_root() {
	local major=$1 root st
	shift
	root=$(ensure_root "$major")
	# one run at a time per root (its /src/apikey is shared)
	exec 9>"$ROOTS/pg$major.lock"
	flock 9
	# a fresh copy of the work tree (tracked and untracked files, no build
	# output), so the root builds exactly this source
	rm -rf "$root/src/apikey"
	mkdir -p "$root/src/apikey"
	(cd "$REPO_ROOT" && git ls-files -co --exclude-standard -z |
		xargs -0 cp --parents -t "$root/src/apikey") 2>/dev/null ||
		tar -C "$REPO_ROOT" --exclude=.git --exclude=.build -cf - . | tar -C "$root/src/apikey" -xf -
	# dumps made by other majors' runs (test/tap/009_cross_major.pl)
	if [ -d "$REPO_ROOT/.build/xmajor" ]; then
		mkdir -p "$root/src/apikey/.build"
		cp -r "$REPO_ROOT/.build/xmajor" "$root/src/apikey/.build/"
	fi
	# the host's own trust anchors (a TLS-inspecting proxy's, say), so npm
	# reaches its registry from the root as it does from the host
	if ls /usr/local/share/ca-certificates/*.crt >/dev/null 2>&1; then
		rm -rf "$root/usr/local/share/ca-certificates"
		mkdir -p "$root/usr/local/share/ca-certificates"
		cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/"
		chroot "$root" update-ca-certificates >/dev/null 2>&1 || true
	fi
	with_mounts "$root" env -i PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin \
		HOME=/root LANG=C.UTF-8 CI="${CI:-}" PGVER="$major" \
		NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt \
		npm_config_cafile=/etc/ssl/certs/ca-certificates.crt \
		PG_CONFIG="/usr/lib/postgresql/$major/bin/pg_config" \
		APIKEY_IN_ROOT=1 \
		bash -c 'cd /src/apikey && "$@"' bash "$@" || st=$?
	# and this major's dump back, for the next one
	if [ -d "$root/src/apikey/.build/xmajor" ]; then
		mkdir -p "$REPO_ROOT/.build/xmajor"
		cp "$root/src/apikey/.build/xmajor/"pg"$major".* "$REPO_ROOT/.build/xmajor/" 2>/dev/null || true
	fi
	return "${st:-0}"
}

case "${1:-}" in
	ensure) ensure_root "$2" ;;
	run) shift; major=$1; shift; run_in_root "$major" "$@" ;;
	mirror) host_mirror ;;
	*) echo "usage: $0 ensure MAJOR | run MAJOR CMD..." >&2; exit 2 ;;
esac
