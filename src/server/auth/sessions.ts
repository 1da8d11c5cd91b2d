import { randomUUID } from 'node:crypto';
import { and, eq } from 'drizzle-orm';
import type { Db, Tx } from '../db/client.js';
import { sessions } from '../db/schema.js';
import { newToken } from './tokens.js';

export const SESSION_COOKIE = 'gatepool_session';

export interface NewSession {
  userId: string;
  orgId: string;
  ip: string;
  userAgent: string | undefined;
}

export interface StartedSession {
  token: string;
  expiresAt: Date;
}

/** A login session of a user in one organization; only the token's hash is stored. */
export async function startSession(
  db: Db | Tx,
  ttlSeconds: number,
  s: NewSession,
): Promise<StartedSession> {
  const { token, hash } = newToken('session');
  const expiresAt = new Date(Date.now() + ttlSeconds * 1000);
  await db.insert(sessions).values({
    id: randomUUID(),
    tokenHash: hash,
    userId: s.userId,
    orgId: s.orgId,
    ip: s.ip,
    userAgent: s.userAgent?.slice(0, 512) ?? null,
    expiresAt,
  });
  return { token, expiresAt };
}

export async function revokeSession(db: Db | Tx, sessionId: string): Promise<void> {
  await db.update(sessions).set({ revokedAt: new Date() }).where(eq(sessions.id, sessionId));
}

/** Ends a user's sessions in one org (removed from it). */
export async function deleteSessionsOf(db: Db | Tx, orgId: string, userId: string): Promise<void> {
  await db.delete(sessions).where(and(eq(sessions.orgId, orgId), eq(sessions.userId, userId)));
}

/**
 * The browser's copy of the session. SameSite=Strict keeps other sites' pages from sending it
 * at all; the CSRF guard (csrf.ts) covers same-site origins and old browsers.
 */
export function sessionCookie(
  s: StartedSession,
  secure: boolean,
): {
  name: string;
  value: string;
  options: { httpOnly: true; sameSite: 'strict'; secure: boolean; path: '/'; expires: Date };
} {
  return {
    name: SESSION_COOKIE,
    value: s.token,
    options: { httpOnly: true, sameSite: 'strict', secure, path: '/', expires: s.expiresAt },
  };
}
