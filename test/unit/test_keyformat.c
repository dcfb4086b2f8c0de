/*-------------------------------------------------------------------------
 *
 * test_keyformat.c
 *	  Unit tests for src/keyformat.c, run without a server, output in TAP.
 *
 * Expected constants (test vectors, minted keys) were derived independently
 * with Python's zlib.crc32 and a straightforward base62 encoder; they are
 * written out here, Python is not needed to run the tests.
 *
 * test/unit/test_keyformat.c
 *
 *-------------------------------------------------------------------------
 */
#include "keyformat.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"
#include <zlib.h>



static const char base62[] =
"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/*
 * ref_checksum
 *		Independent base62 encoder: most significant digit first, by
 *		repeated subtraction of descending powers of 62 (the module encodes
 *		least significant first with % and /).
 */
static void
ref_checksum(uint32_t v, char *out)
{
	uint64_t	rest = v;
	uint64_t	pow = 1;
	int			i;

	for (i = 1; i < KF_CHECKSUM_LEN; i++)
		pow *= 62;
	for (i = 0; i < KF_CHECKSUM_LEN; i++)
	{
		int			d = 0;

		while (rest >= pow)
		{
			rest -= pow;
			d++;
		}
		out[i] = base62[d];
		pow /= 62;
	}
}

static bool
all_zero(const char *p, size_t n)
{
	size_t		i;

	for (i = 0; i < n; i++)
		if (p[i] != 0)
			return false;
	return true;
}

/* Parse a copy of key[0..len) held in an exactly-sized heap buffer. */
static kf_status
parse_exact(const char *key, size_t len, kf_parsed *p)
{
	char	   *copy;
	kf_status	st;

	if (len == 0)
		return kf_parse("", 0, p);
	copy = malloc(len);
	if (copy == NULL)
		abort();
	memcpy(copy, key, len);
	st = kf_parse(copy, len, p);
	free(copy);
	return st;
}

/* Random bytes for the deterministic mint: includes 248..255 to skip. */
static const uint8_t fixed_rnd[] = {
	0, 61, 62, 247, 248, 255, 123, 200, 1, 2, 3, 250, 100, 150, 199, 249,
	10, 20, 30, 40, 50, 60, 70, 80, 90, 110, 130, 170, 190, 210, 230, 240,
	251, 246, 5, 77, 88, 99
};

/* The 32nd byte below 248 in fixed_rnd is at index 36. */
#define FIXED_RND_NEEDED	37

static const char expect_ak[] = "ak_0z0zzE123cQDAKUeoy8ISm6k4Oisy5FQ4As5cZ";
static const char expect_sk[] = "sk_test_0z0zzE123cQDAKUeoy8ISm6k4Oisy5FQ27pUmM";

static void
test_crc32(void)
{
	int			i;
	int			bad = 0;
	unsigned char buf[300];

	ok(kf_crc32("123456789", 9) == 0xCBF43926u,
	   "crc32(\"123456789\") = 0xCBF43926");
	ok(kf_crc32(NULL, 0) == 0 && kf_crc32("", 0) == 0, "crc32 of nothing is 0");
	ok(kf_crc32("a", 1) == 0xE8B7BE43u, "crc32(\"a\") = 0xE8B7BE43");

	for (i = 0; i < 5000; i++)
	{
		size_t		len = (size_t) (prng_next() % 301);
		size_t		j;

		for (j = 0; j < len; j++)
			buf[j] = (unsigned char) prng_next();
		if (kf_crc32(buf, len) != (uint32_t) crc32(0L, buf, (uInt) len))
			bad++;
	}
	ok(bad == 0, "kf_crc32 equals zlib crc32 on 5000 random buffers (%d differ)", bad);

	/* eight bytes at a time: every start offset and every tail length */
	bad = 0;
	for (i = 0; i < 300; i++)
		buf[i] = (unsigned char) prng_next();
	for (i = 0; i < 8; i++)
	{
		size_t		len;

		for (len = 0; len + i <= 64; len++)
			if (kf_crc32(buf + i, len) != (uint32_t) crc32(0L, buf + i, (uInt) len))
				bad++;
	}
	ok(bad == 0, "kf_crc32 equals zlib crc32 from every offset 0..7, lengths 0..64 (%d differ)", bad);
}

