/*-------------------------------------------------------------------------
 *
 * validate.c
 *	  The rules for a key's fields, in one place: apikey_create calls the
 *	  apikey_validate_* functions, which raise with a clear SQLSTATE and
 *	  never echo what could be a key, and the CHECK constraints of
 *	  apikey.keys call the apikey_*_valid SQL functions built on the same
 *	  tests, so a direct INSERT or UPDATE obeys the same limits.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"

#include "common.h"
#include "keyformat.h"
#include "scope.h"
#include "tracker.h"
#include "validate.h"
#include "values.h"

APIKEY_SQL_FUNCTION(apikey_scopes_valid);
APIKEY_SQL_FUNCTION(apikey_name_valid);
APIKEY_SQL_FUNCTION(apikey_resources_valid);
APIKEY_SQL_FUNCTION(apikey_meta_valid);
APIKEY_SQL_FUNCTION(apikey_prefix_valid);
APIKEY_SQL_FUNCTION(apikey_owner_valid);
APIKEY_SQL_FUNCTION(apikey_cidrs_valid);

/*
 * array_items: the number of elements of a one-dimensional array argument,
 * refusing more than one dimension and more than max elements before any
 * element is looked at (a huge array costs nothing to refuse).
 */
static int
array_items(ArrayType *arr, const char *what, int max)
{
	int			n;

	if (ARR_NDIM(arr) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be a one-dimensional array", what)));
	n = ArrayGetNItems(ARR_NDIM(arr), ARR_DIMS(arr));
	if (n > max)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("too many %s", what),
				 errdetail("A key has at most %d %s.", max, what)));
	return n;
}

/*
 * text_array_elems: deconstruct a one-dimensional text[] argument of at
 * most max elements, refusing NULL elements.
 */
static int
text_array_elems(ArrayType *arr, const char *what, int max, Datum **elems)
{
	bool	   *nulls;
	int			n;
	int			i;

	(void) array_items(arr, what, max);
	n = apikey_text_array(arr, elems, &nulls);
	for (i = 0; i < n; i++)
		if (nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("%s must not contain null elements", what)));
	return n;
}

/*
 * is_blank_char: white space, or a character that shows nothing (Unicode
 * spaces, zero-width characters, the byte order mark).
 */
static bool
is_blank_char(pg_wchar c)
{
	return (c >= 0x09 && c <= 0x0d) || c == 0x20 || c == 0x85 || c == 0xa0 ||
		c == 0x1680 || c == 0x180e || (c >= 0x2000 && c <= 0x200f) ||
		c == 0x2028 || c == 0x2029 || c == 0x202f || c == 0x205f ||
		(c >= 0x2060 && c <= 0x2064) || c == 0x3000 || c == 0xfeff;
}

/*
 * name_problem: why a key name is not acceptable, or NULL: not empty or
 * made only of blank characters, at most NAME_MAX_CHARS characters.
 */
static const char *
name_problem(text *name)
{
	int			len = VARSIZE_ANY_EXHDR(name);
	pg_wchar   *chars;
	int			n;
	int			i;
	bool		blank = true;

	/* no encoding needs more than 4 bytes per character */
	if (len > NAME_MAX_CHARS * MAX_MULTIBYTE_CHAR_LEN)
		return "too long";
	chars = palloc(sizeof(pg_wchar) * (len + 1));
	n = pg_mb2wchar_with_len(VARDATA_ANY(name), chars, len);
	for (i = 0; i < n && blank; i++)
		blank = is_blank_char(chars[i]);
	pfree(chars);
	if (blank)
		return "blank";
	if (n > NAME_MAX_CHARS)
		return "too long";
	return NULL;
}

void
apikey_validate_name(text *name)
{
	const char *problem = name_problem(name);

	if (problem == NULL)
		return;
	if (strcmp(problem, "blank") == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("key name must not be empty"),
				 errdetail("A name made only of white space or invisible characters is empty.")));
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("key name is too long"),
			 errdetail("A key name has at most %d characters.", NAME_MAX_CHARS)));
}

