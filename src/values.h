/*-------------------------------------------------------------------------
 *
 * values.h
 *	  Conversions of SQL values that several files need (values.c), each
 *	  written once.
 *
 *-------------------------------------------------------------------------
 */
#ifndef APIKEY_VALUES_H
#define APIKEY_VALUES_H

#include "postgres.h"

#include "datatype/timestamp.h"
#include "utils/array.h"

extern int	apikey_text_elems(Datum array, text ***elems);
extern int	apikey_text_array(ArrayType *arr, Datum **elems, bool **nulls);
extern int64 apikey_interval_us(const Interval *iv);

#endif							/* APIKEY_VALUES_H */
