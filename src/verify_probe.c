/*-------------------------------------------------------------------------
 *
 * verify_probe.c
 *	  The verify path's one table access: find a key's row by the SHA-256
 *	  of its secret and copy it into an ApikeyKey.  One probe of the index
 *	  on the hash's 8-byte prefix (a hash index from 1.2, a B-tree before:
 *	  the scan key takes the index's own equality strategy); a second probe, of the
 *	  grace index, only when the first misses (the previous secret of a
 *	  rotated key).  Every candidate is rechecked against the whole hash,
 *	  as a hash index's results must be.
 *
 *	  The row is copied out before the scan ends, so no buffer pin or open
 *	  relation outlives this file: the checks (verify_eval.c) and callers
 *	  work on a plain struct.  No SPI, no writes: it runs in READ ONLY
 *	  transactions and on hot standbys.
 *
 *	  It also says whether the row may be cached (verify_cache.c): only if
 *	  its header, read under the buffer's lock, shows no other transaction
 *	  replacing or deleting it and it is not our own uncommitted version,
 *	  so a version on its way out is never kept past the call that read it.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/pg_am.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/tuptable.h"
#include "storage/bufmgr.h"
#include "utils/fmgroids.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "catalog.h"
#include "compat.h"
#include "heaprow.h"
#include "secret.h"
#include "verify.h"

/*
 * own_version: the row is this transaction's own, not committed: credits
 * set in it are not a grant yet (only its commit makes one)
 */
static bool
own_version(HeapTuple tup)
{
	return TransactionIdIsCurrentTransactionId(HeapTupleHeaderGetRawXmin(tup->t_data));
}

/*
 * tentative: credits read from this transaction's own uncommitted row
 * draw on the balance shared memory has, never replace it: the grant
 * counts from its commit, and a rollback must leave no trace of it.  (A
 * balance shared memory does not have yet starts from the row, under the
 * oldest grant, which the committed one replaces.)
 */
static void
tentative(PlanCredits *c)
{
	c->set_at = DT_NOBEGIN + 1;
}

static bool credits_of(const Datum *values, const bool *nulls, AttrNumber credits,
					   AttrNumber set_at, AttrNumber amount, AttrNumber interval,
					   AttrNumber day, PlanCredits *out);
static void probe_owner(const ApikeyCatalog *cat, ApikeyKey *key);

/*
 * probe: find the row whose hash column hash_att equals hash, through the
 * index on apikey.hash_prefix() of that column; true and the row in slot
 * if found.  Candidates sharing the 8-byte prefix are rechecked in full.
 */
static bool
probe(Relation rel, Oid indexoid, AttrNumber hash_att, const uint8 *hash,
	  TupleTableSlot *slot)
{
	Relation	index;
	IndexScanDesc scan;
	ScanKeyData skey;
	bool		found = false;

	index = index_open(indexoid, AccessShareLock);
	ScanKeyInit(&skey, 1,
				index->rd_rel->relam == HASH_AM_OID ? HTEqualStrategyNumber : BTEqualStrategyNumber,
				F_INT8EQ, Int64GetDatum(apikey_hash_prefix_of(hash, APIKEY_HASH_LEN)));
	scan = apikey_index_beginscan(rel, index, GetActiveSnapshot(), 1);
	index_rescan(scan, &skey, 1, NULL, 0);
	while (!found && index_getnext_slot(scan, ForwardScanDirection, slot))
	{
		bool		isnull;
		Datum		d = slot_getattr(slot, hash_att, &isnull);

		if (!isnull)
		{
			bytea	   *h = DatumGetByteaPP(d);

			found = VARSIZE_ANY_EXHDR(h) == APIKEY_HASH_LEN &&
				memcmp(VARDATA_ANY(h), hash, APIKEY_HASH_LEN) == 0;
		}
	}
	index_endscan(scan);
	index_close(index, NoLock);
	return found;
}

/*
 * required: a column every key has (NOT NULL in apikey.keys).  A NULL one
 * (a superuser dropped the constraint) makes the row unreadable: refused
 * with an error, never read as a null pointer.
 */
static Datum
required(const Datum *values, const bool *nulls, AttrNumber attnum,
		 int64 key_id, const char *what)
{
	if (nulls[attnum - 1])
		ereport(ERROR,
				(errcode(ERRCODE_NOT_NULL_VIOLATION),
				 errmsg("apikey.keys row %lld has a null %s", (long long) key_id, what),
				 errdetail("apikey.keys was altered; verification cannot read the row."),
				 errhint("Give the key a %s, or restore the NOT NULL constraint.", what)));
	return values[attnum - 1];
}

