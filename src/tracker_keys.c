/*-------------------------------------------------------------------------
 *
 * tracker_keys.c
 *	  The tracker's key table: per key the usage not yet written and the
 *	  token bucket of its rate limit.  Verifications find (or add) their
 *	  key's entry under its partition lock; the worker collects usage and
 *	  recycles idle entries in scans that let the locks go every
 *	  TRACKER_SCAN_CHUNK entries (tracker_int.h has the lock rules).
 *
 *	  A caller may keep a hint to an entry (tracker.h) and skip the hash
 *	  search next time: each entry carries an incarnation for that.
 *
 *	  Buckets: capacity rate_limit, refilled continuously at rate_limit per
 *	  rate_window; a key seen for the first time starts with a full bucket,
 *	  or an empty one after a crash (what was spent is unknown then, and a
 *	  crash must never grant a burst the bucket had already spent).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "access/xact.h"
#include "miscadmin.h"
#include "utils/timestamp.h"

#include "tracker_int.h"
#include "values.h"

/* key_of: the hash key of a key, its hash value and its partition's lock */
static LWLock *
key_of(Oid dbid, Oid relid, int64 key_id, TrackerKey *k, uint32 *hash)
{
	memset(k, 0, sizeof(*k));
	k->dbid = dbid;
	k->relid = relid;
	k->key_id = key_id;
	*hash = get_hash_value(tracker_keys, k);
	return tracker_partition_lock(*hash);
}

/* remember: where the entry was found, for the caller's next use */
static inline void
remember(ApikeyTrackerHint *hint, TrackerEntry *e)
{
	if (hint != NULL)
	{
		hint->entry = e;
		hint->incarnation = pg_atomic_read_u64(&e->incarnation);
	}
}

/*
 * tracker_find_entry: the key's entry, created if missing (and create),
 * with its partition lock held (in *lock: the caller releases it); NULL,
 * with no lock held, when it is missing and not created (the table full,
 * or !create).  Entries are removed only by the worker.  A hint whose
 * incarnation the entry still carries saves the hash search; *hint is set
 * to where the entry was found.
 */
TrackerEntry *
tracker_find_entry(Oid dbid, Oid relid, int64 key_id, const char *owner_role,
				   bool limited, bool create, ApikeyTrackerHint *hint, LWLock **lock)
{
	TrackerKey	k;
	uint32		hash;
	TrackerEntry *e;
	bool		found;
	long		entries;
	uint8		tenant;

	*lock = key_of(dbid, relid, key_id, &k, &hash);

	LWLockAcquire(*lock, LW_SHARED);
	if (hint != NULL && hint->incarnation != 0)
	{
		e = (TrackerEntry *) hint->entry;
		if (pg_atomic_read_u64(&e->incarnation) == hint->incarnation &&
			memcmp(&e->key, &k, sizeof(k)) == 0)
			return e;
	}
	e = hash_search_with_hash_value(tracker_keys, &k, hash, HASH_FIND, NULL);
	if (e != NULL)
	{
		remember(hint, e);
		return e;
	}
	LWLockRelease(*lock);
	if (!create)
		return NULL;

	/*
	 * A full table: do not queue for the exclusive lock just to fail.  The
	 * last quarter is kept for keys with a rate limit or credits, which
	 * fail closed without an entry: keys without one cannot crowd them
	 * out.  And once the table is three quarters full, one tenant's (owner
	 * role's) limited keys may hold at most half of it: a tenant's own
	 * spent buckets, which stay as long as their keys exist, cannot crowd
	 * out another tenant's.
	 */
	entries = hash_get_num_entries(tracker_keys);
	tenant = tracker_tenant_of(owner_role);
	if (entries >= (limited ? apikey_max_tracked_keys : apikey_max_tracked_keys / 4 * 3) ||
		(limited && tenant != 0 && entries >= apikey_max_tracked_keys / 2 &&
		 pg_atomic_read_u32(&tracker_shared->tenant_entries[tenant]) >=
		 (uint32) (apikey_max_tracked_keys / 2)))
		return NULL;

	LWLockAcquire(*lock, LW_EXCLUSIVE);
	e = hash_search_with_hash_value(tracker_keys, &k, hash, HASH_ENTER_NULL, &found);
	if (e != NULL && !found)
	{
		SpinLockInit(&e->mutex);
		memset(&e->st, 0, sizeof(e->st));
		e->st.tenant = tenant;
		e->st.limited_entry = limited;
		if (limited)
			pg_atomic_fetch_add_u32(&tracker_shared->tenant_entries[tenant], 1);
		tracker_entry_made(tracker_shared, e);
	}
	if (e == NULL)
		LWLockRelease(*lock);
	else
		remember(hint, e);
	return e;
}

