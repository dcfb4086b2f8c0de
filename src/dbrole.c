/*-------------------------------------------------------------------------
 *
 * dbrole.c
 *	  Which database role a key may carry as its db_role: the role the
 *	  PostgREST hook switches to (SET LOCAL ROLE) after a VALID check, as
 *	  PostgREST does with a JWT's "role" claim.
 *
 *	  The rule, applied by apikey_create, by the trigger guarding UPDATEs of
 *	  apikey.keys.db_role (guard_keys.c; keys are inserted only by
 *	  apikey_create), and again by the hook at every request (roles change after
 *	  the fact):
 *	  - the role exists, and the member given is a member of it: the role
 *		setting it, and at request time the key's owner_role (who must
 *		still be one) and the session user (as SET ROLE requires);
 *	  - neither it nor any role it is a member of (directly or not, with
 *		INHERIT or without: SET ROLE reaches them all) is a superuser, or
 *		has CREATEROLE, BYPASSRLS or REPLICATION;
 *	  - it is not apikey_verifier, and neither it nor a role it belongs to
 *		is apikey_admin, apikey_manager, or one of PostgreSQL's predefined
 *		roles that bypass privileges or reach the server's files and
 *		programs.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/pg_authid.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/rel.h"
#include "utils/syscache.h"

#include "common.h"
#include "dbrole.h"
#include "keyformat.h"

/* roles a key's db_role may neither be nor belong to */
static const char *const forbidden_roles[] = {
	"apikey_admin",
	"apikey_manager",
	"pg_execute_server_program",
	"pg_read_server_files",
	"pg_write_server_files",
	"pg_read_all_data",
	"pg_write_all_data",
	NULL
};

/*
 * dangerous: why roleid is no role for a key, from its attributes and
 * memberships; NULL if none.
 */
static const char *
dangerous(Oid roleid)
{
	Relation	rel;
	SysScanDesc scan;
	HeapTuple	tup;
	const char *why = NULL;
	Oid			verifier = get_role_oid("apikey_verifier", true);

	if (roleid == verifier)
		return "it is the role apikey_verifier";

	rel = table_open(AuthIdRelationId, AccessShareLock);
	scan = systable_beginscan(rel, InvalidOid, false, NULL, 0, NULL);
	while (why == NULL && HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		Form_pg_authid r = (Form_pg_authid) GETSTRUCT(tup);
		int			i;

		if (r->oid != roleid && !is_member_of_role_nosuper(roleid, r->oid))
			continue;
		if (r->rolsuper)
			why = "it is, or is a member of, a superuser";
		else if (r->rolcreaterole)
			why = "it is, or is a member of, a role with CREATEROLE";
		else if (r->rolbypassrls)
			why = "it is, or is a member of, a role with BYPASSRLS";
		else if (r->rolreplication)
			why = "it is, or is a member of, a role with REPLICATION";
		for (i = 0; why == NULL && forbidden_roles[i] != NULL; i++)
			if (strcmp(NameStr(r->rolname), forbidden_roles[i]) == 0)
				why = psprintf("it is, or is a member of, %s", forbidden_roles[i]);
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return why;
}

/*
 * apikey_db_role_refusal: NULL if rolname may be used as a db_role with
 * member as a member of it; else why not, with the SQLSTATE to raise in
 * *sqlstate.  *roleid is set when the role exists.
 */
const char *
apikey_db_role_refusal(const char *rolname, Oid member, Oid *roleid,
					   int *sqlstate)
{
	const char *why;

	*sqlstate = ERRCODE_INSUFFICIENT_PRIVILEGE;
	*roleid = get_role_oid(rolname, true);
	if (!OidIsValid(*roleid))
	{
		*sqlstate = ERRCODE_UNDEFINED_OBJECT;
		return "the role does not exist";
	}
	why = dangerous(*roleid);
	if (why != NULL)
		return why;
	if (!OidIsValid(member) || !is_member_of_role(member, *roleid))
		return "the role that sets or holds the key is not a member of it";
	return NULL;
}

/*
 * apikey_db_role_validate: raise unless setter may give a key rolname as
 * its db_role.  A name that could be a key pasted into the wrong argument
 * is not quoted.
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
			 strlen(rolname) <= KF_PREFIX_MAX ?
			 errmsg("role \"%s\" cannot be an api key's db_role", rolname) :
			 errmsg("the role given cannot be an api key's db_role"),
			 errdetail("%c%s.", pg_toupper((unsigned char) why[0]), why + 1),
			 errhint("A db_role must exist, the role setting it must be a member of it, and it must not be or belong to a superuser, a CREATEROLE, BYPASSRLS or REPLICATION role, an apikey role or a predefined role that bypasses privileges.")));
}
