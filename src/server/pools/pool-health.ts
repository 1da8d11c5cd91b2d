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
