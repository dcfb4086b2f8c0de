/*-------------------------------------------------------------------------
 *
 * codes.c
 *	  The result codes of a verification: name and HTTP status of each.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/builtins.h"
#include "utils/memutils.h"

#include "codes.h"

static const struct
{
	const char *name;
	int			http_status;
}			codes[APIKEY_NUM_CODES] =
{
	[APIKEY_VALID] = {"VALID", 200},
	[APIKEY_MALFORMED] = {"MALFORMED", 401},
	[APIKEY_NOT_FOUND] = {"NOT_FOUND", 401},
	[APIKEY_DISABLED] = {"DISABLED", 401},
	[APIKEY_EXPIRED] = {"EXPIRED", 401},
	[APIKEY_INSUFFICIENT_SCOPE] = {"INSUFFICIENT_SCOPE", 403},
	[APIKEY_IP_DENIED] = {"IP_DENIED", 403},
	[APIKEY_RESOURCE_DENIED] = {"RESOURCE_DENIED", 404},
	[APIKEY_RATE_LIMITED] = {"RATE_LIMITED", 429},
	[APIKEY_QUOTA_EXCEEDED] = {"QUOTA_EXCEEDED", 429},
};

const char *
apikey_code_name(ApikeyCode code)
{
	return codes[code].name;
}

int
apikey_code_http_status(ApikeyCode code)
{
	return codes[code].http_status;
}

/*
 * apikey_code_text: the code as a text datum, made once per backend.
 */
Datum
apikey_code_text(ApikeyCode code)
{
	static text *texts[APIKEY_NUM_CODES];

	if (texts[code] == NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

		texts[code] = cstring_to_text(codes[code].name);
		MemoryContextSwitchTo(old);
	}
	return PointerGetDatum(texts[code]);
}
