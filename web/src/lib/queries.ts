import { useMutation, useQueries, useQuery, useQueryClient } from '@tanstack/react-query';
import { api, unwrap } from '../api/client';
import type { Gateway, Page, Pool, PoolDetail } from '../api/types';
import { pollUnlessLive } from './live';

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
    queryFn: () =>
      allPages((cursor) =>
        unwrap<Page<Pool>>(
          api.GET('/api/v1/gateway-pools', { params: { query: { cursor, limit: 200 } } }),
        ),
      ),
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
 * Every pool's details (members and their health), as far as loaded. They share the pool
 * sheet's cache and its live updates.
 */
export function usePoolDetails(enabled: boolean): { details: PoolDetail[]; pending: boolean } {
  const pools = usePools(enabled);
  const details = useQueries({
    queries: (pools.data?.items ?? []).map((p) => ({
      queryKey: ['pool', p.id],
      queryFn: () =>
        unwrap<PoolDetail>(
          api.GET('/api/v1/gateway-pools/{poolId}', { params: { path: { poolId: p.id } } }),
        ),
      enabled,
    })),
  });
  return {
    details: details.flatMap((d) => (d.data ? [d.data] : [])),
    pending: enabled && (pools.isPending || details.some((d) => d.isPending)),
  };
}

/** Which pools each gateway belongs to, from the pools' details (the gateway list lacks it). */
export function usePoolsOfGateways(enabled: boolean): Map<string, { id: string; name: string }[]> {
  const { details } = usePoolDetails(enabled);
  const byGateway = new Map<string, { id: string; name: string }[]>();
  for (const d of details) {
    for (const m of d.members) {
      byGateway.set(m.id, [...(byGateway.get(m.id) ?? []), { id: d.id, name: d.name }]);
    }
  }
  return byGateway;
}
