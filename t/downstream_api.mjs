#!/usr/bin/env node
// A tiny downstream API for the token-exchange tests: it trusts only JWT
// access tokens (RFC 9068) that the given issuer signed for its audience,
// checked against the issuer's published JWKS, and tells what it saw.
//
//   node t/downstream_api.mjs --issuer URL --jwks-uri URL --audience AUD
//        [--require-scope S] [--port 0] [--host 127.0.0.1] [--leeway 5] [--quiet]
//
// When ready it prints `downstream-api listening on http://<host>:<port>`.
// GET /whoami (Bearer token) -> 200 the token's claims, 401 or 403;
// GET /__test/stats, POST /__test/reset-stats; anything else 404.
// SIGTERM/SIGINT exit 0.  Each request logs `METHOD /path STATUS ms` to
// stderr (never query strings or tokens).

import http from 'node:http';
import process from 'node:process';

import * as jose from 'jose';

const OPTIONS = {
  issuer: null, jwksUri: null, audience: null, requireScope: null,
  host: '127.0.0.1', port: '0', leeway: '5', quiet: false,
};

function die(msg) {
  process.stderr.write(`downstream-api: ${msg}\n`);
  process.exit(2);
}

function parseArgs(argv) {
  const opts = { ...OPTIONS };
  for (let i = 0; i < argv.length; i += 1) {
    let name = argv[i];
    if (!name.startsWith('--')) die(`unexpected argument ${name}`);
    name = name.slice(2);
    let value;
    const eq = name.indexOf('=');
    if (eq !== -1) {
      value = name.slice(eq + 1);
      name = name.slice(0, eq);
    }
    const key = name.replace(/-([a-z])/g, (_, c) => c.toUpperCase());
    if (!(key in OPTIONS)) die(`unknown option --${name}`);
    if (key === 'quiet') {
      opts.quiet = value === undefined || !['0', 'false', 'no'].includes(value);
      continue;
    }
    if (value === undefined) {
      if (i + 1 >= argv.length) die(`--${name} needs a value`);
      value = argv[++i];
    }
    opts[key] = value;
  }
  for (const k of ['issuer', 'jwksUri', 'audience']) {
    if (!opts[k]) die(`--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} is required`);
  }
  for (const k of ['port', 'leeway']) {
    const n = Number(opts[k]);
    if (!Number.isInteger(n) || n < 0) die(`--${k} must be a non-negative integer`);
    opts[k] = n;
  }
  try {
    opts.jwksUri = new URL(opts.jwksUri);
  } catch {
    die('--jwks-uri must be a URL');
  }
  return opts;
}

const opts = parseArgs(process.argv.slice(2));

// asymmetric algorithms only: never "none", never an HMAC keyed by a public key
const ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'];

const newStats = () => ({
  total: 0,
  whoami: { ok: 0, missing_token: 0, invalid_token: 0, insufficient_scope: 0, jwks_unavailable: 0 },
  invalid_token_reasons: {}, // jose error code (or our own) -> count
  not_found: 0,
  jwks_fetches: 0,
});
let stats = newStats();

const jwks = jose.createRemoteJWKSet(opts.jwksUri, {
  timeoutDuration: 5000,
  cooldownDuration: 30000, // an unknown kid refetches at most this often
  cacheMaxAge: 600000,
  [jose.customFetch]: (...args) => {
    stats.jwks_fetches += 1;
    return fetch(...args);
  },
});

