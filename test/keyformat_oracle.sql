--
-- keyformat_oracle.sql: an independent implementation of the key format's
-- checksum in SQL, for the tests (included with \i or \ir).  Nothing calls
-- the extension.
--
--   crc32(s)          the standard CRC-32 (zlib's), bit by bit over the
--                     UTF-8 bytes: reflected, polynomial 0xEDB88320,
--                     initial value and final xor 0xFFFFFFFF
--   base62_6(v)       v as exactly 6 base62 digits (0-9A-Za-z), most
--                     significant first
--   checksum(body)    the 6 characters a key ends with, given the rest
--   checksum_ok(key)  the key ends with the checksum of the rest
--   mkkey(p, secret)  a well-formed key from a prefix and a secret
--
CREATE FUNCTION pg_temp.crc32(s text) RETURNS bigint
LANGUAGE plpgsql IMMUTABLE STRICT AS $$
DECLARE
	b	bytea := convert_to(s, 'UTF8');
	crc	bigint := 4294967295;
BEGIN
	FOR i IN 0 .. length(b) - 1 LOOP
		crc := crc # get_byte(b, i);
		FOR j IN 1 .. 8 LOOP
			crc := (crc >> 1) # (3988292384 * (crc & 1));
		END LOOP;
	END LOOP;
	RETURN crc # 4294967295;
END $$;
CREATE FUNCTION pg_temp.base62_6(v bigint) RETURNS text
LANGUAGE plpgsql IMMUTABLE STRICT AS $$
DECLARE
	d	CONSTANT text := '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
	r	text := '';
BEGIN
	FOR i IN 1 .. 6 LOOP
		r := substr(d, (v % 62)::int + 1, 1) || r;
		v := v / 62;
	END LOOP;
	RETURN r;
END $$;
CREATE FUNCTION pg_temp.checksum(body text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT AS $$
	SELECT pg_temp.base62_6(pg_temp.crc32(body))
$$;
CREATE FUNCTION pg_temp.checksum_ok(k text) RETURNS boolean
LANGUAGE sql IMMUTABLE STRICT AS $$
	SELECT length(k) > 6 AND right(k, 6) = pg_temp.checksum(left(k, -6))
$$;
CREATE FUNCTION pg_temp.mkkey(prefix text, secret text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT AS $$
	SELECT prefix || '_' || secret || pg_temp.checksum(prefix || '_' || secret)
$$;
