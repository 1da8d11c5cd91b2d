/**
 * Gateway pools API (issue 4): CRUD, memberships, validation, license, RBAC defaults,
 * org isolation, enrollment into pools, audit. Gateways here are enrolled through the API
 * with a locally made CSR (never connected) unless a test needs a live one.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createGatewayKeyAndCsr } from '../../src/server/gateways/pki.js';
import { AgentFleet } from '../helpers/gateway-agent.js';
import {
  addUser,
  api,
  bootstrap,
  createSecondOrg,
  DRIVERS,
  issueTestLicense,
  startTestPlatform,
  waitFor,
  type Account,
  type TestPlatform,
} from '../helpers/platform.js';

const UPGRADE =
  'Your current plan does not support gateway pools. Please upgrade to an Enterprise plan.';

async function enterprise(account: Account): Promise<void> {
  const key = await issueTestLicense({ plan: 'enterprise', org: account.orgId });
  const res = await account.client.put('/api/v1/license', { key });
  if (res.status !== 200) throw new Error(`license install answered ${res.status}: ${res.text}`);
}

/** Enrolls a gateway through the API (no agent process); returns its id. */
async function enrollGateway(
  tp: TestPlatform,
  account: Account,
  name: string,
  poolIds: string[] = [],
  pools?: string[],
) {
  const token = await account.client.post('/api/v1/gateways/enrollment-tokens', { poolIds });
  if (token.status !== 201) throw new Error(`token answered ${token.status}: ${token.text}`);
  const { csrPem } = await createGatewayKeyAndCsr(name);
  const res = await api(tp).post('/api/v1/gateways/enroll', {
    token: token.body.token,
    name,
    csr: csrPem,
    ...(pools ? { pools } : {}),
  });
  return res;
}

