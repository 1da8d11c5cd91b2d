/**
 * What the gateway and pool layers need to know about their consumers (Kubernetes auth, access
 * targets, …) without importing them: consumers sit above pools (DESIGN §9), so the consumer
 * registry (src/server/consumers/) implements this interface and the app hands it down.
 */
import type { Db, Tx } from '../db/client.js';
import type { AppAbility } from '../rbac/ability.js';

/** What a consumer stores: exactly one of a pinned gateway or a pool. */
export type GatewayRef = { gatewayId: string } | { gatewayPoolId: string };

/** Something that uses a gateway or pool, as 409s and connected-resources lists name it. */
export interface ConsumerRef {
  /** Consumer kind, e.g. `kubernetes-auth`, `access-target`. */
  kind: string;
  id: string;
  name: string;
}

export interface ConsumerLookup {
  /** Every consumer referencing exactly this gateway (pinned) or this pool, all kinds, one query. */
  of(db: Db | Tx, orgId: string, ref: GatewayRef): Promise<ConsumerRef[]>;
  /** Consumer counts per pool for many pools, one query whatever their number. */
  countsByPool(db: Db | Tx, orgId: string, poolIds: string[]): Promise<Map<string, number>>;
  /** Consumer counts per gateway (pinned references only) for many gateways, one query. */
  countsByGateway(db: Db | Tx, orgId: string, gatewayIds: string[]): Promise<Map<string, number>>;
  /** Every consumer pinned to a single gateway, with that gateway's name, all kinds, one query. */
  pinned(db: Db | Tx, orgId: string): Promise<PinnedConsumer[]>;
  /**
   * The consumers of `refs` a role may see, each by its own kind's rule (a role limited to some
   * access targets, one without Kubernetes auth), and how many it may not.
   */
  visible(ability: AppAbility, refs: ConsumerRef[]): SeenConsumers;
}

export interface SeenConsumers {
  items: ConsumerRef[];
  /** Consumers the role may not see: counted, never named. */
  hidden: number;
}

export interface PinnedConsumer extends ConsumerRef {
  gatewayName: string;
}
