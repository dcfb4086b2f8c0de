/*-------------------------------------------------------------------------
 *
 * tracker_credits.c
 *	  Metered balances beyond the draw itself (tracker_keys.c): the credits
 *	  a transaction took, given back if it aborts (apikey.refund_on_abort),
 *	  and the clock refills are judged by (apikey.debug_now, for tests).
 *
 *	  Refunds: each VALID metered call of this backend notes its key, the
 *	  grant and refill period it drew from and the cost, in backend memory,
 *	  with the transaction nesting level it was made at.  A subtransaction
 *	  that commits hands its notes to its parent; one that aborts, or the
 *	  top transaction aborting, gives their credits back, under the
 *	  entry's spinlock, and only to the same grant and period: credits
 *	  set again, or a refill, since the call leave the new balance alone.
 *	  A commit or a PREPARE forgets them (a prepared transaction rolled
 *	  back later is not refunded).  While a transaction holds notes of an
 *	  entry, the entry is held (TrackerState.held): the worker never
 *	  recycles it, so a refund after a long transaction still finds it.  Rate-limit tokens are never given back:
 *	  a limit counts attempts.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <stdio.h>

#include "access/xact.h"
#include "miscadmin.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "compat.h"
#include "tracker_int.h"

typedef struct Refund
{
	Oid			dbid;
	Oid			relid;
	int64		key_id;
	int64		set_at;
	int64		period;
	int64		amount;
	int			level;			/* the nesting level that took it */
} Refund;

bool		apikey_refund_on_abort = true;
static char *debug_now = NULL;
static TimestampTz debug_now_value = 0;

static Refund *refunds = NULL;
static int	nrefunds = 0;
static int	refunds_cap = 0;

/*
 * apikey_tracker_note_refund: a VALID call took d->cost credits from the
 * balance d->taken_from (its grant and period) of d's key, and from its
 * owner's, if metered: remember them until the transaction ends.
 */
static void note(Oid relid, int64 id, const PlanBalance *from, int64 amount);

void
apikey_tracker_note_refund(const ApikeyDraw *d)
{
	if (!apikey_refund_on_abort || !IsTransactionState() || d->cost <= 0)
		return;
	if (d->credits != NULL)
		note(d->relid, d->key_id, &d->taken_from, d->cost);
	if (d->owner_id != 0 && d->owner_credits != NULL)
		note(d->owner_relid, d->owner_id, &d->owner_taken_from, d->cost);
}

/* note: remember one balance's refund */
static void
note(Oid relid, int64 id, const PlanBalance *from, int64 amount)
{
	Refund	   *r;

	if (nrefunds == refunds_cap)
	{
		int			cap = refunds_cap == 0 ? 16 : refunds_cap * 2;

		refunds = refunds == NULL ?
			MemoryContextAlloc(TopMemoryContext, sizeof(Refund) * cap) :
			repalloc(refunds, sizeof(Refund) * cap);
		refunds_cap = cap;
	}
	r = &refunds[nrefunds++];
	r->dbid = MyDatabaseId;
	r->relid = relid;
	r->key_id = id;
	r->set_at = from->set_at;
	r->period = from->period;
	r->amount = amount;
	r->level = GetCurrentTransactionNestLevel();
	tracker_hold(r->dbid, r->relid, r->key_id, 1);
}

/* refund_from: give back every note taken at nesting level >= level */
static void
refund_from(int level)
{
	int			kept = 0;
	int			i;

	for (i = 0; i < nrefunds; i++)
	{
		if (refunds[i].level >= level)
		{
			if (apikey_tracker_active())
			{
				const Refund *r = &refunds[i];
				PlanBalance from = {r->set_at, r->period, 0};

				tracker_give_back(r->dbid, r->relid, r->key_id, NULL, false, &from, r->amount);
				tracker_hold(r->dbid, r->relid, r->key_id, -1);
			}
		}
		else
			refunds[kept++] = refunds[i];
	}
	nrefunds = kept;
}

static void
xact_callback(XactEvent event, void *arg)
{
	if (nrefunds == 0)
		return;
	if (event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT)
		refund_from(0);
	else if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_PARALLEL_COMMIT ||
			 event == XACT_EVENT_PREPARE)
	{
		int			i;

		if (apikey_tracker_active())
			for (i = 0; i < nrefunds; i++)
				tracker_hold(refunds[i].dbid, refunds[i].relid, refunds[i].key_id, -1);
		nrefunds = 0;
	}
}

static void
subxact_callback(SubXactEvent event, SubTransactionId mySubid,
				 SubTransactionId parentSubid, void *arg)
{
	int			level = GetCurrentTransactionNestLevel();
	int			i;

	if (nrefunds == 0)
		return;
	if (event == SUBXACT_EVENT_ABORT_SUB)
		refund_from(level);
	else if (event == SUBXACT_EVENT_COMMIT_SUB)
		for (i = 0; i < nrefunds; i++)
			if (refunds[i].level >= level)
				refunds[i].level = level - 1;
}

/*
 * apikey_plan_now: the time refills are judged by: now, or
 * apikey.debug_now when a superuser set it (tests of month ends).
 */
TimestampTz
apikey_plan_now(void)
{
	if (debug_now != NULL && debug_now[0] != '\0')
		return debug_now_value;
	return GetCurrentTimestamp();
}

/* debug_now: '' or 'YYYY-MM-DD HH:MM:SS' (UTC) */
static bool
check_debug_now(char **newval, void **extra, GucSource source)
{
	int			y,
				mo,
				d,
				h,
				mi,
				s;
	char		tail;
	int64	   *v;

	if (*newval == NULL || (*newval)[0] == '\0')
		return true;
	if (sscanf(*newval, "%4d-%2d-%2d %2d:%2d:%2d%c", &y, &mo, &d, &h, &mi, &s, &tail) != 6 ||
		y < 2000 || y > 9999 || !plan_date_valid(y, mo, d) ||
		h > 23 || mi > 59 || s > 59 || h < 0 || mi < 0 || s < 0)
	{
		GUC_check_errdetail("apikey.debug_now is empty or YYYY-MM-DD HH:MM:SS (UTC).");
		return false;
	}
	v = apikey_guc_extra_alloc(sizeof(int64));
	if (v == NULL)
		return false;
	*v = plan_time_of(y, mo, d, h, mi, s);
	*extra = v;
	return true;
}

static void
assign_debug_now(const char *newval, void *extra)
{
	debug_now_value = extra ? *(int64 *) extra : 0;
}

/* apikey_tracker_credits_init: the settings and callbacks, from _PG_init */
void
apikey_tracker_credits_init(void)
{
	DefineCustomBoolVariable("apikey.refund_on_abort",
							 "Gives back the credits a verification took when its transaction aborts.",
							 "Rate-limit tokens are never given back.",
							 &apikey_refund_on_abort,
							 true,
							 PGC_SUSET,
							 0,
							 NULL,
							 NULL,
							 NULL);
	DefineCustomStringVariable("apikey.debug_now",
							   "For tests: the time (UTC, YYYY-MM-DD HH:MM:SS) credit refills are judged by; empty: now.",
							   NULL,
							   &debug_now,
							   "",
							   PGC_SUSET,
							   GUC_NOT_IN_SAMPLE,
							   check_debug_now,
							   assign_debug_now,
							   NULL);
	RegisterXactCallback(xact_callback, NULL);
	RegisterSubXactCallback(subxact_callback, NULL);
}
