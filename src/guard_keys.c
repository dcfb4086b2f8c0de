/*-------------------------------------------------------------------------
 *
 * guard_keys.c
 *	  The triggers on apikey.keys that refuse what plain SQL may not do:
 *	  apikey_keys_guard (BEFORE INSERT OR UPDATE) keeps what only the
 *	  extension may write out of reach; apikey_db_role_guard holds a
 *	  db_role set by UPDATE to the rule of dbrole.c; apikey_rate_limit_guard
 *	  refuses a rate limit that cannot be enforced (no shared memory);
 *	  apikey_owner_guard lets a manager give its keys only the owners
 *	  registered to it (apikey.owners).
 *
 *	  Column privileges already refuse these columns to every role the
 *	  extension grants anything; this trigger also holds against roles that
 *	  bypass privileges (pg_write_all_data) and against table owners that
 *	  are not superusers:
 *	  - a key is created only by apikey_create (an INSERT outside it is
 *		refused), so a hash, prefix, hint or db_role cannot be forged;
 *	  - the secret hashes, the grace period, the hint and rotated_at change
 *		only through apikey_rotate, and id, prefix, created_* and
 *		credits_set_at (stamped by keys_plan_stamp) never;
 *	  - credits and refills (1.2) change only by an administrator;
 *	  - superusers may do anything (restoring a dump inserts as one).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/datum.h"
#include "utils/rel.h"

#include "acting_role.h"
#include "common.h"
#include "dbrole.h"
#include "heaprow.h"
#include "validate.h"

APIKEY_SQL_FUNCTION(apikey_keys_guard);
APIKEY_SQL_FUNCTION(apikey_db_role_guard);
APIKEY_SQL_FUNCTION(apikey_refuse_rate_limit);
APIKEY_SQL_FUNCTION(apikey_rate_limit_guard);
APIKEY_SQL_FUNCTION(apikey_owner_guard);

/* columns that only apikey_rotate changes, and those nothing changes */
static const char *const rotate_only[] = {
	"secret_hash", "grace_secret_hash", "grace_until", "hint", "rotated_at", NULL
};
static const char *const never[] = {
	"id", "prefix", "created_at", "created_by", "credits_set_at", NULL
};
/* a key's plan (1.2): administrators only */
static const char *const plan_columns[] = {
	"credits", "refill_amount", "refill_interval", "refill_day", NULL
};

/*
 * apikey_keys_guard: trigger function, BEFORE INSERT OR UPDATE FOR EACH ROW
 * on apikey.keys.
 */
Datum
apikey_keys_guard(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	TupleDesc	desc;
	int			i;

	if (!CALLED_AS_TRIGGER(fcinfo) ||
		!TRIGGER_FIRED_BEFORE(trigdata->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event) ||
		TRIGGER_FIRED_BY_DELETE(trigdata->tg_event))
		elog(ERROR, "apikey_keys_guard must be fired BEFORE INSERT OR UPDATE ... FOR EACH ROW");

	/* apikey_create and apikey_rotate write as the owner, on a caller's behalf */
	if (apikey_actor_switched() || superuser())
		return PointerGetDatum(TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event) ?
							   trigdata->tg_newtuple : trigdata->tg_trigtuple);

	if (TRIGGER_FIRED_BY_INSERT(trigdata->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("api keys are created only by apikey.apikey_create()")));

	desc = RelationGetDescr(trigdata->tg_relation);
	for (i = 0; rotate_only[i] != NULL; i++)
		if (apikey_column_changed(desc, trigdata->tg_trigtuple, trigdata->tg_newtuple, rotate_only[i]))
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("column \"%s\" of apikey.keys changes only through apikey.apikey_rotate()",
							rotate_only[i])));
	for (i = 0; never[i] != NULL; i++)
		if (SPI_fnumber(desc, never[i]) > 0 &&
			apikey_column_changed(desc, trigdata->tg_trigtuple, trigdata->tg_newtuple, never[i]))
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("column \"%s\" of apikey.keys cannot be changed", never[i])));
	for (i = 0; plan_columns[i] != NULL; i++)
		if (SPI_fnumber(desc, plan_columns[i]) > 0 &&
			apikey_column_changed(desc, trigdata->tg_trigtuple, trigdata->tg_newtuple, plan_columns[i]) &&
			!apikey_is_admin(apikey_actor_role()))
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("only an apikey_admin changes a key's credits or refills")));
	return PointerGetDatum(trigdata->tg_newtuple);
}

/*
 * apikey_db_role_guard: trigger function, BEFORE UPDATE OF db_role ON
 * apikey.keys: a db_role set by UPDATE obeys the rule apikey_create
 * applies, judged for the role making the change.
 */
