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
import {
  operationName,
  operations,
  type OpenApiDocument,
  type Operation,
  type Parameter,
} from './document.js';
import {
  deepNesting,
  fromSchema,
  hostileString,
  hostileValue,
  kindOf,
  type IdPool,
  type Mode,
} from './hostile.js';
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

/**
 * Routes that hold the connection open on purpose (event streams, WebSocket upgrades) would
 * only ever time out here; their own tests cover them.
 */
const HOLDS_OPEN = /\/(events|stream|ws|watch)(\/|$)/;

type Actor = 'admin' | 'viewer' | 'anonymous';

interface Case {
  actor: Actor;
  path: string;
  headers: Record<string, string>;
  body?: string;
}

interface Failure {
  operation: string;
  problem: string;
  actor: Actor;
  request: { method: string; path: string; headers: Record<string, string>; body?: string };
  status: number;
  response: string;
  serverLog: string[];
}

const METHOD_ORDER = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'];
/** Reads first and deletions last, so deletions do not starve the rest of real IDs. */
function runOrder(ops: Operation[]): Operation[] {
  const rank = (o: Operation) =>
    (o.path.endsWith('/logout') ? 100 : 0) + METHOD_ORDER.indexOf(o.method);
  return [...ops].sort((a, b) => rank(a) - rank(b));
}

