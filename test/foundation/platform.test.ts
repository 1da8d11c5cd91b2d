/** Organization settings, health probes, OpenAPI document. */
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  addUser,
  api,
  bootstrap,
  createSecondOrg,
  DRIVERS,
  startTestPlatform,
  type Account,
  type Json,
  type TestPlatform,
} from '../helpers/platform.js';
import { apiRoutes, routeName } from '../helpers/routes.js';

vi.mock('fastify', async (importOriginal) =>
  (await import('../helpers/routes.js')).withRouteCollector(
    await importOriginal<{ default: unknown }>(),
  ),
);

describe.each(DRIVERS)('organization settings, docs and probes on %s', (driver) => {
  let tp: TestPlatform;
  let admin: Account;
  beforeAll(async () => {
    tp = await startTestPlatform(driver);
    admin = await bootstrap(tp, { organizationName: 'Acme' });
  });
  // The last test closes the database under the platform: closing again may fail.
  afterAll(() => tp?.close().catch(() => undefined));

  it('shows the organization to every member', async () => {
    const viewer = await addUser(tp, admin, 'viewer');
    const res = await viewer.client.get('/api/v1/organization');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      id: admin.orgId,
      name: 'Acme',
      requireGatewayPools: false,
      createdAt: expect.any(String),
      updatedAt: expect.any(String),
    });
    expect((await viewer.client.patch('/api/v1/organization', { name: 'Mine' })).status).toBe(403);
  });

  it('renames and sets requireGatewayPools, auditing each real change once', async () => {
    const c = admin.client;
    const empty = await c.patch('/api/v1/organization', {});
    expect(empty.status).toBe(400);
    expect(empty.body.error.message).toMatch(/name, requireGatewayPools/);

    const renamed = await c.patch('/api/v1/organization', { name: 'Acme Corp' });
    expect(renamed.status).toBe(200);
    expect(renamed.body).toMatchObject({ name: 'Acme Corp', requireGatewayPools: false });
    const policy = await c.patch('/api/v1/organization', { requireGatewayPools: true });
    expect(policy.body).toMatchObject({ name: 'Acme Corp', requireGatewayPools: true });
    expect(policy.body.warnings).toEqual([]); // nothing is pinned to a single gateway
    expect(Date.parse(policy.body.updatedAt)).toBeGreaterThanOrEqual(
      Date.parse(renamed.body.updatedAt),
    );
    // Same values again: no new audit entries.
    await c.patch('/api/v1/organization', { name: 'Acme Corp', requireGatewayPools: true });
    expect((await c.get('/api/v1/organization')).body.requireGatewayPools).toBe(true);

    const log = await c.get('/api/v1/audit-logs?event=organization.*');
    expect(log.body.items.map((e: Json) => [e.event, e.metadata])).toEqual([
      ['organization.policy-update', { policy: 'requireGatewayPools', from: false, to: true }],
      ['organization.update', { from: 'Acme', to: 'Acme Corp' }],
    ]);
    await c.patch('/api/v1/organization', { requireGatewayPools: false });
    const [latest] = (await c.get('/api/v1/audit-logs?limit=1')).body.items;
    expect(latest).toMatchObject({
      event: 'organization.policy-update',
      actor: { type: 'user', id: admin.id },
      metadata: { from: true, to: false },
    });
  });

  it("refuses a rename to another organization's name, ignoring case, and keeps its own", async () => {
    const other = await createSecondOrg(tp, 'Beta Works');
    const taken = await admin.client.patch('/api/v1/organization', { name: 'beta WORKS' });
    expect(taken.status).toBe(409);
    expect(taken.body.error.message).toMatch(/already named "Beta Works".*ignoring case/);
    expect(taken.text).not.toContain(other.orgId);
    expect((await admin.client.get('/api/v1/organization')).body.name).not.toMatch(/beta/i);
    // Its own name in another case is no conflict.
    const mine = (await other.client.get('/api/v1/organization')).body.name;
    const recased = await other.client.patch('/api/v1/organization', { name: mine.toUpperCase() });
    expect(recased.status).toBe(200);
    expect(recased.body.name).toBe('BETA WORKS');
  });

  it('serves a valid OpenAPI 3 document listing every API route', async () => {
    const res = await api(tp).get('/api/docs/json');
    expect(res.status).toBe(200);
    const doc = res.body;
    expect(doc.openapi).toMatch(/^3\.\d+\.\d+$/);
    expect(doc.info).toMatchObject({ title: expect.any(String), version: expect.any(String) });
    expect(doc.components.securitySchemes.bearer).toEqual({ type: 'http', scheme: 'bearer' });

    const missing: string[] = [];
    for (const r of apiRoutes(tp.platform.app).filter((x) => x.method !== 'HEAD')) {
      const path = r.url.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
      const op = doc.paths[path]?.[r.method.toLowerCase()];
      if (!op) {
        missing.push(routeName(r));
        continue;
      }
      expect(op.responses, routeName(r)).toBeTypeOf('object');
      // Every {param} in the path is declared as a required path parameter.
      for (const [, name] of path.matchAll(/\{([^}]+)\}/g)) {
        const p = (op.parameters ?? []).find((x: Json) => x.in === 'path' && x.name === name);
        expect(p, `${routeName(r)} declares path parameter ${name}`).toMatchObject({
          required: true,
        });
      }
      if (r.hasBody)
        expect(op.requestBody?.content?.['application/json']?.schema, routeName(r)).toBeTypeOf(
          'object',
        );
    }
    expect(missing).toEqual([]);
    // Every local $ref resolves.
    const refs = [...JSON.stringify(doc).matchAll(/"\$ref":"#\/([^"]+)"/g)].map((m) => m[1]!);
    for (const ref of refs) {
      const target = ref
        .split('/')
        .reduce((o: Json, k) => o?.[k.replace(/~1/g, '/').replace(/~0/g, '~')], doc);
      expect(target, ref).toBeDefined();
    }
    // The UI is served too.
    const ui = await api(tp).get('/api/docs/');
    expect(ui.status).toBe(200);
    expect(ui.text).toMatch(/swagger/i);
  });

  it('answers unknown routes with 404 in the error shape', async () => {
    const res = await api(tp).get('/api/v1/nope?x=1');
    expect(res.status).toBe(404);
    expect(res.body.error).toEqual({ code: 'not_found', message: 'No route GET /api/v1/nope.' });
    // A long path is named, not echoed whole.
    const long = await api(tp).get(`/api/v1/${'a'.repeat(5000)}/x`);
    expect(long.status).toBe(404);
    expect(long.body.error.message.length).toBeLessThan(260);
  });

  it('answers a path with broken percent-encoding 400 in the error shape', async () => {
    const res = await api(tp).get('/api/v1/access-targets/%ff');
    expect(res.status).toBe(400);
    expect(res.body).toEqual({
      error: {
        code: 'bad_request',
        message: 'The request path is not valid: it contains a malformed percent-encoding.',
      },
    });
  });

  it('generated its root key into the data dir, mode 0600', () => {
    expect(statSync(join(tp.dataDir, 'root.key')).mode & 0o777).toBe(0o600);
  });

  // Keep last: it closes this platform's database.
  it('answers /healthz always and /readyz while the database is reachable', async () => {
    expect(await api(tp).get('/healthz')).toMatchObject({ status: 200, body: { status: 'ok' } });
    expect(await api(tp).get('/readyz')).toMatchObject({
      status: 200,
      body: { status: 'ready', database: driver },
    });
    await tp.platform.ctx.database.close();
    const down = await api(tp).get('/readyz');
    expect(down.status).toBe(503);
    expect(down.body.error.code).toBe('not_ready');
    expect((await api(tp).get('/healthz')).status).toBe(200);
  });
});
