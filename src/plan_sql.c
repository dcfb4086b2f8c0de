/*-------------------------------------------------------------------------
 *
 * plan_sql.c
 *	  The SQL side of usage plans: apikey.plan_valid() (the CHECK on
 *	  apikey.keys and apikey_create's rule, both from plan.c),
 *	  apikey.next_refill(), the keys_plan_stamp trigger that marks credits
 *	  set again, and the checks apikey_create makes of a plan.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "miscadmin.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/timestamp.h"

#include "acting_role.h"
#include "common.h"
#include "plan.h"
#include "plan_sql.h"
#include "tracker.h"

APIKEY_SQL_FUNCTION(apikey_plan_valid);
APIKEY_SQL_FUNCTION(apikey_next_refill);
APIKEY_SQL_FUNCTION(apikey_plan_stamp);

/*
 * problem_of: what is wrong with the plan in arguments first..first+3 of
 * fcinfo (credits, refill_amount, refill_interval, refill_day), or NULL
 */
static const char *
problem_of(FunctionCallInfo fcinfo, int first)
{
	text	   *interval = PG_ARGISNULL(first + 2) ? NULL : PG_GETARG_TEXT_PP(first + 2);

	return plan_problem(!PG_ARGISNULL(first), PG_ARGISNULL(first) ? 0 : PG_GETARG_INT64(first),
						!PG_ARGISNULL(first + 1), PG_ARGISNULL(first + 1) ? 0 : PG_GETARG_INT64(first + 1),
						interval ? VARDATA_ANY(interval) : NULL,
						interval ? VARSIZE_ANY_EXHDR(interval) : 0,
						!PG_ARGISNULL(first + 3), PG_ARGISNULL(first + 3) ? 0 : PG_GETARG_INT32(first + 3));
}

/* apikey.plan_valid(credits, refill_amount, refill_interval, refill_day) */
Datum
apikey_plan_valid(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(problem_of(fcinfo, 0) == NULL);
}

/* apikey.next_refill(refill_interval text, refill_day integer, after timestamptz) */
Datum
apikey_next_refill(PG_FUNCTION_ARGS)
{
	text	   *interval;
	PlanInterval iv;
	int			day = PG_ARGISNULL(1) ? 1 : PG_GETARG_INT32(1);
	TimestampTz after;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(2))
		PG_RETURN_NULL();
	interval = PG_GETARG_TEXT_PP(0);
	iv = plan_interval_of(VARDATA_ANY(interval), VARSIZE_ANY_EXHDR(interval));
	if (iv == PLAN_REFILL_NONE)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("refill_interval must be \"day\" or \"month\"")));
	if (day < 1 || day > 31)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("refill_day must be between 1 and 31")));
	after = PG_GETARG_TIMESTAMPTZ(2);
	if (TIMESTAMP_NOT_FINITE(after))
		PG_RETURN_TIMESTAMPTZ(after);
	after = plan_next_refill(iv, day, after);
	if (!IS_VALID_TIMESTAMP(after))
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("timestamp out of range")));
	PG_RETURN_TIMESTAMPTZ(after);
}

/*
 * apikey_plan_check: apikey_create's checks of a plan given in arguments
 * first..first+3: the rule (22023), an administrator's (42501), shared
 * memory to keep the balance (55000).
 */
void
apikey_plan_check(FunctionCallInfo fcinfo, int first, Oid caller)
{
	const char *problem;
	int			i;
	bool		any = false;

	for (i = 0; i < 4; i++)
		any |= !PG_ARGISNULL(first + i);
	if (!any)
		return;
	problem = problem_of(fcinfo, first);
	if (problem != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s", problem)));
	if (!apikey_is_admin(caller))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("only an apikey_admin gives a key credits or refills")));
	apikey_require_tracker_for_credits();
}

/* apikey_require_tracker_for_credits: balances live in shared memory */
void
apikey_require_tracker_for_credits(void)
{
	if (!apikey_tracker_active())
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("credits require apikey in shared_preload_libraries"),
				 errhint("Add apikey to shared_preload_libraries and restart the server.")));
}

/*
 * apikey.plan_stamp(): trigger, BEFORE INSERT OR UPDATE OF credits ON
 * apikey.keys (fired after keys_guard).  An UPDATE that names credits
 * (even with the value it had) stamps credits_set_at, strictly later than
 * before: the balance then starts again from credits at this commit.  An
 * INSERT stamps it unless a superuser gives it (a restored dump keeps its
 * balances, and restores on a server without shared memory, where the key
 * then fails closed).  Otherwise credits need shared memory (55000
 * without).
 */
Datum
apikey_plan_stamp(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	TupleDesc	desc;
	HeapTuple	newtup;
	int			att_credits;
	int			att_set_at;
	bool		isnull;
	bool		set_isnull;
	TimestampTz stamp;
	Datum		value;

	if (!CALLED_AS_TRIGGER(fcinfo) ||
		!TRIGGER_FIRED_BEFORE(trigdata->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event) ||
		TRIGGER_FIRED_BY_DELETE(trigdata->tg_event))
		elog(ERROR, "apikey_plan_stamp must be fired BEFORE INSERT OR UPDATE ... FOR EACH ROW");

	desc = RelationGetDescr(trigdata->tg_relation);
	newtup = TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event) ?
		trigdata->tg_newtuple : trigdata->tg_trigtuple;
	att_credits = SPI_fnumber(desc, "credits");
	att_set_at = SPI_fnumber(desc, "credits_set_at");
	if (att_credits <= 0 || att_set_at <= 0)
		elog(ERROR, "apikey.keys has no column credits or credits_set_at");

	(void) heap_getattr(newtup, att_credits, desc, &isnull);
	if (isnull)
	{
		/* unmetered: no grant */
		stamp = 0;
	}
	else
	{
		Datum		old;

		/* a restored dump's row keeps its stamp (and restores anywhere) */
		(void) heap_getattr(newtup, att_set_at, desc, &set_isnull);
		if (TRIGGER_FIRED_BY_INSERT(trigdata->tg_event) && !set_isnull && superuser())
			return PointerGetDatum(newtup);
		apikey_require_tracker_for_credits();
		stamp = GetCurrentTimestamp();
		if (TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
		{
			old = heap_getattr(trigdata->tg_trigtuple, att_set_at, desc, &set_isnull);
			if (!set_isnull && DatumGetTimestampTz(old) >= stamp)
				stamp = DatumGetTimestampTz(old) + 1;
		}
	}
	value = TimestampTzGetDatum(stamp);
	isnull = stamp == 0;
	return PointerGetDatum(heap_modify_tuple_by_cols(newtup, desc, 1, &att_set_at,
													 &value, &isnull));
}
