/*-------------------------------------------------------------------------
 *
 * keycache.c
 *	  The shared verified-key cache.  With shared_preload_libraries, every
 *	  backend of a primary server finds a recently verified key here, by the
 *	  SHA-256 of the presented secret (never the secret), whichever backend
 *	  verified it first: the row's fields the checks need, and a hint to
 *	  the key's entry in the tracker's key table (tracker_keys.c), so the
 *	  bucket and the usage counters are found without a second hash search.
 *	  What a hit returns is the row as it was copied; every check, time
 *	  checks included, runs again on every call (verify_eval.c).  On a hot
 *	  standby, and without shared memory, each backend keeps its own cache
 *	  instead (verify_cache.c).
 *
 *	  Layout: apikey.shared_cache_size keys, in sets of KC_WAYS ways; set s
 *	  belongs to partition s % KC_PARTITIONS.  A key may live in either of
 *	  two sets of one partition, found from the hash's bytes (SHA-256 is
 *	  uniform).  A way holds the fixed fields; the
 *	  variable ones (name, owner, roles, scopes, resources, cidrs, meta) are
 *	  a chain of KC_BLOCK-byte blocks from the partition's own pool of
 *	  KC_BLOCKS_PER_KEY blocks per way.  A row whose variable fields take
 *	  more than KC_MAX_BLOB bytes, or more than a quarter of its
 *	  partition's blocks (apikey.shared_cache_size bytes), is not kept.  Within a full set a clock
 *	  picks the victim, and only a key that missed twice is let in; a
 *	  partition short of blocks evicts by a clock over its ways.
 *
 *	  Locking: each partition has an LWLock of the "apikey_cache" tranche,
 *	  held shared to look up (and to store a tracker hint: atomics) and
 *	  exclusively to insert, evict or invalidate, which also guards the
 *	  partition's free blocks and clock.  The sets' referenced bits are
 *	  atomics; the ghost tags are hints written under the shared lock
 *	  (a lost write only delays an admission).  The whole cache's
 *	  generation is an atomic.
 *
 *	  Coherence (the same promise as the per-backend cache's): a committed
 *	  change to apikey.keys takes effect at the next verification of every
 *	  backend; an uncommitted or rolled-back one never does.
 *	  - The row trigger keys_cache_invalidate (verify_cache.c) hands each
 *		changed or deleted row's secret hash to
 *		apikey_keycache_forget_at_commit; just before the transaction
 *		commits (or is prepared), before the change becomes visible, their
 *		entries are removed and their sets' generations bumped.  Past
 *		KC_MAX_PENDING rows in one transaction (128 MB of hashes), the
 *		whole cache is flushed instead (its generation bumped: every entry
 *		of an older one is dead).
 *	  - A fill records the set's and the cache's generations before it
 *		reads the row, and is dropped if either moved before it inserts: a
 *		row read before a change and inserted after its invalidation is
 *		never kept.  A row read after the change began (its xmax set) is
 *		never cached at all (verify_probe.c), nor one of our own
 *		transaction's uncommitted versions.
 *	  - DDL on apikey.keys in this backend's transaction (TRUNCATE, a
 *		trigger disabled or enabled, a rewrite: anything that sends a
 *		relcache invalidation of the table while this transaction holds it
 *		in SHARE ROW EXCLUSIVE mode or stronger; not VACUUM, ANALYZE or
 *		CREATE INDEX, which change no row) flushes the whole cache at
 *		commit, for every database: it is the owner's, and rare.  While the trigger does not fire ALWAYS the cache is not
 *		used (catalog.c: cache_coherent), and enabling it again flushes.
 *	  - Entries carry their database and apikey.keys; another table (a DROP
 *		and CREATE EXTENSION) never matches.
 *	  A verifier in REPEATABLE READ may see a change committed after its
 *	  snapshot (as with a concurrent transaction's first verification).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/namespace.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "port/atomics.h"
#include "storage/ipc.h"
#include "storage/lmgr.h"
#include "storage/lock.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"

#include "catalog.h"
#include "compat.h"
#include "keycache.h"
#include "keyformat.h"
#include "secret.h"

#define KC_WAYS				8
#define KC_PARTITIONS		64
#define KC_BLOCK			64
#define KC_BLOCKS_PER_KEY	4
#define KC_MAX_BLOB			(16 * 1024)
#define KC_MAX_PENDING		(4 * 1024 * 1024)
#define KC_MAX_DDL_RELIDS	8
#define KC_NONE				PG_UINT32_MAX
#define KC_TRANCHE			"apikey_cache"

/* the variable fields, in the order of their offsets in a blob */
enum
{
	F_NAME, F_OWNER, F_OWNER_ROLE, F_DB_ROLE, F_SCOPES, F_RESOURCES, F_CIDRS,
	F_META, F_CREDITS, F_OWNER_PLAN, KC_FIELDS
};

