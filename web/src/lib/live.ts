/**
 * Live health: the server pushes its own health words over SSE (`/api/v1/events`); they are
 * merged into the cached gateways and pools, so open pages change without a refetch. When the
 * stream drops, queries poll every 5 s until it is back.
 */
import { useQueryClient, type QueryClient } from '@tanstack/react-query';
import { useEffect, useSyncExternalStore } from 'react';
import type { Gateway, Page, Pool, PoolDetail } from '../api/types';
// session.ts imports POLL_MS from here: both are used only at call time, so the cycle is safe.
import { permission, useMe } from './session';

interface GatewayEntry {
  id: string;
  health: Gateway['health'];
  lastResort: string | null;
  rttMs: number | null;
  activeStreams: number;
  lastSeenAt: string | null;
}
export interface PoolEntry {
  id: string;
  health: Pool['health'];
  memberCount: number;
  healthyMemberCount: number;
  minHealthy: number;
  members: {
    gatewayId: string;
    health: Gateway['health'];
    lastResort: string | null;
    reason: string | null;
  }[];
}
interface Change {
  gateways: GatewayEntry[];
  pools: PoolEntry[];
  /** Sent with `health` changes (a snapshot lists everything there is instead). */
  removedGateways?: string[];
  removedPools?: string[];
}

export const POLL_MS = 5_000;

/** The fields of a gateway the stream keeps current. */
type LiveGateway = Pick<
  Gateway,
  'id' | 'health' | 'lastResort' | 'rttMs' | 'activeStreams' | 'lastSeenAt'
>;

let connected = false;
/** Whether the stream failed (or was not opened) since the page loaded: callers then fetch. */
let failed = false;
/**
 * Every pool's members and their health in it, as the stream last said (the snapshot names
 * every pool the caller may list; changes name the pools that changed). Lets the gateway list
 * know each gateway's pools without asking for every pool (one GET per pool does not scale).
 */
let livePools: ReadonlyMap<string, PoolEntry> | null = null;
const listeners = new Set<() => void>();
function notify() {
  for (const l of listeners) l();
}
function setConnected(v: boolean) {
  if (connected === v) return;
  connected = v;
  notify();
}
/**
 * How long the stream may be away before pages fall back to asking for what it carried: a
 * reconnect (a platform restart, a network blip) usually takes less, and must not set off
 * one request per pool.
 */
export const LIVE_GRACE_MS = 6_000;
let graceTimer: ReturnType<typeof setTimeout> | undefined;
function streamLost() {
  if (failed || graceTimer) return;
  graceTimer = setTimeout(() => {
    graceTimer = undefined;
    if (!connected) markLiveUnavailable();
  }, LIVE_GRACE_MS);
}
function streamBack() {
  clearTimeout(graceTimer);
  graceTimer = undefined;
  if (!failed) return;
  failed = false;
  notify();
}
function setLivePools(next: ReadonlyMap<string, PoolEntry> | null) {
  livePools = next;
  notify();
}
/** Merges a change (or replaces everything with a snapshot) into the live pools. */
export function mergeLivePools(
  before: ReadonlyMap<string, PoolEntry> | null,
  change: Change,
  snapshot: boolean,
): Map<string, PoolEntry> {
  const next = new Map(snapshot ? [] : (before ?? []));
  for (const id of change.removedPools ?? []) next.delete(id);
  for (const p of change.pools) next.set(p.id, p);
  return next;
}

export type LiveState = 'connecting' | 'live' | 'down';
/** `down`: the stream failed or cannot be opened (no Gateway:read); lists are polled. */
export function useLiveState(): LiveState {
  return useSyncExternalStore(subscribe, () =>
    connected ? 'live' : failed ? 'down' : 'connecting',
  );
}
function subscribe(l: () => void) {
  listeners.add(l);
  return () => {
    listeners.delete(l);
  };
}
/** The pools' live members, while the stream is up (null otherwise). */
export function useLivePools(): ReadonlyMap<string, PoolEntry> | null {
  return useSyncExternalStore(subscribe, () => (connected ? livePools : null));
}
/** For a page whose user may not open the stream: say so to the rest of the UI. */
export function markLiveUnavailable(): void {
  if (failed) return;
  failed = true;
  notify();
}

