import { PassThrough, type Duplex } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { StreamOpenError, StreamQuietError, type StreamOpenFailure } from '../tunnel/errors.js';
import { NoGatewayAvailableError, runThroughPool, type FailoverDeps } from './failover.js';
import type { Candidate } from './selection.js';
import { candidate } from '../../../test/helpers/candidates.js';

const member = candidate;

/** Deps whose openStream answers per gateway from a script, recording every open. */
function deps(members: Candidate[], outcomes: Record<string, StreamOpenFailure | 'ok'>) {
  const opens: string[] = [];
  const suspects: string[] = [];
  let clock = 0;
  const d: FailoverDeps = {
    candidates: () => ({
      label: 'pool "p"',
      members: members.map((m) =>
        suspects.includes(m.gatewayId) ? { ...m, suspectUntil: clock + 5000 } : m,
      ),
    }),
    async openStream(gatewayId): Promise<Duplex> {
      opens.push(gatewayId);
      clock += 1;
      const outcome = outcomes[gatewayId] ?? 'ok';
      if (outcome === 'ok') return new PassThrough();
      throw new StreamOpenError(
        outcome,
        `${outcome} from ${gatewayId}`,
        gatewayId,
        outcome === 'unreachable' ? 'ECONNREFUSED 127.0.0.1:9' : undefined,
      );
    },
    markSuspect: (id) => void suspects.push(id),
    now: () => clock,
    random: () => 0,
  };
  return { d, opens, suspects };
}

const target = { host: '127.0.0.1', port: 9 };
const pool = { gatewayPoolId: 'p' };