/*
 * a blob starts with its fields' offsets (0: NULL), then the fields, each
 * int-aligned (what text, arrays of text and cidr, and jsonb need)
 */
typedef struct KcBlobHeader
{
	uint16		off[KC_FIELDS];
} KcBlobHeader;

/* one cache line: the tags of a set's ways, what is used, the clock */
typedef struct KcSet
{
	uint16		tag[KC_WAYS];
	uint16		ghost[KC_WAYS]; /* keys that missed once while it was full */
	pg_atomic_uint32 referenced;	/* bit i: way i used since the clock passed */
	uint32		generation;		/* bumped by each invalidation in the set */
	uint8		used;			/* bit i: way i holds a key */
	uint8		hand;
	uint8		ghosts;
	uint8		ghost_hand;
	char		pad[64 - 2 * KC_WAYS * sizeof(uint16) - 12];
} KcSet;

StaticAssertDecl(sizeof(KcSet) == 64, "a set is one cache line");

#define KE_ENABLED			0x01
#define KE_EXPIRES			0x02	/* expires_at is set */
#define KE_RATE_LIMIT		0x04
#define KE_RATE_WINDOW		0x08

typedef struct KcEntry
{
	uint8		hash[APIKEY_HASH_LEN];
	Oid			dbid;
	Oid			relid;
	uint64		generation;		/* the cache's when filled */
	int64		key_id;
	TimestampTz expires_at;
	Interval	rate_window;
	int32		rate_limit;
	uint32		first_block;
	uint32		nbytes;
	uint16		flags;
	pg_atomic_uint64 tracker_entry; /* ApikeyTrackerHint, in two atomics */
	pg_atomic_uint64 tracker_incarnation;
} KcEntry;

typedef struct KcPartition
{
	uint32		free_head;		/* first free block */
	uint32		nfree;
	uint32		hand;			/* the eviction clock: way index in the partition */
	char		pad[64 - 3 * sizeof(uint32)];
} KcPartition;

typedef struct KcShared
{
	pg_atomic_uint64 generation;
	char		pad[64 - sizeof(pg_atomic_uint64)];
	KcPartition part[KC_PARTITIONS];
} KcShared;

int			apikey_shared_cache_size = 100000;

static KcShared *kc = NULL;
static KcSet *sets = NULL;
static KcEntry *entries = NULL;
static uint32 *next_block = NULL;
static char *blocks = NULL;
static LWLockPadded *locks = NULL;
static uint32 nsets = 0;
static uint32 sets_per_part = 0;
static uint32 blocks_per_part = 0;

/* what this backend's transaction must invalidate when it commits */
static uint8 (*pending)[APIKEY_HASH_LEN] = NULL;
static int	npending = 0;
static int	pending_cap = 0;
static bool flush_at_commit = false;
static Oid	ddl_relids[KC_MAX_DDL_RELIDS];
static int	nddl_relids = 0;

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

/* the geometry for apikey.shared_cache_size keys */
static void
geometry(uint32 *n_sets, uint32 *per_part, uint32 *blocks_part)
{
	uint32		want = (apikey_shared_cache_size + KC_WAYS - 1) / KC_WAYS;

	*per_part = Max((want + KC_PARTITIONS - 1) / KC_PARTITIONS, 1);
	*n_sets = *per_part * KC_PARTITIONS;
	*blocks_part = *per_part * KC_WAYS * KC_BLOCKS_PER_KEY;
}

static Size
kc_size(void)
{
	uint32		n_sets,
				per_part,
				blocks_part;
	Size		size;
	Size		nblocks;

	geometry(&n_sets, &per_part, &blocks_part);
	nblocks = (Size) blocks_part * KC_PARTITIONS;
	size = add_size(sizeof(KcShared), 64);
	size = add_size(size, mul_size(n_sets, sizeof(KcSet)));
	size = add_size(size, mul_size(mul_size(n_sets, KC_WAYS), sizeof(KcEntry)));
	size = add_size(size, mul_size(nblocks, sizeof(uint32)));
	size = add_size(size, mul_size(nblocks, KC_BLOCK));
	return size;
}

static void
kc_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	if (apikey_shared_cache_size > 0)
	{
		RequestAddinShmemSpace(kc_size());
		RequestNamedLWLockTranche(KC_TRANCHE, KC_PARTITIONS);
	}
}

