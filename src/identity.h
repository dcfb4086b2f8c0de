/*-------------------------------------------------------------------------
 *
 * identity.h
 *	  The request identity the PostgREST hook records (identity.c):
 *	  apikey.key_id, apikey.owner and apikey.scopes, and the SQL helpers
 *	  that read it.
 *
 *-------------------------------------------------------------------------
 */
#ifndef APIKEY_IDENTITY_H
#define APIKEY_IDENTITY_H

#include "postgres.h"

extern void apikey_identity_init(void);
extern void apikey_identity_set(int64 key_id, const char *owner, Datum scopes);
extern bool apikey_identity_present(void);

#endif							/* APIKEY_IDENTITY_H */
