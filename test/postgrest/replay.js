'use strict';
/*
 * replay.js: a PostgREST replay client.  For one HTTP-like request it sends
 * PostgreSQL what PostgREST 12/13 (or 11, option version) sends with
 * db-pre-request = apikey.postgrest_pre_request and
 * db-prepared-statements = false, and turns the outcome into the HTTP
 * response PostgREST would give, so that the hook can be tested without
 * PostgREST's binary.
 *
 * Sources followed, in PostgREST/postgrest at the tags v11.2.2
 * (f884da79), v12.0.0 (00580bc8), v12.2.12 (cd3cf9ed), v13.0.0 (ad66ae4e)
 * and v13.0.8 (f9e1af2f), with hasql-transaction 1.0.1.4 (57a6ff13) for
 * BEGIN/COMMIT/ABORT and hasql 1.6.4.4 (eeab1db2) for the wire protocol:
 *   src/PostgREST/Auth.hs          the Bearer JWT is checked before any SQL
 *                                  (parseToken, parseClaims)
 *   src/PostgREST/App.hs           auth, routing, one transaction a request
 *   src/PostgREST/Query.hs         setPgLocals, runPreReq, actionQuery: BEGIN,
 *                                  one set_config statement, the pre-request
 *                                  call, the main query, COMMIT or ABORT
 *   src/PostgREST/Query/SqlFragment.hs  setConfigLocal*, the response GUC
 *                                  columns, fromJsonBodyF, asJsonF, filters
 *   src/PostgREST/Query/Statements.hs, Query/QueryBuilder.hs  main queries
 *   src/PostgREST/Plan.hs          READ ONLY / READ WRITE per request
 *   src/PostgREST/Error.hs         pgErrorStatus, RAISE SQLSTATE 'PGRST'
 *                                  (PGRST121), PTxyz, WWW-Authenticate
 *   src/PostgREST/Response.hs      response.status, response.headers
 *                                  (PGRST111/112), 204 for void functions
 *   docs/references/transactions.rst, docs/references/errors.rst (v12, v13;
 *   PostgREST/postgrest-docs branch v11.2 for v11)
 * The option version: 12 follows v12.2.x, 13 v13.0.8, 11 v11.2.2.
 *
 * Known differences from real PostgREST:
 *   - pg sends parameter type 0 (unspecified) where hasql sends 705
 *     (unknown); PostgreSQL resolves both the same way.  A JSON body is
 *     sent as text and cast ($1::json) where hasql binds it as json (114).
 *   - Results come back as text, not binary.  Every statement, BEGIN and
 *     COMMIT/ABORT included, is an unnamed extended-protocol statement
 *     (Parse/Bind/Describe/Execute/Sync), as with db-prepared-statements =
 *     false; the default (named prepared statements) is not reproduced.
 *   - Only part of the API: tables with select=* and the filters eq, neq,
 *     gt, gte, lt, lte; POST/PATCH/DELETE with Prefer: return=
 *     representation or minimal; RPC to functions without arguments by
 *     GET/HEAD/POST.  Anything else throws (a test bug, not an HTTP
 *     answer).  No OpenAPI root, PUT, embedding, counting, ranges,
 *     profiles, Prefer: tx, per-role isolation levels, app settings, v11's
 *     legacy GUCs (PostgreSQL < 14).  Role settings are an option, not read
 *     from pg_db_role_setting.  The schema cache is read once, lazily,
 *     through the same pool.  Whitespace in the SQL follows v12.2.
 *   - 40001 retries the transaction (as hasql-transaction 1.0.1.4); the
 *     40P01 retry of 1.1.x (allowed by v13.0.8) is not reproduced.
 *   - JWT: HS256/HS384/HS512 with a shared secret only, no jwt-aud, role
 *     from the "role" claim only; v11/v12 messages (shows of jose's errors)
 *     are approximated except for the wrong number of parts; status, code
 *     and WWW-Authenticate form are exact.  v13.0.0's null details of a
 *     wrong key are not reproduced (v13.0.8's are).
 *   - Headers come back as an object with lower-case names; repeated
 *     response.headers names are joined with ", ".  Content-Length (v13)
 *     and Retry-After on 503 are not produced.
 */