Datum
apikey_db_role_guard(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	HeapTuple	newtup;
	TupleDesc	desc;
	int			attnum;
	bool		isnull;
	Datum		d;

	if (!CALLED_AS_TRIGGER(fcinfo) ||
		!TRIGGER_FIRED_BEFORE(trigdata->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event) ||
		!TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
		elog(ERROR, "apikey_db_role_guard must be fired BEFORE UPDATE ... FOR EACH ROW");

	newtup = trigdata->tg_newtuple;
	desc = RelationGetDescr(trigdata->tg_relation);
	attnum = SPI_fnumber(desc, "db_role");
	if (attnum <= 0)
		elog(ERROR, "apikey.keys has no column db_role");
	d = heap_getattr(newtup, attnum, desc, &isnull);
	if (!isnull)
		apikey_db_role_validate(NameStr(*DatumGetName(d)), apikey_actor_role());
	return PointerGetDatum(newtup);
}

/*
 * apikey_rate_limit_guard: trigger function, BEFORE UPDATE OF rate_limit,
 * rate_window on apikey.keys WHEN a valid rate limit is being set: direct
 * UPDATEs obey the rule of apikey_create.  Also BEFORE INSERT OR UPDATE of
 * apikey.owners (1.2): an owner's limit needs shared memory too.  (1.0 declared it as
 * apikey.refuse_rate_limit(), symbol apikey_refuse_rate_limit.)
 */
Datum
apikey_rate_limit_guard(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo) ||
		!TRIGGER_FIRED_BEFORE(trigdata->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event))
		elog(ERROR, "apikey_rate_limit_guard must be fired BEFORE ... FOR EACH ROW");
	apikey_require_tracker_for_limits();
	return PointerGetDatum(TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event) ?
						   trigdata->tg_newtuple : trigdata->tg_trigtuple);
}

Datum
apikey_refuse_rate_limit(PG_FUNCTION_ARGS)
{
	return apikey_rate_limit_guard(fcinfo);
}

/*
 * apikey_owner_guard: trigger function, BEFORE INSERT OR UPDATE OF owner
 * ON apikey.keys WHEN (NEW.owner IS NOT NULL): the owner is an identity
 * row-level security trusts (apikey.current_owner()), so the acting role
 * (apikey_create's caller, or whoever runs the UPDATE) may give a key only
 * an owner registered to it in apikey.owners; administrators and
 * superusers any.  An UPDATE that leaves the owner as it was passes.  The
 * owner is not quoted in the error: an application's ids may be private.
 */
Datum
apikey_owner_guard(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	HeapTuple	newtup;
	TupleDesc	desc;
	int			attnum;
	bool		isnull;
	Datum		owner;
	Oid			actor;
	Datum		args[2];
	Oid			types[2] = {TEXTOID, NAMEOID};
	bool		registered;

	if (!CALLED_AS_TRIGGER(fcinfo) ||
		!TRIGGER_FIRED_BEFORE(trigdata->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event))
		elog(ERROR, "apikey_owner_guard must be fired BEFORE ... FOR EACH ROW");

	newtup = TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event) ?
		trigdata->tg_newtuple : trigdata->tg_trigtuple;
	desc = RelationGetDescr(trigdata->tg_relation);
	attnum = SPI_fnumber(desc, "owner");
	if (attnum <= 0)
		elog(ERROR, "apikey.keys has no column owner");
	owner = heap_getattr(newtup, attnum, desc, &isnull);
	if (isnull ||
		(TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event) &&
		 !apikey_column_changed(desc, trigdata->tg_trigtuple, newtup, "owner")))
		return PointerGetDatum(newtup);

	actor = apikey_actor_role();
	if (apikey_is_admin(actor))
		return PointerGetDatum(newtup);

	args[0] = owner;
	args[1] = apikey_role_name(actor);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute_with_args("SELECT 1 FROM apikey.owners o"
							  " WHERE o.owner OPERATOR(pg_catalog.=) $1"
							  " AND o.managed_by OPERATOR(pg_catalog.=) $2",
							  2, types, args, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read apikey.owners");
	registered = SPI_processed > 0;
	SPI_finish();
	if (!registered)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("the owner given is not registered to role \"%s\"",
						GetUserNameFromId(actor, false)),
				 errdetail("A manager gives its keys only NULL or an owner registered to it in apikey.owners (managed_by)."),
				 errhint("An apikey_admin registers owners: INSERT INTO apikey.owners (owner, managed_by) VALUES (...).")));
	return PointerGetDatum(newtup);
}