static void
test_checksum_encode(void)
{
	static const struct
	{
		uint32_t	v;
		const char *s;
	}			rows[] = {
		{0, "000000"},
		{1, "000001"},
		{61, "00000z"},
		{62, "000010"},
		{3844, "000100"},
		{916132832u, "100000"},
		{0xFFFFFFFFu, "4gfFC3"},
	};
	size_t		i;
	int			bad = 0;

	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
	{
		char		got[KF_CHECKSUM_LEN + 1];
		char		ref[KF_CHECKSUM_LEN + 1];

		memset(got, '#', sizeof(got));
		kf_checksum_encode(rows[i].v, got);
		ref_checksum(rows[i].v, ref);
		ok(memcmp(got, rows[i].s, KF_CHECKSUM_LEN) == 0 &&
		   memcmp(ref, rows[i].s, KF_CHECKSUM_LEN) == 0 &&
		   got[KF_CHECKSUM_LEN] == '#',
		   "checksum_encode(%lu) = %s, no NUL written",
		   (unsigned long) rows[i].v, rows[i].s);
	}

	for (i = 0; i < 100000; i++)
	{
		uint32_t	v = (uint32_t) prng_next();
		char		got[KF_CHECKSUM_LEN];
		char		ref[KF_CHECKSUM_LEN];

		kf_checksum_encode(v, got);
		ref_checksum(v, ref);
		if (memcmp(got, ref, KF_CHECKSUM_LEN) != 0)
			bad++;
	}
	ok(bad == 0, "checksum_encode agrees with reference on 100000 values (%d differ)", bad);
}

static void
test_is_base62(void)
{
	int			c;
	int			bad = 0;

	for (c = 0; c < 256; c++)
	{
		bool		expect = c != 0 && strchr(base62, c) != NULL;

		if (kf_is_base62((char) c) != expect)
			bad++;
	}
	ok(bad == 0, "kf_is_base62 correct for all 256 byte values");
}

static void
test_prefix_valid(void)
{
	static const struct
	{
		const char *s;
		bool		valid;
	}			rows[] = {
		{"ak", true},
		{"sk_test", true},
		{"dbaudit_live", true},
		{"a1", true},
		{"a_b", true},
		{"a__b", true},
		{"abcdefghijklmnopqrstuvwxyz012345", true},	/* 32 */
		{"abcdefghijklmnopqrstuvwxyz0123456", false},	/* 33 */
		{"", false},
		{"a", false},
		{"A1", false},
		{"aB", false},
		{"ab_", false},
		{"_ab", false},
		{"a-b", false},
		{"1ab", false},
		{"a b", false},
		{"a.b", false},
		{"ak\xc3\xa9", false},
	};
	size_t		i;

	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		ok(kf_prefix_valid(rows[i].s, strlen(rows[i].s)) == rows[i].valid,
		   "prefix \"%s\" is %s", rows[i].s, rows[i].valid ? "valid" : "invalid");

	ok(!kf_prefix_valid("ak\0b", 4), "prefix with embedded NUL is invalid");
	ok(!kf_prefix_valid("a\x80", 2), "prefix with byte 0x80 is invalid");
	ok(!kf_prefix_valid(NULL, 0), "NULL prefix is invalid");
	ok(kf_prefix_valid("akXYZ", 2), "prefix_valid looks only at len bytes");
}

