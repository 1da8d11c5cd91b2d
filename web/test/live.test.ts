import { QueryClient } from '@tanstack/react-query';
import { describe, expect, it, vi } from 'vitest';
import {
  applyChange,
  auditRefresher,
  pollUnlessLive,
  POLL_MS,
  poolsTouched,
} from '../src/lib/live';

const gw = {
  id: 'g1',
  name: 'gw-a',
  health: 'healthy',
  lastResort: null,
  rttMs: 1,
  activeStreams: 0,
  lastSeenAt: null,
};

function seeded() {
  const qc = new QueryClient();
  qc.setQueryData(['gateways'], {
    items: [
      { ...gw, version: '1' },
      { ...gw, id: 'g2', name: 'gw-b' },
    ],
    nextCursor: null,
  });
  qc.setQueryData(['pools'], {
    items: [
      {
        id: 'p1',
        name: 'dc1',
        health: 'healthy',
        memberCount: 2,
        healthyMemberCount: 2,
        minHealthy: 1,
      },
    ],
  });
  qc.setQueryData(['pool', 'p1'], {
    id: 'p1',
    name: 'dc1',
    health: 'healthy',
    memberCount: 2,
    healthyMemberCount: 2,
    members: [
      { ...gw, weight: 100, priority: 0, healthReason: null },
      { ...gw, id: 'g2', name: 'gw-b', weight: 100, priority: 0, healthReason: null },
    ],
  });
  const resources = { items: [{ kind: 'kubernetes-auth', id: 'i1', name: 'ci' }] };
  qc.setQueryData(['pool', 'p1', 'resources'], resources);
  return { qc, resources };
}

describe('live health merged into the cached views', () => {
  it('updates gateways, pool counts and members with the server words, nothing else', () => {
    const { qc, resources } = seeded();
    applyChange(qc, {
      gateways: [{ ...gw, health: 'unreachable', rttMs: null }],
      pools: [
        {
          id: 'p1',
          health: 'degraded',
          memberCount: 2,
          healthyMemberCount: 1,
          minHealthy: 2,
          members: [
            { gatewayId: 'g1', health: 'unreachable', lastResort: null, reason: 'tunnel gone' },
            { gatewayId: 'g2', health: 'healthy', lastResort: 'quiet tunnel', reason: null },
          ],
        },
      ],
    });
    const list = qc.getQueryData<{ items: { id: string; health: string; version?: string }[] }>([
      'gateways',
    ])!;
    expect(list.items.map((g) => g.health)).toEqual(['unreachable', 'healthy']);
    // Fields the stream does not carry stay as they were.
    expect(list.items[0]!.version).toBe('1');
    const pools = qc.getQueryData<{ items: { health: string; healthyMemberCount: number }[] }>([
      'pools',
    ])!;
    expect(pools.items[0]).toMatchObject({ health: 'degraded', healthyMemberCount: 1 });
    const detail = qc.getQueryData<{
      health: string;
      members: { health: string; healthReason: string | null; lastResort: string | null }[];
    }>(['pool', 'p1'])!;
    expect(detail.health).toBe('degraded');
    expect(detail.members[0]).toMatchObject({ health: 'unreachable', healthReason: 'tunnel gone' });
    expect(detail.members[1]).toMatchObject({ health: 'healthy', lastResort: 'quiet tunnel' });
    // The connected-resources list shares the key prefix and must come through untouched.
    expect(qc.getQueryData(['pool', 'p1', 'resources'])).toBe(resources);
  });

  it('polls every 5 s while the stream is not up', () => {
    expect(POLL_MS).toBe(5000);
    expect(pollUnlessLive()).toBe(5000);
  });
});

describe('the open pool sheet’s audit trail follows health events', () => {
  it('refetches once per burst, for the pool named or holding a named member, after the wait', async () => {
    vi.useFakeTimers();
    try {
      const { qc } = seeded();
      qc.setQueryData(['pool', 'p2'], { id: 'p2', name: 'dc2', members: [] });
      const spy = vi.spyOn(qc, 'invalidateQueries');
      const audit = auditRefresher(qc, 500);
      // A member of p1 changes (the event names only the gateway), twice in a burst.
      audit.note({ gateways: [{ ...gw, id: 'g2', health: 'unreachable' as const }], pools: [] });
      audit.note({ gateways: [{ ...gw, id: 'g2', health: 'unreachable' as const }], pools: [] });
      await vi.advanceTimersByTimeAsync(400);
      expect(spy).not.toHaveBeenCalled();
      await vi.advanceTimersByTimeAsync(200);
      expect(spy.mock.calls).toEqual([[{ queryKey: ['audit', 'pool', 'p1'] }]]);
      // An unrelated gateway touches no pool.
      audit.note({ gateways: [{ ...gw, id: 'g9', health: 'healthy' as const }], pools: [] });
      await vi.advanceTimersByTimeAsync(1000);
      expect(spy).toHaveBeenCalledTimes(1);
      expect(poolsTouched(qc, { gateways: [], pools: [{ id: 'p2' } as never] })).toEqual(
        new Set(['p2']),
      );
      audit.stop();
    } finally {
      vi.useRealTimers();
    }
  });
});
