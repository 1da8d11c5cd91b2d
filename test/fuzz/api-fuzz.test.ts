/**
 * Issue 12: no 500 for hostile input, ever. Every /api/v1 operation of the platform's own
 * OpenAPI document gets hostile path parameters, query strings, bodies and headers (see
 * hostile.ts, cases.ts) as an admin (bearer, or session cookie with and without the CSRF
 * header), a viewer and anonymously, against seeded data (world.ts), on each driver; so do
 * paths outside the API (web UI, docs, probes). Each answer must be below 500, carry no stack
 * trace or source path, and be the JSON it says it is; /healthz must answer afterwards.
 * Failures are collected (not shrunk: each step would be a round trip) and listed with the
 * exact request and the line the platform logged.
 *
 *   GATEPOOL_FUZZ_RUNS=400 npx vitest run test/fuzz   # a long soak (default 24 per operation)
 *   GATEPOOL_FUZZ_SEED=123 …                         # replay a run (the seed is printed)
 *   GATEPOOL_FUZZ_ONLY='DELETE /api/v1/roles' …     # only the operations this matches
 *   GATEPOOL_FUZZ_TRACE=1 …                          # print every request and its status
 *   GATEPOOL_FUZZ_REPORT=/tmp/fuzz …                 # failures as /tmp/fuzz.<driver>.json
 */
import { writeFileSync } from 'node:fs';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { api, DRIVERS, startTestPlatform, type TestPlatform } from '../helpers/platform.js';
import { hostileString } from './hostile.js';
import { caseArb, enc, HOLDS_OPEN, runOrder, type Actor, type Case } from './cases.js';
import { operationName, operations, type OpenApiDocument } from './document.js';
import { closeAgent, isErrorBodyAfterHead, judge, sendRaw, type RawRequest } from './http.js';
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

/** Roots served outside /api/v1: the web UI and its assets, the API docs, probes, metrics. */
const OUTSIDE_PREFIXES = [
  '/',
  '/assets/',
  '/api/docs/',
  '/api/docs/static/',
  '/api/',
  '/api/v2/',
  '/metrics/',
  '/healthz/',
  '/readyz/',
  '//',
  '/\\',
];
const TRAVERSAL_PIECES = [
  '..',
  '%2e%2e',
  '%2E%2E',
  '..%2f',
  '..%5c',
  '%252e%252e',
  '.',
  '',
  '..;',
  '%00',
  '%c0%ae%c0%ae',
  'etc',
  'passwd',
  'package.json',
  'tsconfig.json',
  '.git',
  'config',
  'index.html',
  'gatepool.sock',
  'pglite',
  'root-key',
  'metrics',
];
/** What a file outside the served roots would show: system files, the repository, keys. */
const FILE_LEAKS = [
  /root:.*:0:0:/,
  /"devDependencies"/,
  /"compilerOptions"/,
  /\[core\]/,
  /-----BEGIN [A-Z ]*PRIVATE KEY-----/,
];
/** The UI shell's deliberate 503 when the web UI was not built. */
const UI_NOT_BUILT = /The web UI is not built/;

/** What a POST creates: its path's last literal segment (`/identities/{id}/tokens` → tokens). */
function createdKind(path: string): string {
  return (
    path
      .split('/')
      .filter((p) => p && !p.startsWith('{'))
      .pop() ?? ''
  );
}

