#!/usr/bin/env node
// Drives the MCP Inspector's web UI in Debian's headless chromium
// (playwright-core, never a downloaded browser): connect to the server the
// Inspector was started with, go through our consent page and the provider's
// login in the same browser, list the tools, run hello_mcp.
//
//   node t/clients/inspector.mjs --inspector http://127.0.0.1:PORT --user demo \
//        --password SECRET --out DIR [--chromium /usr/bin/chromium] [--decision deny]
//
// With --decision deny the user clicks Deny, reads the gateway's page and
// follows its link back to the Inspector, which must not connect.
//
// One JSON line per step ({"step": ..., "ms": since start}); screenshots go
// to DIR (consent.png, login.png, connected.png, result.png, and failure.png
// with the page text in failure.txt if a step fails).

import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loopbackPage, parseArgs, stepLog } from './chromium_page.mjs';

const args = parseArgs(process.argv.slice(2));
const out = args.out;
const emit = stepLog();
const { browser, context, page } = await loopbackPage({ executablePath: args.chromium, viewport: { width: 1280, height: 860 } });
const gatewayPosts = [];
page.on('response', r => {
  if (r.request().method() === 'POST' && /\/consent$/.test(new URL(r.url()).pathname))
    gatewayPosts.push({ status: r.status(), origin: r.request().headers().origin ?? null });
});

// waitForURL trips over the navigations the Inspector aborts on its way out
async function urlBecomes(pred, timeout = 30000) {
  const end = Date.now() + timeout;
  while (Date.now() < end) {
    if (pred(new URL(page.url()))) return;
    await page.waitForTimeout(100);
  }
  throw new Error('the page stayed at ' + page.url());
}

async function main() {
  await page.goto(args.inspector);
  const toggle = page.getByRole('switch', { name: /Connect or disconnect/ });
  await toggle.waitFor();
  emit({ step: 'inspector_loaded', server: await page.locator('body').innerText().then(t => (t.match(/https?:\/\/\S+\/mcp\S*/) ?? [null])[0]) });

  // Connect: the Inspector meets the 401, discovers, registers and sends this
  // tab to our /authorize, which shows the consent page
  await toggle.click({ force: true });
  await urlBecomes(u => u.pathname === '/consent');
  await page.getByRole('button', { name: 'Allow' }).waitFor();
  await page.screenshot({ path: join(out, 'consent.png') });
  emit({ step: 'consent_page', title: await page.locator('h1').first().innerText(),
         text: (await page.locator('body').innerText()).slice(0, 600) });
  if (args.decision === 'deny') return deny();
  await page.getByRole('button', { name: 'Allow' }).click();

  // the provider's login form
  await page.locator('input[name=password]').waitFor();
  await page.screenshot({ path: join(out, 'login.png') });
  emit({ step: 'provider_login_page', origin: new URL(page.url()).origin });
  await page.fill('input[name=login]', args.user ?? 'demo');
  await page.fill('input[name=password]', args.password);
  const inspectorOrigin = new URL(args.inspector).origin;
  await page.locator('form').filter({ has: page.locator('input[name=password]') })
    .locator('button[type=submit], input[type=submit]').first().click();
  await urlBecomes(u => u.origin === inspectorOrigin);
  emit({ step: 'back_at_inspector', path: new URL(page.url()).pathname });

  await page.getByText('Connected', { exact: true }).first().waitFor({ timeout: 30000 });
  await page.screenshot({ path: join(out, 'connected.png') });
  emit({ step: 'connected' });

  // Tools: list them, pick hello_mcp, run it
  await page.getByRole('tab', { name: 'Tools' }).or(page.getByRole('button', { name: 'Tools', exact: true }))
    .or(page.getByText('Tools', { exact: true })).first().click();
  const list = page.getByRole('button', { name: /List Tools/i });
  if (await list.count()) await list.first().click();
  await page.getByText('hello_mcp', { exact: true }).first().waitFor();
  const body = await page.locator('body').innerText();
  emit({ step: 'tools_listed', tools: ['hello_mcp', 'get_snippet', 'save_snippet'].filter(t => body.includes(t)) });
  await page.getByText('hello_mcp', { exact: true }).first().click();
  await page.getByRole('button', { name: /Run Tool|Execute Tool/i }).first().click();
  await page.getByText('Hello I am MCPTool!').first().waitFor();
  await page.screenshot({ path: join(out, 'result.png') });
  emit({ step: 'tool_result', text: 'Hello I am MCPTool!',
         on_page: (await page.locator('body').innerText()).includes('Hello I am MCPTool!') });
}

// Deny: the gateway shows a page (it does not send the browser to a client
// the user has not approved); its link takes the user back to the Inspector.
async function deny() {
  await page.getByRole('button', { name: 'Deny' }).click();
  const link = page.locator('a.return');
  await link.waitFor();
  await page.screenshot({ path: join(out, 'denied.png') });
  emit({ step: 'denied_page', url_path: new URL(page.url()).pathname, title: await page.locator('h1').first().innerText(),
         link: await link.innerText() });
  const inspectorOrigin = new URL(args.inspector).origin;
  await link.click();
  await urlBecomes(u => u.origin === inspectorOrigin);
  const back = new URL(page.url());
  emit({ step: 'back_at_inspector', path: back.pathname, error: back.searchParams.get('error') });
  await page.waitForTimeout(2000);
  const body = await page.locator('body').innerText();
  await page.screenshot({ path: join(out, 'after-deny.png') });
  emit({ step: 'after_deny', connected: /\bConnected\b/.test(body), text: body.slice(0, 800) });
}

try {
  await main();
  emit({ step: 'consent_posts', posts: gatewayPosts });
  emit({ step: 'done' });
  await browser.close();
  process.exit(0);
} catch (e) {
  try {
    await page.screenshot({ path: join(out, 'failure.png') });
    writeFileSync(join(out, 'failure.txt'), page.url() + '\n\n' + await page.locator('body').innerText());
  } catch { /* the page may be gone */ }
  emit({ step: 'consent_posts', posts: gatewayPosts });
  emit({ error: String(e?.stack ?? e), url: page.url() });
  await browser.close();
  process.exit(1);
}
