# apikey: PGXS build.  `make`, `make install`, `make installcheck` are plain
# PGXS; scripts/test.sh runs every suite against a throwaway cluster.

EXTENSION = apikey
EXTVERSION = $(shell sed -n "s/^default_version *= *'\([^']*\)'/\1/p" $(EXTENSION).control)

MODULE_big = apikey
OBJS = \
	src/actor.o \
	src/apikey.o \
	src/audit.o \
	src/catalog.o \
	src/dbrole.o \
	src/dropguard.o \
	src/guard.o \
	src/guc.o \
	src/identity.o \
	src/keyformat.o \
	src/manage.o \
	src/postgrest.o \
	src/scope.o \
	src/secret.o \
	src/tracker.o \
	src/utility.o \
	src/verify.o \
	src/verify_cache.o \
	src/verify_eval.o \
	src/verify_path.o \
	src/verify_probe.o \
	src/worker.o

# SHA-256 through OpenSSL's EVP interface (src/secret.c), as pgcrypto does
SHLIB_LINK = -lcrypto

DATA = $(wildcard sql/$(EXTENSION)--*.sql)
PGFILEDESC = "apikey - API keys for PostgreSQL"

REGRESS = create verify scopes rotate errors postgrest limits preload
REGRESS_OPTS = --load-extension=apikey --load-extension=pgcrypto
ISOLATION = rotate rotate_foreign cache
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
