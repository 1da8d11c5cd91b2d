import { and, asc, count, eq, gt, ne, sql } from 'drizzle-orm';
import type { Db, Tx } from '../db/client.js';
import { invitations, organizations, orgMemberships, users } from '../db/schema.js';
import { afterCursor } from '../http/schemas.js';

type Q = Db | Tx;

export type InvitationRow = typeof invitations.$inferSelect;

const memberColumns = {
  id: users.id,
  email: users.email,
  name: users.name,
  role: orgMemberships.role,
  createdAt: orgMemberships.createdAt,
};

export interface MemberRow {
  id: string;
  email: string;
  name: string;
  role: string;
  createdAt: Date;
}

export function listMembers(db: Q, orgId: string, cursor: string | undefined, limit: number) {
  return db
    .select(memberColumns)
    .from(orgMemberships)
    .innerJoin(users, eq(users.id, orgMemberships.userId))
    .where(
      and(eq(orgMemberships.orgId, orgId), afterCursor(orgMemberships.createdAt, users.id, cursor)),
    )
    .orderBy(asc(orgMemberships.createdAt), asc(users.id))
    .limit(limit);
}

export async function findMember(
  db: Q,
  orgId: string,
  userId: string,
): Promise<MemberRow | undefined> {
  const [row] = await db
    .select(memberColumns)
    .from(orgMemberships)
    .innerJoin(users, eq(users.id, orgMemberships.userId))
    .where(and(eq(orgMemberships.orgId, orgId), eq(orgMemberships.userId, userId)));
  return row;
}

export async function findUserByEmail(db: Q, email: string) {
  const [row] = await db.select().from(users).where(eq(users.email, email));
  return row;
}

/** A new account for an invitation: its password is the inviting admin's choice, not the person's. */
export async function insertUser(
  tx: Tx,
  row: { id: string; email: string; name: string; passwordHash: string },
): Promise<void> {
  await tx.insert(users).values({ ...row, passwordChangeRequired: true });
}

export async function renameUser(tx: Tx, userId: string, name: string): Promise<void> {
  await tx.update(users).set({ name }).where(eq(users.id, userId));
}

export async function setMemberRole(tx: Tx, orgId: string, userId: string, role: string) {
  await tx
    .update(orgMemberships)
    .set({ role })
    .where(and(eq(orgMemberships.orgId, orgId), eq(orgMemberships.userId, userId)));
}

export async function insertMembership(tx: Tx, orgId: string, userId: string, role: string) {
  await tx.insert(orgMemberships).values({ orgId, userId, role }).onConflictDoNothing();
}

export async function deleteMembership(tx: Tx, orgId: string, userId: string): Promise<void> {
  await tx
    .delete(orgMemberships)
    .where(and(eq(orgMemberships.orgId, orgId), eq(orgMemberships.userId, userId)));
}

/**
 * Serialises changes to an organization's memberships: taken before reading who is admin, so
 * two removals or demotions at once cannot each count the other as the admin that remains
 * (write skew under READ COMMITTED). `NO KEY UPDATE`: rows merely referencing the organization
 * (sessions, audit entries) take KEY SHARE on it and are not held up.
 */
export async function lockMemberships(tx: Tx, orgId: string): Promise<boolean> {
  const [row] = await tx
    .select({ id: organizations.id })
    .from(organizations)
    .where(eq(organizations.id, orgId))
    .for('no key update');
  return !!row;
}

/** Admins of the org other than this user. */
export async function otherAdminCount(tx: Tx, orgId: string, userId: string): Promise<number> {
  const [row] = await tx
    .select({ n: count() })
    .from(orgMemberships)
    .where(
      and(
        eq(orgMemberships.orgId, orgId),
        eq(orgMemberships.role, 'admin'),
        ne(orgMemberships.userId, userId),
      ),
    );
  return Number(row?.n ?? 0);
}

/**
 * Deletes a user that no organization holds or invites any more, so the same e-mail can be
 * added again as a new person.
 */
