import { and, asc, count, eq } from 'drizzle-orm';
import type { Db, Tx } from '../db/client.js';
import { identities, invitations, orgMemberships, roles, users } from '../db/schema.js';

export type RoleRow = typeof roles.$inferSelect;

export async function countCustomRoles(tx: Tx, orgId: string): Promise<number> {
  const [row] = await tx.select({ n: count() }).from(roles).where(eq(roles.orgId, orgId));
  return Number(row?.n ?? 0);
}

export function listCustomRoles(db: Db, orgId: string): Promise<RoleRow[]> {
  return db.select().from(roles).where(eq(roles.orgId, orgId)).orderBy(asc(roles.slug));
}

export async function findCustomRoleRow(
  db: Db | Tx,
  orgId: string,
  slug: string,
): Promise<RoleRow | undefined> {
  const [row] = await db
    .select()
    .from(roles)
    .where(and(eq(roles.orgId, orgId), eq(roles.slug, slug)));
  return row;
}

/** Locks the role row, so two concurrent edits are judged one after the other. */
export async function lockCustomRole(
  tx: Tx,
  orgId: string,
  id: string,
): Promise<RoleRow | undefined> {
  const [row] = await tx
    .select()
    .from(roles)
    .where(and(eq(roles.orgId, orgId), eq(roles.id, id)))
    .for('update');
  return row;
}

export async function insertRole(tx: Tx, row: typeof roles.$inferInsert): Promise<void> {
  await tx.insert(roles).values(row);
}

export async function updateRole(
  tx: Tx,
  orgId: string,
  id: string,
  set: Partial<Pick<RoleRow, 'name' | 'description' | 'permissions'>>,
): Promise<void> {
  await tx
    .update(roles)
    .set({ ...set, updatedAt: new Date() })
    .where(and(eq(roles.orgId, orgId), eq(roles.id, id)));
}

export async function deleteRole(tx: Tx, orgId: string, id: string): Promise<void> {
  await tx.delete(roles).where(and(eq(roles.orgId, orgId), eq(roles.id, id)));
}

/**
 * Up to 20 users, 20 identities and 20 pending invitations holding a role: enough to tell the
 * caller whom to move (an invitation to a deleted role could never be accepted).
 */
export async function roleHolders(
  tx: Tx,
  orgId: string,
  slug: string,
): Promise<{ users: string[]; identities: string[]; invitations: string[] }> {
  const people = await tx
    .select({ email: users.email })
    .from(orgMemberships)
    .innerJoin(users, eq(users.id, orgMemberships.userId))
    .where(and(eq(orgMemberships.orgId, orgId), eq(orgMemberships.role, slug)))
    .limit(20);
  const machines = await tx
    .select({ name: identities.name })
    .from(identities)
    .where(and(eq(identities.orgId, orgId), eq(identities.role, slug)))
    .limit(20);
  const invited = await tx
    .select({ email: invitations.email })
    .from(invitations)
    .where(
      and(
        eq(invitations.orgId, orgId),
        eq(invitations.role, slug),
        eq(invitations.status, 'pending'),
      ),
    )
    .limit(20);
  return {
    users: people.map((h) => h.email),
    identities: machines.map((i) => i.name),
    invitations: invited.map((i) => i.email),
  };
}
