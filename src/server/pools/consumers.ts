import { and, count, eq, inArray } from 'drizzle-orm';
import type { Db, Tx } from '../db/client.js';
import { identities, identityKubernetesAuths } from '../db/schema.js';

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
export async function consumersOfPool(
  tx: Tx,
  orgId: string,
  poolId: string,
): Promise<PoolResources> {
  const k8s = await tx
    .select({ id: identityKubernetesAuths.identityId, name: identities.name })
    .from(identityKubernetesAuths)
    .innerJoin(identities, eq(identities.id, identityKubernetesAuths.identityId))
    .where(
      and(
        eq(identityKubernetesAuths.orgId, orgId),
        eq(identityKubernetesAuths.gatewayPoolId, poolId),
      ),
    )
    .orderBy(identities.name);
  return { kubernetesAuth: k8s.map((r) => ({ kind: 'kubernetes-auth', id: r.id, name: r.name })) };
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
