# apikey: PGXS build.  `make`, `make install`, `make installcheck` are plain
# PGXS; scripts/test.sh runs every suite against a throwaway cluster.

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
	src/keyformat.o \
	src/postgrest.o \
	src/scope.o \
	src/secret.o \
	src/stats.o \
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

REGRESS = create verify scopes rotate errors postgrest limits
REGRESS_OPTS = --load-extension=apikey --load-extension=pgcrypto
ISOLATION = rotate rotate_foreign cache cache_snapshot
ISOLATION_OPTS = --inputdir=test/isolation --outputdir=test/isolation/output_iso

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# Export only what PostgreSQL calls (the V1 functions, the magic block,
# _PG_init, the worker's entry point); the key format and scope matcher
# stay internal and can never collide with another library's symbols.
override CPPFLAGS += -DPGDLLEXPORT='__attribute__((visibility("default")))'
override CFLAGS += -fvisibility=hidden

.PHONY: unit
unit:
	$(MAKE) -C test/unit check
