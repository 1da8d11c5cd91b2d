/**
 * Bad input is a 4xx naming the problem, never a 500: targeted cases for field naming, and a
 * sweep of hostile bodies over every discovered route that takes one.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  addIdentity,
  api,
  bootstrap,
  DRIVERS,
  TEST_PASSWORD,
  type Account,
  type ApiResponse,
  type TestPlatform,
  startTestPlatform,
} from '../helpers/platform.js';
import { apiRoutes, fillPath, routeName } from '../helpers/routes.js';

vi.mock('fastify', async (importOriginal) =>
  (await import('../helpers/routes.js')).withRouteCollector(
    await importOriginal<{ default: unknown }>(),
  ),
);

const MB = 1024 * 1024;
const brief = (res: ApiResponse) => `${res.status} ${res.text.slice(0, 300)}`;

/** 400 `validation_failed` whose details name `field` (e.g. `body.email`). */
function expectFieldError(res: ApiResponse, field: string, message?: RegExp) {
  expect(res.status, brief(res)).toBe(400);
  expect(res.body.error.code).toBe('validation_failed');
  const fields = res.body.error.details.fields as { field: string; message: string }[];
  const hit = fields.find((f) => f.field === field);
  expect(hit, `${field} in ${JSON.stringify(fields)}`).toBeDefined();
  expect(res.body.error.message).toContain(field);
  if (message) expect(hit!.message).toMatch(message);
}

