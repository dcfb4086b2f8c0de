/*-------------------------------------------------------------------------
 *
 * apikey.h
 *	  Declarations shared by the backend modules of the apikey extension.
 *
 * Module map (one concern per file):
 *	apikey.c	PG_MODULE_MAGIC and _PG_init, which calls each module's init
 *	actor.c		the user switch of create/rotate and the acting role the
 *				audit trigger records
 *	audit.c		the audit trigger on apikey.keys
 *	guc.c		the apikey.* settings
 *	catalog.c	per-backend cache of the extension's relation, index and
 *				column numbers, reset by relcache invalidation
 *	secret.c	minting a key from the strong random source, hashing it
 *	The verify path, shared by apikey_verify and the PostgREST hook:
 *	verify_path.c	check a key: parse, hash, probe, evaluate, rate limit,
 *				count; the result codes
 *	verify_probe.c	find a key's row by its hash and copy it into an
 *				ApikeyKey
 *	verify_eval.c	the pure checks on an ApikeyKey (enabled, expiry,
 *				scopes, addresses, resource) at a given time
 *	verify_cache.c	the per-backend verified-key cache and the trigger
 *				that keeps it coherent
 *	verify.c	the SQL function apikey_verify
 *	postgrest.c	apikey.postgrest_pre_request(), PostgREST's db-pre-request
 *				hook, and its settings
 *	identity.c	the request identity the hook records (apikey.key_id,
 *				apikey.owner, apikey.scopes) and the helpers reading it
 *	dbrole.c	which database roles a key may switch to (db_role)
 *	manage.c	the SQL functions apikey_create and apikey_rotate
 *	guard.c		the trigger keeping hashes, grace periods and key creation to
 *				apikey_create and apikey_rotate
 *	utility.c	the ProcessUtility hook refusing tenant-wide LOCK TABLE
 *	dropguard.c	the event trigger refusing to drop the extension with its keys
 *	tracker.c	shared memory: usage, token buckets, the verification log
 *	worker.c	the background worker writing usage and the log
 *	keyformat.c	pure C key format (see keyformat.h)
 *	scope.c		pure C scope syntax and matching (see scope.h)
 *
 * Naming: functions SQL calls carry their SQL name (apikey_verify); internal
 * helpers shared between files are apikey_<module>_<verb>; file-local
 * helpers are static and unprefixed.
 *
 *-------------------------------------------------------------------------
 */
#ifndef APIKEY_H
#define APIKEY_H

#include "postgres.h"

#include "access/attnum.h"
#include "executor/tuptable.h"
#include "utils/relcache.h"
#include "storage/lockdefs.h"
#include "utils/array.h"
#include "utils/timestamp.h"

#include "keyformat.h"

/* errdetail texts shared by every place that rejects a scope or a prefix */
#define APIKEY_SCOPE_RULE \
	"A scope is segments of [a-z0-9_.-] or \"*\" separated by colons, at most %d bytes and %d segments."
#define APIKEY_PREFIX_RULE \
	"A prefix is 2 to 32 characters: a lower-case letter, then lower-case letters, digits or underscores, ending in a letter or digit."

/*
 * APIKEY_SQL_FUNCTION(name): PG_FUNCTION_INFO_V1 plus the export that the
 * library's hidden default visibility needs (PostgreSQL 15's macro marks
 * only the info record, not the function).
 */
#define APIKEY_SQL_FUNCTION(name) \
	PG_FUNCTION_INFO_V1(name); \
	extern PGDLLEXPORT Datum name(PG_FUNCTION_ARGS)

/* at most this many scopes per key, and per verify call */
#define APIKEY_MAX_SCOPES 64

/* apikey.c */
extern bool apikey_loaded_at_startup;

/* actor.c */
typedef struct ApikeyActorSwitch
{
	Oid			userid;
	int			sec_context;
	Oid			prev_caller;
	Oid			prev_owner;
} ApikeyActorSwitch;

extern void apikey_actor_init(void);
extern ApikeyActorSwitch apikey_actor_begin(Oid owner);
extern void apikey_actor_end(ApikeyActorSwitch saved);
extern int	apikey_actor_execute(const char *sql, int nargs, Oid *argtypes,
								 Datum *values, const char *nulls, long count);
extern Datum apikey_role_name(Oid role);
extern bool apikey_actor_switched(void);
extern Oid	apikey_actor_role(void);

/* identity.c */
extern void apikey_identity_init(void);
extern void apikey_identity_set(int64 key_id, const char *owner, Datum scopes);
extern bool apikey_identity_present(void);

/* dbrole.c */
extern const char *apikey_db_role_refusal(const char *rolname, Oid member,
										  Oid *roleid, int *sqlstate);
extern void apikey_db_role_validate(const char *rolname, Oid setter);

/* postgrest.c */
extern void apikey_postgrest_init(void);

/* utility.c */
extern void apikey_utility_init(void);

/* dropguard.c */
extern void apikey_dropguard_init(void);

/* guc.c */
extern char *apikey_default_prefix;
extern void apikey_guc_init(void);

