#!/usr/bin/env node
// Development / test OpenID Connect provider for ngx_mcp_auth.
//
// A real `oidc-provider` instance on loopback with static confidential clients,
// a real login form (passwords are checked), automatic consent for the static
// clients, refresh-token rotation and optional fault-injection controls.
// See t/idp/README.md for options and the login flow.

import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import process from 'node:process';
import querystring from 'node:querystring';

import * as jose from 'jose';
import Provider, { errors } from 'oidc-provider';

// ---------------------------------------------------------------- options

const DEFAULTS = {
  host: '127.0.0.1',
  port: 0,
  clientId: 'mcp-gateway',
  clientSecret: 'mcp-gateway-dev-secret',
  redirectUri: ['http://127.0.0.1:8080/callback'],
  tokenEndpointAuthMethod: 'client_secret_basic',
  clientJwksFile: null,
  idTokenAlg: 'RS256',
  keysFile: null,
  user: 'demo',
  password: null, // random when not given
  alicePassword: null, // random when not given
  viewerPassword: null, // random when not given
  outsiderPassword: null, // random when not given
  usersFile: null,
  accessTokenTtl: 3600,
  idTokenTtl: 3600,
  refreshTokenTtl: 14 * 24 * 3600,
  // RFC 8693 token exchange: "<audience>=<scope>,<scope>" each; null = the default below
  exchangeAudience: null,
  exchangeTtl: 300,
  // ID-JAG (MCP enterprise-managed authorization): a JSON file of policy
  // entries (in a config file also the list itself), and their lifetime
  idJagPolicy: null,
  idJagTtl: 300,
  // more static clients "ID:SECRET" (the --redirect-uri ones, client_secret_basic)
  extraClient: null,
  testControls: false,
  quiet: false,
};

const BOOLEAN_OPTS = new Set(['testControls', 'quiet']);
const LIST_OPTS = new Set(['redirectUri']);
// repeatable, but not split on commas (the value holds a comma-separated list)
const REPEAT_OPTS = new Set(['exchangeAudience', 'extraClient']);
const NUMBER_OPTS = new Set(['port', 'accessTokenTtl', 'idTokenTtl', 'refreshTokenTtl', 'exchangeTtl', 'idJagTtl']);
const DEFAULT_EXCHANGE_AUDIENCES = ['downstream-api=downstream:read,downstream:write'];

function camel(name) {
  return name.replace(/^-+/, '').replace(/[-_]([a-z])/g, (_, c) => c.toUpperCase());
}

function die(msg) {
  process.stderr.write(`dev-idp: ${msg}\n`);
  process.exit(2);
}

function usage() {
  process.stdout.write(`usage: node t/idp/dev-idp.mjs [--config file.json] [options]
  --host H --port N                 listen address (port 0 = any free port)
  --client-id ID --client-secret S  static confidential client
  --redirect-uri URI                repeatable or comma-separated
  --token-endpoint-auth-method M    client_secret_basic | client_secret_post | private_key_jwt
  --client-jwks-file F              client's public JWKS (private_key_jwt)
  --id-token-alg RS256|ES256        ID token signing algorithm for the client
  --keys-file F                     persist the provider's signing keys here
  --user NAME --password PW         demo user (password random if omitted)
  --alice-password PW               user "alice" (demo tenant, group editors)
  --viewer-password PW              user "viewer" (demo tenant, no groups)
  --outsider-password PW            user "outsider" (another tenant, group "editors")
  --users-file F                    JSON list of users
  --access-token-ttl S --id-token-ttl S --refresh-token-ttl S
  --exchange-audience AUD=S1,S2     token exchange (RFC 8693) target and its allowed scopes;
                                    repeatable (default downstream-api=downstream:read,downstream:write)
  --exchange-ttl S                  lifetime of exchanged tokens (default 300)
  --id-jag-policy F                 JSON list of ID-JAG policy entries (t/idp/README.md); none = no ID-JAGs
  --id-jag-ttl S                    lifetime of ID-JAGs (default 300)
  --extra-client ID:SECRET          one more static client (same redirect URIs); repeatable
  --test-controls                   enable /__test/* fault controls
  --quiet                           no per-request log lines
`);
  process.exit(0);
}

function parseArgs(argv) {
  const cli = {};
  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i];
    if (arg === '-h' || arg === '--help') usage();
    if (!arg.startsWith('--')) die(`unexpected argument ${arg}`);
    let name = arg.slice(2);
    let value;
    const eq = name.indexOf('=');
    if (eq !== -1) {
      value = name.slice(eq + 1);
      name = name.slice(0, eq);
    }
    const key = camel(name);
    if (!(key in DEFAULTS) && key !== 'config') die(`unknown option --${name}`);
    if (BOOLEAN_OPTS.has(key)) {
      cli[key] = value === undefined ? true : !['0', 'false', 'no'].includes(value);
      continue;
    }
    if (value === undefined) {
      if (i + 1 >= argv.length) die(`--${name} needs a value`);
      value = argv[++i];
    }
    if (LIST_OPTS.has(key)) {
      cli[key] = (cli[key] || []).concat(value.split(',').map((s) => s.trim()).filter(Boolean));
    } else if (REPEAT_OPTS.has(key)) {
      cli[key] = (cli[key] || []).concat(value);
    } else {
      cli[key] = value;
    }
  }
  return cli;
}

function readJson(file, what) {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    return die(`cannot read ${what} ${file}: ${err.message}`);
  }
}

// RFC 6749 scope-token characters
const SCOPE_TOKEN = /^[\x21\x23-\x5B\x5D-\x7E]+$/;

// "aud=s1,s2" strings (or, in a config file, also {"aud": ["s1", "s2"]}) ->
// Map audience -> [scope...]
function parseExchangeAudiences(spec) {
  let entries;
  if (typeof spec === 'string') entries = [spec];
  else if (Array.isArray(spec)) entries = spec;
  else if (spec && typeof spec === 'object') {
    entries = Object.entries(spec).map(([aud, sc]) => `${aud}=${Array.isArray(sc) ? sc.join(',') : sc}`);
  } else return die('--exchange-audience must be "audience=scope,scope"');
  const out = new Map();
  for (const entry of entries) {
    const eq = typeof entry === 'string' ? entry.indexOf('=') : -1;
    if (eq < 1) die(`--exchange-audience ${entry}: expected "audience=scope,scope"`);
    const aud = entry.slice(0, eq).trim();
    const scopes = [...new Set(entry.slice(eq + 1).split(/[\s,]+/).filter(Boolean))];
    if (!SCOPE_TOKEN.test(aud)) die(`--exchange-audience: bad audience ${JSON.stringify(aud)}`);
    if (out.has(aud)) die(`--exchange-audience: audience ${aud} given twice`);
    if (!scopes.length) die(`--exchange-audience ${aud}: needs at least one scope`);
    for (const sc of scopes) if (!SCOPE_TOKEN.test(sc)) die(`--exchange-audience ${aud}: bad scope ${JSON.stringify(sc)}`);
    out.set(aud, scopes);
  }
  return out;
}

