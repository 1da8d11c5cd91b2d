/**
 * Deprecated: take a ConsumerLookup (`ctx.consumers`, src/server/consumers/registry.ts) instead.
 * Kept only until gateways/routes.ts switches; it answers from the same registry of every kind.
 */
import { CONSUMER_KINDS } from '../consumer-kinds.js';
import { ConsumerRegistry } from '../consumers/registry.js';
import type { Tx } from '../db/client.js';
import type { ConsumerRef } from './consumer-lookup.js';

export type GatewayConsumer = ConsumerRef;

const registry = new ConsumerRegistry(CONSUMER_KINDS);

/** Everything that references a gateway directly (pinned, not through a pool). */
export function consumersOfGateway(
  tx: Tx,
  orgId: string,
  gatewayId: string,
): Promise<GatewayConsumer[]> {
  return registry.of(tx, orgId, { gatewayId });
}
