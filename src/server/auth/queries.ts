import { and, eq, isNull, ne, sql } from 'drizzle-orm';
import { rowsOf, type Db, type Tx } from '../db/client.js';
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

/** The person's own new password: no longer one someone else chose. */
export async function setPasswordHash(db: Q, userId: string, passwordHash: string): Promise<void> {
  await db
    .update(users)
    .set({ passwordHash, passwordChangeRequired: false })
    .where(eq(users.id, userId));
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

const asDate = (v: unknown): Date | null => (v == null ? null : new Date(v as string | Date));

/**
 * Records `reason` for the live sessions of `userId` (in `orgId`, or in every organization)
 * other than `keepSessionId`, before they are deleted or revoked (migration 0009). Endings past
 * their session's expiry are dropped on the way: they would answer "expired" anyway.
 */
export async function insertSessionEndings(
  tx: Q,
  reason: string,
  who: { userId: string; orgId?: string; keepSessionId?: string },
): Promise<void> {
  await tx.execute(sql`DELETE FROM session_endings WHERE expires_at < now()`);
  await tx.execute(sql`
    INSERT INTO session_endings (token_hash, org_id, org_name, reason, expires_at)
    SELECT s.token_hash, s.org_id, o.name, ${reason}, s.expires_at
      FROM sessions s JOIN organizations o ON o.id = s.org_id
     WHERE s.user_id = ${who.userId}
       AND s.revoked_at IS NULL AND s.expires_at > now()
       ${who.orgId ? sql`AND s.org_id = ${who.orgId}` : sql``}
       ${who.keepSessionId ? sql`AND s.id <> ${who.keepSessionId}` : sql``}
    ON CONFLICT (token_hash) DO UPDATE SET reason = excluded.reason, ended_at = now()`);
}

/** What is known of a refused session token: a recorded ending, or the session row's state. */
export async function refusedSession(
  db: Q,
  tokenHash: string,
): Promise<{
  ending?: { reason: string; orgName: string };
  session?: { revokedAt: Date | null; expiresAt: Date | null };
}> {
  const [ending] = await rowsOf(
    db,
    sql`SELECT reason, org_name FROM session_endings
         WHERE token_hash = ${tokenHash} AND expires_at > now()`,
  );
  if (ending)
    return { ending: { reason: String(ending.reason), orgName: String(ending.org_name) } };
  const [session] = await rowsOf(
    db,
    sql`SELECT revoked_at, expires_at FROM sessions WHERE token_hash = ${tokenHash}`,
  );
  return session
    ? { session: { revokedAt: asDate(session.revoked_at), expiresAt: asDate(session.expires_at) } }
    : {};
}

/** A refused identity token's state and identity name, or undefined for an unknown token. */
export async function refusedIdentityToken(
  db: Q,
  tokenHash: string,
): Promise<{ identity: string; revokedAt: Date | null; expiresAt: Date | null } | undefined> {
  const [token] = await rowsOf(
    db,
    sql`SELECT t.revoked_at, t.expires_at, i.name
          FROM identity_access_tokens t JOIN identities i ON i.id = t.identity_id
         WHERE t.token_hash = ${tokenHash}`,
  );
  return token
    ? {
        identity: String(token.name),
        revokedAt: asDate(token.revoked_at),
        expiresAt: asDate(token.expires_at),
      }
    : undefined;
}
