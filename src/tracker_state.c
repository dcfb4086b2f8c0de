/*-------------------------------------------------------------------------
 *
 * tracker_state.c
 *	  The tracker's state across a clean restart.  At a clean shutdown the
 *	  postmaster writes every key entry (its key and TrackerState, whole)
 *	  and the queued outcomes to pg_stat/apikey.state, behind a header
 *	  naming the format, the PostgreSQL major and the sizes of what
 *	  follows (as pg_stat_statements does); the next start reads them back
 *	  and removes the file, so nothing is lost and no bucket refills early.
 *	  A file of another format or major is ignored, with a log line; the
 *	  format of apikey 1.1's library is still read, so a restart onto a new
 *	  library keeps what the old one saved.
 *
 *	  While the server runs, pg_stat_tmp/apikey.running exists; finding it
 *	  at start without a state file means the last run ended in a crash
 *	  and what was spent is unknown, so every bucket then counts as
 *	  emptied when the server started.  (At the very first start there is
 *	  neither file, and buckets start full.)  If the marker cannot be
 *	  made, the server does not start: a later crash would otherwise
 *	  refill every bucket.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <unistd.h>

#include "miscadmin.h"
#include "pgstat.h"
#include "storage/fd.h"

#include "tracker_int.h"

#define STATE_FILE		PGSTAT_STAT_PERMANENT_DIRECTORY "/apikey.state"
#define STATE_MAGIC		0x41504b33	/* "APK3" */
#define RUNNING_FILE	PG_STAT_TMP_DIR "/apikey.running"	/* not in base backups */

typedef struct StateHeader
{
	uint32		magic;
	uint32		pg_major;		/* PG_VERSION_NUM / 100 */
	uint32		entry_size;		/* sizeof(SavedEntry) */
	uint32		log_size;		/* sizeof(ApikeyLogEntry) */
	int32		nentries;
	int32		nlog;
} StateHeader;

/* the file of apikey 1.1's library: a magic number, then counted arrays */
#define STATE_MAGIC_1_1	0x41504b32	/* "APK2" */
typedef struct SavedEntry_1_1
{
	TrackerKey	key;
	int64		pending_uses;
	TimestampTz last_used_at;
	int32		rate_limit;
	int64		window_us;
	double		tokens;
	TimestampTz refilled_at;
} SavedEntry_1_1;

/* what the file holds per key: the entry without its lock */
typedef struct SavedEntry
{
	TrackerKey	key;
	TrackerState st;
} SavedEntry;

/*
 * tracker_state_save: at a clean shutdown (postmaster), write every entry
 * and the queue to STATE_FILE.  (After a crash nothing is written, so the
 * next start knows it cannot trust any bucket.)
 */
