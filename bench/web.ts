/**
 * The web UI's budget figures: initial JS and CSS (raw and gzip) of the build in dist/web
 * against the budget, time to first render on loopback (cold page, signed in, until the pool
 * list shows), and how long a SIGKILLed pool member takes to show as Unreachable in an open
 * page (SSE, no reload). Fails when the initial JS exceeds the budget.
 */
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { launchChromium } from '../test/e2e/browser.js';
import { ROOT } from '../test/tunnel/harness.js';
import { startBenchPool } from './lib/pool-platform.js';
import { writeResults } from './lib/results.js';

/** Initial JS, gzip: what a first visit downloads before the app can render. */
const BUDGET_JS_GZIP_KB = 250;
const ROUNDS = 5;

const kb = (n: number) => Math.round((n / 1024) * 10) / 10;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;

function bundle() {
  const dir = join(ROOT, 'dist', 'web');
  const index = readFileSync(join(dir, 'index.html'), 'utf8');
  const refs = [...index.matchAll(/(?:src|href)="(\/assets\/[^"]+\.(js|css))"/g)];
  const sizes = { js: { raw: 0, gzip: 0 }, css: { raw: 0, gzip: 0 } };
  for (const [, path, kind] of refs) {
    const body = readFileSync(join(dir, path!));
    const s = sizes[kind as 'js' | 'css'];
    s.raw += statSync(join(dir, path!)).size;
    s.gzip += gzipSync(body, { level: 9 }).length;
  }
  return {
    initialJsKb: kb(sizes.js.raw),
    initialJsGzipKb: kb(sizes.js.gzip),
    cssKb: kb(sizes.css.raw),
    cssGzipKb: kb(sizes.css.gzip),
    budgetJsGzipKb: BUDGET_JS_GZIP_KB,
  };
}

const size = bundle();
console.log(
  `initial JS ${size.initialJsGzipKb} KB gzip (${size.initialJsKb} KB raw; budget ${BUDGET_JS_GZIP_KB} KB gzip), CSS ${size.cssGzipKb} KB gzip`,
);

const pool = await startBenchPool({
  label: 'web',
  poolName: 'web',
  members: ['w1', 'w2', 'w3'],
  allow: [],
});
const browser = await launchChromium();
const firstRender: number[] = [];
const killToUnreachable: number[] = [];
try {
  const cookie = { name: 'gatepool_session', value: pool.token, url: pool.base };
  for (let i = 0; i < ROUNDS; i++) {
    const context = await browser.newContext();
    await context.addCookies([cookie]);
    const page = await context.newPage();
    const t0 = performance.now();
    await page.goto(`${pool.base}/gateways?view=pools`);
    await page.locator('[data-pool="web"]').getByText('3/3 healthy').waitFor({ timeout: 10_000 });
    firstRender.push(Math.round(performance.now() - t0));
    await context.close();
  }
  const context = await browser.newContext();
  await context.addCookies([cookie]);
  const page = await context.newPage();
  await page.goto(`${pool.base}/gateways?view=pools&pool=${pool.poolId}`);
  await page.getByText('● Live').waitFor({ timeout: 10_000 });
  for (const [i, agent] of pool.agents.slice(0, 2).entries()) {
    const row = page.locator(`[data-member="${agent.name}"]`);
    await row.getByText('Healthy', { exact: true }).waitFor({ timeout: 10_000 });
    const t0 = performance.now();
    agent.kill();
    await row.getByText('Unreachable', { exact: true }).waitFor({ timeout: 5000 });
    killToUnreachable.push(Math.round(performance.now() - t0));
    await page
      .getByRole('dialog')
      .getByText(`${2 - i}/3 healthy`)
      .waitFor({ timeout: 5000 });
  }
  await context.close();
} finally {
  await browser.close();
  await pool.close();
}

const results = {
  ...size,
  firstRenderMs: { rounds: firstRender, median: median(firstRender) },
  killToUnreachableMs: { rounds: killToUnreachable, max: Math.max(...killToUnreachable) },
};
console.log(
  `first render (cold page, loopback) median ${results.firstRenderMs.median} ms; SIGKILL → Unreachable in the open page ${killToUnreachable.join(', ')} ms`,
);
await writeResults('web', results);
if (size.initialJsGzipKb > BUDGET_JS_GZIP_KB) {
  console.error(
    `initial JS ${size.initialJsGzipKb} KB gzip is over the ${BUDGET_JS_GZIP_KB} KB budget`,
  );
  process.exit(1);
}
