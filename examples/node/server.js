// examples/node/server.js: a small job-runner API whose every request is
// authenticated by one call to apikey.apikey_verify, through pgbouncer.
//
// It shows how an application backend:
//   - reads the key from "Authorization: Bearer <key>" or "X-API-Key";
//   - requires a scope per route (jobs:read, jobs:write, databases:read) and,
//     for GET /databases/:id, passes the id as the resource;
//   - passes the client's address, so keys with allowed_cidrs work (listening
//     on :: dual-stack, IPv4 clients appear as ::ffff:a.b.c.d, which apikey
//     matches as the IPv4 address);
//   - answers 401/403/404/429 from the verification (WWW-Authenticate,
//     Retry-After), never echoing the key;
//   - warns clients still using the old secret of a rotated key
//     (Deprecation, Sunset, Warning) until its grace period ends.
//
// The application's own data (jobs, databases) is kept in memory: this file
// is about authentication, not storage.
//
//   PGBOUNCER_HOST=127.0.0.1 PGBOUNCER_PORT=6432 APP_DB=app \
//   APIKEY_APP_PASSWORD=... PORT=8080 node server.js

'use strict';

const http = require('node:http');
const pg = require('pg');

// Schema-qualified, key as a bind parameter, in FROM so it runs once.
// retry_after is an interval: let PostgreSQL turn it into whole seconds.
const VERIFY_SQL =
	'SELECT v.*, ceil(extract(epoch FROM v.retry_after))::int AS retry_after_seconds' +
	' FROM apikey.apikey_verify($1, $2, $3, $4) v';

const MAX_BODY = 16 * 1024;

// The routes: which scope each requires, and which part of the path is the
// resource the key must be bound to (if it is bound to any).
const ROUTES = [
	{ method: 'GET', path: /^\/whoami$/, scopes: [], handle: whoami },
	{ method: 'GET', path: /^\/jobs$/, scopes: ['jobs:read'], handle: listJobs },
	{ method: 'POST', path: /^\/jobs$/, scopes: ['jobs:write'], handle: createJob },
	{ method: 'GET', path: /^\/databases\/([^/]+)$/, scopes: ['databases:read'], resource: 1, handle: getDatabase },
];

// ---- pure helpers (exported for the tests) ----

// The key from "Authorization: Bearer <key>", else from "X-API-Key"; null if none.
function extractKey(headers) {
	const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(headers.authorization || '');
	if (m) return m[1];
	const k = headers['x-api-key'];
	return typeof k === 'string' && k.trim() !== '' ? k.trim() : null;
}

// The socket's address as PostgreSQL's inet accepts it (no IPv6 zone id).
// Behind a reverse proxy, take it from the proxy's header instead, and only
// from a proxy you trust.
function clientAddr(remoteAddress) {
	return remoteAddress ? remoteAddress.replace(/%.*$/, '') : null;
}

// Headers telling a client that it used the previous secret of a rotated key.
function graceHeaders(graceUntil) {
	if (!graceUntil) return {};
	const sunset = new Date(graceUntil).toUTCString();
	return {
		Deprecation: 'true',
		Sunset: sunset,
		Warning: `299 - "API key was rotated; switch to the new key before ${sunset}"`,
	};
}

const MESSAGES = {
	MALFORMED: 'The API key is malformed.',
	NOT_FOUND: 'The API key is not valid (unknown, deleted or rotated).',
	DISABLED: 'The API key is disabled.',
	EXPIRED: 'The API key has expired.',
	INSUFFICIENT_SCOPE: 'The API key lacks a scope this request requires.',
	IP_DENIED: 'The API key may not be used from this address.',
	RESOURCE_DENIED: 'Not found.',
	RATE_LIMITED: 'Too many requests with this API key.',
};