void
tracker_state_save(TrackerShared *shared, HTAB *keys, int queue_size)
{
	FILE	   *f;
	HASH_SEQ_STATUS seq;
	TrackerEntry *e;
	StateHeader h;
	int			i;

	f = AllocateFile(STATE_FILE ".tmp", PG_BINARY_W);
	if (f == NULL)
		goto error;
	memset(&h, 0, sizeof(h));
	h.magic = STATE_MAGIC;
	h.pg_major = PG_VERSION_NUM / 100;
	h.entry_size = sizeof(SavedEntry);
	h.log_size = sizeof(ApikeyLogEntry);
	h.nentries = (int32) hash_get_num_entries(keys);
	h.nlog = shared->count;
	if (fwrite(&h, sizeof(h), 1, f) != 1)
		goto error;
	hash_seq_init(&seq, keys);
	while ((e = hash_seq_search(&seq)) != NULL)
	{
		SavedEntry	se;

		memset(&se, 0, sizeof(se));
		se.key = e->key;
		se.st = e->st;
		if (fwrite(&se, sizeof(se), 1, f) != 1)
		{
			hash_seq_term(&seq);
			goto error;
		}
	}
	for (i = 0; i < h.nlog; i++)
		if (fwrite(&shared->slots[(shared->head + i) % queue_size],
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
 * tracker_state_start_running: whether this start may trust its buckets
 * (restored from a clean shutdown, or the very first start), judged by
 * RUNNING_FILE, which is then made for the next start to see.
 */
bool
tracker_state_start_running(bool restored)
{
	bool		crashed = access(RUNNING_FILE, F_OK) == 0;
	FILE	   *f;

	if (!restored && crashed)
		ereport(LOG,
				(errmsg("apikey: the last run did not shut down cleanly; rate-limit buckets start empty")));
	f = AllocateFile(RUNNING_FILE, PG_BINARY_W);
	if (f == NULL || FreeFile(f) != 0)
		ereport(FATAL,
				(errcode_for_file_access(),
				 errmsg("could not create file \"%s\": %m", RUNNING_FILE),
				 errdetail("apikey marks a running server there, so that the start after a crash keeps spent rate-limit tokens spent.")));
	return restored || !crashed;
}

/*
 * worth_keeping: an entry whose loss would lose something: usage not yet
 * written, or a bucket that is not full (losing it would refill it).
 */
static bool
worth_keeping(const SavedEntry *se)
{
	return se->st.pending_uses > 0 ||
		(se->st.rate_limit > 0 && se->st.tokens < se->st.rate_limit);
}

/*
 * read_header: the file's header, or that of 1.1's format (the same
 * major, since the server was only restarted with the new library)
 * turned into one; false if neither.
 */
static bool
read_header(FILE *f, StateHeader *h)
{
	uint32		old[2];

	if (fread(old, sizeof(old), 1, f) != 1)
		return false;
	if (old[0] == STATE_MAGIC_1_1)
	{
		memset(h, 0, sizeof(*h));
		h->magic = STATE_MAGIC_1_1;
		h->nlog = 0;			/* read after the entries */
		return fread(&h->nentries, sizeof(h->nentries), 1, f) == 1;
	}
	memcpy(h, old, sizeof(old));
	return fread((char *) h + sizeof(old), sizeof(*h) - sizeof(old), 1, f) == 1 &&
		h->magic == STATE_MAGIC && h->pg_major == PG_VERSION_NUM / 100 &&
		h->entry_size == sizeof(SavedEntry) && h->log_size == sizeof(ApikeyLogEntry);
}

/* read_entries: the h->nentries saved entries, in either format */
static bool
read_entries(FILE *f, const StateHeader *h, SavedEntry *saved)
{
	int			i;

	if (h->magic == STATE_MAGIC)
		return fread(saved, sizeof(SavedEntry), h->nentries, f) == (size_t) h->nentries;
	for (i = 0; i < h->nentries; i++)
	{
		SavedEntry_1_1 old;

		if (fread(&old, sizeof(old), 1, f) != 1)
			return false;
		memset(&saved[i], 0, sizeof(SavedEntry));
		saved[i].key = old.key;
		saved[i].st.pending_uses = old.pending_uses;
		saved[i].st.last_used_at = old.last_used_at;
		saved[i].st.rate_limit = old.rate_limit;
		saved[i].st.window_us = old.window_us;
		saved[i].st.tokens = old.tokens;
		saved[i].st.refilled_at = old.refilled_at;
	}
	return true;
}

/*
 * tracker_state_load: read STATE_FILE, if the last shutdown was clean,
 * into the fresh shared memory, and remove it.  True if it was read whole.
 * At most max_keys (apikey.max_tracked_keys) entries are loaded (it may have been
 * lowered since), those worth keeping first; what is dropped is logged.
 */
bool
tracker_state_load(TrackerShared *shared, HTAB *keys, int max_keys, int queue_size)
{
	FILE	   *f;
	StateHeader h;
	SavedEntry *saved = NULL;
	int			i;
	int			pass;
	int			dropped = 0;
	int			dropped_worth = 0;
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
	if (!read_header(f, &h) || h.nentries < 0 || h.nlog < 0)
		goto done;
	saved = palloc_extended(sizeof(SavedEntry) * Max(h.nentries, 1), MCXT_ALLOC_HUGE | MCXT_ALLOC_NO_OOM);
	if (saved == NULL || !read_entries(f, &h, saved))
		goto done;
	if (h.magic == STATE_MAGIC_1_1 && fread(&h.nlog, sizeof(h.nlog), 1, f) != 1)
		goto done;
	/* first what would be lost, then the rest, while there is room */
	for (pass = 0; pass < 2; pass++)
		for (i = 0; i < h.nentries; i++)
		{
			TrackerEntry *e;
			bool		found;

			if (worth_keeping(&saved[i]) != (pass == 0))
				continue;
			if (hash_get_num_entries(keys) >= max_keys ||
				(e = hash_search(keys, &saved[i].key, HASH_ENTER_NULL, &found)) == NULL)
			{
				dropped++;
				if (pass == 0)
					dropped_worth++;
				continue;
			}
			SpinLockInit(&e->mutex);
			tracker_entry_made(shared, e);
			e->st = saved[i].st;
			e->st.idle_flushes = 0;
			if (e->st.limited_entry)
				pg_atomic_fetch_add_u32(&shared->tenant_entries[e->st.tenant], 1);
			if (e->st.pending_uses > 0)
				pg_atomic_write_u32(&shared->dirty, 1);
		}
	for (i = 0; i < h.nlog; i++)
	{
		ApikeyLogEntry le;

		if (fread(&le, sizeof(le), 1, f) != 1)
			goto done;
		if (shared->count < queue_size)
		{
			shared->tenant_count[le.tenant]++;
			shared->slots[shared->count++] = le;
		}
		else
			pg_atomic_fetch_add_u64(&shared->dropped, 1);
	}
	if (shared->count > 0)
		pg_atomic_write_u32(&shared->dirty, 1);
	ok = true;
	if (dropped > 0)
		ereport(LOG,
				(errmsg("apikey: %d of %d saved key entries did not fit in apikey.max_tracked_keys = %d and were dropped",
						dropped, h.nentries, max_keys),
				 errdetail("%d of them held unwritten usage or a bucket that was not full.", dropped_worth)));

done:
	if (!ok)
		ereport(LOG,
				(errmsg("ignoring incomplete, corrupt or foreign file \"%s\"", STATE_FILE)));
	if (saved != NULL)
		pfree(saved);
	FreeFile(f);
	unlink(STATE_FILE);
	return ok;
}
