/**
 * The credential cache (src/server/auth/credential-cache.ts) through the real API: a warm cache
 * really spares the database, and every revocation or permission change made through the
 * platform applies to the very next request. Each case first proves the caller is cached, so
 * a pass means the change cleared the cache, not that it was cold.
 */
import { join } from 'node:path';
import { eq } from 'drizzle-orm';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { hashToken } from '../../src/server/auth/tokens.js';
import { request as localRequest, SOCKET_NAME } from '../../src/server/db/datadir-lock.js';
import { identityAccessTokens } from '../../src/server/db/schema.js';
import {
  addIdentity,
  addUser,
  api,
  bootstrap,
  DRIVERS,
  login,
  startTestPlatform,
  TEST_PASSWORD,
  type Account,
  type ApiClient,
  type TestPlatform,
} from '../helpers/platform.js';

describe.each(DRIVERS)('credential cache on %s', (driver) => {
  let tp: TestPlatform;
  let admin: Account;

  beforeAll(async () => {
    tp = await startTestPlatform(driver);
    admin = await bootstrap(tp);
  });
  afterAll(() => tp?.close());
  afterEach(() => vi.restoreAllMocks());

  const cached = (token: string) => tp.platform.ctx.credentials.get(hashToken(token)) !== undefined;

  /** A successful call with `client`, after which its credential must be in the cache. */
  async function warm(client: ApiClient, path = '/api/v1/me', status = 200): Promise<void> {
    expect((await client.get(path)).status).toBe(status);
    expect(cached(client.token!)).toBe(true);
  }

  /** Queries the platform sends to the database while `fn` runs. */
  async function selectsDuring(fn: () => Promise<unknown>): Promise<number> {
    const select = vi.spyOn(tp.platform.ctx.db, 'select');
    try {
      await fn();
      return select.mock.calls.length;
    } finally {
      select.mockRestore();
    }
  }

  it('serves a known credential without its database lookup', async () => {
    const bot = await addIdentity(tp, admin, 'viewer');
    for (const client of [admin.client, bot.client]) {
      const warmRuns: number[] = [];
      const coldRuns: number[] = [];
      // Min of three: anything else reading the database meanwhile can only add to a count.
      for (let i = 0; i < 3; i++) {
        await warm(client);
        warmRuns.push(await selectsDuring(() => client.get('/api/v1/me')));
        tp.platform.ctx.credentials.clear();
        coldRuns.push(await selectsDuring(() => client.get('/api/v1/me')));
        expect(cached(client.token!)).toBe(true);
      }
      expect(Math.min(...coldRuns) - Math.min(...warmRuns)).toBeGreaterThanOrEqual(1);
    }
  });

  it('logout: the old session is refused at once', async () => {
    const { token } = await login(tp, admin.email, TEST_PASSWORD);
    const session = api(tp, token);
    await warm(session);
    expect((await session.post('/api/v1/auth/logout')).status).toBe(204);
    expect((await session.get('/api/v1/me')).status).toBe(401);
    // The same for the browser's cookie.
    const viaCookie = await api(tp).get('/api/v1/me', {
      headers: { cookie: `gatepool_session=${token}` },
    });
    expect(viaCookie.status).toBe(401);
    // Other callers are unaffected (they are merely looked up again).
    expect((await admin.client.get('/api/v1/me')).status).toBe(200);
  });

  it('a revoked identity token is refused at once; a token logging itself out too', async () => {
    const bot = await addIdentity(tp, admin, 'viewer');
    await warm(bot.client);
    expect(
      (await admin.client.delete(`/api/v1/identities/${bot.id}/tokens/${bot.tokenId}`)).status,
    ).toBe(204);
    expect((await bot.client.get('/api/v1/me')).status).toBe(401);

    const second = await admin.client.post(`/api/v1/identities/${bot.id}/tokens`, {});
    const other = api(tp, second.body.token);
    await warm(other);
    expect((await other.post('/api/v1/auth/logout')).status).toBe(204);
    expect((await other.get('/api/v1/me')).status).toBe(401);
  });

  it('a member removed from the org is refused at once', async () => {
    const viewer = await addUser(tp, admin, 'viewer');
    await warm(viewer.client);
    expect((await admin.client.delete(`/api/v1/users/${viewer.id}`)).status).toBe(204);
    expect((await viewer.client.get('/api/v1/me')).status).toBe(401);
  });

  it("a member's new role applies at once, both ways", async () => {
    const user = await addUser(tp, admin, 'viewer');
    await warm(user.client, '/api/v1/audit-logs', 403);
    expect((await admin.client.patch(`/api/v1/users/${user.id}`, { role: 'admin' })).status).toBe(
      200,
    );
    expect((await user.client.get('/api/v1/audit-logs')).status).toBe(200);
    await warm(user.client, '/api/v1/audit-logs', 200);
    expect((await admin.client.patch(`/api/v1/users/${user.id}`, { role: 'viewer' })).status).toBe(
      200,
    );
    expect((await user.client.get('/api/v1/audit-logs')).status).toBe(403);
    expect((await user.client.get('/api/v1/me')).body.role).toBe('viewer');
  });

  it("an identity's new role applies at once", async () => {
    const bot = await addIdentity(tp, admin, 'viewer');
    await warm(bot.client, '/api/v1/audit-logs', 403);
    expect(
      (await admin.client.patch(`/api/v1/identities/${bot.id}`, { role: 'admin' })).status,
    ).toBe(200);
    expect((await bot.client.get('/api/v1/audit-logs')).status).toBe(200);
  });

  it("a custom role's edited permissions apply at once, both ways", async () => {
    const slug = 'cache-auditor';
    expect(
      (
        await admin.client.post('/api/v1/roles', {
          slug,
          name: 'Cache auditor',
          permissions: [{ subject: 'AuditLog', action: 'read' }],
        })
      ).status,
    ).toBe(201);
    const user = await addUser(tp, admin, slug);
    const bot = await addIdentity(tp, admin, slug);
    for (const client of [user.client, bot.client]) await warm(client, '/api/v1/users', 403);
    const grant = await admin.client.patch(`/api/v1/roles/${slug}`, {
      permissions: [
        { subject: 'AuditLog', action: 'read' },
        { subject: 'Member', action: 'read' },
      ],
    });
    expect(grant.status).toBe(200);
    for (const client of [user.client, bot.client])
      expect((await client.get('/api/v1/users')).status).toBe(200);
    for (const client of [user.client, bot.client]) await warm(client, '/api/v1/users', 200);
    const strip = await admin.client.patch(`/api/v1/roles/${slug}`, {
      permissions: [{ subject: 'AuditLog', action: 'read' }],
    });
    expect(strip.status).toBe(200);
    for (const client of [user.client, bot.client])
      expect((await client.get('/api/v1/users')).status).toBe(403);
  });

  it('a deleted identity is refused at once', async () => {
    const bot = await addIdentity(tp, admin, 'member');
    await warm(bot.client);
    expect((await admin.client.delete(`/api/v1/identities/${bot.id}`)).status).toBe(204);
    expect((await bot.client.get('/api/v1/me')).status).toBe(401);
  });

  it('any change clears, even a refused one; a request turned away at the door does not', async () => {
    await warm(admin.client);
    // Refused before any route code ran: it changed nothing.
    expect((await api(tp).post('/api/v1/users', {})).status).toBe(401);
    expect(cached(admin.token)).toBe(true);
    const viewer = await addUser(tp, admin, 'viewer');
    await warm(admin.client);
    await warm(viewer.client);
    expect((await viewer.client.post('/api/v1/users', {})).status).toBe(403);
    expect(cached(admin.token)).toBe(true);
    // Admitted, then failed: a route may have committed before failing, so the cache goes.
    const twice = await admin.client.post('/api/v1/roles', {
      slug: 'viewer',
      name: 'Clash',
      permissions: [],
    });
    expect(twice.status).toBeGreaterThanOrEqual(400);
    expect(cached(admin.token)).toBe(false);
    expect(cached(viewer.token)).toBe(false);
  });
});

