/*-------------------------------------------------------------------------
 *
 * identity.c
 *	  The identity of the current request: the key that the PostgREST hook
 *	  authenticated in this transaction (its id, owner and scopes), and the
 *	  SQL helpers that read it: apikey.current_key_id(),
 *	  apikey.current_owner() and apikey.has_scope(text).
 *
 *	  The identity is held in three settings, apikey.key_id, apikey.owner
 *	  and apikey.scopes, so that current_setting() shows it.  They are
 *	  superuser-only (PGC_SUSET: no request's role may SET or RESET them),
 *	  and their check hooks accept a value only from apikey_identity_set()
 *	  below, or when a parallel worker receives its leader's values: SET,
 *	  set_config(), ALTER ROLE/DATABASE ... SET and PGOPTIONS are refused
 *	  even to superusers.  (PGC_INTERNAL would refuse them too, but such
 *	  settings are not passed to parallel workers, where a policy using
 *	  current_setting() would then see no identity.)  apikey_identity_set()
 *	  always sets them LOCAL, so the GUC machinery drops them at commit, at
 *	  abort, and at the abort of a subtransaction that set them: a pooled
 *	  connection never carries one request's identity into the next
 *	  transaction.
 *
 *	  Before this library is loaded into a session, PostgreSQL accepts any
 *	  "apikey.*" name as a placeholder; loading the library discards such
 *	  values (with a WARNING), and the helpers always load it.  So the
 *	  helpers are authoritative; current_setting() is only where the
 *	  library is loaded (the hook, any helper call, or preloading does).
 *
 *	  The check hooks parse each value once into an "extra" block that the
 *	  GUC machinery keeps in step with the value (including on revert), and
 *	  the assign hooks bump a generation counter; the helpers keep their
 *	  answer per call site (fn_extra) until it changes, so a row-level
 *	  security policy evaluated once per row costs a comparison per row.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <limits.h>

#include "access/parallel.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"

#include "common.h"
#include "compat.h"
#include "identity.h"
#include "scope.h"
#include "values.h"

APIKEY_SQL_FUNCTION(apikey_current_key_id);
APIKEY_SQL_FUNCTION(apikey_current_owner);
APIKEY_SQL_FUNCTION(apikey_has_scope);

/* the settings' string values (owned by the GUC machinery) */
static char *key_id_setting = NULL;
static char *owner_setting = NULL;
static char *scopes_setting = NULL;

/* parsed forms, kept in step with the values by the assign hooks */
typedef struct KeyIdExtra
{
	bool		set;
	int64		key_id;
} KeyIdExtra;

typedef struct ScopesExtra
{
	int			n;
	int			off[APIKEY_MAX_SCOPES];
	int			len[APIKEY_MAX_SCOPES];
	char		data[FLEXIBLE_ARRAY_MEMBER];
} ScopesExtra;

/* true only while apikey_identity_set() and friends change the settings */
static bool setting_identity = false;

static const KeyIdExtra *current_key = NULL;
static const ScopesExtra *current_scopes = NULL;

/*
 * Bumped whenever any of the three settings changes (set, or reverted by
 * the GUC machinery), so the helpers can keep answers per call site.
 */
static uint64 identity_generation = 1;

/* a helper's answer, kept in fn_extra while the identity is unchanged */
typedef struct HelperCache
{
	uint64		generation;
	bool		isnull;
	bool		result;			/* has_scope */
	text	   *value;			/* current_owner; has_scope: the scope asked */
} HelperCache;

/*
 * set_by_us: a value of an identity setting may come only from this
 * module, from a parallel worker's copy of its leader's values, or be the
 * built-in default.
 */
static bool
set_by_us(const char *name, GucSource source)
{
	if (setting_identity || InitializingParallelWorker || source == PGC_S_DEFAULT)
		return true;
	GUC_check_errcode(ERRCODE_CANT_CHANGE_RUNTIME_PARAM);
	GUC_check_errmsg("parameter \"%s\" can only be set by apikey.postgrest_pre_request()", name);
	return false;
}

/*
 * check_key_id: '' (no key) or a key id.
 */
static bool
check_key_id(char **newval, void **extra, GucSource source)
{
	KeyIdExtra *e;
	char	   *end;

	if (!set_by_us("apikey.key_id", source))
		return false;
	e = apikey_guc_extra_alloc(sizeof(KeyIdExtra));
	if (e == NULL)
		return false;
	e->set = (*newval != NULL && **newval != '\0');
	e->key_id = 0;
	if (e->set)
	{
		errno = 0;
		e->key_id = strtoll(*newval, &end, 10);
		if (errno != 0 || *end != '\0' || e->key_id <= 0)
		{
			apikey_guc_extra_free(e);
			GUC_check_errdetail("A key id is a positive integer.");
			return false;
		}
	}
	*extra = e;
	return true;
}

