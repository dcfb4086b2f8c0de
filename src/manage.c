/*-------------------------------------------------------------------------
 *
 * manage.c
 *	  The SQL functions apikey_create and apikey_rotate: validate the
 *	  arguments, mint a key (secret.c), and write apikey.keys through SPI.
 *
 *	  Both run as the caller (so owner_role and created_by are the caller's
 *	  current_user) and switch to the owner of apikey.keys only around their
 *	  own statements, the way PostgreSQL's RI triggers do; the switch is
 *	  undone by (sub)transaction abort if a statement fails.  The statements
 *	  are fully schema-qualified and the functions pin search_path.  The raw
 *	  key never reaches SPI: only its hash and hint are written.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"

#include "apikey.h"
#include "scope.h"
#include "tracker.h"

#define NAME_MAX_CHARS		256
#define OWNER_MAX_CHARS		256
#define MAX_RESOURCES		256
#define RESOURCE_MAX_BYTES	256
#define MAX_CIDRS			64
#define META_MAX_BYTES		8192
#define MAX_GRACE_DAYS		7

APIKEY_SQL_FUNCTION(apikey_create);
APIKEY_SQL_FUNCTION(apikey_rotate);
APIKEY_SQL_FUNCTION(apikey_scopes_valid);
APIKEY_SQL_FUNCTION(apikey_name_valid);
APIKEY_SQL_FUNCTION(apikey_resources_valid);
APIKEY_SQL_FUNCTION(apikey_meta_valid);
APIKEY_SQL_FUNCTION(apikey_refuse_rate_limit);
APIKEY_SQL_FUNCTION(apikey_rate_limit_guard);

/* A freshly minted key and what is stored of it. */
typedef struct Minted
{
	text	   *key;			/* returned to the caller, once */
	bytea	   *hash;
	text	   *hint;
} Minted;

/*
 * mint: a new key for prefix.  The stack copy of the key is wiped before
 * returning; the only copy left is the text datum handed to the caller.
 */
static Minted
mint(const char *prefix)
{
	Minted		m;
	char		buf[KF_KEY_BUFSZ];
	char		hint[KF_HINT_BUFSZ];
	size_t		len;

	apikey_secret_mint(prefix, buf, sizeof(buf));
	len = strlen(buf);

	m.hash = palloc(VARHDRSZ + APIKEY_HASH_LEN);
	SET_VARSIZE(m.hash, VARHDRSZ + APIKEY_HASH_LEN);
	apikey_secret_hash(buf, len, (uint8 *) VARDATA(m.hash));
	if (kf_hint(buf, len, hint, sizeof(hint)) != KF_OK)
	{
		kf_wipe(buf, sizeof(buf));
		elog(ERROR, "could not make a hint for a minted key");
	}
	m.hint = cstring_to_text(hint);
	m.key = cstring_to_text_with_len(buf, len);
	kf_wipe(buf, sizeof(buf));
	return m;
}

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
	deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT, elems, &nulls, &n);
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

static void
validate_name(text *name)
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

static void
validate_scopes(ArrayType *scopes)
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
	deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
	PG_RETURN_BOOL(bad_scope(elems, nulls, n) == 0);
}

/*
 * validate_prefix: the prefix is echoed in the error only when it is short
 * enough that it cannot be a key pasted into the wrong argument.
 */
static void
validate_prefix(const char *prefix)
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

static void
validate_resources(ArrayType *resources)
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
	deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
	PG_RETURN_BOOL(n > 0 && bad_resource(elems, nulls, n) == 0);
}

static void
validate_cidrs(ArrayType *cidrs)
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
 * require_tracker_for_limits: token buckets live in shared memory.
 * Without it a limit could not be enforced, so setting one is refused
 * rather than silently ignored.
 */
static void
require_tracker_for_limits(void)
{
	if (!apikey_tracker_active())
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("rate limits require apikey in shared_preload_libraries"),
				 errhint("Add apikey to shared_preload_libraries and restart the server.")));
}

static void
validate_rate_limit(FunctionCallInfo fcinfo)
{
	bool		has_limit = !PG_ARGISNULL(7);
	bool		has_window = !PG_ARGISNULL(8);
	Interval	zero = {0, 0, 0};

	if (!has_limit && !has_window)
		return;
	if (has_limit != has_window)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("rate_limit and rate_window must be given together")));
	if (PG_GETARG_INT32(7) <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("rate_limit must be positive")));
	if (DatumGetInt32(DirectFunctionCall2(interval_cmp, PG_GETARG_DATUM(8),
										  IntervalPGetDatum(&zero))) <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("rate_window must be positive")));

	require_tracker_for_limits();
}

