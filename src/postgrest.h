/*-------------------------------------------------------------------------
 *
 * postgrest.h
 *	  apikey.postgrest_pre_request(), PostgREST's db-pre-request hook, and
 *	  its settings (postgrest.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef APIKEY_POSTGREST_H
#define APIKEY_POSTGREST_H

extern void apikey_postgrest_init(void);

#endif							/* APIKEY_POSTGREST_H */
