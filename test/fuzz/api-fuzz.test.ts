/**
 * Issue 12: no 500 for hostile input, ever. Every /api/v1 operation of the platform's own
 * OpenAPI document gets hostile path parameters, query strings, bodies and headers (see
 * hostile.ts) as an admin, a viewer and anonymously, against seeded data (world.ts), on each
 * driver. Each answer must be below 500, carry no stack trace or source path, and be the JSON
 * it says it is; /healthz must answer afterwards. Failures are collected (not shrunk: each
 * step would be a round trip) and listed with the exact request and the server's error log.
 *
 *   GATEPOOL_FUZZ_RUNS=400 npx vitest run test/fuzz   # a long soak (default 24 per operation)
 *   GATEPOOL_FUZZ_SEED=123 …                         # replay a run (the seed is printed)
 *   GATEPOOL_FUZZ_REPORT=/tmp/fuzz …                 # failures as /tmp/fuzz.<driver>.json
 */
import { writeFileSync } from 'node:fs';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { api, DRIVERS, startTestPlatform, type TestPlatform } from '../helpers/platform.js';
import { caseArb, HOLDS_OPEN, runOrder, type Actor } from './cases.js';
import { operationName, operations, type OpenApiDocument } from './document.js';
import { closeAgent, judge, sendRaw, type RawRequest } from './http.js';
import { seedWorld, type World } from './world.js';

// The test platform logs nothing (pino level "silent"); here its errors are captured instead,
// so a 500 comes with the line the platform logged for it.
const serverLog = vi.hoisted(() => ({ lines: [] as string[] }));
vi.mock('pino', async (importOriginal) => {
  const mod = await importOriginal<typeof import('pino')>();
  const { Writable } = await import('node:stream');
  const real = mod.default;
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      serverLog.lines.push(chunk.toString().trim());
      done();
    },
  });
  const wrapped = ((opts?: { level?: string }, stream?: unknown) =>
    opts && typeof opts === 'object' && opts.level === 'silent' && stream === undefined
      ? real({ ...opts, level: 'error' }, sink)
      : real(opts as never, stream as never)) as unknown as typeof real;
  Object.assign(wrapped, real);
  return { ...mod, default: wrapped, pino: wrapped };
});

const RUNS = Number(process.env.GATEPOOL_FUZZ_RUNS ?? 24);
const SEED = Number(process.env.GATEPOOL_FUZZ_SEED ?? Date.now() % 2 ** 31);

interface Failure {
  operation: string;
  problem: string;
  actor: Actor;
  request: { method: string; path: string; headers: Record<string, string>; body?: string };
  status: number;
  response: string;
  serverLog: string[];
}

const clip = (s: string | undefined, n = 600) =>
  s === undefined ? undefined : s.length > n ? `${s.slice(0, n)}… (${s.length} chars)` : s;

/** CPU time since `before`: on PGlite the platform and its database run in this process too. */
function cpuMs(before: NodeJS.CpuUsage): number {
  const d = process.cpuUsage(before);
  return Math.round((d.user + d.system) / 1000);
}

/** `DrizzleQueryError: Failed query: … invalid input syntax for type uuid` from a pino line. */
function logSummary(line: string): string {
  try {
    const entry = JSON.parse(line) as { msg?: string; err?: { type?: string; message?: string } };
    const err = entry.err ? `${entry.err.type}: ${entry.err.message ?? ''}` : '';
    return clip(`${entry.msg ?? ''} ${err}`.trim(), 700) ?? '';
  } catch {
    return clip(line, 700) ?? '';
  }
}

describe.each(DRIVERS)('API fuzz on %s', (driver) => {
  let tp: TestPlatform;
  let world: World;
  let doc: OpenApiDocument;
  const failures: Failure[] = [];
  /** Answers per operation and status: shows whether requests get past validation. */
  const statuses: Record<string, Record<number, number>> = {};

  beforeAll(async () => {
    tp = await startTestPlatform(driver);
    world = await seedWorld(tp);
    const res = await api(tp).get('/api/docs/json');
    if (res.status !== 200) throw new Error(`GET /api/docs/json answered ${res.status}`);
    doc = res.body as OpenApiDocument;
  }, 60_000);

  afterAll(async () => {
    if (process.env.GATEPOOL_FUZZ_REPORT)
      writeFileSync(
        `${process.env.GATEPOOL_FUZZ_REPORT}.${driver}.json`,
        JSON.stringify({ seed: SEED, statuses, failures }, null, 2),
      );
    closeAgent();
    await world?.fleet.close();
    await tp?.close();
  });

  it('no operation answers hostile input with a 5xx or a stack trace, and the server stays up', async () => {
    const ops = runOrder(operations(doc)).filter((o) => !HOLDS_OPEN.test(o.path));
    expect(ops.length).toBeGreaterThan(20);
    const started = Date.now();
    const cpuBefore = process.cpuUsage();
    let sent = 0;
    const timings: Record<string, number> = {};
    for (const op of ops) {
      const opStarted = Date.now();
      await fc.assert(
        fc.asyncProperty(caseArb(op, world), async (c) => {
          const req: RawRequest = {
            method: op.method,
            path: c.path,
            headers: c.headers,
            body: c.body,
          };
          const logFrom = serverLog.lines.length;
          let problem: string | null;
          let status = 0;
          let text = '';
          try {
            const res = await sendRaw(tp.url, req);
            ({ status, text } = res);
            problem = judge(res, c.path + (c.body ?? ''));
          } catch (err) {
            problem = `no answer: ${(err as Error).message}`;
          }
          sent++;
          const counts = (statuses[operationName(op)] ??= {});
          counts[status] = (counts[status] ?? 0) + 1;
          if (problem)
            failures.push({
              operation: operationName(op),
              problem,
              actor: c.actor,
              request: {
                ...req,
                headers: { ...c.headers, authorization: c.actor },
                body: clip(c.body),
              },
              status,
              response: clip(text) ?? '',
              serverLog: serverLog.lines.slice(logFrom).map(logSummary),
            });
        }),
        { numRuns: RUNS, seed: SEED, endOnFailure: true },
      );
      await world.revive();
      timings[operationName(op)] = Date.now() - opStarted;
    }
    if (process.env.GATEPOOL_FUZZ_REPORT)
      writeFileSync(
        `${process.env.GATEPOOL_FUZZ_REPORT}.${driver}.timings.json`,
        JSON.stringify(timings, null, 2),
      );
    const health = await api(tp).get('/healthz');
    const elapsed = Date.now() - started;
    console.info(
      `fuzz ${driver}: ${ops.length} operations, ${sent} requests in ${elapsed} ms, ${cpuMs(cpuBefore)} ms CPU in this process (seed ${SEED}, ${RUNS} runs each)`,
    );
    expect(health.status, '/healthz after the fuzz run').toBe(200);
    const summary = failures.map(
      (f) =>
        `${f.operation} as ${f.actor}: ${f.problem}\n  ${f.request.method} ${clip(f.request.path, 200)}` +
        `\n  headers ${JSON.stringify(f.request.headers)}\n  body ${clip(f.request.body, 300)}` +
        `\n  → ${f.status} ${clip(f.response, 300)}\n  log ${f.serverLog.join(' | ')}`,
    );
    expect(summary, `seed ${SEED}: replay with GATEPOOL_FUZZ_SEED=${SEED}`).toEqual([]);
  }, 600_000);
});
