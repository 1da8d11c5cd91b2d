import type { Tx } from '../db/client.js';
import { kubernetesAuthsReferencing, type Consumer } from '../kubernetes-auth/consumers.js';

export type GatewayConsumer = Consumer;

/**
 * Everything that references a gateway directly (pinned, not through a pool). Consumers
 * (Kubernetes auth, dynamic secrets, access targets) add their query here as they arrive.
 * Called inside the delete transaction so a consumer attached concurrently is seen.
 */
export function consumersOfGateway(
  tx: Tx,
  orgId: string,
  gatewayId: string,
): Promise<GatewayConsumer[]> {
  return kubernetesAuthsReferencing(tx, orgId, { gatewayId });
}
