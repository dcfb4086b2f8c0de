/*-------------------------------------------------------------------------
 *
 * audit.c
 *	  The AFTER ROW trigger on apikey.keys (and, from 1.2, on apikey.owners:
 *	  rows of action "plan") that writes the audit trail.
 *
 *	  It runs as the role making the change, records that role (or, inside
 *	  apikey_create/apikey_rotate, their caller: see acting_role.c), then switches
 *	  to the table owner to append to apikey.audit, which no other role may
 *	  write.  Deciding what changed is done in SQL by apikey.keys_audit_row
 *	  (apikey.owners_audit_row for owners), which the owner alone may
 *	  execute.
 *
 *	  Restoring a dump inserts keys too: pg_dump scripts run with
 *	  row_security off, and an INSERT seen that way outside apikey_create is
 *	  not logged again (the dump carries the original audit rows).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/rel.h"
#include "utils/rls.h"

#include "acting_role.h"
#include "common.h"

APIKEY_SQL_FUNCTION(apikey_keys_audit);

/*
 * apikey_keys_audit: trigger function, AFTER INSERT OR UPDATE OR DELETE
 * FOR EACH ROW on apikey.keys.
 */
Datum
apikey_keys_audit(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	Relation	rel;
	TupleDesc	desc;
	const char *op;
	Oid			argtypes[3];
	Datum		args[3];
	char		nulls[3] = {' ', 'n', 'n'};
	ApikeyActorSwitch saved;
	int			ret;

	if (!CALLED_AS_TRIGGER(fcinfo) ||
		!TRIGGER_FIRED_AFTER(trigdata->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event))
		elog(ERROR, "apikey_keys_audit must be fired AFTER ... FOR EACH ROW");

	rel = trigdata->tg_relation;
	desc = RelationGetDescr(rel);

	if (TRIGGER_FIRED_BY_INSERT(trigdata->tg_event))
	{
		if (!row_security && !apikey_actor_switched())
			return PointerGetDatum(NULL);	/* restoring a dump */
		op = "INSERT";
		args[2] = heap_copy_tuple_as_datum(trigdata->tg_trigtuple, desc);
		nulls[2] = ' ';
	}
	else if (TRIGGER_FIRED_BY_DELETE(trigdata->tg_event))
	{
		op = "DELETE";
		args[1] = heap_copy_tuple_as_datum(trigdata->tg_trigtuple, desc);
		nulls[1] = ' ';
	}
	else if (TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
	{
		op = "UPDATE";
		args[1] = heap_copy_tuple_as_datum(trigdata->tg_trigtuple, desc);
		nulls[1] = ' ';
		args[2] = heap_copy_tuple_as_datum(trigdata->tg_newtuple, desc);
		nulls[2] = ' ';
	}
	else
		elog(ERROR, "apikey_keys_audit fired by an unexpected event");

	argtypes[0] = TEXTOID;
	argtypes[1] = argtypes[2] = rel->rd_rel->reltype;
	args[0] = CStringGetTextDatum(op);

	saved = apikey_actor_begin(rel->rd_rel->relowner);
	ret = apikey_actor_execute(strcmp(RelationGetRelationName(rel), "owners") == 0 ?
							   "SELECT apikey.owners_audit_row($1, $2, $3)" :
							   "SELECT apikey.keys_audit_row($1, $2, $3)",
							   3, argtypes, args, nulls, 0);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "could not write the audit row: %s",
			 SPI_result_code_string(ret));
	apikey_actor_end(saved);

	return PointerGetDatum(NULL);
}
