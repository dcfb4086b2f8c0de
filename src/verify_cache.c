/*-------------------------------------------------------------------------
 *
 * verify_cache.c
 *	  The verified-key cache: per backend, the rows of recently verified
 *	  keys, keyed by the SHA-256 of the presented secret (never the secret
 *	  itself), so that a repeated key skips the index probe and heap fetch.
 *	  What a hit returns is the row as it was copied; every check on it,
 *	  time-based ones included, runs again on every call (verify_eval.c).
 *
 *	  Bounded: apikey.cache_size entries, in sets of CACHE_WAYS found from
 *	  the hash's bytes (SHA-256 is uniform, so no second hash is needed);
 *	  within a full set a clock picks the victim, and only a key that
 *	  missed twice is let in (see CacheSet).  Rows live in their own
 *	  memory context, "apikey verified-key cache", which is reset whole when
 *	  the cache is emptied.
 *
 *	  Coherent, with PostgreSQL's own invalidation machinery: a row trigger
 *	  on apikey.keys (keys_cache_invalidate, BEFORE UPDATE OR DELETE, ENABLE
 *	  ALWAYS; a row trigger because logical replication's apply worker fires
 *	  no statement triggers) sends a relcache invalidation of the table.  It
 *	  goes out at commit, never on rollback; every backend takes it at the
 *	  start of its next transaction and at every verification, and the
 *	  startup process of a hot standby replays it from the commit record.
 *	  Our relcache callback then marks the cache stale, and the next lookup
 *	  empties it.  TRUNCATE needs no trigger: it gives the table a new
 *	  relfilenode, which invalidates it.  INSERT needs none: a new row cannot
 *	  change a cached one (only current secrets are cached, and the current
 *	  secret is unique), and misses are not cached.  The worker's usage
 *	  flushes write apikey.usage, never apikey.keys.  Without the trigger
 *	  firing ALWAYS (a database still on 1.0, or the trigger disabled) the
 *	  cache is off (catalog.c: cache_coherent).
 *
 *	  PostgreSQL makes a commit visible before it sends its invalidations.
 *	  To close that window, with shared memory the trigger's transaction
 *	  also bumps a shared generation just before it commits (tracker_shmem.c),
 *	  and a lookup that sees a new generation empties the cache first.  A
 *	  row read in between is not cached: its xmax is the committing
 *	  transaction (see below).  Standbys and servers without the library
 *	  preloaded keep that window of microseconds.
 *
 *	  A row is cached only if no other transaction is changing it when it
 *	  is copied (verify_probe.c checks its xmax under the buffer lock): a
 *	  verifier whose snapshot still shows a version that a concurrent
 *	  transaction has replaced or deleted uses it for this call only.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "commands/trigger.h"
#include "utils/guc.h"
#include "utils/inval.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "executor/spi.h"

#include "catalog.h"
#include "heaprow.h"
#include "keycache.h"
#include "common.h"
#include "secret.h"
#include "tracker.h"
#include "verify.h"

#define CACHE_WAYS		8

/*
 * A set: one cache line of tags, so that a miss reads 64 bytes and not the
 * eight entries.  A tag is 2 more bytes of the hash; the entry holds the
 * whole hash, compared on a tag match.  ghost holds the tags of keys that
 * missed while the set was full: a key is admitted into a full set only
 * when it misses a second time, so a stream of keys seen once (a hot set
 * larger than the cache) does not churn the cache and costs one line.
 */
typedef struct CacheSet
{
	uint16		tag[CACHE_WAYS];
	uint16		ghost[CACHE_WAYS];
	uint8		used;			/* bit i: way i holds a row */
	uint8		referenced;		/* bit i: way i used since the clock passed */
	uint8		hand;			/* where the clock stands */
	uint8		ghosts;			/* bit i: ghost[i] is set */
	uint8		ghost_hand;		/* the next ghost to replace */
	char		pad[64 - 2 * CACHE_WAYS * sizeof(uint16) - 5];
} CacheSet;

StaticAssertDecl(sizeof(CacheSet) == 64, "a cache set is one cache line");

typedef struct CacheEntry
{
	uint8		hash[APIKEY_HASH_LEN];
	ApikeyKey	key;			/* key.tuple lives in row_cxt */
} CacheEntry;

int			apikey_cache_size = 1024;