/* attribute att of the deformed row, 0 and *isnull when it is NULL */
static inline Datum
att(const Datum *values, const bool *nulls, AttrNumber attnum, bool *isnull)
{
	*isnull = nulls[attnum - 1];
	return *isnull ? (Datum) 0 : values[attnum - 1];
}

/*
 * settled: whether the row in slot (a buffer heap tuple) may be cached
 * (apikey_row_settled, heaprow.c).
 */
static bool
settled(TupleTableSlot *slot)
{
	BufferHeapTupleTableSlot *bslot = (BufferHeapTupleTableSlot *) slot;

	if (!TTS_IS_BUFFERTUPLE(slot) || !BufferIsValid(bslot->buffer))
		return false;
	return apikey_row_settled(bslot->buffer, bslot->base.tuple);
}

/*
 * copy_key: copy the row in slot into key, in memory context cxt.  One
 * palloc'd tuple holds every pass-by-reference value.
 */
static void
copy_key(const ApikeyCatalog *cat, Relation rel, TupleTableSlot *slot,
		 MemoryContext cxt, ApikeyKey *key)
{
	TupleDesc	desc = RelationGetDescr(rel);
	Datum		values_buf[64];
	bool		nulls_buf[64];
	Datum	   *values = values_buf;
	bool	   *nulls = nulls_buf;
	bool		isnull;
	Datum		d;
	MemoryContext old;

	if (desc->natts > lengthof(values_buf))
	{
		values = palloc(sizeof(Datum) * desc->natts);
		nulls = palloc(sizeof(bool) * desc->natts);
	}
	old = MemoryContextSwitchTo(cxt);
	key->tuple = ExecCopySlotHeapTuple(slot);
	MemoryContextSwitchTo(old);
	heap_deform_tuple(key->tuple, desc, values, nulls);

	key->key_id = DatumGetInt64(required(values, nulls, cat->att_id, 0, "id"));
	key->name = required(values, nulls, cat->att_name, key->key_id, "name");
	key->owner = att(values, nulls, cat->att_owner, &key->owner_isnull);
	key->owner_role = required(values, nulls, cat->att_owner_role, key->key_id, "owner_role");
	key->scopes = required(values, nulls, cat->att_scopes, key->key_id, "scopes");
	key->resources = att(values, nulls, cat->att_resources,
						 &key->resources_isnull);
	key->allowed_cidrs = att(values, nulls, cat->att_allowed_cidrs,
							 &key->cidrs_isnull);
	key->meta = required(values, nulls, cat->att_meta, key->key_id, "meta");
	d = att(values, nulls, cat->att_enabled, &isnull);
	key->enabled = !isnull && DatumGetBool(d);
	d = att(values, nulls, cat->att_expires_at, &key->expires_isnull);
	key->expires_at = key->expires_isnull ? 0 : DatumGetTimestampTz(d);
	d = att(values, nulls, cat->att_rate_limit, &key->rate_limit_isnull);
	key->rate_limit = key->rate_limit_isnull ? 0 : DatumGetInt32(d);
	key->rate_window = att(values, nulls, cat->att_rate_window,
						   &key->rate_window_isnull);
	if (cat->att_db_role != InvalidAttrNumber)
		key->db_role = att(values, nulls, cat->att_db_role,
						   &key->db_role_isnull);
	else
	{
		key->db_role = (Datum) 0;
		key->db_role_isnull = true;
	}
	key->metered = cat->att_credits != InvalidAttrNumber &&
		credits_of(values, nulls, cat->att_credits, cat->att_credits_set_at,
				   cat->att_refill_amount, cat->att_refill_interval,
				   cat->att_refill_day, &key->credits);
	if (key->metered && own_version(key->tuple))
		tentative(&key->credits);
	if (values != values_buf)
	{
		pfree(values);
		pfree(nulls);
	}
}

/*
 * apikey_probe_key: find the key whose current secret, or whose previous
 * secret still in its grace period at now, hashes to hash; true and the
 * row copied into key if found.  The caller holds cat's lock.
 *
 * With cache_rows (verify_cache.c), a row that may be cached is copied into
 * that context and *cacheable set: the caller must then hand it to
 * apikey_cache_insert.  Any other row is copied into the current context.
 */
