/*-------------------------------------------------------------------------
 *
 * tracker.c
 *	  Shared-memory state of the verify path, so that verification itself
 *	  never writes a table: per key, the usage not yet flushed and the
 *	  token bucket of its rate limit; per server, verifications by code and
 *	  a bounded queue of verification outcomes for the log.  The background
 *	  worker (worker.c) drains usage and the queue into apikey.usage and
 *	  apikey.audit.  Present only with shared_preload_libraries = 'apikey'.
 *
 *	  Locking:
 *	  - the key table is a shared hash partitioned into TRACKER_PARTITIONS,
 *		each guarded by its own LWLock of the "apikey" tranche: shared to
 *		find an entry, exclusive to add or remove one.  Two backends
 *		verifying keys in different partitions never meet.
 *	  - each entry's counters and bucket are guarded by the entry's
 *		spinlock (held for a few instructions, never across a call).
 *	  - the queue (head, count, slots) is guarded by the tranche's last
 *		LWLock; only logged outcomes take it (failures, by default).
 *	  - the per-code counters, the verified-key cache's hit and miss
 *		counts, the dropped and untracked counts and the "dirty" flag are
 *		atomics.
 *
 *	  Buckets: capacity rate_limit, refilled continuously at rate_limit per
 *	  rate_window; a key seen for the first time starts with a full bucket.
 *
 *	  Restarts: at a clean shutdown the postmaster writes the buckets, the
 *	  usage not yet flushed and the queued outcomes to pg_stat/apikey.state,
 *	  and reads them back at the next start, so nothing is lost and no
 *	  bucket refills early.  While the server runs, pg_stat_tmp/apikey.running
 *	  exists; finding it at start without a state file means the last run
 *	  ended in a crash and what was spent is unknown, so every bucket then
 *	  counts as emptied when the server started: a crash never grants a
 *	  burst the bucket had already spent.  (At the very first start there
 *	  is neither file, and buckets start full.)
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "access/xact.h"
#include "fmgr.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "pgstat.h"
#include "storage/fd.h"
#include "utils/acl.h"
#include "utils/jsonb.h"
#include "port/atomics.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/inet.h"
#include "utils/timestamp.h"

#include "apikey.h"
#include "tracker.h"

#define TRACKER_PARTITIONS	16
/* an entry unused for this many flushes may be recycled */
#define IDLE_FLUSHES		10
#define TRACKER_TRANCHE		"apikey"

/* settings (PGC_POSTMASTER: they size shared memory) */
int			apikey_max_tracked_keys = 10000;
int			apikey_queue_size = 10000;

typedef enum
{
	LOG_OFF,
	LOG_FAILURES,
	LOG_ALL
} LogVerifications;

static const struct config_enum_entry log_options[] = {
	{"off", LOG_OFF, false},
	{"failures", LOG_FAILURES, false},
	{"all", LOG_ALL, false},
	{NULL, 0, false}
};

static int	log_verifications = LOG_FAILURES;

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

typedef struct TrackerEntry
{
	TrackerKey	key;			/* hash key: must be first */
	slock_t		mutex;
	/* usage since the last flush */
	int64		pending_uses;
	TimestampTz last_used_at;	/* 0: none since the last flush */
	/* token bucket (rate_limit 0: no limit) */
	int32		rate_limit;
	int64		window_us;
	double		tokens;
	TimestampTz refilled_at;
	int32		idle_flushes;	/* flushes since the last use */
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
	char		pad2[PG_CACHE_LINE_SIZE];
	int			head;			/* queue: oldest slot */
	int			count;
	ApikeyLogEntry slots[FLEXIBLE_ARRAY_MEMBER];
} TrackerShared;

static TrackerShared *shared = NULL;
static HTAB *keys = NULL;
static LWLockPadded *locks = NULL;

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

#define STATE_FILE		PGSTAT_STAT_PERMANENT_DIRECTORY "/apikey.state"
#define STATE_MAGIC		0x41504b32	/* "APK2" */
#define RUNNING_FILE	PG_STAT_TMP_DIR "/apikey.running"	/* not in base backups */


/* what the state file holds per key (TrackerEntry without its lock) */
typedef struct SavedEntry
{
	TrackerKey	key;
	int64		pending_uses;
	TimestampTz last_used_at;
	int32		rate_limit;
	int64		window_us;
	double		tokens;
	TimestampTz refilled_at;
} SavedEntry;