static void
test_mint_fixed(void)
{
	char		out[KF_KEY_BUFSZ];
	kf_status	st;
	kf_parsed	p;

	st = kf_mint("ak", 2, fixed_rnd, sizeof(fixed_rnd), out, sizeof(out));
	ok(st == KF_OK && strcmp(out, expect_ak) == 0,
	   "mint(ak, fixed bytes) = %s", expect_ak);

	st = kf_mint("sk_test", 7, fixed_rnd, sizeof(fixed_rnd), out, sizeof(out));
	ok(st == KF_OK && strcmp(out, expect_sk) == 0,
	   "mint(sk_test, fixed bytes) = %s", expect_sk);

	memset(&p, 0xAA, sizeof(p));
	st = parse_exact(expect_ak, strlen(expect_ak), &p);
	ok(st == KF_OK && p.prefix_len == 2 && p.secret_off == 3 &&
	   p.secret_len == KF_SECRET_LEN && p.key_len == 41,
	   "minted ak key parses: prefix_len 2, secret_off 3, secret_len 32, key_len 41");

	memset(&p, 0xAA, sizeof(p));
	st = parse_exact(expect_sk, strlen(expect_sk), &p);
	ok(st == KF_OK && p.prefix_len == 7 && p.secret_off == 8 &&
	   p.secret_len == KF_SECRET_LEN && p.key_len == 46,
	   "sk_test key parses with prefix_len 7 (prefix ends at the last '_')");

	ok(kf_parse(expect_ak, strlen(expect_ak), NULL) == KF_OK,
	   "kf_parse accepts parsed == NULL");
}

static void
test_mint_random(void)
{
	int			i;
	int			bad = 0;
	char		out[KF_KEY_BUFSZ];
	uint8_t		rnd[64];

	for (i = 0; i < 2000; i++)
	{
		size_t		j;
		kf_parsed	p;

		for (j = 0; j < sizeof(rnd); j++)
			rnd[j] = (uint8_t) prng_next();
		if (kf_mint("dbaudit_live", 12, rnd, sizeof(rnd), out, sizeof(out)) != KF_OK)
		{
			/* 64 bytes with >32 rejections: astronomically unlikely */
			bad++;
			continue;
		}
		if (strlen(out) != 12 + 1 + KF_SECRET_LEN + KF_CHECKSUM_LEN ||
			parse_exact(out, strlen(out), &p) != KF_OK ||
			p.prefix_len != 12)
			bad++;
	}
	ok(bad == 0, "2000 random minted keys have length 51 and parse OK");
}

static void
test_mutations(void)
{
	char		key[KF_KEY_BUFSZ];
	size_t		len;
	size_t		pos;
	size_t		k;
	int			tried = 0;
	int			accepted = 0;
	int			n_checksum = 0;
	int			n_other = 0;
	const char *keys[2];
	int			ki;

	keys[0] = expect_ak;
	keys[1] = expect_sk;

	for (ki = 0; ki < 2; ki++)
	{
		len = strlen(keys[ki]);
		for (pos = 0; pos < len; pos++)
		{
			for (k = 0; k < 62; k++)
			{
				kf_status	st;

				if (base62[k] == keys[ki][pos])
					continue;
				memcpy(key, keys[ki], len);
				key[pos] = base62[k];
				st = parse_exact(key, len, NULL);
				tried++;
				if (st == KF_OK)
					accepted++;
				else if (st == KF_BAD_CHECKSUM)
					n_checksum++;
				else
					n_other++;
			}
		}
	}
	ok(accepted == 0,
	   "all %d single-character base62 substitutions rejected (%d checksum, %d prefix/shape)",
	   tried, n_checksum, n_other);

	/* every byte value at every position of the secret and checksum */
	tried = accepted = 0;
	len = strlen(expect_ak);
	for (pos = 3; pos < len; pos++)
	{
		int			c;

		for (c = 0; c < 256; c++)
		{
			if ((char) c == expect_ak[pos])
				continue;
			memcpy(key, expect_ak, len);
			key[pos] = (char) c;
			tried++;
			if (parse_exact(key, len, NULL) == KF_OK)
				accepted++;
		}
	}
	ok(accepted == 0, "all %d single-byte substitutions in the body rejected", tried);
}