bool
apikey_probe_key(const ApikeyCatalog *cat, const uint8 *hash,
				 TimestampTz now, MemoryContext cache_rows,
				 ApikeyKey *key, bool *cacheable)
{
	Relation	rel;
	TupleTableSlot *slot;
	bool		found;
	TimestampTz grace_until = 0;
	bool		grace_isnull = true;

	*cacheable = false;
	rel = table_open(cat->keys_relid, NoLock);
	slot = table_slot_create(rel, NULL);

	found = probe(rel, cat->prefix_idx, cat->att_secret_hash, hash, slot);
	if (!found &&
		probe(rel, cat->grace_prefix_idx, cat->att_grace_secret_hash,
			  hash, slot))
	{
		bool		isnull;
		Datum		until = slot_getattr(slot, cat->att_grace_until, &isnull);

		/* the previous secret of a rotated key, still in its grace period */
		if (!isnull && DatumGetTimestampTz(until) > now)
		{
			found = true;
			grace_until = DatumGetTimestampTz(until);
			grace_isnull = false;
		}
	}
	if (found)
	{
		/*
		 * Only current secrets are cached: a previous one could later be
		 * shadowed by a row inserted with it as its current secret.
		 */
		*cacheable = cache_rows != NULL && grace_isnull && settled(slot);
		copy_key(cat, rel, slot,
				 *cacheable ? cache_rows : CurrentMemoryContext, key);
		probe_owner(cat, key);
		key->grace_until = grace_until;
		key->grace_isnull = grace_isnull;
	}

	ExecDropSingleTupleTableSlot(slot);
	table_close(rel, NoLock);
	return found;
}

/*
 * typed_column: the number of rel's column name if it has type type, else
 * InvalidAttrNumber
 */
static AttrNumber
typed_column(Relation rel, const char *name, Oid type)
{
	TupleDesc	desc = RelationGetDescr(rel);
	int			i;

	for (i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (!att->attisdropped && strcmp(NameStr(att->attname), name) == 0)
			return att->atttypid == type ? att->attnum : InvalidAttrNumber;
	}
	return InvalidAttrNumber;
}

/*
 * apikey_probe_balance: the balance of a metered key or owner (rule) as the
 * worker last wrote it into its table relid (apikey.usage or
 * apikey.owner_usage, found through its primary key pkey by id), or as its
 * grant says when none was written for this grant.  Read with the latest
 * snapshot: the worker's in-place writes are not transactional, and a row
 * it inserted after this transaction's snapshot still counts.
 */
void
apikey_probe_balance(const ApikeyCatalog *cat, Oid relid, Oid pkey, int64 id,
					 const PlanCredits *rule, PlanBalance *b)
{
	Relation	rel;
	Relation	index;
	IndexScanDesc scan;
	TupleTableSlot *slot;
	ScanKeyData skey;
	AttrNumber	att_remaining;
	AttrNumber	att_set_at;
	AttrNumber	att_refilled;

	b->set_at = rule->set_at;
	b->period = rule->set_at;
	b->balance = rule->credits;
	if (!OidIsValid(relid) || !OidIsValid(pkey))
		return;
	rel = try_table_open(relid, AccessShareLock);
	if (rel == NULL)
		return;
	att_remaining = typed_column(rel, "credits_remaining", INT8OID);
	att_set_at = typed_column(rel, "credits_set_at", TIMESTAMPTZOID);
	att_refilled = typed_column(rel, "credits_refilled_at", TIMESTAMPTZOID);
	if (att_remaining != InvalidAttrNumber && att_set_at != InvalidAttrNumber &&
		att_refilled != InvalidAttrNumber)
	{
		index = index_open(pkey, AccessShareLock);
		slot = table_slot_create(rel, NULL);
		ScanKeyInit(&skey, 1, BTEqualStrategyNumber, F_INT8EQ, Int64GetDatum(id));
		scan = apikey_index_beginscan(rel, index, GetLatestSnapshot(), 1);
		index_rescan(scan, &skey, 1, NULL, 0);
		if (index_getnext_slot(scan, ForwardScanDirection, slot))
		{
			bool		n1,
						n2,
						n3;
			Datum		remaining = slot_getattr(slot, att_remaining, &n1);
			Datum		set_at = slot_getattr(slot, att_set_at, &n2);
			Datum		refilled = slot_getattr(slot, att_refilled, &n3);

			/* written for this grant (or a newer one, seen before the row) */
			if (!n1 && !n2 && !n3 && DatumGetTimestampTz(set_at) >= rule->set_at)
			{
				b->set_at = DatumGetTimestampTz(set_at);
				b->period = DatumGetTimestampTz(refilled);
				b->balance = DatumGetInt64(remaining);
			}
		}
		index_endscan(scan);
		ExecDropSingleTupleTableSlot(slot);
		index_close(index, AccessShareLock);
	}
	table_close(rel, AccessShareLock);
}

