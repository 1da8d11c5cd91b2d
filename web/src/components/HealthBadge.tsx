import type { GatewayHealth, PoolHealth } from '../api/types';

const GATEWAY: Record<GatewayHealth, { label: string; cls: string }> = {
  healthy: { label: 'Healthy', cls: 'bg-green-100 text-green-900 ring-green-600/30' },
  draining: { label: 'Draining', cls: 'bg-amber-100 text-amber-900 ring-amber-600/30' },
  degraded: { label: 'Degraded', cls: 'bg-amber-100 text-amber-900 ring-amber-600/30' },
  unreachable: { label: 'Unreachable', cls: 'bg-red-100 text-red-900 ring-red-600/30' },
  'never-connected': { label: 'Pending', cls: 'bg-slate-100 text-slate-800 ring-slate-500/30' },
};

const base =
  'inline-flex items-center gap-1 rounded-full px-2 py-0.5 text-xs font-medium ring-1 ring-inset';

/** A gateway's health in the server's words (never recomputed here). */
export function HealthBadge({ health, title }: { health: GatewayHealth; title?: string | null }) {
  const v = GATEWAY[health] ?? { label: health, cls: GATEWAY['never-connected'].cls };
  return (
    <span className={`${base} ${v.cls}`} title={title ?? undefined} data-health={health}>
      <span aria-hidden className="h-1.5 w-1.5 rounded-full bg-current" />
      {v.label}
    </span>
  );
}

/**
 * "N/M healthy": green when all members are healthy, yellow when some, red when none;
 * "No members" for an empty pool. The server's `degraded` (below min healthy) is named.
 */
export function PoolHealthBadge({
  health,
  healthy,
  total,
  minHealthy,
}: {
  health: PoolHealth;
  healthy: number;
  total: number;
  minHealthy?: number;
}) {
  if (total === 0) {
    return (
      <span className={`${base} bg-slate-100 text-slate-800 ring-slate-500/30`} data-health="empty">
        No members
      </span>
    );
  }
  const cls =
    healthy === total
      ? 'bg-green-100 text-green-900 ring-green-600/30'
      : healthy > 0
        ? 'bg-yellow-100 text-yellow-900 ring-yellow-600/30'
        : 'bg-red-100 text-red-900 ring-red-600/30';
  return (
    <span className="inline-flex items-center gap-1">
      <span className={`${base} ${cls}`} data-health={health}>
        {healthy}/{total} healthy
      </span>
      {health === 'degraded' && (
        <span className="text-xs font-medium text-amber-800">
          below min healthy{minHealthy !== undefined ? ` (${minHealthy})` : ''}
        </span>
      )}
      {health === 'down' && <span className="text-xs font-medium text-red-800">down</span>}
    </span>
  );
}
