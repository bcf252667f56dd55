#!/usr/bin/env node
// An "enterprise" MCP client (MCP enterprise-managed authorization, SEP-990)
// on the official TypeScript SDK v2 (@modelcontextprotocol/client): the user
// signed in to it at the enterprise IdP, which gave it an ID token.  Its
// CrossAppAccessProvider, once the gateway refuses the first MCP request,
// discovers the gateway's authorization server (RFC 9728, RFC 8414) and asks
// the assertion callback for an ID-JAG; the callback gets one from the IdP
// with the SDK's discoverAndRequestJwtAuthGrant (RFC 8693 token exchange of
// the ID token, client_secret_post); the provider then trades it at the
// gateway (grant_type jwt-bearer, client_secret_basic) for an access token.
// The client lists the tools and calls one, over Streamable HTTP or SSE.
//
//   node t/clients/enterprise_client.mjs --gateway http://127.0.0.1:PORT [--transport http|sse] \
//        --idp ISSUER --idp-client-id ID (--idp-client-secret S | --idp-client-secret-file F) \
//        (--id-token TOKEN | --id-token-file F | --login USER (--password P | --password-file F)
//         --redirect-uri URI) --client-id MCPCLIENT --client-secret-file F \
//        [--scope S] [--tool hello_mcp] [--mcp-path /mcp] [--issuer GATEWAY_ISSUER]
//
// --login: the app signs the user in at the IdP first (authorization code +
// PKCE for its IdP client, redirected to --redirect-uri, which need not
// listen), for the ID token.
// --issuer: the gateway's issuer the credentials belong to (default: the
// gateway URL's origin); the SDK sends them to no other authorization server.
// --scope: the scope asked of the IdP (default: the one the SDK chose for the
// gateway, from the resource metadata's scopes_supported; the SDK still asks
// the gateway for that one).  The MCP endpoint is <gateway><mcp-path>, for SSE
// <mcp-path>/sse.  The IdP's token endpoint comes from its metadata
// (oidc-provider serves /.well-known/oauth-authorization-server too).
//
// Only the IdP leg (no gateway; audience and resource given):
//   node t/clients/enterprise_client.mjs --idp-only --audience AS_ISSUER --resource MCP_URL \
//        --idp ISSUER --idp-client-id ID --idp-client-secret S --id-token TOKEN [--scope S]
//
// Prints ONE JSON line: {"ok": true|false, "stage": "done" | where it stopped
// ("args", "connect", "idp", "gateway_token", "list_tools", "call_tool"),
// "requests": [{"http": "POST /token", "at": "idp"|"gateway"|"other",
// "status": 200 | null, "grant_type"?, "requested_token_type"?, "error"?}]
// (never tokens or secrets), "assertion_context": {"authorization_server_url",
// "resource_url", "scope"} (what the SDK gave the callback), "id_jag": {"scope",
// "expires_in", "header", "claims"} (the ID-JAG decoded, NOT verified),
// "token": {"scope", "token_type", "expires_in"} (the gateway's answer, when
// the SDK saved it), "tools": [names], "tool", "text", "is_error", "error"}.
// Exit 0 when everything worked, 1 otherwise, 2 for bad arguments.

import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import {
  Client, CrossAppAccessProvider, SSEClientTransport, StreamableHTTPClientTransport, discoverAndRequestJwtAuthGrant,
} from '@modelcontextprotocol/client';

import { browseToRedirect } from './http_browser.mjs';

const out = { ok: false, stage: 'args', requests: [] };
let printed = false;
function finish(code) {
  if (!printed) process.stdout.write(JSON.stringify(out) + '\n');
  printed = true;
  process.exit(code);
}

const FLAGS = new Set(['gateway', 'transport', 'idp', 'idp-client-id', 'idp-client-secret', 'idp-client-secret-file',
  'id-token', 'id-token-file', 'client-id', 'client-secret-file', 'scope', 'tool', 'mcp-path', 'issuer',
  'audience', 'resource', 'login', 'password', 'password-file', 'redirect-uri']);
