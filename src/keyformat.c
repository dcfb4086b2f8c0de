/*-------------------------------------------------------------------------
 *
 * keyformat.c
 *	  The apikey key format: base62, CRC-32, minting, parsing and hints.
 *
 * This file owns everything about the textual shape of a key,
 * "<prefix>_<secret><checksum>" (see keyformat.h).  It is pure C99: no
 * PostgreSQL headers, no allocation, no global mutable state, so it is
 * safe to call from any thread and is linked unchanged into the extension,
 * the unit tests and the fuzz target.
 *
 * Decisions worth knowing:
 *	- Base62 digits are 0-9, A-Z, a-z (values 0..61).
 *	- The checksum is zlib's CRC-32 of key[0 .. len - KF_CHECKSUM_LEN),
 *	  i.e. prefix, '_' and secret, written as a 6-digit big-endian base62
 *	  number padded with '0'.  62^6 > 2^32, so every CRC has exactly one
 *	  encoding; kf_parse compares the encoded CRC with the presented text,
 *	  so a non-canonical checksum (one whose value is >= 2^32) never matches.
 *	- kf_parse status precedence: KF_EMPTY, KF_TOO_LONG, no '_' at all
 *	  (KF_BAD_SHAPE), prefix pattern (KF_BAD_PREFIX), body characters and
 *	  length (KF_BAD_SHAPE), then the checksum (KF_BAD_CHECKSUM).
 *	- The body may be longer than KF_SECRET_LEN + KF_CHECKSUM_LEN (the
 *	  header says "at least"); kf_mint always writes exactly that length.
 *
 * src/keyformat.c
 *
 *-------------------------------------------------------------------------
 */
#include "keyformat.h"

#include <string.h>

static const char kf_base62_digits[] =
"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/* Rejection sampling bound: 248 = 4 * 62, so b % 62 is uniform for b < 248. */
#define KF_RND_LIMIT		248

/*
 * CRC-32 lookup table for the reflected polynomial 0xEDB88320, written out
 * so that it is a true constant (no lazy initialisation, no races).
 * kf_crc32_table[n] is the CRC register after shifting byte n through.
 */