/*
 * apikey_rate_limit_guard: trigger function, BEFORE UPDATE OF rate_limit,
 * rate_window on apikey.keys WHEN a valid rate limit is being set: direct
 * UPDATEs obey the rule of apikey_create.  (1.0 declared it as
 * apikey.refuse_rate_limit(), symbol apikey_refuse_rate_limit.)
 */
Datum
apikey_rate_limit_guard(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo) ||
		!TRIGGER_FIRED_BEFORE(trigdata->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event))
		elog(ERROR, "apikey_rate_limit_guard must be fired BEFORE ... FOR EACH ROW");
	require_tracker_for_limits();
	return PointerGetDatum(trigdata->tg_newtuple);
}

Datum
apikey_refuse_rate_limit(PG_FUNCTION_ARGS)
{
	return apikey_rate_limit_guard(fcinfo);
}

/*
 * is_admin: superusers and members of apikey_admin manage every key;
 * anyone else only keys whose owner_role is their current_user.
 */
static bool
is_admin(Oid caller)
{
	Oid			admin = get_role_oid("apikey_admin", true);

	return superuser_arg(caller) ||
		(OidIsValid(admin) && has_privs_of_role(caller, admin));
}

/*
 * refuse_group_role: a key owned by the role apikey_manager itself would be
 * shared by every manager (any of them can SET ROLE to it), so keys are
 * owned by the roles that are members, never by the group.
 */
static void
refuse_group_role(Oid caller)
{
	if (caller == get_role_oid("apikey_manager", true))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("keys cannot be owned by role \"apikey_manager\""),
				 errhint("Create and manage keys as a role that is a member of apikey_manager, not as apikey_manager itself.")));
}

/*
 * apikey_create(name, scopes, expires_at, prefix, owner, resources, meta,
 *				 rate_limit, rate_window, allowed_cidrs, db_role)
 *	returns table (key_id bigint, key text)
 *
 * 1.0's SQL declaration has no db_role (10 arguments); the same C function
 * serves both until ALTER EXTENSION apikey UPDATE.
 */
#define CREATE_NARGS 15