static void
kc_shmem_startup(void)
{
	bool		found;
	char	   *p;
	Size		nblocks;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	if (apikey_shared_cache_size <= 0)
		return;

	geometry(&nsets, &sets_per_part, &blocks_per_part);
	nblocks = (Size) blocks_per_part * KC_PARTITIONS;
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	p = ShmemInitStruct("apikey verified-key cache", kc_size(), &found);
	kc = (KcShared *) p;
	p = (char *) TYPEALIGN(64, p + sizeof(KcShared));
	sets = (KcSet *) p;
	p += sizeof(KcSet) * nsets;
	entries = (KcEntry *) p;
	p += sizeof(KcEntry) * nsets * KC_WAYS;
	next_block = (uint32 *) p;
	p += sizeof(uint32) * nblocks;
	blocks = p;
	if (!found)
	{
		uint32		i;
		int			part;

		pg_atomic_init_u64(&kc->generation, 1);
		memset(sets, 0, sizeof(KcSet) * nsets);
		for (i = 0; i < nsets; i++)
			pg_atomic_init_u32(&sets[i].referenced, 0);
		memset(entries, 0, sizeof(KcEntry) * nsets * KC_WAYS);
		for (i = 0; i < nsets * KC_WAYS; i++)
		{
			pg_atomic_init_u64(&entries[i].tracker_entry, 0);
			pg_atomic_init_u64(&entries[i].tracker_incarnation, 0);
		}
		for (part = 0; part < KC_PARTITIONS; part++)
		{
			uint32		first = part * blocks_per_part;

			kc->part[part].free_head = first;
			kc->part[part].nfree = blocks_per_part;
			kc->part[part].hand = 0;
			for (i = 0; i < blocks_per_part; i++)
				next_block[first + i] = i + 1 < blocks_per_part ? first + i + 1 : KC_NONE;
		}
	}
	locks = GetNamedLWLockTranche(KC_TRANCHE);
	LWLockRelease(AddinShmemInitLock);
}

/*
 * Where a hash goes: its partition, its two candidate sets there and its
 * tag, each from other bytes of the hash (apart from the index's 8-byte
 * prefix).  A key lives in either set: the choice between two evens out
 * the sets' load, so the cache holds nearly as many keys as it has ways.
 */
typedef struct KcPlace
{
	uint32		set[2];
	uint16		tag;
} KcPlace;

static inline KcPlace
place_of(const uint8 *hash)
{
	KcPlace		p;
	uint32		part;
	uint32		i1;
	uint32		i2;

	memcpy(&part, hash + 8, sizeof(part));
	memcpy(&i1, hash + 12, sizeof(i1));
	memcpy(&i2, hash + 16, sizeof(i2));
	memcpy(&p.tag, hash + 20, sizeof(p.tag));
	part %= KC_PARTITIONS;
	p.set[0] = part + (i1 % sets_per_part) * KC_PARTITIONS;
	p.set[1] = part + (i2 % sets_per_part) * KC_PARTITIONS;
	return p;
}

static inline LWLock *
lock_of(uint32 setno)
{
	return &locks[setno % KC_PARTITIONS].lock;
}

static bool is_keys_table(Oid relid);

/*
 * resolve_ddl: of the relations this transaction's DDL changed, is one
 * apikey.keys?  Then the whole cache is flushed at commit.
 */
static void
resolve_ddl(void)
{
	int			i;

	for (i = 0; i < nddl_relids && !flush_at_commit; i++)
		if (is_keys_table(ddl_relids[i]))
			flush_at_commit = true;
	nddl_relids = 0;
}

/*
 * apikey_keycache_active: the shared cache may serve this verification:
 * there is one, this is not a hot standby (whose backends learn of
 * changes only from replayed invalidations, each on its own), the
 * invalidation trigger fires, and this transaction has not changed
 * apikey.keys (it must see its own changes, which the cache will learn
 * of only at commit).
 */
bool
apikey_keycache_active(const ApikeyCatalog *cat)
{
	if (kc == NULL || !cat->cache_coherent || RecoveryInProgress())
		return false;
	if (nddl_relids > 0)
		resolve_ddl();
	return npending == 0 && !flush_at_commit;
}

/* free_chain: give an entry's blocks back (partition lock exclusive) */
static void
free_chain(KcPartition *part, KcEntry *e)
{
	uint32		b = e->first_block;

	while (b != KC_NONE)
	{
		uint32		next = next_block[b];

		next_block[b] = part->free_head;
		part->free_head = b;
		part->nfree++;
		b = next;
	}
	e->first_block = KC_NONE;
	e->nbytes = 0;
}

/* drop: empty way w of set s (partition lock exclusive) */
static void
drop(uint32 setno, int way)
{
	KcSet	   *set = &sets[setno];
	KcEntry    *e = &entries[(Size) setno * KC_WAYS + way];

	if (!(set->used & (1 << way)))
		return;
	free_chain(&kc->part[setno % KC_PARTITIONS], e);
	pg_atomic_write_u64(&e->tracker_incarnation, 0);
	set->used &= ~(1 << way);
	pg_atomic_fetch_and_u32(&set->referenced, ~(uint32) (1 << way));
}

