/*-------------------------------------------------------------------------
 *
 * utility.c
 *	  A ProcessUtility hook that keeps one tenant from stopping every
 *	  other's verifications: LOCK TABLE of apikey's tables in a mode that
 *	  conflicts with what verification, apikey_create, apikey_rotate or the
 *	  worker take (stronger than ROW EXCLUSIVE) is refused to every role but
 *	  superusers.  Managers hold UPDATE and DELETE on apikey.keys (plain SQL
 *	  administration), which PostgreSQL counts as enough for any LOCK mode.
 *
 *	  The hook is installed in every backend that loads the library: in
 *	  all of them with shared_preload_libraries (or session_preload_
 *	  libraries), otherwise only in sessions that used apikey already.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "storage/lockdefs.h"
#include "tcop/utility.h"
#include "utils/lsyscache.h"

#include "apikey.h"

static ProcessUtility_hook_type prev_ProcessUtility = NULL;

/*
 * check_lock: refuse LOCK TABLE ... IN a mode stronger than ROW EXCLUSIVE
 * on a relation of apikey's schema, unless the user is a superuser.
 */
static void
check_lock(LockStmt *stmt)
{
	Oid			nsp;
	ListCell   *lc;

	if (stmt->mode <= RowExclusiveLock || superuser())
		return;
	nsp = apikey_extension_schema();
	if (!OidIsValid(nsp))
		return;
	foreach(lc, stmt->relations)
	{
		RangeVar   *rv = lfirst_node(RangeVar, lc);
		Oid			relid = RangeVarGetRelid(rv, NoLock, true);

		if (OidIsValid(relid) && get_rel_namespace(relid) == nsp)
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("LOCK TABLE %s in a mode stronger than ROW EXCLUSIVE is reserved to superusers",
							get_rel_name(relid)),
					 errdetail("Such a lock would stop every other tenant's keys from verifying."),
					 errhint("Lock the rows you change instead (SELECT ... FOR UPDATE).")));
	}
}

static void
apikey_process_utility(PlannedStmt *pstmt, const char *queryString,
					   bool readOnlyTree, ProcessUtilityContext context,
					   ParamListInfo params, QueryEnvironment *queryEnv,
					   DestReceiver *dest, QueryCompletion *qc)
{
	if (IsA(pstmt->utilityStmt, LockStmt))
		check_lock((LockStmt *) pstmt->utilityStmt);

	if (prev_ProcessUtility)
		prev_ProcessUtility(pstmt, queryString, readOnlyTree, context,
							params, queryEnv, dest, qc);
	else
		standard_ProcessUtility(pstmt, queryString, readOnlyTree, context,
								params, queryEnv, dest, qc);
}

/*
 * apikey_utility_init: install the hook (once per backend).
 */
void
apikey_utility_init(void)
{
	prev_ProcessUtility = ProcessUtility_hook;
	ProcessUtility_hook = apikey_process_utility;
}
