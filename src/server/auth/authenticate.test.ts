import type { FastifyRequest } from 'fastify';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { Db } from '../db/client.js';
import { authenticate } from './authenticate.js';
import { CredentialCache } from './credential-cache.js';

/**
 * authenticate() against a stand-in database that answers every query with `rows` (after
 * `gate`, when set) and counts them: which requests read the database, which are served from
 * the cache. The real queries run in test/auth/credential-cache.test.ts.
 */
function fakeDb() {
  const state = {
    rows: [] as unknown[],
    selects: 0,
    updates: 0,
    failUpdates: false,
    gate: undefined as Promise<void> | undefined,
  };
  const chain = (result: () => Promise<unknown>): unknown => {
    const c: unknown = new Proxy(
      {},
      {
        get: (_t, prop) =>
          prop === 'then'
            ? (ok: (v: unknown) => unknown, fail: (e: unknown) => unknown) =>
                result().then(ok, fail)
            : () => c,
      },
    );
    return c;
  };
  const db = {
    select: () => {
      state.selects++;
      return chain(async () => {
        await state.gate;
        return state.rows;
      });
    },
    // Why a refused credential was refused (session-endings.ts): nothing known here.
    execute: async () => ({ rows: [] }),
    update: () => {
      state.updates++;
      return chain(async () => {
        if (state.failUpdates) throw new Error('database is away');
      });
    },
  };
  return { db: db as unknown as Db, state };
}

const warn = vi.fn();
function request(
  token: string,
  opts: { cookie?: boolean; method?: string; headers?: Record<string, string> } = {},
): FastifyRequest {
  return {
    method: opts.method ?? 'GET',
    host: 'gatepool.internal',
    headers: { ...(opts.cookie ? {} : { authorization: `Bearer ${token}` }), ...opts.headers },
    cookies: opts.cookie ? { gatepool_session: token } : {},
    log: { warn },
  } as unknown as FastifyRequest;
}

const SESSION = 'gps_session-token';
const IDENTITY = 'gpi_identity-token';
const sessionRow = {
  sessionId: 's1',
  orgId: 'o1',
  userId: 'u1',
  name: 'Ann',
  email: 'ann@example.com',
  role: 'viewer',
  expiresAt: new Date(Date.now() + 3600_000),
};

afterEach(() => {
  vi.useRealTimers();
  warn.mockReset();
});

describe('authenticate with a credential cache', () => {
  it('reads the database once, then serves the caller from the cache', async () => {
    const { db, state } = fakeDb();
    const ctx = { db, credentials: new CredentialCache() };
    state.rows = [sessionRow];
    const first = await authenticate(ctx, request(SESSION));
    expect(state.selects).toBe(1);
    const second = await authenticate(ctx, request(SESSION));
    expect(state.selects).toBe(1);
    expect(second).toMatchObject({ type: 'user', id: 'u1', orgId: 'o1', sessionId: 's1' });
    expect(second.ability.can('read', 'Gateway')).toBe(first.ability.can('read', 'Gateway'));
    // After a clear the database decides again: here, that the session is gone.
    ctx.credentials.clear();
    state.rows = [];
    await expect(authenticate(ctx, request(SESSION))).rejects.toMatchObject({
      message: expect.stringMatching(/expired/),
    });
    expect(state.selects).toBe(2);
    // A credential the database refused is not cached either.
    await expect(authenticate(ctx, request(SESSION))).rejects.toBeDefined();
    expect(state.selects).toBe(3);
  });

  it('does not store what a lookup read before a revocation cleared the cache', async () => {
    const { db, state } = fakeDb();
    const ctx = { db, credentials: new CredentialCache() };
    state.rows = [sessionRow];
    let release = () => undefined as void;
    state.gate = new Promise<void>((r) => (release = r));
    const racing = authenticate(ctx, request(SESSION));
    // The revocation commits and clears while the lookup above still waits for its answer.
    ctx.credentials.clear();
    release();
    await racing;
    state.gate = undefined;
    state.rows = [];
    await expect(authenticate(ctx, request(SESSION))).rejects.toBeDefined();
    expect(state.selects).toBe(2);
  });

  it('still asks a cookie change for the CSRF header when the session is cached', async () => {
    const { db, state } = fakeDb();
    const ctx = { db, credentials: new CredentialCache() };
    state.rows = [sessionRow];
    await authenticate(ctx, request(SESSION, { cookie: true }));
    await expect(
      authenticate(ctx, request(SESSION, { cookie: true, method: 'POST' })),
    ).rejects.toMatchObject({ code: 'csrf_required' });
    await expect(
      authenticate(
        ctx,
        request(SESSION, { cookie: true, method: 'POST', headers: { 'x-gatepool-request': '1' } }),
      ),
    ).resolves.toMatchObject({ id: 'u1' });
    expect(state.selects).toBe(1);
  });

  it('writes "last used" of a cached token at most once a minute, without waiting on it', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const t0 = new Date('2030-01-01T00:00:00Z');
    vi.setSystemTime(t0);
    const { db, state } = fakeDb();
    const ctx = { db, credentials: new CredentialCache({ maxAgeMs: 10 * 60_000 }) };
    state.rows = [
      {
        tokenId: 't1',
        orgId: 'o1',
        identityId: 'i1',
        name: 'bot',
        role: 'viewer',
        lastUsedAt: null,
        expiresAt: null,
      },
    ];
    await authenticate(ctx, request(IDENTITY));
    expect(state.updates).toBe(1);
    vi.setSystemTime(t0.getTime() + 30_000);
    await authenticate(ctx, request(IDENTITY));
    expect(state.updates).toBe(1);
    // Due again, and the database fails the write: the request does not care.
    state.failUpdates = true;
    vi.setSystemTime(t0.getTime() + 61_000);
    await expect(authenticate(ctx, request(IDENTITY))).resolves.toMatchObject({ tokenId: 't1' });
    expect(state.updates).toBe(2);
    await vi.waitFor(() => expect(warn).toHaveBeenCalledTimes(1));
    vi.setSystemTime(t0.getTime() + 62_000);
    await authenticate(ctx, request(IDENTITY));
    expect(state.updates).toBe(2);
    expect(state.selects).toBe(1);
  });

  it('without a cache, reads the database every time', async () => {
    const { db, state } = fakeDb();
    state.rows = [sessionRow];
    await authenticate({ db }, request(SESSION));
    await authenticate({ db }, request(SESSION));
    expect(state.selects).toBe(2);
  });
});