static void
test_truncate_extend(void)
{
	char		key[KF_KEY_MAX_LEN + 2];
	size_t		len = strlen(expect_ak);
	size_t		n;
	size_t		k;
	int			accepted = 0;
	int			tried = 0;

	for (n = 0; n < len; n++)
	{
		tried++;
		if (parse_exact(expect_ak, n, NULL) == KF_OK)
			accepted++;
	}
	ok(accepted == 0, "all %d truncations rejected", tried);

	/* drop one character at each position */
	accepted = tried = 0;
	for (n = 0; n < len; n++)
	{
		memcpy(key, expect_ak, n);
		memcpy(key + n, expect_ak + n + 1, len - n - 1);
		tried++;
		if (parse_exact(key, len - 1, NULL) == KF_OK)
			accepted++;
	}
	ok(accepted == 0, "all %d single-character deletions rejected", tried);

	/* append or insert one base62 character anywhere */
	accepted = tried = 0;
	for (n = 0; n <= len; n++)
	{
		for (k = 0; k < 62; k++)
		{
			memcpy(key, expect_ak, n);
			key[n] = base62[k];
			memcpy(key + n + 1, expect_ak + n, len - n);
			tried++;
			if (parse_exact(key, len + 1, NULL) == KF_OK)
				accepted++;
		}
	}
	ok(accepted == 0, "all %d single-character insertions/extensions rejected", tried);

	/* a trailing '_' or NUL */
	memcpy(key, expect_ak, len);
	key[len] = '_';
	ok(parse_exact(key, len + 1, NULL) != KF_OK, "key + \"_\" rejected");
	key[len] = '\0';
	ok(parse_exact(key, len + 1, NULL) == KF_BAD_SHAPE, "key + NUL (len includes it) is KF_BAD_SHAPE");
}

static void
test_rejection_sampling(void)
{
	char		out[KF_KEY_BUFSZ];
	uint8_t		rnd[128];
	uint8_t		filtered[sizeof(fixed_rnd)];
	size_t		i;
	size_t		n;
	kf_status	st;

	memset(rnd, 0xFF, sizeof(rnd));
	memset(out, 'X', sizeof(out));
	st = kf_mint("ak", 2, rnd, sizeof(rnd), out, sizeof(out));
	ok(st == KF_NEED_RANDOM && all_zero(out, sizeof(out)),
	   "128 bytes of 0xFF: KF_NEED_RANDOM and out zeroed");

	for (i = 0; i < 8; i++)
		rnd[i] = (uint8_t) (248 + i);
	memset(out, 'X', sizeof(out));
	st = kf_mint("ak", 2, rnd, 8, out, sizeof(out));
	ok(st == KF_NEED_RANDOM && all_zero(out, sizeof(out)),
	   "bytes 248..255 are all skipped: KF_NEED_RANDOM and out zeroed");

	memset(out, 'X', sizeof(out));
	st = kf_mint("ak", 2, fixed_rnd, FIXED_RND_NEEDED, out, sizeof(out));
	ok(st == KF_OK && strcmp(out, expect_ak) == 0,
	   "exactly enough bytes (%d, 32 usable) is enough", FIXED_RND_NEEDED);

	memset(out, 'X', sizeof(out));
	st = kf_mint("ak", 2, fixed_rnd, FIXED_RND_NEEDED - 1, out, sizeof(out));
	ok(st == KF_NEED_RANDOM && all_zero(out, sizeof(out)),
	   "one usable byte short: KF_NEED_RANDOM and out zeroed");

	memset(out, 'X', sizeof(out));
	st = kf_mint("ak", 2, NULL, 0, out, sizeof(out));
	ok(st == KF_NEED_RANDOM && all_zero(out, sizeof(out)),
	   "no random bytes at all: KF_NEED_RANDOM and out zeroed");

	n = 0;
	for (i = 0; i < sizeof(fixed_rnd); i++)
		if (fixed_rnd[i] < 248)
			filtered[n++] = fixed_rnd[i];
	st = kf_mint("ak", 2, filtered, n, out, sizeof(out));
	ok(st == KF_OK && strcmp(out, expect_ak) == 0,
	   "removing the bytes >= 248 beforehand gives the same key");

	/* value mapping: b % 62 for b < 248 */
	memset(rnd, 247, 32);
	st = kf_mint("ak", 2, rnd, 32, out, sizeof(out));
	ok(st == KF_OK && strncmp(out + 3, "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz", 32) == 0,
	   "byte 247 maps to 'z'");
	memset(rnd, 186, 32);
	st = kf_mint("ak", 2, rnd, 32, out, sizeof(out));
	ok(st == KF_OK && strncmp(out + 3, "00000000000000000000000000000000", 32) == 0,
	   "byte 186 maps to '0'");
	for (i = 0; i < 62; i++)
		rnd[i] = (uint8_t) (i + 62);
	st = kf_mint("ak", 2, rnd, 62, out, sizeof(out));
	ok(st == KF_OK && strncmp(out + 3, base62, 32) == 0,
	   "bytes 62..93 map to the first 32 base62 digits in order");
}

