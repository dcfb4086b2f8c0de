/*-------------------------------------------------------------------------
 *
 * verify_check.c
 *	  The verify path, shared by apikey_verify and the PostgREST hook, and
 *	  its result codes.  In order: parse and checksum (no table touched for
 *	  a malformed key), SHA-256, find the row (the shared verified-key
 *	  cache of keycache.c, or the backend's own of verify_cache.c, else
 *	  verify_probe.c), the pure checks (verify_eval.c),
 *	  then the rate limit and the credits, and count the outcome.
 *
 *	  No SPI, no catalog lookup (catalog.c caches the OIDs), no writes: it
 *	  works in READ ONLY transactions and on hot standbys.  Rate limits and
 *	  usage are counted in shared memory (tracker.c), and every outcome is
 *	  counted there and, per apikey.log_verifications, queued for the log.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/inet.h"
#include "utils/inval.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "common.h"
#include "keycache.h"
#include "keyformat.h"
#include "scope.h"
#include "secret.h"
#include "tracker.h"
#include "values.h"
#include "verify.h"

/*
 * apikey_request_set_scopes: validate the caller's required scopes.  A
 * malformed one is the caller's programming error and raises 22023; the
 * message does not echo it, in case a key was passed by mistake.
 */
void
apikey_request_set_scopes(ApikeyRequest *req, ArrayType *required)
{
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	int			i;

	if (ARR_NDIM(required) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("required scopes must be a one-dimensional array")));
	n = ArrayGetNItems(ARR_NDIM(required), ARR_DIMS(required));
	if (n == 0)
	{
		req->nscopes = 0;		/* '{}', the common case */
		return;
	}
	if (n > APIKEY_MAX_SCOPES)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("too many required scopes"),
				 errdetail("A verification requires at most %d scopes.", APIKEY_MAX_SCOPES)));
	n = apikey_text_array(required, &elems, &nulls);
	req->nscopes = n;
	req->scopes = palloc(sizeof(char *) * n);
	req->scope_lens = palloc(sizeof(int) * n);
	for (i = 0; i < n; i++)
	{
		text	   *t;

		CHECK_FOR_INTERRUPTS();
		if (nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("required scope %d is null", i + 1)));
		t = DatumGetTextPP(elems[i]);
		req->scopes[i] = VARDATA_ANY(t);
		req->scope_lens[i] = VARSIZE_ANY_EXHDR(t);
		if (!scope_valid(req->scopes[i], req->scope_lens[i]))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("required scope %d is malformed", i + 1),
					 errdetail(APIKEY_SCOPE_RULE,
							   SCOPE_MAX_LEN, SCOPE_MAX_SEGMENTS)));
	}
}

/* client_of: the caller's client address, NULL if not given */
static inline const inet *
client_of(const ApikeyRequest *req)
{
	return req->client_isnull ? NULL : DatumGetInetPP(req->client_addr);
}

/* interval_of: an interval datum of us microseconds */
static Datum
interval_of(int64 us)
{
	Interval   *iv = palloc0(sizeof(Interval));

	iv->time = us;
	return IntervalPGetDatum(iv);
}

/*
 * draw: the checks of shared memory, on a key that passed every other:
 * its rate limit, then its credits (tracker_keys.c), counting the use if
 * VALID.  Returns the code; sets res->retry_after (RATE_LIMITED, and
 * QUOTA_EXCEEDED with a refill to wait for) and credits_remaining.  A
 * metered key's balance not yet in shared memory is read from what the
 * worker last wrote.  Without shared memory there are no buckets and no
 * balances, and a limited or metered key fails closed.
 */
