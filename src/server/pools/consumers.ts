import { and, count, eq, inArray } from 'drizzle-orm';
import type { Db, Tx } from '../db/client.js';
import { identityKubernetesAuths } from '../db/schema.js';
import { kubernetesAuthsReferencing, type Consumer } from '../kubernetes-auth/consumers.js';

export type PoolConsumer = Consumer;

/** Every consumer kind, each with its list (empty until that consumer exists). */
export interface PoolResources {
  kubernetesAuth: PoolConsumer[];
}

/**
 * Consumers referencing a pool, by kind. Consumers (Kubernetes auth, …) add their query here;
 * pool deletion calls it inside its transaction, after locking the pool row.
 */
export async function consumersOfPool(
  tx: Tx,
  orgId: string,
  poolId: string,
): Promise<PoolResources> {
  return { kubernetesAuth: await kubernetesAuthsReferencing(tx, orgId, { gatewayPoolId: poolId }) };
}

/** Consumer counts for many pools in one query per kind (no N+1). */
export async function consumerCounts(
  db: Db | Tx,
  orgId: string,
  poolIds: string[],
): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  if (!poolIds.length) return counts;
  const rows = await db
    .select({ poolId: identityKubernetesAuths.gatewayPoolId, n: count() })
    .from(identityKubernetesAuths)
    .where(
      and(
        eq(identityKubernetesAuths.orgId, orgId),
        inArray(identityKubernetesAuths.gatewayPoolId, poolIds),
      ),
    )
    .groupBy(identityKubernetesAuths.gatewayPoolId);
  // count() is a number on one driver and a string on the other: normalise here.
  for (const r of rows)
    if (r.poolId) counts.set(r.poolId, (counts.get(r.poolId) ?? 0) + Number(r.n));
  return counts;
}
