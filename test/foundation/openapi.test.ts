/**
 * The OpenAPI document as a client generator needs it (issue 12): valid OpenAPI 3 (every $ref
 * resolves, every operation has responses, path parameters match the templates), a unique
 * camelCase operationId per /api/v1 operation, a response schema for each success status,
 * and every success status an operation really answers declared. The last is observed: an
 * admin sends schema-valid requests with real IDs to every operation (see test/fuzz).
 * That routes are in the document at all is test/foundation/platform.test.ts's job.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, DRIVERS, startTestPlatform, type TestPlatform } from '../helpers/platform.js';
import { HOLDS_OPEN, runOrder, validCaseArb } from '../fuzz/cases.js';
import {
  HTTP_METHODS,
  operationName,
  operations,
  type OpenApiDocument,
  type Operation,
} from '../fuzz/document.js';
import { closeAgent, sendRaw } from '../fuzz/http.js';
import { seedWorld, type World } from '../fuzz/world.js';

const SWEEP_RUNS = Number(process.env.GATEPOOL_OPENAPI_SWEEP_RUNS ?? 6);
const SEED = Number(process.env.GATEPOOL_FUZZ_SEED ?? Date.now() % 2 ** 31);

async function fetchDocument(tp: TestPlatform): Promise<OpenApiDocument> {
  const res = await api(tp).get('/api/docs/json');
  if (res.status !== 200) throw new Error(`GET /api/docs/json answered ${res.status}`);
  return res.body as OpenApiDocument;
}

/** Every `$ref` string anywhere in `node`, with where it was found. */
function refs(node: unknown, at: string, out: { ref: string; at: string }[] = []) {
  if (Array.isArray(node)) node.forEach((v, i) => refs(v, `${at}/${i}`, out));
  else if (node && typeof node === 'object')
    for (const [k, v] of Object.entries(node)) {
      if (k === '$ref' && typeof v === 'string') out.push({ ref: v, at });
      else refs(v, `${at}/${k}`, out);
    }
  return out;
}

/** Resolves a local JSON pointer (`#/components/schemas/X`); undefined when it points nowhere. */
function resolvePointer(doc: unknown, ref: string): unknown {
  if (!ref.startsWith('#/')) return undefined;
  let node: unknown = doc;
  for (const raw of ref.slice(2).split('/')) {
    const key = raw.replaceAll('~1', '/').replaceAll('~0', '~');
    if (!node || typeof node !== 'object' || !Object.hasOwn(node, key)) return undefined;
    node = (node as Record<string, unknown>)[key];
  }
  return node;
}

const isSuccess = (status: string) => /^2\d\d$/.test(status);

/** A success answer with a body must say what the body is; 204 has none to describe. */
function lacksSchema(op: Operation, status: string): boolean {
  if (status === '204') return false;
  const response = op.op.responses?.[status];
  return !response?.content?.['application/json']?.schema;
}

