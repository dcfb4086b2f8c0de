/*-------------------------------------------------------------------------
 *
 * heaprow.h
 *	  Who is changing a heap row (heaprow.c): its header read under the
 *	  buffer's share lock, and the two rules apikey applies to it.
 *
 *-------------------------------------------------------------------------
 */
#ifndef APIKEY_HEAPROW_H
#define APIKEY_HEAPROW_H

#include "postgres.h"

#include "access/htup.h"
#include "storage/buf.h"

extern bool apikey_row_settled(Buffer buf, HeapTuple tup);
extern bool apikey_row_busy(Buffer buf, HeapTuple tup);

#endif							/* APIKEY_HEAPROW_H */
