/*-------------------------------------------------------------------------
 *
 * validate.h
 *	  What a key's fields may hold (validate.c): the size limits, checked
 *	  in one place by apikey_create and by the CHECK constraints of
 *	  apikey.keys, which call the same C functions.
 *
 *-------------------------------------------------------------------------
 */
#ifndef APIKEY_VALIDATE_H
#define APIKEY_VALIDATE_H

#include "utils/array.h"

#define NAME_MAX_CHARS		256
#define OWNER_MAX_CHARS		256
#define MAX_RESOURCES		256
#define RESOURCE_MAX_BYTES	256
#define MAX_CIDRS			64
#define META_MAX_BYTES		8192

extern void apikey_validate_name(text *name);
extern void apikey_validate_scopes(ArrayType *scopes);
extern void apikey_validate_prefix(const char *prefix);
extern void apikey_validate_resources(ArrayType *resources);
extern void apikey_validate_cidrs(ArrayType *cidrs);
extern bool apikey_owner_ok(text *owner);
extern void apikey_require_tracker_for_limits(void);

#endif							/* APIKEY_VALIDATE_H */
