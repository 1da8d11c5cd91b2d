import { and, asc, eq, getTableColumns, like, or, sql } from 'drizzle-orm';
import type { Db, Tx } from '../db/client.js';
import { accessTargets, gatewayPools, gateways } from '../db/schema.js';
import { afterCursor } from '../http/schemas.js';
import { likePattern } from '../rbac/targets.js';

export type AccessTargetRow = typeof accessTargets.$inferSelect;
export type NewAccessTarget = typeof accessTargets.$inferInsert;

/** A target with the names of the gateway or pool it goes through (null when none). */
export type AccessTargetListing = AccessTargetRow & {
  gatewayName: string | null;
  gatewayPoolName: string | null;
};

function withNames(db: Db | Tx) {
  return db
    .select({
      ...getTableColumns(accessTargets),
      gatewayName: gateways.name,
      gatewayPoolName: gatewayPools.name,
    })
    .from(accessTargets)
    .leftJoin(
      gateways,
      and(eq(gateways.orgId, accessTargets.orgId), eq(gateways.id, accessTargets.gatewayId)),
    )
    .leftJoin(
      gatewayPools,
      and(
        eq(gatewayPools.orgId, accessTargets.orgId),
        eq(gatewayPools.id, accessTargets.gatewayPoolId),
      ),
    );
}

export async function selectTarget(
  db: Db | Tx,
  orgId: string,
  by: { id: string } | { name: string },
): Promise<AccessTargetListing | undefined> {
  const match =
    'id' in by ? eq(accessTargets.id, by.id) : eq(accessTargets.name, by.name.toLowerCase());
  const [row] = await withNames(db).where(and(eq(accessTargets.orgId, orgId), match));
  return row;
}

/** `'all'`, or the name patterns (rbac/targets.ts) a caller's `list` is limited to. */
export type TargetNames = 'all' | readonly string[];

/**
 * One page in creation order; fetches `limit + 1` so the caller knows whether more follow.
 * A limit is applied in the query, so pages stay full and cursors stay valid.
 */
export function selectTargetPage(
  db: Db,
  orgId: string,
  cursor: string | undefined,
  limit: number,
  names: TargetNames = 'all',
): Promise<AccessTargetListing[]> {
  return withNames(db)
    .where(
      and(
        eq(accessTargets.orgId, orgId),
        afterCursor(accessTargets.createdAt, accessTargets.id, cursor),
        names === 'all'
          ? undefined
          : names.length
            ? or(...names.map((p) => like(accessTargets.name, likePattern(p))))
            : sql`false`,
      ),
    )
    .orderBy(asc(accessTargets.createdAt), asc(accessTargets.id))
    .limit(limit + 1);
}

export async function insertTarget(tx: Tx, row: NewAccessTarget): Promise<void> {
  await tx.insert(accessTargets).values(row);
}

export async function updateTarget(
  tx: Tx,
  orgId: string,
  id: string,
  changes: Partial<NewAccessTarget>,
): Promise<boolean> {
  const rows = await tx
    .update(accessTargets)
    .set({ ...changes, updatedAt: new Date() })
    .where(and(eq(accessTargets.orgId, orgId), eq(accessTargets.id, id)))
    .returning({ id: accessTargets.id });
  return rows.length > 0;
}

export async function deleteTarget(tx: Tx, orgId: string, id: string): Promise<boolean> {
  const rows = await tx
    .delete(accessTargets)
    .where(and(eq(accessTargets.orgId, orgId), eq(accessTargets.id, id)))
    .returning({ id: accessTargets.id });
  return rows.length > 0;
}