static const uint32_t kf_crc32_table[256] = {
	0x00000000, 0x77073096, 0xee0e612c, 0x990951ba,
	0x076dc419, 0x706af48f, 0xe963a535, 0x9e6495a3,
	0x0edb8832, 0x79dcb8a4, 0xe0d5e91e, 0x97d2d988,
	0x09b64c2b, 0x7eb17cbd, 0xe7b82d07, 0x90bf1d91,
	0x1db71064, 0x6ab020f2, 0xf3b97148, 0x84be41de,
	0x1adad47d, 0x6ddde4eb, 0xf4d4b551, 0x83d385c7,
	0x136c9856, 0x646ba8c0, 0xfd62f97a, 0x8a65c9ec,
	0x14015c4f, 0x63066cd9, 0xfa0f3d63, 0x8d080df5,
	0x3b6e20c8, 0x4c69105e, 0xd56041e4, 0xa2677172,
	0x3c03e4d1, 0x4b04d447, 0xd20d85fd, 0xa50ab56b,
	0x35b5a8fa, 0x42b2986c, 0xdbbbc9d6, 0xacbcf940,
	0x32d86ce3, 0x45df5c75, 0xdcd60dcf, 0xabd13d59,
	0x26d930ac, 0x51de003a, 0xc8d75180, 0xbfd06116,
	0x21b4f4b5, 0x56b3c423, 0xcfba9599, 0xb8bda50f,
	0x2802b89e, 0x5f058808, 0xc60cd9b2, 0xb10be924,
	0x2f6f7c87, 0x58684c11, 0xc1611dab, 0xb6662d3d,
	0x76dc4190, 0x01db7106, 0x98d220bc, 0xefd5102a,
	0x71b18589, 0x06b6b51f, 0x9fbfe4a5, 0xe8b8d433,
	0x7807c9a2, 0x0f00f934, 0x9609a88e, 0xe10e9818,
	0x7f6a0dbb, 0x086d3d2d, 0x91646c97, 0xe6635c01,
	0x6b6b51f4, 0x1c6c6162, 0x856530d8, 0xf262004e,
	0x6c0695ed, 0x1b01a57b, 0x8208f4c1, 0xf50fc457,
	0x65b0d9c6, 0x12b7e950, 0x8bbeb8ea, 0xfcb9887c,
	0x62dd1ddf, 0x15da2d49, 0x8cd37cf3, 0xfbd44c65,
	0x4db26158, 0x3ab551ce, 0xa3bc0074, 0xd4bb30e2,
	0x4adfa541, 0x3dd895d7, 0xa4d1c46d, 0xd3d6f4fb,
	0x4369e96a, 0x346ed9fc, 0xad678846, 0xda60b8d0,
	0x44042d73, 0x33031de5, 0xaa0a4c5f, 0xdd0d7cc9,
	0x5005713c, 0x270241aa, 0xbe0b1010, 0xc90c2086,
	0x5768b525, 0x206f85b3, 0xb966d409, 0xce61e49f,
	0x5edef90e, 0x29d9c998, 0xb0d09822, 0xc7d7a8b4,
	0x59b33d17, 0x2eb40d81, 0xb7bd5c3b, 0xc0ba6cad,
	0xedb88320, 0x9abfb3b6, 0x03b6e20c, 0x74b1d29a,
	0xead54739, 0x9dd277af, 0x04db2615, 0x73dc1683,
	0xe3630b12, 0x94643b84, 0x0d6d6a3e, 0x7a6a5aa8,
	0xe40ecf0b, 0x9309ff9d, 0x0a00ae27, 0x7d079eb1,
	0xf00f9344, 0x8708a3d2, 0x1e01f268, 0x6906c2fe,
	0xf762575d, 0x806567cb, 0x196c3671, 0x6e6b06e7,
	0xfed41b76, 0x89d32be0, 0x10da7a5a, 0x67dd4acc,
	0xf9b9df6f, 0x8ebeeff9, 0x17b7be43, 0x60b08ed5,
	0xd6d6a3e8, 0xa1d1937e, 0x38d8c2c4, 0x4fdff252,
	0xd1bb67f1, 0xa6bc5767, 0x3fb506dd, 0x48b2364b,
	0xd80d2bda, 0xaf0a1b4c, 0x36034af6, 0x41047a60,
	0xdf60efc3, 0xa867df55, 0x316e8eef, 0x4669be79,
	0xcb61b38c, 0xbc66831a, 0x256fd2a0, 0x5268e236,
	0xcc0c7795, 0xbb0b4703, 0x220216b9, 0x5505262f,
	0xc5ba3bbe, 0xb2bd0b28, 0x2bb45a92, 0x5cb36a04,
	0xc2d7ffa7, 0xb5d0cf31, 0x2cd99e8b, 0x5bdeae1d,
	0x9b64c2b0, 0xec63f226, 0x756aa39c, 0x026d930a,
	0x9c0906a9, 0xeb0e363f, 0x72076785, 0x05005713,
	0x95bf4a82, 0xe2b87a14, 0x7bb12bae, 0x0cb61b38,
	0x92d28e9b, 0xe5d5be0d, 0x7cdcefb7, 0x0bdbdf21,
	0x86d3d2d4, 0xf1d4e242, 0x68ddb3f8, 0x1fda836e,
	0x81be16cd, 0xf6b9265b, 0x6fb077e1, 0x18b74777,
	0x88085ae6, 0xff0f6a70, 0x66063bca, 0x11010b5c,
	0x8f659eff, 0xf862ae69, 0x616bffd3, 0x166ccf45,
	0xa00ae278, 0xd70dd2ee, 0x4e048354, 0x3903b3c2,
	0xa7672661, 0xd06016f7, 0x4969474d, 0x3e6e77db,
	0xaed16a4a, 0xd9d65adc, 0x40df0b66, 0x37d83bf0,
	0xa9bcae53, 0xdebb9ec5, 0x47b2cf7f, 0x30b5ffe9,
	0xbdbdf21c, 0xcabac28a, 0x53b39330, 0x24b4a3a6,
	0xbad03605, 0xcdd70693, 0x54de5729, 0x23d967bf,
	0xb3667a2e, 0xc4614ab8, 0x5d681b02, 0x2a6f2b94,
	0xb40bbe37, 0xc30c8ea1, 0x5a05df1b, 0x2d02ef8d
};

