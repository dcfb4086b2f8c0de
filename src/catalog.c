/*-------------------------------------------------------------------------
 *
 * catalog.c
 *	  Per-backend cache of the extension's objects: the OIDs of apikey.keys
 *	  and its two hash-prefix indexes, the table's owner and the column numbers the
 *	  verify path reads.  Looked up by name once, then reused until a
 *	  relcache invalidation touches one of them (DROP/CREATE EXTENSION,
 *	  ALTER TABLE, a cache reset), so the hot path does no catalog lookup.
 *
 *	  apikey_catalog_lock() returns the cache with apikey.keys locked, so
 *	  the OIDs cannot go stale while the caller uses them.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/table.h"
#include "catalog/namespace.h"
#include "access/genam.h"
#include "access/htup_details.h"
#include "access/stratnum.h"
#include "catalog/pg_extension.h"
#include "catalog/pg_type.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "storage/lmgr.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "commands/trigger.h"
#include "utils/rel.h"

#include "catalog.h"
#include "common.h"
#include "compat.h"

static ApikeyCatalog cache;
static bool cache_valid = false;

/*
 * relcache_callback: forget everything when one of our relations (or the
 * whole relcache) is invalidated.
 */
static void
relcache_callback(Datum arg, Oid relid)
{
	if (!cache_valid)
		return;
	if (relid == InvalidOid ||
		relid == cache.keys_relid ||
		relid == cache.prefix_idx ||
		relid == cache.grace_prefix_idx ||
		relid == cache.usage_relid ||
		relid == cache.usage_pkey ||
		relid == cache.owners_relid ||
		relid == cache.owners_pkey ||
		relid == cache.owner_usage_relid ||
		relid == cache.owner_usage_pkey)
		cache_valid = false;
}

/*
 * apikey_catalog_init: register the invalidation callback (once per backend).
 */
void
apikey_catalog_init(void)
{
	CacheRegisterRelcacheCallback(relcache_callback, (Datum) 0);
}

static void
not_installed(void)
{
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("extension \"apikey\" is not installed in this database"),
			 errhint("Run CREATE EXTENSION apikey.")));
}

/*
 * optional_column: the column's number, or InvalidAttrNumber if missing.
 * A column of another type than the one verification reads it as (a
 * superuser's ALTER TABLE ... ALTER COLUMN TYPE, or a RENAME and an ADD
 * COLUMN of the same name) is refused: read as the wrong type it would
 * crash the backend.
 */
static AttrNumber
optional_column(TupleDesc desc, const char *name, Oid type)
{
	int			i;

	for (i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (att->attisdropped || strcmp(NameStr(att->attname), name) != 0)
			continue;
		if (att->atttypid != type)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_TABLE_DEFINITION),
					 errmsg("column \"%s\" of apikey.%s has type %s, not %s",
							name, get_rel_name(att->attrelid), format_type_be(att->atttypid),
							format_type_be(type)),
					 errdetail("apikey.%s was altered; verification cannot read it.",
							   get_rel_name(att->attrelid)),
					 errhint("Restore the column's type, or reinstall the extension.")));
		return att->attnum;
	}
	return InvalidAttrNumber;
}

static AttrNumber
column(TupleDesc desc, const char *name, Oid type)
{
	AttrNumber	attnum = optional_column(desc, name, type);

	if (attnum != InvalidAttrNumber)
		return attnum;
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("column \"%s\" of apikey.keys is missing", name),
			 errhint("Reinstall the extension.")));
	return InvalidAttrNumber;	/* keep compiler quiet */
}

/*
 * extension_row: apikey's schema and owner, from its pg_extension row;
 * InvalidOid for both if it is not installed in this database.
 */