static ApikeyCode
draw(const ApikeyCatalog *cat, ApikeyKey *key, const ApikeyRequest *req,
	 ApikeyResult *res)
{
	ApikeyDraw	d;
	ApikeyDrawVerdict v;
	ApikeyTrackerHint owner_hint = {NULL, 0};
	int			tries;

	if (!apikey_tracker_active())
	{
		if (!key->rate_limit_isnull ||
			(key->has_owner_plan && key->owner_plan.rate_limit > 0))
			return APIKEY_RATE_LIMITED;
		return key->metered || (key->has_owner_plan && key->owner_plan.metered) ?
			APIKEY_QUOTA_EXCEEDED : APIKEY_VALID;
	}
	memset(&d, 0, sizeof(d));
	d.relid = cat->keys_relid;
	d.key_id = key->key_id;
	d.owner_role = NameStr(*DatumGetName(key->owner_role));
	d.rate_limit = key->rate_limit_isnull ? 0 : key->rate_limit;
	d.window = key->rate_window_isnull ? NULL : DatumGetIntervalP(key->rate_window);
	d.credits = key->metered ? &key->credits : NULL;
	d.cost = req->cost;
	/* refills need the clock; a balance without one does not */
	d.plan_now = key->metered && key->credits.interval != PLAN_REFILL_NONE ?
		apikey_plan_now() : 0;
	d.hint = &key->tracker;
	if (key->has_owner_plan)
	{
		d.owner_relid = cat->owners_relid;
		d.owner_id = key->owner_plan.owner_id;
		d.owner_rate_limit = key->owner_plan.rate_limit;
		d.owner_window = &key->owner_plan.rate_window;
		d.owner_credits = key->owner_plan.metered ? &key->owner_plan.credits : NULL;
		d.owner_hint = &owner_hint;
		if (d.plan_now == 0 && d.owner_credits != NULL &&
			d.owner_credits->interval != PLAN_REFILL_NONE)
			d.plan_now = apikey_plan_now();
	}
	for (tries = 0;; tries++)
	{
		PlanBalance b;

		v = apikey_tracker_use(&d);
		if ((v != APIKEY_DRAW_LOAD && v != APIKEY_DRAW_LOAD_OWNER) || tries == 4)
			break;
		if (v == APIKEY_DRAW_LOAD)
			apikey_probe_balance(cat, cat->usage_relid, cat->usage_pkey, key->key_id,
								 &key->credits, &b);
		else
			apikey_probe_balance(cat, cat->owner_usage_relid, cat->owner_usage_pkey,
								 d.owner_id, d.owner_credits, &b);
		apikey_tracker_load_balance(&d, v == APIKEY_DRAW_LOAD_OWNER, &b);
	}
	res->has_remaining = d.has_remaining;
	res->credits_remaining = d.remaining;
	switch (v)
	{
		case APIKEY_DRAW_VALID:
			apikey_tracker_note_refund(&d);
			return APIKEY_VALID;
		case APIKEY_DRAW_RATE_LIMITED:
			res->retry_after = interval_of(d.retry_us);
			res->retry_isnull = false;
			return APIKEY_RATE_LIMITED;
		case APIKEY_DRAW_LOAD:
		case APIKEY_DRAW_LOAD_OWNER:
			/* a balance that could not be loaded: fail closed */
			res->has_remaining = false;
			return APIKEY_QUOTA_EXCEEDED;
		default:
			if (d.retry_us >= 0)
			{
				res->retry_after = interval_of(d.retry_us);
				res->retry_isnull = false;
			}
			return APIKEY_QUOTA_EXCEEDED;
	}
}

/*
 * find_local: find the key in this backend's cache (verify_cache.c) or in
 * apikey.keys; true and result->key set if found.
 */