/* credits_of: a plan's credits and refill, from a row's deformed columns */
static bool
credits_of(const Datum *values, const bool *nulls, AttrNumber credits,
		   AttrNumber set_at, AttrNumber amount, AttrNumber interval,
		   AttrNumber day, PlanCredits *out)
{
	memset(out, 0, sizeof(*out));
	if (nulls[credits - 1])
		return false;
	out->credits = DatumGetInt64(values[credits - 1]);
	out->set_at = nulls[set_at - 1] ? DT_NOBEGIN + 1 : DatumGetTimestampTz(values[set_at - 1]);
	if (!nulls[amount - 1] && !nulls[interval - 1])
	{
		text	   *t = DatumGetTextPP(values[interval - 1]);

		out->refill_amount = DatumGetInt64(values[amount - 1]);
		out->interval = plan_interval_of(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
	}
	out->refill_day = nulls[day - 1] ? 1 : (uint8) DatumGetInt32(values[day - 1]);
	return true;
}

/*
 * probe_owner: the plan of the key's owner, from its row of apikey.owners
 * (found through the primary key, with the latest snapshot: a plan applies
 * from its commit on, to every transaction; the caches are emptied when
 * one changes).  A key whose owner has no row, or a row without a rate
 * limit or credits, has no owner plan.
 */
static void
probe_owner(const ApikeyCatalog *cat, ApikeyKey *key)
{
	Relation	rel;
	Relation	index;
	IndexScanDesc scan;
	TupleTableSlot *slot;
	ScanKeyData skey;

	key->has_owner_plan = false;
	if (key->owner_isnull || !OidIsValid(cat->owners_relid))
		return;
	rel = try_table_open(cat->owners_relid, AccessShareLock);
	if (rel == NULL)
		return;
	index = index_open(cat->owners_pkey, AccessShareLock);
	slot = table_slot_create(rel, NULL);
	ScanKeyInit(&skey, 1, BTEqualStrategyNumber, F_TEXTEQ, key->owner);
	skey.sk_collation = index->rd_indcollation[0];
	scan = apikey_index_beginscan(rel, index, GetLatestSnapshot(), 1);
	index_rescan(scan, &skey, 1, NULL, 0);
	if (index_getnext_slot(scan, ForwardScanDirection, slot))
	{
		TupleDesc	desc = RelationGetDescr(rel);
		Datum	   *values = palloc(sizeof(Datum) * desc->natts);
		bool	   *nulls = palloc(sizeof(bool) * desc->natts);
		ApikeyOwnerPlan *p = &key->owner_plan;

		slot_getallattrs(slot);
		memcpy(values, slot->tts_values, sizeof(Datum) * desc->natts);
		memcpy(nulls, slot->tts_isnull, sizeof(bool) * desc->natts);
		memset(p, 0, sizeof(*p));
		p->owner_id = nulls[cat->att_o_id - 1] ? 0 : DatumGetInt64(values[cat->att_o_id - 1]);
		if (!nulls[cat->att_o_rate_limit - 1] && !nulls[cat->att_o_rate_window - 1])
		{
			p->rate_limit = DatumGetInt32(values[cat->att_o_rate_limit - 1]);
			p->rate_window = *DatumGetIntervalP(values[cat->att_o_rate_window - 1]);
		}
		p->metered = credits_of(values, nulls, cat->att_o_credits, cat->att_o_credits_set_at,
								cat->att_o_refill_amount, cat->att_o_refill_interval,
								cat->att_o_refill_day, &p->credits);
		if (p->metered)
		{
			bool		should_free;
			HeapTuple	tup = ExecFetchSlotHeapTuple(slot, false, &should_free);

			if (own_version(tup))
				tentative(&p->credits);
			if (should_free)
				heap_freetuple(tup);
		}
		key->has_owner_plan = p->owner_id != 0 && (p->rate_limit > 0 || p->metered);
		pfree(values);
		pfree(nulls);
	}
	index_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	index_close(index, AccessShareLock);
	table_close(rel, AccessShareLock);
}

/* apikey_key_free: release a key made by apikey_probe_key */
void
apikey_key_free(ApikeyKey *key)
{
	if (key->tuple != NULL)
		heap_freetuple(key->tuple);
	if (key->copy != NULL)
		pfree(key->copy);
	key->tuple = NULL;
	key->copy = NULL;
}
