/**
 * Live health for the UI: one poller per organization while someone listens, diffing the
 * health snapshot (from memory, no I/O) every tick and fanning out only what changed. The
 * snapshot is the one health function's output; nothing here decides health.
 */
import type {
  GatewayHealthEntry,
  HealthSnapshot,
  HealthSource,
  PoolHealthEntry,
} from '../pools/health-snapshot.js';

export interface HealthChange {
  gateways: GatewayHealthEntry[];
  pools: PoolHealthEntry[];
  removedGateways: string[];
  removedPools: string[];
}

export type HealthEvent =
  { type: 'snapshot'; data: HealthSnapshot } | { type: 'health'; data: HealthChange };

export interface Subscriber {
  send(event: HealthEvent): void;
}

export interface HealthEventsOptions {
  source: HealthSource;
  intervalMs?: number;
  maxPerOrg?: number;
  maxTotal?: number;
  /** How often last-seen times and RTTs are refreshed (health changes go out at once). */
  softRefreshMs?: number;
  onError?: (err: unknown) => void;
}

export class TooManySubscribers extends Error {}

interface OrgFeed {
  subscribers: Set<Subscriber>;
  last: HealthSnapshot | undefined;
  timer: ReturnType<typeof setInterval>;
  busy: boolean;
  /** The snapshot last compared with soft fields (last seen, RTT), and when. */
  softBase: HealthSnapshot | undefined;
  softAt: number;
}

/**
 * What changed between two snapshots. A live gateway's last-seen time and RTT move with every
 * keepalive: they count only with `soft` (a periodic refresh), or the stream would repeat
 * every gateway four times a second.
 */
export function diffSnapshots(
  before: HealthSnapshot,
  after: HealthSnapshot,
  soft = true,
): HealthChange {
  const key = soft
    ? JSON.stringify
    : (g: GatewayHealthEntry) => JSON.stringify({ ...g, lastSeenAt: null, rttMs: null });
  return {
    gateways: changed(before.gateways, after.gateways, key),
    pools: changed(before.pools, after.pools, JSON.stringify),
    removedGateways: removed(before.gateways, after.gateways),
    removedPools: removed(before.pools, after.pools),
  };
}

export const isEmptyChange = (c: HealthChange) =>
  !c.gateways.length && !c.pools.length && !c.removedGateways.length && !c.removedPools.length;

function changed<T extends { id: string }>(before: T[], after: T[], key: (e: T) => string): T[] {
  const old = new Map(before.map((e) => [e.id, key(e)]));
  return after.filter((e) => old.get(e.id) !== key(e));
}

function removed<T extends { id: string }>(before: T[], after: T[]): string[] {
  const now = new Set(after.map((e) => e.id));
  return before.filter((e) => !now.has(e.id)).map((e) => e.id);
}

export class HealthEvents {
  private readonly feeds = new Map<string, OrgFeed>();
  private total = 0;
  private readonly intervalMs: number;
  private readonly maxPerOrg: number;
  private readonly maxTotal: number;
  private readonly softRefreshMs: number;

  constructor(private readonly opts: HealthEventsOptions) {
    this.intervalMs = opts.intervalMs ?? 250;
    this.maxPerOrg = opts.maxPerOrg ?? 50;
    this.maxTotal = opts.maxTotal ?? 1000;
    this.softRefreshMs = opts.softRefreshMs ?? 5000;
  }

  hasRoom(orgId: string): boolean {
    return this.total < this.maxTotal && this.subscriberCount(orgId) < this.maxPerOrg;
  }

  /** Sends the current snapshot, then changes; returns the unsubscribe function. */
  async subscribe(orgId: string, sub: Subscriber): Promise<() => void> {
    if (!this.hasRoom(orgId)) throw new TooManySubscribers();
    const snapshot = await this.opts.source.healthSnapshot(orgId);
    const feed = this.feeds.get(orgId) ?? this.startFeed(orgId, snapshot);
    feed.subscribers.add(sub);
    this.total++;
    sub.send({ type: 'snapshot', data: snapshot });
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.total--;
      feed.subscribers.delete(sub);
      if (feed.subscribers.size === 0) {
        clearInterval(feed.timer);
        this.feeds.delete(orgId);
      }
    };
  }

  subscriberCount(orgId?: string): number {
    return orgId ? (this.feeds.get(orgId)?.subscribers.size ?? 0) : this.total;
  }

  close(): void {
    for (const feed of this.feeds.values()) clearInterval(feed.timer);
    this.feeds.clear();
    this.total = 0;
  }

  private startFeed(orgId: string, first: HealthSnapshot): OrgFeed {
    const feed: OrgFeed = {
      subscribers: new Set(),
      last: first,
      busy: false,
      softBase: first,
      softAt: Date.now(),
      timer: setInterval(() => void this.tick(orgId, feed), this.intervalMs),
    };
    feed.timer.unref();
    this.feeds.set(orgId, feed);
    return feed;
  }

  private async tick(orgId: string, feed: OrgFeed): Promise<void> {
    // A slow snapshot must not pile ticks up behind it.
    if (feed.busy) return;
    feed.busy = true;
    try {
      const next = await this.opts.source.healthSnapshot(orgId);
      const now = Date.now();
      const refresh = now - feed.softAt >= this.softRefreshMs;
      // A refresh compares with the snapshot of the last refresh: soft fields that moved
      // since then go out once, together.
      const base = refresh ? feed.softBase : feed.last;
      const change = base ? diffSnapshots(base, next, refresh) : undefined;
      feed.last = next;
      if (refresh) {
        feed.softBase = next;
        feed.softAt = now;
      }
      if (!change || isEmptyChange(change)) return;
      for (const sub of feed.subscribers) sub.send({ type: 'health', data: change });
    } catch (err) {
      this.opts.onError?.(err);
    } finally {
      feed.busy = false;
    }
  }
}
