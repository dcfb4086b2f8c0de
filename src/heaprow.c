/*-------------------------------------------------------------------------
 *
 * heaprow.c
 *	  Reading a heap row's header (xmin, xmax, infomask) while only a pin
 *	  is held, under the buffer's share lock, for the two decisions apikey
 *	  makes from it without a snapshot:
 *	  - apikey_row_settled (verify_probe.c): may a copy of the row be
 *		cached across transactions?  Its xmax must be unset or a mere row
 *		lock, and its xmin not our own transaction's: a version that
 *		another transaction is replacing or deleting, visible only to
 *		older snapshots, must not outlive this call, and neither may one
 *		that our own transaction could still roll back.
 *	  - apikey_row_busy (worker.c): is another transaction updating,
 *		deleting or locking the row (or did, and committed: then this is
 *		an old version)?  Then the worker writes it by SQL, which waits for
 *		the row lock; an in-place write would be lost when the other
 *		version commits.  Any locker counts here, unlike above.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/transam.h"
#include "access/xact.h"
#include "executor/spi.h"
#include "storage/bufmgr.h"
#include "utils/datum.h"

#include "heaprow.h"

typedef struct RowHeader
{
	TransactionId xmin;
	TransactionId xmax;			/* raw: a multixact if XMAX_IS_MULTI */
	uint16		infomask;
} RowHeader;

static RowHeader
read_header(Buffer buf, HeapTuple tup)
{
	RowHeader	h;

	LockBuffer(buf, BUFFER_LOCK_SHARE);
	h.xmin = HeapTupleHeaderGetXmin(tup->t_data);
	h.xmax = HeapTupleHeaderGetRawXmax(tup->t_data);
	h.infomask = tup->t_data->t_infomask;
	LockBuffer(buf, BUFFER_LOCK_UNLOCK);
	return h;
}

static bool
xmax_unset(const RowHeader *h)
{
	return (h->infomask & HEAP_XMAX_INVALID) || !TransactionIdIsValid(h->xmax);
}

bool
apikey_row_settled(Buffer buf, HeapTuple tup)
{
	RowHeader	h = read_header(buf, tup);

	return (xmax_unset(&h) || HEAP_XMAX_IS_LOCKED_ONLY(h.infomask)) &&
		!TransactionIdIsCurrentTransactionId(h.xmin);
}

bool
apikey_row_busy(Buffer buf, HeapTuple tup)
{
	RowHeader	h = read_header(buf, tup);

	if (xmax_unset(&h))
		return false;
	return (h.infomask & HEAP_XMAX_IS_MULTI) || !TransactionIdDidAbort(h.xmax);
}

/*
 * apikey_column_changed: whether column col differs between the old and
 * the new version of a row (an error if the table has no such column)
 */
bool
apikey_column_changed(TupleDesc desc, HeapTuple o, HeapTuple n, const char *col)
{
	int			attnum = SPI_fnumber(desc, col);
	Form_pg_attribute att;
	bool		onull;
	bool		nnull;
	Datum		od;
	Datum		nd;

	if (attnum <= 0)
		elog(ERROR, "table has no column %s", col);
	att = TupleDescAttr(desc, attnum - 1);
	od = heap_getattr(o, attnum, desc, &onull);
	nd = heap_getattr(n, attnum, desc, &nnull);
	if (onull || nnull)
		return onull != nnull;
	return !datumIsEqual(od, nd, att->attbyval, att->attlen);
}