static void
test_buffers(void)
{
	char		out[KF_KEY_BUFSZ + 8];
	const char *p32 = "abcdefghijklmnopqrstuvwxyz012345";
	size_t		need = 2 + 1 + KF_SECRET_LEN + KF_CHECKSUM_LEN + 1;
	kf_status	st;
	kf_parsed	p;

	memset(out, 'X', sizeof(out));
	st = kf_mint("ak", 2, fixed_rnd, sizeof(fixed_rnd), out, need - 1);
	ok(st == KF_BUFFER_TOO_SMALL && all_zero(out, need - 1) && out[need - 1] == 'X',
	   "mint into %zu bytes: KF_BUFFER_TOO_SMALL, buffer zeroed, nothing beyond", need - 1);

	memset(out, 'X', sizeof(out));
	st = kf_mint("ak", 2, fixed_rnd, sizeof(fixed_rnd), out, need);
	ok(st == KF_OK && strcmp(out, expect_ak) == 0 && out[need] == 'X',
	   "mint into exactly %zu bytes works", need);

	ok(kf_mint("ak", 2, fixed_rnd, sizeof(fixed_rnd), NULL, 0) == KF_BUFFER_TOO_SMALL,
	   "mint into NULL: KF_BUFFER_TOO_SMALL");

	memset(out, 'X', sizeof(out));
	st = kf_mint(p32, 32, fixed_rnd, sizeof(fixed_rnd), out, KF_KEY_BUFSZ);
	ok(st == KF_OK && strlen(out) == KF_KEY_MAX_MINTED &&
	   parse_exact(out, strlen(out), &p) == KF_OK && p.prefix_len == 32,
	   "32-character prefix fits KF_KEY_BUFSZ and parses");

	memset(out, 'X', sizeof(out));
	st = kf_mint("A1", 2, fixed_rnd, sizeof(fixed_rnd), out, KF_KEY_BUFSZ);
	ok(st == KF_BAD_PREFIX && all_zero(out, KF_KEY_BUFSZ),
	   "mint with prefix \"A1\": KF_BAD_PREFIX and out zeroed");

	memset(out, 'X', sizeof(out));
	st = kf_mint("ab_", 3, fixed_rnd, sizeof(fixed_rnd), out, KF_KEY_BUFSZ);
	ok(st == KF_BAD_PREFIX && all_zero(out, KF_KEY_BUFSZ),
	   "mint with prefix \"ab_\": KF_BAD_PREFIX and out zeroed");

	st = kf_mint("ab_", 3, NULL, 0, NULL, 0);
	ok(st == KF_BAD_PREFIX, "prefix is checked before buffer and random bytes");
}