describe.each(DRIVERS)('credential cache over time on %s', (driver) => {
  let tp: TestPlatform;
  let admin: Account;
  beforeAll(async () => {
    tp = await startTestPlatform(driver, {
      configOverrides: { GATEPOOL_SESSION_TTL_SECONDS: '60' },
    });
    admin = await bootstrap(tp);
  });
  afterAll(() => tp?.close());
  afterEach(() => vi.useRealTimers());

  /** Moves the platform's clock (Date only: timers and sockets run on). */
  function clockAt(start: number) {
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(start);
    return (ms: number) => vi.setSystemTime(start + ms);
  }

  it('a cached session is refused the moment it expires, not at the cache max age', async () => {
    const at = clockAt(Date.now());
    const { token } = await login(tp, admin.email, TEST_PASSWORD);
    const session = api(tp, token);
    // Cached again 55 s in, 5 s before the 60 s session ends; 6 s later the entry is young.
    at(55_000);
    expect((await session.get('/api/v1/me')).status).toBe(200);
    expect(tp.platform.ctx.credentials.get(hashToken(token))).toBeDefined();
    at(59_000);
    expect((await session.get('/api/v1/me')).status).toBe(200);
    at(61_000);
    const res = await session.get('/api/v1/me');
    expect(res.status).toBe(401);
    expect(res.body.error.message).toMatch(/expired/);
  });

  it('a change made behind the platform (by hand in the database) shows within the max age', async () => {
    const at = clockAt(Date.now());
    const bot = await addIdentity(tp, admin, 'viewer');
    expect((await bot.client.get('/api/v1/me')).status).toBe(200);
    await tp.db
      .update(identityAccessTokens)
      .set({ revokedAt: new Date() })
      .where(eq(identityAccessTokens.id, bot.tokenId));
    // Not seen yet: nothing told this process (the documented staleness bound) ...
    at(29_000);
    expect((await bot.client.get('/api/v1/me')).status).toBe(200);
    // ... and seen once the entry is 30 s old.
    at(30_000);
    expect((await bot.client.get('/api/v1/me')).status).toBe(401);
  });
});

describe('credential cache and operator commands', () => {
  let tp: TestPlatform;
  beforeAll(async () => {
    // The platform opens its own data directory, so it holds the operator socket.
    tp = await startTestPlatform('pglite', { database: 'configured' });
  });
  afterAll(() => tp?.close());

  it('create-org over the data directory socket clears the cache', async () => {
    const admin = await bootstrap(tp);
    expect((await admin.client.get('/api/v1/me')).status).toBe(200);
    expect(tp.platform.ctx.credentials.get(hashToken(admin.token))).toBeDefined();
    const answer = await localRequest(
      join(tp.dataDir, SOCKET_NAME),
      { op: 'create-org', name: 'Second', adminEmail: admin.email },
      30_000,
    );
    expect(answer.body).toMatchObject({ ok: true, createdUser: false });
    expect(tp.platform.ctx.credentials.size).toBe(0);
    expect((await admin.client.get('/api/v1/me')).status).toBe(200);
  });
});
