import type { ConsumerKind } from '../consumers/registry.js';
import { accessTargets as t } from '../db/schema.js';
import { targetSubject } from '../rbac/ability.js';

/** Access targets as consumers of gateways and pools (409s, connected resources). */
export const accessTargetConsumer: ConsumerKind = {
  kind: 'access-target',
  table: t,
  orgId: t.orgId,
  gatewayId: t.gatewayId,
  gatewayPoolId: t.gatewayPoolId,
  id: t.id,
  name: t.name,
  // A role limited to some targets sees only those, here as in the target list.
  visibleTo: (ability, ref) => ability.can('list', targetSubject(ref)),
};
