# apikey: PGXS build.  `make`, `make install`, `make installcheck` are plain
# PGXS (installcheck passes with apikey in shared_preload_libraries and
# without); `make prove_installcheck` runs the TAP suites; scripts/test.sh
# runs every suite against throwaway clusters.

EXTENSION = apikey
EXTVERSION = $(shell sed -n "s/^default_version *= *'\([^']*\)'/\1/p" $(EXTENSION).control)

MODULE_big = apikey
OBJS = \
	src/acting_role.o \
	src/apikey.o \
	src/audit.o \
	src/catalog.o \
	src/codes.o \
	src/create_rotate.o \
	src/dbrole.o \
	src/guard_drop.o \
	src/guard_keys.o \
	src/guard_utility.o \
	src/heaprow.o \
	src/identity.o \
	src/keycache.o \
	src/keyformat.o \
	src/plan.o \
	src/plan_sql.o \
	src/postgrest.o \
	src/postgrest_cost.o \
	src/scope.o \
	src/secret.o \
	src/stats.o \
	src/tracker_credits.o \
	src/tracker_keys.o \
	src/tracker_log.o \
	src/tracker_shmem.o \
	src/tracker_state.o \
	src/validate.o \
	src/values.o \
	src/verify_cache.o \
	src/verify_check.o \
	src/verify_eval.o \
	src/verify_probe.o \
	src/verify_sql.o \
	src/worker.o

# SHA-256 through OpenSSL's EVP interface (src/secret.c), as pgcrypto does
SHLIB_LINK = -lcrypto

DATA = $(wildcard sql/$(EXTENSION)--*.sql)
PGFILEDESC = "apikey - API keys for PostgreSQL"

REGRESS = create verify scopes rotate errors postgrest limits preload plans
REGRESS_OPTS = --load-extension=apikey --load-extension=pgcrypto
ISOLATION = rotate rotate_foreign cache cache_snapshot cache_shared $(ISOLATION_PRELOADED)
# specs that need shared_preload_libraries = 'apikey' (credits): the
# project's test command adds them for its preloaded server
ISOLATION_PRELOADED =
ISOLATION_OPTS = --inputdir=test/isolation --outputdir=test/isolation/output_iso

# PostgreSQL's TAP framework (test/tap/NNN_*.pl, helpers in
# test/tap/ApikeyTap.pm): `make prove_installcheck`, not as root.  They
# start servers of their own from the installed binaries (pg_config
# --bindir), preloaded, restarted, crashed, with a standby.  Plain `make
# installcheck` leaves them out (it tests the server PGHOST names, as any
# user); `make installcheck TAP_TESTS=1` runs them after the other two.
# 009_cross_major.pl restores dumps older majors left in a directory the
# runs share: only when APIKEY_XMAJOR_DIR names it (test/tap/run.sh does).
PROVE_TESTS = $(filter-out $(if $(APIKEY_XMAJOR_DIR),,test/tap/009_cross_major.pl),\
	$(sort $(wildcard test/tap/[0-9]*.pl)))
EXTRA_CLEAN = tmp_check

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# Export only what PostgreSQL calls (the V1 functions, the magic block,
# _PG_init, the worker's entry point); the key format and scope matcher
# stay internal and can never collide with another library's symbols.
override CPPFLAGS += -DPGDLLEXPORT='__attribute__((visibility("default")))'
override CFLAGS += -fvisibility=hidden

# Every object depends on every header of src/: a changed struct (ApikeyKey,
# TrackerState) rebuilds everything that uses it, never a stale object
# that reads it at the old offsets.  (The bitcode for JIT follows the
# objects.)
$(OBJS): $(wildcard src/*.h)

# after PGXS, which empties PROVE_FLAGS; added to a PROVE_FLAGS=... given
override PROVE_FLAGS += -I test/tap
.PHONY: prove_installcheck
prove_installcheck:
	$(prove_installcheck)

.PHONY: unit
unit:
	$(MAKE) -C test/unit check