/* catalog.c */
typedef struct ApikeyCatalog
{
	Oid			namespace_oid;
	Oid			keys_relid;
	Oid			keys_owner;		/* owner of apikey.keys: create/rotate act as it */
	Oid			prefix_idx;		/* on apikey.hash_prefix(secret_hash) */
	Oid			grace_prefix_idx;	/* same on grace_secret_hash */
	AttrNumber	att_id;
	AttrNumber	att_name;
	AttrNumber	att_owner;
	AttrNumber	att_owner_role;
	AttrNumber	att_scopes;
	AttrNumber	att_resources;
	AttrNumber	att_allowed_cidrs;
	AttrNumber	att_meta;
	AttrNumber	att_enabled;
	AttrNumber	att_expires_at;
	AttrNumber	att_rate_limit;
	AttrNumber	att_rate_window;
	AttrNumber	att_grace_until;
	AttrNumber	att_secret_hash;
	AttrNumber	att_grace_secret_hash;
	AttrNumber	att_db_role;	/* 1.1; InvalidAttrNumber on a 1.0 schema */
	bool		cache_coherent; /* keys_cache_invalidate exists and fires ALWAYS */
} ApikeyCatalog;

extern void apikey_catalog_init(void);
extern const ApikeyCatalog *apikey_catalog_lock(LOCKMODE lockmode);
extern Oid	apikey_extension_schema(void);
extern Oid	apikey_extension_owner(void);

/* secret.c */
#define APIKEY_HASH_LEN 32

/*
 * apikey_hash_prefix_of: the first 8 bytes of a hash as a bigint, big
 * endian.  The verify path probes an index on this (half the B-tree depth
 * of one on the 32-byte hash) and rechecks the whole hash.
 */
static inline int64
apikey_hash_prefix_of(const uint8 *hash, size_t len)
{
	uint64		v = 0;
	size_t		i;

	for (i = 0; i < 8; i++)
		v = (v << 8) | (i < len ? hash[i] : 0);
	return (int64) v;
}

extern void apikey_secret_mint(const char *prefix, char *key, size_t keysize);
extern void apikey_secret_hash(const char *key, size_t len, uint8 *hash);

/* verify_path.c */
typedef enum ApikeyCode
{
	APIKEY_VALID = 0,
	APIKEY_MALFORMED,
	APIKEY_NOT_FOUND,
	APIKEY_DISABLED,
	APIKEY_EXPIRED,
	APIKEY_INSUFFICIENT_SCOPE,
	APIKEY_IP_DENIED,
	APIKEY_RESOURCE_DENIED,
	APIKEY_RATE_LIMITED
} ApikeyCode;

#define APIKEY_NUM_CODES (APIKEY_RATE_LIMITED + 1)

/*
 * A key's row, copied out of the table: everything the checks and the
 * callers need.  The pass-by-reference datums point into tuple, a private
 * copy, so nothing here pins a buffer or holds the relation open; it lives
 * in the memory context it was made in, and apikey_key_free() releases it.
 */
typedef struct ApikeyKey
{
	int64		key_id;
	Datum		name;			/* text */
	Datum		owner;			/* text, or 0 if NULL */
	bool		owner_isnull;
	Datum		owner_role;		/* name */
	Datum		scopes;			/* text[] */
	Datum		resources;		/* text[], or 0 if NULL */
	bool		resources_isnull;
	Datum		allowed_cidrs;	/* cidr[], or 0 if NULL */
	bool		cidrs_isnull;
	Datum		meta;			/* jsonb */
	bool		enabled;
	TimestampTz expires_at;
	bool		expires_isnull;
	int32		rate_limit;
	bool		rate_limit_isnull;
	Datum		rate_window;	/* interval, or 0 if NULL */
	bool		rate_window_isnull;
	Datum		db_role;		/* name, or 0 if NULL (or a 1.0 schema) */
	bool		db_role_isnull;
	TimestampTz grace_until;	/* set when the previous secret matched */
	bool		grace_isnull;
	HeapTuple	tuple;			/* owns the datums above */
} ApikeyKey;

/* What a check found; key is set (has_identity) for codes after NOT_FOUND. */
typedef struct ApikeyResult
{
	ApikeyCode	code;
	bool		has_identity;
	ApikeyKey	key;
	Datum		retry_after;	/* interval, or 0 if NULL */
	bool		retry_isnull;
} ApikeyResult;

/* A caller's required scopes, validated once. */
typedef struct ApikeyRequest
{
	int			nscopes;
	const char **scopes;		/* not NUL terminated */
	int		   *scope_lens;
	const char *resource;		/* NULL: no resource given */
	int			resource_len;
	Datum		client_addr;	/* inet, or 0 */
	bool		client_isnull;
	bool		unsatisfiable;	/* a required scope no key can hold */
} ApikeyRequest;

extern int	apikey_code_http_status(ApikeyCode code);
extern const char *apikey_code_name(ApikeyCode code);
extern void apikey_request_set_scopes(ApikeyRequest *req, ArrayType *required);
extern Datum apikey_code_text(ApikeyCode code);
extern void apikey_check_key(const char *key, size_t len,
							 const ApikeyRequest *req, ApikeyResult *result);
extern void apikey_check_done(ApikeyResult *result);

/* verify_probe.c */
extern bool apikey_probe_key(const ApikeyCatalog *cat, const uint8 *hash,
							 TimestampTz now, MemoryContext cache_rows,
							 ApikeyKey *key, bool *cacheable);
extern void apikey_key_free(ApikeyKey *key);

/* verify_cache.c */
extern int	apikey_cache_size;
extern void apikey_cache_init(void);
extern MemoryContext apikey_cache_rows(const ApikeyCatalog *cat);
extern bool apikey_cache_lookup(const uint8 *hash, ApikeyKey *key,
								bool *admit);
#define APIKEY_CACHE_TRIGGER "keys_cache_invalidate"
extern void apikey_cache_insert(const uint8 *hash, ApikeyKey *key);

/* verify_eval.c */
extern int	apikey_text_elems(Datum array, text ***elems);
extern ApikeyCode apikey_evaluate(const ApikeyKey *key,
								  const ApikeyRequest *req, TimestampTz now);

#endif							/* APIKEY_H */
