/** Pool health from member counts (DESIGN §4). Pure. */
export type PoolHealth = 'healthy' | 'degraded' | 'down' | 'empty';

export function poolHealth(
  memberCount: number,
  healthyCount: number,
  minHealthy: number,
): PoolHealth {
  if (memberCount === 0) return 'empty';
  if (healthyCount === 0) return 'down';
  return healthyCount < minHealthy ? 'degraded' : 'healthy';
}

/** Whether the pool is below its floor, for the degraded / recovered transition. */
export const belowFloor = (
  memberCount: number,
  healthyCount: number,
  minHealthy: number,
): boolean => memberCount > 0 && healthyCount < Math.max(1, minHealthy);

export interface HealthCheckObservation {
  target: string;
  ok: boolean;
  error?: string;
  checkedAt: number;
}

/**
 * Whether a member can reach its pool's health-check target. No result yet counts as
 * reachable (a member is not punished in its first seconds); a stale result does not count.
 */
export function checkVerdict(
  target: string | null,
  results: readonly HealthCheckObservation[] | undefined,
  now: number,
  staleAfterMs: number,
): { ok: true } | { ok: false; reason: string } {
  if (!target) return { ok: true };
  const result = results?.find((r) => r.target === target);
  if (!result || now - result.checkedAt > staleAfterMs) return { ok: true };
  return result.ok
    ? { ok: true }
    : { ok: false, reason: `cannot reach ${target}: ${result.error ?? 'connect failed'}` };
}
