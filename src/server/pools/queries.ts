import { and, asc, eq } from 'drizzle-orm';
import type { Db, Tx } from '../db/client.js';
import { gatewayPoolMemberships, gatewayPools, gateways } from '../db/schema.js';
import { isUuid, type PoolRow } from '../gateways/queries.js';
import { notFound } from '../http/errors.js';
import { afterCursor, pageOf } from '../http/schemas.js';

export { insertMembership, poolsByRefs, type PoolRow } from '../gateways/queries.js';

type Conn = Db | Tx;

/** A pool reference (id or name) as a condition; ids and names never look alike. */
const byRef = (orgId: string, ref: string) =>
  and(
    eq(gatewayPools.orgId, orgId),
    isUuid(ref) ? eq(gatewayPools.id, ref.toLowerCase()) : eq(gatewayPools.name, ref),
  );

/** One pool of an org by id or name, or 404 (another org's pool is simply not found). */
export async function findPool(db: Conn, orgId: string, ref: string): Promise<PoolRow> {
  const [row] = await db.select().from(gatewayPools).where(byRef(orgId, ref));
  if (!row) throw notFound(`Gateway pool ${ref}`);
  return row;
}

/** Same, with the row locked: a consumer attaching concurrently waits (its FK check shares it). */
export async function lockPool(tx: Tx, orgId: string, ref: string): Promise<PoolRow> {
  const [row] = await tx.select().from(gatewayPools).where(byRef(orgId, ref)).for('update');
  if (!row) throw notFound(`Gateway pool ${ref}`);
  return row;
}

export async function listPools(
  db: Conn,
  orgId: string,
  cursor: string | undefined,
  limit: number,
) {
  const rows = await db
    .select()
    .from(gatewayPools)
    .where(
      and(
        eq(gatewayPools.orgId, orgId),
        afterCursor(gatewayPools.createdAt, gatewayPools.id, cursor),
      ),
    )
    .orderBy(asc(gatewayPools.createdAt), asc(gatewayPools.id))
    .limit(limit + 1);
  return pageOf(rows, limit);
}

export async function insertPool(tx: Tx, values: typeof gatewayPools.$inferInsert): Promise<void> {
  await tx.insert(gatewayPools).values(values);
}

export async function updatePool(
  tx: Tx,
  orgId: string,
  id: string,
  set: Partial<Pick<PoolRow, 'name' | 'description' | 'minHealthy' | 'healthCheckTarget'>>,
): Promise<void> {
  await tx
    .update(gatewayPools)
    .set({ ...set, updatedAt: new Date() })
    .where(and(eq(gatewayPools.orgId, orgId), eq(gatewayPools.id, id)));
}

export async function deletePool(tx: Tx, orgId: string, id: string): Promise<void> {
  await tx.delete(gatewayPools).where(and(eq(gatewayPools.orgId, orgId), eq(gatewayPools.id, id)));
}

/** A pool's members with their gateway rows, by priority tier then name. */
export function poolMembers(db: Conn, orgId: string, poolId: string) {
  return db
    .select({
      gateway: gateways,
      weight: gatewayPoolMemberships.weight,
      priority: gatewayPoolMemberships.priority,
      joinedAt: gatewayPoolMemberships.createdAt,
    })
    .from(gatewayPoolMemberships)
    .innerJoin(gateways, eq(gateways.id, gatewayPoolMemberships.gatewayId))
    .where(and(eq(gatewayPoolMemberships.orgId, orgId), eq(gatewayPoolMemberships.poolId, poolId)))
    .orderBy(asc(gatewayPoolMemberships.priority), asc(gateways.name));
}

const membership = (orgId: string, poolId: string, gatewayId: string) =>
  and(
    eq(gatewayPoolMemberships.orgId, orgId),
    eq(gatewayPoolMemberships.poolId, poolId),
    eq(gatewayPoolMemberships.gatewayId, gatewayId),
  );

/** Changes a membership; false when there is none. */
export async function updateMembership(
  tx: Tx,
  orgId: string,
  poolId: string,
  gatewayId: string,
  set: { weight?: number; priority?: number },
): Promise<boolean> {
  const rows = await tx
    .update(gatewayPoolMemberships)
    .set(set)
    .where(membership(orgId, poolId, gatewayId))
    .returning({ poolId: gatewayPoolMemberships.poolId });
  return rows.length > 0;
}

/** Removes a membership; false when there was none. */
export async function deleteMembership(
  tx: Tx,
  orgId: string,
  poolId: string,
  gatewayId: string,
): Promise<boolean> {
  const rows = await tx
    .delete(gatewayPoolMemberships)
    .where(membership(orgId, poolId, gatewayId))
    .returning({ poolId: gatewayPoolMemberships.poolId });
  return rows.length > 0;
}