static void save_state(int code, Datum arg);
static bool load_state(void);
static bool start_running(bool restored);

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

static void
tracker_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(add_size(shared_size(),
									hash_estimate_size(apikey_max_tracked_keys,
													   sizeof(TrackerEntry))));
	RequestNamedLWLockTranche(TRACKER_TRANCHE, TRACKER_PARTITIONS + 1);
}

static void
tracker_shmem_startup(void)
{
	HASHCTL		info;
	bool		found;
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
		pg_atomic_init_u32(&shared->dirty, 0);
		shared->head = 0;
		shared->count = 0;
	}
	memset(&info, 0, sizeof(info));
	info.keysize = sizeof(TrackerKey);
	info.entrysize = sizeof(TrackerEntry);
	info.num_partitions = TRACKER_PARTITIONS;
	info.hash = key_hash;
	keys = ShmemInitHash("apikey tracked keys",
						 apikey_max_tracked_keys, apikey_max_tracked_keys,
						 &info, HASH_ELEM | HASH_FUNCTION | HASH_PARTITION);
	locks = GetNamedLWLockTranche(TRACKER_TRANCHE);
	LWLockRelease(AddinShmemInitLock);

	/* in the postmaster: read what the last clean shutdown left, save at ours */
	if (!IsUnderPostmaster)
	{
		if (!found)
			shared->clean_start = start_running(load_state());
		on_shmem_exit(save_state, (Datum) 0);
	}
}

/*
 * save_state: at a clean shutdown (postmaster, code 0), write every entry
 * and the queue to STATE_FILE; after a crash write nothing, so the next
 * start knows it cannot trust any bucket.
 */
static void
save_state(int code, Datum arg)
{
	FILE	   *f;
	HASH_SEQ_STATUS seq;
	TrackerEntry *e;
	uint32		header[2] = {STATE_MAGIC, 0};
	int32		n;
	int			i;

	if (code != 0 || shared == NULL || keys == NULL)
		return;
	f = AllocateFile(STATE_FILE ".tmp", PG_BINARY_W);
	if (f == NULL)
		goto error;
	n = (int32) hash_get_num_entries(keys);
	if (fwrite(header, sizeof(header), 1, f) != 1 ||
		fwrite(&n, sizeof(n), 1, f) != 1)
		goto error;
	hash_seq_init(&seq, keys);
	while ((e = hash_seq_search(&seq)) != NULL)
	{
		SavedEntry	se;

		se.key = e->key;
		se.pending_uses = e->pending_uses;
		se.last_used_at = e->last_used_at;
		se.rate_limit = e->rate_limit;
		se.window_us = e->window_us;
		se.tokens = e->tokens;
		se.refilled_at = e->refilled_at;
		if (fwrite(&se, sizeof(se), 1, f) != 1)
		{
			hash_seq_term(&seq);
			goto error;
		}
	}
	n = shared->count;
	if (fwrite(&n, sizeof(n), 1, f) != 1)
		goto error;
	for (i = 0; i < n; i++)
		if (fwrite(&shared->slots[(shared->head + i) % apikey_queue_size],
				   sizeof(ApikeyLogEntry), 1, f) != 1)
			goto error;
	if (FreeFile(f) != 0)
	{
		f = NULL;
		goto error;
	}
	if (durable_rename(STATE_FILE ".tmp", STATE_FILE, LOG) == 0)
		unlink(RUNNING_FILE);
	return;

error:
	ereport(LOG,
			(errcode_for_file_access(),
			 errmsg("could not write file \"%s\": %m", STATE_FILE ".tmp")));
	if (f != NULL)
		FreeFile(f);
	unlink(STATE_FILE ".tmp");
}

/*
 * start_running: whether this start may trust its buckets (restored from a
 * clean shutdown, or the very first start), judged by RUNNING_FILE, which
 * is then made for the next start to see.
 */
static bool
start_running(bool restored)
{
	bool		crashed = access(RUNNING_FILE, F_OK) == 0;
	FILE	   *f;

	if (!restored && crashed)
		ereport(LOG,
				(errmsg("apikey: the last run did not shut down cleanly; rate-limit buckets start empty")));
	f = AllocateFile(RUNNING_FILE, PG_BINARY_W);
	if (f != NULL)
		FreeFile(f);
	return restored || !crashed;
}

