/*-------------------------------------------------------------------------
 *
 * common.h
 *	  What every file that defines SQL-callable functions shares: the
 *	  export macro, the size limits the SQL functions enforce and the
 *	  texts of the rules they refuse with.  It declares no function: each
 *	  subsystem's functions are in that subsystem's header.
 *
 *-------------------------------------------------------------------------
 */
#ifndef APIKEY_COMMON_H
#define APIKEY_COMMON_H

#include "fmgr.h"

/*
 * APIKEY_SQL_FUNCTION(name): PG_FUNCTION_INFO_V1 plus the export that the
 * library's hidden default visibility needs (PostgreSQL 15's macro marks
 * only the info record, not the function).
 */
#define APIKEY_SQL_FUNCTION(name) \
	PG_FUNCTION_INFO_V1(name); \
	extern PGDLLEXPORT Datum name(PG_FUNCTION_ARGS)

/* at most this many scopes per key, and per verify call */
#define APIKEY_MAX_SCOPES 64

/* errdetail texts shared by every place that rejects a scope or a prefix */
#define APIKEY_SCOPE_RULE \
	"A scope is segments of [a-z0-9_.-] or \"*\" separated by colons, at most %d bytes and %d segments."
#define APIKEY_PREFIX_RULE \
	"A prefix is 2 to 32 characters: a lower-case letter, then lower-case letters, digits or underscores, ending in a letter or digit."

#endif							/* APIKEY_COMMON_H */
