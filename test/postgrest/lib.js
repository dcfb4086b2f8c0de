'use strict';
/*
 * lib.js: what the *.test.js files share: the two ways PostgREST reaches
 * the database (through pgbouncer, transaction pooling, over TCP; and
 * directly on the cluster's unix socket), the superuser connection that
 * makes keys and fixtures, settings of the authenticator role, and the
 * assertions every refusal gets.
 *
 * Environment (test/postgrest/run.sh exports it): PGHOST, PGPORT (the
 * cluster's socket), PGBOUNCER_PORT, APIKEY_TEST_DB, APIKEY_AUTH_PASSWORD.
 */
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const { after } = require('node:test');
const pg = require('pg');
const { Replay } = require('./replay.js');

const env = (name) => {
	if (!process.env[name])
		throw new Error(`${name} is not set: run test/postgrest/run.sh`);
	return process.env[name];
};
const DB = env('APIKEY_TEST_DB');

const TARGETS = [
	{
		name: 'pgbouncer',
		config: {
			host: '127.0.0.1', port: Number(env('PGBOUNCER_PORT')), database: DB,
			user: 'authenticator', password: env('APIKEY_AUTH_PASSWORD'),
		},
	},
	{
		name: 'direct',
		config: { host: env('PGHOST'), port: Number(env('PGPORT')), database: DB, user: 'authenticator' },
	},
];

/* PostgREST's jwt-secret for this run */
const JWT_SECRET = crypto.randomBytes(32).toString('base64url');

const admin = new pg.Pool({ host: env('PGHOST'), port: Number(env('PGPORT')), database: DB, user: 'postgres', max: 2 });
/* leave the authenticator as the example schema set it up */
after(async () => {
	await configure();
	await admin.end();
});

function sql(text, values = []) {
	return admin.query(text, values);
}

/*
 * waitUntil(query, values): poll query (one row, one boolean column) until
 * it is true; the deadline (60 s) is only for a test that fails.
 */
async function waitUntil(query, values = [], ms = 60000) {
	const deadline = Date.now() + ms;
	for (;;) {
		const { rows } = await sql(query, values);
		if (rows.length === 1 && Object.values(rows[0])[0] === true)
			return;
		if (Date.now() > deadline)
			throw new Error(`timed out waiting for: ${query}`);
		await new Promise((r) => setTimeout(r, 50));
	}
}