/*
 * load_state: read STATE_FILE, if the last shutdown was clean, into the
 * fresh shared memory, and remove it.  True if it was read whole.
 */
static bool
load_state(void)
{
	FILE	   *f;
	uint32		header[2];
	int32		n;
	int			i;
	bool		ok = false;

	f = AllocateFile(STATE_FILE, PG_BINARY_R);
	if (f == NULL)
	{
		if (errno != ENOENT)
			ereport(LOG,
					(errcode_for_file_access(),
					 errmsg("could not read file \"%s\": %m", STATE_FILE)));
		return false;
	}
	if (fread(header, sizeof(header), 1, f) != 1 || header[0] != STATE_MAGIC ||
		fread(&n, sizeof(n), 1, f) != 1 || n < 0)
		goto done;
	for (i = 0; i < n; i++)
	{
		SavedEntry	se;
		TrackerEntry *e;
		bool		found;

		if (fread(&se, sizeof(se), 1, f) != 1)
			goto done;
		e = hash_search(keys, &se.key, HASH_ENTER_NULL, &found);
		if (e == NULL)
			continue;			/* apikey.max_tracked_keys was lowered */
		SpinLockInit(&e->mutex);
		e->pending_uses = se.pending_uses;
		e->last_used_at = se.last_used_at;
		e->rate_limit = se.rate_limit;
		e->window_us = se.window_us;
		e->tokens = se.tokens;
		e->refilled_at = se.refilled_at;
		e->idle_flushes = 0;
		if (se.pending_uses > 0)
			apikey_tracker_mark_dirty();
	}
	if (fread(&n, sizeof(n), 1, f) != 1 || n < 0)
		goto done;
	for (i = 0; i < n; i++)
	{
		ApikeyLogEntry le;

		if (fread(&le, sizeof(le), 1, f) != 1)
			goto done;
		if (shared->count < apikey_queue_size)
			shared->slots[shared->count++] = le;
		else
			pg_atomic_fetch_add_u64(&shared->dropped, 1);
	}
	if (shared->count > 0)
		apikey_tracker_mark_dirty();
	ok = true;

done:
	if (!ok)
		ereport(LOG,
				(errmsg("ignoring incomplete or corrupt file \"%s\"", STATE_FILE)));
	FreeFile(f);
	unlink(STATE_FILE);
	return ok;
}

/*
 * apikey_tracker_init: define apikey.log_verifications and, when loaded by
 * shared_preload_libraries, the sizing settings, and ask for shared memory.
 */
void
apikey_tracker_init(void)
{
	DefineCustomEnumVariable("apikey.log_verifications",
							 "Which verification outcomes are written to apikey.audit.",
							 "failures: every outcome but VALID. Written by the worker, so also for transactions that roll back.",
							 &log_verifications,
							 LOG_FAILURES,
							 log_options,
							 PGC_SUSET,
							 0,
							 NULL,
							 NULL,
							 NULL);
	/* the rest sizes shared memory: only at server start, as preloaded */
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
	return shared != NULL && keys != NULL;
}

/*
 * interval_us: a rate window in microseconds, months as 30 days; saturates
 * instead of overflowing, so a huge window means "hardly ever refills",
 * never a negative (unlimited) one.
 */
static int64
interval_us(const Interval *iv)
{
	double		us = (double) iv->time + (double) iv->day * USECS_PER_DAY +
		(double) iv->month * DAYS_PER_MONTH * USECS_PER_DAY;

	if (us >= (double) (PG_INT64_MAX / 2))
		return PG_INT64_MAX / 2;
	return (int64) us;
}

/*
 * find_entry: the key's entry, created if missing, with its partition lock
 * held (in *lock: the caller releases it); NULL, with no lock held, when
 * the table is full.  Entries are removed only by the worker, holding every
 * partition lock exclusively.
 */
