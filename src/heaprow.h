/*-------------------------------------------------------------------------
 *
 * heaprow.h
 *	  Who is changing a heap row (heaprow.c): its header read under the
 *	  buffer's share lock, and the two rules apikey applies to it; and
 *	  what a trigger's UPDATE changed in it.
 *
 *-------------------------------------------------------------------------
 */
#ifndef APIKEY_HEAPROW_H
#define APIKEY_HEAPROW_H

#include "postgres.h"

#include "access/htup.h"
#include "access/tupdesc.h"
#include "storage/buf.h"

extern bool apikey_row_settled(Buffer buf, HeapTuple tup);
extern bool apikey_row_busy(Buffer buf, HeapTuple tup);
extern bool apikey_column_changed(TupleDesc desc, HeapTuple o, HeapTuple n,
								  const char *col);

#endif							/* APIKEY_HEAPROW_H */
