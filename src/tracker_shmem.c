/*-------------------------------------------------------------------------
 *
 * tracker_shmem.c
 *	  The tracker's shared memory: its size (apikey.max_tracked_keys,
 *	  apikey.queue_size), its setup at server start, the locks every
 *	  tracker_*.c file takes (see tracker_int.h for which guards what), and
 *	  the server-wide counters.
 *
 *	  Restarts: at a clean shutdown the postmaster writes the buckets, the
 *	  usage not yet flushed and the queued outcomes to a state file and
 *	  reads them back at the next start (tracker_state.c).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "common/hashfn.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/proc.h"
#include "storage/procarray.h"
#include "storage/shmem.h"
#include "utils/guc.h"
#include "utils/timestamp.h"

#include "compat.h"
#include "tracker_int.h"

#define PARTITION_TRANCHE	"apikey"
#define QUEUE_TRANCHE		"apikey_queue"

/* settings (PGC_POSTMASTER: they size shared memory) */
int			apikey_max_tracked_keys = 10000;
int			apikey_queue_size = 10000;

TrackerShared *tracker_shared = NULL;
HTAB	   *tracker_keys = NULL;
TrackerBackendCounts *tracker_backends = NULL;
int			tracker_nbackends = 0;
static LWLockPadded *partition_locks = NULL;
static LWLockPadded *queue_lock = NULL;

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

/*
 * key_hash: the key table's hash function; one multiply and a fold,
 * cheaper than hashing the 16 bytes of TrackerKey, on the verify path.
 */
static uint32
key_hash(const void *key, Size keysize)
{
	const TrackerKey *k = (const TrackerKey *) key;
	uint64		h = ((uint64) k->key_id ^ ((uint64) k->dbid << 40) ^ ((uint64) k->relid << 20)) *
		UINT64CONST(0x9E3779B97F4A7C15);

	return (uint32) (h >> 32) ^ (uint32) h;
}

static Size
shared_size(void)
{
	return add_size(offsetof(TrackerShared, slots),
					mul_size(apikey_queue_size, sizeof(ApikeyLogEntry)));
}

/* a slot per PGPROC a verifying process may have */
static int
backend_slots(void)
{
	return MaxBackends + NUM_AUXILIARY_PROCS;
}

static void
tracker_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(add_size(add_size(shared_size(),
											 hash_estimate_size(apikey_max_tracked_keys,
																sizeof(TrackerEntry))),
									mul_size(backend_slots(), sizeof(TrackerBackendCounts))));
	RequestNamedLWLockTranche(PARTITION_TRANCHE, TRACKER_PARTITIONS);
	RequestNamedLWLockTranche(QUEUE_TRANCHE, 1);
}

/* save_at_exit: at a clean shutdown of the postmaster, the state file */
static void
save_at_exit(int code, Datum arg)
{
	if (code == 0 && tracker_shared != NULL && tracker_keys != NULL)
		tracker_state_save(tracker_shared, tracker_keys, apikey_queue_size);
}

static void
tracker_shmem_startup(void)
{
	TrackerShared *shared;
	HASHCTL		info;
	bool		found;
	bool		found_backends;
	int			i;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	shared = ShmemInitStruct("apikey tracker", shared_size(), &found);
	if (!found)
	{
		shared->started_at = GetCurrentTimestamp();
		shared->clean_start = false;
		for (i = 0; i < APIKEY_NUM_CODES; i++)
			pg_atomic_init_u64(&shared->verifications[i], 0);
		pg_atomic_init_u64(&shared->dropped, 0);
		pg_atomic_init_u64(&shared->untracked, 0);
		pg_atomic_init_u64(&shared->cache_hits, 0);
		pg_atomic_init_u64(&shared->keys_generation, 0);
		pg_atomic_init_u64(&shared->cache_misses, 0);
		pg_atomic_init_u64(&shared->incarnations, 0);
		pg_atomic_init_u32(&shared->dirty, 0);
		for (i = 0; i < 256; i++)
			pg_atomic_init_u32(&shared->tenant_entries[i], 0);
		shared->head = 0;
		shared->count = 0;
		memset(shared->tenant_count, 0, sizeof(shared->tenant_count));
	}
	memset(&info, 0, sizeof(info));
	info.keysize = sizeof(TrackerKey);
	info.entrysize = sizeof(TrackerEntry);
	info.num_partitions = TRACKER_PARTITIONS;
	info.hash = key_hash;
	tracker_keys = ShmemInitHash("apikey tracked keys",
								 apikey_max_tracked_keys, apikey_max_tracked_keys,
								 &info, HASH_ELEM | HASH_FUNCTION | HASH_PARTITION);
	tracker_nbackends = backend_slots();
	tracker_backends = ShmemInitStruct("apikey backend counts",
									   mul_size(tracker_nbackends, sizeof(TrackerBackendCounts)),
									   &found_backends);
	if (!found_backends)
		for (i = 0; i < tracker_nbackends; i++)
		{
			pg_atomic_init_u32(&tracker_backends[i].pid, 0);
			pg_atomic_init_u64(&tracker_backends[i].hits, 0);
			pg_atomic_init_u64(&tracker_backends[i].misses, 0);
		}
	partition_locks = GetNamedLWLockTranche(PARTITION_TRANCHE);
	queue_lock = GetNamedLWLockTranche(QUEUE_TRANCHE);
	tracker_shared = shared;
	LWLockRelease(AddinShmemInitLock);

	/* in the postmaster: read what the last clean shutdown left, save at ours */
	if (!IsUnderPostmaster)
	{
		if (!found)
			shared->clean_start =
				tracker_state_start_running(tracker_state_load(shared, tracker_keys,
															   apikey_max_tracked_keys,
															   apikey_queue_size));
		on_shmem_exit(save_at_exit, (Datum) 0);
	}
}

