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
 *	  PGC_INTERNAL: SET, set_config(), ALTER ROLE/DATABASE ... SET and
 *	  PGOPTIONS are all refused ("parameter cannot be changed"); only
 *	  apikey_identity_set() below changes them, always as SET LOCAL.  The
 *	  GUC machinery then drops them at commit, at abort, and at the abort
 *	  of a subtransaction that set them, so a pooled connection never
 *	  carries one request's identity into the next transaction.
 *
 *	  Before this library is loaded into a session, PostgreSQL accepts any
 *	  "apikey.*" name as a placeholder; loading the library discards such
 *	  values (with a WARNING), and the helpers always load it.  So the
 *	  helpers are authoritative; current_setting() is only where the
 *	  library is loaded (the hook, any helper call, or preloading does).
 *
 *	  The check hooks parse each value once into a "extra" block that the
 *	  GUC machinery keeps in step with the value (including on revert), so
 *	  the helpers do no parsing per call: cheap enough for a row-level
 *	  security policy evaluated once per row.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <limits.h>

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"

#include "apikey.h"
#include "scope.h"

PG_FUNCTION_INFO_V1(apikey_current_key_id);
PG_FUNCTION_INFO_V1(apikey_current_owner);
PG_FUNCTION_INFO_V1(apikey_has_scope);

/* the settings' string values (owned by guc.c) */
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

static const KeyIdExtra *current_key = NULL;
static const ScopesExtra *current_scopes = NULL;

/*
 * check_key_id: '' (no key) or a key id.  Called only for values this
 * module sets (PGC_INTERNAL refuses everything else first).
 */
static bool
check_key_id(char **newval, void **extra, GucSource source)
{
	KeyIdExtra *e = malloc(sizeof(KeyIdExtra));
	char	   *end;

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
			free(e);
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
	ScopesExtra *e = malloc(offsetof(ScopesExtra, data) + len + 1);
	size_t		i;
	size_t		start;

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
					free(e);
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
		free(e);
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
							   PGC_INTERNAL,
							   GUC_NOT_IN_SAMPLE | GUC_DISALLOW_IN_FILE,
							   check_key_id,
							   assign_key_id,
							   NULL);
	DefineCustomStringVariable("apikey.owner",
							   "Owner id of the API key the PostgREST hook authenticated in this transaction.",
							   "Set only by apikey.postgrest_pre_request(); empty without a key or owner.",
							   &owner_setting,
							   "",
							   PGC_INTERNAL,
							   GUC_NOT_IN_SAMPLE | GUC_DISALLOW_IN_FILE,
							   NULL,
							   NULL,
							   NULL);
	DefineCustomStringVariable("apikey.scopes",
							   "Scopes of the API key the PostgREST hook authenticated in this transaction.",
							   "Set only by apikey.postgrest_pre_request(); empty without a key.",
							   &scopes_setting,
							   "",
							   PGC_INTERNAL,
							   GUC_NOT_IN_SAMPLE | GUC_DISALLOW_IN_FILE,
							   check_scopes,
							   assign_scopes,
							   NULL);
}

/* set_local: SET LOCAL one of our settings, as only this module may */
static void
set_local(const char *name, const char *value)
{
	(void) set_config_option(name, value, PGC_INTERNAL, PGC_S_SESSION,
							 GUC_ACTION_LOCAL, true, 0, false);
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
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	int			i;
	char		idbuf[32];

	initStringInfo(&buf);
	appendStringInfoChar(&buf, '{');
	deconstruct_array(DatumGetArrayTypeP(scopes), TEXTOID, -1, false,
					  TYPALIGN_INT, &elems, &nulls, &n);
	for (i = 0; i < n; i++)
	{
		text	   *t;

		if (nulls[i])
			continue;
		t = DatumGetTextPP(elems[i]);
		if (buf.len > 1)
			appendStringInfoChar(&buf, ',');
		appendBinaryStringInfo(&buf, VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
	}
	appendStringInfoChar(&buf, '}');

	set_local("apikey.scopes", buf.data);
	set_local("apikey.owner", owner ? owner : "");
	snprintf(idbuf, sizeof(idbuf), INT64_FORMAT, key_id);
	set_local("apikey.key_id", idbuf);
	pfree(buf.data);
}

/*
 * apikey_identity_clear: no key authenticated (for the rest of this
 * transaction, unless the hook runs again).
 */
void
apikey_identity_clear(void)
{
	if (current_key != NULL && !current_key->set)
		return;					/* nothing to clear: keep the GUC stack flat */
	set_local("apikey.key_id", "");
	set_local("apikey.owner", "");
	set_local("apikey.scopes", "");
}

static bool
have_key(void)
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
	if (!have_key())
		PG_RETURN_NULL();
	PG_RETURN_INT64(current_key->key_id);
}

/*
 * apikey.current_owner() returns text: the authenticated key's owner id,
 * or NULL (no key, or a key without an owner).
 */
Datum
apikey_current_owner(PG_FUNCTION_ARGS)
{
	if (!have_key() || owner_setting == NULL || owner_setting[0] == '\0')
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(owner_setting));
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
	int			i;

	if (!scope_valid(r, rlen))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("required scope is malformed"),
				 errdetail(APIKEY_SCOPE_RULE, SCOPE_MAX_LEN, SCOPE_MAX_SEGMENTS)));
	if (!have_key() || current_scopes == NULL)
		PG_RETURN_BOOL(false);
	for (i = 0; i < current_scopes->n; i++)
	{
		if (scope_grants(current_scopes->data + current_scopes->off[i],
						 current_scopes->len[i], r, rlen))
			PG_RETURN_BOOL(true);
	}
	PG_RETURN_BOOL(false);
}
