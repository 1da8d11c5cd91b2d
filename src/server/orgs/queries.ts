import { eq } from 'drizzle-orm';
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
