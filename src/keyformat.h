/*-------------------------------------------------------------------------
 *
 * keyformat.h
 *	  The apikey key format: <prefix>_<secret><checksum>.
 *
 * Pure C (no PostgreSQL headers, no allocation): base62, the zlib-compatible
 * CRC-32, minting a key from caller-supplied random bytes, parsing and
 * validating a presented key, and the display hint.  The same object file
 * is linked into the extension, the unit tests and the fuzz target.
 *
 *	prefix    [a-z][a-z0-9_]{0,30}[a-z0-9]        (2..32 characters)
 *	secret    KF_SECRET_LEN base62 characters      (190.5 bits)
 *	checksum  KF_CHECKSUM_LEN base62 characters: CRC-32 (zlib's) of
 *	          everything before it, as a big-endian base62 number padded
 *	          with '0' on the left
 *
 * Base62 digits are 0-9, A-Z, a-z in that order (value 0..61).
 *
 *-------------------------------------------------------------------------
 */
#ifndef APIKEY_KEYFORMAT_H
#define APIKEY_KEYFORMAT_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#define KF_PREFIX_MIN		2
#define KF_PREFIX_MAX		32
#define KF_SECRET_LEN		32
#define KF_CHECKSUM_LEN		6
/* Longest key we mint: prefix, '_', secret, checksum. */
#define KF_KEY_MAX_MINTED	(KF_PREFIX_MAX + 1 + KF_SECRET_LEN + KF_CHECKSUM_LEN)
/* Longest string kf_parse looks at; anything longer is malformed unseen. */
#define KF_KEY_MAX_LEN		128
/* Buffer size for a minted key including the terminating NUL. */
#define KF_KEY_BUFSZ		(KF_KEY_MAX_MINTED + 1)
/* Hint: prefix '_' 4 chars, U+2026 (3 bytes in UTF-8), 4 chars, NUL. */
#define KF_HINT_HEAD		4
#define KF_HINT_TAIL		4
#define KF_HINT_BUFSZ		(KF_PREFIX_MAX + 1 + KF_HINT_HEAD + 3 + KF_HINT_TAIL + 1)

typedef enum kf_status
{
	KF_OK = 0,
	KF_EMPTY,					/* NULL or zero length */
	KF_TOO_LONG,				/* longer than KF_KEY_MAX_LEN */
	KF_BAD_PREFIX,				/* prefix does not match the pattern */
	KF_BAD_SHAPE,				/* no '_', bad characters, body too short */
	KF_BAD_CHECKSUM,			/* checksum does not match */
	KF_NEED_RANDOM,				/* kf_mint: not enough random bytes given */
	KF_BUFFER_TOO_SMALL			/* output buffer too small */
} kf_status;

/* Result of kf_parse: offsets into the presented key, no copies. */
typedef struct kf_parsed
{
	size_t		prefix_len;		/* key[0 .. prefix_len) is the prefix */
	size_t		secret_off;		/* prefix_len + 1 */
	size_t		secret_len;		/* body length minus KF_CHECKSUM_LEN */
	size_t		key_len;		/* whole key */
} kf_parsed;

/* Standard CRC-32 (IEEE 802.3, reflected, as zlib's crc32(0, buf, len)). */
extern uint32_t kf_crc32(const void *buf, size_t len);

/* Encode v as exactly KF_CHECKSUM_LEN base62 digits into out (no NUL). */
extern void kf_checksum_encode(uint32_t v, char *out);

/* true if c is a base62 digit */
extern bool kf_is_base62(char c);

/* true if s[0..len) is a valid prefix */
extern bool kf_prefix_valid(const char *s, size_t len);

/*
 * kf_mint: write a new key "<prefix>_<secret><checksum>" with a NUL into out.
 * Secret characters come from rnd by rejection sampling (bytes >= 248 are
 * skipped so each character is uniform over 62 values).  Returns
 * KF_NEED_RANDOM if rnd ran out (call again with more bytes; 64 bytes are
 * almost always enough), KF_BAD_PREFIX, KF_BUFFER_TOO_SMALL or KF_OK.
 * On any failure out is zeroed.
 */
extern kf_status kf_mint(const char *prefix, size_t prefix_len,
						 const uint8_t *rnd, size_t rnd_len,
						 char *out, size_t out_size);

/*
 * kf_parse: check that key[0..len) is a well-formed key with a correct
 * checksum.  The prefix is everything before the last '_'; the body after
 * it must be base62, at least KF_SECRET_LEN + KF_CHECKSUM_LEN long.  Never
 * reads beyond len, never allocates.  Fills *parsed (may be NULL) on KF_OK.
 */
extern kf_status kf_parse(const char *key, size_t len, kf_parsed *parsed);

/*
 * kf_hint: display hint for a well-formed key: "<prefix>_" + first
 * KF_HINT_HEAD secret characters + "…" + last KF_HINT_TAIL characters of
 * the key, NUL terminated.  Returns KF_BAD_SHAPE if the key does not parse.
 */
extern kf_status kf_hint(const char *key, size_t len, char *out, size_t out_size);

/* kf_status_text: a short lower-case description, for error details. */
extern const char *kf_status_text(kf_status st);

/* kf_wipe: zero len bytes at p in a way the compiler does not remove. */
extern void kf_wipe(void *p, size_t len);

#endif							/* APIKEY_KEYFORMAT_H */
