#!/usr/bin/env node
// A screenshot of Prometheus's graph of one expression, taken in Debian's
// headless chromium driven by playwright-core (as t/clients/inspector.mjs
// does: never a downloaded browser, nothing leaves loopback).
//
//   node scripts/prometheus_screenshot.mjs --url http://127.0.0.1:9090 \
//        --expr 'rate(mcp_auth_token_requests_total[1m])' --out graph.png \
//        [--range 5m] [--chromium /usr/bin/chromium] [--timeout 20000]
//
// It opens /graph?g0.expr=…&g0.tab=0&g0.range_input=5m, waits until the
// graph is drawn and saves a 1280x800 PNG.  Debian's prometheus package has
// no React UI: /graph redirects to its classic UI (/classic/graph, jQuery and
// Rickshaw), whose graph is an SVG in .graph_area; upstream's React UI (a
// canvas in .graph-chart) is waited for as well.  Prints one JSON line:
// {"out", "url", "ui": "classic"|"react", "series": legend entries}.  Exits
// 1, with the UI's error (or the page's text) on stderr and the page as it
// was in OUT, when no graph appears (an empty result, a bad expression).

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const args = Object.fromEntries(process.argv.slice(2).reduce((acc, a, i, all) => {
  if (a.startsWith('--')) acc.push([a.slice(2), all[i + 1]]);
  return acc;
}, []));
if (!args.url || !args.expr || !args.out) {
  process.stderr.write('usage: prometheus_screenshot.mjs --url PROMETHEUS_URL --expr EXPR --out FILE.png '
                       + '[--range 5m] [--chromium /usr/bin/chromium] [--timeout MS]\n');
  process.exit(2);
}
const timeout = Number(args.timeout ?? 20000);
const base = args.url.replace(/\/+$/, '');
const query = new URLSearchParams({ 'g0.expr': args.expr, 'g0.tab': '0',
                                    'g0.range_input': args.range ?? '5m' });
const url = `${base}/graph?${query}`;

// a fresh profile, removed afterwards
const profile = mkdtempSync(join(tmpdir(), 'prometheus-screenshot-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: args.chromium ?? '/usr/bin/chromium',
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
         '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  viewport: { width: 1280, height: 800 },
});
let code = 0;
try {
  await context.route(u => !/^https?:\/\/(127\.0\.0\.1|localhost|\[::1\])(:\d+)?\//.test(u.href),
                      r => r.abort());
  const page = context.pages()[0] ?? await context.newPage();
  page.setDefaultTimeout(timeout);
  await page.goto(url);
  // classic UI: Rickshaw draws one SVG path per series; React UI: a flot canvas
  const classic = '.graph_area svg path';
  const react = '.graph-chart canvas';
  // or the UI's error box: "No datapoints found.", a bad expression
  const error = '.alert-danger:visible';
  await page.waitForSelector(`${classic}, ${react}, ${error}`, { state: 'attached' });
  if (await page.locator(error).count() > 0)
    throw new Error('Prometheus says: ' + (await page.locator(error).first().innerText()).trim());
  const ui = (await page.locator(classic).count()) > 0 ? 'classic' : 'react';
  if (ui === 'classic') {
    // the x axis is drawn after the series: wait for its ticks, then let
    // the transitions settle
    await page.waitForSelector('.graph_area .x_tick', { state: 'attached' });
  }
  await page.evaluate(() => document.activeElement?.blur());   // no focus ring on the query box
  await page.waitForTimeout(500);
  const series = await page.locator(ui === 'classic' ? '.legend li' : '.graph-legend .legend-item').count();
  await page.screenshot({ path: args.out });
  process.stdout.write(JSON.stringify({ out: args.out, url: page.url(), ui, series }) + '\n');
} catch (e) {
  code = 1;
  const page = context.pages()[0];
  if (page) {
    await page.screenshot({ path: args.out }).catch(() => {});
    const text = await page.locator('body').innerText().catch(() => '');
    process.stderr.write(e.message.startsWith('Prometheus says')
      ? `no graph at ${page.url()}: ${e.message}\n`
      : `no graph at ${page.url()}: ${e.message}\n--- page text ---\n${text.slice(0, 3000)}\n`);
  } else {
    process.stderr.write(`${e.stack}\n`);
  }
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
process.exit(code);