/*
 * evict_for: free blocks in partition partno until need are free, by a
 * clock over its ways (dead entries first come, unreferenced ones go);
 * false if that could not be done in two turns.
 */
static bool
evict_for(int partno, uint32 need)
{
	KcPartition *part = &kc->part[partno];
	uint32		ways = sets_per_part * KC_WAYS;
	uint32		steps;
	uint64		generation = pg_atomic_read_u64(&kc->generation);

	for (steps = 0; part->nfree < need && steps < 2 * ways; steps++)
	{
		uint32		i = part->hand;
		uint32		setno = partno + (i / KC_WAYS) * KC_PARTITIONS;
		int			way = i % KC_WAYS;
		KcSet	   *set = &sets[setno];
		uint32		bit = 1 << way;

		part->hand = (part->hand + 1) % ways;
		if (!(set->used & bit))
			continue;
		if (entries[(Size) setno * KC_WAYS + way].generation == generation &&
			(pg_atomic_read_u32(&set->referenced) & bit))
		{
			pg_atomic_fetch_and_u32(&set->referenced, ~bit);
			continue;
		}
		drop(setno, way);
	}
	return part->nfree >= need;
}

/* the size of a varlena datum as stored: detoasted, with a 4-byte header */
static struct varlena *
flat(Datum d)
{
	return pg_detoast_datum((struct varlena *) DatumGetPointer(d));
}

/*
 * serialize: the variable fields of key as one blob (palloc'd), its size
 * in *len; NULL if larger than KC_MAX_BLOB.
 */
static char *
serialize(const ApikeyKey *key, uint32 *len)
{
	struct varlena *v[KC_FIELDS];
	const char *s[KC_FIELDS];
	Size		size = INTALIGN(sizeof(KcBlobHeader));
	Size		off[KC_FIELDS];
	char	   *blob;
	int			i;

	memset(v, 0, sizeof(v));
	memset(s, 0, sizeof(s));
	v[F_NAME] = flat(key->name);
	if (!key->owner_isnull)
		v[F_OWNER] = flat(key->owner);
	s[F_OWNER_ROLE] = NameStr(*DatumGetName(key->owner_role));
	if (!key->db_role_isnull)
		s[F_DB_ROLE] = NameStr(*DatumGetName(key->db_role));
	v[F_SCOPES] = flat(key->scopes);
	if (!key->resources_isnull)
		v[F_RESOURCES] = flat(key->resources);
	if (!key->cidrs_isnull)
		v[F_CIDRS] = flat(key->allowed_cidrs);
	v[F_META] = flat(key->meta);
	if (key->metered)
	{
		/* the plan, as a varlena of its bytes (read back with memcpy) */
		v[F_CREDITS] = palloc(VARHDRSZ + sizeof(PlanCredits));
		SET_VARSIZE(v[F_CREDITS], VARHDRSZ + sizeof(PlanCredits));
		memcpy(VARDATA(v[F_CREDITS]), &key->credits, sizeof(PlanCredits));
	}
	if (key->has_owner_plan)
	{
		v[F_OWNER_PLAN] = palloc(VARHDRSZ + sizeof(ApikeyOwnerPlan));
		SET_VARSIZE(v[F_OWNER_PLAN], VARHDRSZ + sizeof(ApikeyOwnerPlan));
		memcpy(VARDATA(v[F_OWNER_PLAN]), &key->owner_plan, sizeof(ApikeyOwnerPlan));
	}

	for (i = 0; i < KC_FIELDS; i++)
	{
		off[i] = 0;
		if (v[i] != NULL)
		{
			off[i] = size;
			size = INTALIGN(size + VARSIZE(v[i]));
		}
		else if (s[i] != NULL)
		{
			off[i] = size;
			size = INTALIGN(size + strlen(s[i]) + 1);
		}
		if (size > KC_MAX_BLOB)
			return NULL;
	}
	blob = palloc0(size);
	for (i = 0; i < KC_FIELDS; i++)
	{
		((KcBlobHeader *) blob)->off[i] = (uint16) off[i];
		if (v[i] != NULL)
			memcpy(blob + off[i], v[i], VARSIZE(v[i]));
		else if (s[i] != NULL)
			strcpy(blob + off[i], s[i]);
	}
	*len = (uint32) size;
	return blob;
}

/*
 * unpack: key's fields from entry e and its blob, copied into one palloc'd
 * chunk that key->copy owns (partition lock held).
 */
