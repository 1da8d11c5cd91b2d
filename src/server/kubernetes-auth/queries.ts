/** Kubernetes auth's SQL: every query but the login lookup is scoped to the caller's org. */
import { and, eq } from 'drizzle-orm';
import type { Db, Tx } from '../db/client.js';
import {
  gatewayPools,
  gateways,
  identities,
  identityAccessTokens,
  identityKubernetesAuths as k8s,
} from '../db/schema.js';
import { NotFoundError } from '../errors.js';

export type ConfigRow = typeof k8s.$inferSelect;
export type NewConfigRow = typeof k8s.$inferInsert;

export interface IdentityRow {
  id: string;
  name: string;
  role: string;
}

const CONFIG_NOT_FOUND = 'Kubernetes auth config of this identity';
const ofIdentity = (orgId: string, identityId: string) =>
  and(eq(k8s.orgId, orgId), eq(k8s.identityId, identityId));

/** An identity of the org (another org's id is not found, as everywhere). */
export async function findIdentity(db: Db, orgId: string, id: string): Promise<IdentityRow> {
  const [row] = await db
    .select({ id: identities.id, name: identities.name, role: identities.role })
    .from(identities)
    .where(and(eq(identities.orgId, orgId), eq(identities.id, id)));
  if (!row) throw new NotFoundError('Identity');
  return row;
}

export async function findConfig(db: Db, orgId: string, identityId: string): Promise<ConfigRow> {
  const [row] = await db.select().from(k8s).where(ofIdentity(orgId, identityId));
  if (!row) throw new NotFoundError(CONFIG_NOT_FOUND);
  return row;
}

export async function configExists(db: Db, orgId: string, identityId: string): Promise<boolean> {
  const [row] = await db
    .select({ id: k8s.identityId })
    .from(k8s)
    .where(ofIdentity(orgId, identityId));
  return !!row;
}

/** Names of what a config references, for its view (null when it references nothing). */
export async function referenceNames(
  db: Db,
  row: ConfigRow,
): Promise<{
  gateway: { id: string; name: string } | null;
  gatewayPool: { id: string; name: string } | null;
}> {
  const [gateway] = row.gatewayId
    ? await db
        .select({ id: gateways.id, name: gateways.name })
        .from(gateways)
        .where(and(eq(gateways.orgId, row.orgId), eq(gateways.id, row.gatewayId)))
    : [];
  const [gatewayPool] = row.gatewayPoolId
    ? await db
        .select({ id: gatewayPools.id, name: gatewayPools.name })
        .from(gatewayPools)
        .where(and(eq(gatewayPools.orgId, row.orgId), eq(gatewayPools.id, row.gatewayPoolId)))
    : [];
  return { gateway: gateway ?? null, gatewayPool: gatewayPool ?? null };
}

export async function insertConfig(tx: Tx, row: NewConfigRow): Promise<void> {
  await tx.insert(k8s).values(row);
}

export async function updateConfig(
  tx: Tx,
  orgId: string,
  identityId: string,
  set: Partial<NewConfigRow>,
): Promise<void> {
  await tx
    .update(k8s)
    .set({ ...set, updatedAt: new Date() })
    .where(ofIdentity(orgId, identityId));
}

export async function deleteConfig(tx: Tx, orgId: string, identityId: string): Promise<void> {
  const removed = await tx
    .delete(k8s)
    .where(ofIdentity(orgId, identityId))
    .returning({ id: k8s.identityId });
  if (!removed.length) throw new NotFoundError(CONFIG_NOT_FOUND);
}

/**
 * The login lookup: the identity by id in any org (the caller is not authenticated yet; the
 * identity id is what the workload was configured with) and its config, if any.
 */
export async function loginTarget(
  db: Db,
  identityId: string,
): Promise<{ orgId: string; identityName: string; config: ConfigRow | null } | null> {
  const [found] = await db
    .select({ config: k8s, identityName: identities.name, orgId: identities.orgId })
    .from(identities)
    .leftJoin(k8s, eq(k8s.identityId, identities.id))
    .where(eq(identities.id, identityId));
  return found ?? null;
}

export async function insertAccessToken(
  tx: Tx,
  row: typeof identityAccessTokens.$inferInsert,
): Promise<void> {
  await tx.insert(identityAccessTokens).values(row);
}
