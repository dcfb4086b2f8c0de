/*-------------------------------------------------------------------------
 *
 * test_scope.c
 *	  Unit tests for src/scope.c, run without a server, output in TAP.
 *
 * test/unit/test_scope.c
 *
 *-------------------------------------------------------------------------
 */
#include "scope.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"


/*
 * esc
 *		Printable form of s for a test description: bytes outside 0x20..0x7e
 *		become \xNN.  Returns one of two static buffers, alternately.
 */
static const char *
esc(const char *s)
{
	static char bufs[2][4 * SCOPE_MAX_LEN + 64];
	static int	which = 0;
	char	   *out = bufs[which];
	size_t		o = 0;

	which = 1 - which;
	for (; *s != '\0' && o < sizeof(bufs[0]) - 5; s++)
	{
		unsigned char c = (unsigned char) *s;

		if (c >= 0x20 && c < 0x7f)
			out[o++] = (char) c;
		else
			o += (size_t) sprintf(out + o, "\\x%02x", c);
	}
	out[o] = '\0';
	return out;
}

/* scope_grants on copies of the strings in exactly-sized heap buffers. */
static bool
grants_exact(const char *g, size_t glen, const char *r, size_t rlen)
{
	char	   *gc = malloc(glen ? glen : 1);
	char	   *rc = malloc(rlen ? rlen : 1);
	bool		res;

	if (gc == NULL || rc == NULL)
		abort();
	memcpy(gc, g, glen);
	memcpy(rc, r, rlen);
	res = scope_grants(gc, glen, rc, rlen);
	free(gc);
	free(rc);
	return res;
}

static bool
valid_exact(const char *s, size_t len)
{
	char	   *c = malloc(len ? len : 1);
	bool		res;

	if (c == NULL)
		abort();
	memcpy(c, s, len);
	res = scope_valid(c, len);
	free(c);
	return res;
}

static const struct
{
	const char *granted;
	const char *required;
	bool		expect;
}			grant_rows[] = {
	/* exact match */
	{"read", "read", true},
	{"jobs:read", "jobs:read", true},
	{"a:b:c", "a:b:c", true},
	{"a.b-c_d:x", "a.b-c_d:x", true},
	{"jobs:read", "jobs:reads", false},
	{"jobs:reads", "jobs:read", false},
	{"jobs:read", "job:read", false},
	{"a:b:c", "a:b:d", false},
	{"a:b:c", "a:x:c", false},

	/* prefix-ness: neither side is a prefix match */
	{"jobs", "jobs:read", false},
	{"jobs:read", "jobs", false},
	{"a:b", "a:b:c", false},
	{"a:b:c", "a:b", false},
	{"jo", "jobs", false},
	{"jobs", "jo", false},

	/* '*' alone grants everything */
	{"*", "read", true},
	{"*", "write", true},
	{"*", "jobs", true},
	{"*", "jobs:read", true},
	{"*", "a:b:c", true},
	{"*", "*", true},
	{"*", "*:*", true},

	/* trailing '*' matches one or more remaining segments */
	{"jobs:*", "jobs", false},
	{"jobs:*", "jobs:read", true},
	{"jobs:*", "jobs:read:x", true},
	{"jobs:*", "jobs:a:b:c:d", true},
	{"jobs:*", "other:read", false},
	{"jobs:*", "jobsx:read", false},
	{"a:b:*", "a:b", false},
	{"a:b:*", "a:b:c", true},
	{"a:b:*", "a:c:d", false},

	/* non-trailing '*' matches exactly one segment */
	{"*:read", "jobs:read", true},
	{"*:read", "a:b:read", false},
	{"*:read", "read", false},
	{"*:read", "jobs:write", false},
	{"a:*:c", "a:b:c", true},
	{"a:*:c", "a:c", false},
	{"a:*:c", "a:b:b:c", false},
	{"*:*", "a:b", true},
	{"*:*", "a", false},
	{"*:*", "a:b:c", true},
	{"*:b:*", "a:b:c:d", true},
	{"*:b:*", "a:c:c", false},

	/* a required '*' is an ordinary value, matched only by a granted '*' */
	{"jobs", "*", false},
	{"jobs:read", "jobs:*", false},
	{"jobs:*", "jobs:*", true},
	{"*", "*:read", true},
	{"read", "*", false},
	{"write", "*", false},
	{"a:b", "*:b", false},

	/* write implies read, first and last segment */
	{"jobs:write", "jobs:read", true},
	{"write:databases", "read:databases", true},
	{"write", "read", true},
	{"read", "write", false},
	{"jobs:read", "jobs:write", false},
	{"read:databases", "write:databases", false},
	{"jobs:write", "other:read", false},
	{"write:jobs:x", "read:jobs:x", true},
	{"a:b:write", "a:b:read", true},
	{"a:write:b", "a:read:b", false},
	{"*:write", "jobs:read", true},
	{"*:write", "a:b:read", false},
	{"write:*", "read:x", true},
	{"write:*", "read:x:y", true},
	{"write:*", "read", false},
	{"write:*", "write:x", true},
	{"write:jobs", "read:other", false},
	{"jobs:write", "jobs:read:x", false},
	{"jobs:write:x", "jobs:read:x", false},
	{"writer", "read", false},
	{"write", "reads", false},
	{"write", "jobs:read", false},
	{"jobs:write", "read", false},
	{"read:write", "read:read", true},
	{"write:read", "read:read", true},
	{"write:write", "read:read", true},
	{"write:x:write", "read:x:read", true},
	{"write:x:read", "read:x:read", true},
	{"read:x:write", "read:x:read", true},
	{"write:x:write", "read:y:read", false},
	{"write:*:write", "read:y:read", true},

	/* "admin" is not special */
	{"admin", "read", false},
	{"admin", "write", false},
	{"admin", "admin", true},
	{"admin", "admin:read", false},
	{"read", "admin", false},

	/* invalid input never matches, not even itself */
	{"", "", false},
	{"jobs:", "jobs:", false},
	{"JOBS", "JOBS", false},
	{"*", "", false},
	{"*", "a::b", false},
	{"a::b", "a::b", false},
	{"**", "**", false},
	{"", "read", false},
};

