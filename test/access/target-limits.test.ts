/**
 * A custom role limited to some access targets (`targets: ['orders-*']`): it connects to the
 * targets it names through a real gateway, is refused the others (404 when it cannot see them,
 * 403 naming the permission and target when it can), lists only what it may, and an edit that
 * drops a target cuts the open connections to it. Real CLI, platform and gateway (scenario.ts).
 */
import net from 'node:net';
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addIdentity, createSecondOrg, waitFor } from '../helpers/platform.js';
import { within } from '../tunnel/harness.js';
import { gatepool, startConnect, startScenario, type AccessScenario } from './scenario.js';

/** Sends `text` through a forwarded port to the hash target; its answer when kept open. */
function openConnection(port: number) {
  const sock = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true });
  let answer = '';
  sock.on('error', () => undefined);
  sock.setEncoding('utf8').on('data', (d: string) => (answer += d));
  const closed = new Promise<void>((r) => sock.once('close', () => r()));
  return {
    closed,
    isClosed: () => sock.destroyed,
    send: (text: string) => sock.write(text),
    async finish(): Promise<string> {
      sock.end();
      await within(closed, 10_000, 'the connection to end');
      return answer;
    },
  };
}

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');
const perm = (action: string, targets?: string[]) => ({
  subject: 'AccessTarget',
  action,
  ...(targets ? { targets } : {}),
});

