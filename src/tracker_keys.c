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

/*
 * tracker_count_hourly: count one verification of code in the entry's
 * hour (entry spinlock held).  When the hour changes, this hour's counts
 * become the previous hour's (the worker writes both every flush, so the
 * previous one is empty by then unless the worker was stopped for an
 * hour; its counts are then added to the hour before, the only
 * imprecision).
 */
void
tracker_count_hourly(TrackerState *st, ApikeyCode code, TimestampTz now)
{
	TimestampTz hour = now - now % USECS_PER_HOUR;
	int			i;

	if (now < 0)
		hour = now - (USECS_PER_HOUR + now % USECS_PER_HOUR) % USECS_PER_HOUR;
	if (st->hour != hour)
	{
		bool		counted = false;

		for (i = 0; i < APIKEY_NUM_CODES; i++)
			counted |= st->hourly[i] != 0;
		if (counted)
		{
			bool		prev = false;

			for (i = 0; i < APIKEY_NUM_CODES; i++)
				prev |= st->prev_hourly[i] != 0;
			if (!prev)
				st->prev_hour = st->hour;
			for (i = 0; i < APIKEY_NUM_CODES; i++)
			{
				st->prev_hourly[i] += st->hourly[i];
				st->hourly[i] = 0;
			}
		}
		st->hour = hour;
	}
	if (st->hourly[code] < PG_UINT32_MAX)
		st->hourly[code]++;
	st->hourly_dirty = true;
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
 * draw_credits: take cost from the entry's balance, brought to its row's
 * rule at plan_now first (entry spinlock held).  False, nothing taken, if
 * the balance is smaller than the cost, with the time to the next refill
 * in *retry_us (-1: none comes).  *remaining: the balance after.
 */
static bool
draw_credits(TrackerState *st, const PlanCredits *rule, int64 cost,
			 TimestampTz plan_now, int64 *remaining, int64 *retry_us)
{
	if (plan_bring(&st->cr, rule, plan_now))
		st->cr_dirty = true;
	*remaining = st->cr.balance;
	if (st->cr.balance < cost)
	{
		int64		next = plan_next_refill(rule->interval, rule->refill_day,
										   Max(st->cr.period, plan_now));

		*retry_us = next == PG_INT64_MAX ? -1 : next - plan_now;
		return false;
	}
	if (cost > 0)
	{
		st->cr.balance -= cost;
		st->cr_dirty = true;
	}
	*remaining = st->cr.balance;
	return true;
}

/* give_token: a token taken by a call refused later goes back */
static inline void
give_token(TrackerState *st)
{
	st->tokens = Min(st->tokens + 1.0, (double) st->rate_limit);
}

/* give_credits: credits taken by a call refused later go back, to that balance only */
static inline void
give_credits(TrackerState *st, const PlanBalance *from, int64 cost)
{
	if (st->cr_known && st->cr.set_at == from->set_at && st->cr.period == from->period)
	{
		st->cr.balance += cost;
		st->cr_dirty = true;
	}
}

/* use_alone: apikey_tracker_use for a key without an owner plan: one entry */
static ApikeyDrawVerdict
use_alone(ApikeyDraw *d)
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
	else if (d->credits != NULL &&
			 !draw_credits(st, d->credits, d->cost, d->plan_now, &d->remaining, &d->retry_us))
	{
		verdict = APIKEY_DRAW_QUOTA_EXCEEDED;
		/* only a VALID call takes anything: the token goes back */
		if (limited)
			give_token(st);
	}
	if (d->credits != NULL && verdict != APIKEY_DRAW_LOAD && verdict != APIKEY_DRAW_RATE_LIMITED)
		d->has_remaining = true;
	if (!limited)
		st->rate_limit = 0;
	if (verdict == APIKEY_DRAW_VALID)
	{
		st->pending_uses++;
		st->last_used_at = now;
		if (d->credits != NULL)
			d->taken_from = st->cr;
	}
	if (verdict != APIKEY_DRAW_LOAD)
		tracker_count_hourly(st, verdict == APIKEY_DRAW_VALID ? APIKEY_VALID :
							 verdict == APIKEY_DRAW_RATE_LIMITED ? APIKEY_RATE_LIMITED :
							 APIKEY_QUOTA_EXCEEDED, now);
	st->idle_flushes = 0;
	dirty = st->cr_dirty;
	SpinLockRelease(&e->mutex);
	LWLockRelease(lock);

	if (verdict == APIKEY_DRAW_VALID || dirty)
		apikey_tracker_mark_dirty();
	return verdict;
}

