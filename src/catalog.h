/*-------------------------------------------------------------------------
 *
 * catalog.h
 *	  Where the extension's objects are (catalog.c): a per-backend cache of
 *	  the schema, apikey.keys, its indexes and column numbers, reset by
 *	  relcache invalidation, so the verify path makes no catalog lookup.
 *
 *-------------------------------------------------------------------------
 */
#ifndef APIKEY_CATALOG_H
#define APIKEY_CATALOG_H

#include "postgres.h"

#include "access/attnum.h"
#include "storage/lockdefs.h"

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
	AttrNumber	att_credits;	/* 1.2's plan columns; InvalidAttrNumber before */
	AttrNumber	att_refill_amount;
	AttrNumber	att_refill_interval;
	AttrNumber	att_refill_day;
	AttrNumber	att_credits_set_at;
	Oid			usage_relid;	/* apikey.usage and its primary key (1.1) */
	Oid			usage_pkey;
	Oid			owners_relid;	/* apikey.owners and its primary key (1.2) */
	Oid			owners_pkey;
	Oid			owner_usage_relid;	/* apikey.owner_usage and its primary key (1.2) */
	Oid			owner_usage_pkey;
	AttrNumber	att_o_id;		/* apikey.owners' plan columns (1.2) */
	AttrNumber	att_o_rate_limit;
	AttrNumber	att_o_rate_window;
	AttrNumber	att_o_credits;
	AttrNumber	att_o_refill_amount;
	AttrNumber	att_o_refill_interval;
	AttrNumber	att_o_refill_day;
	AttrNumber	att_o_credits_set_at;
	bool		cache_coherent; /* keys_cache_invalidate exists and fires ALWAYS */
} ApikeyCatalog;

/* the trigger that keeps the verified-key cache coherent (verify_cache.c) */
#define APIKEY_CACHE_TRIGGER "keys_cache_invalidate"

extern void apikey_catalog_init(void);
extern const ApikeyCatalog *apikey_catalog_lock(LOCKMODE lockmode);
extern Oid	apikey_extension_schema(void);
extern Oid	apikey_extension_owner(void);

#endif							/* APIKEY_CATALOG_H */