const BOOLEAN_FLAGS = new Set(['idp-only']);
function parseArgs(argv) {
  const args = {};
  for (let i = 0; i < argv.length; i += 1) {
    const a = argv[i];
    const name = a.startsWith('--') ? a.slice(2) : null;
    if (name !== null && BOOLEAN_FLAGS.has(name)) {
      args[name] = true;
    } else if (name !== null && FLAGS.has(name) && i + 1 < argv.length) {
      args[name] = argv[++i];
    } else {
      throw new Error(`bad argument ${a}${name !== null && FLAGS.has(name) ? ' (needs a value)' : ''}`);
    }
  }
  return args;
}

const readTrimmed = (file) => readFileSync(file, 'utf8').trim();

function need(args, ...names) {
  for (const n of names) if (!args[n]) throw new Error(`--${n} is required`);
}

function secret(args, name) {
  if (args[name]) return args[name];
  if (args[`${name}-file`]) return readTrimmed(args[`${name}-file`]);
  throw new Error(`--${name} or --${name}-file is required`);
}

// a JWS's header and claims, decoded without verifying anything
function decodeJwt(token) {
  const part = (s) => JSON.parse(Buffer.from(s, 'base64url').toString('utf8'));
  const [h, p] = String(token).split('.');
  try {
    return { header: part(h), claims: part(p) };
  } catch {
    return { header: null, claims: null };
  }
}

let origins = {};
function where(url) {
  if (url.origin === origins.idp) return 'idp';
  if (url.origin === origins.gateway) return 'gateway';
  return 'other';
}

// Every request the SDK makes goes through this fetch: it is recorded (method,
// path, status, grant type; never tokens or secrets), nothing else.
async function loggingFetch(input, init) {
  const url = new URL(typeof input === 'string' || input instanceof URL ? input : input.url);
  const rec = { http: `${init?.method ?? input?.method ?? 'GET'} ${url.pathname}`, at: where(url), status: null };
  const body = init?.body;
  if ((typeof body === 'string' || body instanceof URLSearchParams) && url.pathname.endsWith('/token')) {
    const form = new URLSearchParams(body);
    if (form.get('grant_type')) rec.grant_type = form.get('grant_type');
    if (form.get('requested_token_type')) rec.requested_token_type = form.get('requested_token_type');
  }
  out.requests.push(rec);
  try {
    const r = await fetch(input, init);
    rec.status = r.status;
    return r;
  } catch (e) {
    rec.error = String(e?.cause?.code ?? e?.cause?.message ?? e?.message ?? e);
    throw e;
  }
}

// The app's own sign-in of the user at the IdP (authorization code + PKCE,
// client_secret_basic), for its ID token: what an app does before it asks
// for ID-JAGs.  The redirect is not followed; the code is read from it.
async function signIn(args) {
  need(args, 'redirect-uri');
  out.stage = 'sign_in';
  const meta = await (await loggingFetch(new URL('/.well-known/openid-configuration', args.idp))).json();
  const verifier = randomBytes(32).toString('base64url');
  const auth = new URL(meta.authorization_endpoint);
  auth.search = new URLSearchParams({
    response_type: 'code', client_id: args['idp-client-id'], redirect_uri: args['redirect-uri'],
    scope: 'openid profile email', state: randomBytes(16).toString('base64url'),
    nonce: randomBytes(16).toString('base64url'), code_challenge_method: 'S256',
    code_challenge: createHash('sha256').update(verifier).digest('base64url'),
  }).toString();
  const landed = await browseToRedirect(auth.toString(), {
    redirectPrefix: args['redirect-uri'], login: args.login, password: secret(args, 'password'),
  });
  const code = new URL(landed).searchParams.get('code');
  if (!code) throw new Error('the IdP sign-in returned no code');
  const basic = Buffer.from(`${args['idp-client-id']}:${secret(args, 'idp-client-secret')}`).toString('base64');
  const r = await loggingFetch(meta.token_endpoint, {
    method: 'POST',
    headers: { authorization: `Basic ${basic}`, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'authorization_code', code, code_verifier: verifier,
                                redirect_uri: args['redirect-uri'] }).toString(),
  });
  const tokens = await r.json();
  if (!r.ok || !tokens.id_token) throw new Error(`the IdP gave no ID token (${tokens.error ?? r.status})`);
  return tokens.id_token;
}

