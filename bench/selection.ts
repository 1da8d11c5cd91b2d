/**
 * bench/selection: cost of one selectMember() call as pools grow (DESIGN §5; target < 20 µs
 * p99 with 1,000 members). Members carry realistic state: weights, two priority tiers, a few
 * unhealthy and suspect ones, varied outstanding-stream counts.
 * Run: node --import tsx bench/selection.ts   (writes bench/results/selection.json)
 */
import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { join } from 'node:path';
import { selectMember, type Candidate } from '../src/server/pools/selection.js';
import { ROOT } from '../test/tunnel/harness.js';

const SIZES = [3, 10, 100, 1000];
const CALLS = 20_000;
const WARMUP = 5_000;

function members(n: number): Candidate[] {
  return Array.from({ length: n }, (_, i) => ({
    gatewayId: `gw-${i}`,
    name: `gw-${i}`,
    weight: i % 5 === 0 ? 200 : 100,
    priority: i % 10 === 9 ? 1 : 0,
    healthy: i % 17 !== 0,
    outstanding: (i * 7) % 50,
    labels: { region: i % 2 ? 'eu' : 'us' },
    suspectUntil: i % 23 === 0 ? Date.now() + 60_000 : undefined,
  }));
}

const pct = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;

type Row = { p50Us: number; p99Us: number; meanUs: number };
const results: Record<string, Row> = {};
const retries: Record<string, Row> = {};
function measure(pool: Candidate[], exclude: Set<string> | undefined): Row {
  const times: number[] = [];
  for (let i = 0; i < WARMUP + CALLS; i++) {
    const t0 = process.hrtime.bigint();
    const s = selectMember(pool, { exclude, now: Date.now() });
    const ns = Number(process.hrtime.bigint() - t0);
    if (!s.ok) throw new Error(s.message);
    if (i >= WARMUP) times.push(ns / 1000);
  }
  times.sort((a, b) => a - b);
  const round = (n: number) => Math.round(n * 100) / 100;
  return {
    p50Us: round(pct(times, 50)),
    p99Us: round(pct(times, 99)),
    meanUs: round(times.reduce((a, b) => a + b, 0) / times.length),
  };
}
for (const size of SIZES) {
  const pool = members(size);
  // A first pick (no exclusions) is every request; a retry pick excludes the member that failed.
  results[String(size)] = measure(pool, undefined);
  retries[String(size)] = measure(pool, new Set([`gw-${size - 1}`]));
}

console.log('first pick: members   p50 µs   p99 µs   mean µs');
for (const [size, r] of Object.entries(results)) {
  console.log(
    `${size.padStart(7)} ${String(r.p50Us).padStart(8)} ${String(r.p99Us).padStart(8)} ${String(r.meanUs).padStart(9)}`,
  );
}
console.log('retry pick (one member excluded):');
for (const [size, r] of Object.entries(retries)) {
  console.log(
    `${size.padStart(7)} ${String(r.p50Us).padStart(8)} ${String(r.p99Us).padStart(8)} ${String(r.meanUs).padStart(9)}`,
  );
}
const p99at1000 = results['1000']?.p99Us ?? NaN;
console.log(
  `target: p99 < 20 µs with 1,000 members → ${p99at1000 < 20 ? 'met' : 'MISSED'} (${p99at1000} µs)`,
);
await mkdir(join(ROOT, 'bench/results'), { recursive: true });
await writeFile(
  join(ROOT, 'bench/results/selection.json'),
  JSON.stringify(
    {
      bench: 'selection',
      date: new Date().toISOString(),
      node: process.version,
      cpus: os.cpus().length,
      calls: CALLS,
      results,
    },
    null,
    2,
  ) + '\n',
);