static TrackerEntry *
find_entry(Oid dbid, Oid relid, int64 key_id, bool limited, LWLock **lock)
{
	TrackerKey	k;
	uint32		hash;
	TrackerEntry *e;
	bool		found;

	memset(&k, 0, sizeof(k));
	k.dbid = dbid;
	k.relid = relid;
	k.key_id = key_id;
	hash = get_hash_value(keys, &k);
	*lock = &locks[hash % TRACKER_PARTITIONS].lock;

	LWLockAcquire(*lock, LW_SHARED);
	e = hash_search_with_hash_value(keys, &k, hash, HASH_FIND, NULL);
	if (e != NULL)
		return e;
	LWLockRelease(*lock);

	/*
	 * A full table: do not queue for the exclusive lock just to fail.  The
	 * last quarter is kept for keys with a rate limit, which fail closed
	 * without an entry: keys without one cannot crowd them out.
	 */
	if (hash_get_num_entries(keys) >=
		(limited ? apikey_max_tracked_keys : apikey_max_tracked_keys / 4 * 3))
		return NULL;

	LWLockAcquire(*lock, LW_EXCLUSIVE);
	e = hash_search_with_hash_value(keys, &k, hash, HASH_ENTER_NULL, &found);
	if (e != NULL && !found)
	{
		SpinLockInit(&e->mutex);
		e->pending_uses = 0;
		e->last_used_at = 0;
		e->rate_limit = 0;
		e->window_us = 0;
		e->tokens = 0;
		e->refilled_at = 0;
		e->idle_flushes = 0;
	}
	if (e == NULL)
		LWLockRelease(*lock);
	return e;
}

/* refill: bring the bucket to now (entry spinlock held) */
static void
refill(TrackerEntry *e, TimestampTz now)
{
	if (e->rate_limit <= 0 || e->window_us <= 0)
		return;
	if (now > e->refilled_at)
	{
		e->tokens += (double) (now - e->refilled_at) * e->rate_limit / e->window_us;
		if (e->tokens > e->rate_limit)
			e->tokens = e->rate_limit;
		e->refilled_at = now;
	}
}

/*
 * apikey_tracker_use: a key passed every other check.  Takes a token if
 * the key has a rate limit (rate_limit 0: none) and counts the use.  True
 * if the verification is VALID; false if over the limit, with the time
 * until a token is back in *retry_us.  Without room in the key table, an
 * unlimited key is VALID but its use is not counted, and a limited one is
 * refused (retry in one refill period).
 */
bool
apikey_tracker_use(Oid relid, int64 key_id, int32 rate_limit, const Interval *window,
				   int64 *retry_us)
{
	LWLock	   *lock;
	TrackerEntry *e;
	int64		window_us = window ? interval_us(window) : 0;
	bool		limited = rate_limit > 0 && window_us > 0;

	/* buckets need the clock; a last use is as precise as its statement */
	TimestampTz now = limited ? GetCurrentTimestamp() : GetCurrentStatementStartTimestamp();
	bool		ok = true;

	*retry_us = 0;
	e = find_entry(MyDatabaseId, relid, key_id, limited, &lock);
	if (e == NULL)
	{
		pg_atomic_fetch_add_u64(&shared->untracked, 1);
		if (rate_limit > 0 && window_us > 0)
		{
			*retry_us = Max(window_us / rate_limit, 1);
			return false;
		}
		return true;
	}

	SpinLockAcquire(&e->mutex);
	if (rate_limit > 0 && window_us > 0)
	{
		if (e->rate_limit == 0)
		{
			/*
			 * A bucket seen for the first time: full, unless this server
			 * may have forgotten what was spent (no clean shutdown before
			 * it started), in which case it was emptied at the start.
			 */
			e->rate_limit = rate_limit;
			e->window_us = window_us;
			e->tokens = shared->clean_start ? rate_limit : 0;
			e->refilled_at = shared->clean_start ? now : shared->started_at;
		}
		else if (e->rate_limit != rate_limit || e->window_us != window_us)
		{
			/* a changed limit: keep the level, within the new capacity */
			refill(e, now);
			e->rate_limit = rate_limit;
			e->window_us = window_us;
			if (e->tokens > rate_limit)
				e->tokens = rate_limit;
		}
		refill(e, now);
		if (e->tokens >= 1.0)
			e->tokens -= 1.0;
		else
		{
			double		wait = ceil((1.0 - e->tokens) * window_us / rate_limit);

			ok = false;
			*retry_us = wait >= (double) (PG_INT64_MAX / 2) ? PG_INT64_MAX / 2 : (int64) wait;
		}
	}
	else
		e->rate_limit = 0;
	if (ok)
	{
		e->pending_uses++;
		e->last_used_at = now;
	}
	e->idle_flushes = 0;
	SpinLockRelease(&e->mutex);
	LWLockRelease(lock);

	if (ok)
		apikey_tracker_mark_dirty();
	return ok;
}