/*
 * refused: the answer when a key's entry, or its owner's, cannot be made
 * (the table full): a limited or metered key fails closed
 */
static ApikeyDrawVerdict
refused(ApikeyDraw *d, int32 rate_limit, int64 window_us)
{
	pg_atomic_fetch_add_u64(&tracker_shared->untracked, 1);
	apikey_tracker_mark_dirty();
	if (rate_limit > 0 && window_us > 0)
	{
		d->retry_us = Max(window_us / rate_limit, 1);
		return APIKEY_DRAW_RATE_LIMITED;
	}
	d->retry_us = -1;
	return APIKEY_DRAW_QUOTA_EXCEEDED;
}

/*
 * tracker_give_back: give back, to one entry, a token (token) and credits
 * taken from the balance as it was in *from (from not NULL): what a call
 * refused by a later check took, or a refund
 */
void
tracker_give_back(Oid dbid, Oid relid, int64 id, ApikeyTrackerHint *hint,
				  bool token, const PlanBalance *from, int64 cost)
{
	LWLock	   *lock;
	TrackerEntry *e;

	if (!token && from == NULL)
		return;
	e = tracker_find_entry(dbid, relid, id, NULL, true, false, hint, &lock);
	if (e == NULL)
		return;
	SpinLockAcquire(&e->mutex);
	if (token && e->st.rate_limit > 0)
		give_token(&e->st);
	if (from != NULL)
		give_credits(&e->st, from, cost);
	SpinLockRelease(&e->mutex);
	LWLockRelease(lock);
	if (from != NULL)
		apikey_tracker_mark_dirty();
}

/*
 * tracker_hold: an open transaction may refund the entry's balance (delta
 * 1) or no longer (-1): a held entry is never recycled, so the refund of a
 * long transaction still finds it
 */
void
tracker_hold(Oid dbid, Oid relid, int64 id, int delta)
{
	LWLock	   *lock;
	TrackerEntry *e;

	e = tracker_find_entry(dbid, relid, id, NULL, true, false, NULL, &lock);
	if (e == NULL)
		return;
	SpinLockAcquire(&e->mutex);
	if (delta > 0 || e->st.held > 0)
		e->st.held += delta;
	SpinLockRelease(&e->mutex);
	LWLockRelease(lock);
}

/*
 * undo: give back what a call refused by a later check took: the key's
 * token, the owner's token, credits from the key's balance (as it was in
 * *key_from), from the owner's (*owner_from).
 */
static void
undo(ApikeyDraw *d, bool key_token, bool owner_token, const PlanBalance *key_from,
	 const PlanBalance *owner_from)
{
	tracker_give_back(MyDatabaseId, d->relid, d->key_id, d->hint, key_token, key_from, d->cost);
	tracker_give_back(MyDatabaseId, d->owner_relid, d->owner_id, d->owner_hint, owner_token,
					  owner_from, d->cost);
}

/*
 * use_with_owner: apikey_tracker_use for a key whose owner has a plan.
 * Two entries, each under its own spinlock, in the order of the checks:
 * the key's token, the owner's token, the key's credits, the owner's
 * credits, then the use counted.  A check that refuses gives back what
 * the ones before it took, so only a VALID call takes anything.
 */
