/*-------------------------------------------------------------------------
 *
 * scope.c
 *	  Scope syntax checking and granted-vs-required matching.
 *
 * This file owns the meaning of a scope string (see scope.h).  It is pure
 * C99: no PostgreSQL headers, no allocation, no global state.  Matching
 * walks both strings segment by segment with offsets; the write-implies-read
 * rule is applied by pretending one required segment reads "write" instead
 * of "read", never by building a new string.
 *
 * When the first and the last segment of the required scope are both
 * "read" (and distinct, e.g. "read:x:read"), the two substitutions may also
 * be combined, so the relation stays transitive: "write:x:write" grants
 * "read:x:write", which grants "read:x:read".
 *
 * src/scope.c
 *
 *-------------------------------------------------------------------------
 */
#include "scope.h"

#include <string.h>

/* A segment of a scope: s[off .. off + len). */
typedef struct scope_seg
{
	size_t		off;
	size_t		len;
	bool		last;			/* no ':' follows */
} scope_seg;

/*
 * scope_next_seg
 *		Return in *seg the segment starting at offset pos of s[0..len).
 *		The next segment, if any, starts at seg->off + seg->len + 1.
 */
static void
scope_next_seg(const char *s, size_t len, size_t pos, scope_seg *seg)
{
	size_t		end = pos;

	while (end < len && s[end] != ':')
		end++;
	seg->off = pos;
	seg->len = end - pos;
	seg->last = (end >= len);
}

/*
 * scope_seg_is
 *		true if segment seg of s equals the NUL-terminated word w.
 */
static bool
scope_seg_is(const char *s, const scope_seg *seg, const char *w)
{
	size_t		wlen = strlen(w);

	return seg->len == wlen && memcmp(s + seg->off, w, wlen) == 0;
}

/*
 * scope_char_ok
 *		true if c may appear in a non-wildcard segment: [a-z0-9_.-].
 */
static bool
scope_char_ok(char c)
{
	return (c >= 'a' && c <= 'z') ||
		(c >= '0' && c <= '9') ||
		c == '_' || c == '.' || c == '-';
}

/*
 * scope_valid
 *		true if s[0..len) is segment(:segment)*, each segment [a-z0-9_.-]+
 *		or exactly "*", at most SCOPE_MAX_LEN bytes and SCOPE_MAX_SEGMENTS
 *		segments.
 */
bool
scope_valid(const char *s, size_t len)
{
	size_t		pos = 0;
	int			nseg = 0;

	if (s == NULL || len == 0 || len > SCOPE_MAX_LEN)
		return false;

	for (;;)
	{
		scope_seg	seg;
		size_t		i;

		scope_next_seg(s, len, pos, &seg);
		if (seg.len == 0)
			return false;
		if (++nseg > SCOPE_MAX_SEGMENTS)
			return false;
		if (!scope_seg_is(s, &seg, "*"))
		{
			for (i = seg.off; i < seg.off + seg.len; i++)
			{
				if (!scope_char_ok(s[i]))
					return false;
			}
		}
		if (seg.last)
			return true;
		pos = seg.off + seg.len + 1;
	}
}

/*
 * scope_match
 *		Plain segment-by-segment match of granted g against required r, with
 *		r's first segment read as "write" if subst_first and its last segment
 *		read as "write" if subst_last.  Both inputs must be valid.
 */
static bool
scope_match(const char *g, size_t glen, const char *r, size_t rlen,
			bool subst_first, bool subst_last)
{
	static const char write_word[] = "write";
	size_t		gpos = 0;
	size_t		rpos = 0;
	bool		first = true;

	for (;;)
	{
		scope_seg	gs;
		scope_seg	rs;
		const char *rtext;
		size_t		rtlen;

		scope_next_seg(g, glen, gpos, &gs);
		scope_next_seg(r, rlen, rpos, &rs);

		if ((first && subst_first) || (rs.last && subst_last))
		{
			rtext = write_word;
			rtlen = sizeof(write_word) - 1;
		}
		else
		{
			rtext = r + rs.off;
			rtlen = rs.len;
		}

		if (scope_seg_is(g, &gs, "*"))
		{
			/* A trailing '*' takes this and all remaining segments. */
			if (gs.last)
				return true;
		}
		else if (gs.len != rtlen || memcmp(g + gs.off, rtext, rtlen) != 0)
			return false;

		if (gs.last || rs.last)
			return gs.last && rs.last;

		gpos = gs.off + gs.len + 1;
		rpos = rs.off + rs.len + 1;
		first = false;
	}
}

/*
 * scope_grants
 *		true if granted scope g satisfies required scope r, directly or
 *		through write-implies-read on r's first and/or last segment.
 *		Invalid input on either side never matches.
 */
bool
scope_grants(const char *g, size_t glen, const char *r, size_t rlen)
{
	scope_seg	rfirst;
	scope_seg	rlast;
	size_t		lastoff;
	bool		first_read;
	bool		last_read;

	if (!scope_valid(g, glen) || !scope_valid(r, rlen))
		return false;

	if (scope_match(g, glen, r, rlen, false, false))
		return true;

	scope_next_seg(r, rlen, 0, &rfirst);
	lastoff = rlen;
	while (lastoff > 0 && r[lastoff - 1] != ':')
		lastoff--;
	scope_next_seg(r, rlen, lastoff, &rlast);

	first_read = scope_seg_is(r, &rfirst, "read");
	last_read = scope_seg_is(r, &rlast, "read");

	if (first_read && scope_match(g, glen, r, rlen, true, false))
		return true;
	if (last_read && scope_match(g, glen, r, rlen, false, true))
		return true;
	/* Both at once only matters for distinct first and last segments. */
	if (first_read && last_read && !rfirst.last &&
		scope_match(g, glen, r, rlen, true, true))
		return true;

	return false;
}
