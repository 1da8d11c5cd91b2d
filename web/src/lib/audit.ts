import { useInfiniteQuery } from '@tanstack/react-query';
import { api, unwrap } from '../api/client';
import type { AuditEntry, Page } from '../api/types';

/**
 * One resource's history from the audit log: `poolId` (entries about the pool, gateways
 * deleted out of it included) or `gatewayId` (entries about the gateway and those it made),
 * newest first, a page at a time, however busy the rest of the log is.
 */
export type AuditScope = { poolId: string } | { gatewayId: string };

export const AUDIT_PAGE = 50;

export function fetchAuditPage(scope: AuditScope, cursor?: string): Promise<Page<AuditEntry>> {
  const query = { ...scope, limit: AUDIT_PAGE, cursor };
  return unwrap<Page<AuditEntry>>(api.GET('/api/v1/audit-logs', { params: { query } }));
}

/** A resource's audit trail, paged ("Show older" loads the next page). */
export function useResourceAudit(
  key: ['audit', 'pool' | 'gateway', string],
  scope: AuditScope,
  enabled: boolean,
) {
  return useInfiniteQuery({
    queryKey: key,
    queryFn: ({ pageParam }) => fetchAuditPage(scope, pageParam),
    initialPageParam: undefined as string | undefined,
    getNextPageParam: (last) => last.nextCursor ?? undefined,
    enabled,
  });
}
