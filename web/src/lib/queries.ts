import { useMutation, useQueries, useQuery, useQueryClient } from '@tanstack/react-query';
import { api, unwrap } from '../api/client';
import type { Gateway, Page, Pool, PoolDetail, PoolMember } from '../api/types';
import { pollUnlessLive, useLivePools, useLiveState } from './live';

/** How often lists the live stream does not cover (targets, tokens, identities) are asked again. */
export const LIST_REFRESH_MS = 30_000;

/** How many pages `allPages` follows before it stops (200 items each: 10,000 items). */
export const MAX_PAGES = 50;

/**
 * Every page of a cursor-paged list, so tables, searches and pickers see everything. Bounded:
 * past MAX_PAGES it stops and keeps the cursor of what is left in `nextCursor`, which the page
 * shows as "more not loaded" (see MoreNotLoaded) rather than cutting silently.
 */
export async function allPages<T>(
  fetchPage: (cursor?: string) => Promise<Page<T>>,
): Promise<Page<T>> {
  const items: T[] = [];
  let cursor: string | undefined;
  for (let i = 0; i < MAX_PAGES; i++) {
    const page = await fetchPage(cursor);
    items.push(...page.items);
    if (!page.nextCursor) return { items, nextCursor: null };
    cursor = page.nextCursor;
  }
  return { items, nextCursor: cursor ?? null };
}

export function useGateways() {
  return useQuery({
    queryKey: ['gateways'],
    queryFn: () =>
      allPages((cursor) =>
        unwrap<Page<Gateway>>(
          api.GET('/api/v1/gateways', { params: { query: { cursor, limit: 200 } } }),
        ),
      ),
    refetchInterval: pollUnlessLive,
  });
}

export function useGateway(id: string) {
  return useQuery({
    queryKey: ['gateway', id],
    queryFn: () => unwrap<Gateway>(api.GET('/api/v1/gateways/{id}', { params: { path: { id } } })),
    refetchInterval: pollUnlessLive,
  });
}

export function usePools(enabled = true) {
  return useQuery({
    queryKey: ['pools'],
    // All of them: the pools view's search and every pool picker must reach the 51st pool too.
    // By name (the API answers in creation order), so every list and picker reads the same.
    queryFn: async () => {
      const page = await allPages((cursor) =>
        unwrap<Page<Pool>>(
          api.GET('/api/v1/gateway-pools', { params: { query: { cursor, limit: 200 } } }),
        ),
      );
      return { ...page, items: [...page.items].sort((a, b) => byName(a.name, b.name)) };
    },
    refetchInterval: pollUnlessLive,
    enabled,
  });
}

export function usePool(poolId: string | undefined) {
  return useQuery({
    queryKey: ['pool', poolId],
    queryFn: () =>
      unwrap<PoolDetail>(
        api.GET('/api/v1/gateway-pools/{poolId}', { params: { path: { poolId: poolId ?? '' } } }),
      ),
    enabled: !!poolId,
    refetchInterval: pollUnlessLive,
  });
}

/** A mutation that refreshes the gateway and pool views when it lands. */
export function useInfraMutation<V, R>(fn: (v: V) => Promise<R>) {
  const qc = useQueryClient();
  return useMutation({
    mutationFn: fn,
    onSettled: () => {
      void qc.invalidateQueries({ queryKey: ['gateways'] });
      void qc.invalidateQueries({ queryKey: ['gateway'] });
      void qc.invalidateQueries({ queryKey: ['pools'] });
      void qc.invalidateQueries({ queryKey: ['pool'] });
      void qc.invalidateQueries({ queryKey: ['audit'] });
    },
  });
}

/**
 * At most this many per-pool GETs at once for the fallback below, so a user's own request
 * (a delete, a save) is never queued behind hundreds of them (a browser opens 6 connections
 * per host).
 */
