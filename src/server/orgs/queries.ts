import { eq, sql } from 'drizzle-orm';
import type { Db, Tx } from '../db/client.js';
import { organizations } from '../db/schema.js';

export type OrganizationRow = typeof organizations.$inferSelect;

export async function findOrganization(
  db: Db | Tx,
  orgId: string,
  lock = false,
): Promise<OrganizationRow | undefined> {
  const q = db.select().from(organizations).where(eq(organizations.id, orgId));
  const [row] = lock ? await q.for('update') : await q;
  return row;
}

export async function updateOrganization(
  tx: Tx,
  orgId: string,
  set: { name?: string; requireGatewayPools?: boolean },
): Promise<OrganizationRow | undefined> {
  const [row] = await tx
    .update(organizations)
    .set({ ...set, updatedAt: new Date() })
    .where(eq(organizations.id, orgId))
    .returning();
  return row;
}

/** An organization whose name equals `name` ignoring case (operators tell orgs apart by name). */
export async function findOrganizationByName(
  db: Db | Tx,
  name: string,
): Promise<OrganizationRow | undefined> {
  const [row] = await db
    .select()
    .from(organizations)
    .where(sql`lower(${organizations.name}) = lower(${name})`)
    .limit(1);
  return row;
}

/** Serializes organization creation so two concurrent runs cannot both pass the name check. */
export async function lockOrganizationNames(tx: Tx): Promise<void> {
  await tx.execute(sql`select pg_advisory_xact_lock(hashtext('gatepool:organization-names'))`);
}
