/*-------------------------------------------------------------------------
 *
 * postgrest.c
 *	  apikey.postgrest_pre_request(), PostgREST's db-pre-request hook, and
 *	  the settings that shape it.
 *
 *	  PostgREST runs the hook inside each request's transaction, after one
 *	  statement that sets (among others) request.method, request.path,
 *	  request.headers (a JSON object with lower-case names) and
 *	  request.jwt.claims.  The hook reads the key from the header named by
 *	  apikey.header, checks it on the path apikey_verify uses (verify_check.c),
 *	  and then either records the key as this transaction's identity
 *	  (identity.c) and switches to its db_role (dbrole.c), or raises an
 *	  error that PostgREST turns into the HTTP response: SQLSTATE PGRST
 *	  with a JSON body and a JSON detail holding status and headers
 *	  (PostgREST 12 and later), or PTxyz (PostgREST 11).
 *
 *	  The key is never copied into an error, a log line or a setting; the
 *	  buffers the JSON parser decoded it into are wiped after the check.
 *
 *	  Settings (all PGC_SUSET: a superuser sets them, for instance per role
 *	  with ALTER ROLE authenticator SET ..., and no request's role can
 *	  weaken them):
 *	apikey.header				header carrying the key (x-api-key)
 *	apikey.require_key			401 for requests with neither key nor JWT (on)
 *	apikey.postgrest_scopes		off | path: require <table>:read/write,
 *								rpc:<function> from request.path (off)
 *	apikey.postgrest_errors		pgrst | plain: the error form (pgrst)
 *	apikey.client_addr_header	header with the client's address, set by a
 *								trusted proxy; its last entry is used
 *								('': unknown)
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <sys/socket.h>

#include <limits.h>
#include <math.h>

#include "common/jsonapi.h"
#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/guc.h"
#include "utils/inet.h"
#include "utils/json.h"
#include "utils/timestamp.h"

#include "common.h"
#include "compat.h"
#include "dbrole.h"
#include "identity.h"
#include "keyformat.h"
#include "postgrest.h"
#include "scope.h"
#include "verify.h"

APIKEY_SQL_FUNCTION(apikey_postgrest_pre_request);

typedef enum
{
	SCOPES_OFF,
	SCOPES_PATH
} ScopesMode;

typedef enum
{
	ERRORS_PGRST,
	ERRORS_PLAIN
} ErrorsMode;

static const struct config_enum_entry scopes_options[] = {
	{"off", SCOPES_OFF, false},
	{"path", SCOPES_PATH, false},
	{NULL, 0, false}
};

static const struct config_enum_entry errors_options[] = {
	{"pgrst", ERRORS_PGRST, false},
	{"plain", ERRORS_PLAIN, false},
	{NULL, 0, false}
};

static char *key_header = NULL;
static bool require_key = true;
static int	scopes_mode = SCOPES_OFF;
static int	errors_mode = ERRORS_PGRST;
static char *client_addr_header = NULL;

#define HEADER_NAME_MAX 128
#define PATH_SCOPE_MAX	SCOPE_MAX_LEN

/* header_name_valid: an HTTP field name (RFC 9110 token) */
static bool
header_name_valid(const char *s, bool empty_ok)
{
	size_t		len = strlen(s);
	size_t		i;

	if (len == 0)
		return empty_ok;
	if (len > HEADER_NAME_MAX)
		return false;
	for (i = 0; i < len; i++)
	{
		unsigned char c = (unsigned char) s[i];

		if (!(isalnum(c) || strchr("!#$%&'*+-.^_`|~", c) != NULL) || c >= 0x80)
			return false;
	}
	return true;
}

static bool
check_key_header(char **newval, void **extra, GucSource source)
{
	if (*newval == NULL || !header_name_valid(*newval, false))
	{
		GUC_check_errdetail("A header name is 1 to %d characters of an HTTP token.",
							HEADER_NAME_MAX);
		return false;
	}
	return true;
}

static bool
check_client_addr_header(char **newval, void **extra, GucSource source)
{
	if (*newval == NULL || !header_name_valid(*newval, true))
	{
		GUC_check_errdetail("A header name is up to %d characters of an HTTP token; empty for none.",
							HEADER_NAME_MAX);
		return false;
	}
	return true;
}

/*
 * apikey_postgrest_init: define the hook's settings.
 */