/* tracker_refill: bring the bucket to now (entry spinlock held) */
void
tracker_refill(TrackerState *st, TimestampTz now)
{
	if (st->rate_limit <= 0 || st->window_us <= 0)
		return;
	if (now > st->refilled_at)
	{
		st->tokens += (double) (now - st->refilled_at) * st->rate_limit / st->window_us;
		if (st->tokens > st->rate_limit)
			st->tokens = st->rate_limit;
		st->refilled_at = now;
	}
}

/*
 * take_token: take a token from the entry's bucket (entry spinlock held);
 * false, and the time until one is back in *retry_us, if it is empty.
 */
static bool
take_token(TrackerState *st, int32 rate_limit, int64 window_us, TimestampTz now,
		   int64 *retry_us)
{
	if (st->rate_limit == 0)
	{
		/*
		 * A bucket seen for the first time: full, unless this server may
		 * have forgotten what was spent (no clean shutdown before it
		 * started), in which case it was emptied at the start.
		 */
		st->rate_limit = rate_limit;
		st->window_us = window_us;
		st->tokens = tracker_shared->clean_start ? rate_limit : 0;
		st->refilled_at = tracker_shared->clean_start ? now : tracker_shared->started_at;
	}
	else if (st->rate_limit != rate_limit || st->window_us != window_us)
	{
		/* a changed limit: keep the level, within the new capacity */
		tracker_refill(st, now);
		st->rate_limit = rate_limit;
		st->window_us = window_us;
		if (st->tokens > rate_limit)
			st->tokens = rate_limit;
	}
	tracker_refill(st, now);
	if (st->tokens >= 1.0)
	{
		st->tokens -= 1.0;
		return true;
	}
	else
	{
		double		wait = ceil((1.0 - st->tokens) * window_us / rate_limit);

		*retry_us = wait >= (double) (PG_INT64_MAX / 2) ? PG_INT64_MAX / 2 : (int64) wait;
		return false;
	}
}

/*
 * draw_credits: take d->cost from the entry's balance, brought to its
 * row's rule at plan_now first (entry spinlock held).  False, nothing
 * taken, if the balance is smaller than the cost.
 */
static bool
draw_credits(TrackerState *st, ApikeyDraw *d, TimestampTz plan_now)
{
	if (plan_bring(&st->cr, d->credits, plan_now))
		st->cr_dirty = true;
	d->has_remaining = true;
	if (st->cr.balance < d->cost)
	{
		int64		next = plan_next_refill(d->credits->interval,
										   d->credits->refill_day,
										   Max(st->cr.period, plan_now));

		d->remaining = st->cr.balance;
		d->retry_us = next == PG_INT64_MAX ? -1 : next - plan_now;
		return false;
	}
	if (d->cost > 0)
	{
		st->cr.balance -= d->cost;
		st->cr_dirty = true;
	}
	d->remaining = st->cr.balance;
	return true;
}