static void
test_hint(void)
{
	char		out[KF_HINT_BUFSZ + 8];
	char		key[KF_KEY_BUFSZ];
	const char *p32 = "abcdefghijklmnopqrstuvwxyz012345";
	size_t		len = strlen(expect_ak);
	kf_status	st;
	char		expect[KF_HINT_BUFSZ];

	st = kf_hint(expect_ak, len, out, sizeof(out));
	ok(st == KF_OK && strcmp(out, "ak_0z0z\xE2\x80\xA6s5cZ") == 0,
	   "hint of ak key is \"ak_0z0z\xE2\x80\xA6s5cZ\"");

	st = kf_hint(expect_sk, strlen(expect_sk), out, sizeof(out));
	ok(st == KF_OK && strcmp(out, "sk_test_0z0z\xE2\x80\xA6pUmM") == 0,
	   "hint of sk_test key is \"sk_test_0z0z\xE2\x80\xA6pUmM\"");

	memset(out, 'X', sizeof(out));
	st = kf_hint(expect_ak, len, out, 3 + 4 + 3 + 4 + 1);
	ok(st == KF_OK && out[15] == 'X', "hint fits exactly 15 bytes");

	memset(out, 'X', sizeof(out));
	st = kf_hint(expect_ak, len, out, 3 + 4 + 3 + 4);
	ok(st == KF_BUFFER_TOO_SMALL && out[0] == '\0',
	   "hint into 14 bytes: KF_BUFFER_TOO_SMALL, out is \"\"");

	ok(kf_hint(expect_ak, len, NULL, 0) == KF_BUFFER_TOO_SMALL,
	   "hint into NULL: KF_BUFFER_TOO_SMALL");

	memcpy(key, expect_ak, len);
	key[len - 1] = (key[len - 1] == 'a') ? 'b' : 'a';
	memset(out, 'X', sizeof(out));
	st = kf_hint(key, len, out, sizeof(out));
	ok(st == KF_BAD_SHAPE && out[0] == '\0', "hint of key with bad checksum: KF_BAD_SHAPE");
	ok(kf_hint("", 0, out, sizeof(out)) == KF_BAD_SHAPE, "hint of empty key: KF_BAD_SHAPE");
	ok(kf_hint(NULL, 0, out, sizeof(out)) == KF_BAD_SHAPE, "hint of NULL: KF_BAD_SHAPE");

	st = kf_mint(p32, 32, fixed_rnd, sizeof(fixed_rnd), key, sizeof(key));
	memset(out, 'X', sizeof(out));
	snprintf(expect, sizeof(expect), "%s_0z0z\xE2\x80\xA6%s", p32,
			 key + KF_KEY_MAX_MINTED - 4);
	ok(st == KF_OK &&
	   kf_hint(key, strlen(key), out, KF_HINT_BUFSZ) == KF_OK &&
	   strlen(out) == KF_HINT_BUFSZ - 1 && strcmp(out, expect) == 0 &&
	   out[KF_HINT_BUFSZ] == 'X',
	   "hint for a 32-character prefix fills KF_HINT_BUFSZ exactly");
}

/*
 * make_key
 *		Build prefix '_' body-of-body_len-chars with a valid checksum into
 *		buf; returns the total length.  Independent of kf_mint.
 */
static size_t
make_key(char *buf, const char *prefix, size_t body_len)
{
	size_t		plen = strlen(prefix);
	size_t		i;
	size_t		len = plen + 1 + body_len;
	uLong		crc;

	memcpy(buf, prefix, plen);
	buf[plen] = '_';
	for (i = 0; i < body_len - KF_CHECKSUM_LEN; i++)
		buf[plen + 1 + i] = base62[(i * 7 + 3) % 62];
	crc = crc32(0L, (const Bytef *) buf, (uInt) (len - KF_CHECKSUM_LEN));
	ref_checksum((uint32_t) crc, buf + len - KF_CHECKSUM_LEN);
	buf[len] = '\0';
	return len;
}

