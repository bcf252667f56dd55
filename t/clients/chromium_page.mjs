// What the drivers that use a browser share: their --name value arguments,
// a step log on stdout, and one page in Debian's headless chromium
// (playwright-core, never a downloaded browser) on a new, empty profile
// that reaches nothing but loopback.

import { chromium } from 'playwright-core';

// {name: value} of "--name value" pairs.
export function parseArgs(argv) {
  return Object.fromEntries(argv.reduce((acc, a, i, all) => {
    if (a.startsWith('--')) acc.push([a.slice(2), all[i + 1]]);
    return acc;
  }, []));
}

// emit({step: ...}) writes one JSON line with the milliseconds since start.
export function stepLog() {
  const started = Date.now();
  return obj => process.stdout.write(JSON.stringify({ ...obj, ms: Date.now() - started }) + '\n');
}

export async function loopbackPage({ executablePath = '/usr/bin/chromium', viewport }) {
  const browser = await chromium.launch({
    executablePath,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
           '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const context = await browser.newContext({ viewport });
  await context.route(u => !/^https?:\/\/(127\.0\.0\.1|localhost)(:\d+)?\//.test(u.href), r => r.abort());
  const page = await context.newPage();
  page.setDefaultTimeout(20000);
  return { browser, context, page };
}
