import { describe, expect, it } from 'vitest';
import { NotFoundError } from '../../src/server/errors.js';
import { notFound } from '../../src/server/http/errors.js';
import { PassThrough } from 'node:stream';
import {
  NoGatewayAvailableError,
  runThroughPool,
  type FailoverDeps,
  type GatewayRef,
} from '../../src/server/pools/failover.js';
import { candidate } from '../helpers/candidates.js';
import {
  decideLogin,
  judgeProbe,
  reviewToken,
  type StreamRunner,
} from '../../src/server/kubernetes-auth/review.js';
import type { TokenReviewResult } from '../../src/server/kubernetes-auth/token-review.js';

const user = (username: string): TokenReviewResult => ({
  ok: true,
  user: { username, uid: 'u', groups: [], extra: {} },
  audiences: ['gatepool'],
});
const open = { allowedNamespaces: [], allowedNames: [], allowedAudience: '' };

describe('decideLogin', () => {
  it('accepts a service account when the allow-lists are empty', () => {
    expect(decideLogin(user('system:serviceaccount:apps:web'), open)).toMatchObject({
      ok: true,
      namespace: 'apps',
      name: 'web',
    });
  });

  it('names each rejection', () => {
    const sa = user('system:serviceaccount:apps:web');
    expect(decideLogin(sa, { ...open, allowedNamespaces: ['prod'] })).toMatchObject({
      ok: false,
      reason: 'namespace_not_allowed',
    });
    expect(decideLogin(sa, { ...open, allowedNames: ['api'] })).toMatchObject({
      ok: false,
      reason: 'name_not_allowed',
    });
    expect(decideLogin(sa, { ...open, allowedAudience: 'vault' })).toMatchObject({
      ok: false,
      reason: 'audience_not_allowed',
    });
    expect(decideLogin(user('jane@example.com'), open)).toMatchObject({
      ok: false,
      reason: 'not_a_service_account',
    });
    expect(
      decideLogin(sa, {
        allowedNamespaces: ['apps', 'prod'],
        allowedNames: ['web'],
        allowedAudience: 'gatepool',
      }),
    ).toMatchObject({ ok: true });
  });

  it('passes TokenReview failures through, calling an audience mismatch by its name', () => {
    const notAuth: TokenReviewResult = {
      ok: false,
      reason: 'not_authenticated',
      message:
        '[invalid bearer token, token audiences ["x"] is invalid for the target audiences ["gatepool"]]',
    };
    expect(decideLogin(notAuth, { ...open, allowedAudience: 'gatepool' })).toMatchObject({
      ok: false,
      reason: 'audience_not_allowed',
    });
    expect(decideLogin(notAuth, open)).toMatchObject({ ok: false, reason: 'not_authenticated' });
    expect(decideLogin({ ok: false, reason: 'tls', message: 'm' }, open)).toMatchObject({
      ok: false,
      reason: 'tls',
    });
  });
});

describe('judgeProbe', () => {
  it('treats an answered review as verified', () => {
    expect(judgeProbe({ ok: false, reason: 'not_authenticated', message: '' }, true).status).toBe(
      'verified',
    );
  });
  it('treats 401/403 without a reviewer as reachable, with one as failed', () => {
    for (const reason of ['reviewer_unauthorized', 'reviewer_forbidden'] as const) {
      expect(judgeProbe({ ok: false, reason, message: '' }, false).status).toBe('reachable');
      expect(judgeProbe({ ok: false, reason, message: '' }, true)).toMatchObject({
        status: 'failed',
        reason,
      });
    }
  });
  it('fails on transport and TLS problems', () => {
    for (const reason of ['tls', 'unreachable', 'timeout', 'bad_response'] as const) {
      expect(judgeProbe({ ok: false, reason, message: '' }, false)).toMatchObject({
        status: 'failed',
        reason,
      });
    }
  });
});

/**
 * PoolRuntime.run as the platform runs it: the real runThroughPool over three members whose
 * streams are in memory. `refusals` are thrown by run itself before any member is tried (a stale
 * cache's 404, no member available), one per call.
 */
function poolRunner(
  calls: Array<{ ref: GatewayRef; target: unknown }>,
  opts: { refusals?: Error[]; invalidations?: { count: number } } = {},
): StreamRunner {
  const refusals = [...(opts.refusals ?? [])];
  const members = ['gw-1', 'gw-2', 'gw-3'].map((name) => candidate(name));
  const suspects = new Set<string>();
  const deps: FailoverDeps = {
    candidates: (ref) =>
      'gatewayId' in ref
        ? { label: 'gateway', members: [candidate(ref.gatewayId)] }
        : {
            label: 'gateway pool "p"',
            members: members.map((m) =>
              suspects.has(m.gatewayId) ? { ...m, suspectUntil: 1 } : m,
            ),
          },
    openStream: async () => new PassThrough(),
    markSuspect: (id) => void suspects.add(id),
    now: () => 0,
    // Always the first usable member, so the order of members served is predictable.
    random: () => 0,
  };
  return {
    invalidate: () => {
      if (opts.invalidations) opts.invalidations.count += 1;
    },
    run: (async (_orgId, ref, target, operation, runOpts) => {
      calls.push({ ref, target });
      const refusal = refusals.shift();
      if (refusal) throw refusal;
      return runThroughPool(deps, ref, target, operation, runOpts);
    }) as StreamRunner['run'],
  };
}