// The response for a failed verification: { status, headers, body }.
// v is the apikey.verification row; keyPresented says whether the request
// carried a key at all; scopes are the ones the route required.
function rejection(v, { keyPresented = true, scopes = [] } = {}) {
	const status = v.http_status || 401;
	// the old secret of a rotated key, refused for this request but not
	// outright (403, 404, 429): still tell the client to switch keys
	const headers = status === 401 ? {} : graceHeaders(v.grace_until);
	let message = MESSAGES[v.code] || 'The API key was refused.';

	if (status === 401) {
		// RFC 6750: no error code when the request had no credentials at all
		headers['WWW-Authenticate'] = keyPresented
			? 'Bearer realm="api", error="invalid_token"'
			: 'Bearer realm="api"';
		if (!keyPresented)
			message = 'An API key is required: send "Authorization: Bearer <key>" or "X-API-Key: <key>".';
	} else if (v.code === 'INSUFFICIENT_SCOPE') {
		headers['WWW-Authenticate'] =
			`Bearer realm="api", error="insufficient_scope", scope="${scopes.join(' ')}"`;
		message = `This request requires the scope ${scopes.join(', ')}.`;
	} else if (status === 429) {
		const seconds = Math.max(1, v.retry_after_seconds ?? 1);
		headers['Retry-After'] = String(seconds);
		message = `Too many requests with this API key; retry in ${seconds} s.`;
	}
	return { status, headers, body: { error: v.code, message } };
}

// ---- the application ----

function send(res, status, body, headers = {}) {
	res.writeHead(status, {
		'Content-Type': 'application/json; charset=utf-8',
		'Cache-Control': 'no-store',
		...headers,
	});
	res.end(JSON.stringify(body));
}

function tenantOf(v) {
	return v.owner ?? `key:${v.key_id}`;
}

function whoami(ctx) {
	const { v } = ctx;
	return [200, {
		key_id: v.key_id, name: v.name, owner: v.owner, scopes: v.scopes,
		resources: v.resources, meta: v.meta, expires_at: v.expires_at,
		grace_until: v.grace_until, client_addr: ctx.clientAddr,
	}];
}

function listJobs({ v, app }) {
	return [200, { key_id: v.key_id, owner: v.owner, jobs: app.jobs.get(tenantOf(v)) || [] }];
}

async function createJob({ v, app, req }) {
	let input;
	try {
		input = JSON.parse(await readBody(req));
	} catch {
		return [400, { error: 'BAD_REQUEST', message: 'Send a JSON object {"name": "..."} of at most 16 kB.' }];
	}
	if (!input || typeof input.name !== 'string' || input.name === '' || input.name.length > 200)
		return [400, { error: 'BAD_REQUEST', message: '"name" must be a string of 1 to 200 characters.' }];
	const job = {
		id: app.nextJobId++, name: input.name, status: 'queued',
		created_by_key: v.key_id, created_at: new Date().toISOString(),
	};
	const jobs = app.jobs.get(tenantOf(v)) || [];
	jobs.push(job);
	app.jobs.set(tenantOf(v), jobs);
	return [201, { key_id: v.key_id, owner: v.owner, job }];
}

function getDatabase({ v, app, resource }) {
	const db = app.databases.get(resource);
	// RESOURCE_DENIED is a 404 so that a key cannot probe which ids exist:
	// answer a missing id exactly the same way.
	if (!db) return [404, { error: 'RESOURCE_DENIED', message: MESSAGES.RESOURCE_DENIED }];
	return [200, { key_id: v.key_id, owner: v.owner, database: db }];
}

function readBody(req) {
	return new Promise((resolve, reject) => {
		let size = 0;
		const chunks = [];
		req.on('data', (c) => {
			size += c.length;
			if (size > MAX_BODY) {
				reject(new Error('body too large'));
				req.destroy();
			} else chunks.push(c);
		});
		req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
		req.on('error', reject);
	});
}

function match(method, pathname) {
	const hits = ROUTES.map((r) => [r, r.path.exec(pathname)]).filter(([, m]) => m);
	const hit = hits.find(([r]) => r.method === method);
	if (hit) return { route: hit[0], m: hit[1] };
	if (hits.length) return { allow: hits.map(([r]) => r.method).join(', ') };
	return {};
}