// An ID-JAG policy: a list of {"audience": <MCP AS issuer URL>, "resource":
// <MCP resource URL>, "clients": {<IdP client id>: <client id at the MCP AS>},
// "scopes": [...], "users": [<sub>, ...] (optional)}; returns an error message
// or null.
const ID_JAG_KEYS = new Set(['audience', 'resource', 'clients', 'scopes', 'users']);
function isAbsoluteUrl(v) {
  if (typeof v !== 'string' || v === '') return false;
  try {
    const u = new URL(v);
    return (u.protocol === 'https:' || u.protocol === 'http:') && !u.hash && !v.includes('#');
  } catch {
    return false;
  }
}
function checkIdJagPolicy(list) {
  if (!Array.isArray(list)) return 'must be a JSON list of entries';
  const seen = new Set();
  for (const [i, e] of list.entries()) {
    const at = `entry ${i}`;
    if (!e || typeof e !== 'object' || Array.isArray(e)) return `${at}: must be an object`;
    const unknown = Object.keys(e).filter((k) => !ID_JAG_KEYS.has(k));
    if (unknown.length) return `${at}: unknown key ${JSON.stringify(unknown[0])} (known: ${[...ID_JAG_KEYS].join(', ')})`;
    if (!isAbsoluteUrl(e.audience)) return `${at}: "audience" must be an http(s) URL (the MCP authorization server's issuer)`;
    if (!isAbsoluteUrl(e.resource)) return `${at}: "resource" must be an http(s) URL (the MCP server's resource identifier)`;
    const key = JSON.stringify([e.audience, e.resource]);
    if (seen.has(key)) return `${at}: audience ${e.audience} and resource ${e.resource} are already in an earlier entry`;
    seen.add(key);
    if (!e.clients || typeof e.clients !== 'object' || Array.isArray(e.clients) || !Object.keys(e.clients).length) {
      return `${at}: "clients" must be a non-empty object {"<IdP client id>": "<client id at the MCP authorization server>"}`;
    }
    for (const [k, v] of Object.entries(e.clients)) {
      if (k === '' || typeof v !== 'string' || v === '') return `${at}: client ${JSON.stringify(k)} must map to a non-empty client id string`;
    }
    if (!Array.isArray(e.scopes)) return `${at}: "scopes" must be a list of scope strings`;
    for (const sc of e.scopes) {
      if (typeof sc !== 'string' || !SCOPE_TOKEN.test(sc)) return `${at}: bad scope ${JSON.stringify(sc)}`;
    }
    if (e.users !== undefined && !(Array.isArray(e.users) && e.users.every((u) => typeof u === 'string' && u !== ''))) {
      return `${at}: "users" must be a list of user subjects (sub) when given`;
    }
  }
  return null;
}

function loadOptions() {
  const cli = parseArgs(process.argv.slice(2));
  let fileOpts = {};
  let configDir = process.cwd();
  if (cli.config) {
    const raw = readJson(cli.config, 'config file');
    configDir = path.dirname(path.resolve(cli.config));
    for (const [k, v] of Object.entries(raw)) {
      fileOpts[k === 'clients' || k === 'users' ? k : camel(k)] = v;
    }
  }
  const opts = { ...DEFAULTS, ...fileOpts, ...cli };
  delete opts.config;
  for (const k of NUMBER_OPTS) {
    const n = Number(opts[k]);
    if (!Number.isInteger(n) || n < 0) die(`--${k} must be a non-negative integer`);
    opts[k] = n;
  }
  for (const k of LIST_OPTS) {
    if (typeof opts[k] === 'string') opts[k] = opts[k].split(',').map((s) => s.trim()).filter(Boolean);
  }
  if (opts.exchangeTtl < 1) die('--exchange-ttl must be at least 1');
  if (opts.idJagTtl < 1) die('--id-jag-ttl must be at least 1');
  opts.exchangeAudiences = parseExchangeAudiences(opts.exchangeAudience ?? DEFAULT_EXCHANGE_AUDIENCES);
  delete opts.exchangeAudience;
  // relative file names in a config file are relative to that file
  const rel = (f, base) => (f ? path.resolve(base, f) : f);
  for (const k of ['clientJwksFile', 'keysFile', 'usersFile']) {
    opts[k] = rel(opts[k], k in cli ? process.cwd() : configDir);
  }
  // the ID-JAG policy: a file name (or, in a config file, the list itself)
  let policy = opts.idJagPolicy ?? [];
  if (typeof policy === 'string') policy = readJson(rel(policy, 'idJagPolicy' in cli ? process.cwd() : configDir), 'ID-JAG policy file');
  const policyError = checkIdJagPolicy(policy);
  if (policyError) die(`ID-JAG policy: ${policyError}`);
  opts.idJagPolicy = policy;
  if (typeof opts.extraClient === 'string') opts.extraClient = [opts.extraClient];
  opts.extraClient = (opts.extraClient || []).map((spec) => {
    const colon = typeof spec === 'string' ? spec.indexOf(':') : -1;
    if (colon < 1 || colon === spec.length - 1) die(`--extra-client ${spec}: expected "ID:SECRET"`);
    return { id: spec.slice(0, colon), secret: spec.slice(colon + 1) };
  });
  opts.configDir = configDir;
  return opts;
}

const opts = loadOptions();

// ---------------------------------------------------------------- users

// The tenant ("tid") of the demo user, alice and viewer; outsider is in
// OTHER_TENANT_ID.  Fixed, so a gateway's configuration can name them.
const DEMO_TENANT_ID = '7d8a3c1e-0000-4000-8000-00000000d3e0';
const OTHER_TENANT_ID = '0e6f2b9a-0000-4000-8000-0000000007e1';

function randomPassword() {
  return crypto.randomBytes(9).toString('base64url');
}