/*
 * apikey_tracker_use: a key passed every other check.  Takes a token if
 * the key has a rate limit, then d->cost credits if it is metered, and
 * counts the use; a call refused by the credits gives its token back.
 * Without room in the key table, an unlimited, unmetered key is VALID but
 * its use is not counted, and any other is refused (retry in one refill
 * period of its bucket).  APIKEY_DRAW_LOAD: the key is metered and its
 * balance is not in shared memory yet (first use since the server
 * started, or since the entry was recycled): the caller reads the last
 * one written (apikey.usage), gives it to apikey_tracker_load_balance and
 * calls again.  A VALID metered call's caller notes what it took, for a
 * refund if its transaction aborts (apikey_tracker_note_refund).
 */
ApikeyDrawVerdict
apikey_tracker_use(ApikeyDraw *d)
{
	LWLock	   *lock;
	TrackerEntry *e;
	TrackerState *st;
	int64		window_us = d->window ? apikey_interval_us(d->window) : 0;
	bool		limited = d->rate_limit > 0 && window_us > 0;
	bool		held = limited || d->credits != NULL;

	/* buckets need the clock; a last use is as precise as its statement */
	TimestampTz now = limited ? GetCurrentTimestamp() : GetCurrentStatementStartTimestamp();
	ApikeyDrawVerdict verdict = APIKEY_DRAW_VALID;
	bool		dirty;

	d->retry_us = 0;
	d->has_remaining = false;
	e = tracker_find_entry(MyDatabaseId, d->relid, d->key_id, d->owner_role, held,
						   true, d->hint, &lock);
	if (e == NULL)
	{
		pg_atomic_fetch_add_u64(&tracker_shared->untracked, 1);
		/* have the worker run: it recycles what it can (reclaim_missing) */
		apikey_tracker_mark_dirty();
		if (limited)
		{
			d->retry_us = Max(window_us / d->rate_limit, 1);
			return APIKEY_DRAW_RATE_LIMITED;
		}
		if (d->credits != NULL)
		{
			d->retry_us = -1;
			return APIKEY_DRAW_QUOTA_EXCEEDED;
		}
		return APIKEY_DRAW_VALID;
	}

	st = &e->st;
	SpinLockAcquire(&e->mutex);
	if (d->credits != NULL && !st->cr_known)
		verdict = APIKEY_DRAW_LOAD;
	else if (limited && !take_token(st, d->rate_limit, window_us, now, &d->retry_us))
		verdict = APIKEY_DRAW_RATE_LIMITED;
	else if (d->credits != NULL && !draw_credits(st, d, d->plan_now))
	{
		verdict = APIKEY_DRAW_QUOTA_EXCEEDED;
		/* only a VALID call takes anything: the token goes back */
		if (limited)
			st->tokens = Min(st->tokens + 1.0, (double) st->rate_limit);
	}
	if (!limited)
		st->rate_limit = 0;
	if (verdict == APIKEY_DRAW_VALID)
	{
		st->pending_uses++;
		st->last_used_at = now;
		if (d->credits != NULL)
			d->taken_from = st->cr;
	}
	st->idle_flushes = 0;
	dirty = st->cr_dirty;
	SpinLockRelease(&e->mutex);
	LWLockRelease(lock);

	if (verdict == APIKEY_DRAW_VALID || dirty)
		apikey_tracker_mark_dirty();
	return verdict;
}

/*
 * apikey_tracker_load_balance: the balance of d's key as last written (or
 * as its grant says), for an entry that has none yet; an entry that got
 * one meanwhile (another backend loaded it) keeps its own.
 */
void
apikey_tracker_load_balance(const ApikeyDraw *d, const PlanBalance *b)
{
	LWLock	   *lock;
	TrackerEntry *e;

	e = tracker_find_entry(MyDatabaseId, d->relid, d->key_id, d->owner_role, true,
						   true, d->hint, &lock);
	if (e == NULL)
		return;
	SpinLockAcquire(&e->mutex);
	if (!e->st.cr_known)
	{
		e->st.cr = *b;
		e->st.cr_known = true;
		e->st.cr_dirty = false;
	}
	SpinLockRelease(&e->mutex);
	LWLockRelease(lock);
}