static ApikeyDrawVerdict
use_with_owner(ApikeyDraw *d)
{
	LWLock	   *lock;
	TrackerEntry *k;
	TrackerEntry *o;
	int64		window_us = d->window ? apikey_interval_us(d->window) : 0;
	int64		owner_window_us = d->owner_window ? apikey_interval_us(d->owner_window) : 0;
	bool		limited = d->rate_limit > 0 && window_us > 0;
	bool		owner_limited = d->owner_rate_limit > 0 && owner_window_us > 0;
	TimestampTz now = GetCurrentTimestamp();
	int64		key_remaining = 0;
	int64		owner_remaining = 0;
	bool		ok;

	d->retry_us = 0;
	d->has_remaining = false;

	/* the key's token */
	k = tracker_find_entry(MyDatabaseId, d->relid, d->key_id, d->owner_role, true,
						   true, d->hint, &lock);
	if (k == NULL)
		return refused(d, limited ? d->rate_limit : d->owner_rate_limit,
					   limited ? window_us : owner_window_us);
	SpinLockAcquire(&k->mutex);
	if (d->credits != NULL && !k->st.cr_known)
	{
		SpinLockRelease(&k->mutex);
		LWLockRelease(lock);
		return APIKEY_DRAW_LOAD;
	}
	ok = !limited || take_token(&k->st, d->rate_limit, window_us, now, &d->retry_us);
	if (!limited)
		k->st.rate_limit = 0;
	k->st.idle_flushes = 0;
	SpinLockRelease(&k->mutex);
	LWLockRelease(lock);
	if (!ok)
		return APIKEY_DRAW_RATE_LIMITED;

	/* the owner's token */
	o = tracker_find_entry(MyDatabaseId, d->owner_relid, d->owner_id, d->owner_role, true,
						   true, d->owner_hint, &lock);
	if (o != NULL)
	{
		ApikeyDrawVerdict v = APIKEY_DRAW_VALID;

		SpinLockAcquire(&o->mutex);
		if (d->owner_credits != NULL && !o->st.cr_known)
			v = APIKEY_DRAW_LOAD_OWNER;
		else if (owner_limited &&
				 !take_token(&o->st, d->owner_rate_limit, owner_window_us, now, &d->retry_us))
			v = APIKEY_DRAW_RATE_LIMITED;
		if (!owner_limited)
			o->st.rate_limit = 0;
		o->st.idle_flushes = 0;
		SpinLockRelease(&o->mutex);
		LWLockRelease(lock);
		if (v != APIKEY_DRAW_VALID)
		{
			undo(d, limited, false, NULL, NULL);
			return v;
		}
	}
	else
	{
		undo(d, limited, false, NULL, NULL);
		return refused(d, owner_limited ? d->owner_rate_limit : d->rate_limit,
					   owner_limited ? owner_window_us : window_us);
	}

	/* the key's credits */
	if (d->credits != NULL)
	{
		k = tracker_find_entry(MyDatabaseId, d->relid, d->key_id, d->owner_role, true,
							   true, d->hint, &lock);
		ok = false;
		if (k != NULL)
		{
			SpinLockAcquire(&k->mutex);
			ok = k->st.cr_known &&
				draw_credits(&k->st, d->credits, d->cost, d->plan_now,
							 &key_remaining, &d->retry_us);
			d->taken_from = k->st.cr;
			SpinLockRelease(&k->mutex);
			LWLockRelease(lock);
		}
		d->has_remaining = true;
		d->remaining = key_remaining;
		if (!ok)
		{
			undo(d, limited, owner_limited, NULL, NULL);
			return APIKEY_DRAW_QUOTA_EXCEEDED;
		}
	}

	/* the owner's credits */
	if (d->owner_credits != NULL)
	{
		int64		retry_us = -1;

		o = tracker_find_entry(MyDatabaseId, d->owner_relid, d->owner_id, d->owner_role, true,
							   true, d->owner_hint, &lock);
		ok = false;
		if (o != NULL)
		{
			SpinLockAcquire(&o->mutex);
			ok = o->st.cr_known &&
				draw_credits(&o->st, d->owner_credits, d->cost, d->plan_now,
							 &owner_remaining, &retry_us);
			d->owner_taken_from = o->st.cr;
			SpinLockRelease(&o->mutex);
			LWLockRelease(lock);
		}
		if (!ok && d->has_remaining)
			d->remaining += d->cost;	/* the key's debit, given back below */
		if (!d->has_remaining || owner_remaining < d->remaining)
			d->remaining = owner_remaining;
		d->has_remaining = true;
		if (!ok)
		{
			d->retry_us = retry_us;
			undo(d, limited, owner_limited, d->credits ? &d->taken_from : NULL, NULL);
			return APIKEY_DRAW_QUOTA_EXCEEDED;
		}
	}

	/* VALID: the use counted */
	k = tracker_find_entry(MyDatabaseId, d->relid, d->key_id, d->owner_role, true,
						   true, d->hint, &lock);
	if (k != NULL)
	{
		SpinLockAcquire(&k->mutex);
		k->st.pending_uses++;
		k->st.last_used_at = now;
		tracker_count_hourly(&k->st, APIKEY_VALID, now);
		SpinLockRelease(&k->mutex);
		LWLockRelease(lock);
	}
	apikey_tracker_mark_dirty();
	return APIKEY_DRAW_VALID;
}

