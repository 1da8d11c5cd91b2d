import { and, eq, isNull, ne } from 'drizzle-orm';
import type { Db, Tx } from '../db/client.js';
import { sessions, users } from '../db/schema.js';

type Q = Db | Tx;

/** A person's e-mail and password hash, or undefined when the account is gone. */
export async function findCredentials(
  db: Q,
  userId: string,
): Promise<{ email: string; passwordHash: string } | undefined> {
  const [row] = await db
    .select({ email: users.email, passwordHash: users.passwordHash })
    .from(users)
    .where(eq(users.id, userId));
  return row;
}

export async function setPasswordHash(db: Q, userId: string, passwordHash: string): Promise<void> {
  await db.update(users).set({ passwordHash }).where(eq(users.id, userId));
}

/**
 * Ends every live session of a person in every organization except `keepSessionId` (the one
 * making the change); how many ended.
 */
export async function revokeOtherSessions(
  db: Q,
  userId: string,
  keepSessionId: string,
): Promise<number> {
  const ended = await db
    .update(sessions)
    .set({ revokedAt: new Date() })
    .where(
      and(eq(sessions.userId, userId), ne(sessions.id, keepSessionId), isNull(sessions.revokedAt)),
    )
    .returning({ id: sessions.id });
  return ended.length;
}