/*
 * apikey_tracker_count: count one verification outcome, and queue it for
 * the log (entry != NULL).  Never blocks on the worker: a full queue drops
 * the entry and counts it.
 */
void
apikey_tracker_count(ApikeyCode code, const ApikeyLogEntry *entry)
{
	pg_atomic_fetch_add_u64(&shared->verifications[code], 1);
	if (entry == NULL)
		return;
	LWLockAcquire(&locks[TRACKER_PARTITIONS].lock, LW_EXCLUSIVE);
	/*
	 * Outcomes that name no key (MALFORMED, NOT_FOUND: anyone can make
	 * them, for free) fill at most half the queue, so a flood of them
	 * cannot push out the failures of real keys.
	 */
	if (shared->count < (entry->key_id == 0 ? apikey_queue_size / 2 : apikey_queue_size))
	{
		shared->slots[(shared->head + shared->count) % apikey_queue_size] = *entry;
		shared->count++;
		entry = NULL;
	}
	LWLockRelease(&locks[TRACKER_PARTITIONS].lock);
	if (entry != NULL)
		pg_atomic_fetch_add_u64(&shared->dropped, 1);
	apikey_tracker_mark_dirty();
}

/*
 * apikey_tracker_keys_changed: a transaction that changed apikey.keys is
 * about to commit (verify_cache.c); every backend's cache must forget it.
 */
void
apikey_tracker_keys_changed(void)
{
	if (shared != NULL)
		pg_atomic_fetch_add_u64(&shared->keys_generation, 1);
}

/*
 * apikey_tracker_keys_generation: how many such commits this server has
 * begun (0 without shared memory).  The read barrier orders it after the
 * snapshot the caller took: a commit the snapshot sees has bumped it.
 */
uint64
apikey_tracker_keys_generation(void)
{
	if (shared == NULL)
		return 0;
	pg_read_barrier();
	return pg_atomic_read_u64(&shared->keys_generation);
}

/*
 * apikey_tracker_count_cache: count a lookup in a backend's verified-key
 * cache (nothing without shared memory).
 */
void
apikey_tracker_count_cache(bool hit)
{
	if (shared == NULL)
		return;
	pg_atomic_fetch_add_u64(hit ? &shared->cache_hits : &shared->cache_misses, 1);
}

/*
 * apikey_tracker_record: count the outcome of one verification and queue
 * it for the log as apikey.log_verifications says.  Without shared memory
 * nothing is recorded, and the first call in a backend says so.
 */
void
apikey_tracker_record(ApikeyCode code, int64 key_id, const ApikeyRequest *req)
{
	static bool warned = false;
	ApikeyLogEntry entry;

	if (!apikey_tracker_active())
	{
		if (!warned)
		{
			warned = true;
			ereport(WARNING,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("apikey is not in shared_preload_libraries: usage and the verification log are not recorded"),
					 errhint("Add apikey to shared_preload_libraries and restart the server.")));
		}
		return;
	}
	if (log_verifications == LOG_OFF ||
		(log_verifications == LOG_FAILURES && code == APIKEY_VALID))
	{
		apikey_tracker_count(code, NULL);
		return;
	}

	memset(&entry, 0, sizeof(entry));
	entry.at = GetCurrentTimestamp();
	entry.dbid = MyDatabaseId;
	entry.key_id = key_id;
	entry.code = (uint8) code;
	if (!req->client_isnull)
	{
		inet	   *addr = DatumGetInetPP(req->client_addr);

		entry.has_client = true;
		memcpy(&entry.client, VARDATA_ANY(addr),
			   Min(VARSIZE_ANY_EXHDR(addr), sizeof(inet_struct)));
	}
	namestrcpy(&entry.session_user, GetUserNameFromId(GetSessionUserId(), false));
	namestrcpy(&entry.current_user, GetUserNameFromId(GetUserId(), false));
	strlcpy(entry.application_name, application_name ? application_name : "",
			sizeof(entry.application_name));
	apikey_tracker_count(code, &entry);
}

/*
 * apikey_tracker_mark_dirty: have the worker look again next round.  Reads
 * first: writing a set flag again would move its cache line between the
 * cores of every verifying backend.
 */