/*
 * apikey_name_valid(text) returns boolean: the CHECK on apikey.keys.name,
 * the rule of apikey_create.
 */
Datum
apikey_name_valid(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(name_problem(PG_GETARG_TEXT_PP(0)) == NULL);
}

/*
 * bad_scope: 0 if every scope in elems[0..n) is present and valid, else
 * the 1-based position of the first that is not.
 */
static int
bad_scope(Datum *elems, bool *nulls, int n)
{
	int			i;

	for (i = 0; i < n; i++)
	{
		text	   *t;

		CHECK_FOR_INTERRUPTS();
		if (nulls != NULL && nulls[i])
			return i + 1;
		t = DatumGetTextPP(elems[i]);
		if (!scope_valid(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t)))
			return i + 1;
	}
	return 0;
}

void
apikey_validate_scopes(ArrayType *scopes)
{
	Datum	   *elems;
	int			n;
	int			bad;

	if (ArrayGetNItems(ARR_NDIM(scopes), ARR_DIMS(scopes)) > APIKEY_MAX_SCOPES)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("too many scopes"),
				 errdetail("A key has at most %d scopes.", APIKEY_MAX_SCOPES)));
	n = text_array_elems(scopes, "scopes", APIKEY_MAX_SCOPES, &elems);
	bad = bad_scope(elems, NULL, n);
	if (bad > 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("scope %d is malformed", bad),
				 errdetail(APIKEY_SCOPE_RULE, SCOPE_MAX_LEN, SCOPE_MAX_SEGMENTS)));
}

/*
 * apikey_scopes_valid(text[]) returns boolean: the CHECK constraint on
 * apikey.keys.scopes, so direct UPDATEs obey the rules apikey_create
 * enforces with its detailed errors.
 */
Datum
apikey_scopes_valid(PG_FUNCTION_ARGS)
{
	ArrayType  *arr = PG_GETARG_ARRAYTYPE_P(0);
	Datum	   *elems;
	bool	   *nulls;
	int			n;

	if (ARR_NDIM(arr) > 1 ||
		ArrayGetNItems(ARR_NDIM(arr), ARR_DIMS(arr)) > APIKEY_MAX_SCOPES)
		PG_RETURN_BOOL(false);
	n = apikey_text_array(arr, &elems, &nulls);
	PG_RETURN_BOOL(bad_scope(elems, nulls, n) == 0);
}

/*
 * validate_prefix: the prefix is echoed in the error only when it is short
 * enough that it cannot be a key pasted into the wrong argument.
 */
void
apikey_validate_prefix(const char *prefix)
{
	size_t		len = strlen(prefix);

	if (kf_prefix_valid(prefix, len))
		return;
	if (len <= KF_PREFIX_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid key prefix \"%s\"", prefix),
				 errdetail(APIKEY_PREFIX_RULE)));
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("invalid key prefix"),
			 errdetail(APIKEY_PREFIX_RULE)));
}

/*
 * bad_resource: 0 if every resource id in elems[0..n) is present,
 * non-empty and at most RESOURCE_MAX_BYTES, else the 1-based position of
 * the first that is not.
 */
static int
bad_resource(Datum *elems, bool *nulls, int n)
{
	int			i;

	for (i = 0; i < n; i++)
	{
		int			len;

		CHECK_FOR_INTERRUPTS();
		if (nulls != NULL && nulls[i])
			return i + 1;
		len = VARSIZE_ANY_EXHDR(DatumGetTextPP(elems[i]));
		if (len == 0 || len > RESOURCE_MAX_BYTES)
			return i + 1;
	}
	return 0;
}

void
apikey_validate_resources(ArrayType *resources)
{
	Datum	   *elems;
	int			n = text_array_elems(resources, "resources", MAX_RESOURCES, &elems);
	int			bad;

	if (n == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("resources must not be an empty array"),
				 errhint("Use NULL for a key that may access all resources.")));
	bad = bad_resource(elems, NULL, n);
	if (bad > 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("resource %d is empty or too long", bad),
				 errdetail("A resource id has 1 to %d bytes.", RESOURCE_MAX_BYTES)));
}