/*
 * apikey_tracker_init: when loaded by shared_preload_libraries, define the
 * sizing settings and ask for shared memory.
 */
void
apikey_tracker_init(void)
{
	/* it sizes shared memory: only at server start, as preloaded */
	if (!process_shared_preload_libraries_in_progress)
		return;
	DefineCustomIntVariable("apikey.max_tracked_keys",
							"Keys whose usage and rate limit are tracked in shared memory at once.",
							"About 100 bytes each. Beyond it, usage of further keys is not counted and rate-limited keys are refused.",
							&apikey_max_tracked_keys,
							10000,
							100,
							10000000,
							PGC_POSTMASTER,
							0,
							NULL,
							NULL,
							NULL);
	DefineCustomIntVariable("apikey.queue_size",
							"Verification outcomes held for the log until the worker writes them.",
							"About 300 bytes each. When full, further outcomes are dropped and counted.",
							&apikey_queue_size,
							10000,
							16,
							1000000,
							PGC_POSTMASTER,
							0,
							NULL,
							NULL,
							NULL);
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = tracker_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = tracker_shmem_startup;
}

/* apikey_tracker_active: shared memory is there */
bool
apikey_tracker_active(void)
{
	return tracker_shared != NULL && tracker_keys != NULL;
}

/* tracker_tenant_of: the group of a key owner role (1..255), 0 for none */
uint8
tracker_tenant_of(const char *owner_role)
{
	if (owner_role == NULL)
		return 0;
	return 1 + hash_bytes((const unsigned char *) owner_role, strlen(owner_role)) % 255;
}

/* tracker_partition_lock: the lock of the partition a key hash falls in */
LWLock *
tracker_partition_lock(uint32 hash)
{
	return &partition_locks[hash % TRACKER_PARTITIONS].lock;
}

/* tracker_queue_lock: the lock of the outcome queue */
LWLock *
tracker_queue_lock(void)
{
	return &queue_lock->lock;
}

/* tracker_lock_all: every partition, in order (a scan of the key table) */
void
tracker_lock_all(LWLockMode mode)
{
	int			i;

	for (i = 0; i < TRACKER_PARTITIONS; i++)
		LWLockAcquire(&partition_locks[i].lock, mode);
}

void
tracker_unlock_all(void)
{
	int			i;

	for (i = TRACKER_PARTITIONS - 1; i >= 0; i--)
		LWLockRelease(&partition_locks[i].lock);
}

/*
 * tracker_scan_yield: called by a scan holding every partition lock after
 * each entry it visits; every TRACKER_SCAN_CHUNK entries it lets the locks
 * go and takes them again, so verifications waiting for a partition (a
 * key seen for the first time needs one exclusively) get in.  That is safe
 * for a hash_seq_search scan because only the worker removes entries (and
 * only the one a scan just returned), a new entry is appended to its
 * bucket's chain, and a partitioned table never splits buckets: the scan's
 * position stays valid.  An entry added meanwhile may or may not be seen.
 * (No CHECK_FOR_INTERRUPTS here: a scan that collects usage must not stop
 * halfway with what it took in hand.)
 */
void
tracker_scan_yield(LWLockMode mode, int *seen)
{
	if (++(*seen) % TRACKER_SCAN_CHUNK != 0)
		return;
	tracker_unlock_all();
	tracker_lock_all(mode);
}

