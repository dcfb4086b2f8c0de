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
#include "catalog/pg_auth_members.h"
#include "catalog/pg_authid.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/rel.h"
#include "utils/catcache.h"
#include "utils/inval.h"
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
 * Why a role is no role for a key, by reason: a per-backend cache of the
 * last roles judged (the hook judges the key's db_role at every request),
 * emptied whenever pg_authid or pg_auth_members changes.
 */
enum
{
	SAFE = -1,
	IS_VERIFIER = -2,
	IS_SUPERUSER = -3,
	HAS_CREATEROLE = -4,
	HAS_BYPASSRLS = -5,
	HAS_REPLICATION = -6
	/* 0..: a member of forbidden_roles[n] */
};

#define JUDGED_CACHE 16
static struct
{
	Oid			roleid;
	int			reason;
}			judged[JUDGED_CACHE];
static int	njudged = 0;
static int	next_judged = 0;

static void
forget_judged(Datum arg, int cacheid, uint32 hashvalue)
{
	njudged = 0;
}

/*
 * apikey_dbrole_init: empty the cache on every change to roles or
 * memberships (once per backend).
 */
void
apikey_dbrole_init(void)
{
	CacheRegisterSyscacheCallback(AUTHOID, forget_judged, (Datum) 0);
	CacheRegisterSyscacheCallback(AUTHMEMROLEMEM, forget_judged, (Datum) 0);
}

/* role_reason: why this one role (not its memberships) disqualifies */
static int
role_reason(Oid role)
{
	HeapTuple	tup = SearchSysCache1(AUTHOID, ObjectIdGetDatum(role));
	Form_pg_authid r;
	int			reason = SAFE;
	int			i;

	if (!HeapTupleIsValid(tup))
		return SAFE;
	r = (Form_pg_authid) GETSTRUCT(tup);
	if (r->rolsuper)
		reason = IS_SUPERUSER;
	else if (r->rolcreaterole)
		reason = HAS_CREATEROLE;
	else if (r->rolbypassrls)
		reason = HAS_BYPASSRLS;
	else if (r->rolreplication)
		reason = HAS_REPLICATION;
	for (i = 0; reason == SAFE && forbidden_roles[i] != NULL; i++)
		if (strcmp(NameStr(r->rolname), forbidden_roles[i]) == 0)
			reason = i;
	ReleaseSysCache(tup);
	return reason;
}

/*
 * judge: the reason roleid, or any role it is a member of (directly or
 * not, with INHERIT or without), disqualifies it.  Walks the memberships
 * from roleid up (pg_auth_members through the syscache), so it costs the
 * number of roles reached, not the number of roles in the cluster.
 */
static int
judge(Oid roleid)
{
	List	   *todo;
	List	   *seen = NIL;
	int			reason = SAFE;
	int			i;

	for (i = 0; i < njudged; i++)
		if (judged[i].roleid == roleid)
			return judged[i].reason;

	if (roleid == get_role_oid("apikey_verifier", true))
		reason = IS_VERIFIER;
	todo = list_make1_oid(roleid);
	while (reason == SAFE && todo != NIL)
	{
		Oid			role = linitial_oid(todo);
		CatCList   *members;

		todo = list_delete_first(todo);
		if (list_member_oid(seen, role))
			continue;
		seen = lappend_oid(seen, role);
		reason = role_reason(role);
		members = SearchSysCacheList1(AUTHMEMMEMROLE, ObjectIdGetDatum(role));
		for (i = 0; i < members->n_members; i++)
		{
			Form_pg_auth_members m = (Form_pg_auth_members) GETSTRUCT(&members->members[i]->tuple);

			todo = lappend_oid(todo, m->roleid);
		}
		ReleaseSysCacheList(members);
	}
	list_free(todo);
	list_free(seen);

	judged[next_judged].roleid = roleid;
	judged[next_judged].reason = reason;
	next_judged = (next_judged + 1) % JUDGED_CACHE;
	njudged = Min(njudged + 1, JUDGED_CACHE);
	return reason;
}

/*
 * dangerous: why roleid is no role for a key, from its attributes and
 * memberships; NULL if none.
 */
static const char *
dangerous(Oid roleid)
{
	int			reason = judge(roleid);

	switch (reason)
	{
		case SAFE:
			return NULL;
		case IS_VERIFIER:
			return "it is the role apikey_verifier";
		case IS_SUPERUSER:
			return "it is, or is a member of, a superuser";
		case HAS_CREATEROLE:
			return "it is, or is a member of, a role with CREATEROLE";
		case HAS_BYPASSRLS:
			return "it is, or is a member of, a role with BYPASSRLS";
		case HAS_REPLICATION:
			return "it is, or is a member of, a role with REPLICATION";
		default:
			return psprintf("it is, or is a member of, %s", forbidden_roles[reason]);
	}
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
