/**
 * Browser sessions: the cookie is httpOnly + SameSite=Strict (+ Secure over https), changes
 * made with it need the x-gatepool-request header and a matching Origin (CSRF), bearer
 * clients are unaffected; a person in several organizations switches between them.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  addIdentity,
  api,
  bootstrap,
  createSecondOrg,
  DRIVERS,
  login,
  startTestPlatform,
  TEST_PASSWORD,
  type Account,
  type ApiResponse,
  type TestPlatform,
} from '../helpers/platform.js';

const brief = (res: ApiResponse) => `${res.status} ${res.text.slice(0, 300)}`;
const cookieOf = (res: ApiResponse) =>
  res.setCookie.find((c) => c.startsWith('gatepool_session='))!;

describe.each(DRIVERS)('cookie sessions and CSRF on %s', (driver) => {
  let tp: TestPlatform;
  let admin: Account;
  let cookie: string;
  let host: string;

  beforeAll(async () => {
    tp = await startTestPlatform(driver);
    admin = await bootstrap(tp);
    const res = await api(tp).post('/api/v1/auth/login', {
      email: admin.email,
      password: TEST_PASSWORD,
    });
    cookie = cookieOf(res).split(';')[0]!;
    host = new URL(tp.url).host;
  });
  afterAll(() => tp?.close());

  const withCookie = (extra: Record<string, string> = {}) => ({ headers: { cookie, ...extra } });

  it('sets an httpOnly, SameSite=Strict cookie, Secure when the client came over https', async () => {
    const plain = await api(tp).post('/api/v1/auth/login', {
      email: admin.email,
      password: TEST_PASSWORD,
    });
    expect(cookieOf(plain)).toMatch(/HttpOnly/i);
    expect(cookieOf(plain)).toMatch(/SameSite=Strict/i);
    expect(cookieOf(plain)).not.toMatch(/;\s*Secure/i);
    // Behind a TLS-terminating proxy (tests trust loopback as one).
    const tls = await api(tp).post(
      '/api/v1/auth/login',
      { email: admin.email, password: TEST_PASSWORD },
      { headers: { 'x-forwarded-proto': 'https' } },
    );
    expect(cookieOf(tls)).toMatch(/;\s*Secure/i);
    expect(cookieOf(tls)).toMatch(/SameSite=Strict/i);
  });

  it('refuses cookie-authenticated changes without x-gatepool-request: 1, with a clear 403', async () => {
    const body = { name: 'csrf-bot', role: 'viewer' };
    const variants: Record<string, string>[] = [
      {},
      { 'x-gatepool-request': '0' },
      { 'x-gatepool-request': 'yes' },
    ];
    for (const headers of variants) {
      const res = await api(tp).post('/api/v1/identities', body, withCookie(headers));
      expect(res.status, brief(res)).toBe(403);
      expect(res.body.error.code).toBe('csrf_required');
      expect(res.body.error.message).toContain('x-gatepool-request: 1');
    }
    for (const [method, path] of [
      ['PATCH', '/api/v1/organization'],
      ['PUT', '/api/v1/license'],
      ['DELETE', `/api/v1/users/${admin.id}`],
      ['POST', '/api/v1/auth/logout'],
    ] as const) {
      const res = await api(tp).send(
        method,
        path,
        method === 'DELETE' || path.endsWith('logout') ? undefined : { name: 'x' },
        withCookie(),
      );
      expect(res.status, `${method} ${path}: ${brief(res)}`).toBe(403);
      expect(res.body.error.code).toBe('csrf_required');
    }
    // Nothing happened.
    const list = await admin.client.get('/api/v1/identities');
    expect(list.body.items.map((i: { name: string }) => i.name)).not.toContain('csrf-bot');
    expect((await api(tp).get('/api/v1/me', withCookie())).status).toBe(200);
  });

  it('accepts cookie changes with the header, and checks Origin when present', async () => {
    const ok = await api(tp).post(
      '/api/v1/identities',
      { name: 'ui-bot', role: 'viewer' },
      withCookie({ 'x-gatepool-request': '1' }),
    );
    expect(ok.status, brief(ok)).toBe(201);
    const sameOrigin = await api(tp).post(
      '/api/v1/identities',
      { name: 'ui-bot-2', role: 'viewer' },
      withCookie({ 'x-gatepool-request': '1', origin: `http://${host}` }),
    );
    expect(sameOrigin.status, brief(sameOrigin)).toBe(201);
    for (const origin of ['https://evil.example', 'null', `http://${host}.evil.example`]) {
      const res = await api(tp).post(
        '/api/v1/identities',
        { name: 'evil-bot', role: 'viewer' },
        withCookie({ 'x-gatepool-request': '1', origin }),
      );
      expect(res.status, `${origin}: ${brief(res)}`).toBe(403);
      expect(res.body.error.code).toBe('csrf_required');
    }
    // Reads need no header.
    expect((await api(tp).get('/api/v1/identities', withCookie())).status).toBe(200);
  });

  it('leaves bearer clients unchanged and answers 401 for an unknown cookie', async () => {
    const bearer = await admin.client.post('/api/v1/identities', {
      name: 'cli-bot',
      role: 'viewer',
    });
    expect(bearer.status).toBe(201);
    // A bearer header wins over a cookie: no CSRF check applies to it.
    const both = await api(tp, admin.token).post(
      '/api/v1/identities',
      { name: 'cli-bot-2', role: 'viewer' },
      withCookie(),
    );
    expect(both.status).toBe(201);
    const unknown = await api(tp).post(
      '/api/v1/identities',
      { name: 'x', role: 'viewer' },
      { headers: { cookie: `gatepool_session=gps_${'Z'.repeat(43)}` } },
    );
    expect(unknown.status).toBe(401);
  });
});

describe.each(DRIVERS)('switching organization on %s', (driver) => {
  let tp: TestPlatform;
  let a: Account;
  let b: Account;

  beforeAll(async () => {
    tp = await startTestPlatform(driver);
    a = await bootstrap(tp, { organizationName: 'Alpha' });
    b = await createSecondOrg(tp, 'Beta');
    // b joins Alpha as a viewer through an invitation.
    const inv = await a.client.post('/api/v1/users', {
      email: b.email,
      password: TEST_PASSWORD,
      role: 'viewer',
    });
    const accepted = await b.client.post(`/api/v1/me/invitations/${inv.body.id}/accept`, {
      code: inv.body.acceptCode,
    });
    expect(accepted.status).toBe(200);
  });
  afterAll(() => tp?.close());

  it('lists the organizations and moves the session to another one (bearer)', async () => {
    const { token } = await login(tp, b.email, TEST_PASSWORD, b.orgId);
    const client = api(tp, token);
    const me = await client.get('/api/v1/me');
    expect(me.body.organization).toEqual({ id: b.orgId, name: 'Beta' });
    expect(me.body.organizations).toEqual([
      { id: b.orgId, name: 'Beta', role: 'admin' },
      { id: a.orgId, name: 'Alpha', role: 'viewer' },
    ]);
    const switched = await client.post('/api/v1/auth/switch-organization', {
      organizationId: a.orgId,
    });
    expect(switched.status, brief(switched)).toBe(200);
    expect(switched.body).toMatchObject({
      organization: { id: a.orgId, name: 'Alpha' },
      role: 'viewer',
      token: expect.stringMatching(/^gps_/),
    });
    // The old session ended; the new one acts in Alpha with Alpha's role.
    expect((await client.get('/api/v1/me')).status).toBe(401);
    const inAlpha = api(tp, switched.body.token);
    expect((await inAlpha.get('/api/v1/me')).body).toMatchObject({
      organization: { id: a.orgId },
      role: 'viewer',
    });
    expect((await inAlpha.post('/api/v1/identities', { name: 'n', role: 'viewer' })).status).toBe(
      403,
    );
    const log = await a.client.get('/api/v1/audit-logs?event=auth.switch-organization');
    expect(log.body.items[0]).toMatchObject({
      actor: { id: b.id },
      metadata: { fromOrganizationId: b.orgId },
    });
  });

  it('refuses an org the person is not in (404), identities (403) and bad input (400)', async () => {
    const { token } = await login(tp, a.email, TEST_PASSWORD);
    const client = api(tp, token);
    const notMine = await client.post('/api/v1/auth/switch-organization', {
      organizationId: b.orgId,
    });
    expect(notMine.status).toBe(404);
    expect((await client.get('/api/v1/me')).status).toBe(200); // still signed in
    const made = await client.post('/api/v1/auth/switch-organization', {
      organizationId: crypto.randomUUID(),
    });
    expect(made.status).toBe(404);
    expect(made.body).toEqual(notMine.body);
    const bad = await client.post('/api/v1/auth/switch-organization', { organizationId: 'x' });
    expect(bad.status).toBe(400);
    const bot = await addIdentity(tp, a, 'admin');
    const refused = await bot.client.post('/api/v1/auth/switch-organization', {
      organizationId: a.orgId,
    });
    expect(refused.status).toBe(403);
  });

  it('switches a cookie session (with the CSRF header) and sets the new cookie', async () => {
    const res = await api(tp).post('/api/v1/auth/login', {
      email: b.email,
      password: TEST_PASSWORD,
      organizationId: b.orgId,
    });
    const cookie = cookieOf(res).split(';')[0]!;
    const without = await api(tp).post(
      '/api/v1/auth/switch-organization',
      { organizationId: a.orgId },
      { headers: { cookie } },
    );
    expect(without.status).toBe(403);
    expect(without.body.error.code).toBe('csrf_required');
    const switched = await api(tp).post(
      '/api/v1/auth/switch-organization',
      { organizationId: a.orgId },
      { headers: { cookie, 'x-gatepool-request': '1' } },
    );
    expect(switched.status, brief(switched)).toBe(200);
    const next = cookieOf(switched);
    expect(next).toMatch(/SameSite=Strict/i);
    const me = await api(tp).get('/api/v1/me', { headers: { cookie: next.split(';')[0]! } });
    expect(me.body.organization.id).toBe(a.orgId);
    expect((await api(tp).get('/api/v1/me', { headers: { cookie } })).status).toBe(401);
  });
});