// RFC 6750 §3 parameter values: no quotes or backslashes
const quoted = (s) => String(s).replace(/["\\\r\n]/g, "'");

function send(res, status, body, headers = {}) {
  const data = JSON.stringify(body);
  res.writeHead(status, {
    'Content-Type': 'application/json',
    'Content-Length': Buffer.byteLength(data),
    'Cache-Control': 'no-store',
    ...headers,
  });
  res.end(data);
}

function refuse(res, status, error, description, extra = '') {
  // RFC 6750 §3.1: a request without any token gets the challenge without an error code
  let challenge = `Bearer realm="${quoted(opts.audience)}"`;
  if (error !== 'missing_token') {
    challenge += `, error="${error}", error_description="${quoted(description)}"${extra}`;
  }
  send(res, status, { error: error === 'missing_token' ? 'invalid_token' : error, error_description: description },
       { 'WWW-Authenticate': challenge });
}

async function whoami(req, res) {
  const m = /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i.exec(req.headers.authorization || '');
  if (!m) {
    stats.whoami.missing_token += 1;
    return refuse(res, 401, 'missing_token', 'a Bearer token is required');
  }
  let payload;
  try {
    ({ payload } = await jose.jwtVerify(m[1], jwks, {
      issuer: opts.issuer,
      audience: opts.audience,
      algorithms: ALGORITHMS,
      typ: 'at+jwt', // RFC 9068 §4: only access tokens, not ID tokens of the same issuer
      clockTolerance: opts.leeway,
      requiredClaims: ['exp', 'sub'],
    }));
  } catch (err) {
    if (err.code === 'ERR_JWKS_TIMEOUT' || err instanceof TypeError || err.code === 'ERR_JOSE_GENERIC') {
      // the issuer's JWKS could not be fetched: not the token's fault
      stats.whoami.jwks_unavailable += 1;
      return send(res, 503, { error: 'temporarily_unavailable', error_description: 'cannot fetch the JWKS' });
    }
    let reason = err.code || 'ERR_UNKNOWN';
    if (err.code === 'ERR_JWT_CLAIM_VALIDATION_FAILED') reason += `:${err.claim}`;
    stats.whoami.invalid_token += 1;
    stats.invalid_token_reasons[reason] = (stats.invalid_token_reasons[reason] || 0) + 1;
    return refuse(res, 401, 'invalid_token', err.message || 'invalid token');
  }
  const scopes = typeof payload.scope === 'string' ? payload.scope.split(' ') : [];
  if (opts.requireScope && !scopes.includes(opts.requireScope)) {
    stats.whoami.insufficient_scope += 1;
    return refuse(res, 403, 'insufficient_scope', `the token lacks scope ${opts.requireScope}`,
                  `, scope="${quoted(opts.requireScope)}"`);
  }
  stats.whoami.ok += 1;
  const { sub, aud, scope, azp, act, iss, exp, client_id: clientId } = payload;
  return send(res, 200, { sub, aud, scope, azp, client_id: clientId, act, iss, exp });
}

async function handle(req, res) {
  const { pathname } = new URL(req.url, 'http://localhost');
  stats.total += 1;
  if (req.method === 'GET' && pathname === '/whoami') return whoami(req, res);
  if (req.method === 'GET' && pathname === '/__test/stats') return send(res, 200, stats);
  if (req.method === 'POST' && pathname === '/__test/reset-stats') {
    stats = newStats();
    return send(res, 200, {});
  }
  stats.not_found += 1;
  return send(res, 404, { error: 'not_found' });
}

const server = http.createServer((req, res) => {
  const start = process.hrtime.bigint();
  res.on('finish', () => {
    if (opts.quiet) return;
    const ms = Number(process.hrtime.bigint() - start) / 1e6;
    const path = (req.url || '').split('?')[0];
    process.stderr.write(`${req.method} ${path} ${res.statusCode} ${ms.toFixed(1)}ms\n`);
  });
  req.resume(); // no request bodies here
  handle(req, res).catch((err) => {
    process.stderr.write(`downstream-api: ${err.stack || err}\n`);
    if (!res.headersSent) send(res, 500, { error: 'server_error' });
  });
});
server.keepAliveTimeout = 5000;
server.on('error', (err) => die(`cannot listen on ${opts.host}:${opts.port}: ${err.message}`));
server.listen(opts.port, opts.host, () => {
  process.stdout.write(`downstream-api listening on http://${opts.host}:${server.address().port}\n`);
});

const stop = () => {
  server.close();
  server.closeAllConnections?.();
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
