/*-------------------------------------------------------------------------
 *
 * codes.h
 *	  The result codes of a verification (codes.c): their names and HTTP
 *	  statuses.  At the bottom of the dependency graph: the verify path,
 *	  shared memory, the worker and the PostgREST hook all use it, and it
 *	  uses none of them.
 *
 *-------------------------------------------------------------------------
 */
#ifndef APIKEY_CODES_H
#define APIKEY_CODES_H

#include "postgres.h"

typedef enum ApikeyCode
{
	APIKEY_VALID = 0,
	APIKEY_MALFORMED,
	APIKEY_NOT_FOUND,
	APIKEY_DISABLED,
	APIKEY_EXPIRED,
	APIKEY_INSUFFICIENT_SCOPE,
	APIKEY_IP_DENIED,
	APIKEY_RESOURCE_DENIED,
	APIKEY_RATE_LIMITED,
	APIKEY_QUOTA_EXCEEDED		/* 1.2 */
} ApikeyCode;

#define APIKEY_NUM_CODES (APIKEY_QUOTA_EXCEEDED + 1)

extern const char *apikey_code_name(ApikeyCode code);
extern int	apikey_code_http_status(ApikeyCode code);
extern Datum apikey_code_text(ApikeyCode code);

#endif							/* APIKEY_CODES_H */