static void
unpack(KcEntry *e, ApikeyKey *key)
{
	Size		len = e->nbytes;
	char	   *buf = palloc(MAXALIGN(len) + 2 * sizeof(NameData) + sizeof(Interval));
	Name		names = (Name) (buf + MAXALIGN(len));
	Interval   *window = (Interval *) (buf + MAXALIGN(len) + 2 * sizeof(NameData));
	const KcBlobHeader *h = (const KcBlobHeader *) buf;
	uint32		b = e->first_block;
	Size		done = 0;

	while (done < len)
	{
		Size		n = Min(len - done, KC_BLOCK);

		memcpy(buf + done, blocks + (Size) b * KC_BLOCK, n);
		done += n;
		b = next_block[b];
	}

	key->copy = buf;
	key->tuple = NULL;
	key->key_id = e->key_id;
	key->name = PointerGetDatum(buf + h->off[F_NAME]);
	key->owner_isnull = h->off[F_OWNER] == 0;
	key->owner = key->owner_isnull ? (Datum) 0 : PointerGetDatum(buf + h->off[F_OWNER]);
	namestrcpy(&names[0], buf + h->off[F_OWNER_ROLE]);
	key->owner_role = NameGetDatum(&names[0]);
	key->db_role_isnull = h->off[F_DB_ROLE] == 0;
	if (key->db_role_isnull)
		key->db_role = (Datum) 0;
	else
	{
		namestrcpy(&names[1], buf + h->off[F_DB_ROLE]);
		key->db_role = NameGetDatum(&names[1]);
	}
	key->scopes = PointerGetDatum(buf + h->off[F_SCOPES]);
	key->resources_isnull = h->off[F_RESOURCES] == 0;
	key->resources = key->resources_isnull ? (Datum) 0 :
		PointerGetDatum(buf + h->off[F_RESOURCES]);
	key->cidrs_isnull = h->off[F_CIDRS] == 0;
	key->allowed_cidrs = key->cidrs_isnull ? (Datum) 0 :
		PointerGetDatum(buf + h->off[F_CIDRS]);
	key->meta = PointerGetDatum(buf + h->off[F_META]);
	key->metered = h->off[F_CREDITS] != 0;
	if (key->metered)
		memcpy(&key->credits, buf + h->off[F_CREDITS] + VARHDRSZ, sizeof(PlanCredits));
	key->has_owner_plan = h->off[F_OWNER_PLAN] != 0;
	if (key->has_owner_plan)
		memcpy(&key->owner_plan, buf + h->off[F_OWNER_PLAN] + VARHDRSZ, sizeof(ApikeyOwnerPlan));
	key->enabled = (e->flags & KE_ENABLED) != 0;
	key->expires_isnull = !(e->flags & KE_EXPIRES);
	key->expires_at = e->expires_at;
	key->rate_limit_isnull = !(e->flags & KE_RATE_LIMIT);
	key->rate_limit = e->rate_limit;
	key->rate_window_isnull = !(e->flags & KE_RATE_WINDOW);
	if (key->rate_window_isnull)
		key->rate_window = (Datum) 0;
	else
	{
		*window = e->rate_window;
		key->rate_window = IntervalPGetDatum(window);
	}
	key->grace_isnull = true;
	key->grace_until = 0;
	key->tracker.entry = (void *) (uintptr_t) pg_atomic_read_u64(&e->tracker_entry);
	key->tracker.incarnation = pg_atomic_read_u64(&e->tracker_incarnation);
}

/*
 * find: the set (0 or 1 of pl) and way holding hash for this table; false
 * if neither does.
 */
static inline bool
find(const KcPlace *pl, const uint8 *hash, Oid relid, int *which, int *way)
{
	int			c;

	for (c = 0; c < 2; c++)
	{
		uint32		setno = pl->set[c];
		KcSet	   *set = &sets[setno];
		int			i;

		for (i = 0; i < KC_WAYS; i++)
		{
			KcEntry    *e;

			if (!(set->used & (1 << i)) || set->tag[i] != pl->tag)
				continue;
			e = &entries[(Size) setno * KC_WAYS + i];
			if (memcmp(e->hash, hash, APIKEY_HASH_LEN) == 0 &&
				e->dbid == MyDatabaseId && e->relid == relid)
			{
				*which = c;
				*way = i;
				return true;
			}
		}
		if (pl->set[1] == pl->set[0])
			break;
	}
	return false;
}

/* room: a way of set setno that is free or holds a dead entry, or -1 */
static inline int
room(uint32 setno, uint64 generation)
{
	KcSet	   *set = &sets[setno];
	int			i;

	for (i = 0; i < KC_WAYS; i++)
		if (!(set->used & (1 << i)))
			return i;
	for (i = 0; i < KC_WAYS; i++)
		if (entries[(Size) setno * KC_WAYS + i].generation != generation)
			return i;
	return -1;
}

