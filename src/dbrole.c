/*-------------------------------------------------------------------------
 *
 * dbrole.c
 *	  Which database role a key may carry as its db_role: the role the
 *	  PostgREST hook switches to (SET LOCAL ROLE) after a VALID check, as
 *	  PostgREST does with a JWT's "role" claim.
 *
 *	  The rule, applied by apikey_create, by the trigger guarding UPDATEs
 *	  of apikey.keys.db_role, and again by the hook at every request (the
 *	  role may have changed since):
 *	  - the role exists, and the member given (the role setting it; at
 *		request time the session user, as SET ROLE requires) is a member
 *		of it;
 *	  - it is not a superuser and has not BYPASSRLS;
 *	  - it is none of apikey_admin, apikey_manager, apikey_verifier, and
 *		has not the privileges of apikey_admin or apikey_manager: a key
 *		must never be able to administer keys.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_authid.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/rel.h"
#include "utils/syscache.h"

#include "apikey.h"

PG_FUNCTION_INFO_V1(apikey_db_role_guard);

static bool
is_or_has_privs_of(Oid roleid, const char *apikey_role, bool privs)
{
	Oid			r = get_role_oid(apikey_role, true);

	if (!OidIsValid(r))
		return false;
	return roleid == r || (privs && has_privs_of_role(roleid, r));
}

/*
 * apikey_db_role_refusal: NULL if rolname may be used as a db_role with
 * member as the role that sets it (or, at request time, becomes it); else
 * why not, with the SQLSTATE to raise in *sqlstate.  *roleid is set when
 * the role exists.
 */
const char *
apikey_db_role_refusal(const char *rolname, Oid member, Oid *roleid,
					   int *sqlstate)
{
	HeapTuple	tup;
	Form_pg_authid form;
	bool		super;
	bool		bypass;

	*roleid = InvalidOid;
	*sqlstate = ERRCODE_INSUFFICIENT_PRIVILEGE;
	tup = SearchSysCache1(AUTHNAME, CStringGetDatum(rolname));
	if (!HeapTupleIsValid(tup))
	{
		*sqlstate = ERRCODE_UNDEFINED_OBJECT;
		return "the role does not exist";
	}
	form = (Form_pg_authid) GETSTRUCT(tup);
	*roleid = form->oid;
	super = form->rolsuper;
	bypass = form->rolbypassrls;
	ReleaseSysCache(tup);

	if (super)
		return "the role is a superuser";
	if (bypass)
		return "the role bypasses row-level security";
	if (is_or_has_privs_of(*roleid, "apikey_admin", true) ||
		is_or_has_privs_of(*roleid, "apikey_manager", true) ||
		is_or_has_privs_of(*roleid, "apikey_verifier", false))
		return "the role is one of apikey's own roles or has the privileges of apikey_admin or apikey_manager";
	if (!is_member_of_role(member, *roleid))
		return "the role setting it is not a member of it";
	return NULL;
}

/*
 * apikey_db_role_validate: raise unless setter may give a key rolname as
 * its db_role.
 */
void
apikey_db_role_validate(const char *rolname, Oid setter)
{
	Oid			roleid;
	int			sqlstate;
	const char *why = apikey_db_role_refusal(rolname, setter, &roleid, &sqlstate);

	if (why == NULL)
		return;
	ereport(ERROR,
			(errcode(sqlstate),
			 errmsg("role \"%s\" cannot be an api key's db_role", rolname),
			 errdetail("%c%s.", pg_toupper((unsigned char) why[0]), why + 1),
			 errhint("A db_role must exist, be a role the setter is a member of, and be neither a superuser, nor BYPASSRLS, nor an apikey role.")));
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
	TupleDesc	desc;
	int			attnum;
	bool		isnull;
	Datum		d;

	if (!CALLED_AS_TRIGGER(fcinfo) ||
		!TRIGGER_FIRED_BEFORE(trigdata->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event) ||
		!TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
		elog(ERROR, "apikey_db_role_guard must be fired BEFORE UPDATE ... FOR EACH ROW");

	desc = RelationGetDescr(trigdata->tg_relation);
	attnum = SPI_fnumber(desc, "db_role");
	if (attnum <= 0)
		elog(ERROR, "apikey.keys has no column db_role");
	d = heap_getattr(trigdata->tg_newtuple, attnum, desc, &isnull);
	if (!isnull)
		apikey_db_role_validate(NameStr(*DatumGetName(d)), apikey_actor_role());
	return PointerGetDatum(trigdata->tg_newtuple);
}
