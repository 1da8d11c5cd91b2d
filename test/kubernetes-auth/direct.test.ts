/**
 * Kubernetes auth without a gateway (issue 12): the platform connects itself only to targets
 * the operator allows (GATEPOOL_DIRECT_TARGETS), refuses JWTs that are not JWTs before they
 * become a header, and does not tell non-admins how a direct target failed. Also the login rate
 * limit from GATEPOOL_K8S_LOGIN_RATE_LIMIT. No gateways here: fast. Both drivers.
 */
import net, { type AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { identityKubernetesAuths } from '../../src/server/db/schema.js';
import { startKubeApi, type KubeApi } from '../fixtures/kube-api.js';
import { addKubernetesOperator } from './setup.js';
import {
  addIdentity,
  api,
  bootstrap,
  DRIVERS,
  startTestPlatform,
  type Account,
  type ApiResponse,
  type TestPlatform,
} from '../helpers/platform.js';

const brief = (res: ApiResponse) => `${res.status} ${res.text.slice(0, 400)}`;
const LOGIN = '/api/v1/auth/kubernetes-auth/login';
const config = (id: string) => `/api/v1/identities/${id}/kubernetes-auth`;

async function closedPort(): Promise<number> {
  const probe = net.createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
  const { port } = probe.address() as AddressInfo;
  await new Promise<void>((r) => probe.close(() => r()));
  return port;
}

describe.each(DRIVERS)('kubernetes auth direct connections on %s', (driver) => {
  let tp: TestPlatform;
  let kube: KubeApi;
  let admin: Account;
  let member: Account;
  let closed: number;

  beforeAll(async () => {
    kube = await startKubeApi();
    closed = await closedPort();
    tp = await startTestPlatform(driver, {
      env: {
        GATEPOOL_DIRECT_TARGETS: `127.0.0.1:${kube.port}, 127.0.0.1:${closed}`,
        GATEPOOL_K8S_LOGIN_RATE_LIMIT: '25',
      },
    });
    admin = await bootstrap(tp);
    // Not an admin, but allowed to configure Kubernetes auth (built-in members are not).
    member = await addKubernetesOperator(tp, admin);
  }, 60_000);
  afterAll(async () => {
    await tp?.close();
    await kube?.close();
  });

  const newIdentity = async () => (await addIdentity(tp, admin, 'viewer')).id;
  const direct = (o: Record<string, unknown> = {}) => ({
    kubernetesHost: kube.url,
    caCert: kube.caCert,
    ...o,
  });

  it('logs in directly to an allowed target', async () => {
    const id = await newIdentity();
    const res = await admin.client.post(
      config(id),
      direct({ tokenReviewerJwt: kube.reviewerToken }),
    );
    expect(res.status, brief(res)).toBe(201);
    expect(res.body).toMatchObject({ gatewayId: null, gatewayPoolId: null });
    expect(res.body.validation).toMatchObject({ status: 'verified', gatewayId: null });
    const jwt = await kube.serviceAccountToken({ namespace: 'apps', name: 'web' });
    const ok = await api(tp).post(LOGIN, { identityId: id, jwt });
    expect(ok.status, brief(ok)).toBe(200);
    expect(ok.body).toMatchObject({ tokenType: 'Bearer', expiresIn: 3600 });
  });

  it('refuses to save a direct target the operator did not allow, naming the setting', async () => {
    const id = await newIdentity();
    for (const host of [
      'https://127.0.0.1:1',
      'https://10.255.255.1:6443',
      'https://localhost:443',
    ]) {
      const res = await member.client.post(config(id), direct({ kubernetesHost: host }));
      expect(res.status, `${host}: ${brief(res)}`).toBe(422);
      expect(res.body.error.code).toBe('direct_target_not_allowed');
      expect(res.body.error.message).toMatch(/GATEPOOL_DIRECT_TARGETS/);
    }
    expect((await admin.client.get(config(id))).status).toBe(404);
    // PATCH that drops the gateway of a config is a new direct target too.
    const other = await newIdentity();
    expect((await admin.client.post(config(other), direct())).status).toBe(201);
    const moved = await admin.client.patch(config(other), { kubernetesHost: 'https://10.1.1.1' });
    expect(moved.status, brief(moved)).toBe(422);
    expect(moved.body.error.message).toMatch(/GATEPOOL_DIRECT_TARGETS/);
  });

  it('answers a login through a disallowed direct target with a generic 503, audited', async () => {
    const id = await newIdentity();
    // Saved before the operator narrowed the list: written as it was then.
    await tp.db.insert(identityKubernetesAuths).values({
      identityId: id,
      orgId: admin.orgId,
      kubernetesHost: 'https://169.254.169.254:443',
    });
    const jwt = await kube.serviceAccountToken({ namespace: 'apps', name: 'web' });
    const requestsBefore = kube.requests.length;
    const res = await api(tp).post(LOGIN, { identityId: id, jwt });
    expect(res.status, brief(res)).toBe(503);
    expect(res.body.error).toMatchObject({
      code: 'cluster_unavailable',
      message: 'Kubernetes login could not reach the cluster. Try again shortly.',
    });
    expect(res.text).not.toMatch(/169\.254|GATEPOOL_DIRECT_TARGETS/);
    expect(kube.requests.length).toBe(requestsBefore);
    const audit = await admin.client.get(
      `/api/v1/audit-logs?event=kubernetes-auth.login-failed&limit=5`,
    );
    expect(audit.body.items[0].metadata).toMatchObject({
      identityId: id,
      reason: 'direct_target_not_allowed',
      via: 'direct',
    });
  });

  it('tells only admins how a direct target failed (no port states for other roles)', async () => {
    const id = await newIdentity();
    const body = direct({ kubernetesHost: `https://127.0.0.1:${closed}` });
    const asMember = await member.client.post(config(id), body);
    expect(asMember.status, brief(asMember)).toBe(422);
    expect(asMember.body.error.details.reason).toBe('direct_connection_failed');
    expect(asMember.text).not.toMatch(/ECONNREFUSED|could not connect|refused|wrong version/i);
    const asAdmin = await admin.client.post(config(id), body);
    expect(asAdmin.status, brief(asAdmin)).toBe(422);
    expect(asAdmin.body.error.details.reason).toBe('unreachable');
    expect(asAdmin.text).toMatch(/ECONNREFUSED/);
  });

  it('refuses a JWT with CR/LF, NUL or characters above U+00FF with 400, on login and on save', async () => {
    const id = await newIdentity();
    // No reviewer JWT: the login JWT itself would become the TokenReview's Authorization header.
    expect((await admin.client.post(config(id), direct())).status).toBe(201);
    const good = await kube.serviceAccountToken({ namespace: 'apps', name: 'web' });
    const bad = [
      `${good}\r\nX-Injected: 1`,
      `${good}\u0000`,
      `${good}\u0100`,
      `${good}é`,
      'a b.c.d',
    ];
    for (const jwt of bad) {
      const res = await api(tp).post(LOGIN, { identityId: id, jwt });
      expect(res.status, `${JSON.stringify(jwt.slice(-12))}: ${brief(res)}`).toBe(400);
      expect(res.body.error.message).toMatch(/jwt must be a JWT/);
    }
    for (const tokenReviewerJwt of bad) {
      const res = await admin.client.patch(config(id), { tokenReviewerJwt });
      expect(res.status, brief(res)).toBe(400);
      expect(res.body.error.message).toMatch(/tokenReviewerJwt must be a JWT/);
    }
  });

  it('limits logins per IP by GATEPOOL_K8S_LOGIN_RATE_LIMIT', async () => {
    const statuses: number[] = [];
    // Distinct from other tests' addresses: the platform trusts X-Forwarded-For from loopback.
    const headers = { 'x-forwarded-for': '203.0.113.77' };
    for (let i = 0; i < 27; i++) {
      const res = await api(tp).post(
        LOGIN,
        { identityId: '00000000-0000-4000-8000-000000000000', jwt: 'a.b.c' },
        { headers },
      );
      statuses.push(res.status);
      if (res.status === 429) expect(Number(res.headers['retry-after'])).toBeGreaterThan(0);
    }
    expect(statuses.slice(0, 25).every((s) => s === 401)).toBe(true);
    expect(statuses.slice(25)).toEqual([429, 429]);
  });
});
