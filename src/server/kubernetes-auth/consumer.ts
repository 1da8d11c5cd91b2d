import { eq } from 'drizzle-orm';
import type { ConsumerKind } from '../consumers/registry.js';
import { identities, identityKubernetesAuths as k8s } from '../db/schema.js';

/** Kubernetes-auth configs as consumers of gateways and pools, named by their identity. */
export const kubernetesAuthConsumer: ConsumerKind = {
  kind: 'kubernetes-auth',
  table: k8s,
  orgId: k8s.orgId,
  gatewayId: k8s.gatewayId,
  gatewayPoolId: k8s.gatewayPoolId,
  id: k8s.identityId,
  name: identities.name,
  joins: [{ table: identities, on: eq(identities.id, k8s.identityId) }],
  visibleTo: (ability) => ability.can('read', 'KubernetesAuth'),
};