/*
 * apikey_tracker_keys_changed: a transaction that changed apikey.keys is
 * about to commit (verify_cache.c); every backend's cache must forget it.
 */
void
apikey_tracker_keys_changed(void)
{
	if (tracker_shared != NULL)
		pg_atomic_fetch_add_u64(&tracker_shared->keys_generation, 1);
}

/*
 * apikey_tracker_keys_generation: how many such commits this server has
 * begun (0 without shared memory).  The read barrier orders it after the
 * snapshot the caller took: a commit the snapshot sees has bumped it.
 */
uint64
apikey_tracker_keys_generation(void)
{
	if (tracker_shared == NULL)
		return 0;
	pg_read_barrier();
	return pg_atomic_read_u64(&tracker_shared->keys_generation);
}

/*
 * apikey_tracker_count_cache: count a lookup in the verified-key cache, for
 * the server and for this backend (nothing without shared memory).
 */
void
apikey_tracker_count_cache(bool hit)
{
	int			slot = apikey_my_proc_slot();

	if (tracker_shared == NULL)
		return;
	pg_atomic_fetch_add_u64(hit ? &tracker_shared->cache_hits : &tracker_shared->cache_misses, 1);
	if (slot >= 0 && slot < tracker_nbackends)
	{
		TrackerBackendCounts *b = &tracker_backends[slot];

		/* a slot another process used: start from zero */
		if (pg_atomic_read_u32(&b->pid) != (uint32) MyProcPid)
		{
			pg_atomic_write_u64(&b->hits, 0);
			pg_atomic_write_u64(&b->misses, 0);
			pg_write_barrier();
			pg_atomic_write_u32(&b->pid, (uint32) MyProcPid);
		}
		/* only this backend writes here: no locked instruction needed */
		if (hit)
			pg_atomic_write_u64(&b->hits, pg_atomic_read_u64(&b->hits) + 1);
		else
			pg_atomic_write_u64(&b->misses, pg_atomic_read_u64(&b->misses) + 1);
	}
}

/*
 * apikey_tracker_backend_stats: the cache lookups of each backend still
 * running that made any (a palloc'd array in *out); returns how many.
 */
int
apikey_tracker_backend_stats(ApikeyBackendStats **out)
{
	int			n = 0;
	int			i;

	*out = palloc(sizeof(ApikeyBackendStats) * Max(tracker_nbackends, 1));
	for (i = 0; i < tracker_nbackends; i++)
	{
		TrackerBackendCounts *b = &tracker_backends[i];
		int			pid = (int) pg_atomic_read_u32(&b->pid);

		if (pid == 0 || BackendPidGetProc(pid) == NULL)
			continue;
		pg_read_barrier();
		(*out)[n].pid = pid;
		(*out)[n].cache_hits = pg_atomic_read_u64(&b->hits);
		(*out)[n].cache_misses = pg_atomic_read_u64(&b->misses);
		n++;
	}
	return n;
}

/*
 * apikey_tracker_mark_dirty: have the worker look again next round.  Reads
 * first: writing a set flag again would move its cache line between the
 * cores of every verifying backend.
 */
void
apikey_tracker_mark_dirty(void)
{
	if (pg_atomic_read_u32(&tracker_shared->dirty) == 0)
		pg_atomic_write_u32(&tracker_shared->dirty, 1);
}

/*
 * apikey_tracker_take_dirty: true if anything was recorded since the last
 * call (the worker's cheap "anything to do?").
 */
bool
apikey_tracker_take_dirty(void)
{
	return pg_atomic_exchange_u32(&tracker_shared->dirty, 0) != 0;
}

/* apikey_tracker_server_stats: the per-server figures */
void
apikey_tracker_server_stats(ApikeyServerStats *s)
{
	int			i;

	for (i = 0; i < APIKEY_NUM_CODES; i++)
		s->verifications[i] = pg_atomic_read_u64(&tracker_shared->verifications[i]);
	s->dropped = pg_atomic_read_u64(&tracker_shared->dropped);
	s->untracked = pg_atomic_read_u64(&tracker_shared->untracked);
	s->cache_hits = pg_atomic_read_u64(&tracker_shared->cache_hits);
	s->cache_misses = pg_atomic_read_u64(&tracker_shared->cache_misses);
	LWLockAcquire(tracker_queue_lock(), LW_SHARED);
	s->queue_depth = tracker_shared->count;
	LWLockRelease(tracker_queue_lock());
	s->queue_size = apikey_queue_size;
	s->started_at = tracker_shared->started_at;
}
