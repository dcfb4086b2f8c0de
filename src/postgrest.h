/*-------------------------------------------------------------------------
 *
 * postgrest.h
 *	  apikey.postgrest_pre_request(), PostgREST's db-pre-request hook, and
 *	  its settings (postgrest.c), and what a request costs a metered key
 *	  (postgrest_cost.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef APIKEY_POSTGREST_H
#define APIKEY_POSTGREST_H

#include "postgres.h"

extern void apikey_postgrest_init(void);

/* postgrest_cost.c */
extern void apikey_postgrest_cost_init(void);
extern int32 apikey_postgrest_cost(const char *path);

#endif							/* APIKEY_POSTGREST_H */