/*
 * apikey_tracker_use: a key passed every other check.  Takes a token if
 * the key has a rate limit, then d->cost credits if it is metered, and
 * counts the use; then the same of its owner's plan, if it has one.  A
 * call refused by a later check gives back what an earlier one took.
 * Without room in the key table, an unlimited, unmetered key is VALID but
 * its use is not counted, and any other is refused (retry in one refill
 * period of its bucket).  APIKEY_DRAW_LOAD (and _LOAD_OWNER): the key (or
 * its owner) is metered and its balance is not in shared memory yet
 * (first use since the server started, or since the entry was recycled):
 * the caller reads the last one written (apikey.usage, apikey.owner_usage),
 * gives it to apikey_tracker_load_balance and calls again.  A VALID
 * metered call's caller notes what it took, for a refund if its
 * transaction aborts (apikey_tracker_note_refund).
 */
ApikeyDrawVerdict
apikey_tracker_use(ApikeyDraw *d)
{
	ApikeyDrawVerdict v;

	if (d->owner_id == 0)
		return use_alone(d);
	v = use_with_owner(d);
	if (v == APIKEY_DRAW_RATE_LIMITED || v == APIKEY_DRAW_QUOTA_EXCEEDED)
		apikey_tracker_count_outcome(d->relid, d->key_id, d->owner_role,
									 v == APIKEY_DRAW_RATE_LIMITED ? APIKEY_RATE_LIMITED :
									 APIKEY_QUOTA_EXCEEDED, d->hint);
	return v;
}

/*
 * apikey_tracker_count_outcome: count a verification of a known key that
 * apikey_tracker_use did not count (refused by an earlier check: DISABLED
 * to RESOURCE_DENIED), for apikey.usage_hourly.  Without room in the key
 * table it is not counted (apikey.stats' untracked).
 */
void
apikey_tracker_count_outcome(Oid relid, int64 key_id, const char *owner_role,
							 ApikeyCode code, ApikeyTrackerHint *hint)
{
	LWLock	   *lock;
	TrackerEntry *e;

	e = tracker_find_entry(MyDatabaseId, relid, key_id, owner_role, false, true, hint, &lock);
	if (e == NULL)
	{
		pg_atomic_fetch_add_u64(&tracker_shared->untracked, 1);
		return;
	}
	SpinLockAcquire(&e->mutex);
	tracker_count_hourly(&e->st, code, GetCurrentStatementStartTimestamp());
	e->st.idle_flushes = 0;
	SpinLockRelease(&e->mutex);
	LWLockRelease(lock);
	apikey_tracker_mark_dirty();
}

