'use strict';
/*
 * bench/postgrest/bench.js: what apikey.postgrest_pre_request() costs a
 * PostgREST request.  Replays GET /rpc/whoami (a STABLE function reading
 * the key's identity) through pgbouncer, as PostgREST 12 sends it
 * (test/postgrest/replay.js), in three variants: with the hook, with an
 * empty pre-request (pg_backend_pid(): the same round trips, no check) and
 * without a pre-request (db-pre-request unset), in rounds of equal length
 * that each start with another variant; BENCH_CLIENTS concurrent clients,
 * each one request at a time.  Prints requests per second per round, the
 * median of the per-round ratios, and the hook's own cost in the server.
 * bench/postgrest/run.sh sets up the environment.
 *
 * Environment: PGHOST, PGPORT (cluster socket, for the superuser),
 * PGBOUNCER_PORT, APIKEY_TEST_DB, APIKEY_AUTH_PASSWORD; BENCH_ROUNDS (5),
 * BENCH_SECONDS (4, per variant per round), BENCH_CLIENTS (2).
 */
const path = require('node:path');
const { createRequire } = require('node:module');

/* pg and the replay live with the test suite (test/postgrest/package.json) */
const suite = createRequire(path.resolve(__dirname, '../../test/postgrest/package.json'));
const pg = suite('pg');
const { Replay } = suite('./replay.js');

const ROUNDS = Number(process.env.BENCH_ROUNDS || 5);
const SECONDS = Number(process.env.BENCH_SECONDS || 4);
const CLIENTS = Number(process.env.BENCH_CLIENTS || 2);

const median = (xs) => {
	const s = [...xs].sort((a, b) => a - b);
	return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/* requests per second of CLIENTS loops sending req for seconds */
async function measure(replay, req, seconds) {
	let n = 0;
	const start = process.hrtime.bigint();
	const end = start + BigInt(Math.round(seconds * 1e9));
	await Promise.all(Array.from({ length: CLIENTS }, async () => {
		while (process.hrtime.bigint() < end) {
			const res = await replay.request(req);
			if (res.status !== 200)
				throw new Error(`unexpected ${res.status}: ${res.body}`);
			n++;
		}
	}));
	return n / (Number(process.hrtime.bigint() - start) / 1e9);
}

/*
 * in-server µs per hook call: many calls in one transaction, one round trip.
 * The hook runs once per transaction, so each call first RESETs the
 * identity (a superuser may); the same loop with only the RESET is
 * subtracted.
 */
async function perCall(admin, key, calls) {
	await admin.query('BEGIN');
	try {
		await admin.query(`CREATE FUNCTION pg_temp.hook_once() RETURNS void LANGUAGE sql AS
			'RESET apikey.key_id; SELECT apikey.postgrest_pre_request()'`);
		await admin.query(`CREATE FUNCTION pg_temp.reset_only() RETURNS void LANGUAGE sql AS
			'RESET apikey.key_id'`);
		await admin.query({
			text: `SELECT set_config('request.method', 'GET', true),
				set_config('request.path', '/rpc/whoami', true), set_config('request.headers', $1, true)`,
			values: [JSON.stringify({ 'x-api-key': key })],
		});
		const loop = async (fn) => {
			const start = process.hrtime.bigint();
			await admin.query({ text: `SELECT count(pg_temp.${fn}()) FROM generate_series(1, $1)`, values: [calls] });
			return Number(process.hrtime.bigint() - start) / 1e3 / calls;
		};
		const times = [];
		for (let i = 0; i < 3; i++)
			times.push((await loop('hook_once')) - (await loop('reset_only')));
		return median(times);
	} finally {
		await admin.query('ABORT');
	}
}

async function main() {
	const admin = new pg.Client({ host: process.env.PGHOST, port: Number(process.env.PGPORT), database: process.env.APIKEY_TEST_DB, user: 'postgres' });
	await admin.connect();
	const { rows } = await admin.query("SELECT key FROM apikey.apikey_create('bench', '{rpc:whoami}', owner => 'bench')");

	const pool = new pg.Pool({
		host: '127.0.0.1', port: Number(process.env.PGBOUNCER_PORT), database: process.env.APIKEY_TEST_DB,
		user: 'authenticator', password: process.env.APIKEY_AUTH_PASSWORD, max: CLIENTS,
	});
	const req = { method: 'GET', path: '/rpc/whoami', headers: { 'x-api-key': rows[0].key, accept: 'application/json' } };
	/* the hook; an empty pre-request (the same round trips, no check); none */
	const variants = [
		['hook', new Replay({ pool })],
		['empty pre-request', new Replay({ pool, preRequest: 'pg_catalog.pg_backend_pid' })],
		['no pre-request', new Replay({ pool, preRequest: null })],
	];

	/* one unrecorded warm-up second each (connections, caches, the schema cache) */
	for (const [, r] of variants)
		await measure(r, req, 1);

	console.log(`GET /rpc/whoami through pgbouncer (transaction pooling), PostgREST 12 replay, ${CLIENTS} clients, ${SECONDS} s per variant per round`);
	const head = [' round', ...variants.map(([name]) => `${name} req/s`), 'hook / no pre-request', 'hook / empty pre-request'];
	const line = (cells) => console.log(cells.map((c, i) => String(c).padStart(head[i].length)).join(' | '));
	line(head);
	const rps = variants.map(() => []);
	const ratios = [[], []];
	for (let i = 0; i < ROUNDS; i++) {
		/* each round starts with another variant */
		for (let j = 0; j < variants.length; j++) {
			const v = (i + j) % variants.length;
			rps[v].push(await measure(variants[v][1], req, SECONDS));
		}
		ratios[0].push(rps[0][i] / rps[2][i]);
		ratios[1].push(rps[0][i] / rps[1][i]);
		line([i + 1, ...rps.map((r) => r[i].toFixed(0)), ...ratios.map((r) => r[i].toFixed(3))]);
	}
	const med = rps.map(median);
	line(['median', ...med.map((m) => m.toFixed(0)), ...ratios.map((r) => median(r).toFixed(3))]);
	console.log('(median ratios: the median of the per-round ratios)');
	/* with CLIENTS requests in flight, each takes CLIENTS / rate seconds */
	const added = (a, b) => ((CLIENTS / med[a] - CLIENTS / med[b]) * 1e6).toFixed(0);
	console.log(`added latency per request, from the medians: ${added(0, 2)} µs against no pre-request, ${added(0, 1)} µs against an empty one`);
	/* the rest is the extra statement's round trip */
	console.log(`the hook itself, in the server: ${(await perCall(admin, rows[0].key, 20000)).toFixed(1)} µs per call (median of 3 x 20000 calls in one transaction, less the same loop without the hook)`);
	await admin.end();
	await pool.end();
}

main().catch((e) => {
	console.error(e);
	process.exit(1);
});
