/*-------------------------------------------------------------------------
 *
 * values.c
 *	  Conversions of SQL values that several files need, each written once:
 *	  the elements of a text[] and an interval in microseconds.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "values.h"

/*
 * apikey_text_array: the elements of a text[] (NULL ones flagged in
 * *nulls), as deconstruct_array gives them; returns how many.  The one
 * place apikey unpacks a text[].
 */
int
apikey_text_array(ArrayType *arr, Datum **elems, bool **nulls)
{
	int			n;

	deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT, elems, nulls, &n);
	return n;
}

/*
 * apikey_text_elems: the non-NULL elements of a text[] datum, detoasted,
 * into a palloc'd array (*elems); returns how many.
 */
int
apikey_text_elems(Datum array, text ***elems)
{
	Datum	   *datums;
	bool	   *nulls;
	int			n = apikey_text_array(DatumGetArrayTypeP(array), &datums, &nulls);
	int			i;
	int			m = 0;

	*elems = palloc(sizeof(text *) * Max(n, 1));
	for (i = 0; i < n; i++)
		if (!nulls[i])
			(*elems)[m++] = DatumGetTextPP(datums[i]);
	return m;
}

/*
 * apikey_interval_us: an interval in microseconds, months as 30 days;
 * saturates instead of overflowing, so a huge window means "hardly ever
 * refills", never a negative (unlimited) one.
 */
int64
apikey_interval_us(const Interval *iv)
{
	double		us = (double) iv->time + (double) iv->day * USECS_PER_DAY +
		(double) iv->month * DAYS_PER_MONTH * USECS_PER_DAY;

	if (us >= (double) (PG_INT64_MAX / 2))
		return PG_INT64_MAX / 2;
	if (us <= (double) (PG_INT64_MIN / 2))
		return PG_INT64_MIN / 2;
	return (int64) us;
}