/** Whether the live stream is up (queries poll while it is not). */
export function useLiveConnected(): boolean {
  return useSyncExternalStore(subscribe, () => connected);
}

/** The footer's word on live updates: none promised to a role that cannot read gateways. */
export function liveLabel(live: boolean, me: Parameters<typeof permission>[0]): string {
  if (me && !permission(me, 'read', 'Gateway').allowed) return 'Live health needs Gateway:read';
  return live ? '● Live' : '○ Polling every 5 s';
}

/** refetchInterval for health-bearing queries: none while live, 5 s while not. */
export function pollUnlessLive(): number | false {
  return connected ? false : POLL_MS;
}

/**
 * Refetches the lists a change makes incomplete: merging only updates rows already cached, so
 * a gateway or pool the list does not hold yet (just enrolled or created, perhaps in another
 * tab) or one that went away would otherwise stay missing or shown until the page is left.
 * With `snapshot` the change is the whole org, so cached rows it lacks are gone too.
 */
export function refreshStaleLists(qc: QueryClient, change: Change, snapshot = false): void {
  const stale = (
    key: string,
    named: { id: string }[],
    removed: string[] | undefined,
    listed: boolean,
  ) => {
    const page = qc.getQueryData<Page<{ id: string }>>([key]);
    if (!page) return false;
    const cached = new Set(page.items.map((i) => i.id));
    if (named.some((e) => !cached.has(e.id))) return true;
    if (removed?.some((id) => cached.has(id))) return true;
    if (!snapshot || !listed) return false;
    const now = new Set(named.map((e) => e.id));
    return page.items.some((i) => !now.has(i.id));
  };
  if (stale('gateways', change.gateways, change.removedGateways, true))
    void qc.invalidateQueries({ queryKey: ['gateways'], exact: true });
  // A role that may not list pools gets none in the stream: an empty list says nothing then.
  if (stale('pools', change.pools, change.removedPools, change.pools.length > 0))
    void qc.invalidateQueries({ queryKey: ['pools'], exact: true });
  // An open pool whose members changed (added or removed elsewhere) shows the new list.
  for (const e of change.pools) {
    const p = qc.getQueryData<PoolDetail>(['pool', e.id]);
    if (!p || !Array.isArray(p.members)) continue;
    const ids = new Set(e.members.map((m) => m.gatewayId));
    if (p.members.length !== ids.size || p.members.some((m) => !ids.has(m.id)))
      void qc.invalidateQueries({ queryKey: ['pool', e.id], exact: true });
  }
}

export function applyChange(qc: QueryClient, change: Change): void {
  const gws = new Map(change.gateways.map((g) => [g.id, g]));
  const pools = new Map(change.pools.map((p) => [p.id, p]));
  const mergeGateway = <T extends LiveGateway>(g: T): T => {
    const e = gws.get(g.id);
    return e
      ? {
          ...g,
          health: e.health,
          lastResort: e.lastResort,
          rttMs: e.rttMs,
          activeStreams: e.activeStreams,
          lastSeenAt: e.lastSeenAt,
        }
      : g;
  };
  qc.setQueriesData<Page<Gateway>>({ queryKey: ['gateways'] }, (page) =>
    page ? { ...page, items: page.items.map(mergeGateway) } : page,
  );
  qc.setQueriesData<Gateway>({ queryKey: ['gateway'] }, (g) => (g ? mergeGateway(g) : g));
  qc.setQueriesData<Page<Pool>>({ queryKey: ['pools'] }, (page) =>
    page
      ? {
          ...page,
          items: page.items.map((p) => {
            const e = pools.get(p.id);
            return e
              ? {
                  ...p,
                  health: e.health,
                  memberCount: e.memberCount,
                  healthyMemberCount: e.healthyMemberCount,
                }
              : p;
          }),
        }
      : page,
  );
  qc.setQueriesData<PoolDetail>({ queryKey: ['pool'] }, (p) => {
    // ['pool', id, 'resources'] shares the prefix and holds no members.
    if (!p || !Array.isArray(p.members)) return p;
    const e = pools.get(p.id);
    const members = p.members.map((m) => {
      const live = mergeGateway(m);
      const me = e?.members.find((x) => x.gatewayId === m.id);
      return me
        ? { ...live, health: me.health, lastResort: me.lastResort, healthReason: me.reason }
        : live;
    });
    return e
      ? {
          ...p,
          members,
          health: e.health,
          memberCount: e.memberCount,
          healthyMemberCount: e.healthyMemberCount,
        }
      : { ...p, members };
  });
}