void
apikey_postgrest_init(void)
{
	apikey_postgrest_cost_init();
	DefineCustomStringVariable("apikey.header",
							   "Request header that carries the API key for apikey.postgrest_pre_request().",
							   "Matched case-insensitively; PostgREST sends header names in lower case.",
							   &key_header,
							   "x-api-key",
							   PGC_SUSET,
							   0,
							   check_key_header,
							   NULL,
							   NULL);
	DefineCustomBoolVariable("apikey.require_key",
							 "Refuse (401) PostgREST requests that carry neither an API key nor a JWT.",
							 "Off: such requests run as PostgREST's anonymous role.",
							 &require_key,
							 true,
							 PGC_SUSET,
							 0,
							 NULL,
							 NULL,
							 NULL);
	DefineCustomEnumVariable("apikey.postgrest_scopes",
							 "Scopes the PostgREST hook requires from the request path.",
							 "path: <table>:read for GET and HEAD, <table>:write otherwise, rpc:<function> for /rpc/<function>.",
							 &scopes_mode,
							 SCOPES_OFF,
							 scopes_options,
							 PGC_SUSET,
							 0,
							 NULL,
							 NULL,
							 NULL);
	DefineCustomEnumVariable("apikey.postgrest_errors",
							 "How the PostgREST hook raises a refusal.",
							 "pgrst: SQLSTATE PGRST with a JSON body, status and headers (PostgREST 12 and later); plain: SQLSTATE PT401 etc. (PostgREST 11).",
							 &errors_mode,
							 ERRORS_PGRST,
							 errors_options,
							 PGC_SUSET,
							 0,
							 NULL,
							 NULL,
							 NULL);
	DefineCustomStringVariable("apikey.client_addr_header",
							   "Request header holding the client's address, as set by a trusted proxy.",
							   "The last comma-separated entry is used. Empty: the address is unknown, and keys with allowed_cidrs are refused.",
							   &client_addr_header,
							   "",
							   PGC_SUSET,
							   0,
							   check_client_addr_header,
							   NULL,
							   NULL);
}

/*
 * A pass over a JSON object with PostgreSQL's own parser, which reports
 * errors as codes: nothing of the input ever reaches an error message.
 * It finds the top-level field named want (case-insensitively) and notes
 * whether there is any top-level field other than "role".
 */
typedef struct JsonSearch
{
	const char *want;
	int			depth;
	bool		is_object;
	bool		in_want;
	int			matches;		/* top-level fields named want */
	char	   *value;			/* the last one's value, if a string */
	bool		other_fields;	/* a top-level field other than "role" */
} JsonSearch;

static APIKEY_JSON_ACTION
js_object_start(void *state)
{
	JsonSearch *s = state;

	if (s->depth == 0)
		s->is_object = true;
	s->depth++;
	return APIKEY_JSON_CONTINUE;
}

static APIKEY_JSON_ACTION
js_nest_start(void *state)
{
	((JsonSearch *) state)->depth++;
	return APIKEY_JSON_CONTINUE;
}

static APIKEY_JSON_ACTION
js_nest_end(void *state)
{
	((JsonSearch *) state)->depth--;
	return APIKEY_JSON_CONTINUE;
}

static APIKEY_JSON_ACTION
js_field_start(void *state, char *fname, bool isnull)
{
	JsonSearch *s = state;

	if (s->depth != 1)
		return APIKEY_JSON_CONTINUE;
	s->in_want = s->want != NULL && pg_strcasecmp(fname, s->want) == 0;
	if (s->in_want)
	{
		s->matches++;
		s->value = NULL;
	}
	if (strcmp(fname, "role") != 0)
		s->other_fields = true;
	return APIKEY_JSON_CONTINUE;
}

static APIKEY_JSON_ACTION
js_scalar(void *state, char *token, JsonTokenType type)
{
	JsonSearch *s = state;

	if (s->depth == 1 && s->in_want && type == JSON_TOKEN_STRING)
		s->value = token;
	else if (token != NULL && type == JSON_TOKEN_STRING)
		kf_wipe(token, strlen(token));	/* maybe another copy of the key */
	return APIKEY_JSON_CONTINUE;
}

/*
 * json_search: parse json (NULL or '' counts as an empty object) looking
 * for want; false if it is not valid JSON or not an object.
 */