/*
 * apikey_keycache_lookup: the key whose current secret hashes to hash;
 * true and *key filled (a private copy, see apikey_key_free) if cached.
 * On a miss, *fill says what the insert of the row, if found, needs.
 */
bool
apikey_keycache_lookup(const ApikeyCatalog *cat, const uint8 *hash,
					   ApikeyKey *key, ApikeyKeycacheFill *fill)
{
	KcPlace		pl = place_of(hash);
	KcSet	   *set;
	int			which;
	int			way;
	int			i;

	pg_read_barrier();
	fill->generation = pg_atomic_read_u64(&kc->generation);
	fill->admit = false;

	LWLockAcquire(lock_of(pl.set[0]), LW_SHARED);
	fill->set_generation[0] = sets[pl.set[0]].generation;
	fill->set_generation[1] = sets[pl.set[1]].generation;
	if (find(&pl, hash, cat->keys_relid, &which, &way))
	{
		uint32		setno = pl.set[which];
		KcEntry    *e = &entries[(Size) setno * KC_WAYS + way];

		if (e->generation == fill->generation)
		{
			uint32		bit = 1 << way;

			set = &sets[setno];
			if (!(pg_atomic_read_u32(&set->referenced) & bit))
				pg_atomic_fetch_or_u32(&set->referenced, bit);
			unpack(e, key);
			LWLockRelease(lock_of(pl.set[0]));
			return true;
		}
		fill->admit = true;		/* a dead copy: take its place */
	}

	/* a miss: room in either set, or a second miss (a ghost) */
	if (!fill->admit)
		fill->admit = room(pl.set[0], fill->generation) >= 0 ||
			room(pl.set[1], fill->generation) >= 0;
	set = &sets[pl.set[0]];
	for (i = 0; !fill->admit && i < KC_WAYS; i++)
	{
		if ((set->ghosts & (1 << i)) && set->ghost[i] == pl.tag)
		{
			set->ghosts &= ~(1 << i);
			fill->admit = true;
		}
	}
	if (!fill->admit)
	{
		/* seen once: remember the tag only */
		i = set->ghost_hand % KC_WAYS;
		set->ghost_hand = (i + 1) % KC_WAYS;
		set->ghost[i] = pl.tag;
		set->ghosts |= (1 << i);
	}
	LWLockRelease(lock_of(pl.set[0]));
	return false;
}

/* victim: the way of set setno the clock gives up (partition lock exclusive) */
static int
victim(uint32 setno)
{
	KcSet	   *set = &sets[setno];

	for (;;)
	{
		int			i = set->hand;
		uint32		bit = 1 << i;

		set->hand = (set->hand + 1) % KC_WAYS;
		if (!(pg_atomic_read_u32(&set->referenced) & bit))
			return i;
		pg_atomic_fetch_and_u32(&set->referenced, ~bit);
	}
}

/*
 * apikey_keycache_insert: keep key (a settled row with its current
 * secret, verify_probe.c) under hash, unless an invalidation or a flush
 * came after the lookup that made fill.
 */