/**
 * The pools whose audit trail a change may have added to: the pools it names and those whose
 * cached members it names (the health entry is written as the health changes).
 */
export function poolsTouched(qc: QueryClient, change: Change): Set<string> {
  const ids = new Set(change.pools.map((p) => p.id));
  const gws = new Set(change.gateways.map((g) => g.id));
  for (const [, p] of qc.getQueriesData<PoolDetail>({ queryKey: ['pool'] })) {
    if (p && Array.isArray(p.members) && p.members.some((m) => gws.has(m.id))) ids.add(p.id);
  }
  return ids;
}

export const AUDIT_REFRESH_MS = 750;

/**
 * Refetches the open pool sheets' audit trails once the burst of health events for their pool
 * is over: one refetch per burst, late enough for the entry to be stored.
 */
export function auditRefresher(qc: QueryClient, waitMs = AUDIT_REFRESH_MS) {
  const pending = new Set<string>();
  let timer: ReturnType<typeof setTimeout> | undefined;
  return {
    note(change: Change) {
      for (const id of poolsTouched(qc, change)) pending.add(id);
      if (!pending.size) return;
      clearTimeout(timer);
      timer = setTimeout(() => {
        for (const id of pending) void qc.invalidateQueries({ queryKey: ['audit', 'pool', id] });
        pending.clear();
      }, waitMs);
    },
    stop: () => clearTimeout(timer),
  };
}

/**
 * Keeps one EventSource open while signed in to `organizationId` (none while signed out);
 * reconnects with backoff, at most 5 s apart, so the page is live again within seconds of a
 * platform restart. A stream serves one organization: moving to another opens a new one.
 */
export function useLiveHealth(organizationId: string | undefined): void {
  const qc = useQueryClient();
  const { data: me } = useMe();
  // The stream is health of gateways: a role that may not read them gets a 403 every time, so
  // it is not opened (the footer says why), rather than retried every 5 s forever.
  const mayRead = !me || permission(me, 'read', 'Gateway').allowed;
  useEffect(() => {
    if (!mayRead) markLiveUnavailable();
  }, [mayRead]);
  useEffect(() => {
    if (!organizationId || !mayRead || typeof EventSource === 'undefined') return;
    let source: EventSource | undefined;
    let retry: ReturnType<typeof setTimeout> | undefined;
    let attempt = 0;
    let stopped = false;
    const audit = auditRefresher(qc);
    const open = () => {
      source = new EventSource('/api/v1/events');
      source.addEventListener('snapshot', (ev) => {
        attempt = 0;
        streamBack();
        setConnected(true);
        const change = JSON.parse((ev as MessageEvent<string>).data) as Change;
        setLivePools(mergeLivePools(livePools, change, true));
        refreshStaleLists(qc, change, true);
        applyChange(qc, change);
        // Anything that changed while the stream was down (names, members) comes back too.
        void qc.invalidateQueries({ queryKey: ['pool'] });
      });
      source.addEventListener('health', (ev) => {
        const change = JSON.parse((ev as MessageEvent<string>).data) as Change;
        setLivePools(mergeLivePools(livePools, change, false));
        refreshStaleLists(qc, change);
        applyChange(qc, change);
        audit.note(change);
      });
      source.addEventListener('end', () => {
        // The server ends the stream when the session ends: find out whether we are signed out.
        void qc.invalidateQueries({ queryKey: ['me'] });
        drop();
      });
      source.onerror = () => {
        // A live stream that drops: asking who we are finds out whether the platform is away
        // (the shell then says so and keeps asking every 5 s) or whether the session ended.
        // A stream a proxy never lets through is not news each time.
        if (connected) void qc.invalidateQueries({ queryKey: ['me'] });
        drop();
      };
    };
    const drop = () => {
      source?.close();
      setConnected(false);
      streamLost();
      if (stopped) return;
      const wait = Math.min(POLL_MS, 1000 * 2 ** attempt++);
      retry = setTimeout(open, wait);
    };
    open();
    return () => {
      stopped = true;
      clearTimeout(retry);
      audit.stop();
      source?.close();
      setConnected(false);
    };
  }, [organizationId, mayRead, qc]);
}