static bool
json_search(const char *json, const char *want, JsonSearch *s)
{
	JsonLexContext *lex;
	JsonSemAction sem;
	JsonParseErrorType err;
	char	   *copy;
	size_t		len;

	memset(s, 0, sizeof(*s));
	s->want = want;
	if (json == NULL || json[0] == '\0')
		return true;
	len = strlen(json);
	copy = pstrdup(json);
	memset(&sem, 0, sizeof(sem));
	sem.semstate = s;
	sem.object_start = js_object_start;
	sem.object_end = js_nest_end;
	sem.array_start = js_nest_start;
	sem.array_end = js_nest_end;
	sem.object_field_start = js_field_start;
	sem.scalar = js_scalar;
	lex = apikey_json_lexer(copy, len, GetDatabaseEncoding());
	err = pg_parse_json(lex, &sem);
	/* the lexer decoded every string, the key too, into this buffer */
	if (lex->strval != NULL)
		kf_wipe(lex->strval->data, lex->strval->maxlen);
	kf_wipe(copy, len);
	pfree(copy);
	if (err != JSON_SUCCESS || !s->is_object)
	{
		if (s->value != NULL)
			kf_wipe(s->value, strlen(s->value));
		s->value = NULL;
		return false;
	}
	return true;
}

/*
 * path_scope: the scope postgrest_scopes = path requires for method and
 * path, written to buf; false if the path maps to no scope a key can hold
 * (then nothing can satisfy it).  *none is set for the root path, which
 * requires no scope.
 */
static bool
path_scope(const char *method, const char *path, char *buf, size_t bufsz,
		   bool *none)
{
	const char *seg;
	const char *slash;
	size_t		seglen;
	bool		read;
	int			n;

	*none = false;
	if (method == NULL || path == NULL || path[0] != '/')
		return false;
	seg = path + 1;
	if (*seg == '\0')
	{
		*none = true;
		return true;
	}
	slash = strchr(seg, '/');
	seglen = slash ? (size_t) (slash - seg) : strlen(seg);
	if (seglen == 3 && strncmp(seg, "rpc", 3) == 0 && slash != NULL)
	{
		const char *fn = slash + 1;

		if (*fn == '\0' || strchr(fn, '/') != NULL)
			return false;
		n = snprintf(buf, bufsz, "rpc:%s", fn);
	}
	else
	{
		if (slash != NULL || seglen == 0)
			return false;
		read = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
		n = snprintf(buf, bufsz, "%.*s:%s", (int) seglen, seg,
					 read ? "read" : "write");
	}
	return n > 0 && (size_t) n < bufsz && scope_valid(buf, n);
}

/*
 * client_address: the client's address from apikey.client_addr_header:
 * the last comma-separated entry (the one the nearest, trusted proxy
 * added), a plain IPv4 or IPv6 address.  0 if unset or unparsable.
 */
static Datum
client_address(const char *headers)
{
	JsonSearch s;
	char	   *entry;
	char	   *end;
	inet	   *addr;
	int			family;
	int			bits;

	if (client_addr_header == NULL || client_addr_header[0] == '\0' ||
		!json_search(headers, client_addr_header, &s) ||
		s.matches != 1 || s.value == NULL)
		return (Datum) 0;
	entry = strrchr(s.value, ',');
	entry = entry ? entry + 1 : s.value;
	while (*entry == ' ' || *entry == '\t')
		entry++;
	end = entry + strlen(entry);
	while (end > entry && (end[-1] == ' ' || end[-1] == '\t'))
		*--end = '\0';
	if (*entry == '\0' || strlen(entry) > 45 || strchr(entry, '/') != NULL)
		return (Datum) 0;

	addr = (inet *) palloc0(sizeof(inet));
	family = strchr(entry, ':') != NULL ? PGSQL_AF_INET6 : PGSQL_AF_INET;
	ip_family(addr) = family;
	bits = pg_inet_net_pton(family, entry, ip_addr(addr), -1);
	if (bits != (family == PGSQL_AF_INET ? 32 : 128))
		return (Datum) 0;
	ip_bits(addr) = bits;
	SET_INET_VARSIZE(addr);
	return InetPGetDatum(addr);
}

/* retry_seconds: whole seconds (at least 1) until a retry may succeed */
static long
retry_seconds(const ApikeyResult *res)
{
	Interval   *iv;
	double		secs;

	if (!res->retry_isnull)
		iv = DatumGetIntervalP(res->retry_after);
	else if (!res->key.rate_window_isnull)
		iv = DatumGetIntervalP(res->key.rate_window);	/* a full refill */
	else
		return 1;
	secs = iv->time / (double) USECS_PER_SEC +
		(double) iv->day * SECS_PER_DAY +
		(double) iv->month * DAYS_PER_MONTH * SECS_PER_DAY;
	if (secs < 1)
		return 1;
	if (secs > (double) INT_MAX)
		return INT_MAX;
	return (long) ceil(secs);
}

static void
json_field(StringInfo buf, const char *name, const char *value)
{
	if (buf->len > 1)
		appendStringInfoChar(buf, ',');
	escape_json(buf, name);
	appendStringInfoChar(buf, ':');
	if (value == NULL)
		appendStringInfoString(buf, "null");
	else
		escape_json(buf, value);
}

