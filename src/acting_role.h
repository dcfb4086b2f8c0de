/*-------------------------------------------------------------------------
 *
 * acting_role.h
 *	  Who acts (acting_role.c): the switch to the owner of apikey.keys
 *	  around apikey_create's and apikey_rotate's own statements, the role
 *	  the audit records as acting, and who counts as an administrator.
 *
 *-------------------------------------------------------------------------
 */
#ifndef APIKEY_ACTING_ROLE_H
#define APIKEY_ACTING_ROLE_H

#include "postgres.h"

typedef struct ApikeyActorSwitch
{
	Oid			userid;
	int			sec_context;
	Oid			prev_caller;
	Oid			prev_owner;
} ApikeyActorSwitch;

extern void apikey_actor_init(void);
extern ApikeyActorSwitch apikey_actor_begin(Oid owner);
extern void apikey_actor_end(ApikeyActorSwitch saved);
extern int	apikey_actor_execute(const char *sql, int nargs, Oid *argtypes,
								 Datum *values, const char *nulls, long count);
extern Datum apikey_role_name(Oid role);
extern bool apikey_actor_switched(void);
extern Oid	apikey_actor_role(void);
extern bool apikey_is_admin(Oid role);

#endif							/* APIKEY_ACTING_ROLE_H */