/** What the cluster answers, one scripted result per TokenReview round trip. */
function scripted(results: TokenReviewResult[]) {
  const script = [...results];
  return async (): Promise<TokenReviewResult> => {
    const next = script.shift();
    if (!next) throw new Error('script exhausted');
    return next;
  };
}

describe('reviewToken through a pool', () => {
  const conn = {
    kubernetesHost: 'https://10.0.0.1:6443',
    caCert: '',
    gatewayId: null,
    gatewayPoolId: 'pool-1',
  };
  const opts = { token: 't', bearerToken: 'r', audiences: [], timeoutMs: 1000, retries: 2 };
  const broken: TokenReviewResult = { ok: false, reason: 'unreachable', message: 'stream reset' };
  const sa = user('system:serviceaccount:a:b');

  it('targets the API server host and port through the pool', async () => {
    const calls: Array<{ ref: GatewayRef; target: unknown }> = [];
    const out = await reviewToken(poolRunner(calls), 'org', conn, opts, scripted([sa]));
    expect(out).toMatchObject({ result: { ok: true }, gatewayName: 'gw-1', tries: 1 });
    expect(calls).toEqual([
      { ref: { gatewayPoolId: 'pool-1' }, target: { host: '10.0.0.1', port: 6443 } },
    ]);
  });

  it('repeats a review whose stream broke on another member (TokenReview has no side effect), within the budget', async () => {
    const out = await reviewToken(poolRunner([]), 'org', conn, opts, scripted([broken, sa]));
    expect(out).toMatchObject({ result: { ok: true }, gatewayName: 'gw-2', tries: 2 });
    expect(out.attempts).toEqual([
      expect.objectContaining({ gatewayName: 'gw-1', reason: 'stream_broken' }),
    ]);
    // Three broken reviews with two retries: the third broken answer is the outcome.
    const exhausted = await reviewToken(
      poolRunner([]),
      'org',
      conn,
      opts,
      scripted([broken, broken, broken, sa]),
    );
    expect(exhausted).toMatchObject({
      result: { ok: false, reason: 'unreachable' },
      gatewayName: 'gw-3',
      tries: 3,
    });
    expect(exhausted.attempts.map((a) => a.gatewayName)).toEqual(['gw-1', 'gw-2']);
  });

  it('does not repeat a broken review on a pinned gateway', async () => {
    const pinned = { ...conn, gatewayId: 'gw-1', gatewayPoolId: null };
    const out = await reviewToken(poolRunner([]), 'org', pinned, opts, scripted([broken, sa]));
    expect(out).toMatchObject({
      result: { ok: false, reason: 'unreachable' },
      gatewayName: 'gw-1',
      tries: 1,
    });
  });

  it('never repeats an answered review', async () => {
    const calls: Array<{ ref: GatewayRef; target: unknown }> = [];
    const denied: TokenReviewResult = { ok: false, reason: 'reviewer_forbidden', message: 'no' };
    expect(
      await reviewToken(poolRunner(calls), 'org', conn, opts, scripted([denied, sa])),
    ).toMatchObject({ result: denied, tries: 1 });
    expect(calls).toHaveLength(1);
  });

  it('lets NoGatewayAvailableError through', async () => {
    await expect(
      reviewToken(
        poolRunner([], { refusals: [new NoGatewayAvailableError('none', [])] }),
        'org',
        conn,
        opts,
        scripted([sa]),
      ),
    ).rejects.toBeInstanceOf(NoGatewayAvailableError);
  });

  it('reloads a stale membership cache once when the pool service does not know the reference', async () => {
    const invalidations = { count: 0 };
    const calls: Array<{ ref: GatewayRef; target: unknown }> = [];
    const stale = poolRunner(calls, {
      refusals: [notFound('Gateway pool pool-1')],
      invalidations,
    });
    expect(await reviewToken(stale, 'org', conn, opts, scripted([sa]))).toMatchObject({
      result: { ok: true },
    });
    expect(invalidations.count).toBe(1);
    const gone = poolRunner([], {
      refusals: [notFound('Gateway pool pool-1'), notFound('Gateway pool pool-1')],
      invalidations,
    });
    await expect(reviewToken(gone, 'org', conn, opts, scripted([sa]))).rejects.toBeInstanceOf(
      NotFoundError,
    );
  });

  it('pins a gateway when one is configured', async () => {
    const calls: Array<{ ref: GatewayRef; target: unknown }> = [];
    await reviewToken(
      poolRunner(calls),
      'org',
      {
        ...conn,
        gatewayPoolId: null,
        gatewayId: 'gw-9',
        kubernetesHost: 'https://k8s.example.com',
      },
      opts,
      scripted([user('x')]),
    );
    expect(calls[0]).toEqual({
      ref: { gatewayId: 'gw-9' },
      target: { host: 'k8s.example.com', port: 443 },
    });
  });
});
