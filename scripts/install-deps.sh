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
	zlib1g-dev
	gcc
	make
)

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
