'use strict';
/*
 * replay.test.js: the replay itself: the statements it sends per request
 * and version, the request settings the database sees, and its mapping
 * of errors to responses (Error.hs), live where PostgreSQL raises them
 * and from made-up errors for the version differences.
 */
const { test, before } = require('node:test');
const assert = require('node:assert/strict');
const { Replay, mapDbError, verifyJwt } = require('./replay.js');
const { TARGETS, JWT_SECRET, sql, setup, newKey, client, rpc, json, assertNoSecret, signJwt } = require('./lib.js');

before(setup);

const V12_LOCALS = "select set_config('search_path', $1, true), set_config('role', $2, true), " +
	"set_config('request.jwt.claims', $3, true), set_config('request.method', $4, true), " +
	"set_config('request.path', $5, true), set_config('request.headers', $6, true), " +
	"set_config('request.cookies', $7, true)";
/* v11: n set_config calls with names and values as parameters */
const v11Locals = (n) => 'select ' + Array.from({ length: n }, (_, i) => `set_config($${2 * i + 1}, $${2 * i + 2}, true)`).join(', ');

for (const target of TARGETS) {
	const t = target.name;

	test(`${t}: the statements of a request, and READ ONLY/READ WRITE by method and volatility`, async () => {
		const k = await newKey({ owner: 'replay' });
		const r = client(target);
		const h = { 'x-api-key': k.key };
		let res = await r.request({ method: 'GET', path: '/todos', headers: h });
		const texts = res.sent.map((s) => s.text);
		assert.equal(texts.length, 5);
		assert.equal(texts[0], 'BEGIN ISOLATION LEVEL READ COMMITTED READ ONLY');
		assert.equal(texts[1], V12_LOCALS);
		assert.deepEqual(res.sent[1].values.slice(0, 5), ['"api", "public"', 'web_anon', '{"role":"web_anon"}', 'GET', '/todos']);
		assert.equal(texts[2], 'select "apikey"."postgrest_pre_request"()');
		assert.match(texts[3], /^WITH pgrst_source AS \( SELECT "api"\."todos"\.\* FROM "api"\."todos" /);
		assert.match(texts[3], /nullif\(current_setting\('response\.headers', true\), ''\) AS response_headers, nullif\(current_setting\('response\.status', true\), ''\) AS response_status/);
		assert.equal(texts[4], 'COMMIT');
		const modes = [
			[{ method: 'POST', path: '/todos', body: { task: 'm' } }, 'READ WRITE', 201],
			[{ method: 'POST', path: '/rpc/probe' }, 'READ ONLY', 200],
			[{ method: 'POST', path: '/rpc/add_todo' }, 'READ WRITE', 200],
			[{ method: 'HEAD', path: '/rpc/add_todo' }, 'READ ONLY', 405],
		];
		for (const [req, mode, status] of modes) {
			res = await r.request({ ...req, headers: h });
			assert.equal(res.sent[0].text, `BEGIN ISOLATION LEVEL READ COMMITTED ${mode}`);
			assert.equal(res.status, status, res.body);
			assert.equal(res.sent.at(-1).text, status < 400 ? 'COMMIT' : 'ABORT');
		}
	});

	test(`${t}: PostgREST 11 sends the names as parameters, role before role settings`, async () => {
		const k = await newKey();
		const r = client(target, { version: 11, roleSettings: { web_anon: { statement_timeout: '5s' } } });
		const res = await rpc(r, 'whoami', { 'x-api-key': k.key });
		assert.equal(res.status, 200, res.body);
		assert.equal(res.sent[1].text, v11Locals(8));
		assert.deepEqual(res.sent[1].values.slice(0, 6), ['search_path', '"api", "public"', 'role', 'web_anon', 'statement_timeout', '5s']);
		const v12 = await rpc(client(target, { roleSettings: { web_anon: { statement_timeout: '5s' } } }), 'whoami', { 'x-api-key': k.key });
		assert.match(v12.sent[1].text, /^select set_config\('search_path', \$1, true\), set_config\(\$2, \$3, true\), set_config\('role', \$4, true\)/);
	});

	test(`${t}: request.* as the database sees them: lower-case names, no Cookie, parsed cookies`, async () => {
		const k = await newKey();
		const res = await client(target).request({
			method: 'GET', path: '/rpc/probe', query: { select: '*' },
			headers: [['X-Api-Key', k.key], ['Accept', 'application/json'], ['Cookie', 'sid=1; theme=dark; sid=2'], ['Cookie', 'late=1']],
		});
		assert.equal(res.status, 200, res.body);
		const p = json(res);
		assert.deepEqual(p.header_names, ['accept', 'x-api-key']);
		assert.deepEqual(p.cookies, { sid: '2', theme: 'dark' });
		assert.deepEqual(p.claims, { role: 'web_anon' });
		assert.equal(p.method, 'GET');
		assert.equal(p.path, '/rpc/probe');
	});

	test(`${t}: RAISE SQLSTATE 'PGRST' with status 429 gives 429, Retry-After and the body`, async () => {
		const k = await newKey();
		const res = await rpc(client(target), 'raise_429', { 'x-api-key': k.key });
		assert.equal(res.status, 429);
		assert.equal(res.statusText, 'Too Many Requests');
		assert.equal(res.headers['retry-after'], '7');
		assert.equal(res.headers['www-authenticate'], undefined);
		assert.deepEqual(json(res), {
			code: 'RATE_LIMITED', details: null, hint: 'Retry after 7 seconds.', message: 'API key is over its rate limit',
		});
		assertNoSecret(res, k.key);
	});

	test(`${t}: a PGRST raise that is not JSON gives 500 PGRST121`, async () => {
		const k = await newKey();
		const r = client(target);
		let res = await rpc(r, 'raise_bad_message', { 'x-api-key': k.key });
		assert.equal(res.status, 500);
		assert.equal(json(res).code, 'PGRST121');
		assert.equal(json(res).details, "Invalid JSON value for MESSAGE: 'no json'");
		assertNoSecret(res, k.key);
		res = await rpc(r, 'raise_no_detail', { 'x-api-key': k.key });
		assert.equal(res.status, 500);
		assert.equal(json(res).details, 'DETAIL is missing in the RAISE statement');
		assertNoSecret(res, k.key);
	});

	test(`${t}: P0001 gives 400, PT402 gives 402, 25006 gives 405`, async () => {
		const k = await newKey();
		const r = client(target);
		const h = { 'x-api-key': k.key };
		let res = await rpc(r, 'raise_plain', h);
		assert.equal(res.status, 400);
		assertNoSecret(res, k.key);
		assert.deepEqual(json(res), { code: 'P0001', details: 'Pretty simple', hint: 'There is nothing you can do.', message: 'I refuse!' });
		res = await rpc(r, 'raise_pt402', h);
		assert.equal(res.status, 402);
		assert.equal(res.statusText, 'Payment Required');
		assert.equal(json(res).details, 'Quota exceeded');
		assertNoSecret(res, k.key);
		res = await rpc(r, 'add_todo', h);
		assert.equal(res.status, 405);
		assert.equal(json(res).code, '25006');
		assertNoSecret(res, k.key);
	});

	test(`${t}: response.status and response.headers set in the request apply`, async () => {
		const k = await newKey();
		const res = await rpc(client(target), 'teapot', { 'x-api-key': k.key });
		assert.equal(res.status, 418, res.body);
		assert.equal(res.headers['x-tea'], 'earl grey, green');
		assert.equal(res.body, '');
	});

	test(`${t}: PostgREST 13: Proxy-Status on errors; a JWT role that does not exist is 401`, async () => {
		const k = await newKey();
		const r = client(target, { version: 13 });
		const res = await rpc(r, 'whoami', { 'x-api-key': `${k.key}x` });
		assert.equal(res.status, 401);
		assert.equal(res.headers['proxy-status'], 'PostgREST; error=MALFORMED');
		assert.equal(res.headers['www-authenticate'], 'ApiKey header="x-api-key"');
		assertNoSecret(res, k.key);
		const bearer = { authorization: `Bearer ${signJwt({ role: 'no_such_role', sub: 'u' })}` };
		const v13 = await rpc(r, 'whoami', bearer);
		assert.equal(v13.status, 401, v13.body);
		assert.equal(json(v13).code, '22023');
		assert.equal(v13.headers['www-authenticate'], 'Bearer');
		assertNoSecret(v13, JWT_SECRET);
		assert.equal((await rpc(client(target), 'whoami', bearer)).status, 400);
		/* an empty Bearer token: anonymous for 12 (so the hook wants a key), 401 PGRST301 for 13 */
		const empty = { authorization: 'Bearer ' };
		assert.equal(json(await rpc(client(target), 'whoami', empty)).code, 'MALFORMED');
		assert.equal(json(await rpc(r, 'whoami', empty)).message, 'Empty JWT is sent in Authorization header');
	});

	test(`${t}: routing before any SQL: OPTIONS, bad methods, unknown functions, tables, columns`, async () => {
		const k = await newKey({ scopes: ['*'] });
		const h = { 'x-api-key': k.key };
		const r = client(target);
		const early = [
			[{ method: 'OPTIONS', path: '/todos' }, 200, undefined],
			[{ method: 'TRACE', path: '/todos' }, 405, 'PGRST117'],
			[{ method: 'PATCH', path: '/rpc/whoami' }, 405, 'PGRST101'],
			[{ method: 'GET', path: '/rpc/nope' }, 404, 'PGRST202'],
			[{ method: 'GET', path: '/rpc/whoami', query: { a: '1' } }, 404, 'PGRST202'],
			[{ method: 'POST', path: '/todos', body: { nope: 1 } }, 400, 'PGRST204'],
			[{ method: 'POST', path: '/nope', body: { a: 1 } }, 404, undefined],
		];
		for (const [req, status, code] of early) {
			const res = await r.request({ ...req, headers: h });
			assert.deepEqual([res.status, res.body ? json(res).code : undefined, res.sent], [status, code, []], `${req.method} ${req.path}`);
			assertNoSecret(res, k.key);
		}
		/* an unknown table reaches the database (and the hook) in 12, not in 13 */
		const v12 = await r.request({ method: 'GET', path: '/nope', headers: h });
		assert.deepEqual([v12.status, json(v12).code, v12.sent.length], [404, '42P01', 5]);
		assertNoSecret(v12, k.key);
		const v13 = await client(target, { version: 13 }).request({ method: 'GET', path: '/nope', headers: h });
		assert.deepEqual([v13.status, json(v13).code, v13.sent], [404, 'PGRST205', []]);
	});

	test(`${t}: a serialization failure (40001) re-runs the whole transaction`, async () => {
		const k = await newKey();
		await sql("SELECT setval('api.flaky_calls', 2)");
		const res = await client(target).request({ method: 'POST', path: '/rpc/flaky', headers: { 'x-api-key': k.key } });
		assert.equal(res.status, 200, res.body);
		assert.equal(res.body, '"ok"');
		assert.deepEqual(res.sent.map((s) => s.text.split(' ')[0]),
			['BEGIN', 'select', 'select', 'WITH', 'ABORT', 'BEGIN', 'select', 'select', 'WITH', 'COMMIT']);
	});
}

test('mapDbError: Error.hs statuses per version, and WWW-Authenticate on 401', () => {
	const cases = [
		/* [version, authed, sqlstate, message, status] */
		[12, false, '42501', 'permission denied', 401],
		[12, true, '42501', 'permission denied', 403],
		[11, false, 'PT401', 'Nope', 401],
		[12, false, 'PTx01', 'Nope', 500],
		[12, false, '23505', 'dup', 409],
		[12, false, '42P01', 'no table', 404],
		[11, false, '54000', 'too long', 413],
		[12, false, '54000', 'too long', 500],
		[11, false, '21000', 'more than one row', 400],
		[12, false, '21000', 'more than one row', 500],
		[12, false, '21000', 'DELETE requires a WHERE clause', 400],
		[12, false, '22023', 'role "x" does not exist', 400],
		[13, false, '22023', 'role "x" does not exist', 401],
		[12, false, '57P01', 'terminating connection', 503],
		[12, false, '40001', 'could not serialize', 500],
		[11, false, 'PGRST', '{"code":"X","message":"m"}', 400],
		[12, false, '22P02', 'invalid input', 400],
	];
	for (const [version, authed, code, message, status] of cases) {
		const res = mapDbError({ code, message, severity: 'ERROR' }, { version, authed });
		assert.equal(res.status, status, `${version} ${code}`);
		assert.equal(res.headers['www-authenticate'], status === 401 ? 'Bearer' : undefined, `${version} ${code}`);
		assert.equal(json(res).code, code);
	}
	const custom = mapDbError({
		code: 'PGRST', severity: 'ERROR', message: '{"code":"C","message":"m"}',
		detail: '{"status":401,"status_text":"Key Please","headers":{"X-A":"b"}}',
	}, { version: 12, authed: false });
	assert.deepEqual([custom.status, custom.statusText, custom.headers], [401, 'Key Please', { 'content-type': 'application/json; charset=utf-8', 'x-a': 'b' }]);
	const lost = mapDbError(new Error('Connection terminated unexpectedly'), { version: 12, authed: false });
	assert.deepEqual([lost.status, json(lost).code], [503, 'PGRST001']);
});

test('verifyJwt: Auth.hs messages for PostgREST 12 and 13', () => {
	const opts = { secret: 's3cret', now: Math.floor(Date.now() / 1000) };
	const fails = (token, version) => {
		try {
			verifyJwt(token, { ...opts, version });
		} catch (e) {
			return e.pgrst;
		}
		return assert.fail('accepted');
	};
	/* test/spec/Feature/Auth/AuthSpec.hs (v12.2.12) */
	assert.equal(fails('ey9zdGdyZXN0.WtWx0', 12).message,
		'JWSError (CompactDecodeError Invalid number of parts: Expected 3 parts; got 2)');
	assert.equal(fails('a.b', 13).message, 'Expected 3 parts in JWT; got 2');
	assert.equal(fails(signJwt({ role: 'r' }, 'other'), 12).message, 'JWSError JWSInvalidSignature');
	assert.deepEqual(fails(signJwt({ role: 'r' }, 'other'), 13),
		{ code: 'PGRST301', message: 'No suitable key or wrong key type', details: 'None of the keys was able to decode the JWT' });
	const expired = signJwt({ role: 'r', exp: opts.now - 31 }, 's3cret');
	assert.equal(fails(expired, 12).message, 'JWT expired');
	assert.equal(fails(expired, 13).code, 'PGRST303');
	assert.deepEqual(verifyJwt(signJwt({ role: 'r', exp: opts.now - 29 }, 's3cret'), { ...opts, version: 12 }),
		{ role: 'r', exp: opts.now - 29 });
});

test('Replay: no jwt-secret: a Bearer token is 500 PGRST300; no anon role: 401 PGRST302; no SQL', async () => {
	let res = await new Replay({ pool: null }).request({
		method: 'GET', path: '/rpc/whoami', headers: { authorization: `Bearer ${signJwt({})}` },
	});
	assert.deepEqual([res.status, json(res).code, res.sent], [500, 'PGRST300', []]);
	res = await new Replay({ pool: null, anonRole: null }).request({ method: 'GET', path: '/rpc/whoami' });
	assert.deepEqual([res.status, json(res).code, res.headers['www-authenticate'], res.sent], [401, 'PGRST302', 'Bearer', []]);
});