void
apikey_tracker_mark_dirty(void)
{
	if (pg_atomic_read_u32(&shared->dirty) == 0)
		pg_atomic_write_u32(&shared->dirty, 1);
}

/*
 * apikey_tracker_take_dirty: true if anything was recorded since the last
 * call (the worker's cheap "anything to do?").
 */
bool
apikey_tracker_take_dirty(void)
{
	return pg_atomic_exchange_u32(&shared->dirty, 0) != 0;
}

/*
 * forget_idle: remove the entries that hold nothing worth keeping: unused
 * for IDLE_FLUSHES flushes, no bucket that is not full, and nothing
 * pending that the worker could still write (usage of other databases than
 * its own never is).
 */
static void
forget_idle(Oid dbid, Oid relid)
{
	HASH_SEQ_STATUS seq;
	TrackerEntry *e;
	int			i;
	TimestampTz now = GetCurrentTimestamp();

	for (i = 0; i < TRACKER_PARTITIONS; i++)
		LWLockAcquire(&locks[i].lock, LW_EXCLUSIVE);
	hash_seq_init(&seq, keys);
	while ((e = hash_seq_search(&seq)) != NULL)
	{
		bool		idle;

		SpinLockAcquire(&e->mutex);
		refill(e, now);
		idle = (e->key.dbid == dbid && e->key.relid != relid) ||	/* a dropped table's */
			(e->idle_flushes >= IDLE_FLUSHES &&
			 (e->pending_uses == 0 || e->key.dbid != dbid) &&
			 (e->rate_limit == 0 || e->tokens >= e->rate_limit));
		SpinLockRelease(&e->mutex);
		if (idle)
			hash_search(keys, &e->key, HASH_REMOVE, NULL);
	}
	for (i = TRACKER_PARTITIONS - 1; i >= 0; i--)
		LWLockRelease(&locks[i].lock);
}

/*
 * apikey_tracker_collect_usage: move every pending usage of database dbid
 * into a palloc'd array (*out), zeroing it; returns how many.  The scan
 * holds the partition locks shared, so verification of known keys goes
 * on meanwhile; but a key seen for the first time needs its partition
 * exclusively, so the locks are let go every COLLECT_CHUNK entries: with
 * millions of entries one scan takes tens of milliseconds, and the first
 * verification of a new key would wait that long.  That is safe because
 * only the worker removes entries (in forget_idle, after this), a new
 * entry is appended to its bucket's chain, and a partitioned table never
 * splits buckets: the scan's position stays valid.  An entry added
 * meanwhile is collected now or at the next flush.  When the table is
 * more than half full, idle entries are recycled afterwards.
 */
#define COLLECT_CHUNK 512

int
apikey_tracker_collect_usage(Oid dbid, Oid relid, ApikeyUsage **out)
{
	HASH_SEQ_STATUS seq;
	TrackerEntry *e;
	int			stale = 0;
	int			n = 0;
	int			cap = 1024;
	int			seen = 0;
	int			i;

	*out = palloc(sizeof(ApikeyUsage) * cap);
	for (i = 0; i < TRACKER_PARTITIONS; i++)
		LWLockAcquire(&locks[i].lock, LW_SHARED);
	hash_seq_init(&seq, keys);
	while ((e = hash_seq_search(&seq)) != NULL)
	{
		if (e->key.dbid == dbid && e->key.relid != relid)
			stale++;
		SpinLockAcquire(&e->mutex);
		if (e->key.dbid == dbid && e->key.relid == relid && e->pending_uses > 0)
		{
			if (n == cap)
			{
				cap *= 2;
				*out = repalloc(*out, sizeof(ApikeyUsage) * cap);
			}
			(*out)[n].key_id = e->key.key_id;
			(*out)[n].uses = e->pending_uses;
			(*out)[n].last_used_at = e->last_used_at;
			n++;
			e->pending_uses = 0;
			e->last_used_at = 0;
		}
		/* a verification resets it: flushes since the last use */
		if (e->idle_flushes < IDLE_FLUSHES)
			e->idle_flushes++;
		SpinLockRelease(&e->mutex);

		/* let waiting verifications of new keys in */
		if (++seen % COLLECT_CHUNK == 0)
		{
			for (i = TRACKER_PARTITIONS - 1; i >= 0; i--)
				LWLockRelease(&locks[i].lock);
			for (i = 0; i < TRACKER_PARTITIONS; i++)
				LWLockAcquire(&locks[i].lock, LW_SHARED);
		}
	}
	for (i = TRACKER_PARTITIONS - 1; i >= 0; i--)
		LWLockRelease(&locks[i].lock);

	if (hash_get_num_entries(keys) > apikey_max_tracked_keys / 2 || stale > 0)
		forget_idle(dbid, relid);
	return n;
}