/*
 * kf_crc32
 *		Standard CRC-32 (init and final xor 0xFFFFFFFF), equal to zlib's
 *		crc32(0, buf, len).  buf may be NULL when len is 0.
 */
uint32_t
kf_crc32(const void *buf, size_t len)
{
	const unsigned char *p = (const unsigned char *) buf;
	uint32_t	crc = 0xFFFFFFFFu;
	size_t		i;

	for (i = 0; i < len; i++)
		crc = kf_crc32_table[(crc ^ p[i]) & 0xFF] ^ (crc >> 8);

	return crc ^ 0xFFFFFFFFu;
}

/*
 * kf_checksum_encode
 *		Write v as exactly KF_CHECKSUM_LEN base62 digits, most significant
 *		first, padded with '0'.  No terminating NUL.
 */
void
kf_checksum_encode(uint32_t v, char *out)
{
	int			i;

	for (i = KF_CHECKSUM_LEN - 1; i >= 0; i--)
	{
		out[i] = kf_base62_digits[v % 62];
		v /= 62;
	}
}

/*
 * kf_is_base62
 *		true if c is one of 0-9, A-Z, a-z (ASCII only).
 */
bool
kf_is_base62(char c)
{
	return (c >= '0' && c <= '9') ||
		(c >= 'A' && c <= 'Z') ||
		(c >= 'a' && c <= 'z');
}

/*
 * kf_prefix_valid
 *		true if s[0..len) matches [a-z][a-z0-9_]{0,30}[a-z0-9].
 */
bool
kf_prefix_valid(const char *s, size_t len)
{
	size_t		i;

	if (s == NULL || len < KF_PREFIX_MIN || len > KF_PREFIX_MAX)
		return false;
	if (!(s[0] >= 'a' && s[0] <= 'z'))
		return false;
	for (i = 1; i < len; i++)
	{
		char		c = s[i];

		if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))
			continue;
		if (c == '_' && i < len - 1)
			continue;
		return false;
	}
	return true;
}

/*
 * kf_mint
 *		Build "<prefix>_<secret><checksum>" in out (see keyformat.h).
 *
 * Checks are made in this order: prefix (KF_BAD_PREFIX), output size
 * (KF_BUFFER_TOO_SMALL), random bytes (KF_NEED_RANDOM).  On any failure the
 * whole of out[0..out_size) is wiped, so no partial secret is left behind.
 */
kf_status
kf_mint(const char *prefix, size_t prefix_len,
		const uint8_t *rnd, size_t rnd_len,
		char *out, size_t out_size)
{
	size_t		need = prefix_len + 1 + KF_SECRET_LEN + KF_CHECKSUM_LEN + 1;
	size_t		pos;
	size_t		r;
	size_t		n;
	kf_status	st;

	if (!kf_prefix_valid(prefix, prefix_len))
	{
		st = KF_BAD_PREFIX;
		goto fail;
	}
	if (out == NULL || out_size < need)
	{
		st = KF_BUFFER_TOO_SMALL;
		goto fail;
	}

	memcpy(out, prefix, prefix_len);
	pos = prefix_len;
	out[pos++] = '_';

	r = 0;
	for (n = 0; n < KF_SECRET_LEN; n++)
	{
		while (rnd != NULL && r < rnd_len && rnd[r] >= KF_RND_LIMIT)
			r++;
		if (rnd == NULL || r >= rnd_len)
		{
			st = KF_NEED_RANDOM;
			goto fail;
		}
		out[pos++] = kf_base62_digits[rnd[r++] % 62];
	}

	kf_checksum_encode(kf_crc32(out, pos), out + pos);
	pos += KF_CHECKSUM_LEN;
	out[pos] = '\0';

	return KF_OK;

fail:
	if (out != NULL && out_size > 0)
		kf_wipe(out, out_size);
	return st;
}

/*
 * kf_parse
 *		Validate key[0..len) without reading past len (see keyformat.h for
 *		the status precedence).
 */