/*
 * forget_idle: remove the entries that hold nothing worth keeping: unused
 * for IDLE_FLUSHES flushes, no bucket that is not full, and nothing
 * pending that the worker could still write (usage of other databases than
 * its own never is), and those of a dropped apikey.keys of its database.
 * It holds the partition locks exclusively, but lets them go every
 * TRACKER_SCAN_CHUNK entries, so verifications wait for a chunk at most,
 * never for a scan of the whole table.
 */
static void
forget_idle(Oid dbid, Oid relid)
{
	HASH_SEQ_STATUS seq;
	TrackerEntry *e;
	int			seen = 0;
	TimestampTz now = GetCurrentTimestamp();

	tracker_lock_all(LW_EXCLUSIVE);
	hash_seq_init(&seq, tracker_keys);
	while ((e = hash_seq_search(&seq)) != NULL)
	{
		TrackerState *st = &e->st;
		bool		idle;

		SpinLockAcquire(&e->mutex);
		tracker_refill(st, now);
		idle = (e->key.dbid == dbid && e->key.relid != relid) ||	/* a dropped table's */
			(st->idle_flushes >= IDLE_FLUSHES &&
			 ((st->pending_uses == 0 && !st->cr_dirty) || e->key.dbid != dbid) &&
			 (st->rate_limit == 0 || st->tokens >= st->rate_limit));
		SpinLockRelease(&e->mutex);
		if (idle)
		{
			tracker_entry_removed(tracker_shared, e);
			hash_search(tracker_keys, &e->key, HASH_REMOVE, NULL);
		}
		tracker_scan_yield(LW_EXCLUSIVE, &seen);
	}
	tracker_unlock_all();
}

/*
 * apikey_tracker_collect_usage: move every pending usage of database dbid
 * into a palloc'd array (*out), zeroing it; returns how many.  The scan
 * holds the partition locks shared, so verification of known keys goes
 * on meanwhile, and lets them go every TRACKER_SCAN_CHUNK entries for
 * the first verification of a new key.  An entry added meanwhile is
 * collected now or at the next flush.  When the table is more than half
 * full, idle entries are recycled afterwards.
 *
 * In the same pass, when the table is more than half full and spent is
 * not NULL, the ids of the entries forget_idle keeps only for their
 * bucket (unused for two flushes or more, nothing pending, a bucket not
 * full) go into a palloc'd *spent (*nspent of them): if their key no
 * longer exists (deleted, or never committed: created and verified in a
 * transaction that rolled back), the bucket guards nothing, and the worker
 * checks and calls apikey_tracker_forget_keys.
 */
