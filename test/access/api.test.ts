/**
 * Access targets API on both drivers: CRUD, validation, RBAC (viewer/member/admin, the
 * `connect` action), org scoping (another org's ids are 404), the attach rules (pool license,
 * require-pools policy), pagination, and what gateways and pools say about their targets.
 */
import { randomUUID } from 'node:crypto';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gatewayPools, gateways } from '../../src/server/db/schema.js';
import {
  addIdentity,
  addUser,
  bootstrap,
  createSecondOrg,
  DRIVERS,
  issueTestLicense,
  startTestPlatform,
  type Account,
  type TestPlatform,
} from '../helpers/platform.js';

/** A gateway row as enrollment leaves it (these tests need no live agent). */
async function seedGateway(tp: TestPlatform, orgId: string, name: string): Promise<string> {
  const id = randomUUID();
  await tp.db.insert(gateways).values({
    id,
    orgId,
    name,
    certFingerprint: randomUUID(),
    certExpiresAt: new Date(Date.now() + 86400_000),
  });
  return id;
}

/** Opens a client stream the way the CLI does and reports the HTTP refusal, if any. */
function upgrade(
  url: string,
  target: string,
  headers: Record<string, string>,
): Promise<{ status: number; body: { error?: { code: string; message: string } } }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(
      `${url.replace('http', 'ws')}/api/v1/access-targets/${target}/connect`,
      {
        headers,
        handshakeTimeout: 10_000,
      },
    );
    ws.once('open', () => {
      ws.terminate();
      resolve({ status: 101, body: {} });
    });
    ws.once('unexpected-response', (_req, res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text || '{}') }));
    });
    ws.once('error', reject);
  });
}

/**
 * A standby stream (`?open=deferred`): waits for the handshake, runs `between`, sends `open`
 * and returns the platform's refusal (these tests have no live gateway) and the close code.
 */
function deferred(
  url: string,
  target: string,
  token: string,
  between?: () => Promise<void>,
): Promise<{ refusal: { error: { code: string; message: string } }; closeCode: number }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(
      `${url.replace('http', 'ws')}/api/v1/access-targets/${target}/connect?open=deferred`,
      { headers: { authorization: `Bearer ${token}` }, handshakeTimeout: 10_000 },
    );
    let refusal: { error: { code: string; message: string } } | undefined;
    const timer = setTimeout(() => {
      ws.terminate();
      reject(new Error('no answer to open within 15 s'));
    }, 15_000);
    ws.once('open', () => {
      void (between ?? (async () => undefined))().then(
        () => ws.send('open'),
        (err: unknown) => reject(err as Error),
      );
    });
    ws.on('message', (data, isBinary) => {
      const text = data.toString();
      if (!isBinary && text.startsWith('refused ')) refusal = JSON.parse(text.slice(8));
    });
    ws.once('close', (code) => {
      clearTimeout(timer);
      if (refusal) resolve({ refusal, closeCode: code });
      else reject(new Error(`closed (${code}) without a refusal`));
    });
    ws.once('unexpected-response', (_req, res) =>
      reject(new Error(`the handshake answered ${res.statusCode}`)),
    );
    ws.once('error', reject);
  });
}