Datum
apikey_create(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	const char *prefix;
	Oid			caller = GetUserId();
	Datum		caller_name;
	const ApikeyCatalog *cat;
	Minted		m;
	bool		has_db_role = PG_NARGS() > 10;
	Oid			argtypes[CREATE_NARGS] = {TEXTOID, TEXTOID, TEXTOID, TEXTOID, NAMEOID,
		TEXTARRAYOID, TEXTARRAYOID, CIDRARRAYOID, JSONBOID, TIMESTAMPTZOID,
	INT4OID, INTERVALOID, NAMEOID, BYTEAOID, NAMEOID};
	Datum		args[CREATE_NARGS];
	char		argnulls[CREATE_NARGS];
	ApikeyActorSwitch saved;
	int64		key_id;
	bool		isnull;
	int			ret;
	Datum		outvals[2];
	bool		outnulls[2] = {false, false};

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("key name must not be null")));
	validate_name(PG_GETARG_TEXT_PP(0));
	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("scopes must not be null"),
				 errhint("Use '{}' for a key that carries no scopes.")));
	validate_scopes(PG_GETARG_ARRAYTYPE_P(1));
	if (!PG_ARGISNULL(2) &&
		PG_GETARG_TIMESTAMPTZ(2) <= GetCurrentTransactionStartTimestamp())
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("expires_at must be in the future")));
	prefix = PG_ARGISNULL(3) ? apikey_default_prefix : text_to_cstring(PG_GETARG_TEXT_PP(3));
	validate_prefix(prefix);
	if (!PG_ARGISNULL(4) &&
		(VARSIZE_ANY_EXHDR(PG_GETARG_TEXT_PP(4)) > OWNER_MAX_CHARS * MAX_MULTIBYTE_CHAR_LEN ||
		 pg_mbstrlen_with_len(VARDATA_ANY(PG_GETARG_TEXT_PP(4)),
							  VARSIZE_ANY_EXHDR(PG_GETARG_TEXT_PP(4))) > OWNER_MAX_CHARS))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("owner is too long"),
				 errdetail("An owner id has at most %d characters.", OWNER_MAX_CHARS)));
	if (!PG_ARGISNULL(5))
		validate_resources(PG_GETARG_ARRAYTYPE_P(5));
	if (PG_ARGISNULL(6))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("meta must not be null"),
				 errhint("Use '{}' for no metadata.")));
	if (!JB_ROOT_IS_OBJECT(PG_GETARG_JSONB_P(6)))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("meta must be a JSON object")));
	if (VARSIZE_ANY(PG_GETARG_JSONB_P(6)) > META_MAX_BYTES)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("meta is too large"),
				 errdetail("A key's meta has at most %d bytes.", META_MAX_BYTES)));
	validate_rate_limit(fcinfo);
	if (!PG_ARGISNULL(9))
		validate_cidrs(PG_GETARG_ARRAYTYPE_P(9));

	refuse_group_role(caller);
	if (has_db_role && !PG_ARGISNULL(10))
		apikey_db_role_validate(NameStr(*PG_GETARG_NAME(10)), caller);

	InitMaterializedSRF(fcinfo, 0);
	caller_name = apikey_role_name(caller);
	m = mint(prefix);

	/* name, prefix, hint, owner, owner_role, scopes, resources, ... */
	memset(argnulls, ' ', sizeof(argnulls));
	args[0] = PG_GETARG_DATUM(0);
	args[1] = CStringGetTextDatum(prefix);
	args[2] = PointerGetDatum(m.hint);
	args[3] = PG_GETARG_DATUM(4);
	argnulls[3] = PG_ARGISNULL(4) ? 'n' : ' ';
	args[4] = caller_name;
	args[5] = PG_GETARG_DATUM(1);
	args[6] = PG_GETARG_DATUM(5);
	argnulls[6] = PG_ARGISNULL(5) ? 'n' : ' ';
	args[7] = PG_GETARG_DATUM(9);
	argnulls[7] = PG_ARGISNULL(9) ? 'n' : ' ';
	args[8] = PG_GETARG_DATUM(6);
	args[9] = PG_GETARG_DATUM(2);
	argnulls[9] = PG_ARGISNULL(2) ? 'n' : ' ';
	args[10] = PG_GETARG_DATUM(7);
	argnulls[10] = PG_ARGISNULL(7) ? 'n' : ' ';
	args[11] = PG_GETARG_DATUM(8);
	argnulls[11] = PG_ARGISNULL(8) ? 'n' : ' ';
	args[12] = caller_name;
	args[13] = PointerGetDatum(m.hash);
	if (has_db_role)
	{
		args[14] = PG_GETARG_DATUM(10);
		argnulls[14] = PG_ARGISNULL(10) ? 'n' : ' ';
	}

	cat = apikey_catalog_lock(RowExclusiveLock);
	saved = apikey_actor_begin(cat->keys_owner);
	ret = apikey_actor_execute(has_db_role ?
							   "INSERT INTO apikey.keys (name, prefix, hint, owner, owner_role, scopes,"
							   " resources, allowed_cidrs, meta, expires_at, rate_limit, rate_window,"
							   " created_by, secret_hash, db_role)"
							   " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
							   " RETURNING id" :
							   "INSERT INTO apikey.keys (name, prefix, hint, owner, owner_role, scopes,"
							   " resources, allowed_cidrs, meta, expires_at, rate_limit, rate_window,"
							   " created_by, secret_hash)"
							   " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
							   " RETURNING id",
							   has_db_role ? 15 : 14, argtypes, args, argnulls, 1);
	if (ret != SPI_OK_INSERT_RETURNING || SPI_processed != 1)
		elog(ERROR, "could not insert into apikey.keys: %s", SPI_result_code_string(ret));
	key_id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
										 SPI_tuptable->tupdesc, 1, &isnull));
	apikey_actor_end(saved);

	outvals[0] = Int64GetDatum(key_id);
	outvals[1] = PointerGetDatum(m.key);
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, outvals, outnulls);
	return (Datum) 0;
}

/*
 * apikey_rotate(key_id bigint, grace interval) returns text
 */
