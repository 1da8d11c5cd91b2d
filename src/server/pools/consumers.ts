import type { Db, Tx } from '../db/client.js';

export interface PoolConsumer {
  kind: string;
  id: string;
  name: string;
}

/** Every consumer kind, each with its list (empty until that consumer exists). */
export interface PoolResources {
  kubernetesAuth: PoolConsumer[];
}

/**
 * Consumers referencing a pool, by kind. Consumers (Kubernetes auth, …) add their query here;
 * pool deletion calls it inside its transaction, after locking the pool row.
 */
export async function consumersOfPool(_tx: Tx, _orgId: string, _poolId: string): Promise<PoolResources> {
  return { kubernetesAuth: [] };
}

/** Consumer counts for many pools in one query per kind (no N+1). */
export async function consumerCounts(_db: Db | Tx, _orgId: string, _poolIds: string[]): Promise<Map<string, number>> {
  return new Map();
}