/*
 * apikey_tracker_take_log: move up to max queued outcomes into out[];
 * returns how many.
 */
int
apikey_tracker_take_log(ApikeyLogEntry *out, int max)
{
	int			n;
	int			i;

	LWLockAcquire(&locks[TRACKER_PARTITIONS].lock, LW_EXCLUSIVE);
	n = Min(max, shared->count);
	for (i = 0; i < n; i++)
		out[i] = shared->slots[(shared->head + i) % apikey_queue_size];
	shared->head = (shared->head + n) % apikey_queue_size;
	shared->count -= n;
	LWLockRelease(&locks[TRACKER_PARTITIONS].lock);
	return n;
}

/*
 * apikey_tracker_key_stats: the live figures of database dbid's keys:
 * calls fn for each entry with its values copied out.
 */
void
apikey_tracker_key_stats(Oid dbid, Oid relid, void (*fn) (void *arg, const ApikeyKeyStats *s),
						 void *arg)
{
	HASH_SEQ_STATUS seq;
	TrackerEntry *e;
	ApikeyKeyStats *all;
	int			n = 0;
	int			cap = 64;
	int			i;
	TimestampTz now = GetCurrentTimestamp();

	all = palloc(sizeof(ApikeyKeyStats) * cap);
	for (i = 0; i < TRACKER_PARTITIONS; i++)
		LWLockAcquire(&locks[i].lock, LW_SHARED);
	hash_seq_init(&seq, keys);
	while ((e = hash_seq_search(&seq)) != NULL)
	{
		if (e->key.dbid != dbid || e->key.relid != relid)
			continue;
		if (n == cap)
		{
			cap *= 2;
			all = repalloc(all, sizeof(ApikeyKeyStats) * cap);
		}
		SpinLockAcquire(&e->mutex);
		refill(e, now);
		all[n].key_id = e->key.key_id;
		all[n].pending_uses = e->pending_uses;
		all[n].last_used_at = e->last_used_at;
		all[n].rate_limit = e->rate_limit;
		all[n].tokens = e->tokens;
		SpinLockRelease(&e->mutex);
		n++;
	}
	for (i = TRACKER_PARTITIONS - 1; i >= 0; i--)
		LWLockRelease(&locks[i].lock);
	for (i = 0; i < n; i++)
		fn(arg, &all[i]);
	pfree(all);
}

/* apikey_tracker_server_stats: the per-server figures */
void
apikey_tracker_server_stats(ApikeyServerStats *s)
{
	int			i;

	for (i = 0; i < APIKEY_NUM_CODES; i++)
		s->verifications[i] = pg_atomic_read_u64(&shared->verifications[i]);
	s->dropped = pg_atomic_read_u64(&shared->dropped);
	s->untracked = pg_atomic_read_u64(&shared->untracked);
	s->cache_hits = pg_atomic_read_u64(&shared->cache_hits);
	s->cache_misses = pg_atomic_read_u64(&shared->cache_misses);
	LWLockAcquire(&locks[TRACKER_PARTITIONS].lock, LW_SHARED);
	s->queue_depth = shared->count;
	LWLockRelease(&locks[TRACKER_PARTITIONS].lock);
	s->queue_size = apikey_queue_size;
	s->started_at = shared->started_at;
}

/*
 * apikey.key_stats() returns setof (key_id, unflushed_uses, last_used_at,
 * rate_limit, bucket_tokens): the live figures of this database's tracked
 * keys: all of them for superusers and apikey_admin, otherwise those of
 * the keys the caller can see in apikey.keys (row-level security: a
 * manager's own), whether it is called directly or through apikey.stats.
 */
APIKEY_SQL_FUNCTION(apikey_key_stats);

typedef struct KeyStatsOut
{
	ReturnSetInfo *rsinfo;
	int64	   *visible;		/* sorted ids the caller may see; NULL: all */
	int			nvisible;
} KeyStatsOut;

static int
cmp_int64(const void *a, const void *b)
{
	int64		x = *(const int64 *) a;
	int64		y = *(const int64 *) b;

	return x < y ? -1 : x > y;
}