static void
assign_key_id(const char *newval, void *extra)
{
	current_key = (const KeyIdExtra *) extra;
	identity_generation++;
}

static bool
check_owner(char **newval, void **extra, GucSource source)
{
	return set_by_us("apikey.owner", source);
}

static void
assign_owner(const char *newval, void *extra)
{
	identity_generation++;
}

/*
 * check_scopes: '' or '{a,b,...}', the form apikey_identity_set writes
 * (scopes never need quoting: they are [a-z0-9_.:*-]).
 */
static bool
check_scopes(char **newval, void **extra, GucSource source)
{
	const char *s = *newval ? *newval : "";
	size_t		len = strlen(s);
	ScopesExtra *e;
	size_t		i;
	size_t		start;

	if (!set_by_us("apikey.scopes", source))
		return false;
	e = apikey_guc_extra_alloc(offsetof(ScopesExtra, data) + len + 1);
	if (e == NULL)
		return false;
	e->n = 0;
	memcpy(e->data, s, len + 1);
	if (len >= 2 && s[0] == '{' && s[len - 1] == '}')
	{
		start = 1;
		for (i = 1; i < len; i++)
		{
			if (s[i] != ',' && s[i] != '}')
				continue;
			if (i > start)
			{
				if (e->n == APIKEY_MAX_SCOPES ||
					!scope_valid(s + start, i - start))
				{
					apikey_guc_extra_free(e);
					GUC_check_errdetail("The value must be a list of valid scopes.");
					return false;
				}
				e->off[e->n] = (int) start;
				e->len[e->n] = (int) (i - start);
				e->n++;
			}
			start = i + 1;
		}
	}
	else if (len != 0)
	{
		apikey_guc_extra_free(e);
		GUC_check_errdetail("The value must be a list of valid scopes.");
		return false;
	}
	*extra = e;
	return true;
}

static void
assign_scopes(const char *newval, void *extra)
{
	current_scopes = (const ScopesExtra *) extra;
	identity_generation++;
}

/*
 * apikey_identity_init: define the three settings.
 */
void
apikey_identity_init(void)
{
	DefineCustomStringVariable("apikey.key_id",
							   "Id of the API key the PostgREST hook authenticated in this transaction.",
							   "Set only by apikey.postgrest_pre_request(); empty without a key.",
							   &key_id_setting,
							   "",
							   PGC_SUSET,
							   GUC_NOT_IN_SAMPLE | GUC_DISALLOW_IN_FILE | GUC_NO_RESET_ALL,
							   check_key_id,
							   assign_key_id,
							   NULL);
	DefineCustomStringVariable("apikey.owner",
							   "Owner id of the API key the PostgREST hook authenticated in this transaction.",
							   "Set only by apikey.postgrest_pre_request(); empty without a key or owner.",
							   &owner_setting,
							   "",
							   PGC_SUSET,
							   GUC_NOT_IN_SAMPLE | GUC_DISALLOW_IN_FILE | GUC_NO_RESET_ALL,
							   check_owner,
							   assign_owner,
							   NULL);
	DefineCustomStringVariable("apikey.scopes",
							   "Scopes of the API key the PostgREST hook authenticated in this transaction.",
							   "Set only by apikey.postgrest_pre_request(); empty without a key.",
							   &scopes_setting,
							   "",
							   PGC_SUSET,
							   GUC_NOT_IN_SAMPLE | GUC_DISALLOW_IN_FILE | GUC_NO_RESET_ALL,
							   check_scopes,
							   assign_scopes,
							   NULL);
}

/* set_local: SET LOCAL one of our settings, as only this module may */
static void
set_local(const char *name, const char *value)
{
	setting_identity = true;
	PG_TRY();
	{
		(void) set_config_option(name, value, PGC_SUSET, PGC_S_SESSION,
								 GUC_ACTION_LOCAL, true, 0, false);
	}
	PG_FINALLY();
	{
		setting_identity = false;
	}
	PG_END_TRY();
}

/*
 * apikey_identity_set: record key_id, owner (NULL: none) and scopes (a
 * valid text[]) as this transaction's identity.  key_id goes last: it is
 * what says a key was authenticated.
 */
