/*-------------------------------------------------------------------------
 *
 * tracker_int.h
 *	  The shared-memory layout, private to the tracker_*.c files.
 *
 *	  Locking:
 *	  - the key table is a shared hash partitioned into TRACKER_PARTITIONS,
 *		each guarded by its own LWLock of the "apikey" tranche: shared to
 *		find an entry, exclusive to add or remove one.  Two backends
 *		verifying keys in different partitions never meet.  Only the
 *		worker removes entries.  A scan of the whole table takes every
 *		partition lock (tracker_lock_all) and lets them go every
 *		TRACKER_SCAN_CHUNK entries (tracker_scan_yield), so a verification
 *		that must add an entry never waits for a whole scan.
 *	  - each entry's counters and bucket are guarded by the entry's
 *		spinlock (held for a few instructions, never across a call).
 *	  - an entry's incarnation is written under its partition lock held
 *		exclusively (when the entry is made or removed) and read under it
 *		held shared: a hint (tracker.h) whose incarnation still matches
 *		names an entry that holds the same key, so the lock held is the
 *		entry's own partition's and nobody can remove it meanwhile.
 *	  - the log queue (head, count, slots) is guarded by the queue lock,
 *		the one LWLock of the "apikey_queue" tranche; only logged outcomes
 *		take it (failures, by default).
 *	  - the per-code counters, the verified-key cache's hit and miss
 *		counts, the dropped and untracked counts, the entries per tenant,
 *		the keys generation and the "dirty" flag are atomics.
 *
 *	  Tenants: a key's owner_role, hashed into 255 groups (0: none).  Once
 *	  the key table is half full, one group's limited keys may hold at
 *	  most half of it (a limited key's spent bucket is never
 *	  recycled while its key exists; keys without a limit are recycled when
 *	  idle and get three quarters at most anyway); once the log queue is
 *	  half full, one group may hold at most a quarter of the queue.
 *
 *-------------------------------------------------------------------------
 */
#ifndef APIKEY_TRACKER_INT_H
#define APIKEY_TRACKER_INT_H

#include "port/atomics.h"
#include "storage/lwlock.h"
#include "storage/spin.h"
#include "utils/hsearch.h"

#include "tracker.h"

#define TRACKER_PARTITIONS	16
/* an entry unused for this many flushes may be recycled */
#define IDLE_FLUSHES		10
/* entries a scan of the key table visits between letting its locks go */
#define TRACKER_SCAN_CHUNK	512

/* sizes the key table (tracker_shmem.c, PGC_POSTMASTER) */
extern int	apikey_max_tracked_keys;

/*
 * A key is known by its database, the apikey.keys table it lives in (a
 * DROP and CREATE EXTENSION makes a new table whose ids start over: its
 * key 1 must not inherit the old key 1's bucket) and its id.
 */
typedef struct TrackerKey
{
	Oid			dbid;
	Oid			relid;
	int64		key_id;
} TrackerKey;

/* what is kept of a key: usage since the last flush and its bucket */
typedef struct TrackerState
{
	int64		pending_uses;
	TimestampTz last_used_at;	/* 0: none since the last flush */
	int32		rate_limit;		/* 0: no limit */
	int64		window_us;
	double		tokens;
	TimestampTz refilled_at;
	int32		idle_flushes;	/* flushes since the last use */
	uint8		tenant;			/* key owner's group (tracker_tenant_of), 0: none */
	bool		limited_entry;	/* made for a limited key: counted in tenant_entries */
	bool		cr_known;		/* cr holds the balance of a metered key */
	bool		cr_dirty;		/* cr changed since the worker last wrote it */
	PlanBalance cr;
	uint32		held;			/* open transactions that may refund cr: not recycled */
	/* verifications by code of this hour and of the one before, unwritten */
	bool		hourly_dirty;
	TimestampTz hour;
	uint32		hourly[APIKEY_NUM_CODES];
	TimestampTz prev_hour;
	uint32		prev_hourly[APIKEY_NUM_CODES];
} TrackerState;

typedef struct TrackerEntry
{
	TrackerKey	key;			/* hash key: must be first */
	slock_t		mutex;
	pg_atomic_uint64 incarnation;	/* unique while it holds key, 0 once removed */
	TrackerState st;
} TrackerEntry;

/*
 * Every verification reads keys_generation and dirty, which change rarely,
 * and adds to the counters, which change at every call from every backend:
 * padding keeps the two kinds on different cache lines, so a backend's
 * counting does not evict the others' copy of what they only read.
 */