/* test fixtures in the API schema, callable by the request roles */
const FIXTURES = `
CREATE OR REPLACE FUNCTION api.probe() RETURNS json LANGUAGE sql STABLE AS $$
	SELECT json_build_object(
		'pid', pg_backend_pid(),
		'user', current_user,
		'key_id', apikey.current_key_id(),
		'owner', apikey.current_owner(),
		'key_id_setting', current_setting('apikey.key_id', true),
		'owner_setting', current_setting('apikey.owner', true),
		'scopes_setting', current_setting('apikey.scopes', true),
		'header_names', (SELECT json_agg(k ORDER BY k) FROM json_object_keys(current_setting('request.headers')::json) k),
		'cookies', current_setting('request.cookies')::json,
		'claims', current_setting('request.jwt.claims')::json,
		'method', current_setting('request.method'),
		'path', current_setting('request.path'),
		'read_only', current_setting('transaction_read_only'))
$$;
CREATE OR REPLACE FUNCTION api.raise_429() RETURNS void LANGUAGE plpgsql STABLE AS $$
BEGIN
	RAISE SQLSTATE 'PGRST' USING
		message = '{"code":"RATE_LIMITED","message":"API key is over its rate limit","details":null,"hint":"Retry after 7 seconds."}',
		detail = '{"status":429,"headers":{"Retry-After":"7"}}';
END $$;
CREATE OR REPLACE FUNCTION api.raise_bad_message() RETURNS void LANGUAGE plpgsql STABLE AS $$
BEGIN
	RAISE SQLSTATE 'PGRST' USING message = 'no json', detail = '{"status":402,"headers":{}}';
END $$;
CREATE OR REPLACE FUNCTION api.raise_no_detail() RETURNS void LANGUAGE plpgsql STABLE AS $$
BEGIN
	RAISE SQLSTATE 'PGRST' USING message = '{"code":"X1","message":"m"}';
END $$;
CREATE OR REPLACE FUNCTION api.raise_plain() RETURNS void LANGUAGE plpgsql STABLE AS $$
BEGIN
	RAISE EXCEPTION 'I refuse!' USING detail = 'Pretty simple', hint = 'There is nothing you can do.';
END $$;
CREATE OR REPLACE FUNCTION api.raise_pt402() RETURNS void LANGUAGE plpgsql STABLE AS $$
BEGIN
	RAISE SQLSTATE 'PT402' USING message = 'Payment Required', detail = 'Quota exceeded';
END $$;
CREATE OR REPLACE FUNCTION api.add_todo() RETURNS json LANGUAGE sql VOLATILE AS $$
	INSERT INTO api.todos (task) VALUES ('added by rpc') RETURNING json_build_object('id', id, 'tenant', tenant)
$$;
CREATE OR REPLACE FUNCTION api.teapot() RETURNS void LANGUAGE sql STABLE AS $$
	SELECT set_config('response.status', '418', true),
		   set_config('response.headers', '[{"X-Tea": "earl grey"}, {"X-Tea": "green"}]', true);
$$;
CREATE OR REPLACE FUNCTION api.forge_owner() RETURNS json LANGUAGE sql VOLATILE AS $$
	SELECT set_config('apikey.owner', 'tenant-b', true);
	SELECT api.probe();
$$;
CREATE OR REPLACE FUNCTION api.forge_key_id() RETURNS json LANGUAGE plpgsql VOLATILE AS $$
BEGIN
	EXECUTE 'SET LOCAL apikey.key_id = 1';
	RETURN api.probe();
END $$;
-- a serialization failure every other call: PostgREST retries the transaction
CREATE SEQUENCE IF NOT EXISTS api.flaky_calls;
CREATE OR REPLACE FUNCTION api.flaky() RETURNS text LANGUAGE plpgsql VOLATILE AS $$
BEGIN
	IF nextval('api.flaky_calls') % 2 = 1 THEN
		RAISE SQLSTATE '40001' USING message = 'could not serialize access';
	END IF;
	RETURN 'ok';
END $$;
GRANT USAGE ON SEQUENCE api.flaky_calls TO web_anon;
-- a role the authenticator is not a member of
DO $$ BEGIN
	IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'replay_stranger') THEN
		CREATE ROLE replay_stranger NOLOGIN;
	END IF;
END $$;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA api TO web_anon, todo_reader;
`;
let fixtures;
function setup() {
	fixtures ??= sql(FIXTURES);
	return fixtures;
}

/* a new key; opts are apikey_create's named arguments */
async function newKey(opts = {}) {
	const args = { name: 'replay test', scopes: ['todos:read', 'todos:write', 'rpc:*'], ...opts };
	const names = Object.keys(args);
	const { rows } = await sql(
		`SELECT key_id, key FROM apikey.apikey_create(${names.map((n, i) => `${n} => $${i + 1}`).join(', ')})`,
		Object.values(args));
	return { id: Number(rows[0].key_id), key: rows[0].key };
}

/*
 * client(target, opts): a Replay (opts: its options, and max, the pool
 * size, default 2) on a fresh pool of its own, ended when the test that
 * made it ends.
 */
function client(target, opts = {}) {
	const pool = new pg.Pool({ ...target.config, max: opts.max ?? 2 });
	pool.on('error', () => {});		/* a backend terminated while idle */
	after(() => pool.ended || pool.end());
	return new Replay({ pool, jwtSecret: JWT_SECRET, ...opts });
}

