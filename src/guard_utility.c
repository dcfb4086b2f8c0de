/*-------------------------------------------------------------------------
 *
 * guard_utility.c
 *	  A ProcessUtility hook that keeps one tenant from stopping every
 *	  other's verifications by locking apikey's tables: refused to every
 *	  role but superusers are LOCK TABLE stronger than ROW EXCLUSIVE of
 *	  apikey's tables or of views over them (managers hold UPDATE and
 *	  DELETE on apikey.keys for plain SQL administration, which PostgreSQL
 *	  counts as enough for any LOCK mode, also through a view they own), and,
 *	  to anyone but the relation's owner, every statement that locks one of
 *	  apikey's tables or indexes before PostgreSQL checks who is asking:
 *	  CREATE RULE, CREATE TRIGGER, foreign keys, a table (foreign tables
 *	  too) created as a partition or child of one (PARTITION OF, INHERITS),
 *	  ALTER TABLE or ALTER INDEX ... ATTACH / DETACH PARTITION, INHERIT and
 *	  NO INHERIT naming one, and ALTER INDEX / MATERIALIZED VIEW ...
 *	  [NO] DEPENDS ON EXTENSION.  The statements that name one of apikey's relations as
 *	  their own target (ALTER, DROP, TRUNCATE, CREATE INDEX, REINDEX,
 *	  CLUSTER, VACUUM, CREATE POLICY, ...) check ownership before they lock
 *	  (RangeVarGetRelidExtended's callbacks), and COMMENT, SECURITY LABEL,
 *	  CREATE STATISTICS and the like lock in SHARE UPDATE EXCLUSIVE mode at
 *	  most, which no verification, creation or rotation waits for:
 *	  test/tap/010_lock_guard.pl runs every one of them against a held lock.
 *
 *	  The hook is installed in every backend that loads the library: in
 *	  all of them with shared_preload_libraries (or session_preload_
 *	  libraries), otherwise only in sessions that used apikey already.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_depend.h"
#include "catalog/pg_rewrite.h"
#include "rewrite/rewriteSupport.h"
#include "utils/acl.h"
#include "utils/fmgroids.h"
#include "utils/rel.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "storage/lockdefs.h"
#include "tcop/utility.h"
#include "utils/lsyscache.h"

#include "catalog.h"
#include "common.h"
#include "compat.h"
#include "guards.h"

static ProcessUtility_hook_type prev_ProcessUtility = NULL;

/*
 * apikey_relation: relid is one of apikey's relations (in its schema), or a
 * view that reads one, directly or through other views.  depth bounds the
 * walk through views.
 */
static bool
apikey_relation(Oid relid, Oid nsp, int depth)
{
	Relation	rel;
	ScanKeyData key[2];
	SysScanDesc scan;
	HeapTuple	tup;
	bool		found = false;

	if (!OidIsValid(relid))
		return false;
	if (get_rel_namespace(relid) == nsp)
		return true;
	if (get_rel_relkind(relid) != RELKIND_VIEW || depth > 16)
		return false;

	/* a view: what its rewrite rule depends on */
	rel = table_open(DependRelationId, AccessShareLock);
	ScanKeyInit(&key[0], Anum_pg_depend_classid, BTEqualStrategyNumber,
				F_OIDEQ, ObjectIdGetDatum(RewriteRelationId));
	ScanKeyInit(&key[1], Anum_pg_depend_objid, BTEqualStrategyNumber,
				F_OIDEQ, ObjectIdGetDatum(get_rewrite_oid(relid, ViewSelectRuleName, true)));
	scan = systable_beginscan(rel, DependDependerIndexId, true, NULL, 2, key);
	while (!found && HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		Form_pg_depend d = (Form_pg_depend) GETSTRUCT(tup);

		if (d->refclassid == RelationRelationId && d->refobjid != relid)
			found = apikey_relation(d->refobjid, nsp, depth + 1);
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return found;
}

/* refuse: the statement would take a lock that stops every tenant */
static void
refuse(const char *what, Oid relid)
{
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("%s on %s is reserved to its owner and superusers", what,
					get_rel_name(relid)),
			 errdetail("It takes a lock on one of apikey's tables that would stop every other tenant's keys from verifying."),
			 errhint("Lock the rows you change instead (SELECT ... FOR UPDATE).")));
}

/*
 * target: the relation rv names, if it is (or reads) one of apikey's
 * relations and the current user does not own it; else InvalidOid.
 * Looked up without a lock: the point is to refuse before PostgreSQL
 * takes one (CREATE RULE, CREATE TRIGGER and a foreign key lock their
 * table before they check who is asking).
 */
static Oid
target(RangeVar *rv, Oid nsp)
{
	Oid			relid;

	if (rv == NULL)
		return InvalidOid;
	relid = RangeVarGetRelid(rv, NoLock, true);
	if (!apikey_relation(relid, nsp, 0) || apikey_relation_owner(relid, GetUserId()))
		return InvalidOid;
	return relid;
}

/* check_constraints: a FOREIGN KEY referencing one of apikey's tables */
static void
check_constraints(List *constraints, Oid nsp)
{
	ListCell   *lc;

	foreach(lc, constraints)
	{
		Node	   *n = lfirst(lc);
		Oid			relid;

		if (IsA(n, Constraint) && ((Constraint *) n)->contype == CONSTR_FOREIGN &&
			OidIsValid(relid = target(((Constraint *) n)->pktable, nsp)))
			refuse("a foreign key", relid);
	}
}

