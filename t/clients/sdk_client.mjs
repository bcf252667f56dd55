#!/usr/bin/env node
// An MCP client built on the official TypeScript SDK (@modelcontextprotocol/sdk)
// and its own OAuth support, against the gateway.  The SDK does discovery,
// registration, PKCE, the token exchange, refresh and re-authorization; the
// OAuthClientProvider below keeps its state in memory and, when the SDK asks
// it to "open the browser", does the browser part over HTTP (http_browser.mjs).
//
//   node t/clients/sdk_client.mjs --gateway http://127.0.0.1:PORT --transport http|sse \
//        --scenario full|stepup|deny|access|quota|downstream --user demo --password SECRET [--ttl 3]
//
// deny: the user clicks Deny on the consent page, then follows the page's
// link back to the application, which learns of the denial there.
//
// Prints one JSON object per line: {"step": ...} for what the client did,
// {"http": ...} for every request the SDK made (method, path, status, and the
// grant_type of token requests; never tokens), {"browser": ...} for each page
// the browser submitted, and finally {"step": "done"} (or {"error": ...}).

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';
import { auth, discoverOAuthServerInfo, registerClient, UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { browseToRedirect } from './http_browser.mjs';

const args = Object.fromEntries(process.argv.slice(2).reduce((acc, a, i, all) => {
  if (a.startsWith('--')) acc.push([a.slice(2), all[i + 1]]);
  return acc;
}, []));
const gateway = args.gateway;
const transportKind = args.transport ?? 'http';
const scenario = args.scenario ?? 'full';
const user = args.user ?? 'demo';
const password = args.password;
const ttl = Number(args.ttl ?? 3);
const REDIRECT = 'http://127.0.0.1:33419/callback';

const emit = obj => process.stdout.write(JSON.stringify(obj) + '\n');
const sleep = ms => new Promise(res => setTimeout(res, ms));

// Every request the SDK makes goes through this fetch: it is logged, nothing else.
async function loggingFetch(input, init) {
  const url = new URL(typeof input === 'string' || input instanceof URL ? input : input.url);
  const method = init?.method ?? 'GET';
  let grant;
  if (url.pathname === '/token' && init?.body) grant = new URLSearchParams(String(init.body)).get('grant_type');
  const r = await fetch(input, init);
  const rec = { http: `${method} ${url.pathname}`, status: r.status };
  if (grant) rec.grant_type = grant;
  const www = r.headers.get('www-authenticate');
  if (www) rec.www_authenticate_error = (www.match(/error="([^"]+)"/) ?? [])[1] ?? null;
  emit(rec);
  return r;
}

class MemoryOAuthProvider {
  constructor() {
    this._client = undefined;
    this._tokens = undefined;
    this._verifier = undefined;
    this._discovery = undefined;
    this.pendingCode = undefined;
    this.authorizations = 0;
    this.saved = 0;
  }
  get redirectUrl() { return REDIRECT; }
  get clientMetadata() {
    return {
      client_name: 'sdk_client.mjs (ngx_mcp_auth tests)',
      redirect_uris: [REDIRECT],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    };
  }
  clientInformation() { return this._client; }
  saveClientInformation(info) {
    this._client = info;
    emit({ step: 'registered', client_id_present: !!info.client_id });
  }
  tokens() { return this._tokens; }
  saveTokens(tokens) {
    this._tokens = tokens;
    this.saved += 1;
    emit({ step: 'tokens_saved', scope: tokens.scope ?? null, expires_in: tokens.expires_in ?? null,
           has_refresh_token: !!tokens.refresh_token });
  }
  saveCodeVerifier(v) { this._verifier = v; }
  codeVerifier() { return this._verifier; }
  saveDiscoveryState(s) { this._discovery = s; }
  discoveryState() { return this._discovery; }
  invalidateCredentials(scope) {
    emit({ step: 'invalidate_credentials', scope });
    if (scope === 'all' || scope === 'client') this._client = undefined;
    if (scope === 'all' || scope === 'tokens') this._tokens = undefined;
    if (scope === 'all' || scope === 'verifier') this._verifier = undefined;
    if (scope === 'all' || scope === 'discovery') this._discovery = undefined;
  }
  // "Open the browser": the user approves the consent page and logs in.
  async redirectToAuthorization(authorizationUrl) {
    this.authorizations += 1;
    const u = new URL(authorizationUrl);
    emit({ step: 'redirect_to_authorization', n: this.authorizations, path: u.pathname,
           scope: u.searchParams.get('scope'), resource: u.searchParams.get('resource'),
           code_challenge_method: u.searchParams.get('code_challenge_method') });
    const back = await browseToRedirect(authorizationUrl.toString(), {
      redirectPrefix: REDIRECT, login: user, password,
      decision: scenario === 'deny' ? 'deny' : 'allow',
      onPage: kind => emit({ browser: kind }),
    });
    const q = new URL(back).searchParams;
    emit({ step: 'browser_returned', has_code: q.has('code'), iss: q.get('iss'),
           error: q.get('error'), error_description: q.get('error_description'),
           state_matches: q.get('state') === u.searchParams.get('state') });
    this.pendingCode = q.get('code');
    this.lastError = q.get('error');
  }
  takeCode() {
    const c = this.pendingCode;
    this.pendingCode = undefined;
    if (!c) throw new Error('the SDK asked for authorization but no code came back');
    return c;
  }
}

const provider = new MemoryOAuthProvider();

function makeTransport() {
  const opts = { authProvider: provider, fetch: loggingFetch };
  return transportKind === 'sse'
    ? new SSEClientTransport(new URL(gateway + '/mcp/sse'), opts)
    : new StreamableHTTPClientTransport(new URL(gateway + '/mcp'), opts);
}

let client, transport;

// The application's side of the SDK's OAuth contract: connect; when the SDK
// says UnauthorizedError after sending the user to the browser, finish the
// authorization with the code and connect again.
async function connect() {
  for (let attempt = 0; attempt < 3; attempt++) {
    transport = makeTransport();
    client = new Client({ name: 'ngx-mcp-auth-sdk-test', version: '1.0.0' });
    try {
      await client.connect(transport);
      emit({ step: 'connected', transport: transportKind, attempt });
      return;
    } catch (e) {
      if (!(e instanceof UnauthorizedError)) throw e;
      emit({ step: 'unauthorized_on_connect', attempt });
      await client.close().catch(() => {});
      await transport.finishAuth(provider.takeCode());
      emit({ step: 'finish_auth' });
    }
  }
  throw new Error('could not connect');
}

// A call that, if the SDK sends the user back to log in, finishes that login,
// reconnects and retries once.
async function callTool(name, args_ = {}) {
  try {
    return await client.callTool({ name, arguments: args_ });
  } catch (e) {
    if (!(e instanceof UnauthorizedError) && !(e?.cause instanceof UnauthorizedError)) throw e;
    emit({ step: 'unauthorized_on_call', tool: name });
    await transport.finishAuth(provider.takeCode());
    emit({ step: 'finish_auth' });
    await client.close().catch(() => {});
    await connect();
    return await client.callTool({ name, arguments: args_ });
  }
}

const textOf = r => r?.content?.[0]?.text;

async function tools(label) {
  const list = await client.listTools();
  emit({ step: 'tools_list', label, tools: list.tools.map(t => t.name).sort() });
}

async function call(name, a, label) {
  const r = await callTool(name, a);
  emit({ step: 'tool_call', tool: name, label, is_error: !!r.isError, text: textOf(r) });
  return r;
}

async function full() {
  await connect();
  await tools('first');
  await call('hello_mcp', {}, 'first');
  await call('save_snippet', { snippetname: `sdk-${transportKind}`, snippet: `saved over ${transportKind}` }, 'first');
  await call('get_snippet', { snippetname: `sdk-${transportKind}` }, 'first');

  // the access token expires; the SDK refreshes it on the 401 and retries
  await sleep((ttl + 1.5) * 1000);
  emit({ step: 'access_token_expired', waited_s: ttl + 1.5 });
  const before = provider.authorizations;
  await call('hello_mcp', {}, 'after_expiry');
  emit({ step: 'after_expiry', new_authorizations: provider.authorizations - before });

  // the user (or an administrator) revokes the grant: the SDK must log in again
  const meta = await (await fetch(gateway + '/.well-known/oauth-authorization-server')).json();
  const rv = await fetch(meta.revocation_endpoint, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ token: provider.tokens().refresh_token, token_type_hint: 'refresh_token',
                                client_id: provider.clientInformation().client_id }).toString(),
  });
  emit({ step: 'revoked', status: rv.status });
  const before2 = provider.authorizations;
  await call('hello_mcp', {}, 'after_revocation');
  emit({ step: 'after_revocation', new_authorizations: provider.authorizations - before2 });
}