/*
 * refuse: raise the error PostgREST turns into the response for status
 * with body (code, message, details, hint); log_detail, if given, goes to
 * the server log only.  No argument may hold a key.
 */
static void
refuse(int status, const char *code, const char *message,
	   const char *details, const char *hint, long retry_after,
	   const char *log_detail)
{
	if (errors_mode == ERRORS_PLAIN)
		ereport(ERROR,
				(errcode(MAKE_SQLSTATE('P', 'T', '0' + status / 100,
									   '0' + (status / 10) % 10,
									   '0' + status % 10)),
				 errmsg_internal("%s", message),
				 details ? errdetail_internal("%s", details) : 0,
				 log_detail ? errdetail_log("%s", log_detail) : 0,
				 hint ? errhint("%s", hint) : 0));
	else
	{
		StringInfoData body;
		StringInfoData detail;
		StringInfoData headers;
		char		num[32];

		initStringInfo(&body);
		appendStringInfoChar(&body, '{');
		json_field(&body, "code", code);
		json_field(&body, "message", message);
		json_field(&body, "details", details);
		json_field(&body, "hint", hint);
		appendStringInfoChar(&body, '}');

		initStringInfo(&headers);
		appendStringInfoChar(&headers, '{');
		if (status == 401)
		{
			StringInfoData challenge;

			initStringInfo(&challenge);
			appendStringInfo(&challenge, "ApiKey header=\"%s\"", key_header);
			json_field(&headers, "WWW-Authenticate", challenge.data);
		}
		if (status == 429 && retry_after > 0)
		{
			snprintf(num, sizeof(num), "%ld", retry_after);
			json_field(&headers, "Retry-After", num);
		}
		appendStringInfoChar(&headers, '}');

		initStringInfo(&detail);
		appendStringInfo(&detail, "{\"status\":%d,\"headers\":%s}",
						 status, headers.data);

		ereport(ERROR,
				(errcode(MAKE_SQLSTATE('P', 'G', 'R', 'S', 'T')),
				 errmsg_internal("%s", body.data),
				 errdetail_internal("%s", detail.data),
				 log_detail ? errdetail_log("%s", log_detail) : 0));
	}
}

/*
 * refuse_code: refuse with the texts of a verification code; retry is the
 * Retry-After of RATE_LIMITED and QUOTA_EXCEEDED (0: none).
 */
static void
refuse_code(ApikeyCode code, const char *required, long retry)
{
	const char *message;
	const char *hint = NULL;
	char	   *details = NULL;

	switch (code)
	{
		case APIKEY_MALFORMED:
			message = "API key is malformed";
			hint = psprintf("Send the whole key, as issued, in the %s header.", key_header);
			break;
		case APIKEY_NOT_FOUND:
			message = "API key not found";
			hint = "The key may have been deleted or rotated; use a current key.";
			break;
		case APIKEY_DISABLED:
			message = "API key is disabled";
			hint = "Ask the key's owner to enable it, or use another key.";
			break;
		case APIKEY_EXPIRED:
			message = "API key has expired";
			hint = "Use a key that has not expired.";
			break;
		case APIKEY_INSUFFICIENT_SCOPE:
			message = "API key lacks a scope this request requires";
			if (required != NULL)
				details = psprintf("This request requires the scope \"%s\".", required);
			else
				details = "This request requires a scope that no key can hold.";
			hint = "Use a key that was granted the scope.";
			break;
		case APIKEY_IP_DENIED:
			message = "API key may not be used from this address";
			hint = "Use the key from one of its allowed networks.";
			break;
		case APIKEY_RESOURCE_DENIED:
			message = "Not found";
			break;
		case APIKEY_RATE_LIMITED:
			message = "API key is over its rate limit";
			hint = psprintf("Retry after %ld seconds.", retry);
			break;
		case APIKEY_QUOTA_EXCEEDED:
			message = "API key has no credits left";
			hint = retry > 0 ? psprintf("Credits are refilled in %ld seconds.", retry) :
				"Ask the key's provider for more credits.";
			break;
		default:
			elog(ERROR, "unexpected verification code %d", (int) code);
	}
	refuse(apikey_code_http_status(code), apikey_code_name(code),
		   message, details, hint, retry, NULL);
}

/*
 * switch_role: SET LOCAL ROLE to the key's db_role, as PostgREST does for
 * a JWT's role claim, after checking it is still a role a key may use: the
 * key's owner must still be a member of it, and so must the session user
 * (PostgREST's authenticator), as SET ROLE requires.  The client learns
 * only that the key cannot be used; the reason goes to the server log.
 */