static MemoryContext cache_cxt = NULL;	/* the arrays */
static MemoryContext row_cxt = NULL;	/* the rows, reset when emptied */
static CacheSet *sets = NULL;	/* nsets, aligned to 64 bytes */
static CacheEntry *entries = NULL;	/* nsets * CACHE_WAYS */
static uint32 nsets = 0;		/* 0: no cache */
static bool active = false;		/* lookups may hit (apikey_cache_rows) */
static uint64 seen_generation = 0;	/* tracker_shmem.c's, when last emptied */
static bool keys_changed = false;	/* this transaction changed apikey.keys */
static int	sized_for = -1;		/* apikey.cache_size when last resized */
static Oid	cache_relid = InvalidOid;	/* the apikey.keys of its rows */
static bool cache_stale = false;

/*
 * relcache_callback: apikey.keys changed (or the whole relcache was reset):
 * the next lookup empties the cache.  Only a flag here; a callback may run
 * while a caller still uses a row of the cache.
 */
static void
relcache_callback(Datum arg, Oid relid)
{
	if (relid == InvalidOid || relid == cache_relid)
		cache_stale = true;
}

/* empty: forget every row */
static void
empty(void)
{
	if (sets != NULL)
		memset(sets, 0, sizeof(CacheSet) * nsets);
	if (row_cxt != NULL)
		MemoryContextReset(row_cxt);
	cache_stale = false;
}

/* resize: make the arrays match apikey.cache_size (0: no cache) */
static void
resize(void)
{
	uint32		want = 0;

	if (cache_cxt == NULL)
	{
		cache_cxt = AllocSetContextCreate(TopMemoryContext,
										  "apikey verified-key cache",
										  ALLOCSET_DEFAULT_SIZES);
		row_cxt = AllocSetContextCreate(cache_cxt,
										"apikey verified-key cache rows",
										ALLOCSET_DEFAULT_SIZES);
	}
	MemoryContextResetOnly(cache_cxt);	/* the arrays, not row_cxt */
	sets = NULL;
	entries = NULL;
	if (apikey_cache_size > 0)
	{
		want = (apikey_cache_size + CACHE_WAYS - 1) / CACHE_WAYS;
		sets = (CacheSet *)
			TYPEALIGN(64, MemoryContextAllocExtended(cache_cxt,
													 sizeof(CacheSet) * want + 64,
													 MCXT_ALLOC_HUGE));
		entries = MemoryContextAllocExtended(cache_cxt,
											 sizeof(CacheEntry) * want * CACHE_WAYS,
											 MCXT_ALLOC_HUGE);
	}
	nsets = want;
	sized_for = apikey_cache_size;
	empty();
}

/* where a hash goes: its set (bytes 8..11, apart from the index's 8-byte
 * prefix, modulo the number of sets) and its tag (bytes 12..13) */
static inline CacheSet *
set_of(const uint8 *hash, uint32 *setno, uint16 *tag)
{
	uint32		h;

	memcpy(&h, hash + 8, sizeof(h));
	memcpy(tag, hash + 12, sizeof(*tag));
	*setno = h % nsets;
	return &sets[*setno];
}

/*
 * apikey_cache_rows: the memory context a probe copies a cacheable row into,
 * or NULL if there is no cache.  Also brings the cache in line with
 * apikey.cache_size, the invalidations taken and the apikey.keys of cat.
 * Call it before apikey_cache_lookup, in the same call.
 */
MemoryContext
apikey_cache_rows(const ApikeyCatalog *cat)
{
	uint64		generation = apikey_tracker_keys_generation();

	if (apikey_cache_size != sized_for)
		resize();
	if (cache_stale || cat->keys_relid != cache_relid ||
		generation != seen_generation)
	{
		empty();
		cache_relid = cat->keys_relid;
		seen_generation = generation;
	}
	active = nsets > 0 && cat->cache_coherent;
	return active ? row_cxt : NULL;
}

/*
 * apikey_cache_lookup: the cached row of the key whose secret hashes to
 * hash; true and *key set if found.  *key borrows the cache's memory (its
 * tuple is NULL, so apikey_key_free leaves it alone), valid until the next
 * apikey_cache_rows.  On a miss, *admit says whether the row, if found,
 * should be cached: always while the set has room, else on a second miss.
 */