// The claims a test may change (POST /__test/user-claims), checked; returns
// an error message or null.  null as a value removes the claim.
const MUTABLE_CLAIMS = ['groups', 'tid', 'realm_access'];
const isStringList = (v) => Array.isArray(v) && v.every((x) => typeof x === 'string');
function checkClaims(c) {
  if (c.groups != null && !isStringList(c.groups)) return '"groups" must be a list of strings';
  if (c.tid != null && typeof c.tid !== 'string') return '"tid" must be a string';
  if (c.realm_access != null) {
    const ra = c.realm_access;
    if (typeof ra !== 'object' || Array.isArray(ra)) return '"realm_access" must be an object';
    if (ra.roles != null && !isStringList(ra.roles)) return '"realm_access.roles" must be a list of strings';
  }
  return null;
}

function makeUser(login, password, extra = {}) {
  const err = checkClaims(extra);
  if (err) die(`user ${login}: ${err}`);
  const user = {
    login,
    password,
    sub: extra.sub || `user-${login}`,
    name: extra.name || login.charAt(0).toUpperCase() + login.slice(1),
    email: extra.email || `${login}@example.test`,
    email_verified: extra.email_verified ?? true,
    preferred_username: extra.preferred_username || login,
  };
  for (const k of MUTABLE_CLAIMS) {
    if (extra[k] != null) user[k] = structuredClone(extra[k]);
  }
  user.initial = Object.fromEntries(MUTABLE_CLAIMS.map((k) => [k, user[k]]));
  return user;
}

const users = new Map(); // login -> user
// the built-in users; `generated` lists those whose password is random (printed at start)
const generated = [];
function builtIn(role, login, password, extra) {
  const pw = password || randomPassword();
  if (!password) generated.push({ role, login, password: pw });
  users.set(login, makeUser(login, pw, extra));
}
builtIn('alice', 'alice', opts.alicePassword, {
  name: 'Alice Example', tid: DEMO_TENANT_ID, groups: ['editors'], realm_access: { roles: [] },
});
builtIn('viewer', 'viewer', opts.viewerPassword, {
  tid: DEMO_TENANT_ID, groups: [], realm_access: { roles: ['viewer'] },
});
builtIn('outsider', 'outsider', opts.outsiderPassword, {
  tid: OTHER_TENANT_ID, groups: ['editors'], realm_access: { roles: ['editor'] },
});
// the demo user (--user) last: it wins over a built-in user of the same name
builtIn('demo', opts.user, opts.password, {
  tid: DEMO_TENANT_ID, groups: ['editors'], realm_access: { roles: ['editor'] },
});
let extraUsers = opts.users || [];
if (opts.usersFile) extraUsers = extraUsers.concat(readJson(opts.usersFile, 'users file'));
if (!Array.isArray(extraUsers)) die('users must be a JSON list');
for (const u of extraUsers) {
  if (!u || typeof u.login !== 'string' || typeof u.password !== 'string') {
    die('each user needs "login" and "password" strings');
  }
  users.set(u.login, makeUser(u.login, u.password, u));
}
// print only the generated passwords still in force (a later user of the same login replaces one), demo first
const ROLE_ORDER = ['demo', 'viewer', 'outsider', 'alice'];
const printedLogins = generated
  .filter((g) => users.get(g.login)?.password === g.password)
  .sort((x, y) => ROLE_ORDER.indexOf(x.role) - ROLE_ORDER.indexOf(y.role));
const usersBySub = new Map([...users.values()].map((u) => [u.sub, u]));

// A user's claims as ID tokens, userinfo and ID-JAGs carry them, read now (so
// tokens issued after /__test/user-claims, a refresh too, carry the new values)
function userClaims(user) {
  return {
    sub: user.sub,
    name: user.name,
    email: user.email,
    email_verified: user.email_verified,
    preferred_username: user.preferred_username,
    tid: user.tid,
    groups: user.groups && [...user.groups],
    realm_access: user.realm_access && structuredClone(user.realm_access),
  };
}

function checkPassword(login, password) {
  const user = users.get(login);
  if (!user || typeof password !== 'string') return null;
  const a = crypto.createHash('sha256').update(user.password).digest();
  const b = crypto.createHash('sha256').update(password).digest();
  return crypto.timingSafeEqual(a, b) ? user : null;
}

// ---------------------------------------------------------------- keys

function generateKeys() {
  const rsa = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' });
  const ec = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' });
  const kid = () => crypto.randomBytes(8).toString('hex');
  return {
    keys: [
      { ...rsa, kid: `rsa-${kid()}`, use: 'sig', alg: 'RS256' },
      { ...ec, kid: `ec-${kid()}`, use: 'sig', alg: 'ES256' },
    ],
  };
}

function loadKeys() {
  if (opts.keysFile && fs.existsSync(opts.keysFile)) {
    return readJson(opts.keysFile, 'keys file');
  }
  const jwks = generateKeys();
  if (opts.keysFile) {
    fs.mkdirSync(path.dirname(opts.keysFile), { recursive: true });
    fs.writeFileSync(opts.keysFile, JSON.stringify(jwks), { mode: 0o600 });
  }
  return jwks;
}

// ---------------------------------------------------------------- clients

const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';

const AUTH_METHODS = new Set(['client_secret_basic', 'client_secret_post', 'private_key_jwt']);
const ID_TOKEN_ALGS = new Set(['RS256', 'ES256']);

function buildClient(c, baseDir) {
  const get = (snake, camelName) => c[snake] ?? c[camelName];
  const method = get('token_endpoint_auth_method', 'tokenEndpointAuthMethod') || 'client_secret_basic';
  if (!AUTH_METHODS.has(method)) die(`unsupported token_endpoint_auth_method ${method}`);
  const alg = get('id_token_signed_response_alg', 'idTokenAlg') || 'RS256';
  if (!ID_TOKEN_ALGS.has(alg)) die(`unsupported ID token algorithm ${alg}`);
  let redirectUris = get('redirect_uris', 'redirectUri') || [];
  if (typeof redirectUris === 'string') redirectUris = redirectUris.split(',').map((s) => s.trim()).filter(Boolean);
  const client = {
    client_id: get('client_id', 'clientId'),
    redirect_uris: redirectUris,
    grant_types: ['authorization_code', 'refresh_token', TOKEN_EXCHANGE],
    response_types: ['code'],
    token_endpoint_auth_method: method,
    id_token_signed_response_alg: alg,
    scope: 'openid profile email offline_access',
  };
  if (!client.client_id) die('a client needs a client_id');
  if (!redirectUris.length) die(`client ${client.client_id} needs a redirect URI`);
  if (method === 'private_key_jwt') {
    let jwks = c.jwks;
    const jwksFile = get('jwks_file', 'clientJwksFile');
    if (!jwks && jwksFile) jwks = readJson(path.resolve(baseDir, jwksFile), 'client JWKS file');
    if (!jwks) die(`client ${client.client_id} uses private_key_jwt but has no JWKS`);
    client.jwks = jwks;
  } else {
    client.client_secret = get('client_secret', 'clientSecret');
    if (!client.client_secret) die(`client ${client.client_id} needs a client_secret`);
  }
  return client;
}

