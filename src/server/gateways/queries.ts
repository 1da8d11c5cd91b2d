import { and, asc, desc, eq, inArray, isNull, ne, or, sql } from 'drizzle-orm';
import type { Db, Tx } from '../db/client.js';
import {
  gatewayEnrollmentTokens,
  gatewayPoolMemberships,
  gatewayPools,
  gateways,
} from '../db/schema.js';
import { notFound } from '../http/errors.js';
import { afterCursor, beforeCursor, pageOf } from '../http/schemas.js';

export type GatewayRow = typeof gateways.$inferSelect;
export type PoolRow = typeof gatewayPools.$inferSelect;
type Conn = Db | Tx;

/** The org-scoped lookup every gateway route uses: another org's id is simply not found. */
export async function findGateway(db: Conn, orgId: string, id: string): Promise<GatewayRow> {
  const [row] = await db
    .select()
    .from(gateways)
    .where(and(eq(gateways.orgId, orgId), eq(gateways.id, id)));
  if (!row) throw notFound(`Gateway ${id}`);
  return row;
}

/** Same, with the row locked: a consumer attaching concurrently waits (its FK check shares it). */
export async function lockGateway(tx: Tx, orgId: string, id: string): Promise<GatewayRow> {
  const [row] = await tx
    .select()
    .from(gateways)
    .where(and(eq(gateways.orgId, orgId), eq(gateways.id, id)))
    .for('update');
  if (!row) throw notFound(`Gateway ${id}`);
  return row;
}

export async function listGateways(
  db: Conn,
  orgId: string,
  cursor: string | undefined,
  limit: number,
) {
  const rows = await db
    .select()
    .from(gateways)
    .where(and(eq(gateways.orgId, orgId), afterCursor(gateways.createdAt, gateways.id, cursor)))
    .orderBy(asc(gateways.createdAt), asc(gateways.id))
    .limit(limit + 1);
  return pageOf(rows, limit);
}

export async function updateGateway(
  tx: Tx,
  orgId: string,
  id: string,
  set: Partial<Pick<GatewayRow, 'name' | 'labels' | 'draining'>>,
): Promise<GatewayRow> {
  const [row] = await tx
    .update(gateways)
    .set({ ...set, updatedAt: new Date() })
    .where(and(eq(gateways.orgId, orgId), eq(gateways.id, id)))
    .returning();
  if (!row) throw notFound(`Gateway ${id}`);
  return row;
}

export async function deleteGateway(tx: Tx, orgId: string, id: string): Promise<void> {
  await tx.delete(gateways).where(and(eq(gateways.orgId, orgId), eq(gateways.id, id)));
}

/** The pools a gateway is a member of, by name. */
export function poolsOfGateway(db: Conn, orgId: string, gatewayId: string): Promise<PoolRow[]> {
  return db
    .select({
      id: gatewayPools.id,
      orgId: gatewayPools.orgId,
      name: gatewayPools.name,
      description: gatewayPools.description,
      minHealthy: gatewayPools.minHealthy,
      healthCheckTarget: gatewayPools.healthCheckTarget,
      createdAt: gatewayPools.createdAt,
      updatedAt: gatewayPools.updatedAt,
    })
    .from(gatewayPoolMemberships)
    .innerJoin(gatewayPools, eq(gatewayPools.id, gatewayPoolMemberships.poolId))
    .where(
      and(eq(gatewayPoolMemberships.orgId, orgId), eq(gatewayPoolMemberships.gatewayId, gatewayId)),
    )
    .orderBy(asc(gatewayPools.name));
}