export async function deleteUserIfUnattached(tx: Tx, userId: string): Promise<void> {
  await tx.execute(sql`
    DELETE FROM users u WHERE u.id = ${userId}
      AND NOT EXISTS (SELECT 1 FROM org_memberships m WHERE m.user_id = u.id)
      AND NOT EXISTS (SELECT 1 FROM invitations i WHERE i.user_id = u.id AND i.status = 'pending')`);
}

/** The organizations a user belongs to, oldest membership first. */
export function membershipsOf(db: Q, userId: string) {
  return db
    .select({
      orgId: orgMemberships.orgId,
      orgName: organizations.name,
      role: orgMemberships.role,
    })
    .from(orgMemberships)
    .innerJoin(organizations, eq(organizations.id, orgMemberships.orgId))
    .where(eq(orgMemberships.userId, userId))
    .orderBy(asc(orgMemberships.createdAt), asc(orgMemberships.orgId));
}

// ---------------------------------------------------------------------------------------
// Invitations

export async function insertInvitation(tx: Tx, row: typeof invitations.$inferInsert) {
  await tx.insert(invitations).values(row);
}

export async function pendingInvitationOf(tx: Q, orgId: string, userId: string) {
  const [row] = await tx
    .select({ id: invitations.id })
    .from(invitations)
    .where(
      and(
        eq(invitations.orgId, orgId),
        eq(invitations.userId, userId),
        eq(invitations.status, 'pending'),
      ),
    );
  return row;
}

/** An org's open invitations, oldest first (expired ones too: the admin should see them). */
export function listOrgInvitations(
  db: Q,
  orgId: string,
  cursor: string | undefined,
  limit: number,
) {
  return db
    .select()
    .from(invitations)
    .where(
      and(
        eq(invitations.orgId, orgId),
        eq(invitations.status, 'pending'),
        afterCursor(invitations.createdAt, invitations.id, cursor),
      ),
    )
    .orderBy(asc(invitations.createdAt), asc(invitations.id))
    .limit(limit);
}

/** A person's open, unexpired invitations with the inviting organization's name. */
export function pendingInvitationsFor(db: Q, userId: string, now: Date) {
  return db
    .select({
      id: invitations.id,
      orgId: invitations.orgId,
      orgName: organizations.name,
      email: invitations.email,
      role: invitations.role,
      invitedByName: invitations.invitedByName,
      createdAt: invitations.createdAt,
      expiresAt: invitations.expiresAt,
      createdUser: invitations.createdUser,
    })
    .from(invitations)
    .innerJoin(organizations, eq(organizations.id, invitations.orgId))
    .where(
      and(
        eq(invitations.userId, userId),
        eq(invitations.status, 'pending'),
        gt(invitations.expiresAt, now),
      ),
    )
    .orderBy(asc(invitations.createdAt), asc(invitations.id));
}

/** Locks an invitation for a decision on it. */
export async function lockInvitation(
  tx: Tx,
  where: { id: string; orgId?: string; userId?: string },
): Promise<InvitationRow | undefined> {
  const [row] = await tx
    .select()
    .from(invitations)
    .where(
      and(
        eq(invitations.id, where.id),
        where.orgId ? eq(invitations.orgId, where.orgId) : undefined,
        where.userId ? eq(invitations.userId, where.userId) : undefined,
      ),
    )
    .for('update');
  return row;
}

export async function closeInvitation(
  tx: Tx,
  id: string,
  status: 'accepted' | 'declined' | 'revoked',
): Promise<void> {
  await tx
    .update(invitations)
    .set({ status, respondedAt: new Date() })
    .where(eq(invitations.id, id));
}

export async function orgName(db: Q, orgId: string): Promise<string | undefined> {
  const [row] = await db
    .select({ name: organizations.name })
    .from(organizations)
    .where(eq(organizations.id, orgId));
  return row?.name;
}