static void
test_parse_status(void)
{
	char		key[KF_KEY_MAX_LEN + 64];
	const char *p32 = "abcdefghijklmnopqrstuvwxyz012345";
	size_t		len;
	size_t		alen = strlen(expect_ak);
	kf_parsed	p;
	kf_status	st;

	ok(kf_parse(NULL, 0, NULL) == KF_EMPTY, "NULL: KF_EMPTY");
	ok(kf_parse(NULL, 10, NULL) == KF_EMPTY, "NULL with length 10: KF_EMPTY");
	ok(kf_parse("", 0, NULL) == KF_EMPTY, "\"\": KF_EMPTY");
	ok(kf_parse(expect_ak, 0, NULL) == KF_EMPTY, "valid key with length 0: KF_EMPTY");

	/* longest acceptable: 32 + 1 + 95 = 128 */
	len = make_key(key, p32, KF_KEY_MAX_LEN - 33);
	memset(&p, 0, sizeof(p));
	st = parse_exact(key, len, &p);
	ok(len == KF_KEY_MAX_LEN && st == KF_OK && p.secret_len == 89,
	   "well-formed %zu-byte key (long body) parses, secret_len 89", len);

	len = make_key(key, p32, KF_KEY_MAX_LEN - 32);
	ok(len == KF_KEY_MAX_LEN + 1 && parse_exact(key, len, NULL) == KF_TOO_LONG,
	   "otherwise well-formed %zu-byte key: KF_TOO_LONG", len);

	memset(key, '!', sizeof(key));
	ok(kf_parse(key, KF_KEY_MAX_LEN + 1, NULL) == KF_TOO_LONG,
	   "129 bytes of garbage: KF_TOO_LONG (precedes shape)");
	ok(kf_parse(key, KF_KEY_MAX_LEN, NULL) == KF_BAD_SHAPE,
	   "128 bytes of garbage: KF_BAD_SHAPE");

	len = make_key(key, "ak", 38);
	ok(parse_exact(key, len, NULL) == KF_OK, "independently built ak key parses");
	len = make_key(key, "ak", 37);
	ok(parse_exact(key, len, NULL) == KF_BAD_SHAPE, "body of 37 characters: KF_BAD_SHAPE");
	len = make_key(key, "ak", 39);
	ok(parse_exact(key, len, NULL) == KF_OK, "body of 39 characters parses (body is \"at least\" 38)");

	ok(parse_exact(expect_ak + 3, alen - 3, NULL) == KF_BAD_SHAPE,
	   "no '_' at all: KF_BAD_SHAPE");
	ok(parse_exact(expect_ak + 2, alen - 2, NULL) == KF_BAD_PREFIX,
	   "key starting with '_' (empty prefix): KF_BAD_PREFIX");
	ok(parse_exact("ak_", 3, NULL) == KF_BAD_SHAPE, "\"ak_\": KF_BAD_SHAPE");
	ok(parse_exact("_", 1, NULL) == KF_BAD_PREFIX, "\"_\": KF_BAD_PREFIX");

	memcpy(key, expect_ak, alen);
	key[0] = 'A';
	ok(parse_exact(key, alen, NULL) == KF_BAD_PREFIX, "upper-case prefix: KF_BAD_PREFIX");

	memcpy(key, "A1_", 3);
	memcpy(key + 3, "!!", 2);
	ok(parse_exact(key, 5, NULL) == KF_BAD_PREFIX,
	   "bad prefix and bad body: KF_BAD_PREFIX (prefix checked first)");

	memcpy(key, expect_ak, alen);
	key[10] = '-';
	ok(parse_exact(key, alen, NULL) == KF_BAD_SHAPE, "'-' in the secret: KF_BAD_SHAPE");

	memcpy(key, expect_ak, alen);
	key[alen - 1] = '0';
	ok(parse_exact(key, alen, NULL) == KF_BAD_CHECKSUM, "wrong last checksum digit: KF_BAD_CHECKSUM");

	memcpy(key, expect_ak, alen);
	key[5] = (key[5] == 'q') ? 'r' : 'q';
	ok(parse_exact(key, alen, NULL) == KF_BAD_CHECKSUM, "changed secret digit: KF_BAD_CHECKSUM");

	/* non-canonical checksum: "zzzzzz" is > 2^32 and never matches */
	memcpy(key, expect_ak, alen);
	memcpy(key + alen - 6, "zzzzzz", 6);
	ok(parse_exact(key, alen, NULL) == KF_BAD_CHECKSUM, "checksum \"zzzzzz\": KF_BAD_CHECKSUM");

	/* NUL and high bytes */
	memcpy(key, expect_ak, alen);
	key[10] = '\0';
	ok(parse_exact(key, alen, NULL) == KF_BAD_SHAPE, "NUL in the secret: KF_BAD_SHAPE");
	memcpy(key, expect_ak, alen);
	key[alen - 2] = '\0';
	ok(parse_exact(key, alen, NULL) == KF_BAD_SHAPE, "NUL in the checksum: KF_BAD_SHAPE");
	memcpy(key, expect_ak, alen);
	key[1] = '\0';
	ok(parse_exact(key, alen, NULL) == KF_BAD_PREFIX, "NUL in the prefix: KF_BAD_PREFIX");
	memcpy(key, expect_ak, alen);
	key[10] = (char) 0x80;
	ok(parse_exact(key, alen, NULL) == KF_BAD_SHAPE, "byte 0x80 in the secret: KF_BAD_SHAPE");
	memcpy(key, expect_ak, alen);
	key[20] = (char) 0xFF;
	ok(parse_exact(key, alen, NULL) == KF_BAD_SHAPE, "byte 0xFF in the secret: KF_BAD_SHAPE");
	memcpy(key, expect_ak, alen);
	key[1] = (char) 0xE9;
	ok(parse_exact(key, alen, NULL) == KF_BAD_PREFIX, "byte 0xE9 in the prefix: KF_BAD_PREFIX");

	/* only len bytes count: trailing junk beyond len is not looked at */
	memcpy(key, expect_ak, alen);
	memcpy(key + alen, "_x!", 3);
	ok(kf_parse(key, alen, NULL) == KF_OK, "bytes beyond len are ignored");
}