/** Members of many pools with the gateway fields health needs (one query). */
export function membersOfPools(db: Conn, orgId: string, poolIds: string[]) {
  if (!poolIds.length) return Promise.resolve([]);
  return db
    .select({
      poolId: gatewayPoolMemberships.poolId,
      gatewayId: gateways.id,
      name: gateways.name,
      status: gateways.status,
      orgId: gateways.orgId,
    })
    .from(gatewayPoolMemberships)
    .innerJoin(gateways, eq(gateways.id, gatewayPoolMemberships.gatewayId))
    .where(
      and(eq(gatewayPoolMemberships.orgId, orgId), inArray(gatewayPoolMemberships.poolId, poolIds)),
    );
}

/** Adds a membership; shared by the pools API and by enrollment into pools. */
export async function insertMembership(
  tx: Tx,
  orgId: string,
  poolId: string,
  gatewayId: string,
  opts: { weight?: number; priority?: number } = {},
): Promise<{ weight: number; priority: number }> {
  const weight = opts.weight ?? 100;
  const priority = opts.priority ?? 0;
  await tx.insert(gatewayPoolMemberships).values({ orgId, poolId, gatewayId, weight, priority });
  return { weight, priority };
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/**
 * A reference is an id or a name; a UUID-shaped one is taken as an id (pool names are slugs,
 * never UUID-shaped; a gateway whose name looks like one is named by its id).
 */
export const isUuid = (ref: string): boolean => UUID.test(ref);

/**
 * Pools of an org by id or name, in the order given (duplicates folded); any unknown reference
 * answers 404 naming every one of them.
 */
export async function poolsByRefs(db: Conn, orgId: string, refs: string[]): Promise<PoolRow[]> {
  if (!refs.length) return [];
  const ids = refs.filter(isUuid).map((r) => r.toLowerCase());
  const names = refs.filter((r) => !isUuid(r));
  const byId = ids.length ? inArray(gatewayPools.id, ids) : undefined;
  const byName = names.length ? inArray(gatewayPools.name, names) : undefined;
  const rows = await db
    .select()
    .from(gatewayPools)
    .where(and(eq(gatewayPools.orgId, orgId), or(byId, byName)));
  const found = (r: string) =>
    rows.find((p) => (isUuid(r) ? p.id === r.toLowerCase() : p.name === r));
  const missing = refs.filter((r) => !found(r));
  if (missing.length) throw notFound(`Gateway pool ${missing.map((m) => `"${m}"`).join(', ')}`);
  const out: PoolRow[] = [];
  for (const r of refs) {
    const p = found(r) as PoolRow;
    if (!out.includes(p)) out.push(p);
  }
  return out;
}

/** Those of `ids` that are still pools of the org (no 404 for the others). */
export async function existingPools(db: Conn, orgId: string, ids: string[]): Promise<PoolRow[]> {
  if (!ids.length) return [];
  return db
    .select()
    .from(gatewayPools)
    .where(and(eq(gatewayPools.orgId, orgId), inArray(gatewayPools.id, ids)));
}

// ---------------------------------------------------------------------------------------
// Enrollment tokens

export const tokenColumns = {
  id: gatewayEnrollmentTokens.id,
  name: gatewayEnrollmentTokens.name,
  poolIds: gatewayEnrollmentTokens.poolIds,
  expiresAt: gatewayEnrollmentTokens.expiresAt,
  usedAt: gatewayEnrollmentTokens.usedAt,
  usedByGatewayId: gatewayEnrollmentTokens.usedByGatewayId,
  revokedAt: gatewayEnrollmentTokens.revokedAt,
  createdAt: gatewayEnrollmentTokens.createdAt,
};
export type TokenRow = {
  [K in keyof typeof tokenColumns]: (typeof gatewayEnrollmentTokens.$inferSelect)[K];
};

export async function insertToken(tx: Tx, values: typeof gatewayEnrollmentTokens.$inferInsert) {
  await tx.insert(gatewayEnrollmentTokens).values(values);
}

/** Newest first, a page at a time. */
export async function listTokens(
  db: Conn,
  orgId: string,
  cursor: string | undefined,
  limit: number,
) {
  const rows = await db
    .select(tokenColumns)
    .from(gatewayEnrollmentTokens)
    .where(
      and(
        eq(gatewayEnrollmentTokens.orgId, orgId),
        beforeCursor(gatewayEnrollmentTokens.createdAt, gatewayEnrollmentTokens.id, cursor),
      ),
    )
    .orderBy(desc(gatewayEnrollmentTokens.createdAt), desc(gatewayEnrollmentTokens.id))
    .limit(limit + 1);
  return pageOf(rows, limit);
}

export async function findToken(db: Conn, orgId: string, id: string): Promise<TokenRow> {
  const [row] = await db
    .select(tokenColumns)
    .from(gatewayEnrollmentTokens)
    .where(and(eq(gatewayEnrollmentTokens.orgId, orgId), eq(gatewayEnrollmentTokens.id, id)));
  if (!row) throw notFound('Enrollment token');
  return row;
}

export async function findTokenByHash(db: Conn, hash: string) {
  const [row] = await db
    .select({ ...tokenColumns, orgId: gatewayEnrollmentTokens.orgId })
    .from(gatewayEnrollmentTokens)
    .where(eq(gatewayEnrollmentTokens.tokenHash, hash));
  return row;
}

export async function revokeToken(tx: Tx, id: string): Promise<void> {
  await tx
    .update(gatewayEnrollmentTokens)
    .set({ revokedAt: new Date() })
    .where(and(eq(gatewayEnrollmentTokens.id, id), isNull(gatewayEnrollmentTokens.revokedAt)));
}

/** Single use even under concurrency: only one enrollment flips used_at. */
export async function claimToken(tx: Tx, id: string, gatewayId: string): Promise<boolean> {
  const claimed = await tx
    .update(gatewayEnrollmentTokens)
    .set({ usedAt: new Date(), usedByGatewayId: gatewayId })
    .where(
      and(
        eq(gatewayEnrollmentTokens.id, id),
        isNull(gatewayEnrollmentTokens.usedAt),
        isNull(gatewayEnrollmentTokens.revokedAt),
      ),
    )
    .returning({ id: gatewayEnrollmentTokens.id });
  return claimed.length > 0;
}

/**
 * The name of another gateway of the org that `name` equals ignoring case, if any: "dc1-a" and
 * "DC1-A" would be told apart by nobody reading logs, pools or the audit log (whose actor filter
 * ignores case). The unique index stays case-sensitive: older orgs may hold such pairs.
 */
export async function gatewayNameTaken(
  db: Conn,
  orgId: string,
  name: string,
  exceptId?: string,
): Promise<string | undefined> {
  const [row] = await db
    .select({ id: gateways.id, name: gateways.name })
    .from(gateways)
    .where(
      and(
        eq(gateways.orgId, orgId),
        sql`lower(${gateways.name}) = lower(${name})`,
        exceptId ? ne(gateways.id, exceptId) : undefined,
      ),
    )
    .limit(1);
  return row?.name;
}

export async function insertGateway(tx: Tx, values: typeof gateways.$inferInsert): Promise<void> {
  await tx.insert(gateways).values(values);
}

/** Gateway names appear in logs, audit entries and pool listings; keep them hostname-like. */
export const GATEWAY_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
export const GATEWAY_NAME_MESSAGE =
  'name must be 1-64 characters: letters, digits, dots, underscores and hyphens, starting with a letter or digit';

/**
 * A gateway of the org by id or by name (unique in an org), wherever a request names one
 * (README: "takes a gateway's name too"). Another org's gateway is simply not found.
 */
export async function findGatewayByRef(db: Conn, orgId: string, ref: string): Promise<GatewayRow> {
  if (isUuid(ref)) return findGateway(db, orgId, ref.toLowerCase());
  const [row] = await db
    .select()
    .from(gateways)
    .where(and(eq(gateways.orgId, orgId), eq(gateways.name, ref)));
  if (!row) throw notFound(`Gateway "${ref}"`);
  return row;
}
