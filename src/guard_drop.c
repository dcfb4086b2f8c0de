/*-------------------------------------------------------------------------
 *
 * guard_drop.c
 *	  The event trigger that makes losing every key a deliberate step:
 *	  DROP EXTENSION apikey, DROP SCHEMA of its schema and DROP OWNED BY its
 *	  owner are refused while apikey.keys holds keys, unless the session
 *	  has set apikey.allow_drop = on (superusers only); and the trigger
 *	  that does the same for TRUNCATE apikey.keys.
 *
 *	  It runs at ddl_command_start, before anything is dropped, and reads
 *	  the statement's parse tree; being a C function of this library, it
 *	  works whether or not the library is preloaded.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "commands/event_trigger.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "nodes/parsenodes.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"

#include "catalog.h"
#include "common.h"
#include "guards.h"

APIKEY_SQL_FUNCTION(apikey_drop_guard);
APIKEY_SQL_FUNCTION(apikey_truncate_guard);

static bool allow_drop = false;

/*
 * apikey_guard_drop_init: define apikey.allow_drop.
 */
void
apikey_guard_drop_init(void)
{
	DefineCustomBoolVariable("apikey.allow_drop",
							 "Allow DROP EXTENSION apikey (and its schema) while keys exist.",
							 "Dropping the extension deletes every key and the whole audit history.",
							 &allow_drop,
							 false,
							 PGC_SUSET,
							 0,
							 NULL,
							 NULL,
							 NULL);
}

/* drops_apikey: the statement would drop the extension */
static bool
drops_apikey(Node *stmt, Oid nsp)
{
	ListCell   *lc;

	if (IsA(stmt, DropStmt))
	{
		DropStmt   *d = (DropStmt *) stmt;
		const char *schema = get_namespace_name(nsp);

		if (d->removeType != OBJECT_EXTENSION && d->removeType != OBJECT_SCHEMA)
			return false;
		foreach(lc, d->objects)
		{
			const char *name = strVal(lfirst(lc));

			if ((d->removeType == OBJECT_EXTENSION && strcmp(name, "apikey") == 0) ||
				(d->removeType == OBJECT_SCHEMA && schema != NULL && strcmp(name, schema) == 0))
				return true;
		}
	}
	else if (IsA(stmt, DropOwnedStmt))
	{
		Oid			owner = apikey_extension_owner();

		foreach(lc, ((DropOwnedStmt *) stmt)->roles)
			if (get_rolespec_oid(lfirst(lc), true) == owner)
				return true;
	}
	return false;
}

/* key_count: how many keys apikey.keys holds */
static int64
key_count(Oid nsp)
{
	int64		n = 0;
	bool		isnull;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute(psprintf("SELECT pg_catalog.count(*) FROM %s.keys",
							 quote_identifier(get_namespace_name(nsp))),
					true, 0) == SPI_OK_SELECT && SPI_processed == 1)
		n = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
										SPI_tuptable->tupdesc, 1, &isnull));
	SPI_finish();
	return n;
}

/* refuse_losing: refuse a statement that would delete n keys at once */
static void
refuse_losing(int64 n)
{
	ereport(ERROR,
			(errcode(ERRCODE_DEPENDENT_OBJECTS_STILL_EXIST),
			 errmsg("extension apikey still holds " INT64_FORMAT " api keys", n),
			 errdetail("Dropping it deletes every key, their usage and the whole audit history."),
			 errhint("Back them up first (pg_dump -t 'apikey.*' keeps them verifiable), then SET apikey.allow_drop = on, or delete the keys.")));
}

/*
 * apikey_truncate_guard: trigger function, BEFORE TRUNCATE ON apikey.keys:
 * every key at once, and no audit row: as deliberate as a DROP.
 */
Datum
apikey_truncate_guard(PG_FUNCTION_ARGS)
{
	Oid			nsp;
	int64		n;

	if (!CALLED_AS_TRIGGER(fcinfo))
		elog(ERROR, "apikey_truncate_guard must be called as a trigger");
	nsp = apikey_extension_schema();
	if (!allow_drop && OidIsValid(nsp) && (n = key_count(nsp)) > 0)
		refuse_losing(n);
	return PointerGetDatum(NULL);
}

/*
 * apikey_drop_guard: event trigger function, ddl_command_start WHEN TAG IN
 * ('DROP EXTENSION', 'DROP SCHEMA', 'DROP OWNED').
 */
Datum
apikey_drop_guard(PG_FUNCTION_ARGS)
{
	EventTriggerData *trigdata;
	Oid			nsp;
	int64		n;

	if (!CALLED_AS_EVENT_TRIGGER(fcinfo))
		elog(ERROR, "apikey_drop_guard must be called as an event trigger");
	trigdata = (EventTriggerData *) fcinfo->context;
	nsp = apikey_extension_schema();
	if (allow_drop || !OidIsValid(nsp) || !drops_apikey(trigdata->parsetree, nsp))
		PG_RETURN_VOID();
	n = key_count(nsp);
	if (n > 0)
		refuse_losing(n);
	PG_RETURN_VOID();
}