bool
apikey_cache_lookup(const uint8 *hash, ApikeyKey *key, bool *admit)
{
	CacheSet   *set;
	uint32		setno;
	uint16		tag;
	int			i;

	*admit = false;
	if (!active)
		return false;
	set = set_of(hash, &setno, &tag);
	for (i = 0; i < CACHE_WAYS; i++)
	{
		CacheEntry *e;

		if (!(set->used & (1 << i)) || set->tag[i] != tag)
			continue;
		e = &entries[(Size) setno * CACHE_WAYS + i];
		if (memcmp(e->hash, hash, APIKEY_HASH_LEN) == 0)
		{
			set->referenced |= (1 << i);
			*key = e->key;
			key->tuple = NULL;
			return true;
		}
	}
	if (set->used != (uint8) ((1 << CACHE_WAYS) - 1))
	{
		*admit = true;
		return false;
	}
	for (i = 0; i < CACHE_WAYS; i++)
	{
		if ((set->ghosts & (1 << i)) && set->ghost[i] == tag)
		{
			set->ghosts &= ~(1 << i);
			*admit = true;
			return false;
		}
	}
	/* seen once: remember the tag only */
	i = set->ghost_hand;
	set->ghost_hand = (set->ghost_hand + 1) % CACHE_WAYS;
	set->ghost[i] = tag;
	set->ghosts |= (1 << i);
	return false;
}

/*
 * apikey_cache_insert: keep key, whose tuple was allocated in the context
 * apikey_cache_rows returned, under hash.  The cache owns the tuple from
 * here on: key->tuple becomes NULL, the other fields stay valid until the
 * next apikey_cache_rows.
 */
void
apikey_cache_insert(const uint8 *hash, ApikeyKey *key)
{
	CacheSet   *set;
	CacheEntry *e;
	uint32		setno;
	uint16		tag;
	int			way = -1;
	int			i;

	Assert(active && GetMemoryChunkContext(key->tuple) == row_cxt);
	set = set_of(hash, &setno, &tag);
	for (i = 0; i < CACHE_WAYS; i++)
	{
		if (!(set->used & (1 << i)))
		{
			way = i;
			break;
		}
	}
	if (way < 0)
	{
		/* a clock over the set: the first way not used since last time */
		for (;;)
		{
			i = set->hand;
			set->hand = (set->hand + 1) % CACHE_WAYS;
			if (!(set->referenced & (1 << i)))
				break;
			set->referenced &= ~(1 << i);
		}
		way = i;
		heap_freetuple(entries[(Size) setno * CACHE_WAYS + way].key.tuple);
	}
	e = &entries[(Size) setno * CACHE_WAYS + way];
	memcpy(e->hash, hash, APIKEY_HASH_LEN);
	e->key = *key;
	set->tag[way] = tag;
	set->used |= (1 << way);
	set->referenced &= ~(1 << way);
	key->tuple = NULL;
}

/*
 * xact_callback: just before a transaction that changed apikey.keys commits
 * (or is prepared), bump the shared generation, so that no backend keeps
 * using a cached row once the change is visible.
 */
static void
xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
		case XACT_EVENT_PARALLEL_PRE_COMMIT:
		case XACT_EVENT_PRE_PREPARE:
			if (keys_changed)
				apikey_tracker_keys_changed();
			break;
		default:
			keys_changed = false;
			break;
	}
}

/*
 * apikey_cache_init: the setting, the invalidation callback and the
 * transaction callback, from _PG_init.
 */
void
apikey_cache_init(void)
{
	DefineCustomIntVariable("apikey.cache_size",
							"Keys each backend keeps in its verified-key cache.",
							"0 turns the cache off.  Rounded up to a multiple of 8.  "
							"Each slot costs about 220 bytes, allocated at the first "
							"verification, and each cached key its row (about 0.5 kB).",
							&apikey_cache_size,
							1024,
							0,
							1024 * 1024,
							PGC_SUSET,
							0,
							NULL,
							NULL,
							NULL);
	CacheRegisterRelcacheCallback(relcache_callback, (Datum) 0);
	RegisterXactCallback(xact_callback, NULL);
}

/*
 * forget_shared: the shared cache (keycache.c) must forget the current
 * secret of this row (its old version) when the transaction commits.  The
 * column comes from the catalog's cache (the UPDATE or DELETE holds the
 * table already); a trigger put on another table forgets nothing.
 */