describe.each(DRIVERS)('gateway pools API (%s)', (driver) => {
  let tp: TestPlatform;
  let admin: Account;
  let other: Account;
  const fleet = new AgentFleet();

  beforeAll(async () => {
    tp = await startTestPlatform(driver);
    admin = await bootstrap(tp);
    other = await createSecondOrg(tp);
  });
  afterAll(async () => {
    await fleet.close();
    await tp?.close();
  });

  it('free plan: making or changing pools answers 403 plan_upgrade_required; reading, deleting and removing members do not', async () => {
    const id = '00000000-0000-4000-8000-000000000000';
    for (const [method, path, body] of [
      ['POST', '/api/v1/gateway-pools', { name: 'p' }],
      ['PATCH', `/api/v1/gateway-pools/${id}`, { description: 'x' }],
      ['POST', `/api/v1/gateway-pools/${id}/memberships`, { gatewayId: id }],
      ['PATCH', `/api/v1/gateway-pools/${id}/memberships/${id}`, { weight: 5 }],
    ] as const) {
      const res = await other.client.send(method, path, body);
      expect(res.status, `${method} ${path}`).toBe(403);
      expect(res.body.error).toMatchObject({ code: 'plan_upgrade_required', message: UPGRADE });
    }
    // Pools made before a downgrade keep serving: they must stay visible and removable (QA3 F8).
    expect((await other.client.get('/api/v1/gateway-pools')).body).toEqual({
      items: [],
      nextCursor: null,
    });
    for (const [method, path] of [
      ['GET', `/api/v1/gateway-pools/${id}`],
      ['GET', `/api/v1/gateway-pools/${id}/resources`],
      ['DELETE', `/api/v1/gateway-pools/${id}`],
      ['DELETE', `/api/v1/gateway-pools/${id}/memberships/${id}`],
    ] as const) {
      const res = await other.client.send(method, path);
      expect(res.status, `${method} ${path}`).toBe(404);
    }
  });

  it('creates, lists, shows, updates and deletes pools with validation and 409 on duplicates', async () => {
    await enterprise(admin);
    const created = await admin.client.post('/api/v1/gateway-pools', {
      name: 'dc1-pool',
      description: 'first datacenter',
      minHealthy: 2,
      healthCheckTarget: '10.0.0.5:5432',
    });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({
      name: 'dc1-pool',
      description: 'first datacenter',
      minHealthy: 2,
      healthCheckTarget: '10.0.0.5:5432',
      memberCount: 0,
      healthyMemberCount: 0,
      health: 'empty',
      connectedResourcesCount: 0,
      members: [],
    });
    const dup = await admin.client.post('/api/v1/gateway-pools', { name: 'dc1-pool' });
    expect(dup.status).toBe(409);
    expect(dup.body.error.message).toContain('"dc1-pool"');

    for (const name of ['', 'UPPER', 'has space', 'a'.repeat(33), 'under_score', 'ünï']) {
      const bad = await admin.client.post('/api/v1/gateway-pools', { name });
      expect(bad.status, name).toBe(400);
      expect(bad.body.error.message).toContain(
        'name must be 1-32 characters of lowercase letters, digits and hyphens',
      );
    }
    for (const body of [
      { name: 'ok', minHealthy: -1 },
      { name: 'ok', healthCheckTarget: 'no-port' },
      { name: 'ok', extra: true },
      { name: 'ok', minHealthy: '2' },
    ]) {
      expect(
        (await admin.client.post('/api/v1/gateway-pools', body)).status,
        JSON.stringify(body),
      ).toBe(400);
    }

    const id = created.body.id as string;
    const patched = await admin.client.patch(`/api/v1/gateway-pools/${id}`, {
      name: 'dc1',
      healthCheckTarget: null,
      minHealthy: 1,
    });
    expect(patched.status).toBe(200);
    expect(patched.body).toMatchObject({ name: 'dc1', healthCheckTarget: null, minHealthy: 1 });
    const list = await admin.client.get('/api/v1/gateway-pools');
    expect(list.body.items.map((p: { name: string }) => p.name)).toContain('dc1');
    expect((await admin.client.get(`/api/v1/gateway-pools/${id}/resources`)).body).toEqual({
      items: [],
      hidden: 0,
    });
    // A pool is named by its id or its name wherever a pool is accepted.
    const byName = await admin.client.get('/api/v1/gateway-pools/dc1');
    expect(byName.status).toBe(200);
    expect(byName.body.id).toBe(id);
    expect((await admin.client.get('/api/v1/gateway-pools/no-such-pool')).status).toBe(404);
    const badRef = await admin.client.get('/api/v1/gateway-pools/Not_A_Name');
    expect(badRef.status).toBe(400);
    expect(badRef.body.error.message).toContain('pool ids (UUIDs) or pool names');
    expect((await admin.client.delete(`/api/v1/gateway-pools/${id}`)).status).toBe(204);
    expect((await admin.client.get(`/api/v1/gateway-pools/${id}`)).status).toBe(404);

    const audit = await admin.client.get('/api/v1/audit-logs?event=gateway-pool.*&limit=50');
    const events = audit.body.items.map(
      (e: { event: string; metadata: { pool: string } }) => `${e.event}:${e.metadata.pool}`,
    );
    expect(events).toEqual(
      expect.arrayContaining([
        'gateway-pool.create:dc1-pool',
        'gateway-pool.update:dc1-pool',
        'gateway-pool.delete:dc1',
      ]),
    );
  });

  it('manages memberships with weights and priority tiers, audited with pool and gateway names', async () => {
    const pool = (await admin.client.post('/api/v1/gateway-pools', { name: 'members' })).body;
    const gw = await enrollGateway(tp, admin, 'member-a');
    expect(gw.status).toBe(201);
    const added = await admin.client.post(`/api/v1/gateway-pools/${pool.id}/memberships`, {
      gatewayId: gw.body.gatewayId,
      weight: 200,
      priority: 1,
    });
    expect(added.status).toBe(201);
    expect(added.body.members).toEqual([
      expect.objectContaining({
        id: gw.body.gatewayId,
        name: 'member-a',
        health: 'never-connected',
        weight: 200,
        priority: 1,
      }),
    ]);
    expect(added.body).toMatchObject({ memberCount: 1, healthyMemberCount: 0, health: 'down' });
    expect(
      (
        await admin.client.post(`/api/v1/gateway-pools/${pool.id}/memberships`, {
          gatewayId: gw.body.gatewayId,
        })
      ).status,
    ).toBe(409);
    for (const body of [
      { gatewayId: gw.body.gatewayId, weight: 0 },
      { gatewayId: gw.body.gatewayId, priority: 101 },
      { gatewayId: 'has space' },
      { gatewayId: '' },
    ]) {
      expect(
        (await admin.client.post(`/api/v1/gateway-pools/${pool.id}/memberships`, body)).status,
      ).toBe(400);
    }
    const updated = await admin.client.patch(
      `/api/v1/gateway-pools/${pool.id}/memberships/${gw.body.gatewayId}`,
      { weight: 50 },
    );
    expect(updated.body.members[0]).toMatchObject({ weight: 50, priority: 1 });
    const list = await admin.client.get('/api/v1/gateway-pools');
    expect(list.body.items.find((p: { id: string }) => p.id === pool.id)).toMatchObject({
      memberCount: 1,
      healthyMemberCount: 0,
      health: 'down',
    });
    expect(
      (
        await admin.client.delete(
          `/api/v1/gateway-pools/${pool.id}/memberships/${gw.body.gatewayId}`,
        )
      ).status,
    ).toBe(204);
    expect(
      (
        await admin.client.delete(
          `/api/v1/gateway-pools/${pool.id}/memberships/${gw.body.gatewayId}`,
        )
      ).status,
    ).toBe(404);

    // Memberships go with either side.
    await admin.client.post(`/api/v1/gateway-pools/${pool.id}/memberships`, {
      gatewayId: gw.body.gatewayId,
    });
    const deleted = await admin.client.delete(`/api/v1/gateways/${gw.body.gatewayId}`);
    expect(deleted.status).toBe(200);
    // No consumer uses the pool, so leaving it costs nothing worth a warning.
    expect(deleted.body).toEqual({
      deleted: true,
      leftPools: [{ id: pool.id, name: 'members' }],
      warnings: [],
    });
    expect((await admin.client.get(`/api/v1/gateway-pools/${pool.id}`)).body.members).toEqual([]);
    const gone = await admin.client.get(
      `/api/v1/audit-logs?event=gateway.delete&actorId=${admin.id}&limit=5`,
    );
    expect(gone.body.items[0].metadata).toMatchObject({
      name: 'member-a',
      leftPools: [{ id: pool.id, name: 'members' }],
    });

    const audit = await admin.client.get('/api/v1/audit-logs?event=gateway-pool.member-*&limit=50');
    const entries = audit.body.items.map(
      (e: { event: string; metadata: { pool: string; gateway: string } }) => [
        e.event,
        e.metadata.pool,
        e.metadata.gateway,
      ],
    );
    expect(entries).toEqual(
      expect.arrayContaining([
        ['gateway-pool.member-add', 'members', 'member-a'],
        ['gateway-pool.member-update', 'members', 'member-a'],
        ['gateway-pool.member-remove', 'members', 'member-a'],
      ]),
    );
  });

  it('exports pool metrics per pool id (two orgs may share a name) and drops a deleted pool', async () => {
    await enterprise(admin);
    await enterprise(other);
    const mine = await admin.client.post('/api/v1/gateway-pools', { name: 'metrics-same' });
    const theirs = await other.client.post('/api/v1/gateway-pools', { name: 'metrics-same' });
    expect([mine.status, theirs.status]).toEqual([201, 201]);
    const series = (id: string) =>
      `gatepool_pool_healthy_members{pool="metrics-same",pool_id="${id}"} 0`;
    const scrape = async () => (await fetch(`${tp.url}/metrics`)).text();
    await waitFor(
      async () => {
        const text = await scrape();
        return text.includes(series(mine.body.id)) && text.includes(series(theirs.body.id));
      },
      5000,
      'both pools exported',
    );
    expect((await admin.client.delete('/api/v1/gateway-pools/metrics-same')).status).toBe(204);
    // Gone within an evaluation (250 ms), not left at 0 to fire "pool down" alerts forever.
    await waitFor(
      async () => !(await scrape()).includes(series(mine.body.id)),
      5000,
      'the deleted pool dropped',
    );
    expect(await scrape()).toContain(series(theirs.body.id));
    await other.client.delete('/api/v1/gateway-pools/metrics-same');
  });

  it("tells a pool's and a gateway's history from the audit log by id, however busy the log", async () => {
    await enterprise(admin);
    const pool = await admin.client.post('/api/v1/gateway-pools', { name: 'history' });
    expect(pool.status, pool.text).toBe(201);
    const gw = await enrollGateway(tp, admin, 'history-gw');
    expect(gw.status, gw.text).toBe(201);
    const gwId = gw.body.gatewayId as string;
    const add = await admin.client.post(`/api/v1/gateway-pools/history/memberships`, {
      gatewayId: gwId,
    });
    expect(add.status, add.text).toBe(201);
    // Busy: other pools' events after it, more than a page of them.
    for (let i = 0; i < 5; i++)
      await admin.client.post('/api/v1/gateway-pools', { name: `history-noise-${i}` });
    expect((await admin.client.delete(`/api/v1/gateways/${gwId}`)).status).toBe(200);
    const events = async (query: string) => {
      const res = await admin.client.get(`/api/v1/audit-logs?${query}&limit=200`);
      expect(res.status, res.text).toBe(200);
      return (res.body.items as { event: string }[]).map((e) => e.event);
    };
    // The runtime's own degraded/recovered entries belong to the history too; timing decides.
    const ofPool = (await events(`poolId=${pool.body.id}`)).filter(
      (e) => e !== 'gateway-pool.degraded' && e !== 'gateway-pool.recovered',
    );
    expect(ofPool).toEqual([
      'gateway.delete', // it left the pool with it
      'gateway-pool.member-add',
      'gateway-pool.create',
    ]);
    const ofGateway = await events(`gatewayId=${gwId}`);
    expect(ofGateway[0]).toBe('gateway.delete');
    expect(ofGateway).toContain('gateway-pool.member-add');
    expect(ofGateway).toContain('gateway.enroll');
    expect(ofGateway).not.toContain('gateway-pool.create');
    // Another organization's admin finds nothing of it.
    const theirs = await other.client.get(`/api/v1/audit-logs?poolId=${pool.body.id}`);
    expect(theirs.body.items).toEqual([]);
    const bad = await admin.client.get('/api/v1/audit-logs?poolId=history');
    expect(bad.status).toBe(400);
    expect(bad.body.error.message).toMatch(/poolId must be a gateway pool id/);
  });

  it("answers 404 for another org's pool or gateway, including mixed pairs", async () => {
    await enterprise(other);
    const mine = (await admin.client.post('/api/v1/gateway-pools', { name: 'mine' })).body;
    const myGw = (await enrollGateway(tp, admin, 'mine-gw')).body.gatewayId as string;
    const theirs = (await other.client.post('/api/v1/gateway-pools', { name: 'mine' })).body;
    expect(theirs.id).toBeDefined();
    const theirGw = (await enrollGateway(tp, other, 'their-gw')).body.gatewayId as string;

    for (const [method, path, body] of [
      ['GET', `/api/v1/gateway-pools/${theirs.id}`, undefined],
      ['PATCH', `/api/v1/gateway-pools/${theirs.id}`, { description: 'x' }],
      ['DELETE', `/api/v1/gateway-pools/${theirs.id}`, undefined],
      ['GET', `/api/v1/gateway-pools/${theirs.id}/resources`, undefined],
      ['POST', `/api/v1/gateway-pools/${theirs.id}/memberships`, { gatewayId: myGw }],
      ['POST', `/api/v1/gateway-pools/${mine.id}/memberships`, { gatewayId: theirGw }],
      ['PATCH', `/api/v1/gateway-pools/${mine.id}/memberships/${theirGw}`, { weight: 2 }],
      ['DELETE', `/api/v1/gateway-pools/${mine.id}/memberships/${theirGw}`, undefined],
      ['GET', `/api/v1/gateways/${theirGw}/resources`, undefined],
      ['DELETE', `/api/v1/gateways/${theirGw}`, undefined],
    ] as const) {
      const res = await admin.client.send(method, path, body);
      expect(res.status, `${method} ${path}`).toBe(404);
    }
    expect((await other.client.get(`/api/v1/gateway-pools/${theirs.id}`)).body.members).toEqual([]);
    // A name is looked up in the caller's org only: both orgs have a pool named "mine".
    expect((await admin.client.get('/api/v1/gateway-pools/mine')).body.id).toBe(mine.id);
    expect((await other.client.get('/api/v1/gateway-pools/mine')).body.id).toBe(theirs.id);
    expect((await admin.client.get(`/api/v1/gateways/${myGw}/resources`)).body).toEqual({
      items: [],
      hidden: 0,
    });
  });

  it("memberships name the gateway by id or name, in the caller's org only", async () => {
    const pool = (await admin.client.post('/api/v1/gateway-pools', { name: 'by-name' })).body;
    const gw = (await enrollGateway(tp, admin, 'named-gw')).body.gatewayId as string;
    const base = `/api/v1/gateway-pools/by-name/memberships`;
    const added = await admin.client.post(base, { gatewayId: 'named-gw', weight: 7 });
    expect(added.status, added.text).toBe(201);
    expect(added.body.members).toEqual([
      expect.objectContaining({ id: gw, name: 'named-gw', weight: 7 }),
    ]);
    const again = await admin.client.post(base, { gatewayId: 'named-gw' });
    expect(again.status).toBe(409);
    expect(again.body.error.message).toContain('"named-gw" is already a member of pool "by-name"');
    const changed = await admin.client.patch(`${base}/named-gw`, { priority: 3 });
    expect(changed.status, changed.text).toBe(200);
    expect(changed.body.members[0]).toMatchObject({ id: gw, weight: 7, priority: 3 });

    // Another org's gateway, by name or id, is not found, and the answer says which.
    const theirs = (await enrollGateway(tp, other, 'their-named-gw')).body.gatewayId as string;
    for (const [method, path, body] of [
      ['POST', base, { gatewayId: 'their-named-gw' }],
      ['PATCH', `${base}/their-named-gw`, { weight: 2 }],
      ['DELETE', `${base}/their-named-gw`, undefined],
      ['POST', base, { gatewayId: theirs }],
      ['POST', base, { gatewayId: 'no-such-gw' }],
    ] as const) {
      const res = await admin.client.send(method, path, body);
      expect(res.status, `${method} ${path} ${JSON.stringify(body)}`).toBe(404);
      const named = body && 'gatewayId' in body ? body.gatewayId : 'their-named-gw';
      expect(res.body.error.message).toContain(named);
    }
    // Neither found: the pool is named first, every time.
    const neither = await admin.client.post('/api/v1/gateway-pools/no-such-pool/memberships', {
      gatewayId: 'no-such-gw',
    });
    expect(neither.status).toBe(404);
    expect(neither.body.error.message).toBe('Gateway pool no-such-pool not found.');
    const bad = await admin.client.patch(`${base}/has%20space`, { weight: 2 });
    expect(bad.status).toBe(400);
    expect(bad.body.error.message).toContain(
      'gatewayId must be a gateway id (UUID) or a gateway name',
    );

    expect((await admin.client.delete(`${base}/named-gw`)).status).toBe(204);
    expect((await admin.client.get('/api/v1/gateway-pools/by-name')).body.members).toEqual([]);
    const audit = await admin.client.get('/api/v1/audit-logs?event=gateway-pool.member-*&limit=50');
    const mine = audit.body.items.filter(
      (e: { metadata: { pool: string } }) => e.metadata.pool === pool.name,
    );
    expect(mine.map((e: { event: string }) => e.event).sort()).toEqual([
      'gateway-pool.member-add',
      'gateway-pool.member-remove',
      'gateway-pool.member-update',
    ]);
    expect(
      mine.every((e: { metadata: { gatewayId: string } }) => e.metadata.gatewayId === gw),
    ).toBe(true);
  });

  it('built-in roles: viewer lists, member cannot change pools, admin can', async () => {
    const viewer = await addUser(tp, admin, 'viewer');
    const member = await addUser(tp, admin, 'member');
    expect((await viewer.client.get('/api/v1/gateway-pools')).status).toBe(200);
    const denied = await member.client.post('/api/v1/gateway-pools', { name: 'nope' });
    expect(denied.status).toBe(403);
    expect(denied.body.error.message).toContain('GatewayPool:create');
    expect((await viewer.client.post('/api/v1/gateway-pools', { name: 'nope' })).status).toBe(403);
  });

  it('lists pools a page at a time: every pool once, nextCursor null on the last page', async () => {
    const names = ['page-a', 'page-b', 'page-c', 'page-d', 'page-e'];
    for (const name of names) await admin.client.post('/api/v1/gateway-pools', { name });
    const all = (await admin.client.get('/api/v1/gateway-pools?limit=200')).body;
    expect(all.nextCursor).toBeNull();
    const seen: string[] = [];
    let cursor: string | null = null;
    for (let i = 0; i < 100; i++) {
      const page = await admin.client.get(
        `/api/v1/gateway-pools?limit=2${cursor ? `&cursor=${cursor}` : ''}`,
      );
      expect(page.status).toBe(200);
      expect(page.body.items.length).toBeLessThanOrEqual(2);
      seen.push(...page.body.items.map((p: { name: string }) => p.name));
      cursor = page.body.nextCursor as string | null;
      if (!cursor) break;
    }
    expect(seen).toEqual(all.items.map((p: { name: string }) => p.name));
    expect(seen).toEqual(expect.arrayContaining(names));
    expect(new Set(seen).size).toBe(seen.length);
    const forged = await admin.client.get('/api/v1/gateway-pools?cursor=garbage');
    expect(forged.status).toBe(400);
  });

  it('enrollment tokens with poolIds join the new gateway to those pools; --pool must be allowed by the token', async () => {
    const a = (await admin.client.post('/api/v1/gateway-pools', { name: 'enroll-a' })).body;
    const b = (await admin.client.post('/api/v1/gateway-pools', { name: 'enroll-b' })).body;
    // Pools on a token are named by id or by name.
    const joined = await enrollGateway(tp, admin, 'joins-both', [a.id, 'enroll-b']);
    expect(joined.status).toBe(201);
    expect(new Set(joined.body.pools)).toEqual(new Set(['enroll-a', 'enroll-b']));
    const subset = await enrollGateway(tp, admin, 'joins-one', [a.id, b.id], ['enroll-b']);
    expect(subset.body.pools).toEqual(['enroll-b']);
    const stretch = await enrollGateway(tp, admin, 'joins-other', [a.id], ['enroll-b']);
    expect(stretch.status).toBe(403);
    expect(stretch.body.error.message).toContain(
      'does not allow joining gateway pool(s) "enroll-b"',
    );
    const detail = await admin.client.get(`/api/v1/gateway-pools/${b.id}`);
    expect(detail.body.members.map((m: { name: string }) => m.name).sort()).toEqual([
      'joins-both',
      'joins-one',
    ]);
    // Pool ids on a token must be this org's.
    const foreign = (await other.client.get('/api/v1/gateway-pools')).body.items[0].id as string;
    expect(
      (await admin.client.post('/api/v1/gateways/enrollment-tokens', { poolIds: [foreign] }))
        .status,
    ).toBe(404);
    const unknown = await admin.client.post('/api/v1/gateways/enrollment-tokens', {
      poolIds: ['enroll-a', 'no-such-pool'],
    });
    expect(unknown.status).toBe(404);
    expect(unknown.body.error.message).toContain('"no-such-pool"');
  });

  it('a live agent started with --pool joins the pool and shows as a healthy member', async () => {
    const pool = (await admin.client.post('/api/v1/gateway-pools', { name: 'live' })).body;
    const t = (
      await admin.client.post('/api/v1/gateways/enrollment-tokens', { poolIds: [pool.id] })
    ).body.token as string;
    await fleet.start({
      platformUrl: tp.url,
      token: t,
      name: 'live-member',
      pools: ['live'],
      allow: [],
    });
    const detail = await waitFor(
      async () => {
        const res = await admin.client.get(`/api/v1/gateway-pools/${pool.id}`);
        return res.body.healthyMemberCount === 1 ? res.body : undefined;
      },
      15_000,
      'healthy member',
    );
    expect(detail).toMatchObject({ memberCount: 1, health: 'healthy' });
    expect(detail.members[0]).toMatchObject({
      name: 'live-member',
      health: 'healthy',
      version: '0.1.0',
    });

    // A consumer uses the pool: deleting its only healthy member says what that costs.
    const target = await admin.client.post('/api/v1/access-targets', {
      name: 'live-db',
      host: '10.0.0.5',
      port: 5432,
      protocol: 'postgres',
      gatewayPoolId: pool.id,
    });
    expect(target.status).toBe(201);
    expect((await admin.client.get('/api/v1/gateway-pools/live/resources')).body).toEqual({
      items: [{ kind: expect.any(String), id: target.body.id, name: 'live-db' }],
      hidden: 0,
    });
    expect((await admin.client.get('/api/v1/gateway-pools/live')).body).toMatchObject({
      connectedResourcesCount: 1,
    });
    const deleted = await admin.client.delete(`/api/v1/gateways/${detail.members[0].id}`);
    expect(deleted.status).toBe(200);
    expect(deleted.body).toEqual({
      deleted: true,
      leftPools: [{ id: pool.id, name: 'live' }],
      warnings: [
        'Gateway "live-member" was the last healthy member of pool "live", which serves 1 consumer: the pool has no healthy member now.',
      ],
    });
    const audit = await admin.client.get('/api/v1/audit-logs?event=gateway.delete&limit=5');
    expect(audit.body.items[0].metadata).toMatchObject({
      name: 'live-member',
      warnings: deleted.body.warnings,
    });
  });

  it('lists pools with a fixed number of queries whatever the number of pools (no N+1)', async () => {
    const org = await createSecondOrg(tp);
    await enterprise(org);
    const db = tp.platform.ctx.db;
    const countQueries = async () => {
      await tp.platform.ctx.poolRuntime.ensureLoaded();
      const select = vi.spyOn(db, 'select');
      const execute = vi.spyOn(db, 'execute');
      try {
        const res = await org.client.get('/api/v1/gateway-pools');
        expect(res.status).toBe(200);
        return {
          n: select.mock.calls.length + execute.mock.calls.length,
          pools: res.body.items.length as number,
        };
      } finally {
        select.mockRestore();
        execute.mockRestore();
      }
    };
    const gw = (await enrollGateway(tp, org, 'n1-gw')).body.gatewayId as string;
    const first = (await org.client.post('/api/v1/gateway-pools', { name: 'n1-0' })).body
      .id as string;
    await org.client.post(`/api/v1/gateway-pools/${first}/memberships`, { gatewayId: gw });
    const one = await countQueries();
    for (let i = 1; i < 12; i++) {
      const id = (await org.client.post('/api/v1/gateway-pools', { name: `n1-${i}` })).body
        .id as string;
      await org.client.post(`/api/v1/gateway-pools/${id}/memberships`, { gatewayId: gw });
    }
    const twelve = await countQueries();
    expect(one.pools).toBe(1);
    expect(twelve.pools).toBe(12);
    expect(twelve.n).toBe(one.n);
  });

  it('after a downgrade, pools keep existing, can be read, emptied and deleted, but not changed', async () => {
    const org = await createSecondOrg(tp);
    await enterprise(org);
    const pool = (await org.client.post('/api/v1/gateway-pools', { name: 'kept' })).body;
    const gone = (await org.client.post('/api/v1/gateway-pools', { name: 'gone' })).body;
    const gw = (await enrollGateway(tp, org, 'downgraded-gw')).body.gatewayId as string;
    expect(
      (await org.client.post(`/api/v1/gateway-pools/${pool.id}/memberships`, { gatewayId: gw }))
        .status,
    ).toBe(201);
    // Install a license that is valid but for the free plan (a downgrade).
    const free = await issueTestLicense({ plan: 'free', org: org.orgId });
    expect((await org.client.put('/api/v1/license', { key: free })).status).toBe(200);
    const res = await org.client.patch(`/api/v1/gateway-pools/${pool.id}`, { description: 'x' });
    expect(res.status).toBe(403);
    expect(res.body.error.code).toBe('plan_upgrade_required');
    const rows = await tp.platform.ctx.poolRuntime
      .ensureLoaded()
      .then(() => tp.platform.ctx.poolRuntime.pool(org.orgId, pool.id));
    expect(rows?.name).toBe('kept');

    // Still visible, by id and by name, with its members and what uses it (QA3 F8).
    const list = await org.client.get('/api/v1/gateway-pools');
    expect(list.status).toBe(200);
    expect(list.body.items.map((p: { name: string }) => p.name).sort()).toEqual(['gone', 'kept']);
    const detail = await org.client.get('/api/v1/gateway-pools/kept');
    expect(detail.status).toBe(200);
    expect(detail.body.members.map((m: { id: string }) => m.id)).toEqual([gw]);
    expect((await org.client.get(`/api/v1/gateway-pools/${pool.id}/resources`)).status).toBe(200);
    // Its members can be removed (a dead one out of a pool still in use), not added back.
    const removed = await org.client.delete(`/api/v1/gateway-pools/kept/memberships/downgraded-gw`);
    expect(removed.status, removed.text).toBe(204);
    expect((await org.client.get('/api/v1/gateway-pools/kept')).body.members).toEqual([]);
    const readd = await org.client.post(`/api/v1/gateway-pools/kept/memberships`, {
      gatewayId: gw,
    });
    expect(readd.status).toBe(403);
    // And removable, to clean up.
    expect((await org.client.delete(`/api/v1/gateway-pools/${gone.id}`)).status).toBe(204);
    expect((await org.client.get(`/api/v1/gateway-pools/${gone.id}`)).status).toBe(404);
    expect((await org.client.delete('/api/v1/gateway-pools/kept')).status).toBe(204);
  });
});