static void
put_key_stats(void *arg, const ApikeyKeyStats *k)
{
	KeyStatsOut *out = (KeyStatsOut *) arg;
	Datum		values[5];
	bool		nulls[5] = {false, false, false, false, false};

	if (out->visible != NULL &&
		bsearch(&k->key_id, out->visible, out->nvisible, sizeof(int64), cmp_int64) == NULL)
		return;

	values[0] = Int64GetDatum(k->key_id);
	values[1] = Int64GetDatum(k->pending_uses);
	values[2] = TimestampTzGetDatum(k->last_used_at);
	nulls[2] = k->last_used_at == 0;
	values[3] = Int32GetDatum(k->rate_limit);
	nulls[3] = k->rate_limit == 0;
	values[4] = Float8GetDatum(k->tokens);
	nulls[4] = k->rate_limit == 0;
	tuplestore_putvalues(out->rsinfo->setResult, out->rsinfo->setDesc, values, nulls);
}

/* is_admin: superusers and members of apikey_admin see every key's figures */
static bool
is_admin(void)
{
	Oid			admin = get_role_oid("apikey_admin", true);

	return superuser() || (OidIsValid(admin) && has_privs_of_role(GetUserId(), admin));
}

/*
 * visible_keys: the ids of the keys the caller can read in apikey.keys,
 * sorted (a query as the caller: row-level security decides).
 */
static int64 *
visible_keys(int *n)
{
	int64	   *ids;
	uint64		i;
	Oid			nsp = apikey_extension_schema();

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute(psprintf("SELECT id FROM %s.keys ORDER BY id",
							 quote_identifier(get_namespace_name(nsp))), true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read the visible keys");
	ids = MemoryContextAlloc(TopTransactionContext, sizeof(int64) * (SPI_processed + 1));
	for (i = 0; i < SPI_processed; i++)
	{
		bool		isnull;

		ids[i] = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull));
	}
	*n = (int) SPI_processed;
	SPI_finish();
	return ids;
}

Datum
apikey_key_stats(PG_FUNCTION_ARGS)
{
	KeyStatsOut out;

	InitMaterializedSRF(fcinfo, 0);
	if (!apikey_tracker_active())
		return (Datum) 0;
	out.rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	out.visible = NULL;
	out.nvisible = 0;
	if (!is_admin())
		out.visible = visible_keys(&out.nvisible);
	apikey_tracker_key_stats(MyDatabaseId, apikey_catalog_lock(AccessShareLock)->keys_relid,
							 put_key_stats, &out);
	return (Datum) 0;
}

/*
 * apikey.server_stats() returns setof (verifications jsonb, queue_depth,
 * queue_size, dropped, untracked, started_at, cache_hits, cache_misses):
 * this server's figures, one
 * row, for superusers and members of apikey_admin only (none otherwise,
 * and none without shared memory).
 */
APIKEY_SQL_FUNCTION(apikey_server_stats);

Datum
apikey_server_stats(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo;
	ApikeyServerStats s;
	StringInfoData codes;
	Datum		values[8];
	bool		nulls[8] = {0};
	int			i;

	InitMaterializedSRF(fcinfo, 0);
	rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	if (!apikey_tracker_active() || !is_admin())
		return (Datum) 0;

	apikey_tracker_server_stats(&s);
	initStringInfo(&codes);
	appendStringInfoChar(&codes, '{');
	for (i = 0; i < APIKEY_NUM_CODES; i++)
		appendStringInfo(&codes, "%s\"%s\": " UINT64_FORMAT, i > 0 ? ", " : "",
						 apikey_code_name((ApikeyCode) i), s.verifications[i]);
	appendStringInfoChar(&codes, '}');
	values[0] = DirectFunctionCall1(jsonb_in, CStringGetDatum(codes.data));
	values[1] = Int32GetDatum(s.queue_depth);
	values[2] = Int32GetDatum(s.queue_size);
	values[3] = Int64GetDatum((int64) s.dropped);
	values[4] = Int64GetDatum((int64) s.untracked);
	values[5] = TimestampTzGetDatum(s.started_at);
	values[6] = Int64GetDatum((int64) s.cache_hits);
	values[7] = Int64GetDatum((int64) s.cache_misses);
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	return (Datum) 0;
}
