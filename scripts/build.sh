# build.sh: build and install apikey so a throwaway cluster can load it.
# Source it (sets PG_BINDIR for cluster.sh):
#
#   . scripts/build.sh && apikey_build_install
#
# As root (or whenever the server's directories are writable) it is plain
# `make install`.  Otherwise it makes a private copy of the server under
# .build/stage whose share and lib directories hold the system's files plus
# apikey's, so a normal user can test without writing to /usr.

PG_CONFIG=${PG_CONFIG:-pg_config}
REPO_ROOT=${REPO_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}

stage_link_dir() {
	# stage_link_dir SRC DST: DST gets a symlink for every entry of SRC
	local src=$1 dst=$2 f
	mkdir -p "$dst"
	for f in "$src"/*; do
		[ -e "$dst/$(basename "$f")" ] || ln -s "$f" "$dst/$(basename "$f")"
	done
}

apikey_build_install() {
	local cflags=${PG_CFLAGS:-}
	local sharedir pkglibdir bindir stage
	sharedir=$($PG_CONFIG --sharedir)
	pkglibdir=$($PG_CONFIG --pkglibdir)
	bindir=$($PG_CONFIG --bindir)

	make -C "$REPO_ROOT" -s PG_CONFIG="$PG_CONFIG" PG_CFLAGS="$cflags" >/dev/null || return 1

	if [ -z "${APIKEY_STAGE:-}" ] && [ -w "$sharedir/extension" ] && [ -w "$pkglibdir" ]; then
		make -C "$REPO_ROOT" -s PG_CONFIG="$PG_CONFIG" install >/dev/null || return 1
		PG_BINDIR=$bindir
	else
		stage="$REPO_ROOT/.build/stage"
		rm -rf "$stage"
		make -C "$REPO_ROOT" -s PG_CONFIG="$PG_CONFIG" DESTDIR="$stage" install >/dev/null || return 1
		# the server finds share/ and lib/ relative to its own binary
		mkdir -p "$stage$bindir"
		cp "$bindir/postgres" "$bindir/initdb" "$bindir/pg_ctl" "$stage$bindir/"
		ln -sf "$bindir/psql" "$stage$bindir/psql"
		stage_link_dir "$pkglibdir" "$stage$pkglibdir"
		stage_link_dir "$sharedir/extension" "$stage$sharedir/extension"
		stage_link_dir "$sharedir" "$stage$sharedir"
		PG_BINDIR=$stage$bindir
		echo "build: installed into the private stage $stage"
	fi
	export PG_BINDIR
}
