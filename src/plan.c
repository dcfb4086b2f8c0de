/*-------------------------------------------------------------------------
 *
 * plan.c
 *	  The rules of usage plans (plan.h): what a plan may hold, when its
 *	  refills fall due, and how a balance kept in shared memory follows its
 *	  row (a new grant, a refill).  Pure C: the calendar is the proleptic
 *	  Gregorian one of PostgreSQL's timestamps, computed from day numbers
 *	  (the civil-from-days algorithm), in UTC.
 *
 *-------------------------------------------------------------------------
 */
#include <string.h>

#include "plan.h"

#define USECS_PER_DAY_	INT64_C(86400000000)
/* days from 0000-03-01 to 2000-01-01 in the algorithm's era counting */
#define DAYS_TO_2000	730425

/* floor division for a negative time before 2000 */
static int64_t
floor_div(int64_t a, int64_t b)
{
	int64_t		q = a / b;

	return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* days since 2000-01-01 of y-m-d (m 1-12) */
static int64_t
days_of(int64_t y, int m, int d)
{
	int64_t		era;
	int64_t		yoe;
	int64_t		doy;
	int64_t		doe;

	y -= m <= 2;
	era = floor_div(y, 400);
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - DAYS_TO_2000;
}

/* y, m of a day since 2000-01-01 */
static void
civil_of(int64_t days, int64_t *y, int *m)
{
	int64_t		z = days + DAYS_TO_2000;
	int64_t		era = floor_div(z, 146097);
	int64_t		doe = z - era * 146097;
	int64_t		yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t		doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	int64_t		mp = (5 * doy + 2) / 153;

	*m = (int) (mp < 10 ? mp + 3 : mp - 9);
	*y = yoe + era * 400 + (*m <= 2);
}

static int
days_in_month(int64_t y, int m)
{
	static const int dim[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

	if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
		return 29;
	return dim[m - 1];
}

/* the monthly refill of month y-m: refill_day, or the month's last day */
static int64_t
month_refill(int64_t y, int m, int day)
{
	int			dim = days_in_month(y, m);

	return days_of(y, m, day > dim ? dim : day) * USECS_PER_DAY_;
}

static void
month_step(int64_t *y, int *m, int by)
{
	*m += by;
	if (*m > 12)
	{
		*m = 1;
		(*y)++;
	}
	else if (*m < 1)
	{
		*m = 12;
		(*y)--;
	}
}

/* plan_date_valid: y-m-d is a day of the calendar */
bool
plan_date_valid(int64_t y, int m, int d)
{
	return m >= 1 && m <= 12 && d >= 1 && d <= days_in_month(y, m);
}

/* plan_time_of: the time of y-m-d h:mi:s UTC */
int64_t
plan_time_of(int64_t y, int m, int d, int h, int mi, int s)
{
	return days_of(y, m, d) * USECS_PER_DAY_ +
		((int64_t) h * 3600 + mi * 60 + s) * INT64_C(1000000);
}

/* plan_interval_of: "day" or "month", else PLAN_REFILL_NONE */
PlanInterval
plan_interval_of(const char *s, int len)
{
	if (len == 3 && memcmp(s, "day", 3) == 0)
		return PLAN_REFILL_DAY;
	if (len == 5 && memcmp(s, "month", 5) == 0)
		return PLAN_REFILL_MONTH;
	return PLAN_REFILL_NONE;
}

const char *
plan_interval_name(PlanInterval interval)
{
	return interval == PLAN_REFILL_DAY ? "day" :
		interval == PLAN_REFILL_MONTH ? "month" : NULL;
}

/*
 * plan_problem: what is wrong with a plan's credits and refill (NULL if
 * nothing): the rule of apikey_create and of the CHECKs on apikey.keys and
 * apikey.owners.  interval is not NUL terminated.
 */
const char *
plan_problem(bool has_credits, int64_t credits, bool has_amount, int64_t amount,
			 const char *interval, int interval_len, bool has_day, int64_t day)
{
	PlanInterval iv = interval ? plan_interval_of(interval, interval_len) : PLAN_REFILL_NONE;

	if (has_credits && (credits < 0 || credits > PLAN_MAX_CREDITS))
		return "credits must be between 0 and 1000000000000000";
	if (has_amount && (amount < 0 || amount > PLAN_MAX_CREDITS))
		return "refill_amount must be between 0 and 1000000000000000";
	if (interval != NULL && iv == PLAN_REFILL_NONE)
		return "refill_interval must be \"day\" or \"month\"";
	if (has_amount != (interval != NULL))
		return "refill_amount and refill_interval must be given together";
	if (has_amount && !has_credits)
		return "a refill needs credits";
	if (has_day && iv != PLAN_REFILL_MONTH)
		return "refill_day is only for a monthly refill";
	if (has_day && (day < 1 || day > 31))
		return "refill_day must be between 1 and 31";
	return NULL;
}

/* plan_last_refill: the last refill at or before now (INT64_MIN: none) */
int64_t
plan_last_refill(PlanInterval interval, int day, int64_t now)
{
	int64_t		y;
	int			m;
	int64_t		b;

	if (interval == PLAN_REFILL_DAY)
		return floor_div(now, USECS_PER_DAY_) * USECS_PER_DAY_;
	if (interval != PLAN_REFILL_MONTH)
		return INT64_MIN;
	civil_of(floor_div(now, USECS_PER_DAY_), &y, &m);
	b = month_refill(y, m, day);
	if (b <= now)
		return b;
	month_step(&y, &m, -1);
	return month_refill(y, m, day);
}

/* plan_next_refill: the first refill after after (INT64_MAX: none) */
int64_t
plan_next_refill(PlanInterval interval, int day, int64_t after)
{
	int64_t		y;
	int			m;
	int64_t		b;

	if (interval == PLAN_REFILL_DAY)
		return (floor_div(after, USECS_PER_DAY_) + 1) * USECS_PER_DAY_;
	if (interval != PLAN_REFILL_MONTH)
		return INT64_MAX;
	civil_of(floor_div(after, USECS_PER_DAY_), &y, &m);
	b = month_refill(y, m, day);
	if (b > after)
		return b;
	month_step(&y, &m, 1);
	return month_refill(y, m, day);
}

/*
 * plan_bring: bring balance b to its row's rule at now; true if it
 * changed.  A newer grant (credits set again) replaces it; an older one
 * (a row read in an older snapshot) changes nothing; a refill due since
 * the last one applied (or since the grant) sets the balance to the
 * refill amount, once.
 */
bool
plan_bring(PlanBalance *b, const PlanCredits *rule, int64_t now)
{
	bool		changed = false;

	if (rule->set_at > b->set_at)
	{
		b->set_at = rule->set_at;
		b->period = rule->set_at;
		b->balance = rule->credits;
		changed = true;
	}
	if (rule->interval != PLAN_REFILL_NONE && rule->set_at == b->set_at)
	{
		int64_t		last = plan_last_refill(rule->interval, rule->refill_day, now);

		if (last > b->period)
		{
			b->period = last;
			b->balance = rule->refill_amount;
			changed = true;
		}
	}
	return changed;
}