typedef struct TrackerShared
{
	TimestampTz started_at;
	bool		clean_start;	/* state restored from a clean shutdown */
	char		pad0[PG_CACHE_LINE_SIZE];
	pg_atomic_uint64 keys_generation;	/* bumped before a change to keys commits */
	pg_atomic_uint32 dirty;		/* something for the worker to write */
	char		pad1[PG_CACHE_LINE_SIZE];
	pg_atomic_uint64 verifications[APIKEY_NUM_CODES];
	pg_atomic_uint64 dropped;	/* log entries lost to a full queue */
	pg_atomic_uint64 untracked; /* uses lost to a full key table */
	pg_atomic_uint64 cache_hits;	/* verified-key cache (verify_cache.c) */
	pg_atomic_uint64 cache_misses;
	pg_atomic_uint64 incarnations;	/* the last TrackerEntry.incarnation given */
	pg_atomic_uint32 tenant_entries[256];	/* limited keys' entries by TrackerState.tenant */
	char		pad2[PG_CACHE_LINE_SIZE];
	int			head;			/* queue: oldest slot */
	int			count;
	int			tenant_count[256];	/* queued entries by ApikeyLogEntry.tenant */
	ApikeyLogEntry slots[FLEXIBLE_ARRAY_MEMBER];
} TrackerShared;

/*
 * One backend's verified-key cache lookups, in the slot of its PGPROC; only
 * that backend writes them (pid first, when it takes the slot over), others
 * read them for apikey.stats.  A cache line each: no false sharing.
 */
typedef struct TrackerBackendCounts
{
	pg_atomic_uint32 pid;		/* the backend counting here, 0: none yet */
	pg_atomic_uint64 hits;
	pg_atomic_uint64 misses;
	char		pad[PG_CACHE_LINE_SIZE - 2 * sizeof(pg_atomic_uint64) - sizeof(pg_atomic_uint64)];
} TrackerBackendCounts;

extern TrackerShared *tracker_shared;
extern TrackerBackendCounts *tracker_backends;
extern int	tracker_nbackends;
extern HTAB *tracker_keys;

extern uint8 tracker_tenant_of(const char *owner_role);
extern LWLock *tracker_partition_lock(uint32 hash);
extern LWLock *tracker_queue_lock(void);
extern void tracker_lock_all(LWLockMode mode);
extern void tracker_unlock_all(void);
extern void tracker_scan_yield(LWLockMode mode, int *seen);

/* tracker_keys.c */
extern void tracker_refill(TrackerState *st, TimestampTz now);
extern void tracker_count_hourly(TrackerState *st, ApikeyCode code, TimestampTz now);
extern void tracker_give_back(Oid dbid, Oid relid, int64 id, ApikeyTrackerHint *hint,
							  bool token, const PlanBalance *from, int64 cost);
extern void tracker_hold(Oid dbid, Oid relid, int64 id, int delta);
extern TrackerEntry *tracker_find_entry(Oid dbid, Oid relid, int64 key_id,
										const char *owner_role, bool limited,
										bool create, ApikeyTrackerHint *hint,
										LWLock **lock);


/*
 * tracker_entry_made, tracker_entry_removed: give an entry just made a new
 * incarnation, take it from one about to be removed (its partition lock
 * held exclusively, or the postmaster alone loading the state file)
 */
static inline void
tracker_entry_made(TrackerShared *shared, TrackerEntry *e)
{
	pg_atomic_write_u64(&e->incarnation,
						pg_atomic_add_fetch_u64(&shared->incarnations, 1));
}

static inline void
tracker_entry_removed(TrackerShared *shared, TrackerEntry *e)
{
	pg_atomic_write_u64(&e->incarnation, 0);
	if (e->st.limited_entry)
		pg_atomic_fetch_sub_u32(&shared->tenant_entries[e->st.tenant], 1);
}

/*
 * tracker_state.c, called by tracker_shmem.c's startup and exit callbacks
 * with what they need (it knows nothing else of the tracker)
 */
extern void tracker_state_save(TrackerShared *shared, HTAB *keys, int queue_size);
extern bool tracker_state_load(TrackerShared *shared, HTAB *keys,
							   int max_keys, int queue_size);
extern bool tracker_state_start_running(bool restored);

#endif							/* APIKEY_TRACKER_INT_H */