kf_status
kf_parse(const char *key, size_t len, kf_parsed *parsed)
{
	size_t		us;
	size_t		i;
	size_t		body_len;
	char		want[KF_CHECKSUM_LEN];
	unsigned char diff;

	if (key == NULL || len == 0)
		return KF_EMPTY;
	if (len > KF_KEY_MAX_LEN)
		return KF_TOO_LONG;

	/* The prefix ends at the last '_'; base62 never contains one. */
	us = len;
	while (us > 0 && key[us - 1] != '_')
		us--;
	if (us == 0)
		return KF_BAD_SHAPE;
	us--;						/* index of the last '_' */

	if (!kf_prefix_valid(key, us))
		return KF_BAD_PREFIX;

	body_len = len - us - 1;
	if (body_len < KF_SECRET_LEN + KF_CHECKSUM_LEN)
		return KF_BAD_SHAPE;
	for (i = us + 1; i < len; i++)
	{
		if (!kf_is_base62(key[i]))
			return KF_BAD_SHAPE;
	}

	/* The checksum is not secret, but compare without early exit anyway. */
	kf_checksum_encode(kf_crc32(key, len - KF_CHECKSUM_LEN), want);
	diff = 0;
	for (i = 0; i < KF_CHECKSUM_LEN; i++)
		diff |= (unsigned char) (want[i] ^ key[len - KF_CHECKSUM_LEN + i]);
	if (diff != 0)
		return KF_BAD_CHECKSUM;

	if (parsed != NULL)
	{
		parsed->prefix_len = us;
		parsed->secret_off = us + 1;
		parsed->secret_len = body_len - KF_CHECKSUM_LEN;
		parsed->key_len = len;
	}
	return KF_OK;
}

/*
 * kf_hint
 *		"<prefix>_" + first KF_HINT_HEAD secret characters + U+2026 + last
 *		KF_HINT_TAIL characters of the key.  Returns KF_BAD_SHAPE if the key
 *		does not parse (whatever the reason), KF_BUFFER_TOO_SMALL if out
 *		cannot hold the hint.  On failure out is set to "" when it has room.
 */
kf_status
kf_hint(const char *key, size_t len, char *out, size_t out_size)
{
	kf_parsed	p;
	size_t		need;
	size_t		pos;

	if (kf_parse(key, len, &p) != KF_OK)
	{
		if (out != NULL && out_size > 0)
			out[0] = '\0';
		return KF_BAD_SHAPE;
	}

	need = p.secret_off + KF_HINT_HEAD + 3 + KF_HINT_TAIL + 1;
	if (out == NULL || out_size < need)
	{
		if (out != NULL && out_size > 0)
			out[0] = '\0';
		return KF_BUFFER_TOO_SMALL;
	}

	pos = p.secret_off + KF_HINT_HEAD;
	memcpy(out, key, pos);
	out[pos++] = '\xE2';		/* U+2026 HORIZONTAL ELLIPSIS in UTF-8 */
	out[pos++] = '\x80';
	out[pos++] = '\xA6';
	memcpy(out + pos, key + len - KF_HINT_TAIL, KF_HINT_TAIL);
	pos += KF_HINT_TAIL;
	out[pos] = '\0';

	return KF_OK;
}

/*
 * kf_status_text
 *		Short lower-case description of st; never NULL.
 */
const char *
kf_status_text(kf_status st)
{
	switch (st)
	{
		case KF_OK:
			return "ok";
		case KF_EMPTY:
			return "empty key";
		case KF_TOO_LONG:
			return "key too long";
		case KF_BAD_PREFIX:
			return "invalid key prefix";
		case KF_BAD_SHAPE:
			return "malformed key";
		case KF_BAD_CHECKSUM:
			return "key checksum mismatch";
		case KF_NEED_RANDOM:
			return "not enough random bytes";
		case KF_BUFFER_TOO_SMALL:
			return "output buffer too small";
	}
	return "unknown status";
}

/*
 * kf_wipe
 *		Zero p[0..len) through a volatile pointer so that the stores cannot
 *		be elided as dead even when p is about to go out of scope.
 */
void
kf_wipe(void *p, size_t len)
{
	volatile unsigned char *v = (volatile unsigned char *) p;

	if (p == NULL)
		return;
	while (len-- > 0)
		*v++ = 0;
}