void
apikey_keycache_insert(const ApikeyCatalog *cat, const uint8 *hash,
					   const ApikeyKeycacheFill *fill, const ApikeyKey *key)
{
	KcPlace		pl = place_of(hash);
	int			partno = pl.set[0] % KC_PARTITIONS;
	uint32		setno;
	KcSet	   *set;
	KcEntry    *e;
	uint32		len;
	uint32		need;
	char	   *blob;
	uint32		prev = KC_NONE;
	uint32		done;
	int			which;
	int			way;

	if (!fill->admit)
		return;
	blob = serialize(key, &len);
	if (blob == NULL)
		return;
	need = (len + KC_BLOCK - 1) / KC_BLOCK;
	if (need > blocks_per_part / 4)
	{
		/* it would push out a quarter of its partition: not kept */
		pfree(blob);
		return;
	}

	LWLockAcquire(lock_of(pl.set[0]), LW_EXCLUSIVE);
	if (sets[pl.set[0]].generation != fill->set_generation[0] ||
		sets[pl.set[1]].generation != fill->set_generation[1] ||
		pg_atomic_read_u64(&kc->generation) != fill->generation)
	{
		LWLockRelease(lock_of(pl.set[0]));
		pfree(blob);
		return;
	}

	/* the way: this key's own, room in either set, or a clock's victim */
	if (find(&pl, hash, cat->keys_relid, &which, &way))
		setno = pl.set[which];
	else if ((way = room(pl.set[0], fill->generation)) >= 0)
		setno = pl.set[0];
	else if ((way = room(pl.set[1], fill->generation)) >= 0)
		setno = pl.set[1];
	else
	{
		setno = pl.set[pl.tag & 1];
		way = victim(setno);
	}
	set = &sets[setno];
	drop(setno, way);
	if (!evict_for(partno, need))
	{
		LWLockRelease(lock_of(setno));
		pfree(blob);
		return;
	}

	e = &entries[(Size) setno * KC_WAYS + way];
	e->first_block = KC_NONE;
	for (done = 0; done < len; done += KC_BLOCK)
	{
		KcPartition *part = &kc->part[partno];
		uint32		b = part->free_head;

		part->free_head = next_block[b];
		part->nfree--;
		next_block[b] = KC_NONE;
		memcpy(blocks + (Size) b * KC_BLOCK, blob + done, Min(KC_BLOCK, len - done));
		if (prev == KC_NONE)
			e->first_block = b;
		else
			next_block[prev] = b;
		prev = b;
	}
	memcpy(e->hash, hash, APIKEY_HASH_LEN);
	e->dbid = MyDatabaseId;
	e->relid = cat->keys_relid;
	e->generation = fill->generation;
	e->key_id = key->key_id;
	e->nbytes = len;
	e->flags = (key->enabled ? KE_ENABLED : 0) |
		(key->expires_isnull ? 0 : KE_EXPIRES) |
		(key->rate_limit_isnull ? 0 : KE_RATE_LIMIT) |
		(key->rate_window_isnull ? 0 : KE_RATE_WINDOW);
	e->expires_at = key->expires_isnull ? 0 : key->expires_at;
	e->rate_limit = key->rate_limit_isnull ? 0 : key->rate_limit;
	if (key->rate_window_isnull)
		memset(&e->rate_window, 0, sizeof(Interval));
	else
		e->rate_window = *DatumGetIntervalP(key->rate_window);
	pg_atomic_write_u64(&e->tracker_entry, (uint64) (uintptr_t) key->tracker.entry);
	pg_atomic_write_u64(&e->tracker_incarnation, key->tracker.incarnation);
	set->tag[way] = pl.tag;
	set->used |= (1 << way);
	LWLockRelease(lock_of(setno));
	pfree(blob);
}

/*
 * apikey_keycache_set_hint: the key's tracker entry was found elsewhere
 * than its cached hint said: store where, if the key is still cached.
 */
void
apikey_keycache_set_hint(const ApikeyCatalog *cat, const uint8 *hash,
						 const ApikeyTrackerHint *hint)
{
	KcPlace		pl = place_of(hash);
	int			which;
	int			way;

	LWLockAcquire(lock_of(pl.set[0]), LW_SHARED);
	if (find(&pl, hash, cat->keys_relid, &which, &way))
	{
		KcEntry    *e = &entries[(Size) pl.set[which] * KC_WAYS + way];

		pg_atomic_write_u64(&e->tracker_entry, (uint64) (uintptr_t) hint->entry);
		pg_atomic_write_u64(&e->tracker_incarnation, hint->incarnation);
	}
	LWLockRelease(lock_of(pl.set[0]));
}

/*
 * invalidate: forget hash, in any database, and bump the generations of
 * both its sets
 */
static void
invalidate(const uint8 *hash)
{
	KcPlace		pl = place_of(hash);
	int			c;

	LWLockAcquire(lock_of(pl.set[0]), LW_EXCLUSIVE);
	for (c = 0; c < 2; c++)
	{
		uint32		setno = pl.set[c];
		KcSet	   *set = &sets[setno];
		int			i;

		set->generation++;
		for (i = 0; i < KC_WAYS; i++)
		{
			if ((set->used & (1 << i)) && set->tag[i] == pl.tag &&
				memcmp(entries[(Size) setno * KC_WAYS + i].hash, hash, APIKEY_HASH_LEN) == 0)
				drop(setno, i);
		}
		if (pl.set[1] == pl.set[0])
			break;
	}
	LWLockRelease(lock_of(pl.set[0]));
}

/*
 * apikey_keycache_forget_at_commit: the row trigger saw a row with this
 * current secret hash changed or deleted: forget it just before this
 * transaction commits.
 */
void
apikey_keycache_forget_at_commit(const uint8 *hash)
{
	if (kc == NULL || flush_at_commit)
		return;
	if (npending == KC_MAX_PENDING)
	{
		flush_at_commit = true;
		return;
	}
	if (pending == NULL)
	{
		pending_cap = 64;
		pending = MemoryContextAlloc(TopTransactionContext,
									 sizeof(*pending) * pending_cap);
	}
	else if (npending == pending_cap)
	{
		pending_cap *= 2;
		pending = repalloc_huge(pending, sizeof(*pending) * pending_cap);
	}
	memcpy(pending[npending++], hash, APIKEY_HASH_LEN);
}

/*
 * apikey_keycache_flush_at_commit: something every cached key may carry
 * changed (an owner's plan): empty the whole cache just before this
 * transaction commits, and bypass it until then.
 */
