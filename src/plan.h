/*-------------------------------------------------------------------------
 *
 * plan.h
 *	  Usage plans (plan.c): the rules of a balance of credits and its
 *	  calendar refills, in pure C (no PostgreSQL calls, so it is unit-tested
 *	  and fuzzed on its own).  Times are PostgreSQL's: microseconds since
 *	  2000-01-01 00:00 UTC.  Refills happen at 00:00 UTC of the due day:
 *	  every day, or on refill_day of every month (a month without that day
 *	  refills on its last day).
 *
 *-------------------------------------------------------------------------
 */
#ifndef APIKEY_PLAN_H
#define APIKEY_PLAN_H

#include <stdbool.h>
#include <stdint.h>

/* the largest balance, refill amount and cost: exact in a double too */
#define PLAN_MAX_CREDITS	INT64_C(1000000000000000)
#define PLAN_MAX_COST		1000000

typedef enum PlanInterval
{
	PLAN_REFILL_NONE = 0,
	PLAN_REFILL_DAY,
	PLAN_REFILL_MONTH
} PlanInterval;

/* a balance's rule, as its row says */
typedef struct PlanCredits
{
	int64_t		credits;		/* the balance from set_at on */
	int64_t		set_at;			/* when credits was set: the grant's identity */
	int64_t		refill_amount;
	uint8_t		interval;		/* PlanInterval */
	uint8_t		refill_day;		/* 1-31 for a month (0 given: 1), else 0 */
} PlanCredits;

/* a balance as shared memory keeps it */
typedef struct PlanBalance
{
	int64_t		set_at;			/* the grant it counts from (0: none known) */
	int64_t		period;			/* the last refill applied, or set_at */
	int64_t		balance;
} PlanBalance;

extern PlanInterval plan_interval_of(const char *s, int len);
extern const char *plan_interval_name(PlanInterval interval);
extern const char *plan_problem(bool has_credits, int64_t credits,
								bool has_amount, int64_t amount,
								const char *interval, int interval_len,
								bool has_day, int64_t day);
extern int64_t plan_last_refill(PlanInterval interval, int day, int64_t now);
extern int64_t plan_next_refill(PlanInterval interval, int day, int64_t after);
extern bool plan_date_valid(int64_t y, int m, int d);
extern int64_t plan_time_of(int64_t y, int m, int d, int h, int mi, int s);
extern bool plan_bring(PlanBalance *b, const PlanCredits *rule, int64_t now);

#endif							/* APIKEY_PLAN_H */
