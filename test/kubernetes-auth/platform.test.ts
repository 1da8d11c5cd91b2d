/**
 * Kubernetes auth end to end (issue 5): real platform, real gateway agents (processes), the
 * Kubernetes API stand-in reachable by the gateways' --allow rules. On PGlite and PostgreSQL.
 */
import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { sql } from 'drizzle-orm';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/server/app.js';
import { RateLimiter } from '../../src/server/auth/rate-limit.js';
import { kubernetesAuthRoutes } from '../../src/server/kubernetes-auth/routes.js';
import { createTestCa } from '../fixtures/kube-api.js';
import type { RunningAgent } from '../helpers/gateway-agent.js';
import {
  addIdentity,
  addUser,
  api,
  createSecondOrg,
  DRIVERS,
  issueTestLicense,
  waitFor,
  type Account,
  type ApiResponse,
} from '../helpers/platform.js';
import {
  addKubernetesOperator,
  createPool,
  startGateways,
  startScenario,
  waitForHealthyMembers,
  type Scenario,
} from './setup.js';

const brief = (res: ApiResponse) => `${res.status} ${res.text.slice(0, 400)}`;
const SA = { namespace: 'apps', name: 'web' };

describe.each(DRIVERS)('kubernetes auth through gateways on %s', (driver) => {
  let s: Scenario;
  let poolId: string;
  let members: RunningAgent[];
  let memberNames: string[];
  let soloId: string;
  const bodies: string[] = [];

  /** Records every response so the final check can prove the reviewer JWT never left. */
  const keep = (res: ApiResponse) => {
    bodies.push(res.text);
    return res;
  };
  const config = (id: string) => `/api/v1/identities/${id}/kubernetes-auth`;
  const login = async (identityId: string, jwt: string) =>
    keep(
      await api(s.k8sUrl).post(
        '/api/v1/auth/kubernetes-auth/login',
        { identityId, jwt },
        { timeoutMs: 30_000 },
      ),
    );
  const newIdentity = async (role = 'viewer') => (await addIdentity(s.tp, s.admin, role)).id;
  const baseConfig = () => ({
    kubernetesHost: s.kube.url,
    caCert: s.kube.caCert,
    tokenReviewerJwt: s.kube.reviewerToken,
  });
  const saToken = (
    o: Partial<{ namespace: string; name: string; audiences: string[]; expiresIn: number }> = {},
  ) => s.kube.serviceAccountToken({ ...SA, ...o });

  beforeAll(async () => {
    s = await startScenario(driver);
    poolId = await createPool(s, 'k8s-pool');
    memberNames = ['k8s-a', 'k8s-b', 'k8s-c'];
    ({ agents: members } = await startGateways(s, memberNames, [poolId]));
    [soloId] = (await startGateways(s, ['k8s-solo'])).ids as [string];
    await waitForHealthyMembers(s, poolId, 3);
  }, 120_000);

  afterAll(async () => {
    await s?.close();
  });

  it('logs in through a pool: TokenReview over the tunnel, allow-lists, token, audit naming the gateway', async () => {
    const id = await newIdentity();
    const created = keep(
      await s.k8s.post(config(id), {
        ...baseConfig(),
        allowedNamespaces: ['apps'],
        allowedNames: ['web'],
        allowedAudience: 'gatepool',
        accessTokenTtl: 600,
        gatewayPoolId: poolId,
      }),
    );
    expect(created.status, brief(created)).toBe(201);
    expect(created.body).toMatchObject({
      identityId: id,
      kubernetesHost: s.kube.url,
      tokenReviewerJwtSet: true,
      allowedNamespaces: ['apps'],
      allowedNames: ['web'],
      allowedAudience: 'gatepool',
      accessTokenTtl: 600,
      gatewayPoolId: poolId,
      gatewayId: null,
      gatewayPool: { id: poolId, name: 'k8s-pool' },
      warnings: [],
      validation: { status: 'verified' },
    });
    expect(memberNames).toContain(created.body.validation.gatewayName);
    expect(created.body).not.toHaveProperty('tokenReviewerJwt');

    const reviewsBefore = s.kube.reviewCount();
    const jwt = await saToken({ audiences: ['gatepool'] });
    const res = await login(id, jwt);
    expect(res.status, brief(res)).toBe(200);
    expect(res.body).toMatchObject({ tokenType: 'Bearer', expiresIn: 600 });
    expect(res.body.accessToken).toMatch(/^gpi_/);
    expect(s.kube.reviewCount()).toBe(reviewsBefore + 1);
    // The reviewer JWT authenticated the review; the login JWT was the reviewed token.
    const last = s.kube.requests.at(-1)!;
    expect(last.bearer).toBe(s.kube.reviewerToken);
    expect(JSON.parse(last.body)).toMatchObject({ spec: { token: jwt, audiences: ['gatepool'] } });

    const me = await api(s.k8sUrl, res.body.accessToken).get('/api/v1/me');
    expect(me.status, brief(me)).toBe(200);

    const audit = await s.plat.get('/api/v1/audit-logs?event=kubernetes-auth.login');
    const entry = audit.body.items[0];
    expect(entry).toMatchObject({
      actor: { type: 'identity', id },
      metadata: {
        via: 'gateway-pool',
        gatewayPoolId: poolId,
        namespace: 'apps',
        serviceAccountName: 'web',
      },
    });
    expect(memberNames).toContain(entry.metadata.gateway);

    // The pool lists the config as a connected resource and cannot be deleted under it.
    const resources = await s.plat.get(`/api/v1/gateway-pools/${poolId}/resources`);
    expect(resources.body.items).toContainEqual({
      kind: 'kubernetes-auth',
      id,
      name: expect.any(String),
    });
    const list = await s.plat.get('/api/v1/gateway-pools');
    expect(
      list.body.items.find((p: { id: string }) => p.id === poolId).connectedResourcesCount,
    ).toBeGreaterThanOrEqual(1);
    const del = await s.plat.delete(`/api/v1/gateway-pools/${poolId}`);
    expect(del.status, brief(del)).toBe(409);
    expect(del.body.error.message).toMatch(/kubernetes-auth/);
  });

  it('logs in through a single gateway, which then cannot be deleted', async () => {
    const id = await newIdentity();
    const created = keep(await s.k8s.post(config(id), { ...baseConfig(), gatewayId: soloId }));
    expect(created.status, brief(created)).toBe(201);
    expect(created.body).toMatchObject({
      gatewayId: soloId,
      gateway: { id: soloId, name: 'k8s-solo' },
      validation: { status: 'verified', gatewayName: 'k8s-solo' },
    });
    const res = await login(id, await saToken());
    expect(res.status, brief(res)).toBe(200);
    const audit = await s.plat.get('/api/v1/audit-logs?event=kubernetes-auth.login');
    expect(audit.body.items[0].metadata).toMatchObject({
      via: 'gateway',
      gatewayId: soloId,
      gateway: 'k8s-solo',
    });
    const del = await s.plat.delete(`/api/v1/gateways/${soloId}`);
    expect(del.status, brief(del)).toBe(409);
    expect(del.body.error.details.consumers).toContainEqual(
      expect.objectContaining({ kind: 'kubernetes-auth', id }),
    );
  });

  it('answers every rejection with 401 and its reason category, audited', async () => {
    const id = await newIdentity();
    const created = keep(
      await s.k8s.post(config(id), {
        ...baseConfig(),
        allowedNamespaces: ['apps'],
        allowedNames: ['web'],
        allowedAudience: 'gatepool',
        gatewayPoolId: poolId,
      }),
    );
    expect(created.status, brief(created)).toBe(201);
    const cases: Array<[string, () => Promise<string>]> = [
      ['not_authenticated', () => saToken({ audiences: ['gatepool'], expiresIn: -30 })],
      ['not_authenticated', async () => 'not.a.jwt'],
      [
        'namespace_not_allowed',
        () => saToken({ namespace: 'kube-system', audiences: ['gatepool'] }),
      ],
      ['name_not_allowed', () => saToken({ name: 'db', audiences: ['gatepool'] })],
      ['audience_not_allowed', () => saToken({ audiences: ['vault'] })],
    ];
    for (const [reason, make] of cases) {
      const res = await login(id, await make());
      expect(res.status, `${reason}: ${brief(res)}`).toBe(401);
      expect(res.body.error.details.reason).toBe(reason);
    }
    const unconfigured = await login(await newIdentity(), await saToken());
    expect(unconfigured.status).toBe(401);
    expect(unconfigured.body.error.details.reason).toBe('not_configured');

    const failed = await s.plat.get(
      '/api/v1/audit-logs?event=kubernetes-auth.login-failed&limit=20',
    );
    const reasons = failed.body.items.map(
      (e: { metadata: { reason: string } }) => e.metadata.reason,
    );
    for (const r of [
      'namespace_not_allowed',
      'name_not_allowed',
      'audience_not_allowed',
      'not_authenticated',
      'not_configured',
    ]) {
      expect(reasons).toContain(r);
    }
  });

  it('reports reviewer problems at login (401/403 from the cluster) without leaking the reviewer', async () => {
    const reviewer = { namespace: 'kube-system', name: 'reviewer-to-revoke' };
    s.kube.setTokenReviewPermission(reviewer, true);
    const reviewerJwt = await s.kube.serviceAccountToken(reviewer);
    const id = await newIdentity();
    const created = keep(
      await s.k8s.post(config(id), {
        ...baseConfig(),
        tokenReviewerJwt: reviewerJwt,
        gatewayPoolId: poolId,
      }),
    );
    expect(created.status, brief(created)).toBe(201);

    s.kube.setTokenReviewPermission(reviewer, false);
    const forbidden = await login(id, await saToken());
    expect(forbidden.status).toBe(401);
    expect(forbidden.body.error.details.reason).toBe('reviewer_forbidden');

    s.kube.deleteServiceAccount(reviewer);
    const unauthorized = await login(id, await saToken());
    expect(unauthorized.status).toBe(401);
    expect(unauthorized.body.error.details.reason).toBe('reviewer_unauthorized');
    for (const r of [forbidden, unauthorized]) expect(r.text).not.toContain(reviewerJwt);
    expect(s.logs.join('\n')).not.toContain(reviewerJwt);
  });

  it('reviews the login JWT with itself when no reviewer JWT is set', async () => {
    const id = await newIdentity();
    const created = keep(
      await s.k8s.post(config(id), {
        kubernetesHost: s.kube.url,
        caCert: s.kube.caCert,
        gatewayPoolId: poolId,
      }),
    );
    expect(created.status, brief(created)).toBe(201);
    expect(created.body).toMatchObject({
      tokenReviewerJwtSet: false,
      validation: { status: 'reachable' },
    });
    const self = { namespace: 'apps', name: 'self-reviewing' };
    const jwt = await s.kube.serviceAccountToken(self);
    expect((await login(id, jwt)).body.error.details.reason).toBe('reviewer_forbidden');
    s.kube.setTokenReviewPermission(self, true);
    const ok = await login(id, jwt);
    expect(ok.status, brief(ok)).toBe(200);
    expect(s.kube.requests.at(-1)!.bearer).toBe(jwt);
  });

  it('validates on save: wrong CA, bad reviewer, unreachable cluster and a refused target are 422 with the reason', async () => {
    const id = await newIdentity();
    const other = await createTestCa('not-the-cluster-ca');
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ caCert: other.certPem }, 'tls'],
      [{ tokenReviewerJwt: 'eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln' }, 'reviewer_unauthorized'],
      [{ kubernetesHost: `https://127.0.0.1:${s.closedPort}` }, 'unreachable'],
      [{ kubernetesHost: 'https://127.0.0.1:1' }, 'gateway_refused'],
    ];
    for (const [override, reason] of cases) {
      const res = keep(
        await s.k8s.post(config(id), { ...baseConfig(), gatewayPoolId: poolId, ...override }),
      );
      expect(res.status, `${reason}: ${brief(res)}`).toBe(422);
      expect(res.body.error.details.reason).toBe(reason);
    }
    expect((await s.k8s.get(config(id))).status).toBe(404);
  });

  it('saves with a warning (and a log line) when the pool has no healthy member; logins then answer 503', async () => {
    const deadPool = await createPool(s, 'k8s-dead');
    const { agents } = await startGateways(s, ['k8s-doomed'], [deadPool]);
    agents[0]!.kill();
    await waitForHealthyMembers(s, deadPool, 0);
    // The list reads the pools' runtime cache (what the save checks): wait until it has the member.
    await waitFor(
      async () =>
        (await s.plat.get('/api/v1/gateway-pools?limit=200')).body.items.find(
          (p: { id: string }) => p.id === deadPool,
        )?.memberCount === 1,
      10_000,
      'the runtime to know the doomed member',
    );
    const id = await newIdentity();
    const logsBefore = s.logs.length;
    const res = keep(await s.k8s.post(config(id), { ...baseConfig(), gatewayPoolId: deadPool }));
    expect(res.status, brief(res)).toBe(201);
    expect(res.body.validation.status).toBe('unverified');
    expect(res.body.warnings).toHaveLength(1);
    expect(res.body.warnings[0]).toMatch(/k8s-dead.*no healthy member/);
    expect(s.logs.slice(logsBefore).join('\n')).toMatch(/saved unverified/);
    // Unrelated edits are never blocked by the outage.
    const patched = keep(await s.k8s.patch(config(id), { accessTokenTtl: 120 }));
    expect(patched.status, brief(patched)).toBe(200);
    expect(patched.body.validation.status).toBe('skipped');
    const login503 = await login(id, await saToken());
    expect(login503.status, brief(login503)).toBe(503);
    expect(login503.body.error.code).toBe('gateway_unavailable');
    // No member could even be tried: a retry does not help, so the message does not suggest one.
    expect(login503.body.error.message).toMatch(/k8s-dead.*no healthy member \(k8s-doomed: /);
    expect(login503.body.error.message).not.toMatch(/Try again/);
  });

  it('PATCH: null clears a reference, omitted keeps it, setting one replaces the other; at most one', async () => {
    const id = await newIdentity();
    expect((await s.k8s.post(config(id), { ...baseConfig(), gatewayPoolId: poolId })).status).toBe(
      201,
    );
    let res = await s.k8s.patch(config(id), { allowedNames: ['web', 'api'] });
    expect(res.body).toMatchObject({ gatewayPoolId: poolId, allowedNames: ['web', 'api'] });
    res = await s.k8s.patch(config(id), { gatewayId: soloId });
    expect(res.status, brief(res)).toBe(200);
    expect(res.body).toMatchObject({ gatewayId: soloId, gatewayPoolId: null });
    res = await s.k8s.patch(config(id), { gatewayId: null });
    expect(res.body).toMatchObject({ gatewayId: null, gatewayPoolId: null });
    // By name, as everywhere a gateway or pool is accepted; the config stores ids.
    res = await s.k8s.patch(config(id), { gatewayId: 'k8s-solo' });
    expect(res.body).toMatchObject({ gatewayId: soloId, gatewayPoolId: null });
    res = await s.k8s.patch(config(id), { gatewayPoolId: 'k8s-pool' });
    expect(res.body).toMatchObject({ gatewayId: null, gatewayPoolId: poolId });
    res = await s.k8s.patch(config(id), { gatewayPoolId: 'no-such-pool' });
    expect(res.status).toBe(404);
    res = await s.k8s.patch(config(id), { gatewayId: soloId, gatewayPoolId: poolId });
    expect(res.status).toBe(400);
    expect(res.body.error.message).toMatch(/at most one of gatewayId and gatewayPoolId/);
    res = await s.k8s.patch(config(id), { tokenReviewerJwt: null, gatewayPoolId: poolId });
    expect(res.body).toMatchObject({ tokenReviewerJwtSet: false, gatewayPoolId: poolId });
    res = await s.k8s.patch(config(id), { accessTokenTtl: 100_000, accessTokenMaxTtl: 200 });
    expect(res.status).toBe(400);
    res = await s.k8s.patch(config(id), {});
    expect(res.status).toBe(400);
    const del = await s.k8s.delete(config(id));
    expect(del.status).toBe(204);
    expect((await s.k8s.get(config(id))).status).toBe(404);
    const events = (
      await s.plat.get('/api/v1/audit-logs?event=kubernetes-auth.*&limit=100')
    ).body.items.map((e: { event: string }) => e.event);
    for (const e of ['kubernetes-auth.create', 'kubernetes-auth.update', 'kubernetes-auth.delete'])
      expect(events).toContain(e);
  });

  it('rejects bad input with a message naming the field', async () => {
    const id = await newIdentity();
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [{ kubernetesHost: 'http://10.0.0.1:6443' }, /kubernetesHost must be an https URL/],
      [{ caCert: 'not a pem' }, /caCert must be one or more PEM certificates/],
      [{ allowedNamespaces: ['Bad_NS'] }, /allowedNamespaces/],
      [{ gatewayPoolId: '' }, /gatewayPoolId must be a gateway pool id or name/],
      [{ accessTokenTtl: 10 }, /accessTokenTtl must be at least 60/],
      [{ surprise: 1 }, /surprise/],
    ];
    for (const [override, message] of cases) {
      const res = await s.k8s.post(config(id), { ...baseConfig(), ...override });
      expect(res.status, brief(res)).toBe(400);
      expect(res.body.error.message).toMatch(message);
    }
    const dup = await s.k8s.post(config(id), baseConfig());
    expect(dup.status, brief(dup)).toBe(201);
    expect((await s.k8s.post(config(id), baseConfig())).status).toBe(409);
    const badLogin = await api(s.k8sUrl).post('/api/v1/auth/kubernetes-auth/login', {
      identityId: id,
    });
    expect(badLogin.status).toBe(400);
    expect(badLogin.body.error.message).toMatch(/jwt/);
  });

  describe('organizations, permissions, policy and license', () => {
    let other: Account;
    beforeAll(async () => {
      other = await createSecondOrg(s.tp);
    });
    const as = (acct: Account) => api(s.k8sUrl, acct.token);

    it("answers 404 for another org's identity, gateway and pool", async () => {
      const id = await newIdentity();
      expect(
        (await s.k8s.post(config(id), { ...baseConfig(), gatewayPoolId: poolId })).status,
      ).toBe(201);
      for (const res of [
        await as(other).get(config(id)),
        await as(other).patch(config(id), { accessTokenTtl: 120 }),
        await as(other).delete(config(id)),
        await as(other).post(config(id), baseConfig()),
      ]) {
        expect(res.status, brief(res)).toBe(404);
      }
      const license = await issueTestLicense({ plan: 'enterprise', org: other.orgId });
      expect((await other.client.put('/api/v1/license', { key: license })).status).toBe(200);
      const otherIdentity = (
        await other.client.post('/api/v1/identities', { name: 'other-bot', role: 'viewer' })
      ).body.id as string;
      for (const ref of [{ gatewayPoolId: poolId }, { gatewayId: soloId }]) {
        const res = await as(other).post(config(otherIdentity), { ...baseConfig(), ...ref });
        expect(res.status, brief(res)).toBe(404);
      }
      // Login cannot be steered into another org's config either: it follows the identity.
      expect((await login(otherIdentity, await saToken())).body.error.details.reason).toBe(
        'not_configured',
      );
    });

    it('refuses configuring a login for an identity stronger than the caller (no escalation)', async () => {
      // May configure Kubernetes auth for identities no stronger than a viewer only.
      const operator = await addKubernetesOperator(s.tp, s.admin);
      const strong = await newIdentity('admin');
      const res = await as(operator).post(config(strong), baseConfig());
      expect(res.status, brief(res)).toBe(403);
      expect(res.body.error.message).toContain('You cannot manage this identity');
      expect((await s.k8s.get(config(strong))).status).toBe(404);
      const weak = await newIdentity('viewer');
      const ok = await as(operator).post(config(weak), baseConfig());
      expect(ok.status, brief(ok)).toBe(201);
    });

    it('leaves Kubernetes auth to admins: a member reads it but cannot configure it', async () => {
      const member = await addUser(s.tp, s.admin, 'member');
      const id = await newIdentity('viewer');
      const res = await as(member).post(config(id), baseConfig());
      expect(res.status, brief(res)).toBe(403);
      expect(res.body.error.message).toMatch(/KubernetesAuth/);
      expect((await s.k8s.post(config(id), baseConfig())).status).toBe(201);
      expect((await as(member).get(config(id))).status).toBe(200);
      const edit = await as(member).patch(config(id), { allowedNamespaces: ['apps'] });
      expect(edit.status, brief(edit)).toBe(403);
      expect((await as(member).delete(config(id))).status).toBe(403);
      expect((await s.k8s.get(config(id))).status).toBe(200);
    });

    it('needs KubernetesAuth permissions, and attach on what is newly referenced', async () => {
      const viewer = await addUser(s.tp, s.admin, 'viewer');
      const id = await newIdentity();
      const denied = await as(viewer).post(config(id), baseConfig());
      expect(denied.status).toBe(403);
      expect((await as(viewer).get(config(id))).status).toBe(404); // allowed to read; nothing there

      const role = await s.plat.post('/api/v1/roles', {
        slug: 'k8s-no-attach',
        name: 'K8s without attach',
        permissions: [
          { subject: 'KubernetesAuth', action: 'create' },
          { subject: 'KubernetesAuth', action: 'edit' },
          { subject: 'KubernetesAuth', action: 'read' },
          { subject: 'Identity', action: 'read' },
        ],
      });
      expect(role.status, brief(role)).toBe(201);
      const limited = await addUser(s.tp, s.admin, 'k8s-no-attach');
      // An identity whose role the limited user fully holds (managing a stronger one is refused).
      const own = await newIdentity('k8s-no-attach');
      const pool = await as(limited).post(config(own), { ...baseConfig(), gatewayPoolId: poolId });
      expect(pool.status, brief(pool)).toBe(403);
      expect(pool.body.error.message).toMatch(/GatewayPool:attach/);
      const gw = await as(limited).post(config(own), { ...baseConfig(), gatewayId: soloId });
      expect(gw.status, brief(gw)).toBe(403);
      expect(gw.body.error.message).toMatch(/Gateway:attach/);
      // An admin attaches the pool; the limited user may still edit other fields (no new reference).
      expect(
        (await s.k8s.post(config(own), { ...baseConfig(), gatewayPoolId: poolId })).status,
      ).toBe(201);
      const edit = await as(limited).patch(config(own), { allowedNamespaces: ['apps'] });
      expect(edit.status, brief(edit)).toBe(200);
      const byAdmin = await s.k8s.patch(config(own), { gatewayId: soloId });
      expect(byAdmin.status, brief(byAdmin)).toBe(200);
    });

    it('policy requireGatewayPools refuses a newly attached gateway but keeps an existing one', async () => {
      const pinned = await newIdentity();
      expect(
        (await s.k8s.post(config(pinned), { ...baseConfig(), gatewayId: soloId })).status,
      ).toBe(201);
      expect(
        (await s.plat.patch('/api/v1/organization', { requireGatewayPools: true })).status,
      ).toBe(200);
      try {
        const fresh = await newIdentity();
        const refused = await s.k8s.post(config(fresh), { ...baseConfig(), gatewayId: soloId });
        expect(refused.status, brief(refused)).toBe(403);
        expect(refused.body.error.code).toBe('policy_violation');
        const keep1 = await s.k8s.patch(config(pinned), { accessTokenTtl: 300 });
        expect(keep1.status, brief(keep1)).toBe(200);
        const keep2 = await s.k8s.patch(config(pinned), { gatewayId: soloId });
        expect(keep2.status, brief(keep2)).toBe(200);
        expect((await login(pinned, await saToken())).status).toBe(200);
        const toPool = await s.k8s.patch(config(pinned), { gatewayPoolId: poolId });
        expect(toPool.status, brief(toPool)).toBe(200);
        const back = await s.k8s.patch(config(pinned), { gatewayId: soloId });
        expect(back.status, brief(back)).toBe(403);
      } finally {
        await s.plat.patch('/api/v1/organization', { requireGatewayPools: false });
      }
    });

    it('needs the gatewayPool license to attach a pool; a downgrade keeps existing configs working', async () => {
      const attached = await newIdentity();
      expect(
        (await s.k8s.post(config(attached), { ...baseConfig(), gatewayPoolId: poolId })).status,
      ).toBe(201);
      const free = await issueTestLicense({ plan: 'free', org: s.admin.orgId });
      expect((await s.plat.put('/api/v1/license', { key: free })).status).toBe(200);
      try {
        const fresh = await newIdentity();
        const refused = await s.k8s.post(config(fresh), { ...baseConfig(), gatewayPoolId: poolId });
        expect(refused.status, brief(refused)).toBe(403);
        expect(refused.body.error.code).toBe('plan_upgrade_required');
        const edit = await s.k8s.patch(config(attached), { accessTokenTtl: 900 });
        expect(edit.status, brief(edit)).toBe(200);
        const ok = await login(attached, await saToken());
        expect(ok.status, brief(ok)).toBe(200);
      } finally {
        const ent = await issueTestLicense({ plan: 'enterprise', org: s.admin.orgId });
        await s.plat.put('/api/v1/license', { key: ent });
      }
    });
  });

  it('rate-limits logins per IP', async () => {
    const limiter = new RateLimiter(3, 60_000);
    const app = await buildApp(s.tp.platform.ctx, {
      logger: pino({ level: 'silent' }),
      modules: [(a, c) => kubernetesAuthRoutes(a, c, { loginLimiter: limiter })],
    });
    await app.listen({ host: '127.0.0.1', port: 0 });
    try {
      const url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
      const statuses: number[] = [];
      for (let i = 0; i < 5; i++) {
        statuses.push(
          (
            await api(url).post('/api/v1/auth/kubernetes-auth/login', {
              identityId: randomUUID(),
              jwt: 'a.b.c',
            })
          ).status,
        );
      }
      expect(statuses).toEqual([401, 401, 401, 429, 429]);
    } finally {
      await app.close();
    }
  });

  it('never returns or logs the reviewer JWT, and never stores it in clear', async () => {
    const all = bodies.join('\n');
    expect(all.length).toBeGreaterThan(1000);
    expect(all).not.toContain(s.kube.reviewerToken);
    expect(s.logs.length).toBeGreaterThan(0);
    expect(s.logs.join('\n')).not.toContain(s.kube.reviewerToken);
    const audit = await s.plat.get('/api/v1/audit-logs?limit=200');
    expect(audit.text).not.toContain(s.kube.reviewerToken);
    const rows = await s.tp.db.execute(
      sql`select token_reviewer_jwt_enc from identity_kubernetes_auths where token_reviewer_jwt_enc is not null`,
    );
    const text = JSON.stringify(rows);
    expect(text).toContain('v1:');
    expect(text).not.toContain(s.kube.reviewerToken);
  });

  // Last: it kills a pool member.
  it('keeps 50 concurrent logins succeeding while one of three members is SIGKILLed', async () => {
    await waitForHealthyMembers(s, poolId, 3);
    const id = await newIdentity();
    expect((await s.k8s.post(config(id), { ...baseConfig(), gatewayPoolId: poolId })).status).toBe(
      201,
    );
    const jwt = await saToken();
    // Reviews take 300 ms at the cluster, so every login is in flight on some member's stream
    // when member k8s-a dies: those streams break after the gateway's 200 and must be redone.
    s.kube.setDelay(300);
    try {
      const victim = members[0]!;
      const logins = Array.from({ length: 50 }, () => login(id, jwt));
      await new Promise((r) => setTimeout(r, 150));
      victim.kill();
      const results = await Promise.all(logins);
      const failed = results.filter((r) => r.status !== 200).map(brief);
      expect(failed).toEqual([]);
      await waitForHealthyMembers(s, poolId, 2);
    } finally {
      s.kube.setDelay(0);
    }
    const audit = await s.plat.get(
      `/api/v1/audit-logs?event=kubernetes-auth.login&actorId=${id}&limit=100`,
    );
    const gateways = audit.body.items.map(
      (e: { metadata: { gateway: string } }) => e.metadata.gateway,
    );
    expect(gateways).toHaveLength(50);
    // Every member served some of the logins that were still answered.
    expect(new Set(gateways).size).toBeGreaterThanOrEqual(2);
    const retried = audit.body.items.filter(
      (e: { metadata: { failovers: number } }) => e.metadata.failovers > 0,
    );
    expect(retried.length).toBeGreaterThan(0);
    await waitFor(async () => (await login(id, jwt)).status === 200, 5_000, 'login after the kill');
  });
});
