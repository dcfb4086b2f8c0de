/*-------------------------------------------------------------------------
 *
 * plan_sql.h
 *	  The SQL side of usage plans (plan_sql.c): the checks apikey_create
 *	  makes of a plan.
 *
 *-------------------------------------------------------------------------
 */
#ifndef APIKEY_PLAN_SQL_H
#define APIKEY_PLAN_SQL_H

#include "fmgr.h"

extern void apikey_plan_check(FunctionCallInfo fcinfo, int first, Oid caller);
extern void apikey_require_tracker_for_credits(void);

#endif							/* APIKEY_PLAN_SQL_H */