const crypto = require('node:crypto');
const { STATUS_CODES } = require('node:http');

const JSON_CT = 'application/json; charset=utf-8';
const JWT_SKEW = 30;			/* seconds: jose allowedSkew in Auth.hs */
const JWT_ALGS = { HS256: 'sha256', HS384: 'sha384', HS512: 'sha512' };
const FILTER_OPS = { eq: '=', neq: '<>', gt: '>', gte: '>=', lt: '<', lte: '<=' };
const RESERVED_PARAMS = new Set(['select', 'order', 'limit', 'offset', 'columns', 'on_conflict']);
/* every result column as the server's text, as PostgREST keeps bytes */
const RAW_TYPES = { getTypeParser: () => (v) => v };

const RESPONSE_GUCS = "nullif(current_setting('response.headers', true), '') AS response_headers, " +
	"nullif(current_setting('response.status', true), '') AS response_status";

/* pgFmtIdent */
function ident(name) {
	return '"' + String(name).replace(/\0/g, '').replace(/"/g, '""') + '"';
}

/* aeson encodes object keys in order (KeyMap is an ordered map) */
function sortedJson(value) {
	if (Array.isArray(value))
		return value.map(sortedJson);
	if (value !== null && typeof value === 'object')
		return Object.fromEntries(Object.keys(value).sort().map((k) => [k, sortedJson(value[k])]));
	return value;
}

/* Haskell's show of a Text, as in invalidTokenHeader */
function hsShow(s) {
	return '"' + s.replace(/\\/g, '\\\\').replace(/"/g, '\\"') + '"';
}

/* the request's header lines as [name, value] pairs, in order */
function headerLines(req) {
	const lines = Array.isArray(req.headers) ? [...req.headers] : Object.entries(req.headers || {});
	if (req.cookies)
		lines.push(['Cookie', Object.entries(req.cookies).map(([k, v]) => `${k}=${v}`).join('; ')]);
	return lines.map(([k, v]) => [String(k), String(v)]);
}

/* Web.Cookie parseCookies: split on ';', trim, split at the first '=' */
function parseCookies(line) {
	const out = {};
	for (const part of line.split(';')) {
		const p = part.trim();
		if (p === '')
			continue;
		const eq = p.indexOf('=');
		out[eq < 0 ? p : p.slice(0, eq)] = eq < 0 ? '' : p.slice(eq + 1);
	}
	return out;
}

function response(status, headers, body, statusText) {
	return { status, statusText: statusText ?? STATUS_CODES[status] ?? '', headers, body };
}

/* errorResponseFor: the JSON body {code, details, hint, message} */
function errorResponse(version, status, err, headers = {}, statusText) {
	const body = JSON.stringify({
		code: err.code, details: err.details ?? null, hint: err.hint ?? null, message: err.message,
	});
	const h = { 'content-type': JSON_CT, ...headers };
	if (version >= 13)
		h['proxy-status'] = `PostgREST; error=${err.code}`;
	return response(status, h, body, statusText);
}

class JwtError extends Error {
	constructor(code, message, details) {
		super(message);
		this.pgrst = { code, message, details };
	}
}

/*
 * verifyJwt: Auth.hs parseToken for an HMAC secret; returns the claims
 * or throws JwtError with v13's messages, or v11/v12's shows of jose's.
 */
function verifyJwt(token, { secret, version, now }) {
	const v13 = version >= 13;
	const fail = (m13, m12, claims = false, details) =>
		new JwtError(v13 && claims ? 'PGRST303' : 'PGRST301', v13 ? m13 : m12, v13 ? details : undefined);
	const parts = token.split('.');
	if (parts.length !== 3)
		throw fail(`Expected 3 parts in JWT; got ${parts.length}`,
			`JWSError (CompactDecodeError Invalid number of parts: Expected 3 parts; got ${parts.length})`);
	let header;
	try {
		header = JSON.parse(Buffer.from(parts[0], 'base64url').toString('utf8'));
	} catch {
		throw fail('JWT cryptographic operation failed', 'JWSError (CompactDecodeError Invalid JWS header)');
	}
	const hash = JWT_ALGS[header && header.alg];
	if (!hash)
		throw fail('Wrong or unsupported encoding algorithm', 'JWSError (AlgorithmMismatch "No suitable key or wrong key type")');
	const expected = crypto.createHmac(hash, secret).update(`${parts[0]}.${parts[1]}`).digest();
	const given = Buffer.from(parts[2], 'base64url');
	if (given.length !== expected.length || !crypto.timingSafeEqual(given, expected))
		throw fail('No suitable key or wrong key type', 'JWSError JWSInvalidSignature', false,
			'None of the keys was able to decode the JWT');
	let claims;
	try {
		claims = JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8'));
	} catch {
		claims = null;
	}
	if (claims === null || typeof claims !== 'object' || Array.isArray(claims))
		throw fail('Parsing claims failed', 'JWTClaimsSetDecodeError "Error in $: parsing ClaimsSet failed"', true);
	if (typeof claims.exp === 'number' && now > claims.exp + JWT_SKEW)
		throw fail('JWT expired', 'JWT expired', true);
	if (typeof claims.nbf === 'number' && now + JWT_SKEW < claims.nbf)
		throw fail('JWT not yet valid', 'JWTNotYetValid', true);
	if (typeof claims.iat === 'number' && now + JWT_SKEW < claims.iat)
		throw fail('JWT issued at future', 'JWTIssuedAtFuture', true);
	return claims;
}

/*
 * Error.hs parseRaisePGRST: the custom body and response of RAISE SQLSTATE
 * 'PGRST', or the PGRST121 error when MESSAGE or DETAIL is not such JSON.
 */
function parseRaisePgrst(m, d) {
	const parse = (s) => {
		try {
			const v = JSON.parse(s);
			return v !== null && typeof v === 'object' && !Array.isArray(v) ? v : null;
		} catch {
			return null;
		}
	};
	const optText = (v) => v === undefined || v === null || typeof v === 'string';
	const parseErr = (details, hint) => ({
		error: {
			code: 'PGRST121',
			message: 'Could not parse JSON in the "RAISE SQLSTATE \'PGRST\'" error',
			details, hint,
		},
	});
	const detHint = "DETAIL must be a JSON object with obligatory keys: 'status', 'headers' and optional key: 'status_text'.";
	const msg = parse(m);
	if (!msg || typeof msg.code !== 'string' || typeof msg.message !== 'string' ||
		!optText(msg.details) || !optText(msg.hint))
		return parseErr(`Invalid JSON value for MESSAGE: '${m}'`,
			"MESSAGE must be a JSON object with obligatory keys: 'code', 'message' and optional keys: 'details', 'hint'.");
	if (d === undefined || d === null)
		return parseErr('DETAIL is missing in the RAISE statement', detHint);
	const det = parse(d);
	const headersOk = det && det.headers !== null && typeof det.headers === 'object' &&
		!Array.isArray(det.headers) && Object.values(det.headers).every((v) => typeof v === 'string');
	if (!det || !Number.isInteger(det.status) || !headersOk || !optText(det.status_text))
		return parseErr(`Invalid JSON value for DETAIL: '${d}'`, detHint);
	return { body: msg, status: det.status, statusText: det.status_text, headers: det.headers };
}

/* Error.hs pgErrorStatus for an SQLSTATE, per version */
function sqlstateStatus(version, authed, code, message) {
	const two = code.slice(0, 2);
	if (two === '08') return 503;
	if (['0L', '0P', '28'].includes(two)) return 403;
	if (['23503', '23505'].includes(code)) return 409;
	if (code === '25006') return 405;
	if (version >= 12 && code === '21000')
		return message.endsWith('requires a WHERE clause') ? 400 : 500;
	if (version >= 13 && code === '22023' && message.startsWith('role') && message.endsWith('does not exist'))
		return 401;
	if (version >= 12 && code === '53400') return 500;
	if (two === '53') return 503;
	if (two === '54') return version >= 12 ? 500 : 413;
	if (code === '57P01') return 503;
	if (code === 'P0001') return 400;
	if (['09', '25', '2D', '38', '39', '3B', '40', '55', '57', '58', 'F0', 'HV', 'P0', 'XX'].includes(two))
		return 500;
	if (code === '42883') return message.startsWith('function xmlagg(') ? 406 : 404;
	if (code === '42P01') return 404;
	if (version >= 12 && code === '42P17') return 500;
	if (code === '42501') return authed ? 403 : 401;
	if (two === 'PT') return /^\d+$/.test(code.slice(2)) ? Number(code.slice(2)) : 500;
	return 400;
}

/*
 * mapDbError: the response PostgREST gives for an error of the
 * transaction (err as node-postgres reports it); authed: the request's
 * role is not the anonymous role.
 */
function mapDbError(err, { version, authed }) {
	if (typeof err.severity !== 'string')		/* not from the server: the connection broke */
		return errorResponse(version, 503, {
			code: 'PGRST001', message: 'Database client error. Retrying the connection.', details: err.message,
		});
	if (err.code === 'PGRST' && version >= 12) {
		const r = parseRaisePgrst(err.message, err.detail);
		if (r.error)
			return errorResponse(version, 500, r.error);
		const headers = Object.fromEntries(Object.entries(r.headers).map(([k, v]) => [k.toLowerCase(), v]));
		return errorResponse(version, r.status, r.body, headers, r.statusText);
	}
	const status = sqlstateStatus(version, authed, err.code, err.message);
	return errorResponse(version, status,
		{ code: err.code, message: err.message, details: err.detail, hint: err.hint },
		status === 401 ? { 'www-authenticate': 'Bearer' } : {},
		err.code.startsWith('PT') ? err.message : undefined);
}

/* Response.hs: apply response.status and response.headers after COMMIT */
function applyResponseGucs(version, res, gucStatus, gucHeaders) {
	if (gucStatus !== null && gucStatus !== undefined) {
		const m = /^\d+/.exec(gucStatus);
		if (!m)
			return errorResponse(version, 500, { code: 'PGRST112', message: 'response.status guc must be a valid status code' });
		res.status = Number(m[0]);
		res.statusText = STATUS_CODES[res.status] ?? '';
	}
	if (gucHeaders !== null && gucHeaders !== undefined) {
		let list;
		try {
			list = JSON.parse(gucHeaders);
		} catch {
			list = null;
		}
		const ok = Array.isArray(list) && list.every((o) => o && typeof o === 'object' &&
			!Array.isArray(o) && Object.keys(o).length === 1 && typeof Object.values(o)[0] === 'string');
		if (!ok)
			return errorResponse(version, 500, {
				code: 'PGRST111',
				message: 'response.headers guc must be a JSON array composed of objects with a single key and a string value',
			});
		const added = {};
		for (const o of list) {
			const [k, v] = Object.entries(o)[0];
			const name = k.toLowerCase();
			added[name] = name in added ? `${added[name]}, ${v}` : v;
		}
		Object.assign(res.headers, added);
	}
	return res;
}

class Replay {
	/*
	 * opts: pool (a pg Pool logged in as the authenticator), version (11,
	 * 12 or 13; 12), schema ('api'), extraSearchPath (['public']),
	 * anonRole ('web_anon'; null: none), jwtSecret (HMAC; no audience),
	 * preRequest ('apikey.postgrest_pre_request'; null: none),
	 * roleSettings ({role: {setting: value}}: what PostgREST read from
	 * pg_db_role_setting for the roles it switches to).
	 */
	constructor(opts) {
		this.pool = opts.pool;
		this.version = opts.version ?? 12;
		this.schema = opts.schema ?? 'api';
		this.extraSearchPath = opts.extraSearchPath ?? ['public'];
		this.anonRole = opts.anonRole === undefined ? 'web_anon' : opts.anonRole;
		this.jwtSecret = opts.jwtSecret;
		this.preRequest = opts.preRequest === undefined ? 'apikey.postgrest_pre_request' : opts.preRequest;
		this.roleSettings = opts.roleSettings ?? {};
		this.cache = null;
	}

	/* the schema cache: columns of each table, functions without arguments */
	async schemaCache() {
		if (this.cache)
			return this.cache;
		const tables = await this.pool.query({
			text: `SELECT c.relname, a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod) AS type
				FROM pg_catalog.pg_class c
				JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
				JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
				WHERE n.nspname = $1 AND c.relkind IN ('r', 'v', 'm', 'f', 'p')
				ORDER BY c.relname, a.attnum`,
			values: [this.schema], queryMode: 'extended',
		});
		const funcs = await this.pool.query({
			text: `SELECT p.proname, p.provolatile, p.proretset,
					p.prorettype = 'pg_catalog.void'::pg_catalog.regtype AS void,
					t.typtype = 'c' OR p.prorettype = 'pg_catalog.record'::pg_catalog.regtype AS composite
				FROM pg_catalog.pg_proc p
				JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
				JOIN pg_catalog.pg_type t ON t.oid = p.prorettype
				WHERE n.nspname = $1 AND p.prokind = 'f' AND p.pronargs = 0`,
			values: [this.schema], queryMode: 'extended',
		});
		const cache = { tables: new Map(), funcs: new Map() };
		for (const r of tables.rows) {
			if (!cache.tables.has(r.relname))
				cache.tables.set(r.relname, new Map());
			cache.tables.get(r.relname).set(r.attname, r.type);
		}
		for (const r of funcs.rows)
			cache.funcs.set(r.proname, r);
		this.cache = cache;
		return cache;
	}

	/*
	 * authenticate: Auth.hs; {claims, role} or {error: response}.  The
	 * token comes from the first Authorization header with the scheme
	 * "bearer" (any case), as wai-extra's extractBearerAuth.
	 */
	authenticate(lines) {
		const auth = lines.find(([k]) => k.toLowerCase() === 'authorization');
		const m = auth && /^(\S*)\s*([\s\S]*)$/.exec(auth[1]);
		const token = m && m[1].toLowerCase() === 'bearer' ? m[2] : null;
		let claims = {};
		if (token === '' && this.version >= 13)
			return this.jwtFailure(new JwtError('PGRST301', 'Empty JWT is sent in Authorization header'));
		if (token) {
			if (!this.jwtSecret)
				return { error: errorResponse(this.version, 500, { code: 'PGRST300', message: 'Server lacks JWT secret' }) };
			try {
				claims = verifyJwt(token, {
					secret: this.jwtSecret, version: this.version, now: Math.floor(Date.now() / 1000),
				});
			} catch (e) {
				if (!(e instanceof JwtError))
					throw e;
				return this.jwtFailure(e);
			}
		}
		let role = claims.role === undefined ? this.anonRole
			: typeof claims.role === 'string' ? claims.role : JSON.stringify(claims.role);
		if (role === null)
			return {
				error: errorResponse(this.version, 401,
					{ code: 'PGRST302', message: 'Anonymous access is disabled' }, { 'www-authenticate': 'Bearer' }),
			};
		return { claims: { ...claims, role }, role };
	}

	jwtFailure(e) {
		return {
			error: errorResponse(this.version, 401, e.pgrst, {
				'www-authenticate': `Bearer error="invalid_token", error_description=${hsShow(e.pgrst.message)}`,
			}),
		};
	}

	/*
	 * plan: what App.hs/Plan.hs make of the request (its header lines)
	 * before any SQL:
	 * {error} or {readOnly, main: {text, values}, finish(row)}.
	 */
	async plan(req, lines) {
		const method = req.method;
		const seg = req.path.split('/').slice(1);
		const prefer = lines.filter(([k]) => k.toLowerCase() === 'prefer').map(([, v]) => v).join(',');
		const representation = /(^|,)\s*return=representation\s*(,|$)/.test(prefer);
		const cache = await this.schemaCache();
		const qs = Object.entries(req.query || {});
		const err = (status, code, message, details) => ({ error: errorResponse(this.version, status, { code, message, details }) });

		if (!['GET', 'HEAD', 'POST', 'PATCH', 'DELETE', 'PUT'].includes(method))
			return err(405, 'PGRST117', `Unsupported HTTP method: ${method}`);
		if (seg.length === 2 && seg[0] === 'rpc') {
			if (!['GET', 'HEAD', 'POST'].includes(method))
				return err(405, 'PGRST101', `Cannot use the ${method} method on RPC`);
			const fn = cache.funcs.get(seg[1]);
			const args = method === 'POST' ? Object.keys(req.body || {}) : qs.map(([k]) => k).filter((k) => !RESERVED_PARAMS.has(k));
			if (!fn || args.length > 0) {
				const f = `${this.schema}.${seg[1]}`;
				const params = args.length ? `with parameter${args.length > 1 ? 's' : ''} ${args.join(', ')}` : 'without parameters';
				return err(404, 'PGRST202',
					`Could not find the function ${f}${args.length ? `(${args.join(', ')})` : ' without parameters'} in the schema cache`,
					`Searched for the function ${f} ${params}, but no matches were found in the schema cache.`);
			}
			return this.planCall(method, seg[1], fn);
		}
		if (seg.length !== 1 || seg[0] === '' || method === 'PUT')
			throw new Error(`replay: ${method} ${req.path} is not supported`);
		const table = seg[0];
		const columns = cache.tables.get(table);
		if (!columns && this.version >= 13)
			return err(404, 'PGRST205', `Could not find the table '${this.schema}.${table}' in the schema cache`);
		if (!columns && (method === 'POST' || method === 'PATCH'))
			return { error: response(404, {}, '{}') };	/* ApiRequestError NotFound */
		return this.planTable(method, table, columns, qs, req.body, representation);
	}

	/* a table: read (GET/HEAD), INSERT, UPDATE or DELETE; a plan or {error} */
	planTable(method, table, columns, qs, body, representation) {
		const qi = `${ident(this.schema)}.${ident(table)}`;
		const values = [];
		const param = (v) => {
			values.push(v);
			return `$${values.length}`;
		};
		let payload = '';
		if (method === 'POST' || method === 'PATCH') {
			/* fromJsonBodyF: the body's keys, typed from the schema cache */
			const keys = Object.keys(Array.isArray(body) ? body[0] || {} : body);
			const unknown = keys.find((k) => !columns.has(k));
			if (unknown !== undefined)
				return {
					error: errorResponse(this.version, 400, {
						code: 'PGRST204', message: `Could not find the '${unknown}' column of '${table}' in the schema cache`,
					}),
				};
			const json = `FROM (SELECT ${param(JSON.stringify(body))}::json AS json_data) pgrst_payload, ` +
				`LATERAL (SELECT ${keys.map(ident).join(', ')} FROM ${Array.isArray(body) ? 'json_to_recordset' : 'json_to_record'}` +
				`(pgrst_payload.json_data) AS _(${keys.map((k) => `${ident(k)} ${columns.get(k)}`).join(', ')}) ) pgrst_body `;
			payload = method === 'POST'
				? `(${keys.map(ident).join(', ')}) SELECT ${keys.map((k) => `"pgrst_body".${ident(k)}`).join(', ')} ${json}`
				: `${keys.map((k) => `${ident(k)} = "pgrst_body".${ident(k)}`).join(', ')} ${json}`;
		}
		const filters = qs.filter(([k]) => !RESERVED_PARAMS.has(k)).map(([col, expr]) => {
			const m = /^([a-z]+)\.([\s\S]*)$/.exec(expr);
			if (!m || !FILTER_OPS[m[1]])
				throw new Error(`replay: filter ${col}=${expr} is not supported`);
			return ` ${qi}.${ident(col)} ${FILTER_OPS[m[1]]} ${param(m[2])}`;
		});
		for (const [k, v] of qs)
			if (RESERVED_PARAMS.has(k) && !(k === 'select' && v === '*'))
				throw new Error(`replay: ${k}=${v} is not supported`);
		const where = filters.length ? `WHERE ${filters.join(' AND ')}` : '';
		const tail = this.version >= 12 ? `, ${RESPONSE_GUCS}, '' AS response_inserted ` : `, ${RESPONSE_GUCS} `;

		if (method === 'GET' || method === 'HEAD') {
			const select = `SELECT ${qi}.* FROM ${qi}  ${where}   `;
			return {
				readOnly: true,
				main: {
					text: `WITH pgrst_source AS ( ${select} )  SELECT null::bigint AS total_result_set, ` +
						`pg_catalog.count(_postgrest_t) AS page_total, coalesce(json_agg(_postgrest_t), '[]') AS body` +
						`${tail}FROM ( SELECT * FROM pgrst_source ) _postgrest_t`,
					values,
				},
				finish: (row) => response(200, {
					'content-type': JSON_CT,
					'content-range': Number(row.page_total) ? `0-${Number(row.page_total) - 1}/*` : '*/*',
				}, method === 'HEAD' ? '' : row.body),
			};
		}
		const returning = representation ? `RETURNING ${qi}.*` : 'RETURNING 1';
		const mutate = method === 'POST' ? `INSERT INTO ${qi}${payload} ${returning}`
			: method === 'PATCH' ? `UPDATE ${qi} SET ${payload}${where ? ' ' + where : ''} ${returning}`
				: `DELETE FROM ${qi}  ${where} ${returning}`;
		const selectF = representation ? `SELECT ${ident(table)}.* FROM "pgrst_source" AS ${ident(table)}     ` : 'SELECT * FROM pgrst_source';
		return {
			readOnly: false,
			main: {
				text: `WITH pgrst_source AS (${mutate}) SELECT '' AS total_result_set, ` +
					`pg_catalog.count(_postgrest_t) AS page_total, array[]::text[] AS header, ` +
					`${representation ? "coalesce(json_agg(_postgrest_t), '[]')" : "''::text"} AS body` +
					`${tail}FROM (${selectF}) _postgrest_t`,
				values,
			},
			finish: (row) => representation
				? response(method === 'POST' ? 201 : 200, { 'content-type': JSON_CT, 'content-range': '*/*' }, row.body)
				: response(method === 'POST' ? 201 : 204, { 'content-range': '*/*' }, ''),
		};
	}

	/* an RPC without arguments (callPlanToQuery, prepareCall) */
	planCall(method, name, fn) {
		const call = `${ident(this.schema)}.${ident(name)}()`;
		const single = !fn.proretset;
		const callProc = fn.composite
			? `SELECT "pgrst_call".* FROM ${call} pgrst_call`
			: `SELECT pgrst_call.pgrst_scalar FROM (SELECT ${call} pgrst_scalar) pgrst_call`;
		const agg = fn.composite ? 'json_agg(_postgrest_t)' : 'json_agg(_postgrest_t.pgrst_scalar)';
		const handler = single ? `coalesce(${agg}->0, 'null')` : `coalesce(${agg}, '[]')`;
		const pageTotal = single && this.version >= 12 ? '1' : 'pg_catalog.count(_postgrest_t)';
		const tail = this.version >= 12 ? `, ${RESPONSE_GUCS}, '' AS response_inserted ` : `, ${RESPONSE_GUCS} `;
		return {
			/* Plan.hs: GET/HEAD, or POST to a STABLE/IMMUTABLE function */
			readOnly: method !== 'POST' || fn.provolatile !== 'v',
			main: {
				text: `WITH pgrst_source AS (${callProc}) SELECT null::bigint AS total_result_set, ` +
					`${pageTotal} AS page_total, ${handler} AS body${tail}` +
					`FROM (SELECT ${ident(name)}.* FROM "pgrst_source" AS ${ident(name)}     ) _postgrest_t`,
				values: [],
			},
			finish: (row) => fn.void
				? response(204, { 'content-range': '*/*' }, '')
				: response(200, { 'content-type': JSON_CT, 'content-range': '*/*' }, method === 'HEAD' ? '' : row.body),
		};
	}

	/* Query.hs setPgLocals: the one set_config statement */
	locals(req, lines, auth) {
		const headers = {};
		for (const [k, v] of lines)
			if (k.toLowerCase() !== 'cookie')
				headers[k.toLowerCase()] = v;		/* HM.fromList: the last one wins */
		const cookie = lines.find(([k]) => k.toLowerCase() === 'cookie');
		/* [name, value, name is a constant of PostgREST] */
		const role = [['role', auth.role, true]];
		const roleSettings = Object.entries(this.roleSettings[auth.role] || {}).map(([k, v]) => [k, v, false]);
		const settings = [
			['search_path', [this.schema, ...this.extraSearchPath].map(ident).join(', '), true],
			/* v12 moved role settings before role (#3045) */
			...(this.version >= 12 ? [...roleSettings, ...role] : [...role, ...roleSettings]),
			['request.jwt.claims', JSON.stringify(sortedJson(auth.claims)), true],
			['request.method', req.method, true],
			['request.path', req.path, true],
			['request.headers', JSON.stringify(headers), true],
			['request.cookies', JSON.stringify(cookie ? parseCookies(cookie[1]) : {}), true],
		];
		/* v12+ writes constant names as literals, v11 binds every name */
		const values = [];
		const param = (v) => {
			values.push(v);
			return `$${values.length}`;
		};
		const calls = settings.map(([name, value, constant]) => {
			const n = constant && this.version >= 12 ? `'${name}'` : param(name);
			return `set_config(${n}, ${param(value)}, true)`;
		});
		return { text: `select ${calls.join(', ')}`, values };
	}

	/*
	 * request(req): req = {method, path, query?: {name: value},
	 * headers?: {name: value} or [[name, value], ...], cookies?: {name:
	 * value}, body?}.  Returns {status, statusText, headers (lower-case
	 * names), body (string), sent: the statements sent}.
	 */
	async request(req) {
		const lines = headerLines(req);
		const auth = this.authenticate(lines);
		if (auth.error)
			return { ...auth.error, sent: [] };
		if (req.method === 'OPTIONS')		/* answered without a transaction */
			return { ...response(200, { allow: 'OPTIONS,GET,HEAD,POST,PUT,PATCH,DELETE' }, ''), sent: [] };
		const plan = await this.plan(req, lines);
		if (plan.error)
			return { ...plan.error, sent: [] };
		const statements = [
			`BEGIN ISOLATION LEVEL READ COMMITTED ${plan.readOnly ? 'READ ONLY' : 'READ WRITE'}`,
			this.locals(req, lines, auth),
			...(this.preRequest ? [`select ${this.preRequest.split(/\.(.*)/s, 2).map(ident).join('.')}()`] : []),
			plan.main,
		];
		const authed = auth.role !== this.anonRole;
		const client = await this.pool.connect();
		const sent = [];
		const run = (s) => {
			const q = typeof s === 'string' ? { text: s, values: [] } : s;
			sent.push(q);
			return client.query({ ...q, queryMode: 'extended', types: RAW_TYPES });
		};
		let broken;
		try {
			for (;;) {		/* hasql-transaction re-runs the whole transaction on 40001 */
				let row;
				try {
					for (const s of statements)
						row = (await run(s)).rows[0];
				} catch (e) {
					if (typeof e.severity !== 'string' || e.severity === 'FATAL' || e.severity === 'PANIC') {
						broken = e;		/* the connection is gone: no ABORT, drop it */
						return { ...mapDbError(e, { version: this.version, authed }), sent };
					}
					await run('ABORT');
					if (e.code === '40001')
						continue;
					return { ...mapDbError(e, { version: this.version, authed }), sent };
				}
				await run('COMMIT');
				const res = plan.finish(row);
				return { ...applyResponseGucs(this.version, res, row.response_status, row.response_headers), sent };
			}
		} finally {
			client.release(broken);
		}
	}
}

module.exports = { Replay, mapDbError, verifyJwt };