async function stepup() {
  // The client registered as the SDK does after a plain 401 (with every scope
  // the resource metadata lists), but the user first signed in with the read
  // scope only: registration through the SDK's registerClient(), then the
  // SDK's auth() with scope "snippets:read".
  const serverUrl = new URL(gateway + '/mcp');
  const info = await discoverOAuthServerInfo(serverUrl, { fetchFn: loggingFetch });
  const scopes = info.resourceMetadata?.scopes_supported?.join(' ');
  const reg = await registerClient(info.authorizationServerUrl, {
    metadata: info.authorizationServerMetadata, clientMetadata: provider.clientMetadata,
    scope: scopes, fetchFn: loggingFetch });
  provider.saveClientInformation({ ...reg, issuer: String(info.authorizationServerUrl) });
  emit({ step: 'registered_scopes', scope: scopes });
  const first = await auth(provider, { serverUrl, scope: 'snippets:read', fetchFn: loggingFetch });
  emit({ step: 'auth_read_only', result: first });
  await auth(provider, { serverUrl, authorizationCode: provider.takeCode(), fetchFn: loggingFetch });
  await connect();
  await call('get_snippet', { snippetname: 'stepup' }, 'read_scope');
  const before = provider.authorizations;
  await call('save_snippet', { snippetname: 'stepup', snippet: 'written after step-up' }, 'step_up');
  emit({ step: 'after_step_up', new_authorizations: provider.authorizations - before,
         scope: provider.tokens()?.scope ?? null });
  const before2 = provider.authorizations;
  await call('get_snippet', { snippetname: 'stepup' }, 'after_step_up');
  emit({ step: 'after_read_again', new_authorizations: provider.authorizations - before2,
         scope: provider.tokens()?.scope ?? null });
}