/*
 * apikey_tracker_load_balance: the balance of d's key (or, with owner, of
 * its owner) as last written, or as its grant says, for an entry that has
 * none yet; an entry that got one meanwhile (another backend loaded it)
 * keeps its own.
 */
void
apikey_tracker_load_balance(const ApikeyDraw *d, bool owner, const PlanBalance *b)
{
	LWLock	   *lock;
	TrackerEntry *e;

	e = tracker_find_entry(MyDatabaseId, owner ? d->owner_relid : d->relid,
						   owner ? d->owner_id : d->key_id, d->owner_role, true,
						   true, owner ? d->owner_hint : d->hint, &lock);
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
forget_idle(Oid dbid, Oid relid, Oid owners_relid)
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
		idle = (e->key.dbid == dbid && e->key.relid != relid &&
				e->key.relid != owners_relid) ||	/* a dropped table's */
			(st->idle_flushes >= IDLE_FLUSHES &&
			 ((st->pending_uses == 0 && !st->cr_dirty && !st->hourly_dirty && st->held == 0) ||
			  e->key.dbid != dbid) &&
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
apikey_tracker_collect_usage(Oid dbid, Oid relid, Oid owners_relid, ApikeyUsage **out,
							 int64 **spent, int *nspent, ApikeyHourly **hourly, int *nhourly)
{
	int			hourly_cap = 256;
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
	if (hourly != NULL)
	{
		*hourly = palloc(sizeof(ApikeyHourly) * hourly_cap);
		*nhourly = 0;
	}
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

		if (e->key.dbid == dbid && e->key.relid != relid && e->key.relid != owners_relid)
			stale++;
		SpinLockAcquire(&e->mutex);
		if (e->key.dbid == dbid && OidIsValid(owners_relid) && e->key.relid == owners_relid &&
			st->cr_dirty)
		{
			/* an owner's balance (owners count no uses) */
			if (n == cap)
			{
				cap *= 2;
				*out = repalloc(*out, sizeof(ApikeyUsage) * cap);
			}
			memset(&(*out)[n], 0, sizeof(ApikeyUsage));
			(*out)[n].key_id = e->key.key_id;
			(*out)[n].is_owner = true;
			(*out)[n].has_balance = true;
			(*out)[n].balance = st->cr;
			n++;
			st->cr_dirty = false;
		}
		else if (e->key.dbid == dbid && e->key.relid == relid &&
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
			(*out)[n].is_owner = false;
			n++;
			st->pending_uses = 0;
			st->last_used_at = 0;
			st->cr_dirty = false;
		}
		if (e->key.dbid == dbid && e->key.relid == relid && st->hourly_dirty)
		{
			int			c;
			int			w;

			for (w = 0; w < 2; w++)
			{
				uint32	   *counts = w == 0 ? st->prev_hourly : st->hourly;

				for (c = 0; c < APIKEY_NUM_CODES; c++)
				{
					if (counts[c] == 0)
						continue;
					if (hourly != NULL)
					{
						if (*nhourly == hourly_cap)
						{
							hourly_cap *= 2;
							*hourly = repalloc(*hourly, sizeof(ApikeyHourly) * hourly_cap);
						}
						(*hourly)[*nhourly].key_id = e->key.key_id;
						(*hourly)[*nhourly].hour = w == 0 ? st->prev_hour : st->hour;
						(*hourly)[*nhourly].code = (uint8) c;
						(*hourly)[*nhourly].count = counts[c];
						(*nhourly)++;
					}
					counts[c] = 0;
				}
			}
			st->hourly_dirty = false;
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
		forget_idle(dbid, relid, owners_relid);
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
			!e->st.cr_dirty && !e->st.hourly_dirty && e->st.held == 0)
		{
			tracker_entry_removed(tracker_shared, e);
			hash_search_with_hash_value(tracker_keys, &k, hash, HASH_REMOVE, NULL);
		}
		LWLockRelease(lock);
	}
}