Datum
apikey_rotate(PG_FUNCTION_ARGS)
{
	Oid			caller = GetUserId();
	int64		key_id;
	Interval   *grace;
	Interval	max_grace = {0, MAX_GRACE_DAYS, 0};
	TimestampTz now;
	TimestampTz until;
	TimestampTz max_until;
	bool		admin;
	bool		keep_old;
	const ApikeyCatalog *cat;
	ApikeyActorSwitch saved;
	Oid			selargtypes[3] = {INT8OID, NAMEOID, BOOLOID};
	Datum		selargs[3];
	Oid			updargtypes[5] = {INT8OID, BYTEAOID, TEXTOID, BOOLOID, TIMESTAMPTZOID};
	Datum		updargs[5];
	char	   *prefix;
	Minted		m;
	int			ret;
	MemoryContext fncxt = CurrentMemoryContext;
	MemoryContext oldcxt;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("key_id must not be null")));
	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("grace must not be null"),
				 errhint("Use '0' to invalidate the old key at commit.")));
	key_id = PG_GETARG_INT64(0);
	grace = PG_GETARG_INTERVAL_P(1);
	admin = is_admin(caller);
	if (!admin)
		refuse_group_role(caller);

	/*
	 * Bound the end of the grace period, not the interval: interval
	 * comparison counts a month as 30 days, so '120000 mons -3599993 days'
	 * would compare as a week and yet end in another century.  Either
	 * "7 days" (calendar) or 168 hours (elapsed) is accepted across DST.
	 */
	now = GetCurrentTransactionStartTimestamp();
	until = DatumGetTimestampTz(DirectFunctionCall2(timestamptz_pl_interval,
													TimestampTzGetDatum(now),
													IntervalPGetDatum(grace)));
	max_until = DatumGetTimestampTz(DirectFunctionCall2(timestamptz_pl_interval,
														TimestampTzGetDatum(now),
														IntervalPGetDatum(&max_grace)));
	max_until = Max(max_until, now + (int64) MAX_GRACE_DAYS * USECS_PER_DAY);
	if (until < now || until > max_until)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("grace must be between 0 and %d days", MAX_GRACE_DAYS),
				 errdetail("The old key would stop working at now() + grace.")));
	keep_old = until > now;

	cat = apikey_catalog_lock(RowExclusiveLock);
	saved = apikey_actor_begin(cat->keys_owner);

	/*
	 * Lock the row: a concurrent rotation waits here, then sees ours.  Only
	 * rows the caller may manage are locked (or waited for), so someone
	 * else's key behaves exactly like a missing one, even when it is busy.
	 */
	selargs[0] = Int64GetDatum(key_id);
	selargs[1] = apikey_role_name(caller);
	selargs[2] = BoolGetDatum(admin);
	ret = apikey_actor_execute("SELECT prefix FROM apikey.keys"
							   " WHERE id OPERATOR(pg_catalog.=) $1"
							   " AND ($3 OR owner_role OPERATOR(pg_catalog.=) $2)"
							   " FOR UPDATE",
							   3, selargtypes, selargs, NULL, 1);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "could not lock api key: %s", SPI_result_code_string(ret));
	if (SPI_processed != 1)
		ereport(ERROR,
				(errcode(ERRCODE_NO_DATA_FOUND),
				 errmsg("api key %lld does not exist", (long long) key_id)));
	prefix = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);

	/* the key must outlive SPI_finish: mint it in the caller's context */
	oldcxt = MemoryContextSwitchTo(fncxt);
	m = mint(prefix);
	MemoryContextSwitchTo(oldcxt);
	updargs[0] = Int64GetDatum(key_id);
	updargs[1] = PointerGetDatum(m.hash);
	updargs[2] = PointerGetDatum(m.hint);
	updargs[3] = BoolGetDatum(keep_old);
	updargs[4] = TimestampTzGetDatum(until);
	ret = apikey_actor_execute("UPDATE apikey.keys SET"
							   " grace_secret_hash = CASE WHEN $4 THEN secret_hash END,"
							   " grace_until = CASE WHEN $4 THEN $5 END,"
							   " secret_hash = $2, hint = $3, rotated_at = pg_catalog.now()"
							   " WHERE id OPERATOR(pg_catalog.=) $1",
							   5, updargtypes, updargs, NULL, 0);
	if (ret != SPI_OK_UPDATE || SPI_processed != 1)
		elog(ERROR, "could not rotate api key: %s", SPI_result_code_string(ret));
	apikey_actor_end(saved);

	PG_RETURN_TEXT_P(m.key);
}
