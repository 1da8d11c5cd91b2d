import { describe, expect, it } from 'vitest';
import type { HealthSnapshot } from '../pools/health-snapshot.js';
import {
  diffSnapshots,
  HealthEvents,
  isEmptyChange,
  TooManySubscribers,
  type HealthEvent,
} from './service.js';

const gw = (id: string, health: 'healthy' | 'unreachable' = 'healthy') => ({
  id,
  name: id,
  health,
  lastResort: null,
  rttMs: 1,
  activeStreams: 0,
  lastSeenAt: null,
});
const pool = (id: string, healthy: number) => ({
  id,
  name: id,
  health: healthy ? ('healthy' as const) : ('down' as const),
  memberCount: 2,
  healthyMemberCount: healthy,
  minHealthy: 1,
  members: [],
});

class Source {
  snap: HealthSnapshot = { gateways: [gw('a'), gw('b')], pools: [pool('p', 2)] };
  calls = 0;
  async healthSnapshot(): Promise<HealthSnapshot> {
    this.calls++;
    return structuredClone(this.snap);
  }
}

const until = async (cond: () => boolean, ms = 2000) => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
};

describe('health event diffs', () => {
  it('reports changed, added and removed entries only', () => {
    const before: HealthSnapshot = { gateways: [gw('a'), gw('b')], pools: [pool('p', 2)] };
    const after: HealthSnapshot = {
      gateways: [gw('a', 'unreachable'), gw('c')],
      pools: [pool('p', 2)],
    };
    const d = diffSnapshots(before, after);
    expect(d.gateways.map((g) => g.id)).toEqual(['a', 'c']);
    expect(d.removedGateways).toEqual(['b']);
    expect(d.pools).toEqual([]);
    expect(isEmptyChange(diffSnapshots(before, structuredClone(before)))).toBe(true);
  });
});

describe('HealthEvents', () => {
  it('sends a snapshot on subscribe, then only changes, from one poller per org', async () => {
    const source = new Source();
    const events = new HealthEvents({ source, intervalMs: 10 });
    const got1: HealthEvent[] = [];
    const got2: HealthEvent[] = [];
    const off1 = await events.subscribe('org', { send: (e) => got1.push(e) });
    const off2 = await events.subscribe('org', { send: (e) => got2.push(e) });
    expect(got1.map((e) => e.type)).toEqual(['snapshot']);
    await new Promise((r) => setTimeout(r, 50));
    // Nothing changed: nothing sent.
    expect(got1).toHaveLength(1);
    source.snap.gateways[0]!.health = 'unreachable';
    source.snap.pools[0]!.healthyMemberCount = 1;
    await until(() => got1.length === 2 && got2.length === 2);
    const change = got1[1]!;
    expect(change.type).toBe('health');
    if (change.type === 'health') {
      expect(change.data.gateways.map((g) => [g.id, g.health])).toEqual([['a', 'unreachable']]);
      expect(change.data.pools.map((p) => p.healthyMemberCount)).toEqual([1]);
    }
    off1();
    off2();
    expect(events.subscriberCount()).toBe(0);
    // The poller stops with its last subscriber.
    const calls = source.calls;
    await new Promise((r) => setTimeout(r, 50));
    expect(source.calls).toBe(calls);
    events.close();
  });

  it('sends last-seen and RTT moves only with the periodic refresh, health at once', async () => {
    const source = new Source();
    const events = new HealthEvents({ source, intervalMs: 10, softRefreshMs: 150 });
    const got: HealthEvent[] = [];
    const t0 = Date.now();
    await events.subscribe('org', { send: (e) => got.push(e) });
    source.snap.gateways[0]!.rttMs = 2;
    source.snap.gateways[0]!.lastSeenAt = new Date().toISOString();
    await new Promise((r) => setTimeout(r, 60));
    expect(got).toHaveLength(1);
    await until(() => got.length === 2);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(140);
    source.snap.gateways[1]!.health = 'unreachable';
    const t1 = Date.now();
    await until(() => got.length === 3);
    expect(Date.now() - t1).toBeLessThan(100);
    events.close();
  });

  it('bounds subscribers per org and in total', async () => {
    const events = new HealthEvents({
      source: new Source(),
      intervalMs: 1000,
      maxPerOrg: 2,
      maxTotal: 3,
    });
    const send = () => undefined;
    await events.subscribe('a', { send });
    await events.subscribe('a', { send });
    expect(events.hasRoom('a')).toBe(false);
    await expect(events.subscribe('a', { send })).rejects.toBeInstanceOf(TooManySubscribers);
    await events.subscribe('b', { send });
    await expect(events.subscribe('c', { send })).rejects.toBeInstanceOf(TooManySubscribers);
    events.close();
  });

  it('keeps serving when a snapshot fails, and reports the failure', async () => {
    const source = new Source();
    const failures: unknown[] = [];
    const events = new HealthEvents({ source, intervalMs: 10, onError: (e) => failures.push(e) });
    const got: HealthEvent[] = [];
    await events.subscribe('org', { send: (e) => got.push(e) });
    source.healthSnapshot = async () => {
      throw new Error('boom');
    };
    await until(() => failures.length > 0);
    source.healthSnapshot = Source.prototype.healthSnapshot.bind(source);
    source.snap.gateways[1]!.health = 'unreachable';
    await until(() => got.length === 2);
    events.close();
  });
});