const POOL_FETCH_CONCURRENCY = 3;
let poolFetchesRunning = 0;
const poolFetchQueue: (() => void)[] = [];
async function limitedPoolFetch<T>(fn: () => Promise<T>): Promise<T> {
  if (poolFetchesRunning >= POOL_FETCH_CONCURRENCY)
    await new Promise<void>((resolve) => poolFetchQueue.push(resolve));
  poolFetchesRunning++;
  try {
    return await fn();
  } finally {
    poolFetchesRunning--;
    poolFetchQueue.shift()?.();
  }
}

/** A pool with its members' ids and their health in it: what the gateway pages need. */
export interface PoolMembership {
  id: string;
  name: string;
  minHealthy: number;
  connectedResourcesCount: number;
  members: { id: string; health: PoolMember['health'] }[];
}

/**
 * Every pool's members and their health, for the gateway list (each gateway's pools) and the
 * drain/delete impact. From the live stream (its snapshot names every pool's members: no
 * request per pool) joined with the pools list (one paged GET). Only when the stream is down
 * (a proxy that blocks it) are pools asked for one by one, a few at a time, under their own
 * key so a row action does not refetch them all.
 * Were GET /api/v1/gateways items to carry their pools with the member's health in each, this
 * would need neither the stream nor the fallback (a server change not made yet).
 */
export function usePoolMembership(enabled: boolean): {
  pools: PoolMembership[];
  pending: boolean;
} {
  const state = useLiveState();
  const live = useLivePools();
  const list = usePools(enabled);
  const fallback = enabled && state === 'down' && !live;
  const details = useQueries({
    queries: (fallback ? (list.data?.items ?? []) : []).map((p) => ({
      queryKey: ['pool-bulk', p.id],
      queryFn: () =>
        limitedPoolFetch(() =>
          unwrap<PoolDetail>(
            api.GET('/api/v1/gateway-pools/{poolId}', { params: { path: { poolId: p.id } } }),
          ),
        ),
      staleTime: 30_000,
      refetchInterval: 60_000,
    })),
  });
  if (!enabled) return { pools: [], pending: false };
  if (live) {
    const listed = new Map((list.data?.items ?? []).map((p) => [p.id, p]));
    const pools = [...live.values()].map((e) => ({
      id: e.id,
      name: listed.get(e.id)?.name ?? e.id,
      minHealthy: e.minHealthy,
      connectedResourcesCount: listed.get(e.id)?.connectedResourcesCount ?? 0,
      members: e.members.map((m) => ({ id: m.gatewayId, health: m.health })),
    }));
    return { pools, pending: list.isPending };
  }
  if (!fallback) return { pools: [], pending: true };
  return {
    pools: details.flatMap((d) =>
      d.data
        ? [
            {
              id: d.data.id,
              name: d.data.name,
              minHealthy: d.data.minHealthy,
              connectedResourcesCount: d.data.connectedResourcesCount,
              members: d.data.members.map((m) => ({ id: m.id, health: m.health })),
            },
          ]
        : [],
    ),
    pending: list.isPending || details.some((d) => d.isPending),
  };
}

/** Which pools each gateway belongs to (the gateway list lacks it), sorted by name. */
export function usePoolsOfGateways(enabled: boolean): Map<string, { id: string; name: string }[]> {
  const { pools } = usePoolMembership(enabled);
  const byGateway = new Map<string, { id: string; name: string }[]>();
  for (const d of [...pools].sort((a, b) => byName(a.name, b.name))) {
    for (const m of d.members) {
      byGateway.set(m.id, [...(byGateway.get(m.id) ?? []), { id: d.id, name: d.name }]);
    }
  }
  return byGateway;
}

const collator = new Intl.Collator(undefined, { numeric: true, sensitivity: 'base' });
/** Natural name order (pool-2 before pool-10), the order of every list and picker. */
export function byName(a: string, b: string): number {
  return collator.compare(a, b);
}
