/*-------------------------------------------------------------------------
 *
 * acting_role.c
 *	  Who is acting.  apikey_create and apikey_rotate run their statements
 *	  as the owner of apikey.keys (see create_rotate.c); while they do, this module
 *	  remembers the role that called them, so that the audit trigger can
 *	  record the caller and not the owner.  The remembered role is set and
 *	  cleared only by C code here, so SQL cannot forge it, and it is
 *	  forgotten on (sub)transaction abort along with the user switch.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"

#include "acting_role.h"
#include "common.h"

/* the caller of apikey_create/rotate while we run as acting_owner */
static Oid	acting_caller = InvalidOid;
static Oid	acting_owner = InvalidOid;

APIKEY_SQL_FUNCTION(apikey_acting_role);

static void
forget(void)
{
	acting_caller = InvalidOid;
	acting_owner = InvalidOid;
}

static void
xact_callback(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT)
		forget();
}

static void
subxact_callback(SubXactEvent event, SubTransactionId mySubid,
				 SubTransactionId parentSubid, void *arg)
{
	if (event == SUBXACT_EVENT_ABORT_SUB)
		forget();
}

/*
 * apikey_actor_init: register the abort callbacks (once per backend).
 */
void
apikey_actor_init(void)
{
	RegisterXactCallback(xact_callback, NULL);
	RegisterSubXactCallback(subxact_callback, NULL);
}

/*
 * actor_role: the role on whose behalf the current statement runs:
 * the caller inside a switch, current_user everywhere else.
 */
static Oid
actor_role(void)
{
	return apikey_actor_switched() ? acting_caller : GetUserId();
}

/*
 * switch_to: run as owner from now on, remembering the caller.  Returns
 * what switch_back needs to undo it.
 */
static ApikeyActorSwitch
switch_to(Oid owner)
{
	ApikeyActorSwitch saved;

	GetUserIdAndSecContext(&saved.userid, &saved.sec_context);
	saved.prev_caller = acting_caller;
	saved.prev_owner = acting_owner;
	/* switching again inside a switch keeps the original caller */
	acting_caller = actor_role();
	acting_owner = owner;
	SetUserIdAndSecContext(owner,
						   saved.sec_context | SECURITY_LOCAL_USERID_CHANGE);
	return saved;
}

/*
 * switch_back: back to the caller.
 */
static void
switch_back(ApikeyActorSwitch saved)
{
	SetUserIdAndSecContext(saved.userid, saved.sec_context);
	acting_caller = saved.prev_caller;
	acting_owner = saved.prev_owner;
}

/*
 * apikey_actor_begin / apikey_actor_end: switch to owner and connect to SPI
 * for the statements run on the caller's behalf; disconnect and switch back.
 */
ApikeyActorSwitch
apikey_actor_begin(Oid owner)
{
	ApikeyActorSwitch saved = switch_to(owner);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	return saved;
}

void
apikey_actor_end(ApikeyActorSwitch saved)
{
	SPI_finish();
	switch_back(saved);
}

/*
 * The statements run on a caller's behalf, prepared once per backend and
 * kept (SPI_keepplan): creating keys in bulk otherwise parsed and planned
 * the INSERT and the audit row's SELECT for every key.  Keyed by the
 * statement text's address (the callers pass literals) and the argument
 * types; the plan cache re-plans them after DDL, as for any prepared
 * statement.
 */
#define ACTOR_PLANS 8
#define ACTOR_MAX_ARGS 16

typedef struct ActorPlan
{
	const char *sql;
	int			nargs;
	Oid			argtypes[ACTOR_MAX_ARGS];
	SPIPlanPtr	plan;
} ActorPlan;

static ActorPlan actor_plans[ACTOR_PLANS];

/*
 * actor_plan: the kept plan of sql with these argument types, prepared on
 * first use (or a one-off plan if the statement cannot be kept).
 */
static SPIPlanPtr
actor_plan(const char *sql, int nargs, Oid *argtypes)
{
	ActorPlan  *slot = NULL;
	SPIPlanPtr	plan;
	int			i;

	for (i = 0; i < ACTOR_PLANS; i++)
	{
		ActorPlan  *p = &actor_plans[i];

		if (p->sql == sql && p->nargs == nargs &&
			memcmp(p->argtypes, argtypes, sizeof(Oid) * nargs) == 0)
			return p->plan;
		/* the same statement with other types (a re-created row type) */
		if (slot == NULL && (p->sql == NULL || p->sql == sql))
			slot = p;
	}
	plan = SPI_prepare(sql, nargs, argtypes);
	if (plan == NULL)
		elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
	if (slot == NULL || nargs > ACTOR_MAX_ARGS || SPI_keepplan(plan) != 0)
		return plan;
	if (slot->plan != NULL)
		SPI_freeplan(slot->plan);
	slot->sql = sql;
	slot->nargs = nargs;
	memcpy(slot->argtypes, argtypes, sizeof(Oid) * nargs);
	slot->plan = plan;
	return plan;
}

/*
 * apikey_actor_execute: run a statement on the caller's behalf, through
 * its kept plan.  Errors are re-raised without their DETAIL: a statement
 * run as the owner is not limited by column privileges, so a constraint
 * violation's "Failing row contains (...)" would show the hashes.
 */
int
apikey_actor_execute(const char *sql, int nargs, Oid *argtypes,
					 Datum *values, const char *nulls, long count)
{
	MemoryContext cxt = CurrentMemoryContext;
	int			ret = 0;

	PG_TRY();
	{
		ret = SPI_execute_plan(actor_plan(sql, nargs, argtypes), values, nulls,
							   false, count);
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		edata->detail = NULL;
		edata->detail_log = NULL;
		ReThrowError(edata);
	}
	PG_END_TRY();
	return ret;
}

/*
 * apikey_actor_switched: true while running as the owner on a caller's
 * behalf (inside apikey_create, apikey_rotate or the audit trigger).
 */
bool
apikey_actor_switched(void)
{
	return OidIsValid(acting_caller) && GetUserId() == acting_owner;
}

/*
 * apikey_role_name: a role's name as a name datum.
 */
Datum
apikey_role_name(Oid role)
{
	return DirectFunctionCall1(namein,
							   CStringGetDatum(GetUserNameFromId(role, false)));
}

/*
 * apikey_actor_role: the role the current statement acts for (C face of
 * actor_role, for checks that must judge the caller, not the owner).
 */
Oid
apikey_actor_role(void)
{
	return actor_role();
}

/*
 * apikey_acting_role() returns name: SQL face of actor_role.
 */
Datum
apikey_acting_role(PG_FUNCTION_ARGS)
{
	PG_RETURN_DATUM(apikey_role_name(actor_role()));
}

/*
 * apikey_is_admin: superusers and members of apikey_admin manage every
 * key and see every key's figures.
 */
bool
apikey_is_admin(Oid role)
{
	Oid			admin = get_role_oid("apikey_admin", true);

	return superuser_arg(role) ||
		(OidIsValid(admin) && has_privs_of_role(role, admin));
}