describe('access targets limited by a custom role', () => {
  let s: AccessScenario;
  const env = (token: string) => ({ GATEPOOL_PLATFORM: s.tp.url, GATEPOOL_TOKEN: token });
  const ids: Record<string, string> = {};

  beforeAll(async () => {
    s = await startScenario(1);
    for (const name of ['orders-db', 'orders-cache', 'billing-db'])
      ids[name] = (
        await s.target({ name, host: '127.0.0.1', port: s.hash.port, protocol: 'tcp' })
      ).id;
    const roles = [
      // Sees and reaches the orders targets only.
      {
        slug: 'orders-only',
        permissions: [perm('list', ['orders-*']), perm('connect', ['orders-*'])],
      },
      // Sees every target, reaches the orders targets only.
      { slug: 'orders-connect', permissions: [perm('list'), perm('connect', ['orders-*'])] },
      {
        slug: 'editable',
        permissions: [perm('list'), perm('connect', ['orders-*', 'billing-db'])],
      },
    ];
    for (const r of roles) {
      const res = await s.admin.client.post('/api/v1/roles', { name: r.slug, ...r });
      if (res.status !== 201) throw new Error(`role ${r.slug}: ${res.status} ${res.text}`);
    }
  }, 120_000);
  afterAll(async () => {
    await s?.close();
  });

  it('connects to a matching target through the gateway; refuses the others', async () => {
    const bot = await addIdentity(s.tp, s.admin, 'orders-only');
    const c = await startConnect('orders-db', env(bot.token));
    try {
      const conn = openConnection(c.port);
      conn.send('through the pool');
      expect(await conn.finish()).toBe(sha256('through the pool'));
    } finally {
      await c.stop();
    }

    // billing-db is invisible to this role: the same 404 as a name that does not exist.
    const hidden = await bot.client.get('/api/v1/access-targets/billing-db/connect');
    expect(hidden.status).toBe(404);
    expect(hidden.body.error.message).toBe('Access target "billing-db" not found.');
    expect(
      (await bot.client.get(`/api/v1/access-targets/${ids['billing-db']}/connect`)).status,
    ).toBe(404);
    const cli = await gatepool(['connect', 'billing-db'], env(bot.token));
    expect(cli.code).not.toBe(0);
    expect(cli.stderr).toMatch(/Access target "billing-db" not found/);

    // A role that sees it but may not connect to it: 403 naming the permission and the target.
    const seer = await addIdentity(s.tp, s.admin, 'orders-connect');
    const refused = await seer.client.get('/api/v1/access-targets/billing-db/connect');
    expect(refused.status).toBe(403);
    expect(refused.body.error.message).toBe(
      'Permission denied: AccessTarget:connect on billing-db (role "orders-connect" allows orders-*).',
    );
    expect(refused.body.error.details).toEqual({
      action: 'connect',
      subject: 'AccessTarget',
      target: 'billing-db',
    });
    const seerCli = await gatepool(['connect', 'billing-db'], env(seer.token));
    expect(seerCli.code).not.toBe(0);
    expect(seerCli.stderr).toMatch(/Permission denied: AccessTarget:connect on billing-db/);
    expect((await seer.client.get('/api/v1/access-targets/orders-cache/connect')).status).toBe(200);
  });

  it('lists only the targets a limited list matches', async () => {
    const bot = await addIdentity(s.tp, s.admin, 'orders-only');
    const names = async (limit: number) => {
      const seen: string[] = [];
      let cursor: string | null = null;
      do {
        const q: string = cursor ? `&cursor=${encodeURIComponent(cursor)}` : '';
        const res = await bot.client.get(`/api/v1/access-targets?limit=${limit}${q}`);
        expect(res.status).toBe(200);
        seen.push(...res.body.items.map((t: { name: string }) => t.name));
        cursor = res.body.nextCursor;
      } while (cursor);
      return seen;
    };
    expect(await names(200)).toEqual(['orders-db', 'orders-cache']);
    // The limit is applied in the query: pages of one still hold one matching target each.
    expect(await names(1)).toEqual(['orders-db', 'orders-cache']);
    const byName = await bot.client.get('/api/v1/access-targets/billing-db');
    expect(byName.status).toBe(404);
    expect((await bot.client.get(`/api/v1/access-targets/${ids['billing-db']}`)).status).toBe(404);
    expect((await bot.client.get('/api/v1/access-targets/orders-db')).body.canConnect).toBe(true);

    const listed = await gatepool(['targets'], env(bot.token));
    expect(listed.code).toBe(0);
    expect(listed.stdout).toMatch(/^orders-db\s/m);
    expect(listed.stdout).toMatch(/^orders-cache\s/m);
    expect(listed.stdout).not.toMatch(/billing-db/);

    // A role that sees everything but connects to some: canConnect says which.
    const seer = await addIdentity(s.tp, s.admin, 'orders-connect');
    const all = (await seer.client.get('/api/v1/access-targets')).body.items as {
      name: string;
      canConnect: boolean;
    }[];
    expect(Object.fromEntries(all.map((t) => [t.name, t.canConnect]))).toEqual({
      'orders-db': true,
      'orders-cache': true,
      'billing-db': false,
    });
    const seerCli = await gatepool(['targets'], env(seer.token));
    expect(seerCli.stdout).not.toMatch(/billing-db/);
  });

  it("a pool's connected resources name only the targets the role may see", async () => {
    const role = await s.admin.client.post('/api/v1/roles', {
      name: 'orders-pools',
      slug: 'orders-pools',
      permissions: [{ subject: 'GatewayPool', action: 'list' }, perm('list', ['orders-*'])],
    });
    expect(role.status).toBe(201);
    const bot = await addIdentity(s.tp, s.admin, 'orders-pools');
    const seen = await bot.client.get(`/api/v1/gateway-pools/${s.poolId}/resources`);
    expect(seen.status).toBe(200);
    expect(seen.body.items.map((c: { name: string }) => c.name).sort()).toEqual([
      'orders-cache',
      'orders-db',
    ]);
    // billing-db is counted, never named.
    expect(seen.body.hidden).toBe(1);
    expect(JSON.stringify(seen.body)).not.toContain('billing');
    const all = await s.admin.client.get(`/api/v1/gateway-pools/${s.poolId}/resources`);
    expect(all.body.items).toHaveLength(3);
    expect(all.body.hidden).toBe(0);
  });

  it('an edit that drops a target cuts open connections to it, not to the others', async () => {
    const bot = await addIdentity(s.tp, s.admin, 'editable');
    const orders = await startConnect('orders-db', env(bot.token));
    const billing = await startConnect('billing-db', env(bot.token));
    try {
      const cut = openConnection(orders.port);
      const kept = openConnection(billing.port);
      cut.send('x');
      kept.send('y');
      await waitFor(
        async () =>
          (await fetch(`${s.tp.url}/metrics`).then((r) => r.text())).includes(
            'gatepool_access_connections_open 2',
          ),
        5_000,
        'two open connections',
      );
      const edited = await s.admin.client.patch('/api/v1/roles/editable', {
        permissions: [perm('list'), perm('connect', ['billing-db'])],
      });
      expect(edited.status).toBe(200);
      await within(cut.closed, 3_000, 'the connection to orders-db to be cut');
      await waitFor(() => /revoked/.test(orders.stderr()), 3_000, 'connect to say why');
      expect(orders.stderr()).toMatch(
        /closed: access to orders-db revoked: Permission denied: AccessTarget:connect on orders-db \(role "editable" allows billing-db\)\.$/m,
      );
      expect(kept.isClosed()).toBe(false);
      // The CLI's standby for the next connection is checked again at its open: refused too.
      const after = openConnection(orders.port);
      after.send('w');
      await within(after.closed, 5_000, 'the next connection to orders-db to be refused');
      await waitFor(
        () => orders.stderr().split('AccessTarget:connect on orders-db').length > 2,
        3_000,
        'connect to say why the next connection was refused',
      );
      kept.send('z');
      expect(await kept.finish()).toBe(sha256('yz'));

      const entry = await waitFor(
        async () => {
          const res = await s.admin.client.get('/api/v1/audit-logs?event=access.disconnect');
          return res.body.items?.find(
            (e: { actor: { id: string }; metadata: { target: string } }) =>
              e.actor.id === bot.id && e.metadata.target === 'orders-db',
          );
        },
        5_000,
        'access.disconnect entry',
      );
      expect(entry.metadata).toMatchObject({ result: 'revoked' });
    } finally {
      await orders.stop();
      await billing.stop();
    }
  });

  it("another organization's targets stay not found", async () => {
    const other = await createSecondOrg(s.tp);
    for (const path of [
      `/api/v1/access-targets/${ids['orders-db']}`,
      `/api/v1/access-targets/${ids['orders-db']}/connect`,
      '/api/v1/access-targets/orders-db/connect',
    ])
      expect((await other.client.get(path)).status, path).toBe(404);
    expect((await other.client.get('/api/v1/access-targets')).body.items).toEqual([]);
  });
});
