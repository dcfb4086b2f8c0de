/*-------------------------------------------------------------------------
 *
 * unit.h
 *	  What the server-less unit tests share: TAP reporting and a
 *	  fixed-seed PRNG (xorshift64*) for reproducible test inputs.
 *
 * test/unit/unit.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef APIKEY_UNIT_H
#define APIKEY_UNIT_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

static int	test_num = 0;
static int	test_failed = 0;

/*
 * ok
 *		Report one TAP result.
 */
static inline void
ok(bool cond, const char *fmt,...)
{
	va_list		ap;

	test_num++;
	if (!cond)
		test_failed++;
	printf("%sok %d - ", cond ? "" : "not ", test_num);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
}

/* xorshift64*: good enough for test inputs; seed with prng_seed */
static uint64_t prng_state = 0x9E3779B97F4A7C15ull;

static inline void
prng_seed(uint64_t seed)
{
	prng_state = seed;
}

static inline uint64_t
prng_next(void)
{
	prng_state ^= prng_state >> 12;
	prng_state ^= prng_state << 25;
	prng_state ^= prng_state >> 27;
	return prng_state * 0x2545F4914F6CDD1Dull;
}

#endif							/* APIKEY_UNIT_H */