static void
forget_shared(Relation rel, HeapTuple old)
{
	const ApikeyCatalog *cat = apikey_catalog_lock(RowExclusiveLock);
	bool		isnull;
	Datum		d;
	bytea	   *h;

	if (RelationGetRelid(rel) != cat->keys_relid)
		return;
	d = heap_getattr(old, cat->att_secret_hash, RelationGetDescr(rel), &isnull);
	if (isnull)
		return;
	h = DatumGetByteaPP(d);
	if (VARSIZE_ANY_EXHDR(h) == APIKEY_HASH_LEN)
		apikey_keycache_forget_at_commit((const uint8 *) VARDATA_ANY(h));
}

/*
 * apikey.keys_cache_invalidate(): the row trigger (BEFORE UPDATE OR DELETE)
 * that keeps every backend's cache, on standbys too, coherent with
 * apikey.keys.  The invalidation is sent at commit; repeated ones within
 * a command are merged.
 */
APIKEY_SQL_FUNCTION(apikey_keys_cache_invalidate);

Datum
apikey_keys_cache_invalidate(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo) ||
		!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event) ||
		!TRIGGER_FIRED_BEFORE(trigdata->tg_event) ||
		TRIGGER_FIRED_BY_INSERT(trigdata->tg_event) ||
		TRIGGER_FIRED_BY_TRUNCATE(trigdata->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("apikey.keys_cache_invalidate() must be called as a BEFORE UPDATE or DELETE row trigger")));
	CacheInvalidateRelcache(trigdata->tg_relation);
	keys_changed = true;
	forget_shared(trigdata->tg_relation, trigdata->tg_trigtuple);
	if (TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
		return PointerGetDatum(trigdata->tg_newtuple);
	return PointerGetDatum(trigdata->tg_trigtuple);
}

/* owner_plan_of: whether a row of apikey.owners holds a plan (a limit or credits) */
static bool
owner_plan_of(TupleDesc desc, HeapTuple row)
{
	static const char *const cols[] = {"rate_limit", "credits", NULL};
	int			i;

	for (i = 0; cols[i] != NULL; i++)
	{
		int			attnum = SPI_fnumber(desc, cols[i]);

		if (attnum > 0 && !heap_attisnull(row, attnum, desc))
			return true;
	}
	return false;
}

/* owner_plan_changed: whether an UPDATE of apikey.owners changed a plan */
static bool
owner_plan_changed(TupleDesc desc, HeapTuple o, HeapTuple n)
{
	static const char *const cols[] = {
		"owner", "rate_limit", "rate_window", "credits", "refill_amount",
		"refill_interval", "refill_day", "credits_set_at", "id", NULL
	};
	int			i;

	for (i = 0; cols[i] != NULL; i++)
		if (SPI_fnumber(desc, cols[i]) > 0 && apikey_column_changed(desc, o, n, cols[i]))
			return true;
	return false;
}

/*
 * apikey.owners_cache_invalidate(): trigger, AFTER INSERT OR UPDATE OR
 * DELETE FOR EACH ROW and AFTER TRUNCATE on apikey.owners.  A cached key
 * carries its owner's plan (rate limit, credits): a change of a plan (a
 * row with one made or removed, one changed, the table truncated) empties
 * every backend's cache and the shared one when the change commits, and
 * this transaction reads keys from the table until then.  Registering an
 * owner without a plan changes no key's answer and empties nothing.
 */
APIKEY_SQL_FUNCTION(apikey_owners_cache_invalidate);

Datum
apikey_owners_cache_invalidate(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	TupleDesc	desc;
	bool		flush;
	const ApikeyCatalog *cat;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_AFTER(trigdata->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("apikey.owners_cache_invalidate() must be called as an AFTER trigger")));
	desc = RelationGetDescr(trigdata->tg_relation);
	if (TRIGGER_FIRED_BY_TRUNCATE(trigdata->tg_event))
		flush = true;
	else if (TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
		flush = owner_plan_changed(desc, trigdata->tg_trigtuple, trigdata->tg_newtuple);
	else
		flush = owner_plan_of(desc, trigdata->tg_trigtuple);
	if (!flush)
		return PointerGetDatum(NULL);

	cat = apikey_catalog_lock(AccessShareLock);
	/* every backend's own cache, on standbys too (replayed at commit) */
	CacheInvalidateRelcacheByRelid(cat->keys_relid);
	keys_changed = true;
	apikey_keycache_flush_at_commit();
	return PointerGetDatum(NULL);
}