/** Percent-encodes the UTF-8 of a value; lone surrogates (which encodeURIComponent rejects) become U+FFFD. */
function enc(v: unknown): string {
  const text = typeof v === 'string' ? v : v === undefined ? '' : JSON.stringify(v);
  let out = '';
  for (const b of Buffer.from(text, 'utf8'))
    out += /[A-Za-z0-9\-_.~]/.test(String.fromCharCode(b))
      ? String.fromCharCode(b)
      : `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  return out;
}

/** Path segments that are not a percent-encoded value: traversal, bad escapes, empty. */
const RAW_SEGMENTS = [
  '..',
  '.',
  '%2e%2e',
  '..%2f..%2f',
  '%00',
  '%ZZ',
  '%',
  '',
  '%u0041',
  '%C0%AE',
  '%FF%FE',
  '%ED%A0%80',
];

function pathParamValue(name: string, segmentBefore: string, ids: IdPool): fc.Arbitrary<string> {
  const real = ids[kindOf(name, segmentBefore)] ?? [];
  const all = Object.values(ids).flat();
  const arbs: fc.WeightedArbitrary<string>[] = [
    { arbitrary: hostileValue.map(enc), weight: 2 },
    { arbitrary: fc.constantFrom(...RAW_SEGMENTS), weight: 1 },
    { arbitrary: fc.uuid().map(String), weight: 1 },
    { arbitrary: fc.constantFrom(...all).map(enc), weight: 1 },
  ];
  if (real.length) arbs.push({ arbitrary: fc.constantFrom(...real).map(enc), weight: 6 });
  return fc.oneof(...arbs);
}

function pathArb(op: Operation, ids: IdPool): fc.Arbitrary<string> {
  const parts = op.path.split('/');
  const params = parts.map((part, i) => {
    const m = /^\{(.+)\}$/.exec(part);
    return m ? pathParamValue(m[1] ?? '', parts[i - 1] ?? '', ids) : fc.constant(part);
  });
  return fc.tuple(...params).map((segs) => segs.join('/'));
}

function queryArb(op: Operation, ids: IdPool): fc.Arbitrary<string> {
  return fc.oneof(queryPairs(op, ids, 'valid'), queryPairs(op, ids, 'hostile'));
}

function queryPairs(op: Operation, ids: IdPool, mode: Mode): fc.Arbitrary<string> {
  const value = (p: Parameter) => fromSchema(p.schema, ids, p.name, mode);
  const pairs = op.queryParams.map((p) =>
    fc.oneof(
      { arbitrary: fc.constant<string[]>([]), weight: 2 },
      { arbitrary: value(p).map((v) => [`${p.name}=${enc(v)}`]), weight: 3 },
      // Repeated keys arrive as an array.
      {
        arbitrary: fc
          .tuple(value(p), value(p))
          .map(([a, b]) => [`${p.name}=${enc(a)}`, `${p.name}=${enc(b)}`]),
        weight: mode === 'valid' ? 0 : 1,
      },
      {
        arbitrary: fc.constantFrom([`${p.name}`], [`${p.name}=`], [`${p.name}[x]=1`]),
        weight: mode === 'valid' ? 0 : 1,
      },
    ),
  );
  const extra = fc.oneof(
    { arbitrary: fc.constant<string[]>([]), weight: mode === 'valid' ? 30 : 6 },
    {
      arbitrary: fc.tuple(hostileString, hostileValue).map(([k, v]) => [`${enc(k)}=${enc(v)}`]),
      weight: 1,
    },
    {
      arbitrary: fc.constantFrom(['%'], ['a=%ZZ'], ['&&&'], ['=x'], ['__proto__[x]=1']),
      weight: 1,
    },
  );
  return fc.tuple(fc.tuple(...pairs), extra).map(([ps, ex]) => {
    const all = [...ps.flat(), ...ex];
    return all.length ? `?${all.join('&')}` : '';
  });
}

const CONTENT_TYPES = [
  'text/plain',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=x',
  'application/json; charset=utf-16',
  'application/json; charset=latin1',
  'application/vnd.api+json',
  'application/octet-stream',
  'application/xml',
  '*/*',
  '',
];

const INVALID_JSON = [
  '{',
  '{"a":',
  "{'a':1}",
  '{"a":1}garbage',
  'NaN',
  '\u0000',
  '\uFEFF{}',
  '{"__proto__":{"isAdmin":true}}',
  '{"constructor":{"prototype":{"isAdmin":true}}}',
  '{"a":1,"a":2}',
  '['.repeat(50_000) + ']'.repeat(50_000),
  '{"a":'.repeat(20_000) + '1' + '}'.repeat(20_000),
];

interface Body {
  type?: string;
  body?: string;
}

function bodyArb(op: Operation, ids: IdPool): fc.Arbitrary<Body> {
  const json = (v: unknown): Body => ({ type: 'application/json', body: JSON.stringify(v) });
  const takesBody = !!op.body || ['POST', 'PUT', 'PATCH'].includes(op.method);
  const shaped = fc
    .oneof(
      { arbitrary: fromSchema(op.body, ids, '', 'valid'), weight: 3 },
      { arbitrary: fromSchema(op.body, ids, '', 'hostile'), weight: 2 },
    )
    .map(json);
  return fc.oneof(
    { arbitrary: shaped, weight: takesBody ? 12 : 1 },
    { arbitrary: fc.constant<Body>({}), weight: takesBody ? 1 : 12 },
    { arbitrary: fc.constant<Body>({ type: 'application/json' }), weight: 1 },
    { arbitrary: hostileValue.map(json), weight: 1 },
    {
      arbitrary: fc
        .constantFrom(...INVALID_JSON)
        .map((b) => ({ type: 'application/json', body: b })),
      weight: 1,
    },
    {
      arbitrary: fc
        .tuple(fc.constantFrom(...CONTENT_TYPES), shaped)
        .map(([type, b]) => ({ type, body: b.body })),
      weight: 1,
    },
    {
      arbitrary: fc.constantFrom<Body>(json(deepNesting(3000)), {
        type: 'application/json',
        body: `{"a":"${'x'.repeat(1024 * 1024 + 10)}"}`,
      }),
      weight: 1,
    },
  );
}

/** Headers beyond the body type: broken credentials, forged proxies, odd accept values. */
const headerArb: fc.Arbitrary<Record<string, string>> = fc.oneof(
  { arbitrary: fc.constant({}), weight: 10 },
  {
    arbitrary: fc.constantFrom<Record<string, string>>(
      { authorization: 'Bearer ' },
      { authorization: 'Bearer gps_' + 'x'.repeat(40) },
      { authorization: 'Bearer gpi_' + 'x'.repeat(5000) },
      { authorization: 'Basic YWRtaW46YWRtaW4=' },
      { authorization: 'Bearer \u00ff\u00fe' },
      { cookie: 'gatepool_session=' + 'x'.repeat(64) },
      { cookie: 'gatepool_session=%ZZ; gatepool_session=a' },
      { cookie: '=; ;;' },
      { 'x-forwarded-for': 'not-an-ip' },
      { 'x-forwarded-for': '1.2.3.4, , ::ffff:zz' },
      { 'x-forwarded-for': '\u00e9\u00e9' },
      { 'x-forwarded-proto': 'gopher' },
      { 'x-gatepool-request': '1' },
      { accept: 'text/html' },
      { accept: 'application/xml;q=1, */*;q=0' },
      { 'user-agent': 'u'.repeat(8000) },
      { 'user-agent': '\u00c0\u00c1\u00ff' },
      { 'content-encoding': 'gzip' },
      { 'accept-encoding': 'br;q=1e999' },
      { host: 'evil.example' },
    ),
    weight: 2,
  },
);

function caseArb(op: Operation, world: World): fc.Arbitrary<Case> {
  return fc
    .record({
      actor: fc.constantFrom<Actor>('admin', 'admin', 'viewer', 'anonymous'),
      path: pathArb(op, world.ids),
      query: queryArb(op, world.ids),
      body: bodyArb(op, world.ids),
      extra: headerArb,
    })
    .map(({ actor, path, query, body, extra }) => {
      const headers: Record<string, string> = { 'user-agent': 'gatepool-fuzz/1.0' };
      if (actor !== 'anonymous') headers.authorization = `Bearer ${world[actor].token}`;
      if (body.type) headers['content-type'] = body.type;
      Object.assign(headers, extra);
      return { actor, path: path + query, headers, body: body.body };
    });
}

const clip = (s: string | undefined, n = 600) =>
  s === undefined ? undefined : s.length > n ? `${s.slice(0, n)}… (${s.length} chars)` : s;

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
    let sent = 0;
    for (const op of ops) {
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
    }
    const health = await api(tp).get('/healthz');
    const elapsed = Date.now() - started;
    console.info(
      `fuzz ${driver}: ${ops.length} operations, ${sent} requests in ${elapsed} ms (seed ${SEED}, ${RUNS} runs each)`,
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
