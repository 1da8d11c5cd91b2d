/**
 * Custom roles limited to access targets (`targets` on AccessTarget list/connect): what the
 * roles API accepts and shows, and that a limited permission never grants more than itself.
 * Connections through real gateways are in target-limits.test.ts.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { accessTargets } from '../../src/server/db/schema.js';
import {
  addIdentity,
  addUser,
  bootstrap,
  createSecondOrg,
  DRIVERS,
  startTestPlatform,
  type Account,
  type TestPlatform,
} from '../helpers/platform.js';

const connect = (targets?: string[]) => ({
  subject: 'AccessTarget',
  action: 'connect',
  ...(targets ? { targets } : {}),
});

describe.each(DRIVERS)('roles limited to access targets on %s', (driver) => {
  let tp: TestPlatform;
  let admin: Account;

  beforeAll(async () => {
    tp = await startTestPlatform(driver);
    admin = await bootstrap(tp);
  });
  afterAll(() => tp?.close());

  it('stores, shows and merges a limit', async () => {
    const created = await admin.client.post('/api/v1/roles', {
      slug: 'orders-reader',
      name: 'Orders reader',
      permissions: [
        { subject: 'AccessTarget', action: 'list', targets: ['orders-*'] },
        connect(['orders-*', 'orders-*']),
        connect(['billing-db']),
        { subject: 'Gateway', action: 'read' },
      ],
    });
    expect(created.status).toBe(201);
    const expected = [
      { subject: 'AccessTarget', action: 'list', targets: ['orders-*'] },
      connect(['orders-*', 'billing-db']),
      { subject: 'Gateway', action: 'read' },
    ];
    expect(created.body.permissions).toEqual(expected);
    const listed = (await admin.client.get('/api/v1/roles')).body.items;
    expect(listed.find((r: { slug: string }) => r.slug === 'orders-reader').permissions).toEqual(
      expected,
    );
    // Built-in roles carry no limit.
    for (const r of listed.filter((x: { builtIn: boolean }) => x.builtIn))
      for (const p of r.permissions) expect(p).not.toHaveProperty('targets');

    // An unlimited row of the same action makes it unlimited (rows add up).
    const widened = await admin.client.patch('/api/v1/roles/orders-reader', {
      permissions: [connect(['orders-*']), connect()],
    });
    expect(widened.status).toBe(200);
    expect(widened.body.permissions).toEqual([connect()]);
  });

  it('refuses a bad limit with 422 naming the entry', async () => {
    const cases: [unknown[], RegExp][] = [
      [[connect([])], /permissions\[0\]\.targets is empty: omit targets to allow every target/],
      [
        [
          { subject: 'Gateway', action: 'read' },
          { subject: 'Gateway', action: 'read', targets: ['x'] },
        ],
        /permissions\[1\]\.targets: only AccessTarget permissions can be limited.*Gateway:read/,
      ],
      [
        [{ subject: 'AccessTarget', action: 'delete', targets: ['x'] }],
        /AccessTarget:list and AccessTarget:connect only, not AccessTarget:delete/,
      ],
      [[connect(['orders-*', 'Orders_DB'])], /permissions\[0\]\.targets\[1\] "Orders_DB" must be/],
      [[connect(['orders-*', 'a b'])], /"a b" must be an access target name or a glob/],
      [[connect(Array.from({ length: 51 }, (_, i) => `t${i}`))], /at most 50 entries \(51 given\)/],
    ];
    for (const [permissions, message] of cases) {
      const res = await admin.client.post('/api/v1/roles', {
        slug: 'bad',
        name: 'Bad',
        permissions,
      });
      expect(res.status, JSON.stringify(permissions)).toBe(422);
      expect(res.body.error.message).toMatch(message);
    }
    const patched = await admin.client.patch('/api/v1/roles/orders-reader', {
      permissions: [connect(['ok', ''])],
    });
    expect(patched.status).toBe(422);
    expect(patched.body.error.message).toMatch(
      /permissions\[0\]\.targets\[1\] "" must not be empty/,
    );
    // In the shape of validation errors, so a form shows it at the field.
    expect(patched.body.error.details).toEqual({
      entry: '',
      fields: [
        {
          field: 'body.permissions.0.targets.1',
          message: 'permissions[0].targets[1] "" must not be empty.',
        },
      ],
    });
    // Not a list of strings at all: a schema error, as for any malformed body.
    const shape = await admin.client.post('/api/v1/roles', {
      slug: 'bad',
      name: 'Bad',
      permissions: [{ subject: 'AccessTarget', action: 'connect', targets: 'orders-*' }],
    });
    expect(shape.status).toBe(400);
  });

  it('a limited holder grants only what its own limit covers', async () => {
    const manage = [
      { subject: 'Role', action: 'read' },
      { subject: 'Role', action: 'create' },
      { subject: 'Role', action: 'edit' },
      { subject: 'Identity', action: 'read' },
      { subject: 'Identity', action: 'create' },
      { subject: 'Identity', action: 'edit' },
      { subject: 'Identity', action: 'delete' },
    ];
    expect(
      (
        await admin.client.post('/api/v1/roles', {
          slug: 'orders-lead',
          name: 'Orders lead',
          permissions: [...manage, connect(['orders-*'])],
        })
      ).status,
    ).toBe(201);
    const lead = await addUser(tp, admin, 'orders-lead');
    const attempt = (slug: string, targets?: string[]) =>
      lead.client.post('/api/v1/roles', { slug, name: slug, permissions: [connect(targets)] });

    const unlimited = await attempt('all-targets');
    expect(unlimited.status).toBe(403);
    expect(unlimited.body.error.details.missing).toEqual(['AccessTarget:connect']);
    const star = await attempt('star', ['*']);
    expect(star.status).toBe(403);
    expect(star.body.error.details.missing).toEqual(['AccessTarget:connect [*]']);
    const other = await attempt('billing', ['orders-db', 'billing-db']);
    expect(other.status).toBe(403);
    expect(other.body.error.message).toContain('AccessTarget:connect [billing-db]');
    expect((await attempt('narrower-glob', ['orders-eu-*'])).status).toBe(403);

    expect((await attempt('orders-db-only', ['orders-db'])).status).toBe(201);
    expect((await attempt('orders-same', ['orders-*'])).status).toBe(201);
    // Widening a role it may edit is refused the same way.
    const widen = await lead.client.patch('/api/v1/roles/orders-db-only', {
      permissions: [connect(['orders-db', 'billing-db'])],
    });
    expect(widen.status).toBe(403);

    // Handing out a role: the built-in member connects to every target.
    const bot = await lead.client.post('/api/v1/identities', {
      name: 'orders-bot',
      role: 'member',
    });
    expect(bot.status).toBe(403);
    expect(bot.body.error.details.missing).toContain('AccessTarget:connect');
    const fine = await lead.client.post('/api/v1/identities', {
      name: 'orders-bot',
      role: 'orders-db-only',
    });
    expect(fine.status).toBe(201);
    // Nor may it manage a holder of an unlimited role (mint its tokens).
    const strong = await addIdentity(tp, admin, 'orders-reader');
    expect((await lead.client.post(`/api/v1/identities/${strong.id}/tokens`, {})).status).toBe(403);
  });

  it('a limited list is applied in the query, on this driver too', async () => {
    // Targets written directly: no gateway is needed to list them (test/access/target-limits
    // covers connecting through one).
    const names = ['orders-db', 'orders-eu-1', 'orders', 'billing-db', 'old-orders-db'];
    for (const [i, name] of names.entries())
      await tp.platform.ctx.db.insert(accessTargets).values({
        id: randomUUID(),
        orgId: admin.orgId,
        name,
        host: '127.0.0.1',
        port: 5432,
        protocol: 'tcp',
        createdAt: new Date(Date.UTC(2026, 0, 1, 0, 0, i)),
      });
    const created = await admin.client.post('/api/v1/roles', {
      slug: 'orders-lister',
      name: 'Orders lister',
      permissions: [
        { subject: 'AccessTarget', action: 'list', targets: ['orders-*', 'billing-db'] },
        connect(['orders-db']),
      ],
    });
    expect(created.status).toBe(201);
    const bot = await addIdentity(tp, admin, 'orders-lister');
    const seen: { name: string; canConnect: boolean }[] = [];
    let cursor: string | null = null;
    do {
      const q: string = cursor ? `&cursor=${encodeURIComponent(cursor)}` : '';
      const res = await bot.client.get(`/api/v1/access-targets?limit=1${q}`);
      expect(res.status).toBe(200);
      seen.push(...res.body.items);
      cursor = res.body.nextCursor;
    } while (cursor);
    expect(seen.map((t) => [t.name, t.canConnect])).toEqual([
      ['orders-db', true],
      ['orders-eu-1', false],
      ['billing-db', false],
    ]);
    expect((await bot.client.get('/api/v1/access-targets/old-orders-db')).status).toBe(404);
    expect((await bot.client.get('/api/v1/access-targets/orders')).status).toBe(404);
    // Seen but not allowed: 403 naming permission and target; unseen: 404.
    const refused = await bot.client.get('/api/v1/access-targets/billing-db/connect');
    expect(refused.status).toBe(403);
    expect(refused.body.error.message).toBe(
      'Permission denied: AccessTarget:connect on billing-db (role "orders-lister" allows orders-db).',
    );
    expect((await bot.client.get('/api/v1/access-targets/orders/connect')).status).toBe(404);
    // The admin (no limit) still sees them all.
    const all = (await admin.client.get('/api/v1/access-targets?limit=200')).body.items;
    expect(all.map((t: { name: string }) => t.name)).toEqual(expect.arrayContaining(names));
  });

  it("another organization's role stays not found", async () => {
    const other = await createSecondOrg(tp);
    const patch = await other.client.patch('/api/v1/roles/orders-reader', {
      permissions: [connect(['x'])],
    });
    expect(patch.status).toBe(404);
    const roles = (await other.client.get('/api/v1/roles')).body.items;
    expect(roles.map((r: { slug: string }) => r.slug)).not.toContain('orders-reader');
  });
});
