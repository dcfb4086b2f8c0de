#!/usr/bin/env bash
# install-deps.sh: install what apikey needs to build and test, from Debian's
# packages.  Idempotent: installs only what is missing.  As a normal user with
# the dependencies present it does nothing; without them it says what to
# install.
set -euo pipefail

PGVER=${PGVER:-15}
pkgs=(
	"postgresql-$PGVER"
	"postgresql-server-dev-$PGVER"
	"postgresql-contrib"
	"postgresql-$PGVER-pgtap"
	libtap-parser-sourcehandler-pgtap-perl
	libipc-run-perl
	pgbouncer
	python3
	bc
	zlib1g-dev
	libssl-dev
	gnuplot-nox
	clang
	libclang-rt-14-dev
	gcc
	make
)

# the Node.js suites (PostgREST replay, example backend) need node >= 18 and
# npm; a machine that has them from elsewhere keeps its own
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1 ||
	[ "$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)" -lt 18 ]; then
	pkgs+=(nodejs npm)
fi

missing=()
for p in "${pkgs[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
		missing+=("$p")
	fi
done

if [ ${#missing[@]} -eq 0 ]; then
	echo "install-deps: all dependencies present"
	exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
	if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
		SUDO=sudo
	else
		echo "install-deps: missing packages: ${missing[*]}" >&2
		echo "install-deps: run as root: apt-get install ${missing[*]}" >&2
		exit 1
	fi
else
	SUDO=
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps: done"
