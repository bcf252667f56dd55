#!/usr/bin/env node
// A stand-in for the desktop's web browser, for programs that "open a browser"
// at an authorization URL (mcp-remote does it through the `open` package and
// xdg-open, which honours $BROWSER).  Does what the user would do over HTTP
// (http_browser.mjs: consent page, provider login), then delivers the final
// redirect to the program's own callback listener.
//
//   BROWSER=t/clients/fake-browser.mjs  (or a symlink named xdg-open on PATH)
//   FAKE_BROWSER_LOGIN, FAKE_BROWSER_PASSWORD: the provider account
//   FAKE_BROWSER_DECISION: allow (default) or deny on the consent page
//   FAKE_BROWSER_LOG: a file that gets one JSON line per event
//
// It only ever follows URLs on loopback.

import { appendFileSync } from 'node:fs';
import { browseToRedirect } from './http_browser.mjs';

const log = obj => {
  if (process.env.FAKE_BROWSER_LOG) appendFileSync(process.env.FAKE_BROWSER_LOG, JSON.stringify(obj) + '\n');
};

const target = process.argv[2];
try {
  const u = new URL(target);
  if (!['127.0.0.1', 'localhost', '[::1]'].includes(u.hostname)) throw new Error('not a loopback URL: ' + u.origin);
  const redirectUri = u.searchParams.get('redirect_uri');
  log({ browser: 'open', path: u.pathname, redirect_uri: redirectUri, scope: u.searchParams.get('scope') });
  const back = await browseToRedirect(target, {
    redirectPrefix: redirectUri,
    login: process.env.FAKE_BROWSER_LOGIN ?? 'demo',
    password: process.env.FAKE_BROWSER_PASSWORD,
    decision: process.env.FAKE_BROWSER_DECISION ?? 'allow',
    onPage: kind => log({ browser: kind }),
  });
  const q = new URL(back).searchParams;
  log({ browser: 'callback', has_code: q.has('code'), error: q.get('error') });
  const r = await fetch(back, { redirect: 'manual' });
  log({ browser: 'callback_answered', status: r.status });
  process.exit(0);
} catch (e) {
  log({ browser: 'error', error: String(e?.stack ?? e) });
  process.exit(1);
}
