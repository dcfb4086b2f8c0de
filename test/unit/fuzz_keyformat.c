/*-------------------------------------------------------------------------
 *
 * fuzz_keyformat.c
 *	  Fuzz target for src/keyformat.c and src/scope.c.
 *
 * LLVMFuzzerTestOneInput feeds one input to kf_parse, kf_hint, kf_mint
 * (input as random bytes), kf_crc32, scope_valid and scope_grants, and
 * aborts if an invariant does not hold.  Built with -DFUZZ_LIBFUZZER and
 * clang -fsanitize=fuzzer it is a libFuzzer target ("make fuzz"); without
 * it, main() below runs a fixed-seed smoke test of 200000 generated and
 * mutated inputs, meant for gcc -fsanitize=address,undefined
 * ("make fuzz-smoke").  Every input is handed over in an exactly-sized
 * heap buffer, so any read past the given length is caught by ASan.
 *
 * test/unit/fuzz_keyformat.c
 *
 *-------------------------------------------------------------------------
 */
#include "keyformat.h"
#include "scope.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(cond) \
	do { \
		if (!(cond)) \
		{ \
			fprintf(stderr, "fuzz_keyformat: check failed at line %d: %s\n", \
					__LINE__, #cond); \
			abort(); \
		} \
	} while (0)

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * fuzz_keys
 *		kf_parse / kf_hint on the whole input, kf_mint with it as randomness.
 */
static void
fuzz_keys(const uint8_t *data, size_t size)
{
	const char *key = (const char *) data;
	kf_parsed	p;
	kf_status	st;
	kf_status	hst;
	char		hint[KF_HINT_BUFSZ];
	char		minted[KF_KEY_BUFSZ];

	(void) kf_crc32(data, size);

	memset(&p, 0, sizeof(p));
	st = kf_parse(key, size, &p);
	CHECK(st >= KF_OK && st <= KF_BAD_CHECKSUM);
	CHECK(kf_status_text(st) != NULL);
	if (st == KF_OK)
	{
		CHECK(p.key_len == size);
		CHECK(p.secret_off == p.prefix_len + 1);
		CHECK(p.secret_len >= KF_SECRET_LEN);
		CHECK(p.secret_off + p.secret_len + KF_CHECKSUM_LEN == size);
		CHECK(kf_prefix_valid(key, p.prefix_len));
		CHECK(key[p.prefix_len] == '_');
	}

	hst = kf_hint(key, size, hint, sizeof(hint));
	CHECK((hst == KF_OK) == (st == KF_OK));
	if (hst == KF_OK)
	{
		CHECK(strlen(hint) == p.secret_off + KF_HINT_HEAD + 3 + KF_HINT_TAIL);
		CHECK(memcmp(hint, key, p.secret_off + KF_HINT_HEAD) == 0);
	}

	st = kf_mint("fz_test", 7, data, size, minted, sizeof(minted));
	CHECK(st == KF_OK || st == KF_NEED_RANDOM);
	if (st == KF_OK)
		CHECK(kf_parse(minted, strlen(minted), NULL) == KF_OK);
	else
	{
		size_t		i;

		for (i = 0; i < sizeof(minted); i++)
			CHECK(minted[i] == 0);
	}
}

/*
 * fuzz_scopes
 *		scope_valid on the input; scope_grants on the parts before and after
 *		its first '|' (or the whole input against itself).
 */
static void
fuzz_scopes(const uint8_t *data, size_t size)
{
	const char *s = (const char *) data;
	const char *bar = size > 0 ? memchr(s, '|', size) : NULL;
	bool		valid = scope_valid(s, size);

	CHECK(!valid || size <= SCOPE_MAX_LEN);
	CHECK(scope_grants(s, size, s, size) == valid);
	CHECK(scope_grants("*", 1, s, size) == valid);

	if (bar != NULL)
	{
		const char *g = s;
		size_t		glen = (size_t) (bar - s);
		const char *r = bar + 1;
		size_t		rlen = size - glen - 1;
		bool		gv = scope_valid(g, glen);
		bool		rv = scope_valid(r, rlen);
		bool		gr = scope_grants(g, glen, r, rlen);

		CHECK(!gr || (gv && rv));
		CHECK(scope_grants(g, glen, g, glen) == gv);
		(void) scope_grants(r, rlen, g, glen);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_keys(data, size);
	fuzz_scopes(data, size);
	return 0;
}

#ifndef FUZZ_LIBFUZZER

#include "unit.h"

#define SMOKE_INPUTS	200000
#define SMOKE_MAXLEN	300


static size_t
prng_below(size_t n)
{
	return n == 0 ? 0 : (size_t) (prng_next() % n);
}

static const char *const prefixes[] = {
	"ak", "sk_test", "dbaudit_live", "a_b_c", "abcdefghijklmnopqrstuvwxyz012345"
};

static const char *const scope_words[] = {
	"read", "write", "*", "jobs", "databases", "admin", "a", "x", "a.b-c_d",
	"", "**", "READ", "wr*te"
};

/*
 * gen_key
 *		A valid minted key (occasionally with a longer body).
 */
static size_t
gen_key(uint8_t *buf)
{
	uint8_t		rnd[64];
	char		key[KF_KEY_BUFSZ];
	size_t		i;
	const char *pfx = prefixes[prng_below(sizeof(prefixes) / sizeof(prefixes[0]))];

	for (i = 0; i < sizeof(rnd); i++)
		rnd[i] = (uint8_t) prng_next();
	if (kf_mint(pfx, strlen(pfx), rnd, sizeof(rnd), key, sizeof(key)) != KF_OK)
		return 0;
	memcpy(buf, key, strlen(key));
	return strlen(key);
}

/*
 * put_scope
 *		Append words w[0..n) joined by ':' to buf at len; returns new length.
 */
static size_t
put_scope(uint8_t *buf, size_t len, const int *w, size_t n)
{
	size_t		k;

	for (k = 0; k < n; k++)
	{
		const char *word = scope_words[w[k]];

		if (k > 0)
			buf[len++] = ':';
		memcpy(buf + len, word, strlen(word));
		len += strlen(word);
	}
	return len;
}

/*
 * gen_scopes
 *		"granted|required" built from scope_words (the required one often a
 *		near copy of the granted one, so that matches happen), or a single
 *		scope.
 */
static size_t
gen_scopes(uint8_t *buf)
{
	int			g[6];
	int			r[7];
	size_t		ng = 1 + prng_below(5);
	size_t		nr;
	size_t		k;
	size_t		len;
	size_t		nwords = sizeof(scope_words) / sizeof(scope_words[0]);

	/* mostly valid words (the first 9) */
	for (k = 0; k < ng; k++)
		g[k] = (int) (prng_below(20) == 0 ? prng_below(nwords) : prng_below(9));
	len = put_scope(buf, 0, g, ng);
	if (prng_below(4) == 0)
		return len;

	if (prng_next() & 1)
	{
		nr = 1 + prng_below(5);
		for (k = 0; k < nr; k++)
			r[k] = (int) prng_below(9);
	}
	else
	{
		/* near copy: tweak a word, add or drop one segment */
		nr = ng;
		memcpy(r, g, sizeof(g));
		for (k = 0; k < nr; k++)
		{
			if (prng_below(4) == 0)
				r[k] = (int) prng_below(9);
			else if (r[k] == 1 && (prng_next() & 1))
				r[k] = 0;		/* write -> read */
			else if (r[k] == 2)
				r[k] = (int) prng_below(9);	/* '*' -> anything */
		}
		if (prng_below(4) == 0)
			r[nr++] = (int) prng_below(9);
		else if (nr > 1 && prng_below(4) == 0)
			nr--;
	}
	buf[len++] = '|';
	return put_scope(buf, len, r, nr);
}

/*
 * mutate
 *		Apply a few random byte edits to buf[0..len); returns the new length.
 */
static size_t
mutate(uint8_t *buf, size_t len)
{
	int			n = (int) prng_below(4);
	int			i;
	static const char interesting[] = "_:*0zZ|\0\x80\xff";

	for (i = 0; i < n; i++)
	{
		size_t		pos = prng_below(len + 1);
		uint8_t		b = (prng_next() & 1) ?
			(uint8_t) interesting[prng_below(sizeof(interesting))] :
			(uint8_t) prng_next();

		switch (prng_below(4))
		{
			case 0:				/* replace */
				if (pos < len)
					buf[pos] = b;
				break;
			case 1:				/* insert */
				if (len < SMOKE_MAXLEN)
				{
					memmove(buf + pos + 1, buf + pos, len - pos);
					buf[pos] = b;
					len++;
				}
				break;
			case 2:				/* delete */
				if (pos < len)
				{
					memmove(buf + pos, buf + pos + 1, len - pos - 1);
					len--;
				}
				break;
			default:			/* truncate */
				len = pos;
				break;
		}
	}
	return len;
}

int
main(void)
{
	static uint8_t buf[SMOKE_MAXLEN + 1];
	long		i;

	prng_seed(0x0DDB1A5E5BAD5EEDull);

	for (i = 0; i < SMOKE_INPUTS; i++)
	{
		size_t		len;
		uint8_t    *copy;

		switch (i % 4)
		{
			case 0:
				{
					size_t		j;

					len = prng_below(SMOKE_MAXLEN + 1);
					for (j = 0; j < len; j++)
						buf[j] = (uint8_t) prng_next();
					break;
				}
			case 1:
				len = gen_key(buf);
				break;
			case 2:
				len = mutate(buf, gen_key(buf));
				break;
			default:
				len = gen_scopes(buf);
				if (prng_next() & 1)
					len = mutate(buf, len);
				break;
		}

		/* exactly-sized copy so ASan sees any over-read */
		copy = malloc(len > 0 ? len : 1);
		if (copy == NULL)
			abort();
		memcpy(copy, buf, len);
		LLVMFuzzerTestOneInput(copy, len);
		free(copy);
	}

	printf("1..1\nok 1 - fuzz smoke %d inputs\n", SMOKE_INPUTS);
	return 0;
}

#endif							/* FUZZ_LIBFUZZER */
