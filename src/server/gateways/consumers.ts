import { and, eq } from 'drizzle-orm';
import type { Tx } from '../db/client.js';
import { identities, identityKubernetesAuths } from '../db/schema.js';

export interface GatewayConsumer {
  kind: string;
  id: string;
  name: string;
}

/**
 * Everything that references a gateway directly (pinned, not through a pool). Consumers
 * (Kubernetes auth, dynamic secrets, access targets) add their query here as they arrive.
 * Called inside the delete transaction so a consumer attached concurrently is seen.
 */
export async function consumersOfGateway(
  tx: Tx,
  orgId: string,
  gatewayId: string,
): Promise<GatewayConsumer[]> {
  const k8s = await tx
    .select({ id: identityKubernetesAuths.identityId, name: identities.name })
    .from(identityKubernetesAuths)
    .innerJoin(identities, eq(identities.id, identityKubernetesAuths.identityId))
    .where(
      and(
        eq(identityKubernetesAuths.orgId, orgId),
        eq(identityKubernetesAuths.gatewayId, gatewayId),
      ),
    )
    .orderBy(identities.name);
  return k8s.map((r) => ({ kind: 'kubernetes-auth', id: r.id, name: r.name }));
}