describe('OpenAPI document', () => {
  let tp: TestPlatform;
  let doc: OpenApiDocument;
  let ops: Operation[];

  // The document is built from the route schemas alone; one driver is enough to read it.
  beforeAll(async () => {
    tp = await startTestPlatform('pglite');
    doc = await fetchDocument(tp);
    ops = operations(doc);
  });
  afterAll(() => tp?.close());

  it('is OpenAPI 3 a client generator can read: every $ref resolves, every operation has responses', () => {
    expect(doc.openapi).toMatch(/^3\.\d+\.\d+$/);
    expect(doc.info).toMatchObject({ title: expect.any(String), version: expect.any(String) });
    const dangling = refs(doc, '#')
      .filter(({ ref }) => resolvePointer(doc, ref) === undefined)
      .map(({ ref, at }) => `${at}: ${ref}`);
    expect(dangling, 'unresolvable $ref').toEqual([]);

    const problems: string[] = [];
    for (const [path, item] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(item)) {
        if (!HTTP_METHODS.includes(method)) continue;
        const name = `${method.toUpperCase()} ${path}`;
        const responses = Object.entries(op.responses ?? {});
        if (!responses.length) problems.push(`${name}: no responses`);
        for (const [status, response] of responses) {
          if (!/^([1-5]\d\d|[1-5]XX|default)$/.test(status))
            problems.push(`${name}: response key "${status}" is not a status code`);
          if (typeof response.description !== 'string')
            problems.push(`${name} ${status}: no description (required by OpenAPI 3)`);
        }
      }
    }
    expect(problems).toEqual([]);
  });

  it('path parameters match the path templates: each {name} declared, required, and nothing extra', () => {
    const problems: string[] = [];
    for (const o of ops) {
      const inTemplate = [...o.path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]);
      const declared = o.pathParams.map((p) => p.name);
      for (const name of inTemplate)
        if (!declared.includes(name ?? ''))
          problems.push(`${operationName(o)}: {${name}} not declared`);
      for (const p of o.pathParams) {
        if (!inTemplate.includes(p.name))
          problems.push(`${operationName(o)}: path parameter ${p.name} not in the path`);
        if (p.required !== true)
          problems.push(`${operationName(o)}: path parameter ${p.name} must be required`);
      }
    }
    expect(problems).toEqual([]);
  });

  it('every /api/v1 operation has a unique camelCase operationId', () => {
    expect(ops.length).toBeGreaterThan(20);
    const missing = ops.filter((o) => !o.op.operationId).map(operationName);
    expect(missing, 'operations without an operationId').toEqual([]);
    const badlyNamed = ops
      .filter((o) => o.op.operationId && !/^[a-z][a-zA-Z0-9]*$/.test(o.op.operationId))
      .map((o) => `${operationName(o)}: ${o.op.operationId}`);
    expect(badlyNamed, 'operationIds that are not camelCase').toEqual([]);
    const seen = new Map<string, string>();
    const duplicates: string[] = [];
    for (const o of ops) {
      const id = o.op.operationId;
      if (!id) continue;
      const first = seen.get(id);
      if (first) duplicates.push(`${id}: ${first} and ${operationName(o)}`);
      else seen.set(id, operationName(o));
    }
    expect(duplicates, 'operationIds used twice').toEqual([]);
  });

  it('every /api/v1 operation declares a success response, each with a JSON schema (204: none needed)', () => {
    const problems: string[] = [];
    for (const o of ops) {
      const successes = Object.keys(o.op.responses ?? {}).filter(isSuccess);
      if (!successes.length) problems.push(`${operationName(o)}: no 2xx response declared`);
      for (const status of successes)
        if (lacksSchema(o, status))
          problems.push(`${operationName(o)}: ${status} has no application/json schema`);
    }
    expect(problems, 'operations whose success answers a client cannot type').toEqual([]);
  });
});

describe.each(DRIVERS)('OpenAPI document against real answers on %s', (driver) => {
  let tp: TestPlatform;
  let world: World;
  let doc: OpenApiDocument;

  beforeAll(async () => {
    tp = await startTestPlatform(driver);
    world = await seedWorld(tp);
    doc = await fetchDocument(tp);
  }, 60_000);
  afterAll(async () => {
    closeAgent();
    await world?.fleet.close();
    await tp?.close();
  });

  it('every success status an operation answers schema-valid admin requests with is declared', async () => {
    // Streams hold the connection open; their own tests check what they send.
    const ops = runOrder(operations(doc)).filter((o) => !HOLDS_OPEN.test(o.path));
    const undeclared = new Map<string, string>();
    const answered = new Set<string>();
    for (const op of ops) {
      const declared = Object.keys(op.op.responses ?? {});
      await fc.assert(
        fc.asyncProperty(validCaseArb(op, world), async (c) => {
          const res = await sendRaw(tp.url, {
            method: op.method,
            path: c.path,
            headers: c.headers,
            body: c.body,
          });
          if (res.status < 200 || res.status > 299) return;
          answered.add(operationName(op));
          if (!declared.includes(String(res.status)))
            undeclared.set(
              `${operationName(op)} answered ${res.status}`,
              `declared: ${declared.join(', ')}; e.g. ${op.method} ${c.path.slice(0, 120)}`,
            );
        }),
        { numRuns: SWEEP_RUNS, seed: SEED + ops.indexOf(op) },
      );
      await world.revive();
    }
    console.info(
      `openapi sweep ${driver}: ${answered.size} of ${ops.length} operations answered a success (seed ${SEED}, ${SWEEP_RUNS} runs each)`,
    );
    expect(answered.size, 'operations that answered a success at all').toBeGreaterThan(10);
    expect(
      [...undeclared].map(([what, detail]) => `${what} (${detail})`),
      `success statuses missing from the document (seed ${SEED})`,
    ).toEqual([]);
  }, 300_000);
});
