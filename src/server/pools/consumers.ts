/**
 * Deprecated: take a ConsumerLookup (`ctx.consumers`, src/server/consumers/registry.ts) instead.
 * Kept only until pools/routes.ts switches; it answers from the same registry of every kind.
 */
import { CONSUMER_KINDS } from '../consumer-kinds.js';
import { ConsumerRegistry } from '../consumers/registry.js';
import type { Db, Tx } from '../db/client.js';
import type { ConsumerRef } from '../gateways/consumer-lookup.js';

export type PoolConsumer = ConsumerRef;

const registry = new ConsumerRegistry(CONSUMER_KINDS);

/** Every consumer kind, each with its list. */
export interface PoolResources {
  kubernetesAuth: PoolConsumer[];
  [kind: string]: PoolConsumer[];
}

export async function consumersOfPool(
  tx: Tx,
  orgId: string,
  poolId: string,
): Promise<PoolResources> {
  const all = await registry.of(tx, orgId, { gatewayPoolId: poolId });
  const byKind: PoolResources = { kubernetesAuth: [] };
  for (const c of all) {
    const key = c.kind === 'kubernetes-auth' ? 'kubernetesAuth' : c.kind;
    (byKind[key] ??= []).push(c);
  }
  return byKind;
}

export function consumerCounts(
  db: Db | Tx,
  orgId: string,
  poolIds: string[],
): Promise<Map<string, number>> {
  return registry.countsByPool(db, orgId, poolIds);
}