const clients = [buildClient({
  client_id: opts.clientId,
  client_secret: opts.clientSecret,
  redirect_uris: opts.redirectUri,
  token_endpoint_auth_method: opts.tokenEndpointAuthMethod,
  jwks_file: opts.clientJwksFile,
  id_token_signed_response_alg: opts.idTokenAlg,
}, process.cwd())];
for (const c of opts.clients || []) clients.push(buildClient(c, opts.configDir));
for (const { id, secret } of opts.extraClient) {
  clients.push(buildClient({ client_id: id, client_secret: secret, redirect_uris: opts.redirectUri }, process.cwd()));
}
{
  const ids = clients.map((c) => c.client_id);
  const twice = ids.find((id, i) => ids.indexOf(id) !== i);
  if (twice) die(`client ${twice} is defined twice`);
}

// ---------------------------------------------------------------- helpers

const sleep = (ms) => new Promise((resolve) => { setTimeout(resolve, ms); });

const escapeHtml = (s) => String(s ?? '').replace(/[&<>"']/g, (ch) => ({
  '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;',
}[ch]));

async function readBody(ctx, limit = 64 * 1024) {
  const chunks = [];
  let size = 0;
  for await (const chunk of ctx.req) {
    size += chunk.length;
    if (size > limit) ctx.throw(413, 'request body too large');
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

function page(title, body) {
  return `<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>${escapeHtml(title)}</title>
<style>body{font-family:sans-serif;max-width:24em;margin:3em auto}label,input,button{display:block;margin:.4em 0}
input{width:100%}.error{color:#b00020;font-weight:bold}</style></head>
<body>${body}</body></html>`;
}

function loginPage(uid, { clientId, login = '', error = '' }) {
  return page('Sign in - dev-idp', `
<h1>Sign in</h1>
<p>to continue to <b>${escapeHtml(clientId)}</b> (dev-idp)</p>
${error ? `<p class="error" id="error">${escapeHtml(error)}</p>` : ''}
<form id="login-form" method="post" action="/interaction/${escapeHtml(uid)}" autocomplete="off">
<input type="hidden" name="prompt" value="login">
<label for="login">Username</label>
<input id="login" name="login" type="text" value="${escapeHtml(login)}" required autofocus>
<label for="password">Password</label>
<input id="password" name="password" type="password" required>
<button type="submit" id="submit">Sign in</button>
</form>`);
}

// ---------------------------------------------------------------- provider

const jwks = loadKeys();
const ttl = {
  AccessToken: opts.accessTokenTtl,
  AuthorizationCode: 60,
  IdToken: opts.idTokenTtl,
  RefreshToken: opts.refreshTokenTtl,
  Interaction: 3600,
  Session: 14 * 24 * 3600,
  Grant: Math.max(opts.refreshTokenTtl, 14 * 24 * 3600),
  BackchannelAuthenticationRequest: 600,
  ClientCredentials: 600,
  DeviceCode: 600,
  PreAuthorizedCode: 600,
};

const staticClientIds = new Set(clients.map((c) => c.client_id));

// Static clients are first-party: grant whatever they ask for, so no consent
// prompt ever shows (also after /__test/revoke-grants).
async function loadExistingGrant(ctx) {
  const { oidc } = ctx;
  const { Grant } = oidc.provider;
  const grantId = oidc.result?.consent?.grantId || oidc.session.grantIdFor(oidc.client.clientId);
  let grant = grantId ? await Grant.find(grantId) : undefined;
  if (grant && grant.accountId !== oidc.session.accountId) grant = undefined;
  if (!staticClientIds.has(oidc.client.clientId)) return grant;
  if (!grant) {
    grant = new Grant({ clientId: oidc.client.clientId, accountId: oidc.session.accountId });
  }
  const scopes = [...oidc.requestParamOIDCScopes];
  if (scopes.length) grant.addOIDCScope(scopes.join(' '));
  const claims = [...oidc.requestParamClaims];
  if (claims.length) grant.addOIDCClaims(claims);
  await grant.save();
  return grant;
}

const configuration = {
  clients,
  jwks,
  cookies: { keys: [crypto.randomBytes(32).toString('base64url')] },
  claims: {
    // with openid: every ID token (and userinfo) carries the tenant, groups and roles
    openid: ['sub', 'tid', 'groups', 'realm_access'],
    profile: ['name', 'preferred_username'],
    email: ['email', 'email_verified'],
  },
  scopes: ['openid', 'profile', 'email', 'offline_access'],
  responseTypes: ['code'],
  conformIdTokenClaims: false, // ID tokens carry the profile/email claims too
  async findAccount(_ctx, sub) {
    const user = usersBySub.get(sub);
    if (!user) return undefined;
    return {
      accountId: sub,
      async claims() {
        return userClaims(user);
      },
    };
  },
  features: {
    devInteractions: { enabled: false },
    resourceIndicators: { enabled: false },
    revocation: { enabled: true },
    introspection: { enabled: true },
    userinfo: { enabled: true },
    rpInitiatedLogout: {
      enabled: true,
      async logoutSource(ctx, form) {
        ctx.body = page('Sign out - dev-idp', `<h1>Sign out?</h1>${form}
<button form="op.logoutForm" type="submit" value="yes" name="logout">Yes, sign me out</button>
<button form="op.logoutForm" type="submit">No</button>`);
      },
      async postLogoutSuccessSource(ctx) {
        ctx.body = page('Signed out - dev-idp', '<h1>Signed out</h1>');
      },
    },
  },
  clientAuthMethods: ['client_secret_basic', 'client_secret_post', 'private_key_jwt'],
  pkce: { required: () => true },
  interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
  loadExistingGrant,
  issueRefreshToken: async (_ctx, client, code) => (
    client.grantTypeAllowed('refresh_token') && code.scopes.has('offline_access')
  ),
  rotateRefreshToken: () => true,
  ttl,
  async renderError(ctx, out) {
    ctx.type = 'html';
    ctx.body = page('Error - dev-idp', `<h1>Error</h1><p id="error">${escapeHtml(out.error)}</p>
<p id="error_description">${escapeHtml(out.error_description)}</p>`);
  },
};

function pickPort(host) {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, host, () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

// the issuer must contain the real port, so pick one first when asked for 0
const listenPort = opts.port || await pickPort(opts.host);
let provider;
try {
  provider = new Provider(`http://${opts.host}:${listenPort}`, configuration);
} catch (err) {
  die(`bad configuration: ${err.message}`);
}

// ---------------------------------------------------------------- token exchange (RFC 8693)

const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';
const EXCHANGE_REFUSALS = new Set(['invalid_grant', 'access_denied', 'unauthorized_client']);
const NO_FAULTS = {
  token_delay_ms: 0, token_status: 0, down: false, exchange_delay_ms: 0, exchange_status: 0, exchange_refuse: false,
  id_jag_refuse: false,
};
const faults = { ...NO_FAULTS };

// exchanged tokens are signed with the provider's own RS256 key (the one its
// JWKS publishes, same kid), so a resource server needs only the JWKS
const exchangeJwk = jwks.keys.find((k) => k.kty === 'RSA' && k.d) || jwks.keys.find((k) => k.d);
if (!exchangeJwk) die('no private signing key for token exchange');
const exchangeAlg = exchangeJwk.alg || (exchangeJwk.kty === 'RSA' ? 'RS256' : 'ES256');
const exchangeKey = await jose.importJWK(exchangeJwk, exchangeAlg);

const grantError = (error, description) => new errors.CustomOIDCProviderError(error, description);

function single(params, name) {
  const v = params[name];
  return typeof v === 'string' && v !== '' ? v : undefined;
}

async function tokenExchange(ctx) {
  const { client, params } = ctx.oidc;
  if (isIdJagRequest(params)) return idJagExchange(ctx);
  const subjectToken = single(params, 'subject_token');
  const subjectTokenType = single(params, 'subject_token_type');
  const requestedType = single(params, 'requested_token_type');
  const audience = single(params, 'audience');
  if (!subjectToken) throw new errors.InvalidRequest("missing required parameter 'subject_token'");
  if (!subjectTokenType) throw new errors.InvalidRequest("missing required parameter 'subject_token_type'");
  if (subjectTokenType !== ACCESS_TOKEN_TYPE) {
    throw new errors.InvalidRequest(`unsupported subject_token_type; only ${ACCESS_TOKEN_TYPE}`);
  }
  if (requestedType !== undefined && requestedType !== ACCESS_TOKEN_TYPE) {
    throw new errors.InvalidRequest(`unsupported requested_token_type; only ${ACCESS_TOKEN_TYPE}`);
  }
  // impersonation only: no delegation chains from actor tokens
  if (params.actor_token !== undefined || params.actor_token_type !== undefined) {
    throw new errors.InvalidRequest('actor_token is not supported');
  }
  if (params.resource !== undefined) throw new errors.InvalidTarget('resource is not supported; use audience');
  if (!audience) throw new errors.InvalidRequest("missing required parameter 'audience'");
  const allowed = opts.exchangeAudiences.get(audience);
  if (!allowed) throw new errors.InvalidTarget('unknown audience');
  let scopes = allowed;
  const asked = typeof params.scope === 'string' ? [...new Set(params.scope.split(' ').filter(Boolean))] : [];
  if (asked.length) {
    const extra = asked.filter((sc) => !allowed.includes(sc));
    if (extra.length) throw new errors.InvalidScope(`scope not allowed for this audience: ${extra.join(' ')}`, extra.join(' '));
    scopes = allowed.filter((sc) => asked.includes(sc));
  }

  const token = await ctx.oidc.provider.AccessToken.find(subjectToken);
  // find() allows the provider's clock tolerance; an exchange must not
  if (!token || token.isExpired) throw grantError('invalid_grant', 'subject token is invalid or expired');
  if (token.clientId !== client.clientId) throw grantError('invalid_grant', 'subject token was issued to another client');
  if (token.isSenderConstrained()) throw grantError('invalid_grant', 'sender-constrained subject tokens are not supported');
  const grant = token.grantId && await ctx.oidc.provider.Grant.find(token.grantId);
  const user = usersBySub.get(token.accountId);
  if (!grant || grant.clientId !== client.clientId || grant.accountId !== token.accountId || !user) {
    throw grantError('invalid_grant', 'subject token is no longer valid');
  }

  if (faults.exchange_refuse) {
    const error = EXCHANGE_REFUSALS.has(faults.exchange_refuse) ? faults.exchange_refuse : 'invalid_grant';
    throw grantError(error, 'dev-idp fault injection: token exchange refused');
  }

  const scope = scopes.join(' ');
  const now = Math.floor(Date.now() / 1000);
  const jwt = await new jose.SignJWT({
    scope, azp: client.clientId, client_id: client.clientId, act: { sub: client.clientId },
  })
    .setProtectedHeader({ alg: exchangeAlg, typ: 'at+jwt', kid: exchangeJwk.kid })
    .setIssuer(ctx.oidc.provider.issuer)
    .setSubject(user.sub)
    .setAudience(audience)
    .setIssuedAt(now)
    .setExpirationTime(now + opts.exchangeTtl)
    .setJti(crypto.randomBytes(16).toString('base64url'))
    .sign(exchangeKey);
  stats.exchange.issued += 1;
  stats.exchange.audiences[audience] = (stats.exchange.audiences[audience] || 0) + 1;
  ctx.body = {
    access_token: jwt,
    issued_token_type: ACCESS_TOKEN_TYPE,
    token_type: 'Bearer',
    expires_in: opts.exchangeTtl,
    scope,
  };
}

// ---------------------------------------------------------------- ID-JAG (MCP enterprise-managed authorization)

// The same grant with requested_token_type id-jag and an ID token of this
// provider as the subject token: an Identity Assertion JWT Authorization
// Grant for an MCP authorization server (audience) and MCP server (resource),
// as the policy (--id-jag-policy, POST /__test/id_jag_policy) allows.
const ID_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:id_token';
const ID_JAG_TYPE = 'urn:ietf:params:oauth:token-type:id-jag';
const ID_JAG_REFUSALS = new Set(['invalid_grant', 'access_denied', 'unauthorized_client', 'invalid_target']);
let idJagPolicy = opts.idJagPolicy;

// an ID-JAG request: it asks for one, or it brings an ID token (either alone
// is then refused as invalid_request)
function isIdJagRequest(params) {
  return params.requested_token_type === ID_JAG_TYPE || params.subject_token_type === ID_TOKEN_TYPE;
}

// the provider's public keys (those of /jwks), to verify its own ID tokens
const publicJwks = jose.createLocalJWKSet({
  keys: jwks.keys.map((k) => ({
    ...crypto.createPublicKey({ key: k, format: 'jwk' }).export({ format: 'jwk' }), kid: k.kid, alg: k.alg, use: k.use,
  })),
});

// the user of an ID token this provider issued to `clientId`, unexpired (no
// clock tolerance); invalid_grant otherwise
async function idTokenUser(token, clientId) {
  let payload;
  let protectedHeader;
  try {
    ({ payload, protectedHeader } = await jose.jwtVerify(token, publicJwks, {
      issuer: provider.issuer, audience: clientId, algorithms: [...ID_TOKEN_ALGS], requiredClaims: ['sub', 'iat', 'exp'],
    }));
  } catch (err) {
    const why = err.code ? `${err.code}${err.claim ? `:${err.claim}` : ''}` : 'malformed';
    throw grantError('invalid_grant', `subject_token is not a valid unexpired ID token of this provider for this client (${why})`);
  }
  // an exchanged access token or an ID-JAG is signed with the same key
  if (protectedHeader.typ !== undefined && protectedHeader.typ.toUpperCase() !== 'JWT') {
    throw grantError('invalid_grant', `subject_token is not an ID token (typ ${protectedHeader.typ})`);
  }
  if (payload.azp !== undefined && payload.azp !== clientId) {
    throw grantError('invalid_grant', 'subject_token was issued to another client (azp)');
  }
  const user = usersBySub.get(payload.sub);
  if (!user) throw grantError('invalid_grant', 'subject_token names an unknown user');
  return user;
}

function oneParam(params, name) {
  const v = params[name];
  if (Array.isArray(v)) throw new errors.InvalidRequest(`'${name}' must be given once`);
  if (typeof v !== 'string' || v === '') throw new errors.InvalidRequest(`missing required parameter '${name}'`);
  return v;
}

async function idJagExchange(ctx) {
  const { client, params } = ctx.oidc;
  const subjectToken = oneParam(params, 'subject_token');
  const subjectTokenType = oneParam(params, 'subject_token_type');
  if (subjectTokenType !== ID_TOKEN_TYPE) {
    throw new errors.InvalidRequest(`an ID-JAG is issued for subject_token_type ${ID_TOKEN_TYPE} only`);
  }
  if (params.requested_token_type !== ID_JAG_TYPE) {
    throw new errors.InvalidRequest(`an ID token is exchanged for requested_token_type ${ID_JAG_TYPE} only`);
  }
  if (params.actor_token !== undefined || params.actor_token_type !== undefined) {
    throw new errors.InvalidRequest('actor_token is not supported');
  }
  const audience = oneParam(params, 'audience');
  const resource = oneParam(params, 'resource');

  const user = await idTokenUser(subjectToken, client.clientId);

  const forAudience = idJagPolicy.filter((e) => e.audience === audience);
  if (!forAudience.length) throw new errors.InvalidTarget('no ID-JAG policy for this audience');
  const entry = forAudience.find((e) => e.resource === resource);
  if (!entry) throw new errors.InvalidTarget('resource not allowed for this audience');
  const mcpClientId = Object.hasOwn(entry.clients, client.clientId) ? entry.clients[client.clientId] : undefined;
  if (!mcpClientId) {
    throw new errors.UnauthorizedClient('this client may not request ID-JAGs for this audience and resource');
  }
  if (entry.users && !entry.users.includes(user.sub)) {
    throw new errors.AccessDenied('the policy does not allow this user for this audience and resource');
  }
  // scope: narrowed silently to what the entry allows; nothing left = invalid_scope
  const allowed = [...new Set(entry.scopes)];
  let scopes = allowed;
  const asked = typeof params.scope === 'string' ? [...new Set(params.scope.split(' ').filter(Boolean))] : [];
  if (asked.length) {
    scopes = allowed.filter((sc) => asked.includes(sc));
    if (!scopes.length) throw new errors.InvalidScope('none of the requested scopes is allowed', asked.join(' '));
  }

  if (faults.id_jag_refuse) {
    const error = ID_JAG_REFUSALS.has(faults.id_jag_refuse) ? faults.id_jag_refuse : 'invalid_grant';
    throw grantError(error, 'dev-idp fault injection: ID-JAG refused');
  }

  const scope = scopes.join(' ');
  const now = Math.floor(Date.now() / 1000);
  const profile = Object.fromEntries(Object.entries(userClaims(user)).filter(([k, v]) => k !== 'sub' && v !== undefined));
  const claims = { ...profile, resource, client_id: mcpClientId };
  if (scope) claims.scope = scope;
  const jwt = await new jose.SignJWT(claims)
    .setProtectedHeader({ alg: exchangeAlg, typ: 'oauth-id-jag+jwt', kid: exchangeJwk.kid })
    .setIssuer(ctx.oidc.provider.issuer)
    .setSubject(user.sub)
    .setAudience(audience)
    .setIssuedAt(now)
    .setExpirationTime(now + opts.idJagTtl)
    .setJti(crypto.randomBytes(16).toString('base64url'))
    .sign(exchangeKey);
  stats.id_jag.issued += 1;
  ctx.body = {
    access_token: jwt,
    issued_token_type: ID_JAG_TYPE,
    token_type: 'N_A',
    expires_in: opts.idJagTtl,
  };
  if (scope) ctx.body.scope = scope;
}

provider.registerGrantType(TOKEN_EXCHANGE, tokenExchange, [
  'subject_token', 'subject_token_type', 'requested_token_type', 'audience', 'scope',
  'actor_token', 'actor_token_type', 'resource',
]);

// ---------------------------------------------------------------- middleware

// traceparent: the W3C trace header of the last call to /token and /jwks
const newExchangeStats = (inFlight = 0) => ({
  issued: 0, refused: {}, audiences: {}, in_flight: inFlight, max_in_flight: inFlight,
});
const newIdJagStats = () => ({ issued: 0, refused: {} });
const stats = {
  token: {}, token_total: 0, authorization: 0, logins_ok: 0, logins_failed: 0, traceparent: {},
  exchange: newExchangeStats(), id_jag: newIdJagStats(),
};
const grantIds = new Set();
const sessionIds = new Set();
provider.on('grant.saved', (grant) => grantIds.add(grant.jti));
provider.on('grant.destroyed', (grant) => grantIds.delete(grant.jti));
provider.on('session.saved', (session) => sessionIds.add(session.jti));
provider.on('session.destroyed', (session) => sessionIds.delete(session.jti));

// request log: method path status ms (never the query string or bodies)
provider.use(async (ctx, next) => {
  const start = process.hrtime.bigint();
  try {
    await next();
  } finally {
    if (!opts.quiet) {
      const ms = Number(process.hrtime.bigint() - start) / 1e6;
      const status = ctx.respond === false && !ctx.res.headersSent ? 'closed' : ctx.status;
      process.stderr.write(`${ctx.method} ${ctx.path} ${status} ${ms.toFixed(1)}ms\n`);
    }
  }
});

function json(ctx, status, body) {
  ctx.status = status;
  ctx.type = 'application/json';
  ctx.set('Cache-Control', 'no-store');
  ctx.body = body;
}

// test / fault controls, and the token endpoint hooks
provider.use(async (ctx, next) => {
  if (ctx.path.startsWith('/__test/')) {
    if (!opts.testControls) return json(ctx, 404, { error: 'not_found' });
    if (ctx.method === 'GET' && ctx.path === '/__test/stats') {
      return json(ctx, 200, { ...stats, token: { ...stats.token }, traceparent: { ...stats.traceparent },
                              exchange: structuredClone(stats.exchange), id_jag: structuredClone(stats.id_jag),
                              faults: { ...faults } });
    }
    if (ctx.path === '/__test/id_jag_policy' && ctx.method === 'GET') return json(ctx, 200, idJagPolicy);
    if (ctx.path === '/__test/id_jag_policy' && ctx.method === 'POST') {
      let body;
      try {
        body = JSON.parse((await readBody(ctx)).toString());
      } catch {
        return json(ctx, 400, { error: 'invalid_json' });
      }
      const err = checkIdJagPolicy(body);
      if (err) return json(ctx, 400, { error: 'invalid_request', error_description: err });
      idJagPolicy = structuredClone(body);
      return json(ctx, 200, idJagPolicy);
    }
    if (ctx.method === 'POST' && ctx.path === '/__test/faults') {
      const raw = (await readBody(ctx)).toString() || '{}';
      let body;
      try {
        body = JSON.parse(raw);
      } catch {
        return json(ctx, 400, { error: 'invalid_json' });
      }
      if (body.reset) Object.assign(faults, NO_FAULTS);
      for (const k of ['token_delay_ms', 'exchange_delay_ms']) {
        if (k in body) faults[k] = Math.max(0, Number(body[k]) || 0);
      }
      for (const k of ['token_status', 'exchange_status']) {
        if (k in body) faults[k] = Number(body[k]) || 0;
      }
      if ('down' in body) faults.down = Boolean(body.down);
      if ('exchange_refuse' in body) {
        const v = body.exchange_refuse;
        if (typeof v === 'string' && !EXCHANGE_REFUSALS.has(v)) {
          return json(ctx, 400, { error: 'invalid_request',
                                  error_description: `exchange_refuse: true, false or one of ${[...EXCHANGE_REFUSALS]}` });
        }
        faults.exchange_refuse = v === true ? 'invalid_grant' : (v || false);
      }
      if ('id_jag_refuse' in body) {
        const v = body.id_jag_refuse;
        if (typeof v === 'string' && !ID_JAG_REFUSALS.has(v)) {
          return json(ctx, 400, { error: 'invalid_request',
                                  error_description: `id_jag_refuse: true, false or one of ${[...ID_JAG_REFUSALS]}` });
        }
        faults.id_jag_refuse = v === true ? 'invalid_grant' : (v || false);
      }
      return json(ctx, 200, { ...faults });
    }
    if (ctx.method === 'POST' && ctx.path === '/__test/revoke-grants') {
      const raw = (await readBody(ctx)).toString() || '{}';
      let body = {};
      try { body = JSON.parse(raw); } catch { /* ignore */ }
      const ids = [...grantIds];
      for (const id of ids) {
        await Promise.all([
          provider.AccessToken.revokeByGrantId(id),
          provider.RefreshToken.revokeByGrantId(id),
          provider.AuthorizationCode.revokeByGrantId(id),
          provider.Grant.adapter.destroy(id),
        ]);
        grantIds.delete(id);
      }
      let sessions = 0;
      if (body.sessions) {
        for (const id of [...sessionIds]) {
          await provider.Session.adapter.destroy(id);
          sessionIds.delete(id);
          sessions += 1;
        }
      }
      return json(ctx, 200, { revoked_grants: ids.length, destroyed_sessions: sessions });
    }
    if (ctx.method === 'POST' && ctx.path === '/__test/user-claims') {
      let body;
      try {
        body = JSON.parse((await readBody(ctx)).toString() || '{}');
      } catch {
        return json(ctx, 400, { error: 'invalid_json' });
      }
      if (!body || typeof body !== 'object' || Array.isArray(body)) return json(ctx, 400, { error: 'invalid_request' });
      const user = users.get(body.login);
      if (!user) return json(ctx, 404, { error: 'unknown_user' });
      const err = checkClaims(body);
      if (err) return json(ctx, 400, { error: 'invalid_request', error_description: err });
      if (body.reset) {
        for (const k of MUTABLE_CLAIMS) {
          if (user.initial[k] === undefined) delete user[k];
          else user[k] = structuredClone(user.initial[k]);
        }
      }
      for (const k of MUTABLE_CLAIMS) {
        if (!(k in body)) continue;
        if (body[k] === null) delete user[k];
        else user[k] = structuredClone(body[k]);
      }
      const now = {};
      for (const k of MUTABLE_CLAIMS) if (user[k] !== undefined) now[k] = user[k];
      return json(ctx, 200, { login: user.login, sub: user.sub, ...now });
    }
    if (ctx.method === 'POST' && ctx.path === '/__test/reset-stats') {
      Object.assign(stats, { token: {}, token_total: 0, authorization: 0, logins_ok: 0, logins_failed: 0,
                             traceparent: {}, exchange: newExchangeStats(stats.exchange.in_flight),
                             id_jag: newIdJagStats() });
      return json(ctx, 200, {});
    }
    return json(ctx, 404, { error: 'not_found' });
  }

  if (ctx.path === '/jwks') stats.traceparent.jwks = ctx.get('traceparent') || null;

  if (ctx.path === '/auth' && ctx.method === 'GET') {
    stats.authorization += 1;
    // oidc-provider drops offline_access unless prompt includes consent; the
    // static clients get consent automatically, so add it instead.
    const { prompt, scope } = ctx.query;
    const prompts = typeof prompt === 'string' ? prompt.split(' ').filter(Boolean) : [];
    if (typeof scope === 'string' && scope.split(' ').includes('offline_access')
        && !prompts.includes('consent') && !prompts.includes('none')
        && staticClientIds.has(ctx.query.client_id)) {
      ctx.query = { ...ctx.query, prompt: [...prompts, 'consent'].join(' ') };
    }
  }

  if (ctx.path === '/token' && ctx.method === 'POST') {
    // read the body once to count by grant type; oidc-provider then uses req.body
    const raw = await readBody(ctx);
    ctx.req.body = raw;
    let grantType = 'unknown';
    let idJag = false;
    if (ctx.is('application/x-www-form-urlencoded')) {
      const form = querystring.parse(raw.toString());
      const gt = form.grant_type;
      if (typeof gt === 'string') grantType = gt;
      idJag = isIdJagRequest(form);
    }
    stats.token[grantType] = (stats.token[grantType] || 0) + 1;
    stats.token_total += 1;
    stats.traceparent.token = ctx.get('traceparent') || null;
    if (grantType === TOKEN_EXCHANGE) return countedExchange(ctx, () => tokenFaults(ctx, next, true), idJag);
    return tokenFaults(ctx, next, false);
  }

  return next();
});

function faultStatus(ctx, status) {
  const error = status === 503 ? 'temporarily_unavailable' : (status >= 500 ? 'server_error' : 'invalid_request');
  return json(ctx, status, { error, error_description: `dev-idp fault injection (${status})` });
}

// the faults of POST /token; the exchange_* ones only for token exchanges
async function tokenFaults(ctx, next, exchange) {
  if (faults.down) {
    ctx.respond = false;
    ctx.req.socket.destroy();
    return undefined;
  }
  if (faults.token_delay_ms > 0) await sleep(faults.token_delay_ms);
  if (faults.token_status) return faultStatus(ctx, faults.token_status);
  if (exchange) {
    if (faults.exchange_delay_ms > 0) await sleep(faults.exchange_delay_ms);
    if (faults.exchange_status) return faultStatus(ctx, faults.exchange_status);
  }
  return next();
}

// every token exchange: how many at once, and how each ended (issued ones
// are counted where the token is made; ID-JAG requests in stats.id_jag)
async function countedExchange(ctx, next, idJag = false) {
  const ex = stats.exchange;
  ex.in_flight += 1;
  ex.max_in_flight = Math.max(ex.max_in_flight, ex.in_flight);
  try {
    await next();
  } finally {
    // reset-stats may have swapped the object meanwhile
    stats.exchange.in_flight = Math.max(0, stats.exchange.in_flight - 1);
    if (ctx.status !== 200) {
      let reason = ctx.body?.error || String(ctx.status);
      if (ctx.respond === false) reason = 'connection_closed';
      const refused = idJag ? stats.id_jag.refused : stats.exchange.refused;
      refused[reason] = (refused[reason] || 0) + 1;
    }
  }
}

// the login interaction (a real password check) and auto-consent
provider.use(async (ctx, next) => {
  const m = /^\/interaction\/([A-Za-z0-9_-]+)$/.exec(ctx.path);
  if (!m || !['GET', 'POST'].includes(ctx.method)) return next();
  const uid = m[1];
  ctx.set('Cache-Control', 'no-store');
  let details;
  try {
    details = await provider.interactionDetails(ctx.req, ctx.res);
  } catch (err) {
    ctx.status = 400;
    ctx.type = 'html';
    ctx.body = page('Error - dev-idp', `<h1>Error</h1><p id="error">${escapeHtml(err.message)}</p>`);
    return undefined;
  }
  if (details.uid !== uid) {
    ctx.status = 400;
    ctx.type = 'html';
    ctx.body = page('Error - dev-idp', '<h1>Error</h1><p id="error">interaction mismatch</p>');
    return undefined;
  }
  const { prompt, params } = details;
  const finish = async (result) => {
    const returnTo = await provider.interactionResult(ctx.req, ctx.res, result, { mergeWithLastSubmission: true });
    ctx.status = 303;
    ctx.redirect(returnTo);
  };

  if (prompt.name === 'consent') {
    // auto-grant everything requested (GET or POST)
    const grant = details.grantId
      ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId: details.session.accountId, clientId: params.client_id });
    const d = prompt.details || {};
    if (d.missingOIDCScope) grant.addOIDCScope(d.missingOIDCScope.join(' '));
    if (d.missingOIDCClaims) grant.addOIDCClaims(d.missingOIDCClaims);
    if (d.missingResourceScopes) {
      for (const [indicator, scopes] of Object.entries(d.missingResourceScopes)) {
        grant.addResourceScope(indicator, scopes.join(' '));
      }
    }
    const grantId = await grant.save();
    return finish({ consent: { grantId } });
  }

  if (prompt.name !== 'login') {
    return finish({ error: 'access_denied', error_description: `unsupported prompt ${prompt.name}` });
  }

  if (ctx.method === 'GET') {
    ctx.type = 'html';
    ctx.body = loginPage(uid, { clientId: params.client_id, login: params.login_hint || '' });
    return undefined;
  }

  const form = querystring.parse((await readBody(ctx)).toString());
  const login = typeof form.login === 'string' ? form.login : '';
  const user = checkPassword(login, form.password);
  if (!user) {
    stats.logins_failed += 1;
    ctx.status = 200;
    ctx.type = 'html';
    ctx.body = loginPage(uid, { clientId: params.client_id, login, error: 'Invalid username or password.' });
    return undefined;
  }
  stats.logins_ok += 1;
  return finish({ login: { accountId: user.sub, amr: ['pwd'] } });
});

// ---------------------------------------------------------------- start

async function main() {
  const port = listenPort;
  const server = provider.listen(port, opts.host);
  server.on('error', (err) => die(`cannot listen on ${opts.host}:${port}: ${err.message}`));
  server.keepAliveTimeout = 5000;
  await new Promise((resolve) => { server.once('listening', resolve); });
  const actual = server.address().port;

  const stop = () => {
    server.close();
    server.closeAllConnections?.();
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);

  const lines = [];
  // "<role> login: <login> / <password>" for each built-in user whose
  // password is random (scripts parse the "demo login" line)
  for (const g of printedLogins) lines.push(`${g.role} login: ${g.login} / ${g.password}`);
  lines.push(`dev-idp listening on http://${opts.host}:${actual}`);
  process.stdout.write(`${lines.join('\n')}\n`);
}

main().catch((err) => die(err.stack || String(err)));