static void
test_misc(void)
{
	int			st;
	bool		all = true;
	char		buf[64];

	for (st = KF_OK; st <= KF_BUFFER_TOO_SMALL; st++)
	{
		const char *t = kf_status_text((kf_status) st);
		int			st2;

		if (t == NULL || t[0] == '\0')
			all = false;
		for (st2 = KF_OK; st2 < st; st2++)
			if (strcmp(t, kf_status_text((kf_status) st2)) == 0)
				all = false;
	}
	ok(all, "kf_status_text gives distinct non-empty text for every status");
	ok(kf_status_text((kf_status) 99) != NULL, "kf_status_text of an unknown value is not NULL");

	memset(buf, 'X', sizeof(buf));
	kf_wipe(buf + 1, 62);
	ok(buf[0] == 'X' && all_zero(buf + 1, 62) && buf[63] == 'X',
	   "kf_wipe zeroes exactly the range given");
	kf_wipe(NULL, 0);
	kf_wipe(buf, 0);
	ok(buf[0] == 'X', "kf_wipe with length 0 does nothing");
}

int
main(void)
{
	test_crc32();
	test_checksum_encode();
	test_is_base62();
	test_prefix_valid();
	test_mint_fixed();
	test_mint_random();
	test_mutations();
	test_truncate_extend();
	test_rejection_sampling();
	test_buffers();
	test_hint();
	test_parse_status();
	test_misc();

	printf("1..%d\n", test_num);
	if (test_failed > 0)
		fprintf(stderr, "# %d of %d tests failed\n", test_failed, test_num);
	return test_failed > 0 ? 1 : 0;
}
