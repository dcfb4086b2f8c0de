/*-------------------------------------------------------------------------
 *
 * dbrole.h
 *	  Which database roles a key may carry as its db_role (dbrole.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef APIKEY_DBROLE_H
#define APIKEY_DBROLE_H

#include "postgres.h"

extern void apikey_dbrole_init(void);
extern const char *apikey_db_role_refusal(const char *rolname, Oid member,
										  Oid *roleid, int *sqlstate);
extern void apikey_db_role_validate(const char *rolname, Oid setter);

#endif							/* APIKEY_DBROLE_H */