void
apikey_keycache_flush_at_commit(void)
{
	if (kc != NULL)
		flush_at_commit = true;
}

/* is relid this database's apikey.keys, the extension's own table? */
static bool
is_keys_table(Oid relid)
{
	char	   *name = get_rel_name(relid);
	Oid			nsp;

	if (name == NULL || strcmp(name, "keys") != 0)
		return false;
	nsp = apikey_extension_schema();
	return OidIsValid(nsp) && get_rel_namespace(relid) == nsp;
}

/*
 * xact_callback: just before commit (or PREPARE), forget what this
 * transaction changed; at its end, reset.
 */
static void
xact_callback(XactEvent event, void *arg)
{
	int			i;

	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
		case XACT_EVENT_PRE_PREPARE:
			if (kc == NULL)
				break;
			resolve_ddl();
			if (flush_at_commit)
				pg_atomic_fetch_add_u64(&kc->generation, 1);
			else
				for (i = 0; i < npending; i++)
					invalidate(pending[i]);
			break;
		case XACT_EVENT_PARALLEL_PRE_COMMIT:
			break;
		default:
			/* TopTransactionContext's, about to go: no hash left behind */
			if (pending != NULL)
				kf_wipe(pending, sizeof(*pending) * npending);
			pending = NULL;
			npending = 0;
			pending_cap = 0;
			flush_at_commit = false;
			nddl_relids = 0;
			break;
	}
}

/*
 * relcache_callback: a relation's definition changed.  If this
 * transaction holds it in SHARE ROW EXCLUSIVE mode or stronger (what
 * TRUNCATE, a rewrite and creating, dropping, enabling or disabling a
 * trigger take; VACUUM, ANALYZE and CREATE INDEX take less and change no
 * row), the change is this transaction's own DDL: note the relation, and
 * if it is the extension's apikey.keys, flush the cache at commit.  (A
 * catalog lookup is not allowed here; it waits.)
 */
static void
relcache_callback(Datum arg, Oid relid)
{
	if (kc == NULL || !OidIsValid(relid) || !IsTransactionState() ||
		flush_at_commit)
		return;
	if (!apikey_relation_locked_by_me(relid, ShareRowExclusiveLock))
		return;
	if (nddl_relids == KC_MAX_DDL_RELIDS)
	{
		flush_at_commit = true;
		return;
	}
	ddl_relids[nddl_relids++] = relid;
}

/*
 * apikey_keycache_stats: keys cached now, the capacity, the shared memory
 * it takes, and the bytes of its blocks in use (for apikey.stats and the
 * memory test).
 */
void
apikey_keycache_stats(int64 *nentries, int64 *capacity, int64 *bytes,
					  int64 *variable_bytes)
{
	uint32		setno;
	uint64		generation;
	int			part;

	*nentries = 0;
	*capacity = 0;
	*bytes = 0;
	*variable_bytes = 0;
	if (kc == NULL)
		return;
	for (part = 0; part < KC_PARTITIONS; part++)
	{
		LWLockAcquire(&locks[part].lock, LW_SHARED);
		*variable_bytes += (int64) (blocks_per_part - kc->part[part].nfree) * KC_BLOCK;
		LWLockRelease(&locks[part].lock);
	}
	generation = pg_atomic_read_u64(&kc->generation);
	for (setno = 0; setno < nsets; setno++)
	{
		int			i;

		LWLockAcquire(lock_of(setno), LW_SHARED);
		for (i = 0; i < KC_WAYS; i++)
			if ((sets[setno].used & (1 << i)) &&
				entries[(Size) setno * KC_WAYS + i].generation == generation)
				(*nentries)++;
		LWLockRelease(lock_of(setno));
	}
	*capacity = (int64) nsets * KC_WAYS;
	*bytes = (int64) kc_size();
}

/*
 * apikey_keycache_init: the setting and the shared memory (when preloaded),
 * the transaction and invalidation callbacks.
 */
void
apikey_keycache_init(void)
{
	if (!process_shared_preload_libraries_in_progress)
		return;
	DefineCustomIntVariable("apikey.shared_cache_size",
							"Keys the shared verified-key cache holds, for every backend of the server.",
							"0 turns it off (each backend then keeps apikey.cache_size keys of its own).  "
							"392 bytes of shared memory per key; a key whose name, owner, roles, scopes, resources, cidrs and meta take more than 256 bytes uses the room of more than one.",
							&apikey_shared_cache_size,
							100000,
							0,
							10000000,
							PGC_POSTMASTER,
							0,
							NULL,
							NULL,
							NULL);
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = kc_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = kc_shmem_startup;
	RegisterXactCallback(xact_callback, NULL);
	CacheRegisterRelcacheCallback(relcache_callback, (Datum) 0);
}
