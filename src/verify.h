/*-------------------------------------------------------------------------
 *
 * verify.h
 *	  The verify path, shared by apikey_verify (verify_sql.c) and the
 *	  PostgREST hook (postgrest.c):
 *	verify_check.c	check a key: parse, hash, find, evaluate, rate limit,
 *				count
 *	verify_probe.c	find a key's row by its hash and copy it into an
 *				ApikeyKey
 *	keycache.c	the shared verified-key cache (keycache.h), with
 *				shared_preload_libraries on a primary
 *	verify_cache.c	the per-backend verified-key cache (otherwise) and the
 *				trigger that keeps both coherent
 *	verify_eval.c	the pure checks on an ApikeyKey (enabled, expiry,
 *				scopes, addresses, resource) at a given time
 *
 *-------------------------------------------------------------------------
 */
#ifndef APIKEY_VERIFY_H
#define APIKEY_VERIFY_H

#include "postgres.h"

#include "access/htup.h"
#include "datatype/timestamp.h"
#include "utils/array.h"

#include "catalog.h"
#include "codes.h"
#include "plan.h"
#include "tracker.h"

/* the plan of a key's owner, from apikey.owners (1.2) */
typedef struct ApikeyOwnerPlan
{
	int64		owner_id;		/* apikey.owners.id: its entry in shared memory */
	int32		rate_limit;		/* 0: none */
	Interval	rate_window;
	bool		metered;
	PlanCredits credits;
} ApikeyOwnerPlan;

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
	bool		metered;		/* credits is set (1.2) */
	PlanCredits credits;
	bool		has_owner_plan; /* its owner has a rate limit or credits (1.2) */
	ApikeyOwnerPlan owner_plan;
	TimestampTz grace_until;	/* set when the previous secret matched */
	bool		grace_isnull;
	ApikeyTrackerHint tracker;	/* where its tracker entry was last found */
	HeapTuple	tuple;			/* owns the datums above (a probed row) */
	void	   *copy;			/* or this (a copy from the shared cache) */
} ApikeyKey;

/* What a check found; key is set (has_identity) for codes after NOT_FOUND. */
typedef struct ApikeyResult
{
	ApikeyCode	code;
	bool		has_identity;
	ApikeyKey	key;
	Datum		retry_after;	/* interval, or 0 if NULL */
	bool		retry_isnull;
	bool		has_remaining;	/* credits_remaining: a metered balance applied */
	int64		credits_remaining;
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
	int64		cost;			/* credits a VALID call takes from a metered balance */
} ApikeyRequest;

/* verify_check.c */
extern void apikey_request_set_scopes(ApikeyRequest *req, ArrayType *required);
extern void apikey_check_key(const char *key, size_t len,
							 const ApikeyRequest *req, ApikeyResult *result);
extern void apikey_check_done(ApikeyResult *result);

/* verify_probe.c */
extern bool apikey_probe_key(const ApikeyCatalog *cat, const uint8 *hash,
							 TimestampTz now, MemoryContext cache_rows,
							 ApikeyKey *key, bool *cacheable);
extern void apikey_key_free(ApikeyKey *key);
extern void apikey_probe_balance(const ApikeyCatalog *cat, Oid relid, Oid pkey,
								 int64 id, const PlanCredits *rule, PlanBalance *b);

/* verify_cache.c */
extern int	apikey_cache_size;
extern void apikey_cache_init(void);
extern MemoryContext apikey_cache_rows(const ApikeyCatalog *cat);
extern bool apikey_cache_lookup(const uint8 *hash, ApikeyKey *key,
								bool *admit);
extern void apikey_cache_insert(const uint8 *hash, ApikeyKey *key);

/* verify_eval.c */
extern ArrayType *apikey_missing_scopes(Datum granted, const ApikeyRequest *req);
extern ApikeyCode apikey_evaluate(const ApikeyKey *key,
								  const ApikeyRequest *req, TimestampTz now);

#endif							/* APIKEY_VERIFY_H */