describe.each(DRIVERS)('access targets API on %s', (driver) => {
  let tp: TestPlatform;
  let admin: Account;
  let poolId: string;
  let gatewayId: string;
  const base = { host: '10.0.0.5', port: 5432, protocol: 'postgres' };

  beforeAll(async () => {
    tp = await startTestPlatform(driver);
    admin = await bootstrap(tp);
    await admin.client.put('/api/v1/license', {
      key: await issueTestLicense({ plan: 'enterprise', org: admin.orgId }),
    });
    poolId = (await admin.client.post('/api/v1/gateway-pools', { name: 'dc1' })).body.id;
    gatewayId = await seedGateway(tp, admin.orgId, 'edge-1');
    tp.platform.ctx.poolRuntime.invalidate();
  });
  afterAll(async () => tp?.close());

  it('creates, reads by id and by name, lists, updates and deletes; each change is audited', async () => {
    const created = await admin.client.post('/api/v1/access-targets', {
      name: 'orders-db',
      ...base,
      description: 'orders primary',
      gatewayPoolId: poolId,
    });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({
      name: 'orders-db',
      host: '10.0.0.5',
      port: 5432,
      protocol: 'postgres',
      description: 'orders primary',
      gatewayPoolId: poolId,
      gatewayId: null,
      gatewayPool: { id: poolId, name: 'dc1' },
      gateway: null,
      canConnect: true,
    });
    const id = created.body.id as string;
    expect((await admin.client.get(`/api/v1/access-targets/${id}`)).body.name).toBe('orders-db');
    expect((await admin.client.get('/api/v1/access-targets/orders-db')).body.id).toBe(id);
    const plain = await admin.client.get('/api/v1/access-targets/orders-db/connect');
    expect(plain.status).toBe(200);
    expect(plain.body.id).toBe(id);

    const moved = await admin.client.patch(`/api/v1/access-targets/${id}`, {
      gatewayId,
      port: 6432,
    });
    expect(moved.status).toBe(200);
    expect(moved.body).toMatchObject({ gatewayId, gatewayPoolId: null, port: 6432 });
    expect(moved.body.gateway).toEqual({ id: gatewayId, name: 'edge-1' });
    // Connections look targets up from memory: a change is what the next one sees.
    const afterMove = await admin.client.get('/api/v1/access-targets/orders-db/connect');
    expect(afterMove.body).toMatchObject({ gatewayId, gatewayPoolId: null, port: 6432 });

    const del = await admin.client.delete('/api/v1/access-targets/orders-db');
    expect(del.status).toBe(204);
    expect((await admin.client.get(`/api/v1/access-targets/${id}`)).status).toBe(404);
    expect((await admin.client.get('/api/v1/access-targets/orders-db/connect')).status).toBe(404);
    expect((await admin.client.get(`/api/v1/access-targets/${id}/connect`)).status).toBe(404);
    const audit = await admin.client.get('/api/v1/audit-logs?event=access-target.*');
    expect(audit.body.items.map((e: { event: string }) => e.event)).toEqual([
      'access-target.delete',
      'access-target.update',
      'access-target.create',
    ]);
  });

  it('takes the pool or gateway by name (stored as its id); an unknown or foreign name is a 404 naming it', async () => {
    const created = await admin.client.post('/api/v1/access-targets', {
      name: 'by-pool-name',
      ...base,
      gatewayPoolId: 'dc1',
    });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ gatewayPoolId: poolId, gatewayId: null });
    const moved = await admin.client.patch('/api/v1/access-targets/by-pool-name', {
      gatewayId: 'edge-1',
    });
    expect(moved.status).toBe(200);
    expect(moved.body).toMatchObject({ gatewayId, gatewayPoolId: null });
    const back = await admin.client.patch('/api/v1/access-targets/by-pool-name', {
      gatewayPoolId: 'dc1',
    });
    expect(back.body).toMatchObject({ gatewayPoolId: poolId, gatewayId: null });

    const unknownPool = await admin.client.post('/api/v1/access-targets', {
      name: 'nowhere',
      ...base,
      gatewayPoolId: 'dc9',
    });
    expect(unknownPool.status).toBe(404);
    expect(unknownPool.body.error.message).toMatch(/Gateway pool "?dc9"? not found/);
    const unknownGateway = await admin.client.patch('/api/v1/access-targets/by-pool-name', {
      gatewayId: 'edge-9',
    });
    expect(unknownGateway.status).toBe(404);
    expect(unknownGateway.body.error.message).toMatch(/Gateway "edge-9" not found/);
    // Another org's pool and gateway names are not seen.
    const other = await createSecondOrg(tp);
    await seedGateway(tp, other.orgId, 'their-gw');
    await tp.db
      .insert(gatewayPools)
      .values({ id: randomUUID(), orgId: other.orgId, name: 'their-pool' });
    for (const ref of [{ gatewayPoolId: 'their-pool' }, { gatewayId: 'their-gw' }]) {
      const foreign = await admin.client.post('/api/v1/access-targets', {
        name: 'foreign',
        ...base,
        ...ref,
      });
      expect(foreign.status).toBe(404);
    }
    const viewer = await addUser(tp, admin, 'viewer');
    const refused = await viewer.client.patch('/api/v1/access-targets/by-pool-name', {
      gatewayPoolId: 'dc1',
    });
    expect(refused.status).toBe(403);
    await admin.client.delete('/api/v1/access-targets/by-pool-name');
  });

  it('refuses bad input with a 400 naming the field', async () => {
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ name: 'Bad Name', ...base, gatewayPoolId: poolId }, /name must use lowercase/],
      [{ name: randomUUID(), ...base, gatewayPoolId: poolId }, /must not look like a UUID/],
      [
        { name: 'x', ...base, port: 70000, gatewayPoolId: poolId },
        /port must be between 1 and 65535/,
      ],
      [
        { name: 'x', ...base, host: 'a b', gatewayPoolId: poolId },
        /host must be a hostname or an IP/,
      ],
      [
        { name: 'x', ...base, protocol: 'ftp', gatewayPoolId: poolId },
        /protocol must be one of tcp, postgres, http, kubernetes/,
      ],
      [{ name: 'x', ...base }, /exactly one of gatewayId and gatewayPoolId/],
      [
        { name: 'x', ...base, gatewayId, gatewayPoolId: poolId },
        /exactly one of gatewayId and gatewayPoolId/,
      ],
      [{ name: 'x', ...base, gatewayPoolId: poolId, extra: 1 }, /extra/],
    ];
    for (const [body, message] of cases) {
      const res = await admin.client.post('/api/v1/access-targets', body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.body.error.message).toMatch(message);
    }
    // Without a protocol a target is plain TCP: the protocol is a hint for clients.
    const plain = await admin.client.post('/api/v1/access-targets', {
      name: 'no-protocol',
      ...base,
      protocol: undefined,
      gatewayPoolId: poolId,
    });
    expect(plain.status, plain.text).toBe(201);
    expect(plain.body.protocol).toBe('tcp');
    const ok = await admin.client.post('/api/v1/access-targets', {
      name: 'dup',
      ...base,
      host: 'fd00::5',
      gatewayPoolId: poolId,
    });
    expect(ok.status).toBe(201);
    const dup = await admin.client.post('/api/v1/access-targets', {
      name: 'dup',
      ...base,
      gatewayPoolId: poolId,
    });
    expect(dup.status).toBe(409);
    expect(dup.body.error.message).toBe('An access target named "dup" already exists.');
    const emptyPatch = await admin.client.patch('/api/v1/access-targets/dup', {});
    expect(emptyPatch.status).toBe(400);
    await admin.client.delete('/api/v1/access-targets/dup');
  });

  it('RBAC: viewers list but may not connect or change; members connect; 403s name the permission', async () => {
    const target = await admin.client.post('/api/v1/access-targets', {
      name: 'rbac',
      ...base,
      gatewayPoolId: poolId,
    });
    const viewer = await addUser(tp, admin, 'viewer');
    const member = await addUser(tp, admin, 'member');
    const listed = await viewer.client.get('/api/v1/access-targets');
    expect(listed.status).toBe(200);
    expect(listed.body.items.find((t: { name: string }) => t.name === 'rbac').canConnect).toBe(
      false,
    );
    const create = await viewer.client.post('/api/v1/access-targets', {
      name: 'v',
      ...base,
      gatewayPoolId: poolId,
    });
    expect(create.status).toBe(403);
    expect(create.body.error.message).toMatch(/needs AccessTarget:create/);
    const connect = await viewer.client.get('/api/v1/access-targets/rbac/connect');
    expect(connect.status).toBe(403);
    expect(connect.body.error.message).toMatch(/needs AccessTarget:connect/);
    const stream = await upgrade(tp.url, 'rbac', { authorization: `Bearer ${viewer.token}` });
    expect(stream.status).toBe(403);
    expect(stream.body.error?.message).toMatch(/needs AccessTarget:connect/);

    expect((await member.client.get('/api/v1/access-targets/rbac/connect')).status).toBe(200);
    const edit = await member.client.patch('/api/v1/access-targets/rbac', { port: 1 });
    expect(edit.status).toBe(403);
    expect(edit.body.error.message).toMatch(/needs AccessTarget:edit/);
    // A machine identity with the member role connects too (the CLI's --token login).
    const bot = await addIdentity(tp, admin, 'member');
    expect((await bot.client.get('/api/v1/access-targets/rbac/connect')).status).toBe(200);
    await admin.client.delete(`/api/v1/access-targets/${target.body.id}`);
  });

  it("client streams: no credentials → 401, cookie-only → 401, another org's target → 404, no live member → 503", async () => {
    await admin.client.post('/api/v1/access-targets', {
      name: 'streams',
      ...base,
      gatewayPoolId: poolId,
    });
    expect((await upgrade(tp.url, 'streams', {})).status).toBe(401);
    const cookie = await upgrade(tp.url, 'streams', { cookie: `gatepool_session=${admin.token}` });
    expect(cookie.status).toBe(401);
    expect(cookie.body.error?.message).toMatch(/Bearer/);
    const other = await createSecondOrg(tp);
    const mine = (await admin.client.get('/api/v1/access-targets/streams')).body.id as string;
    const cross = await upgrade(tp.url, mine, { authorization: `Bearer ${other.token}` });
    expect(cross.status).toBe(404);
    for (const method of ['get', 'patch', 'delete'] as const) {
      const res =
        method === 'patch'
          ? await other.client.patch(`/api/v1/access-targets/${mine}`, { port: 1 })
          : await other.client[method](`/api/v1/access-targets/${mine}`);
      expect(res.status, method).toBe(404);
    }
    expect((await other.client.get('/api/v1/access-targets')).body.items).toEqual([]);
    // Another org's pool or gateway cannot be attached: 404, not 403.
    const theirPool = await other.client.post('/api/v1/access-targets', {
      name: 'x',
      ...base,
      gatewayPoolId: poolId,
    });
    expect([403, 404]).toContain(theirPool.status);
    const theirGw = await other.client.post('/api/v1/access-targets', {
      name: 'x',
      ...base,
      gatewayId,
    });
    expect(theirGw.status).toBe(404);
    // A running stream with no live gateway answers 503 naming the pool, before any upgrade.
    const down = await upgrade(tp.url, 'streams', { authorization: `Bearer ${admin.token}` });
    expect(down.status).toBe(503);
    expect(down.body.error?.message).toMatch(
      /^Cannot open access target "streams" \(10\.0\.0\.5:5432\): gateway pool "dc1": /,
    );
    await admin.client.delete('/api/v1/access-targets/streams');
  });

  it('deferred opens (standbys): the handshake completes at once; `open` is refused in full, and rechecks credential, permission and target', async () => {
    await admin.client.post('/api/v1/access-targets', {
      name: 'standby',
      ...base,
      gatewayPoolId: poolId,
    });
    const memberAccount = await addIdentity(tp, admin, 'member');
    // No live gateway: the standby still opens; `open` gets the 503's words, not a hang.
    const down = await deferred(tp.url, 'standby', admin.token);
    expect(down.refusal.error.code).toBe('gateway_unavailable');
    expect(down.refusal.error.message).toMatch(
      /^Cannot open access target "standby" \(10\.0\.0\.5:5432\): gateway pool "dc1": /,
    );
    expect(down.closeCode).toBe(4001);

    // Revoked while the standby waited: refused at `open` with the login hint's code.
    const revoked = await deferred(tp.url, 'standby', memberAccount.token, async () => {
      const res = await admin.client.delete(
        `/api/v1/identities/${memberAccount.id}/tokens/${memberAccount.tokenId}`,
      );
      expect(res.status).toBeLessThan(300);
    });
    expect(revoked.refusal.error.code).toBe('unauthorized');

    // The target deleted while the standby waited: 404 at `open`.
    const gone = await deferred(tp.url, 'standby', admin.token, async () => {
      expect((await admin.client.delete('/api/v1/access-targets/standby')).status).toBe(204);
    });
    expect(gone.refusal.error.code).toBe('not_found');
    expect(gone.refusal.error.message).toMatch(/standby/);
  });

  it('attach rules: a free plan may not attach a pool; require-pools refuses a new pinned gateway', async () => {
    const free = await createSecondOrg(tp);
    const freeGw = await seedGateway(tp, free.orgId, 'free-gw');
    const pinned = await free.client.post('/api/v1/access-targets', {
      name: 'pinned',
      ...base,
      gatewayId: freeGw,
    });
    expect(pinned.status).toBe(201);
    // A pool row of the free org (it could not create one through the API on its plan).
    const freePool = randomUUID();
    await tp.db.insert(gatewayPools).values({ id: freePool, orgId: free.orgId, name: 'legacy' });
    const viaFreePool = await free.client.post('/api/v1/access-targets', {
      name: 'pooled',
      ...base,
      gatewayPoolId: freePool,
    });
    expect(viaFreePool.status).toBe(403);
    expect(viaFreePool.body.error.code).toBe('plan_upgrade_required');
    // Turning the policy on names what it leaves pinned, in this organization only.
    const freePolicy = await free.client.patch('/api/v1/organization', {
      requireGatewayPools: true,
    });
    expect(freePolicy.status).toBe(200);
    expect(freePolicy.body.warnings).toHaveLength(1);
    expect(freePolicy.body.warnings[0]).toContain(
      'requireGatewayPools is on, but 1 consumer still uses a single gateway',
    );
    expect(freePolicy.body.warnings[0]).toContain('access-target "pinned" (gateway "free-gw")');
    await free.client.patch('/api/v1/organization', { requireGatewayPools: false });
    const policy = await admin.client.patch('/api/v1/organization', { requireGatewayPools: true });
    expect(policy.status).toBe(200);
    expect(JSON.stringify(policy.body.warnings)).not.toContain('free-gw');
    try {
      const refused = await admin.client.post('/api/v1/access-targets', {
        name: 'pin',
        ...base,
        gatewayId,
      });
      expect(refused.status).toBe(403);
      expect(refused.body.error.code).toBe('policy_violation');
      const viaPool = await admin.client.post('/api/v1/access-targets', {
        name: 'pin',
        ...base,
        gatewayPoolId: poolId,
      });
      expect(viaPool.status).toBe(201);
      await admin.client.delete('/api/v1/access-targets/pin');
    } finally {
      await admin.client.patch('/api/v1/organization', { requireGatewayPools: false });
    }
  });

  it('pools and gateways list their targets as connected resources; deleting one in use 409s naming it', async () => {
    await admin.client.post('/api/v1/access-targets', {
      name: 'in-use',
      ...base,
      gatewayPoolId: poolId,
    });
    await admin.client.post('/api/v1/access-targets', { name: 'pinned-use', ...base, gatewayId });
    const resources = await admin.client.get(`/api/v1/gateway-pools/${poolId}/resources`);
    expect(resources.status).toBe(200);
    expect(JSON.stringify(resources.body)).toContain('"in-use"');
    const delPool = await admin.client.delete(`/api/v1/gateway-pools/${poolId}`);
    expect(delPool.status).toBe(409);
    expect(delPool.body.error.message).toMatch(/in-use/);
    const delGw = await admin.client.delete(`/api/v1/gateways/${gatewayId}`);
    expect(delGw.status).toBe(409);
    expect(delGw.body.error.message).toMatch(/pinned-use/);
    await admin.client.delete('/api/v1/access-targets/in-use');
    await admin.client.delete('/api/v1/access-targets/pinned-use');
  });

  it('lists page by cursor with nothing cut', async () => {
    const names = Array.from({ length: 5 }, (_, i) => `page-${i}`);
    for (const name of names)
      await admin.client.post('/api/v1/access-targets', { name, ...base, gatewayPoolId: poolId });
    const seen: string[] = [];
    let cursor: string | null = null;
    for (let i = 0; i < 10; i++) {
      const q: string = cursor ? `&cursor=${cursor}` : '';
      const page = await admin.client.get(`/api/v1/access-targets?limit=2${q}`);
      expect(page.status).toBe(200);
      seen.push(...page.body.items.map((t: { name: string }) => t.name));
      cursor = page.body.nextCursor;
      if (!cursor) break;
    }
    expect(seen.filter((n) => n.startsWith('page-'))).toEqual(names);
    expect((await admin.client.get('/api/v1/access-targets?cursor=nope')).status).toBe(400);
  });
});
