/**
 * The rules every consumer applies when a save points it at a gateway or a gateway pool
 * (DESIGN §6): the org (another org's id is 404), the `attach` permission, the pools license,
 * and the `require_gateway_pools` policy. Only what a save newly references is checked, so a
 * downgrade or a policy change never blocks unrelated edits of an existing consumer.
 */
import { eq } from 'drizzle-orm';
import type { Db } from '../db/client.js';
import { organizations } from '../db/schema.js';
import { PolicyViolationError, permissionDenied } from '../errors.js';
import type { GatewayRef } from '../gateways/consumer-lookup.js';
import { findGateway, findGatewayByRef, isUuid } from '../gateways/queries.js';
import type { Feature } from '../license/plans.js';
import { findPool } from '../pools/runtime.js';
import type { AppAbility } from '../rbac/ability.js';

export interface AttachDeps {
  db: Db;
  licenses: { requireFeature(orgId: string, feature: Feature): Promise<void> };
}

/** The caller as the attach rules see it. */
export interface Attacher {
  orgId: string;
  role: string;
  ability: AppAbility;
}

/** The reference a row stores (at most one of the two), as a GatewayRef or null for none. */
export function refOf(row: {
  gatewayId: string | null;
  gatewayPoolId: string | null;
}): GatewayRef | null {
  if (row.gatewayPoolId) return { gatewayPoolId: row.gatewayPoolId };
  if (row.gatewayId) return { gatewayId: row.gatewayId };
  return null;
}

export const REQUIRE_POOLS_MESSAGE =
  'Your organization requires gateway pools: attach a gateway pool (gatewayPoolId) instead of an individual gateway.';

/**
 * Authorizes `next` (what the save will store) given `before` (what the row stores now; null
 * on create). Throws ForbiddenError naming the missing permission, NotFoundError for an
 * unknown or foreign id, PlanUpgradeRequired without the pools feature, PolicyViolationError
 * for a newly pinned gateway under `require_gateway_pools`.
 */
export async function authorizeReference(
  deps: AttachDeps,
  actor: Attacher,
  before: GatewayRef | null,
  next: GatewayRef | null,
): Promise<void> {
  if (!next) return;
  if ('gatewayPoolId' in next) {
    if (before && 'gatewayPoolId' in before && before.gatewayPoolId === next.gatewayPoolId) return;
    if (!actor.ability.can('attach', 'GatewayPool'))
      throw permissionDenied(actor, 'attach', 'GatewayPool');
    await findPool(deps.db, actor.orgId, next.gatewayPoolId);
    await deps.licenses.requireFeature(actor.orgId, 'gatewayPool');
    return;
  }
  if (before && 'gatewayId' in before && before.gatewayId === next.gatewayId) return;
  if (!actor.ability.can('attach', 'Gateway')) throw permissionDenied(actor, 'attach', 'Gateway');
  await findGateway(deps.db, actor.orgId, next.gatewayId);
  const [org] = await deps.db
    .select({ requireGatewayPools: organizations.requireGatewayPools })
    .from(organizations)
    .where(eq(organizations.id, actor.orgId));
  if (org?.requireGatewayPools)
    throw new PolicyViolationError(REQUIRE_POOLS_MESSAGE, { policy: 'requireGatewayPools' });
}

/** Names of gateways, pools and targets never look like ids, so either may be given. */
export const looksLikeId = isUuid;

/**
 * A consumer's gateway and pool may be named by id or by name (README: "wherever one is
 * accepted"); rows store ids. The attach permission is checked before a name is looked up, so a
 * caller who may not attach learns nothing about which names exist.
 */
export async function resolveReferenceNames<
  T extends { gatewayId?: string | null; gatewayPoolId?: string | null },
>(db: Db, actor: Attacher, input: T): Promise<T> {
  const out = { ...input };
  const poolRef = input.gatewayPoolId;
  if (poolRef && !looksLikeId(poolRef)) {
    if (!actor.ability.can('attach', 'GatewayPool'))
      throw permissionDenied(actor, 'attach', 'GatewayPool');
    out.gatewayPoolId = (await findPool(db, actor.orgId, poolRef)).id;
  }
  const gatewayRef = input.gatewayId;
  if (gatewayRef && !looksLikeId(gatewayRef)) {
    if (!actor.ability.can('attach', 'Gateway')) throw permissionDenied(actor, 'attach', 'Gateway');
    out.gatewayId = (await findGatewayByRef(db, actor.orgId, gatewayRef)).id;
  }
  return out;
}