/*
 * check_statement: refuse, to non-superusers, what would lock apikey's
 * tables (or views over them) in a mode that stops verification, creation
 * or rotation for everyone: LOCK TABLE stronger than ROW EXCLUSIVE, and
 * CREATE RULE, CREATE TRIGGER or a foreign key on tables the user does not
 * own.
 */
static void
check_statement(Node *stmt)
{
	Oid			nsp;
	Oid			relid;
	ListCell   *lc;

	if (!(IsA(stmt, LockStmt) || IsA(stmt, RuleStmt) || IsA(stmt, CreateTrigStmt) ||
		  IsA(stmt, CreateStmt) || IsA(stmt, CreateForeignTableStmt) ||
		  IsA(stmt, AlterTableStmt) || IsA(stmt, AlterObjectDependsStmt)) ||
		superuser())
		return;
	nsp = apikey_extension_schema();
	if (!OidIsValid(nsp))
		return;

	switch (nodeTag(stmt))
	{
		case T_LockStmt:
			if (((LockStmt *) stmt)->mode <= RowExclusiveLock)
				break;
			foreach(lc, ((LockStmt *) stmt)->relations)
			{
				relid = RangeVarGetRelid(lfirst_node(RangeVar, lc), NoLock, true);
				if (apikey_relation(relid, nsp, 0))
					refuse("LOCK TABLE in a mode stronger than ROW EXCLUSIVE", relid);
			}
			break;
		case T_RuleStmt:
			if (OidIsValid(relid = target(((RuleStmt *) stmt)->relation, nsp)))
				refuse("CREATE RULE", relid);
			break;
		case T_CreateTrigStmt:
			if (OidIsValid(relid = target(((CreateTrigStmt *) stmt)->relation, nsp)) ||
				OidIsValid(relid = target(((CreateTrigStmt *) stmt)->constrrel, nsp)))
				refuse("CREATE TRIGGER", relid);
			break;
		case T_CreateForeignTableStmt:	/* a CreateStmt underneath */
		case T_CreateStmt:
			/* PARTITION OF takes ACCESS EXCLUSIVE on the parent first */
			foreach(lc, ((CreateStmt *) stmt)->inhRelations)
				if (OidIsValid(relid = target(lfirst_node(RangeVar, lc), nsp)))
					refuse(((CreateStmt *) stmt)->partbound != NULL ?
						   "CREATE TABLE ... PARTITION OF" : "CREATE TABLE ... INHERITS", relid);
			check_constraints(((CreateStmt *) stmt)->constraints, nsp);
			foreach(lc, ((CreateStmt *) stmt)->tableElts)
				if (IsA(lfirst(lc), ColumnDef))
					check_constraints(((ColumnDef *) lfirst(lc))->constraints, nsp);
			break;
		case T_AlterTableStmt:
			foreach(lc, ((AlterTableStmt *) stmt)->cmds)
			{
				AlterTableCmd *cmd = lfirst_node(AlterTableCmd, lc);

				if (cmd->subtype == AT_AddConstraint && cmd->def != NULL)
					check_constraints(list_make1(cmd->def), nsp);
				else if ((cmd->subtype == AT_AttachPartition ||
						  cmd->subtype == AT_DetachPartition ||
						  cmd->subtype == AT_DetachPartitionFinalize) &&
						 cmd->def != NULL && IsA(cmd->def, PartitionCmd) &&
						 OidIsValid(relid = target(((PartitionCmd *) cmd->def)->name, nsp)))
					refuse(cmd->subtype == AT_AttachPartition ? "ATTACH PARTITION" : "DETACH PARTITION",
						   relid);
				else if ((cmd->subtype == AT_AddInherit || cmd->subtype == AT_DropInherit) &&
						 cmd->def != NULL && IsA(cmd->def, RangeVar) &&
						 OidIsValid(relid = target((RangeVar *) cmd->def, nsp)))
					refuse(cmd->subtype == AT_AddInherit ? "INHERIT" : "NO INHERIT", relid);
				else if (cmd->subtype == AT_AddColumn && cmd->def != NULL &&
						 IsA(cmd->def, ColumnDef))
					check_constraints(((ColumnDef *) cmd->def)->constraints, nsp);
			}
			break;
		case T_AlterObjectDependsStmt:
			/* ALTER INDEX / MATERIALIZED VIEW ... DEPENDS ON EXTENSION */
			if (OidIsValid(relid = target(((AlterObjectDependsStmt *) stmt)->relation, nsp)))
				refuse("DEPENDS ON EXTENSION", relid);
			break;
		default:
			break;
	}
}

static void
apikey_process_utility(PlannedStmt *pstmt, const char *queryString,
					   bool readOnlyTree, ProcessUtilityContext context,
					   ParamListInfo params, QueryEnvironment *queryEnv,
					   DestReceiver *dest, QueryCompletion *qc)
{
	check_statement(pstmt->utilityStmt);

	if (prev_ProcessUtility)
		prev_ProcessUtility(pstmt, queryString, readOnlyTree, context,
							params, queryEnv, dest, qc);
	else
		standard_ProcessUtility(pstmt, queryString, readOnlyTree, context,
								params, queryEnv, dest, qc);
}

/*
 * apikey_guard_utility_init: install the hook (once per backend).
 */
void
apikey_guard_utility_init(void)
{
	prev_ProcessUtility = ProcessUtility_hook;
	ProcessUtility_hook = apikey_process_utility;
}