describe.each(DRIVERS)('input validation on %s', (driver) => {
  let tp: TestPlatform;
  let admin: Account;
  let botId: string;

  beforeAll(async () => {
    tp = await startTestPlatform(driver);
    admin = await bootstrap(tp);
    botId = (await addIdentity(tp, admin, 'viewer')).id;
  });
  afterAll(() => tp?.close());

  it('names the field for wrong types', async () => {
    const c = admin.client;
    expectFieldError(
      await c.post('/api/v1/users', { email: 123, password: TEST_PASSWORD, role: 'viewer' }),
      'body.email',
    );
    expectFieldError(
      await c.post('/api/v1/users', {
        email: 'a@example.com',
        password: TEST_PASSWORD,
        role: ['admin'],
      }),
      'body.role',
    );
    expectFieldError(
      await c.post('/api/v1/identities', { name: null, role: 'viewer' }),
      'body.name',
    );
    expectFieldError(
      await c.patch('/api/v1/organization', { requireGatewayPools: 'yes' }),
      'body.requireGatewayPools',
    );
    expectFieldError(
      await c.post(`/api/v1/identities/${botId}/tokens`, { ttlSeconds: '3600' }),
      'body.ttlSeconds',
    );
    expectFieldError(
      await c.post(`/api/v1/identities/${botId}/tokens`, { ttlSeconds: 90.5 }),
      'body.ttlSeconds',
      /whole number/,
    );
    expectFieldError(
      await c.post(`/api/v1/identities/${botId}/tokens`, { ttlSeconds: 1e9 }),
      'body.ttlSeconds',
      /at most/,
    );
    expectFieldError(await c.put('/api/v1/license', { key: 42 }), 'body.key');
    expectFieldError(
      await c.post('/api/v1/roles', {
        slug: 'ops',
        name: 'Ops',
        permissions: { subject: 'Member', action: 'read' },
      }),
      'body.permissions',
    );
  });

  it('names the field for rule violations', async () => {
    const c = admin.client;
    expectFieldError(
      await c.post('/api/v1/users', {
        email: 'not-an-email',
        password: TEST_PASSWORD,
        role: 'viewer',
      }),
      'body.email',
      /valid email/,
    );
    expectFieldError(
      await c.post('/api/v1/users', { email: 'b@example.com', password: 'short', role: 'viewer' }),
      'body.password',
      /at least 12/,
    );
    expectFieldError(
      await c.post('/api/v1/identities', { name: '   ', role: 'viewer' }),
      'body.name',
      /empty/,
    );
    expectFieldError(
      await c.post('/api/v1/roles', { slug: 'Bad Slug', name: 'x', permissions: [] }),
      'body.slug',
    );
    expectFieldError(
      await c.post('/api/v1/roles', { slug: 'admin', name: 'x', permissions: [] }),
      'body.slug',
      /reserved/,
    );
    expectFieldError(
      await c.post('/api/v1/roles', {
        slug: 'ops',
        name: 'Ops',
        permissions: [{ subject: 'Nope', action: 'read' }],
      }),
      'body.permissions.0',
      /unknown subject/,
    );
    expectFieldError(
      await c.post('/api/v1/roles', {
        slug: 'ops',
        name: 'Ops',
        permissions: [{ subject: 'Member', action: 'fly' }],
      }),
      'body.permissions.0',
      /not valid for Member/,
    );
    expectFieldError(await c.get('/api/v1/users?limit=abc'), 'querystring.limit');
    expectFieldError(await c.get('/api/v1/users?limit=0'), 'querystring.limit');
    expectFieldError(await c.get('/api/v1/audit-logs?from=yesterday'), 'querystring.from');
    expectFieldError(await c.get('/api/v1/audit-logs?cursor=abc'), 'querystring.cursor');
    expectFieldError(await c.get('/api/v1/users/not-a-uuid'), 'params.id', /UUID/);
    expectFieldError(await c.delete(`/api/v1/identities/${botId}/tokens/nope`), 'params.tokenId');
    const badCursor = await c.get('/api/v1/users?cursor=garbage');
    expect(badCursor.status).toBe(400);
    expect(badCursor.body.error.message).toMatch(/cursor/);
    // The login form too (public route).
    expectFieldError(
      await api(tp).post('/api/v1/auth/login', { email: 'a@example.com' }),
      'body.password',
    );
  });

  it('refuses forged cursors and out-of-range dates with 400, never a database error (issue 12)', async () => {
    const c = admin.client;
    const cursorOf = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
    const forged = [
      cursorOf(['2020-01-01T00:00:00.000Z', 'not-a-uuid']),
      cursorOf(['+275760-09-13T00:00:00.000Z', '00000000-0000-4000-8000-000000000000']),
      cursorOf(['0000-01-01T00:00:00.000Z', '00000000-0000-4000-8000-000000000000']),
      cursorOf(['2020-01-01', '00000000-0000-4000-8000-000000000000']),
      cursorOf(['2020-01-01T00:00:00.000Z']),
      cursorOf({ createdAt: '2020-01-01T00:00:00.000Z' }),
      cursorOf([1, 2]),
      cursorOf(null),
      'garbage',
    ];
    const lists = [
      '/api/v1/users',
      '/api/v1/identities',
      '/api/v1/invitations',
      '/api/v1/gateways',
      `/api/v1/identities/${botId}/tokens`,
    ];
    const failures: string[] = [];
    for (const path of lists) {
      for (const cursor of forged) {
        const res = await c.get(`${path}?cursor=${cursor}`);
        if (res.status !== 400 || !/cursor/.test(res.body?.error?.message))
          failures.push(`${path} ${cursor} → ${brief(res)}`);
      }
      // A well-formed cursor of no row is simply an empty page.
      const far = await c.get(
        `${path}?cursor=${cursorOf(['9999-01-01T00:00:00.000Z', '00000000-0000-4000-8000-000000000000'])}`,
      );
      if (far.status !== 200) failures.push(`${path} far cursor → ${brief(far)}`);
    }
    expect(failures).toEqual([]);

    for (const q of [
      'from=0000-01-01T00:00:00Z',
      'to=+275760-09-13T00:00:00Z',
      'from=10000-01-01T00:00:00Z',
    ]) {
      const res = await c.get(`/api/v1/audit-logs?${q}`);
      expect(res.status, `${q}: ${brief(res)}`).toBe(400);
      expect(res.body.error.code).toBe('validation_failed');
    }
    // The edges of the stored range are fine on both drivers.
    const edges = await c.get(
      '/api/v1/audit-logs?from=0001-01-01T00:00:00Z&to=9999-12-31T23:59:59.999Z',
    );
    expect(edges.status, brief(edges)).toBe(200);
    expect(edges.body.items.length).toBeGreaterThan(0);
  });

  it('refuses unknown fields, naming them', async () => {
    const c = admin.client;
    for (const res of [
      await c.post('/api/v1/identities', { name: 'bot-x', role: 'viewer', isAdmin: true }),
      await c.patch('/api/v1/organization', { name: 'Acme', plan: 'enterprise' }),
      await c.get('/api/v1/users?limit=5&isAdmin=true'),
      await api(tp).post('/api/v1/auth/login', {
        email: admin.email,
        password: TEST_PASSWORD,
        remember: true,
      }),
    ]) {
      expect(res.status, brief(res)).toBe(400);
      expect(res.body.error.code).toBe('validation_failed');
      expect(res.body.error.message).toMatch(/isAdmin|plan|remember/);
    }
  });

  it('refuses huge strings: 10 KB names by rule, 1 MB+ bodies by size', async () => {
    const c = admin.client;
    const tenKb = 'n'.repeat(10 * 1024);
    expectFieldError(
      await c.post('/api/v1/identities', { name: tenKb, role: 'viewer' }),
      'body.name',
      /at most 128/,
    );
    expectFieldError(
      await c.post('/api/v1/users', {
        email: `${tenKb}@example.com`,
        password: TEST_PASSWORD,
        role: 'viewer',
      }),
      'body.email',
    );
    expectFieldError(
      await c.post('/api/v1/users', { email: 'c@example.com', password: tenKb, role: 'viewer' }),
      'body.password',
      /at most 256/,
    );
    expectFieldError(await c.patch('/api/v1/organization', { name: tenKb }), 'body.name');
    expectFieldError(
      await c.post('/api/v1/roles', { slug: 'r', name: 'R', description: tenKb, permissions: [] }),
      'body.description',
    );
    expectFieldError(await c.put('/api/v1/license', { key: tenKb }), 'body.key', /too long/);
    expectFieldError(await c.get(`/api/v1/audit-logs?event=${tenKb}`), 'querystring.event');
    const huge = await c.post('/api/v1/identities', { name: 'x'.repeat(MB + 10), role: 'viewer' });
    expect(huge.status).toBe(413);
    expect(huge.body.error.code).toBe('payload_too_large');
    const hugeLogin = await api(tp).post('/api/v1/auth/login', {
      email: 'a@example.com',
      password: 'p'.repeat(2 * MB),
    });
    expect(hugeLogin.status).toBe(413);
  });

  it('refuses malformed bodies with a 4xx and the uniform error shape', async () => {
    const c = admin.client;
    const malformed = await c.post('/api/v1/identities', undefined, {
      raw: '{"name": "bot", "role": ',
    });
    expect(malformed.status).toBe(400);
    expect(malformed.body.error).toEqual({
      code: 'bad_request',
      message: 'Request body is not valid JSON.',
    });
    const empty = await c.post('/api/v1/identities', undefined, {
      raw: '',
      headers: { 'content-type': 'application/json' },
    });
    expect(empty.status).toBe(400);
    expect(empty.body.error.message).toBe(
      'Request body is empty: this request takes a JSON object.',
    );
    const proto = await c.post('/api/v1/identities', undefined, {
      raw: '{"name":"p","role":"viewer","__proto__":{"x":1}}',
    });
    expect(proto.status).toBe(400);
    // Valid JSON: the answer names the key, not a syntax error that is not there.
    expect(proto.body.error.message).toContain('"__proto__"');
    const ctor = await c.post('/api/v1/identities', undefined, {
      raw: '{"name":"p","role":"viewer","constructor":{"prototype":{"x":1}}}',
    });
    expect(ctor.status).toBe(400);
    expect(ctor.body.error.message).toContain('constructor.prototype');
    expect((await c.get('/api/v1/identities')).body.items ?? []).not.toContainEqual(
      expect.objectContaining({ name: 'p' }),
    );
    const text = await c.post('/api/v1/identities', undefined, {
      raw: 'name=bot',
      headers: { 'content-type': 'text/plain' },
    });
    expect(text.status).toBe(400);
    const xml = await c.post('/api/v1/identities', undefined, {
      raw: '<name>bot</name>',
      headers: { 'content-type': 'application/xml' },
    });
    expect(xml.status).toBe(415);
    expect(xml.body.error.code).toBe('unsupported_media_type');
    const arr = await c.post('/api/v1/identities', [{ name: 'x', role: 'viewer' }]);
    expect(arr.status).toBe(400);
    const missing = await c.post('/api/v1/identities');
    expect(missing.status).toBe(400);
  });

  it('takes an empty JSON body on a route without one as no body (clients send the header on DELETE)', async () => {
    const c = admin.client;
    const doomed = await addIdentity(tp, admin, 'viewer');
    const json = { headers: { 'content-type': 'application/json' }, raw: '' };
    const del = await c.delete(`/api/v1/identities/${doomed.id}`, json);
    expect(del.status, brief(del)).toBeLessThan(300);
    expect((await c.get(`/api/v1/identities/${doomed.id}`)).status).toBe(404);
    // A route that needs a body still says it is missing.
    const post = await c.post('/api/v1/identities', undefined, json);
    expect(post.status).toBe(400);
  });

  it('stores awkward but valid text or refuses it, never failing (NUL bytes, emoji, RTL)', async () => {
    const c = admin.client;
    expectFieldError(
      await c.post('/api/v1/identities', { name: 'bad\u0000name', role: 'viewer' }),
      'body.name',
      /NUL/,
    );
    const nulOrg = await c.patch('/api/v1/organization', { name: 'Acme\u0000' });
    expect(nulOrg.status, brief(nulOrg)).toBe(400);
    const nulEvent = await c.get(`/api/v1/audit-logs?event=${encodeURIComponent('a\u0000b')}`);
    expect(nulEvent.status, brief(nulEvent)).toBeLessThan(500);
    const nulActor = await c.get(`/api/v1/audit-logs?actorId=${encodeURIComponent('\u0000')}`);
    expect(nulActor.status, brief(nulActor)).toBeLessThan(500);
    const fancy = await c.post('/api/v1/identities', {
      name: 'ボット 🤖 مرحبا',
      role: 'viewer',
    });
    expect(fancy.status, brief(fancy)).toBe(201);
    expect((await c.get(`/api/v1/identities/${fancy.body.id}`)).body.name).toBe('ボット 🤖 مرحبا');
    // A text-direction override would let a name display as another (QA3 F14): refused.
    expectFieldError(
      await c.post('/api/v1/identities', { name: 'ボット \u202Eevil', role: 'viewer' }),
      'body.name',
      /text-direction/,
    );
    const lone = await c.post('/api/v1/identities', undefined, {
      raw: '{"name":"lone \\ud800","role":"viewer"}',
    });
    expectFieldError(lone, 'body.name', /invalid Unicode/);
  });

  it('answers every route that takes a body with a 4xx for hostile bodies, never a 500', async () => {
    const routes = apiRoutes(tp.platform.app).filter((r) => r.hasBody);
    expect(routes.length).toBeGreaterThan(10);
    const bodies: { label: string; raw: string }[] = [
      { label: 'malformed', raw: '{"a":' },
      { label: 'array', raw: '[1,2,3]' },
      { label: 'string', raw: '"hello"' },
      { label: 'number', raw: '42' },
      { label: 'null', raw: 'null' },
      { label: 'unknown field', raw: JSON.stringify({ unexpectedField: 'x' }) },
      { label: 'deep nesting', raw: '['.repeat(5000) + ']'.repeat(5000) },
      { label: 'huge', raw: JSON.stringify({ name: 'x'.repeat(MB + 1) }) },
    ];
    const failures: string[] = [];
    for (const r of routes) {
      for (const { label, raw } of bodies) {
        const res = await api(tp, admin.token).send(
          r.method,
          fillPath(r.url, { id: botId }),
          undefined,
          { raw },
        );
        const ok =
          res.status >= 400 && res.status < 500 && typeof res.body?.error?.code === 'string';
        if (!ok) failures.push(`${routeName(r)} [${label}] → ${brief(res)}`);
      }
    }
    expect(failures).toEqual([]);
  });
});