async function idpOptions(args) {
  let idToken;
  if (args['id-token']) idToken = args['id-token'];
  else if (args['id-token-file']) idToken = readTrimmed(args['id-token-file']);
  else if (args.login) idToken = await signIn(args);
  else throw new Error('--id-token, --id-token-file or --login is required');
  return { idpUrl: args.idp, idToken, clientId: args['idp-client-id'], clientSecret: secret(args, 'idp-client-secret') };
}

// the IdP leg: the SDK's own discovery of the IdP's token endpoint (RFC 8414,
// then OpenID Connect discovery) and its token exchange for an ID-JAG
async function getIdJag(idp, audience, resource, scope, fetchFn) {
  out.stage = 'idp';
  const result = await discoverAndRequestJwtAuthGrant({ ...idp, audience, resource, scope, fetchFn });
  out.id_jag = { scope: result.scope ?? null, expires_in: result.expiresIn ?? null, ...decodeJwt(result.jwtAuthGrant) };
  return result.jwtAuthGrant;
}

async function idpOnly(args) {
  need(args, 'idp', 'idp-client-id', 'audience', 'resource');
  origins = { idp: new URL(args.idp).origin };
  const idp = await idpOptions(args);
  await getIdJag(idp, args.audience, args.resource, args.scope, loggingFetch);
}

async function full(args) {
  need(args, 'gateway', 'idp', 'idp-client-id', 'client-id', 'client-secret-file');
  if (!args['id-token'] && !args['id-token-file'] && !args.login) {
    throw new Error('--id-token, --id-token-file or --login is required');
  }
  const transportKind = args.transport ?? 'http';
  if (!['http', 'sse'].includes(transportKind)) throw new Error('--transport is http or sse');
  const gateway = new URL(args.gateway);
  origins = { idp: new URL(args.idp).origin, gateway: gateway.origin };
  const idp = await idpOptions(args);
  const mcpPath = args['mcp-path'] ?? '/mcp';
  const provider = new CrossAppAccessProvider({
    clientId: args['client-id'],
    clientSecret: readTrimmed(args['client-secret-file']),
    clientName: 'enterprise_client.mjs',
    expectedIssuer: args.issuer ?? gateway.origin,
    fetchFn: loggingFetch,
    assertion: async (ctx) => {
      out.assertion_context = {
        authorization_server_url: ctx.authorizationServerUrl, resource_url: ctx.resourceUrl, scope: ctx.scope ?? null,
      };
      const jag = await getIdJag(idp, ctx.authorizationServerUrl, ctx.resourceUrl, args.scope ?? ctx.scope, ctx.fetchFn);
      out.stage = 'gateway_token';
      return jag;
    },
  });
  const endpoint = new URL(transportKind === 'sse' ? `${mcpPath}/sse` : mcpPath, gateway);
  const opts = { authProvider: provider, fetch: loggingFetch };
  const transport = transportKind === 'sse'
    ? new SSEClientTransport(endpoint, opts)
    : new StreamableHTTPClientTransport(endpoint, opts);
  const client = new Client({ name: 'enterprise_client.mjs', version: '1.0.0' });
  out.stage = 'connect';
  try {
    await client.connect(transport);
  } finally {
    const t = provider.tokens();
    if (t) out.token = { scope: t.scope ?? null, token_type: t.token_type ?? null, expires_in: t.expires_in ?? null };
  }
  out.stage = 'list_tools';
  const tools = await client.listTools();
  out.tools = tools.tools.map((t) => t.name);
  out.stage = 'call_tool';
  const tool = args.tool ?? 'hello_mcp';
  out.tool = tool;
  const result = await client.callTool({ name: tool, arguments: {} });
  out.text = result.content?.find((c) => c.type === 'text')?.text ?? null;
  out.is_error = !!result.isError;
  const t = provider.tokens();
  if (t) out.token = { scope: t.scope ?? null, token_type: t.token_type ?? null, expires_in: t.expires_in ?? null };
  await client.close();
}

async function main() {
  let args;
  try {
    args = parseArgs(process.argv.slice(2));
    if (!args['idp-only']) need(args, 'gateway');
  } catch (e) {
    out.error = e.message;
    finish(2);
  }
  if (args['idp-only']) await idpOnly(args);
  else await full(args);
  out.stage = 'done';
  out.ok = true;
  finish(0);
}

main().catch((e) => {
  out.error = String(e?.message ?? e);
  finish(out.stage === 'args' ? 2 : 1);
});