// What this user may do: the list, then every tool; a refusal is reported
// with the error the SDK raised (the gateway's 403 says why).
async function access() {
  await connect();
  await tools('access');
  const argsOf = { hello_mcp: {}, get_snippet: { snippetname: `access-${transportKind}` },
                   save_snippet: { snippetname: `access-${transportKind}`, snippet: 'by access' } };
  for (const name of ['hello_mcp', 'save_snippet', 'get_snippet']) {
    try {
      const r = await client.callTool({ name, arguments: argsOf[name] });
      emit({ step: 'tool_call', tool: name, label: 'access', is_error: !!r.isError, text: textOf(r) });
    } catch (e) {
      emit({ step: 'tool_refused', tool: name, error: String(e?.message ?? e), code: e?.code ?? null });
    }
  }
}

// The same tool twice, behind a quota of one call (mcp_auth_limit): the
// refusal is reported with the error the SDK raised.
async function quota() {
  await connect();
  for (const label of ['first', 'second']) {
    try {
      const r = await client.callTool({ name: 'get_snippet', arguments: { snippetname: 'quota' } });
      emit({ step: 'tool_call', tool: 'get_snippet', label, is_error: !!r.isError, text: textOf(r) });
    } catch (e) {
      emit({ step: 'tool_refused', tool: 'get_snippet', label, error: String(e?.message ?? e), code: e?.code ?? null });
    }
  }
}

// A tool that calls another API as the user (token exchange at the gateway):
// what that API saw, as the tool returns it.
async function downstream() {
  await connect();
  await tools('downstream');
  await call('whoami_downstream', {}, 'downstream');
}

// The user says no: the application learns it at its redirect URI (what a
// real app's callback handler does with ?error=access_denied).
async function deny() {
  transport = makeTransport();
  client = new Client({ name: 'ngx-mcp-auth-sdk-test', version: '1.0.0' });
  try {
    await client.connect(transport);
    emit({ step: 'connected', transport: transportKind });
  } catch (e) {
    if (!(e instanceof UnauthorizedError)) throw e;
    emit({ step: 'unauthorized_on_connect' });
  }
  emit({ step: 'denial_learned', error: provider.lastError ?? null, has_code: !!provider.pendingCode });
}

try {
  await (scenario === 'stepup' ? stepup() : scenario === 'deny' ? deny() : scenario === 'access' ? access()
         : scenario === 'quota' ? quota() : scenario === 'downstream' ? downstream() : full());
  await client?.close().catch(() => {});
  emit({ step: 'done' });
  process.exit(0);
} catch (e) {
  emit({ error: String(e?.stack ?? e) });
  await client?.close().catch(() => {});
  process.exit(1);
}