/*
 * apikey_meta_valid(jsonb) returns boolean: the CHECK on apikey.keys.meta,
 * a JSON object of at most META_MAX_BYTES, measured uncompressed (what
 * every verification returns and every audit row copies).
 */
Datum
apikey_meta_valid(PG_FUNCTION_ARGS)
{
	Jsonb	   *meta = PG_GETARG_JSONB_P(0);

	PG_RETURN_BOOL(JB_ROOT_IS_OBJECT(meta) && VARSIZE(meta) <= META_MAX_BYTES);
}

/*
 * apikey_resources_valid(text[]) returns boolean: the CHECK on
 * apikey.keys.resources (NULL passes: all resources).
 */
Datum
apikey_resources_valid(PG_FUNCTION_ARGS)
{
	ArrayType  *arr = PG_GETARG_ARRAYTYPE_P(0);
	Datum	   *elems;
	bool	   *nulls;
	int			n;

	if (ARR_NDIM(arr) != 1 ||
		ArrayGetNItems(ARR_NDIM(arr), ARR_DIMS(arr)) > MAX_RESOURCES)
		PG_RETURN_BOOL(false);
	n = apikey_text_array(arr, &elems, &nulls);
	PG_RETURN_BOOL(n > 0 && bad_resource(elems, nulls, n) == 0);
}

void
apikey_validate_cidrs(ArrayType *cidrs)
{
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	int			i;

	(void) array_items(cidrs, "allowed_cidrs", MAX_CIDRS);
	deconstruct_array(cidrs, CIDROID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
	if (n == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("allowed_cidrs must not be an empty array"),
				 errhint("Use NULL for a key that may be used from any address.")));
	for (i = 0; i < n; i++)
		if (nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("allowed_cidrs must not contain null elements")));
}

/*
 * apikey_cidrs_valid(cidr[]) returns boolean: the CHECK on
 * apikey.keys.allowed_cidrs (NULL passes: any address): what
 * apikey_validate_cidrs accepts.
 */
Datum
apikey_cidrs_valid(PG_FUNCTION_ARGS)
{
	ArrayType  *arr = PG_GETARG_ARRAYTYPE_P(0);
	int			n;

	if (ARR_NDIM(arr) != 1)
		PG_RETURN_BOOL(false);
	n = ArrayGetNItems(ARR_NDIM(arr), ARR_DIMS(arr));
	PG_RETURN_BOOL(n > 0 && n <= MAX_CIDRS && !array_contains_nulls(arr));
}

/*
 * apikey_owner_ok: an owner id of at most OWNER_MAX_CHARS characters
 * (measured in bytes first: a huge one costs nothing to refuse).
 */
bool
apikey_owner_ok(text *owner)
{
	return VARSIZE_ANY_EXHDR(owner) <= OWNER_MAX_CHARS * MAX_MULTIBYTE_CHAR_LEN &&
		pg_mbstrlen_with_len(VARDATA_ANY(owner), VARSIZE_ANY_EXHDR(owner)) <= OWNER_MAX_CHARS;
}

/* apikey_owner_valid(text) returns boolean: the CHECK on apikey.keys.owner */
Datum
apikey_owner_valid(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(apikey_owner_ok(PG_GETARG_TEXT_PP(0)));
}

/*
 * apikey_prefix_valid(text) returns boolean: the CHECK on
 * apikey.keys.prefix, the key format's own rule (kf_prefix_valid).
 */
Datum
apikey_prefix_valid(PG_FUNCTION_ARGS)
{
	text	   *prefix = PG_GETARG_TEXT_PP(0);

	PG_RETURN_BOOL(kf_prefix_valid(VARDATA_ANY(prefix), VARSIZE_ANY_EXHDR(prefix)));
}

/*
 * require_tracker_for_limits: token buckets live in shared memory.
 * Without it a limit could not be enforced, so setting one is refused
 * rather than silently ignored.
 */
void
apikey_require_tracker_for_limits(void)
{
	if (!apikey_tracker_active())
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("rate limits require apikey in shared_preload_libraries"),
				 errhint("Add apikey to shared_preload_libraries and restart the server.")));
}
