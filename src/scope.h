/*-------------------------------------------------------------------------
 *
 * scope.h
 *	  Scope syntax and matching.  Pure C, no PostgreSQL headers.
 *
 * A scope is segment(:segment)*, each segment [a-z0-9_.-]+ or a lone '*'.
 * A granted scope matches a required one segment by segment: a granted '*'
 * matches any one segment; a granted '*' as the last segment matches one or
 * more remaining segments.  A '*' in a required scope is an ordinary
 * segment value, matched only by a granted '*'.
 *
 * write implies read: a required scope whose first segment is "read" is
 * also satisfied by a grant matching it with that segment replaced by
 * "write"; likewise for the last segment ("jobs:read" <- "jobs:write",
 * "read:databases" <- "write:databases", "read" <- "write").
 *
 *-------------------------------------------------------------------------
 */
#ifndef APIKEY_SCOPE_H
#define APIKEY_SCOPE_H

#include <stddef.h>
#include <stdbool.h>

#define SCOPE_MAX_LEN		128		/* bytes in one scope */
#define SCOPE_MAX_SEGMENTS	16

/* true if s[0..len) is a valid scope within the limits above */
extern bool scope_valid(const char *s, size_t len);

/*
 * true if the granted scope g[0..glen) satisfies the required scope
 * r[0..rlen), including the write-implies-read rule.  Both are assumed
 * valid; invalid input simply does not match.
 */
extern bool scope_grants(const char *g, size_t glen, const char *r, size_t rlen);

#endif							/* APIKEY_SCOPE_H */