static bool
find_local(const ApikeyCatalog *cat, const uint8 *hash, TimestampTz now,
		   ApikeyResult *result)
{
	MemoryContext cache_rows = apikey_cache_rows(cat);
	ApikeyKey	cached;
	bool		admit;
	bool		found;
	bool		cacheable;

	if (apikey_cache_lookup(hash, &cached, &admit))
	{
		/* a previous secret counts only within its grace period */
		found = cached.grace_isnull || cached.grace_until > now;
		if (found)
			result->key = cached;
		apikey_tracker_count_cache(true);
		return found;
	}
	found = apikey_probe_key(cat, hash, now, admit ? cache_rows : NULL,
							 &result->key, &cacheable);
	if (cacheable)
		apikey_cache_insert(hash, &result->key);
	if (cache_rows != NULL)
		apikey_tracker_count_cache(false);
	return found;
}

/*
 * apikey_check_key: check key[0..len) against req.  Never raises for a bad
 * key; result->code says what was found.  The caller calls
 * apikey_check_done(result) once it has used result->key.
 */
void
apikey_check_key(const char *key, size_t len, const ApikeyRequest *req,
				 ApikeyResult *result)
{
	const ApikeyCatalog *cat;
	uint8		hash[APIKEY_HASH_LEN];
	TimestampTz now = GetCurrentTransactionStartTimestamp();
	ApikeyKeycacheFill fill;
	bool		hit = false;
	bool		cacheable = false;
	bool		found;

	memset(result, 0, sizeof(*result));
	result->retry_isnull = true;
	result->key.owner_isnull = result->key.resources_isnull = true;
	result->key.cidrs_isnull = result->key.expires_isnull = true;
	result->key.rate_limit_isnull = result->key.rate_window_isnull = true;
	result->key.db_role_isnull = result->key.grace_isnull = true;

	if (len > KF_KEY_MAX_LEN || kf_parse(key, len, NULL) != KF_OK)
	{
		result->code = APIKEY_MALFORMED;
		apikey_tracker_record(result->code, 0, NULL, client_of(req));
		return;
	}

	apikey_secret_hash(key, len, hash);

	/*
	 * Take the invalidations already sent, as opening a table would: a
	 * change committed before this statement then reaches the cache now,
	 * not only at the next transaction (an unlocked read when none wait).
	 */
	AcceptInvalidationMessages();
	cat = apikey_catalog_lock(AccessShareLock);
	if (apikey_keycache_active(cat))
	{
		hit = found = apikey_keycache_lookup(cat, hash, &result->key, &fill);
		if (!hit)
			found = apikey_probe_key(cat, hash, now,
									 fill.admit ? CurrentMemoryContext : NULL,
									 &result->key, &cacheable);
		apikey_tracker_count_cache(hit);
	}
	else
		found = find_local(cat, hash, now, result);

	if (!found)
		result->code = APIKEY_NOT_FOUND;
	else
	{
		ApikeyTrackerHint hint = result->key.tracker;

		result->has_identity = true;
		result->code = apikey_evaluate(&result->key, req, now);
		if (result->code == APIKEY_VALID)
			result->code = draw(cat, &result->key, req, result);
		else if (apikey_tracker_active())
			apikey_tracker_count_outcome(cat->keys_relid, result->key.key_id,
										 NameStr(*DatumGetName(result->key.owner_role)),
										 result->code, &result->key.tracker);
		/* keep the row, and where its tracker entry is, for every backend */
		if (cacheable)
			apikey_keycache_insert(cat, hash, &fill, &result->key);
		else if (hit && (hint.entry != result->key.tracker.entry ||
						 hint.incarnation != result->key.tracker.incarnation))
			apikey_keycache_set_hint(cat, hash, &result->key.tracker);
	}
	kf_wipe(hash, sizeof(hash));
	apikey_tracker_record(result->code,
						  result->has_identity ? result->key.key_id : 0,
						  result->has_identity ? NameStr(*DatumGetName(result->key.owner_role)) : NULL,
						  client_of(req));
}

/*
 * apikey_check_done: release the key's copy; result->key is invalid from
 * here on.
 */
void
apikey_check_done(ApikeyResult *result)
{
	if (result->has_identity)
		apikey_key_free(&result->key);
	result->has_identity = false;
}
