#!/usr/bin/env node
// Drives the gateway's "Your connected apps" page (/account) in Debian's
// headless chromium (playwright-core, never a downloaded browser): open the
// page, sign in at the provider's login form, read the apps listed, click
// Revoke on one of them and read the page again.
//
//   node t/clients/account_page.mjs --gateway http://127.0.0.1:PORT --user demo \
//        --password SECRET --out DIR [--revoke "App name"] [--screenshot FILE]
//        [--chromium /usr/bin/chromium]
//
// --screenshot writes the page as first shown (before any revoke) to FILE
// (1100 px wide, the page's full height).  One JSON line per step
// ({"step": ..., "ms": since start}); the last step "cookies" gives the
// browser's account cookie and the page's CSRF token, so that the test can
// post forms of its own with them.  On failure: failure.png and
// failure.txt in DIR.

import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loopbackPage, parseArgs, stepLog } from './chromium_page.mjs';

const args = parseArgs(process.argv.slice(2));
const out = args.out;
const emit = stepLog();
const { browser, context, page } = await loopbackPage({ executablePath: args.chromium, viewport: { width: 1100, height: 720 } });
const posts = [];
page.on('response', r => {
  if (r.request().method() === 'POST' && new URL(r.url()).pathname === '/account')
    posts.push({ status: r.status(), origin: r.request().headers().origin ?? null });
});

// The apps as the page lists them.
async function apps() {
  return page.locator('ul.apps > li').evaluateAll(items => items.map(li => ({
    name: li.querySelector('.app-name')?.firstChild?.textContent ?? '',
    text: li.innerText,
    session: li.querySelector('input[name=session]')?.value ?? '',
  })));
}

async function main() {
  const gateway = new URL(args.gateway).origin;
  await page.goto(args.gateway + '/account');
  // no account cookie yet: the gateway sends us to the provider
  await page.locator('input[name=password]').waitFor();
  emit({ step: 'provider_login_page', origin: new URL(page.url()).origin });
  await page.fill('input[name=login]', args.user ?? 'demo');
  await page.fill('input[name=password]', args.password);
  await page.locator('form').filter({ has: page.locator('input[name=password]') })
    .locator('button[type=submit], input[type=submit]').first().click();
  await page.waitForURL(u => u.origin === gateway && u.pathname === '/account');
  await page.locator('h1').waitFor();
  emit({ step: 'account_page', path: new URL(page.url()).pathname, title: await page.locator('h1').innerText(),
         text: await page.locator('body').innerText(), apps: await apps() });
  if (args.screenshot) await page.screenshot({ path: args.screenshot, fullPage: true });
  await page.screenshot({ path: join(out, 'account.png'), fullPage: true });

  if (args.revoke) {
    await page.getByRole('button', { name: 'Revoke ' + args.revoke, exact: true }).click();
    await page.getByText('Access revoked').waitFor();
    await page.screenshot({ path: join(out, 'revoked.png'), fullPage: true });
    emit({ step: 'revoked', url: page.url(), text: await page.locator('body').innerText(), apps: await apps() });
  }
  const cookies = await context.cookies(args.gateway + '/account');
  const account = cookies.find(c => /mcp_account$/.test(c.name));
  emit({ step: 'cookies', name: account?.name ?? null, value: account?.value ?? null,
         path: account?.path ?? null, http_only: account?.httpOnly ?? null, same_site: account?.sameSite ?? null,
         csrf: await page.locator('input[name=csrf]').first().getAttribute('value') });
}

try {
  await main();
  emit({ step: 'posts', posts });
  emit({ step: 'done' });
  await browser.close();
  process.exit(0);
} catch (e) {
  try {
    await page.screenshot({ path: join(out, 'failure.png') });
    writeFileSync(join(out, 'failure.txt'), page.url() + '\n\n' + await page.locator('body').innerText());
  } catch { /* the page may be gone */ }
  emit({ step: 'posts', posts });
  emit({ error: String(e?.stack ?? e), url: page.url() });
  await browser.close();
  process.exit(1);
}