function parse(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** The run's seed mixed with the operation's name. */
function opSeed(op: { method: string; path: string }): number {
  let h = SEED;
  for (const ch of operationName(op)) h = (Math.imul(h, 31) + ch.charCodeAt(0)) | 0;
  return h;
}

/** The request's headers with the seeded credentials replaced by whose they are. */
function redacted(c: Case, world: World): Record<string, string> {
  const h = { ...c.headers };
  for (const who of ['admin', 'viewer'] as const) {
    const token = world[who].token;
    if (h.authorization === `Bearer ${token}`) h.authorization = `Bearer <${who} token>`;
    if (h.cookie === `gatepool_session=${token}`) h.cookie = `gatepool_session=<${who} token>`;
  }
  return h;
}

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
  const outsideProblems: string[] = [];
  let sent = 0;
  // What the fuzzer sent (bounded), so an echo of its own text is not mistaken for a leak.
  const sentTexts: string[] = [];
  const remember = (text: string) => {
    if (text.length <= 100_000 && sentTexts.length < 50_000) sentTexts.push(text);
  };
  const wasSent = (text: string) => sentTexts.some((t) => t.includes(text));
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
        JSON.stringify({ seed: SEED, statuses, failures, outsideProblems }, null, 2),
      );
    closeAgent();
    await world?.fleet.close();
    await tp?.close();
  });

  it('no operation answers hostile input with a 5xx or a stack trace, and the server stays up', async () => {
    const only = process.env.GATEPOOL_FUZZ_ONLY ? new RegExp(process.env.GATEPOOL_FUZZ_ONLY) : null;
    const ops = runOrder(operations(doc)).filter(
      (o) => !HOLDS_OPEN.test(o.path) && (!only || only.test(operationName(o))),
    );
    expect(ops.length).toBeGreaterThan(only ? 0 : 20);
    const started = Date.now();
    const cpuBefore = process.cpuUsage();
    sent = 0;
    const timings: Record<string, number> = {};
    for (const op of ops) {
      const opStarted = Date.now();
      await fc.assert(
        fc.asyncProperty(caseArb(op, world), async (c) => {
          const req: RawRequest = {
            method: c.method ?? op.method,
            path: c.path,
            headers: c.headers,
            body: c.body,
          };
          const logFrom = serverLog.lines.length;
          remember(c.path + (c.body ?? ''));
          const answers = await Promise.all(
            Array.from({ length: c.copies }, () =>
              sendRaw(tp.url, req).then(
                (res) => ({ res, problem: judge(res, wasSent) }),
                (err: Error & { code?: string }) => ({
                  res: undefined,
                  problem: isErrorBodyAfterHead(req.method, err)
                    ? null
                    : `no answer: ${err.message}`,
                }),
              ),
            ),
          );
          sent += answers.length;
          if (process.env.GATEPOOL_FUZZ_TRACE)
            for (const { res } of answers)
              console.info(
                `${res?.status ?? 'no answer'} ${req.method} ${clip(req.path, 120)} ${JSON.stringify(redacted(c, world))} ${clip(c.body, 120) ?? ''}`,
              );
          for (const { res } of answers)
            if (res?.status === 201 && !c.method)
              world.harvest(createdKind(op.path), parse(res.text));
          for (const { res, problem } of answers) {
            const counts = (statuses[operationName(op)] ??= {});
            counts[res?.status ?? 0] = (counts[res?.status ?? 0] ?? 0) + 1;
            if (!problem) continue;
            failures.push({
              operation: operationName(op),
              problem: c.copies > 1 ? `${problem} (one of ${c.copies} sent at once)` : problem,
              actor: c.actor,
              request: { ...req, headers: redacted(c, world), body: clip(c.body) },
              status: res?.status ?? 0,
              response: clip(res?.text) ?? '',
              serverLog: serverLog.lines.slice(logFrom).map(logSummary),
            });
          }
        }),
        // One seed per operation: the same seed everywhere would pick the same actor,
        // method and body kind for the n-th request of every operation.
        { numRuns: RUNS, seed: opSeed(op), endOnFailure: true },
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

  it('paths outside the API (web UI, docs, probes, metrics) serve nothing outside their root and never a 5xx', async () => {
    const problems = outsideProblems;
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          method: fc.constantFrom('GET', 'GET', 'GET', 'HEAD', 'POST', 'OPTIONS'),
          prefix: fc.constantFrom(...OUTSIDE_PREFIXES),
          tail: fc.array(fc.constantFrom(...TRAVERSAL_PIECES), { maxLength: 8 }),
          query: fc.oneof(
            fc.constant(''),
            hostileString.map((q) => `?${enc(q)}`),
          ),
          admin: fc.boolean(),
        }),
        async ({ method, prefix, tail, query, admin }) => {
          const path = prefix + tail.join('/') + query;
          const headers: Record<string, string> = { 'user-agent': 'gatepool-fuzz/1.0' };
          if (admin) headers.authorization = `Bearer ${world.admin.token}`;
          let problem: string | null;
          let status = 0;
          try {
            const res = await sendRaw(tp.url, { method, path, headers });
            status = res.status;
            problem = UI_NOT_BUILT.test(res.text) ? null : judge(res, () => false);
            const leak = FILE_LEAKS.find((re) => re.test(res.text));
            if (leak) problem = `served a file outside its root (${leak})`;
          } catch (err) {
            problem = isErrorBodyAfterHead(method, err as Error)
              ? null
              : `no answer: ${(err as Error).message}`;
          }
          sent++;
          if (problem) problems.push(`${method} ${clip(path, 200)} → ${status}: ${problem}`);
        },
      ),
      { numRuns: RUNS * 8, seed: SEED },
    );
    expect((await api(tp).get('/healthz')).status).toBe(200);
    expect(problems, `seed ${SEED}`).toEqual([]);
  });
});