static void
switch_role(int64 key_id, const char *rolname, const char *owner_role)
{
	Oid			roleid;
	int			sqlstate;
	const char *why;

	why = apikey_db_role_refusal(rolname, get_role_oid(owner_role, true),
								 &roleid, &sqlstate);
	if (why == NULL && !is_member_of_role(GetSessionUserId(), roleid))
		why = "the session user is not a member of it";
	if (why != NULL)
		refuse(403, "ROLE_REFUSED",
			   "The API key cannot be used: its database role is not usable",
			   NULL, "Ask the key's owner to check the key.", 0,
			   psprintf("The db_role of api key " INT64_FORMAT " is refused: %s.",
						key_id, why));
	(void) set_config_option("role", rolname,
							 superuser() ? PGC_SUSET : PGC_USERSET,
							 PGC_S_SESSION, GUC_ACTION_LOCAL, true, 0, false);
}

/*
 * apikey.postgrest_pre_request() returns void
 */
Datum
apikey_postgrest_pre_request(PG_FUNCTION_ARGS)
{
	const char *headers = GetConfigOption("request.headers", true, false);
	JsonSearch key;
	JsonSearch claims;
	ApikeyRequest req;
	ApikeyResult res;
	char		scope[PATH_SCOPE_MAX + 1];
	const char *scopes[1];
	int			scope_lens[1];
	const char *required = NULL;
	char	   *owner = NULL;
	char	   *db_role = NULL;
	char	   *owner_role;
	int64		key_id;
	Datum		granted;

	/*
	 * Once per transaction, as PostgREST calls it: a second key would
	 * otherwise mix with the first one's role.
	 */
	if (apikey_identity_present())
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("apikey.postgrest_pre_request() already authenticated a key in this transaction"),
				 errhint("Call it once per transaction, as PostgREST's db-pre-request does.")));

	if (!json_search(headers, key_header, &key))
		key.matches = 1;		/* unreadable headers: malformed, not absent */
	if (key.matches == 0)
	{
		/* no key: leave a verified JWT alone, or run as anonymous */
		if (json_search(GetConfigOption("request.jwt.claims", true, false),
						NULL, &claims) && claims.other_fields)
			PG_RETURN_VOID();
		if (!require_key)
			PG_RETURN_VOID();
		refuse(401, "MALFORMED", "API key required", NULL,
			   psprintf("Send an API key in the %s header.", key_header), 0, NULL);
	}

	memset(&req, 0, sizeof(req));
	/* what it costs a metered key: by path, never by what the client sends */
	req.cost = apikey_postgrest_cost(GetConfigOption("request.path", true, false));
	req.client_addr = client_address(headers);
	req.client_isnull = (req.client_addr == (Datum) 0);
	if (scopes_mode == SCOPES_PATH)
	{
		bool		none;

		if (!path_scope(GetConfigOption("request.method", true, false),
						GetConfigOption("request.path", true, false),
						scope, sizeof(scope), &none))
			req.unsatisfiable = true;
		else if (!none)
		{
			scopes[0] = scope;
			scope_lens[0] = strlen(scope);
			req.scopes = scopes;
			req.scope_lens = scope_lens;
			req.nscopes = 1;
			required = scope;
		}
	}

	if (key.matches != 1 || key.value == NULL)
		apikey_check_key(NULL, KF_KEY_MAX_LEN + 1, &req, &res);	/* MALFORMED */
	else
	{
		apikey_check_key(key.value, strlen(key.value), &req, &res);
		kf_wipe(key.value, strlen(key.value));
	}

	if (res.code != APIKEY_VALID)
	{
		ApikeyCode	code = res.code;
		long		retry = (code == APIKEY_RATE_LIMITED ||
							 (code == APIKEY_QUOTA_EXCEEDED && !res.retry_isnull)) ?
			retry_seconds(&res) : 0;

		apikey_check_done(&res);
		refuse_code(code, required, retry);
	}

	key_id = res.key.key_id;
	if (!res.key.owner_isnull)
		owner = TextDatumGetCString(res.key.owner);
	granted = datumCopy(res.key.scopes, false, -1);
	owner_role = pstrdup(NameStr(*DatumGetName(res.key.owner_role)));
	if (!res.key.db_role_isnull)
		db_role = pstrdup(NameStr(*DatumGetName(res.key.db_role)));
	apikey_check_done(&res);

	apikey_identity_set(key_id, owner, granted);
	if (db_role != NULL)
		switch_role(key_id, db_role, owner_role);
	PG_RETURN_VOID();
}