int
apikey_tracker_collect_usage(Oid dbid, Oid relid, ApikeyUsage **out,
							 int64 **spent, int *nspent)
{
	HASH_SEQ_STATUS seq;
	TrackerEntry *e;
	int			stale = 0;
	int			n = 0;
	int			cap = 1024;
	int			spent_cap = 256;
	int			seen = 0;
	bool		want_spent = spent != NULL &&
		hash_get_num_entries(tracker_keys) > apikey_max_tracked_keys / 2;

	*out = palloc(sizeof(ApikeyUsage) * cap);
	if (spent != NULL)
	{
		*spent = want_spent ? palloc(sizeof(int64) * spent_cap) : NULL;
		*nspent = 0;
	}
	tracker_lock_all(LW_SHARED);
	hash_seq_init(&seq, tracker_keys);
	while ((e = hash_seq_search(&seq)) != NULL)
	{
		TrackerState *st = &e->st;

		if (e->key.dbid == dbid && e->key.relid != relid)
			stale++;
		SpinLockAcquire(&e->mutex);
		if (e->key.dbid == dbid && e->key.relid == relid &&
			(st->pending_uses > 0 || st->cr_dirty))
		{
			if (n == cap)
			{
				cap *= 2;
				*out = repalloc(*out, sizeof(ApikeyUsage) * cap);
			}
			(*out)[n].key_id = e->key.key_id;
			(*out)[n].uses = st->pending_uses;
			(*out)[n].last_used_at = st->last_used_at;
			(*out)[n].has_balance = st->cr_dirty;
			(*out)[n].balance = st->cr;
			n++;
			st->pending_uses = 0;
			st->last_used_at = 0;
			st->cr_dirty = false;
		}
		/* a verification resets it: flushes since the last use */
		if (st->idle_flushes < IDLE_FLUSHES)
			st->idle_flushes++;
		if (want_spent && e->key.dbid == dbid && e->key.relid == relid &&
			st->idle_flushes >= 2 && st->pending_uses == 0 &&
			st->rate_limit > 0 && st->tokens < st->rate_limit)
		{
			if (*nspent == spent_cap)
			{
				spent_cap *= 2;
				*spent = repalloc(*spent, sizeof(int64) * spent_cap);
			}
			(*spent)[(*nspent)++] = e->key.key_id;
		}
		SpinLockRelease(&e->mutex);
		tracker_scan_yield(LW_SHARED, &seen);
	}
	tracker_unlock_all();

	if (hash_get_num_entries(tracker_keys) > apikey_max_tracked_keys / 2 || stale > 0)
		forget_idle(dbid, relid);
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
	int			seen = 0;
	int			i;
	TimestampTz now = GetCurrentTimestamp();

	all = palloc(sizeof(ApikeyKeyStats) * cap);
	tracker_lock_all(LW_SHARED);
	hash_seq_init(&seq, tracker_keys);
	while ((e = hash_seq_search(&seq)) != NULL)
	{
		if (e->key.dbid == dbid && e->key.relid == relid)
		{
			if (n == cap)
			{
				cap *= 2;
				all = repalloc(all, sizeof(ApikeyKeyStats) * cap);
			}
			SpinLockAcquire(&e->mutex);
			tracker_refill(&e->st, now);
			all[n].key_id = e->key.key_id;
			all[n].pending_uses = e->st.pending_uses;
			all[n].last_used_at = e->st.last_used_at;
			all[n].rate_limit = e->st.rate_limit;
			all[n].tokens = e->st.tokens;
			all[n].has_balance = e->st.cr_known;
			all[n].credits_remaining = e->st.cr.balance;
			SpinLockRelease(&e->mutex);
			n++;
		}
		tracker_scan_yield(LW_SHARED, &seen);
	}
	tracker_unlock_all();
	for (i = 0; i < n; i++)
		fn(arg, &all[i]);
	pfree(all);
}

/*
 * apikey_tracker_forget_keys: remove the entries of these keys (of
 * database dbid, table relid), unless one was used since it was found
 * idle (then its key exists after all).
 */
void
apikey_tracker_forget_keys(Oid dbid, Oid relid, const int64 *ids, int n)
{
	int			i;

	for (i = 0; i < n; i++)
	{
		TrackerKey	k;
		uint32		hash;
		LWLock	   *lock;
		TrackerEntry *e;

		lock = key_of(dbid, relid, ids[i], &k, &hash);
		LWLockAcquire(lock, LW_EXCLUSIVE);
		e = hash_search_with_hash_value(tracker_keys, &k, hash, HASH_FIND, NULL);
		if (e != NULL && e->st.idle_flushes >= 2 && e->st.pending_uses == 0 &&
			!e->st.cr_dirty)
		{
			tracker_entry_removed(tracker_shared, e);
			hash_search_with_hash_value(tracker_keys, &k, hash, HASH_REMOVE, NULL);
		}
		LWLockRelease(lock);
	}
}
