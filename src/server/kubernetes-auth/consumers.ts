import { and, eq } from 'drizzle-orm';
import type { Tx } from '../db/client.js';
import { identities, identityKubernetesAuths } from '../db/schema.js';
import type { GatewayRef } from '../pools/failover.js';

/** Something that uses a gateway or pool, as the 409s and `/resources` name it. */
export interface Consumer {
  kind: string;
  id: string;
  name: string;
}

/** Kubernetes-auth configs that reference exactly this gateway or this pool. */
export async function kubernetesAuthsReferencing(
  tx: Tx,
  orgId: string,
  ref: GatewayRef,
): Promise<Consumer[]> {
  const reference =
    'gatewayId' in ref
      ? eq(identityKubernetesAuths.gatewayId, ref.gatewayId)
      : eq(identityKubernetesAuths.gatewayPoolId, ref.gatewayPoolId);
  const rows = await tx
    .select({ id: identityKubernetesAuths.identityId, name: identities.name })
    .from(identityKubernetesAuths)
    .innerJoin(identities, eq(identities.id, identityKubernetesAuths.identityId))
    .where(and(eq(identityKubernetesAuths.orgId, orgId), reference))
    .orderBy(identities.name);
  return rows.map((r) => ({ kind: 'kubernetes-auth', id: r.id, name: r.name }));
}
