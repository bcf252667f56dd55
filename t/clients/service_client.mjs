#!/usr/bin/env node
// A service without a browser, on the official TypeScript SDK
// (@modelcontextprotocol/sdk): its ClientCredentialsProvider
// (client_secret_basic) or PrivateKeyJwtProvider (private_key_jwt, RFC 7523)
// gets a token at the gateway with grant_type=client_credentials once the
// first MCP request is refused, then the client calls hello_mcp over
// Streamable HTTP.
//
//   node t/clients/service_client.mjs --gateway http://127.0.0.1:PORT --issuer ISSUER \
//        --client-id ID (--secret-file FILE | --key-file PKCS8_PEM --alg RS256) [--scope S] [--tool hello_mcp]
//
// Prints one JSON object per line: {"http": ...} for every request the SDK
// made (method, path, status, and the grant_type of token requests; never
// tokens), {"tool": ..., "text": ...} for the call, then {"step": "done"} (or
// {"error": ...}).

import { readFileSync } from 'node:fs';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ClientCredentialsProvider, PrivateKeyJwtProvider } from '@modelcontextprotocol/sdk/client/auth-extensions.js';

const args = Object.fromEntries(process.argv.slice(2).reduce((acc, a, i, all) => {
  if (a.startsWith('--')) acc.push([a.slice(2), all[i + 1]]);
  return acc;
}, []));

const emit = obj => process.stdout.write(JSON.stringify(obj) + '\n');

// Every request the SDK makes goes through this fetch: it is logged, nothing else.
async function loggingFetch(input, init) {
  const url = new URL(typeof input === 'string' || input instanceof URL ? input : input.url);
  const method = init?.method ?? 'GET';
  let grant, assertion = false;
  if (url.pathname === '/token' && init?.body) {
    const form = new URLSearchParams(String(init.body));
    grant = form.get('grant_type');
    assertion = form.has('client_assertion');
  }
  const r = await fetch(input, init);
  const rec = { http: `${method} ${url.pathname}`, status: r.status };
  if (grant) Object.assign(rec, { grant_type: grant, client_assertion: assertion });
  emit(rec);
  return r;
}

async function main() {
  const common = { clientId: args['client-id'], expectedIssuer: args.issuer, clientName: 'service_client.mjs' };
  if (args.scope) common.scope = args.scope;
  const provider = args['key-file']
    ? new PrivateKeyJwtProvider({ ...common, privateKey: readFileSync(args['key-file'], 'utf8'),
                                  algorithm: args.alg ?? 'RS256' })
    : new ClientCredentialsProvider({ ...common, clientSecret: readFileSync(args['secret-file'], 'utf8').trim() });
  const transport = new StreamableHTTPClientTransport(new URL('/mcp', args.gateway),
                                                      { authProvider: provider, fetch: loggingFetch });
  const client = new Client({ name: 'service_client.mjs', version: '1.0.0' });
  await client.connect(transport);
  const tool = args.tool ?? 'hello_mcp';
  const result = await client.callTool({ name: tool, arguments: {} });
  emit({ tool, text: result.content?.[0]?.text ?? null, is_error: !!result.isError,
         scope: provider.tokens()?.scope ?? null, refresh_token: !!provider.tokens()?.refresh_token });
  await client.close();
  emit({ step: 'done' });
}

main().catch(e => {
  emit({ error: String(e?.message ?? e) });
  process.exit(1);
});
