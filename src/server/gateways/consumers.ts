import type { Tx } from '../db/client.js';

export interface GatewayConsumer {
  kind: string;
  id: string;
  name: string;
}

/**
 * Everything that references a gateway directly. Consumers (Kubernetes auth, dynamic
 * secrets, access targets) add their query here as they arrive; until then nothing does.
 * Called inside the delete transaction so a consumer attached concurrently is seen.
 */
export async function consumersOfGateway(_tx: Tx, _orgId: string, _gatewayId: string): Promise<GatewayConsumer[]> {
  return [];
}