static void
extension_row(Oid *nsp, Oid *owner)
{
	Relation	rel;
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tup;

	*nsp = *owner = InvalidOid;
	rel = table_open(ExtensionRelationId, AccessShareLock);
	ScanKeyInit(&key, Anum_pg_extension_extname, BTEqualStrategyNumber,
				F_NAMEEQ, CStringGetDatum("apikey"));
	scan = systable_beginscan(rel, ExtensionNameIndexId, true, NULL, 1, &key);
	tup = systable_getnext(scan);
	if (HeapTupleIsValid(tup))
	{
		*nsp = ((Form_pg_extension) GETSTRUCT(tup))->extnamespace;
		*owner = ((Form_pg_extension) GETSTRUCT(tup))->extowner;
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
}

/* apikey_extension_schema: apikey's schema, or InvalidOid */
Oid
apikey_extension_schema(void)
{
	Oid			nsp;
	Oid			owner;

	extension_row(&nsp, &owner);
	return nsp;
}

/* apikey_extension_owner: the role that installed apikey, or InvalidOid */
Oid
apikey_extension_owner(void)
{
	Oid			nsp;
	Oid			owner;

	extension_row(&nsp, &owner);
	return owner;
}

/*
 * cache_trigger_fires: true if apikey.keys has the verified-key cache's
 * invalidation trigger (1.1), enabled in every replication role.  Without
 * it (a database still on 1.0, or a DBA's ALTER TABLE ... DISABLE TRIGGER,
 * which itself invalidates this catalog) the cache is off.
 */
static bool
cache_trigger_fires(Relation rel)
{
	int			i;

	if (rel->trigdesc == NULL)
		return false;
	for (i = 0; i < rel->trigdesc->numtriggers; i++)
	{
		Trigger    *t = &rel->trigdesc->triggers[i];

		if (strcmp(t->tgname, APIKEY_CACHE_TRIGGER) == 0)
			return t->tgenabled == TRIGGER_FIRES_ALWAYS;
	}
	return false;
}

/*
 * table_with_pkey: the table of that name in nsp and its primary key
 * (InvalidOid for both if missing: a schema before 1.1 or 1.2)
 */
static Oid
table_with_pkey(const char *name, Oid nsp, Oid *pkey)
{
	Oid			relid = get_relname_relid(name, nsp);
	Relation	rel;

	*pkey = InvalidOid;
	if (!OidIsValid(relid))
		return InvalidOid;
	rel = try_table_open(relid, AccessShareLock);
	if (rel == NULL)
		return InvalidOid;
	*pkey = apikey_primary_key_index(rel);
	table_close(rel, NoLock);
	return OidIsValid(*pkey) ? relid : InvalidOid;
}

/*
 * fill: look everything up by name.  Takes no lock of its own beyond the
 * transient one opening the table needs.
 */
static void
fill(void)
{
	ApikeyCatalog c;
	Relation	rel;
	TupleDesc	desc;

	memset(&c, 0, sizeof(c));
	/* the extension's own schema, not whatever is called "apikey" */
	c.namespace_oid = apikey_extension_schema();
	if (!OidIsValid(c.namespace_oid))
		not_installed();
	c.keys_relid = get_relname_relid("keys", c.namespace_oid);
	c.prefix_idx = get_relname_relid("keys_hash_prefix_idx", c.namespace_oid);
	c.grace_prefix_idx = get_relname_relid("keys_grace_hash_prefix_idx", c.namespace_oid);
	if (!OidIsValid(c.keys_relid) || !OidIsValid(c.prefix_idx) ||
		!OidIsValid(c.grace_prefix_idx))
		not_installed();

	rel = try_table_open(c.keys_relid, AccessShareLock);
	if (rel == NULL)
		not_installed();
	desc = RelationGetDescr(rel);
	c.keys_owner = rel->rd_rel->relowner;
	c.att_id = column(desc, "id", INT8OID);
	c.att_name = column(desc, "name", TEXTOID);
	c.att_owner = column(desc, "owner", TEXTOID);
	c.att_owner_role = column(desc, "owner_role", NAMEOID);
	c.att_scopes = column(desc, "scopes", TEXTARRAYOID);
	c.att_resources = column(desc, "resources", TEXTARRAYOID);
	c.att_allowed_cidrs = column(desc, "allowed_cidrs", CIDRARRAYOID);
	c.att_meta = column(desc, "meta", JSONBOID);
	c.att_enabled = column(desc, "enabled", BOOLOID);
	c.att_expires_at = column(desc, "expires_at", TIMESTAMPTZOID);
	c.att_rate_limit = column(desc, "rate_limit", INT4OID);
	c.att_rate_window = column(desc, "rate_window", INTERVALOID);
	c.att_grace_until = column(desc, "grace_until", TIMESTAMPTZOID);
	c.att_secret_hash = column(desc, "secret_hash", BYTEAOID);
	c.att_grace_secret_hash = column(desc, "grace_secret_hash", BYTEAOID);
	/* added in 1.1: a database not yet updated from 1.0 has none */
	c.att_db_role = optional_column(desc, "db_role", NAMEOID);
	/* added in 1.2 */
	c.att_credits = optional_column(desc, "credits", INT8OID);
	c.att_refill_amount = optional_column(desc, "refill_amount", INT8OID);
	c.att_refill_interval = optional_column(desc, "refill_interval", TEXTOID);
	c.att_refill_day = optional_column(desc, "refill_day", INT4OID);
	c.att_credits_set_at = optional_column(desc, "credits_set_at", TIMESTAMPTZOID);
	if (c.att_credits_set_at == InvalidAttrNumber)
		c.att_credits = InvalidAttrNumber;
	c.cache_coherent = cache_trigger_fires(rel);
	table_close(rel, NoLock);

	/*
	 * owners' plans (1.2), and where the worker writes balances (read back
	 * after a restart)
	 */
	c.usage_relid = table_with_pkey("usage", c.namespace_oid, &c.usage_pkey);
	c.owners_relid = table_with_pkey("owners", c.namespace_oid, &c.owners_pkey);
	c.owner_usage_relid = table_with_pkey("owner_usage", c.namespace_oid, &c.owner_usage_pkey);
	if (OidIsValid(c.owners_relid))
	{
		rel = try_table_open(c.owners_relid, AccessShareLock);
		if (rel != NULL)
		{
			desc = RelationGetDescr(rel);
			c.att_o_id = optional_column(desc, "id", INT8OID);
			c.att_o_rate_limit = optional_column(desc, "rate_limit", INT4OID);
			c.att_o_rate_window = optional_column(desc, "rate_window", INTERVALOID);
			c.att_o_credits = optional_column(desc, "credits", INT8OID);
			c.att_o_refill_amount = optional_column(desc, "refill_amount", INT8OID);
			c.att_o_refill_interval = optional_column(desc, "refill_interval", TEXTOID);
			c.att_o_refill_day = optional_column(desc, "refill_day", INT4OID);
			c.att_o_credits_set_at = optional_column(desc, "credits_set_at", TIMESTAMPTZOID);
			table_close(rel, NoLock);
			/* owners of 1.2's development without plans: none applies */
			if (c.att_o_id == InvalidAttrNumber || c.att_o_rate_limit == InvalidAttrNumber ||
				c.att_o_rate_window == InvalidAttrNumber || c.att_o_credits == InvalidAttrNumber ||
				c.att_o_refill_amount == InvalidAttrNumber || c.att_o_refill_interval == InvalidAttrNumber ||
				c.att_o_refill_day == InvalidAttrNumber || c.att_o_credits_set_at == InvalidAttrNumber)
				c.owners_relid = InvalidOid;
		}
		else
			c.owners_relid = InvalidOid;
	}

	cache = c;
	cache_valid = true;
}

/*
 * apikey_catalog_lock: return the cached catalog with apikey.keys locked in
 * lockmode.  Locking processes pending invalidations; if they emptied the
 * cache, look up again (the way RangeVarGetRelidExtended retries).
 */
const ApikeyCatalog *
apikey_catalog_lock(LOCKMODE lockmode)
{
	for (;;)
	{
		Oid			relid;

		if (!cache_valid)
			fill();
		relid = cache.keys_relid;
		LockRelationOid(relid, lockmode);
		if (cache_valid && cache.keys_relid == relid)
			return &cache;
		UnlockRelationOid(relid, lockmode);
	}
}