// createServer(config): an http.Server (not yet listening) for the API.
// config: { db: pg.Pool options, log: function (default: silent),
//           databases: [{ id, name, ... }] (the demo catalogue) }
function createServer(config = {}) {
	const pool = new pg.Pool({ max: 10, ...config.db });
	const log = config.log || (() => {});
	pool.on('error', (err) => log(`pool: ${err.message}`)); // an idle connection died
	const app = {
		jobs: new Map(),
		nextJobId: 1,
		databases: new Map((config.databases || DEFAULT_DATABASES).map((d) => [d.id, d])),
	};

	async function handle(req, res) {
		// the path only: clients sometimes put keys in query strings, never log those
		const pathname = req.url.split('?')[0];
		const { route, m, allow } = match(req.method, pathname);
		if (!route) {
			if (allow) return [405, { error: 'METHOD_NOT_ALLOWED', message: `Use ${allow}.` }, { Allow: allow }];
			return [404, { error: 'NO_ROUTE', message: 'No such endpoint.' }];
		}
		let resource = null;
		if (route.resource) {
			try {
				resource = decodeURIComponent(m[route.resource]);
			} catch {
				return [400, { error: 'BAD_REQUEST', message: 'Bad percent-encoding in the path.' }];
			}
		}

		const key = extractKey(req.headers);
		const addr = clientAddr(req.socket.remoteAddress);
		let v;
		try {
			({ rows: [v] } = await pool.query(VERIFY_SQL, [key, route.scopes, resource, addr]));
		} catch (err) {
			// fail closed: no verification, no access
			log(`verify failed: ${err.message}`);
			return [503, { error: 'UNAVAILABLE', message: 'Try again later.' }, { 'Retry-After': '5' }];
		}
		if (!v.valid) {
			const r = rejection(v, { keyPresented: key !== null, scopes: route.scopes });
			return [r.status, r.body, r.headers, v.code];
		}
		const [status, body] = await route.handle({ v, app, req, resource, clientAddr: addr });
		return [status, body, graceHeaders(v.grace_until), v.code];
	}

	const server = http.createServer((req, res) => {
		handle(req, res)
			.catch((err) => {
				log(`error: ${err.message}`);
				return [500, { error: 'INTERNAL', message: 'Internal error.' }];
			})
			.then(([status, body, headers, code]) => {
				log(`${req.method} ${req.url.split('?')[0]} ${status}${code ? ' ' + code : ''}`);
				if (!res.headersSent && !res.destroyed) send(res, status, body, headers);
			});
	});
	server.on('close', () => pool.end());
	return server;
}

const DEFAULT_DATABASES = [
	{ id: 'db-1', name: 'orders', engine: 'postgresql 15' },
	{ id: 'db-2', name: 'billing', engine: 'postgresql 15' },
	{ id: 'db-3', name: 'analytics', engine: 'postgresql 16' },
];

// listen(server, port): on :: (dual-stack), or on 0.0.0.0 where the host
// has no IPv6; resolves to server.address().
function listen(server, port = 0) {
	const on = (host) => new Promise((resolve, reject) => {
		server.once('error', reject);
		server.listen(port, host, () => {
			server.off('error', reject);
			resolve(server.address());
		});
	});
	return on('::').catch((err) => {
		if (err.code !== 'EAFNOSUPPORT' && err.code !== 'EADDRNOTAVAIL') throw err;
		return on('0.0.0.0');
	});
}

function configFromEnv(env = process.env) {
	return {
		db: {
			host: env.PGBOUNCER_HOST || '127.0.0.1',
			port: Number(env.PGBOUNCER_PORT || 6432),
			user: env.APP_DB_USER || 'app_backend',
			password: env.APIKEY_APP_PASSWORD,
			database: env.APP_DB || env.APIKEY_TEST_DB || 'postgres',
		},
		port: Number(env.PORT || 0),
	};
}

module.exports = { createServer, listen, configFromEnv, extractKey, clientAddr, graceHeaders, rejection, VERIFY_SQL };

if (require.main === module) {
	const config = { ...configFromEnv(), log: (line) => console.log(line) };
	const server = createServer(config);
	listen(server, config.port).then((a) => console.log(`listening on [${a.address}]:${a.port}`));
	for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => server.close());
}
