import { describe, expect, it } from 'vitest';
import { notFound } from '../../src/server/http/errors.js';
import {
  NoGatewayAvailableError,
  type GatewayRef,
  type Served,
} from '../../src/server/pools/failover.js';
import {
  decideLogin,
  judgeProbe,
  reviewToken,
  type StreamRunner,
} from '../../src/server/kubernetes-auth/service.js';
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

/** A fake PoolService.run: hands out streams whose review outcome the test scripts. */
function runner(
  script: Array<TokenReviewResult | Error>,
  calls: Array<{ ref: GatewayRef; target: unknown }>,
  invalidations = { count: 0 },
): StreamRunner {
  let i = 0;
  return {
    invalidate: () => void invalidations.count++,
    run: (async (_orgId: string, ref: GatewayRef, target: unknown) => {
      calls.push({ ref, target });
      const next = script[i++];
      if (!next) throw new Error('script exhausted');
      if (next instanceof Error) throw next;
      const served: Served<TokenReviewResult> = {
        value: next,
        gatewayId: `gw${i}`,
        gatewayName: `gw-${i}`,
        attempts: [],
      };
      return served;
    }) as StreamRunner['run'],
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

  it('targets the API server host and port through the pool', async () => {
    const calls: Array<{ ref: GatewayRef; target: unknown }> = [];
    const out = await reviewToken(
      runner([user('system:serviceaccount:a:b')], calls),
      'org',
      conn,
      opts,
    );
    expect(out).toMatchObject({ result: { ok: true }, gatewayName: 'gw-1', tries: 1 });
    expect(calls).toEqual([
      { ref: { gatewayPoolId: 'pool-1' }, target: { host: '10.0.0.1', port: 6443 } },
    ]);
  });

  it('repeats a review whose stream broke (TokenReview has no side effect), within the budget', async () => {
    const broken: TokenReviewResult = { ok: false, reason: 'unreachable', message: 'stream reset' };
    const calls: Array<{ ref: GatewayRef; target: unknown }> = [];
    const out = await reviewToken(
      runner([broken, user('system:serviceaccount:a:b')], calls),
      'org',
      conn,
      opts,
    );
    expect(out).toMatchObject({ result: { ok: true }, gatewayName: 'gw-2', tries: 2 });
    expect(out.attempts).toEqual([
      expect.objectContaining({ gatewayName: 'gw-1', reason: 'stream_broken' }),
    ]);
    const exhausted = await reviewToken(runner([broken, broken, broken], []), 'org', conn, opts);
    expect(exhausted).toMatchObject({ result: { ok: false, reason: 'unreachable' }, tries: 3 });
  });

  it('never repeats an answered review', async () => {
    const calls: Array<{ ref: GatewayRef; target: unknown }> = [];
    const denied: TokenReviewResult = { ok: false, reason: 'reviewer_forbidden', message: 'no' };
    expect(await reviewToken(runner([denied, user('x')], calls), 'org', conn, opts)).toMatchObject({
      result: denied,
      tries: 1,
    });
    expect(calls).toHaveLength(1);
  });

  it('lets NoGatewayAvailableError through', async () => {
    await expect(
      reviewToken(runner([new NoGatewayAvailableError('none', [])], []), 'org', conn, opts),
    ).rejects.toBeInstanceOf(NoGatewayAvailableError);
  });

  it('reloads a stale membership cache once when the pool service does not know the reference', async () => {
    const invalidations = { count: 0 };
    const calls: Array<{ ref: GatewayRef; target: unknown }> = [];
    const stale = runner(
      [notFound('Gateway pool pool-1'), user('system:serviceaccount:a:b')],
      calls,
      invalidations,
    );
    expect(await reviewToken(stale, 'org', conn, opts)).toMatchObject({ result: { ok: true } });
    expect(invalidations.count).toBe(1);
    const gone = runner(
      [notFound('Gateway pool pool-1'), notFound('Gateway pool pool-1')],
      [],
      invalidations,
    );
    await expect(reviewToken(gone, 'org', conn, opts)).rejects.toMatchObject({ statusCode: 404 });
  });

  it('pins a gateway when one is configured', async () => {
    const calls: Array<{ ref: GatewayRef; target: unknown }> = [];
    await reviewToken(
      runner([user('x')], calls),
      'org',
      {
        ...conn,
        gatewayPoolId: null,
        gatewayId: 'gw-9',
        kubernetesHost: 'https://k8s.example.com',
      },
      opts,
    );
    expect(calls[0]).toEqual({
      ref: { gatewayId: 'gw-9' },
      target: { host: 'k8s.example.com', port: 443 },
    });
  });
});