/*
 * configure(settings): make the authenticator's role settings exactly the
 * example's (apikey.postgrest_scopes = path) plus settings, and make every
 * connection pick them up: role settings apply at login, so end every
 * authenticator backend (pgbouncer's pooled ones too) and wait until
 * pgbouncer hands out a connection with the new settings.  Pools made
 * before a change must not be used after it.
 */
const BASE = { 'apikey.postgrest_scopes': 'path' };
let applied = JSON.stringify(BASE);
async function configure(settings = {}) {
	const all = { ...BASE, ...settings };
	if (JSON.stringify(all) === applied)
		return;
	await sql('ALTER ROLE authenticator RESET ALL');
	for (const [name, value] of Object.entries(all))
		await sql(`ALTER ROLE authenticator SET ${name} = ${pg.escapeLiteral(value)}`);
	await sql(`SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity
		WHERE usename = 'authenticator' AND pid <> pg_backend_pid()`);
	const want = Object.entries(all);
	const probe = new pg.Client(TARGETS[0].config);
	await probe.connect();
	const deadline = Date.now() + 60000;	/* only for a test that fails */
	try {
		for (;;) {
			/* an error: pgbouncer handed out a terminated server connection */
			const rows = await probe.query(
				`SELECT ${want.map((_, j) => `current_setting($${j + 1}, true) AS s${j}`).join(', ')}`,
				want.map(([n]) => n)).then((r) => r.rows, () => null);
			if (rows && want.every(([, v], j) => rows[0][`s${j}`] === v))
				break;
			if (Date.now() > deadline)
				throw new Error('pgbouncer still serves connections with the old settings');
			await new Promise((r) => setTimeout(r, 50));
		}
	} finally {
		await probe.end();
	}
	applied = JSON.stringify(all);
}

/* GET /rpc/<fn> with these headers */
function rpc(replay, fn, headers = {}) {
	return replay.request({ method: 'GET', path: `/rpc/${fn}`, headers });
}

function json(res) {
	return JSON.parse(res.body);
}

/*
 * assertNoSecret: no key, and no 12-character piece of a key's secret,
 * in the response's status text, headers or body.
 */
function assertNoSecret(res, ...secrets) {
	const text = JSON.stringify([res.status, res.statusText, res.headers, res.body]);
	for (const s of secrets) {
		if (!s)
			continue;
		const secret = s.slice(s.indexOf('_') + 1);
		for (let i = 0; i + 12 <= secret.length; i++)
			assert.ok(!text.includes(secret.slice(i, i + 12)), `response contains part of a key: ${text.slice(0, 200)}`);
	}
}

/*
 * assertRefused: the hook's refusal, as PostgREST 12+ sends it: status,
 * body code, WWW-Authenticate for 401 (the apikey.header named), no key.
 */
function assertRefused(res, status, code, { keys = [], header = 'x-api-key' } = {}) {
	assert.equal(res.status, status, res.body);
	const body = json(res);
	assert.equal(body.code, code);
	assert.deepEqual(Object.keys(body).sort(), ['code', 'details', 'hint', 'message']);
	assert.equal(res.headers['content-type'], 'application/json; charset=utf-8');
	if (status === 401)
		assert.equal(res.headers['www-authenticate'], `ApiKey header="${header}"`);
	else
		assert.equal(res.headers['www-authenticate'], undefined);
	assertNoSecret(res, ...keys);
	return body;
}

/* an HS256 token with these claims */
function signJwt(claims, secret = JWT_SECRET) {
	const enc = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
	const head = `${enc({ alg: 'HS256', typ: 'JWT' })}.${enc(claims)}`;
	return `${head}.${crypto.createHmac('sha256', secret).update(head).digest('base64url')}`;
}

module.exports = {
	TARGETS, JWT_SECRET, sql, waitUntil, setup, newKey, client, configure, rpc, json,
	assertNoSecret, assertRefused, signJwt,
};