static void
test_grants(void)
{
	size_t		i;

	for (i = 0; i < sizeof(grant_rows) / sizeof(grant_rows[0]); i++)
	{
		const char *g = grant_rows[i].granted;
		const char *r = grant_rows[i].required;

		ok(grants_exact(g, strlen(g), r, strlen(r)) == grant_rows[i].expect,
		   "\"%s\" %s \"%s\"", esc(g),
		   grant_rows[i].expect ? "grants" : "does not grant", esc(r));
	}

	/* lengths are honoured: only g[0..glen) and r[0..rlen) count */
	ok(scope_grants("jobs:readX", 9, "jobs:readY", 9),
	   "only the given lengths are compared");
	ok(!scope_grants("jobs:*", 6, "jobs:", 5),
	   "required \"jobs:\" (cut by length) is invalid and not granted");
	ok(!scope_grants(NULL, 0, "read", 4) && !scope_grants("*", 1, NULL, 0),
	   "NULL never matches");
}

static void
test_valid(void)
{
	static const struct
	{
		const char *s;
		bool		valid;
	}			rows[] = {
		{"read", true},
		{"jobs:read", true},
		{"a.b-c_d:x", true},
		{"*", true},
		{"jobs:*", true},
		{"*:read", true},
		{"*:*", true},
		{"a:*:c", true},
		{"0", true},
		{"-", true},
		{"a:b:c:d:e:f:g:h:i:j:k:l:m:n:o:p", true},	/* 16 segments */
		{"", false},
		{":", false},
		{"a:", false},
		{":a", false},
		{"a::b", false},
		{"A", false},
		{"jobs:Read", false},
		{"jobs read", false},
		{"jo*bs", false},
		{"*a", false},
		{"a*", false},
		{"**", false},
		{"a:**", false},
		{"a:b:c:d:e:f:g:h:i:j:k:l:m:n:o:p:q", false},	/* 17 segments */
		{"caf\xc3\xa9", false},
		{"jobs:\x80", false},
		{"a/b", false},
		{"a;b", false},
		{"a\tb", false},
		{"a\nb", false},
	};
	size_t		i;
	char		buf[SCOPE_MAX_LEN + 2];

	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		ok(valid_exact(rows[i].s, strlen(rows[i].s)) == rows[i].valid,
		   "scope \"%s\" is %s", esc(rows[i].s), rows[i].valid ? "valid" : "invalid");

	memset(buf, 'a', sizeof(buf));
	ok(valid_exact(buf, SCOPE_MAX_LEN), "128-byte scope is valid");
	ok(!valid_exact(buf, SCOPE_MAX_LEN + 1), "129-byte scope is invalid");
	for (i = 0; i < SCOPE_MAX_LEN; i += 2)
		buf[i + 1] = ':';
	ok(!valid_exact(buf, 2 * 17 - 1), "17 one-character segments are invalid");
	ok(valid_exact(buf, 2 * 16 - 1), "16 one-character segments are valid");
	ok(!valid_exact("a\0b", 3), "embedded NUL is invalid");
	ok(!valid_exact("\0", 1), "a lone NUL is invalid");
	ok(!scope_valid(NULL, 0), "NULL is invalid");
	ok(scope_valid("read:x", 4), "only len bytes are looked at");
}

int
main(void)
{
	test_grants();
	test_valid();

	printf("1..%d\n", test_num);
	if (test_failed > 0)
		fprintf(stderr, "# %d of %d tests failed\n", test_failed, test_num);
	return test_failed > 0 ? 1 : 0;
}
