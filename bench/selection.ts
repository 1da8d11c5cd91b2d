/**
 * bench/selection: cost of one selectMember() call as pools grow (DESIGN §5; target < 20 µs
 * p99 with 1,000 members). Members carry realistic state: weights, two priority tiers, a few
 * unhealthy and suspect ones, varied outstanding-stream counts.
 * Also what a request pays before that call: PoolRuntime refreshing every member's live state
 * (health, quiet, health check, load) from memory — a real PoolRuntime on PGlite, with a
 * stand-in tunnel hub holding one live session per member.
 * Run: node --import tsx bench/selection.ts   (writes bench/results/selection.json)
 */
import os from 'node:os';
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import pino from 'pino';
import { AuditLog } from '../src/server/audit/service.js';
import { openDatabase } from '../src/server/db/client.js';
import { migrate } from '../src/server/db/migrate.js';
import {
  gatewayPoolMemberships,
  gatewayPools,
  gateways,
  organizations,
} from '../src/server/db/schema.js';
import { PlatformMetrics } from '../src/server/gateways/metrics.js';
import type { CaStore } from '../src/server/gateways/ca-store.js';
import { GatewayDirectory } from '../src/server/gateways/directory.js';
import type { TunnelHub } from '../src/server/tunnel/hub.js';
import { PoolRuntime } from '../src/server/pools/runtime.js';
import { selectMember, type Candidate } from '../src/server/pools/selection.js';
import type { GatewayLive } from '../src/server/tunnel/session.js';
import { writeResults } from './lib/results.js';

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
  return summarize(times);
}
function summarize(times: number[]): Row {
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

/** PoolRuntime.candidatesFor on pools of each size: the per-request refresh of live state. */
async function refreshCosts(): Promise<Record<string, Row>> {
  const database = await openDatabase({});
  await migrate(database);
  const db = database.db;
  const orgId = randomUUID();
  await db.insert(organizations).values({ id: orgId, name: 'bench' });
  const lives = new Map<string, GatewayLive>();
  // The pool service reads live sessions from the hub; this stand-in serves them from a map.
  const hub = Object.assign(new EventEmitter(), {
    keepaliveMs: 250,
    sessionsGeneration: 0,
    live: (id: string) => lives.get(id),
    setHealthCheckTargets: () => undefined,
  });
  const audit = new AuditLog(db);
  const log = pino({ level: 'silent' });
  const directory = new GatewayDirectory(
    hub as unknown as TunnelHub,
    {} as CaStore,
    db,
    audit,
    log,
    1000,
  );
  const pools = new PoolRuntime(db, directory, audit, new PlatformMetrics(async () => ({})), log);
  pools.close();
  const rows: Record<string, Row> = {};
  try {
    for (const size of SIZES) {
      const poolId = randomUUID();
      await db.insert(gatewayPools).values({ id: poolId, orgId, name: `bench-${size}` });
      const ids = Array.from({ length: size }, () => randomUUID());
      await db.insert(gateways).values(
        ids.map((id, i) => ({
          id,
          orgId,
          name: `gw-${size}-${i}`,
          certFingerprint: id,
          certExpiresAt: new Date(Date.now() + 86_400_000),
          status: 'connected' as const,
        })),
      );
      await db
        .insert(gatewayPoolMemberships)
        .values(ids.map((gatewayId) => ({ orgId, poolId, gatewayId })));
      for (const [i, id] of ids.entries()) {
        lives.set(id, {
          orgId,
          gatewayId: id,
          name: `gw-${size}-${i}`,
          connectedSince: new Date(),
          lastFrameAt: Date.now(),
          rttMs: 0.3,
          activeStreams: i % 7,
          version: '0.1.0',
          labels: { zone: i % 2 ? 'a' : 'b' },
          draining: false,
          healthChecks: [],
          remoteAddress: '127.0.0.1',
        });
      }
      pools.invalidate();
      await pools.ensureLoaded();
      const times: number[] = [];
      for (let i = 0; i < WARMUP + CALLS; i++) {
        const now = Date.now();
        if (i % 50 === 0) for (const id of ids) (lives.get(id) as GatewayLive).lastFrameAt = now;
        const t0 = process.hrtime.bigint();
        pools.candidatesFor(orgId, { gatewayPoolId: poolId });
        const ns = Number(process.hrtime.bigint() - t0);
        if (i >= WARMUP) times.push(ns / 1000);
      }
      rows[String(size)] = summarize(times);
    }
  } finally {
    await database.close();
  }
  return rows;
}
const refresh = await refreshCosts();

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
console.log('per request before it: refreshing live member state (PoolRuntime):');
for (const [size, r] of Object.entries(refresh)) {
  console.log(
    `${size.padStart(7)} ${String(r.p50Us).padStart(8)} ${String(r.p99Us).padStart(8)} ${String(r.meanUs).padStart(9)}`,
  );
}
const p99at1000 = results['1000']?.p99Us ?? NaN;
console.log(
  `target: p99 < 20 µs with 1,000 members → ${p99at1000 < 20 ? 'met' : 'MISSED'} (${p99at1000} µs)`,
);
await writeResults('selection', {
  bench: 'selection',
  date: new Date().toISOString(),
  node: process.version,
  cpus: os.cpus().length,
  calls: CALLS,
  results,
  retries,
  memberRefresh: refresh,
});