describe('runThroughPool', () => {
  it('retries an open failure on another member and reports who served', async () => {
    const { d, opens, suspects } = deps([member('a'), member('b')], { a: 'unreachable' });
    const served = await runThroughPool(d, pool, target, async () => 'done');
    expect(served.value).toBe('done');
    expect(served.gatewayName).toBe('b');
    expect(opens).toEqual(['a', 'b']);
    expect(suspects).toEqual(['a']);
    expect(served.attempts).toEqual([
      {
        gatewayId: 'a',
        gatewayName: 'a',
        reason: 'unreachable',
        message: 'unreachable (ECONNREFUSED 127.0.0.1:9)',
      },
    ]);
  });

  it('sends the bytes given to go ahead of the 200 with every attempt, the retry included', async () => {
    const { d } = deps([member('a'), member('b')], { a: 'refused' });
    const sent: { id: string; ahead: string | undefined }[] = [];
    const open = d.openStream.bind(d);
    d.openStream = (id, host, port, o) => {
      sent.push({ id, ahead: o.sendAhead?.toString() });
      return open(id, host, port, o);
    };
    const served = await runThroughPool(d, pool, target, async () => 'done', {
      sendAhead: Buffer.from('startup'),
    });
    expect(served.gatewayName).toBe('b');
    expect(sent).toEqual([
      { id: 'a', ahead: 'startup' },
      { id: 'b', ahead: 'startup' },
    ]);
  });

  it('never retries once the gateway answered 200, even when the operation fails', async () => {
    const { d, opens } = deps([member('a'), member('b')], {});
    await expect(
      runThroughPool(d, pool, target, async () => {
        throw new Error('target said no');
      }),
    ).rejects.toThrow('target said no');
    expect(opens).toHaveLength(1);
  });

  it('is bounded by the retry budget and lists every attempt', async () => {
    const members = ['a', 'b', 'c', 'd', 'e'].map((n) => member(n));
    const { d, opens } = deps(members, {
      a: 'draining',
      b: 'refused',
      c: 'tunnel_failed',
      d: 'timeout',
      e: 'timeout',
    });
    const err = await runThroughPool(d, pool, target, async () => 'x', { maxAttempts: 3 }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(NoGatewayAvailableError);
    expect(opens).toHaveLength(3);
    const attempts = (err as NoGatewayAvailableError).attempts;
    expect(attempts.map((a) => a.reason)).toEqual(['draining', 'refused', 'tunnel_failed']);
    expect((err as Error).message).toContain('tried a: draining');
  });

  it('stops at the deadline', async () => {
    const { d, opens } = deps([member('a'), member('b')], { a: 'timeout', b: 'timeout' });
    const slow: FailoverDeps = { ...d, now: () => opens.length * 10_000 };
    const err = await runThroughPool(slow, pool, target, async () => 'x', {
      deadlineMs: 5_000,
    }).catch((e: unknown) => e);
    expect((err as Error).message).toContain('deadline exceeded');
    expect(opens).toEqual(['a']);
  });

  it('runs a pinned gateway once, without failover', async () => {
    const { d, opens } = deps([member('a')], { a: 'unreachable' });
    const err = await runThroughPool(d, { gatewayId: 'a' }, target, async () => 'x').catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(NoGatewayAvailableError);
    // Said as of one gateway, not of a pool and its members.
    expect((err as Error).message).toMatch(/: could not open a stream to [^ ]+ \(tried a: /);
    expect((err as Error).message).not.toMatch(/member|attempt/);
    expect(opens).toEqual(['a']);
  });

  it('says a pinned gateway is not healthy, and why, without calling it a member', async () => {
    const { d, opens } = deps([member('a', { healthy: false, unhealthyReason: 'draining' })], {});
    const err = await runThroughPool(d, { gatewayId: 'a' }, target, async () => 'x').catch(
      (e: unknown) => e,
    );
    expect((err as Error).message).toBe('pool "p": is not healthy (draining)');
    expect(opens).toHaveLength(0);
  });

  it('lets a pool abandon an open on a member gone quiet, but not a pinned gateway, and retries the pool', async () => {
    const { d, opens } = deps([member('a'), member('b')], { a: 'quiet' });
    const asked: Array<boolean | undefined> = [];
    const open = d.openStream.bind(d);
    d.openStream = (id, host, port, o) => {
      asked.push(o.abandonWhenQuiet);
      return open(id, host, port, o);
    };
    const served = await runThroughPool(d, pool, target, async () => 'ok');
    expect(opens).toEqual(['a', 'b']);
    expect(served.attempts.map((a) => a.reason)).toEqual(['quiet']);
    await runThroughPool(d, { gatewayId: 'b' }, target, async () => 'ok');
    expect(asked).toEqual([true, true, false]);
  });

  it('says why when no member is usable at all', async () => {
    const { d, opens } = deps(
      [member('a', { healthy: false, unhealthyReason: 'unreachable' })],
      {},
    );
    await expect(runThroughPool(d, pool, target, async () => 'x')).rejects.toThrow(
      'pool "p": no healthy member (a: unreachable)',
    );
    expect(opens).toHaveLength(0);
  });

  it('does not retry when the caller aborted', async () => {
    const { d, opens } = deps([member('a'), member('b')], { a: 'aborted' });
    await expect(runThroughPool(d, pool, target, async () => 'x')).rejects.toBeInstanceOf(
      StreamOpenError,
    );
    expect(opens).toEqual(['a']);
  });
});

describe('runThroughPool with an idempotent operation', () => {
  const broken = () => new Error('tunnel to gateway a lost: no frame for 1000 ms');

  it('re-runs an operation that broke after 200 on another member when the caller allows it', async () => {
    const { d, opens, suspects } = deps([member('a'), member('b')], {});
    let calls = 0;
    const served = await runThroughPool(
      d,
      pool,
      target,
      async (_s, m) => {
        calls += 1;
        if (m.gatewayName === 'a') throw broken();
        return 'ok';
      },
      { retryOperation: (e) => e instanceof Error && /lost/.test(e.message) },
    );
    expect(served).toMatchObject({ value: 'ok', gatewayName: 'b' });
    expect(opens).toEqual(['a', 'b']);
    expect(calls).toBe(2);
    expect(suspects).toEqual(['a']);
    expect(served.attempts).toEqual([
      { gatewayId: 'a', gatewayName: 'a', reason: 'stream_broken', message: broken().message },
    ]);
  });

  it('still never retries errors the caller does not mark as transport failures, nor past the budget', async () => {
    const { d, opens } = deps([member('a'), member('b'), member('c')], {});
    await expect(
      runThroughPool(d, pool, target, async () => Promise.reject(new Error('target said no')), {
        retryOperation: (e) => e instanceof Error && /lost/.test(e.message),
      }),
    ).rejects.toThrow('target said no');
    expect(opens).toHaveLength(1);
    const again = deps([member('a'), member('b'), member('c')], {});
    await expect(
      runThroughPool(again.d, pool, target, async () => Promise.reject(broken()), {
        retryOperation: () => true,
        maxAttempts: 2,
      }),
    ).rejects.toThrow('lost');
    expect(again.opens).toHaveLength(2);
  });

  it('does not re-run on a pinned gateway', async () => {
    const { d, opens } = deps([member('a')], {});
    await expect(
      runThroughPool(d, { gatewayId: 'a' }, target, async () => Promise.reject(broken()), {
        retryOperation: () => true,
      }),
    ).rejects.toThrow('lost');
    expect(opens).toEqual(['a']);
  });

  it('asks for a cut on quiet only for a repeatable operation through a pool', async () => {
    const { d } = deps([member('a')], {});
    const asked: Array<boolean | undefined> = [];
    const open = d.openStream.bind(d);
    d.openStream = (id, host, port, o) => {
      asked.push(o.cutWhenQuiet);
      return open(id, host, port, o);
    };
    await runThroughPool(d, pool, target, async () => 'ok');
    await runThroughPool(d, pool, target, async () => 'ok', { retryOperation: () => true });
    await runThroughPool(d, { gatewayId: 'a' }, target, async () => 'ok', {
      retryOperation: () => true,
    });
    expect(asked).toEqual([false, true, false]);
  });

  it('re-runs an operation whose member went quiet, however the operation reported it', async () => {
    const { d, opens, suspects } = deps([member('a'), member('b')], {});
    const served = await runThroughPool(
      d,
      pool,
      target,
      async (stream, m) => {
        if (m.gatewayName !== 'a') return 'ok';
        // What the session does on quiet; the operation sees only that its request failed.
        stream.on('error', () => undefined);
        stream.destroy(new StreamQuietError('gateway a went quiet during the operation'));
        throw new Error('request failed: socket hang up');
      },
      // A predicate that would not recognise the wrapped error.
      { retryOperation: (e) => e instanceof Error && /lost/.test(e.message) },
    );
    expect(served).toMatchObject({ value: 'ok', gatewayName: 'b' });
    expect(opens).toEqual(['a', 'b']);
    expect(suspects).toEqual(['a']);
    expect(served.attempts).toEqual([
      {
        gatewayId: 'a',
        gatewayName: 'a',
        reason: 'stream_broken',
        message: 'gateway a went quiet during the operation',
      },
    ]);
  });
});