void
apikey_identity_set(int64 key_id, const char *owner, Datum scopes)
{
	StringInfoData buf;
	text	  **elems;
	int			n;
	int			i;
	char		idbuf[32];

	initStringInfo(&buf);
	appendStringInfoChar(&buf, '{');
	n = apikey_text_elems(scopes, &elems);
	for (i = 0; i < n; i++)
	{
		if (i > 0)
			appendStringInfoChar(&buf, ',');
		appendBinaryStringInfo(&buf, VARDATA_ANY(elems[i]), VARSIZE_ANY_EXHDR(elems[i]));
	}
	appendStringInfoChar(&buf, '}');

	set_local("apikey.scopes", buf.data);
	set_local("apikey.owner", owner ? owner : "");
	snprintf(idbuf, sizeof(idbuf), INT64_FORMAT, key_id);
	set_local("apikey.key_id", idbuf);
	pfree(buf.data);
}

/* apikey_identity_present: a key was authenticated in this transaction */
bool
apikey_identity_present(void)
{
	return current_key != NULL && current_key->set;
}

/*
 * apikey.current_key_id() returns bigint: the authenticated key's id, or
 * NULL.
 */
Datum
apikey_current_key_id(PG_FUNCTION_ARGS)
{
	if (!apikey_identity_present())
		PG_RETURN_NULL();
	PG_RETURN_INT64(current_key->key_id);
}

/*
 * helper_cache: this call site's cache, or NULL if the identity changed
 * since it was filled (*cache is then a fresh one to fill).
 */
static HelperCache *
helper_cache(FunctionCallInfo fcinfo, HelperCache **cache)
{
	HelperCache *c = (HelperCache *) fcinfo->flinfo->fn_extra;

	if (c == NULL)
	{
		c = MemoryContextAllocZero(fcinfo->flinfo->fn_mcxt, sizeof(HelperCache));
		fcinfo->flinfo->fn_extra = c;
	}
	*cache = c;
	return c->generation == identity_generation ? c : NULL;
}

/*
 * apikey.current_owner() returns text: the authenticated key's owner id,
 * or NULL (no key, or a key without an owner).  The text is made once per
 * call site and identity: a policy calls this once per row.
 */
Datum
apikey_current_owner(PG_FUNCTION_ARGS)
{
	HelperCache *c;

	if (helper_cache(fcinfo, &c) == NULL)
	{
		if (c->value != NULL)
			pfree(c->value);
		c->value = NULL;
		c->isnull = !apikey_identity_present() || owner_setting == NULL || owner_setting[0] == '\0';
		if (!c->isnull)
			c->value = (text *) MemoryContextAlloc(fcinfo->flinfo->fn_mcxt,
												   VARHDRSZ + strlen(owner_setting));
		if (!c->isnull)
		{
			SET_VARSIZE(c->value, VARHDRSZ + strlen(owner_setting));
			memcpy(VARDATA(c->value), owner_setting, strlen(owner_setting));
		}
		c->generation = identity_generation;
	}
	if (c->isnull)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(c->value);
}

/*
 * apikey.has_scope(required text) returns boolean: the authenticated key
 * holds a scope that grants required (the rules of apikey_verify); false
 * without a key.  A malformed required scope is the caller's error.
 */
Datum
apikey_has_scope(PG_FUNCTION_ARGS)
{
	text	   *req = PG_GETARG_TEXT_PP(0);
	const char *r = VARDATA_ANY(req);
	int			rlen = VARSIZE_ANY_EXHDR(req);
	HelperCache *c;
	int			i;

	/* the same scope asked again under the same identity: same answer */
	if (helper_cache(fcinfo, &c) != NULL && c->value != NULL &&
		VARSIZE(c->value) - VARHDRSZ == rlen &&
		memcmp(VARDATA(c->value), r, rlen) == 0)
		PG_RETURN_BOOL(c->result);

	if (!scope_valid(r, rlen))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("required scope is malformed"),
				 errdetail(APIKEY_SCOPE_RULE, SCOPE_MAX_LEN, SCOPE_MAX_SEGMENTS)));
	c->result = false;
	if (apikey_identity_present() && current_scopes != NULL)
	{
		for (i = 0; i < current_scopes->n && !c->result; i++)
			c->result = scope_grants(current_scopes->data + current_scopes->off[i],
									 current_scopes->len[i], r, rlen);
	}
	if (c->value != NULL)
		pfree(c->value);
	c->value = (text *) MemoryContextAlloc(fcinfo->flinfo->fn_mcxt, VARHDRSZ + rlen);
	SET_VARSIZE(c->value, VARHDRSZ + rlen);
	memcpy(VARDATA(c->value), r, rlen);
	c->generation = identity_generation;
	PG_RETURN_BOOL(c->result);
}
