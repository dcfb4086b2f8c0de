/*-------------------------------------------------------------------------
 *
 * guc.c
 *	  The general apikey.* configuration settings; the PostgREST hook's
 *	  live in postgrest.c, the request identity's in identity.c.
 *
 *	apikey.default_prefix	prefix for keys created without one (USERSET:
 *							it only chooses a visible label)
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/guc.h"

#include "apikey.h"

char	   *apikey_default_prefix = NULL;

/*
 * check_default_prefix: GUC check hook; the prefix must be one we can mint.
 */
static bool
check_default_prefix(char **newval, void **extra, GucSource source)
{
	if (*newval == NULL || !kf_prefix_valid(*newval, strlen(*newval)))
	{
		GUC_check_errcode(ERRCODE_INVALID_PARAMETER_VALUE);
		/* the default message quotes the value: not if it could be a key */
		if (*newval != NULL && strlen(*newval) > KF_PREFIX_MAX)
			GUC_check_errmsg("invalid value for parameter \"%s\"",
							 "apikey.default_prefix");
		GUC_check_errdetail(APIKEY_PREFIX_RULE);
		return false;
	}
	return true;
}

/*
 * apikey_guc_init: define the general apikey.* settings (the hook's and the
 * identity's are defined by postgrest.c and identity.c).
 */
void
apikey_guc_init(void)
{
	DefineCustomStringVariable("apikey.default_prefix",
							   "Prefix of keys created without an explicit prefix.",
							   NULL,
							   &apikey_default_prefix,
							   "ak",
							   PGC_USERSET,
							   0,
							   check_default_prefix,
							   NULL,
							   NULL);
}
