/*-------------------------------------------------------------------------
 *
 * postgrest_cost.c
 *	  What a PostgREST request costs a metered key: apikey.postgrest_costs,
 *	  a superuser's list of "path=cost" entries (comma separated), matched
 *	  against request.path in order, an entry ending in "*" matching every
 *	  path it begins; the first match wins, and a request no entry matches
 *	  costs 1.  Nothing the client sends but the path PostgREST routes
 *	  chooses the cost.  The list is parsed once, when set (its check hook),
 *	  into the setting's extra.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <ctype.h>
#include <errno.h>

#include "utils/guc.h"

#include "compat.h"
#include "plan.h"
#include "postgrest.h"

#define MAX_COSTS	64
#define COST_PATH_MAX	256

typedef struct CostEntry
{
	char		path[COST_PATH_MAX + 1];
	int			len;
	bool		prefix;			/* written with a trailing "*" */
	int32		cost;
} CostEntry;

typedef struct CostList
{
	int			n;
	CostEntry	entries[FLEXIBLE_ARRAY_MEMBER];
} CostList;

static char *costs_setting = NULL;
static CostList *costs = NULL;

/* check_costs: parse "path=cost, ..." into a CostList */
static bool
check_costs(char **newval, void **extra, GucSource source)
{
	CostEntry	entries[MAX_COSTS];
	const char *p = *newval;
	CostList   *out;
	int			n = 0;

	while (p != NULL && *p != '\0')
	{
		const char *start;
		const char *eq;
		long		cost;
		char	   *end;
		CostEntry  *e;

		while (isspace((unsigned char) *p) || *p == ',')
			p++;
		if (*p == '\0')
			break;
		start = p;
		while (*p != '\0' && *p != ',' && *p != '=')
			p++;
		if (*p != '=')
		{
			GUC_check_errdetail("Each entry is path=cost, e.g. /rpc/report=10.");
			return false;
		}
		eq = p;
		while (eq > start && isspace((unsigned char) eq[-1]))
			eq--;
		if (n == MAX_COSTS)
		{
			GUC_check_errdetail("At most %d entries.", MAX_COSTS);
			return false;
		}
		e = &entries[n];
		e->len = (int) (eq - start);
		if (e->len == 0 || *start != '/' || e->len > COST_PATH_MAX)
		{
			GUC_check_errdetail("A path starts with \"/\" and has at most %d bytes.", COST_PATH_MAX);
			return false;
		}
		memcpy(e->path, start, e->len);
		e->path[e->len] = '\0';
		e->prefix = e->path[e->len - 1] == '*';
		if (e->prefix)
			e->path[--e->len] = '\0';
		p++;
		errno = 0;
		cost = strtol(p, &end, 10);
		if (end == p || errno != 0 || cost < 0 || cost > PLAN_MAX_COST)
		{
			GUC_check_errdetail("A cost is an integer from 0 to %d.", PLAN_MAX_COST);
			return false;
		}
		e->cost = (int32) cost;
		p = end;
		while (isspace((unsigned char) *p))
			p++;
		if (*p != '\0' && *p != ',')
		{
			GUC_check_errdetail("Each entry is path=cost, e.g. /rpc/report=10.");
			return false;
		}
		n++;
	}
	out = apikey_guc_extra_alloc(offsetof(CostList, entries) + sizeof(CostEntry) * Max(n, 1));
	if (out == NULL)
		return false;
	out->n = n;
	memcpy(out->entries, entries, sizeof(CostEntry) * n);
	*extra = out;
	return true;
}

static void
assign_costs(const char *newval, void *extra)
{
	costs = (CostList *) extra;
}

/* apikey_postgrest_cost: what a request to path costs (NULL path: 1) */
int32
apikey_postgrest_cost(const char *path)
{
	int			i;

	if (costs == NULL || path == NULL)
		return 1;
	for (i = 0; i < costs->n; i++)
	{
		const CostEntry *e = &costs->entries[i];

		if (e->prefix ? strncmp(path, e->path, e->len) == 0 : strcmp(path, e->path) == 0)
			return e->cost;
	}
	return 1;
}

/* apikey_postgrest_cost_init: the setting, from apikey_postgrest_init */
void
apikey_postgrest_cost_init(void)
{
	DefineCustomStringVariable("apikey.postgrest_costs",
							   "What a PostgREST request costs a metered key, by path: path=cost, ...",
							   "Matched in order against request.path; a path ending in * matches every path it begins; unmatched requests cost 1.",
							   &costs_setting,
							   "",
							   PGC_SUSET,
							   0,
							   check_costs,
							   assign_costs,
							   NULL);
}
