/*-------------------------------------------------------------------------
 *
 * compat.h
 *	  The differences between the PostgreSQL majors apikey supports (15, 17
 *	  and 18), in one place.  Every PG_VERSION_NUM condition of the tree is
 *	  here; the rest of the code uses the names below and reads the same on
 *	  every version.
 *
 *	  - The JSON parser's semantic actions return JsonParseErrorType from
 *	    16 on (void before), and from 17 on makeJsonLexContextCstringLen
 *	    takes the context to fill as its first argument.
 *	  - In-place heap updates: heap_inplace_lock() and
 *	    heap_inplace_update_and_unlock() take the tuple lock and wait out a
 *	    concurrent updater, closing the window between checking a row and
 *	    overwriting it that plain heap_inplace_update() leaves open.  They
 *	    exist from 18.0, 17.1, 16.5 and 15.9 on; 18 has nothing else.
 *	  - Ownership checks are object_ownercheck() from 16 on
 *	    (pg_class_ownercheck() before).
 *	  - A GUC check hook's "extra" is freed by the GUC machinery: with
 *	    free() up to 15, with guc_free() (a memory context) from 16 on, so
 *	    it must come from the matching allocator.
 *	  - 16 moved the varlena macros (VARDATA_ANY, ...) to varatt.h.
 *	  - LockHeldByMe() learned to answer "this mode or a stronger one" in
 *	    17; before, each mode is asked about in turn.
 *	  - A process's PGPROC slot: MyProcNumber from 17 on (0-based), before
 *	    that MyBackendId (1-based, regular backends and workers only).
 *	  - 18: index_beginscan() takes an instrumentation argument (NULL: none)
 *	    and RelationGetPrimaryKeyIndex() whether a deferrable key will do
 *	    (apikey's never are; false keeps 15's meaning).
 *
 *-------------------------------------------------------------------------
 */
#ifndef APIKEY_COMPAT_H
#define APIKEY_COMPAT_H

#include "access/heapam.h"
#include "catalog/pg_class.h"
#include "common/jsonapi.h"
#include "miscadmin.h"
#include "storage/lock.h"
#include "utils/acl.h"
#include "utils/guc.h"
#if PG_VERSION_NUM >= 170000
#include "storage/procnumber.h"
#else
#include "storage/backendid.h"
#endif
#if PG_VERSION_NUM >= 160000
#include "varatt.h"				/* VARDATA and friends left postgres.h in 16 */
#endif

/* a JSON semantic action's result type, and the value that continues parsing */
#if PG_VERSION_NUM >= 160000
#define APIKEY_JSON_ACTION JsonParseErrorType
#define APIKEY_JSON_CONTINUE JSON_SUCCESS
#else
#define APIKEY_JSON_ACTION void
#define APIKEY_JSON_CONTINUE
#endif

/* a lexer over json[0..len), decoding escapes, in the database encoding */
static inline JsonLexContext *
apikey_json_lexer(char *json, size_t len, int encoding)
{
#if PG_VERSION_NUM >= 170000
	return makeJsonLexContextCstringLen(NULL, json, len, encoding, true);
#else
	return makeJsonLexContextCstringLen(json, (int) len, encoding, true);
#endif
}

/* whether the locking in-place update primitives exist */
#if PG_VERSION_NUM >= 170001 || \
	(PG_VERSION_NUM >= 160005 && PG_VERSION_NUM < 170000) || \
	(PG_VERSION_NUM >= 150009 && PG_VERSION_NUM < 160000)
#define APIKEY_HAVE_INPLACE_LOCK 1
#endif

/* whether role owns the relation relid */
#if PG_VERSION_NUM >= 160000
#define apikey_relation_owner(relid, role) \
	object_ownercheck(RelationRelationId, (relid), (role))
#else
#define apikey_relation_owner(relid, role) pg_class_ownercheck((relid), (role))
#endif

/* memory for a GUC check hook's extra (NULL when out of memory) */
#if PG_VERSION_NUM >= 160000
#define apikey_guc_extra_alloc(size) guc_malloc(LOG, (size))
#define apikey_guc_extra_free(p) guc_free(p)
#else
#define apikey_guc_extra_alloc(size) malloc(size)
#define apikey_guc_extra_free(p) free(p)
#endif

/* an index scan with nkeys keys and no ordering */
#if PG_VERSION_NUM >= 180000
#define apikey_index_beginscan(heap, index, snapshot, nkeys) \
	index_beginscan((heap), (index), (snapshot), NULL, (nkeys), 0)
#define apikey_primary_key_index(rel) RelationGetPrimaryKeyIndex((rel), false)
#else
#define apikey_index_beginscan(heap, index, snapshot, nkeys) \
	index_beginscan((heap), (index), (snapshot), (nkeys), 0)
#define apikey_primary_key_index(rel) RelationGetPrimaryKeyIndex(rel)
#endif

/* this process's slot among the PGPROCs, -1 if it has none */
#if PG_VERSION_NUM >= 170000
#define apikey_my_proc_slot() ((int) MyProcNumber)
#else
#define apikey_my_proc_slot() ((int) MyBackendId - 1)
#endif

/* does this transaction hold relation relid in mode or a stronger one? */
static inline bool
apikey_relation_locked_by_me(Oid relid, LOCKMODE mode)
{
	LOCKTAG		tag;

	SET_LOCKTAG_RELATION(tag, MyDatabaseId, relid);
#if PG_VERSION_NUM >= 170000
	return LockHeldByMe(&tag, mode, true);
#else
	for (; mode <= MaxLockMode; mode++)
		if (LockHeldByMe(&tag, mode))
			return true;
	return false;
#endif
}

/*
 * In-place overwrite of a heap tuple that lies in buf (pinned by the
 * caller): apikey_inplace_begin() locks it, or says false if it is being
 * or was updated (then nothing is held and the caller writes by SQL);
 * after true the caller reads the tuple, builds the new version of the
 * same length and calls apikey_inplace_finish().
 */
#ifdef APIKEY_HAVE_INPLACE_LOCK
static inline void
apikey_inplace_wait_released(void *arg)
{
	/* the caller keeps its pin across the wait; it holds nothing else */
}

static inline bool
apikey_inplace_begin(Relation rel, HeapTuple tup, Buffer buf)
{
	return heap_inplace_lock(rel, tup, buf, apikey_inplace_wait_released, NULL);
}

static inline void
apikey_inplace_finish(Relation rel, HeapTuple oldtup, HeapTuple newtup, Buffer buf)
{
	heap_inplace_update_and_unlock(rel, oldtup, newtup, buf);
}
#else
static inline bool
apikey_inplace_begin(Relation rel, HeapTuple tup, Buffer buf)
{
	return true;
}

static inline void
apikey_inplace_finish(Relation rel, HeapTuple oldtup, HeapTuple newtup, Buffer buf)
{
	heap_inplace_update(rel, newtup);
}
#endif

#endif							/* APIKEY_COMPAT_H */
