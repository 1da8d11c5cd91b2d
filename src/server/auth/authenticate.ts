import { and, eq, gt, isNull, or } from 'drizzle-orm';
import type { FastifyRequest } from 'fastify';
import type { Db } from '../db/client.js';
import { identities, identityAccessTokens, orgMemberships, sessions, users } from '../db/schema.js';
import { unauthorized } from '../http/errors.js';
import { buildAbility } from '../rbac/ability.js';
import { permissionsForRole } from '../rbac/roles-resolver.js';
import type { Actor } from './actor.js';
import { assertCookieRequestSafe } from './csrf.js';
import { SESSION_COOKIE } from './sessions.js';
import { hashToken, TOKEN_PREFIX } from './tokens.js';

export { SESSION_COOKIE } from './sessions.js';

const INVALID = 'Invalid or expired token: log in again or create a new access token.';

export function credentialOf(req: FastifyRequest): string | null {
  const header = req.headers.authorization;
  if (header) {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (!m?.[1]) throw unauthorized('Malformed Authorization header: expected "Bearer <token>".');
    return m[1];
  }
  return req.cookies?.[SESSION_COOKIE] ?? null;
}

/** Resolves the caller's credential to an Actor, or throws 401. */
export async function authenticate(
  ctx: { db: Db; config?: { publicUrl?: string } },
  req: FastifyRequest,
): Promise<Actor> {
  const token = credentialOf(req);
  if (!token) throw unauthorized();
  const now = new Date();
  if (token.startsWith(TOKEN_PREFIX.session)) {
    const [row] = await ctx.db
      .select({
        sessionId: sessions.id,
        orgId: sessions.orgId,
        userId: users.id,
        name: users.name,
        email: users.email,
        role: orgMemberships.role,
      })
      .from(sessions)
      .innerJoin(users, eq(users.id, sessions.userId))
      // A user removed from the org loses access at once, even with a live session.
      .innerJoin(
        orgMemberships,
        and(eq(orgMemberships.userId, sessions.userId), eq(orgMemberships.orgId, sessions.orgId)),
      )
      .where(
        and(
          eq(sessions.tokenHash, hashToken(token)),
          isNull(sessions.revokedAt),
          gt(sessions.expiresAt, now),
        ),
      );
    if (!row) throw unauthorized(INVALID);
    // Checked once the cookie proved valid: an unknown one is a plain 401 like any credential.
    if (!req.headers.authorization)
      assertCookieRequestSafe({
        method: req.method,
        host: req.host,
        publicUrl: ctx.config?.publicUrl,
        headers: req.headers,
      });
    return {
      type: 'user',
      id: row.userId,
      name: row.email,
      orgId: row.orgId,
      role: row.role,
      ability: buildAbility(await permissionsForRole(ctx.db, row.orgId, row.role)),
      sessionId: row.sessionId,
    };
  }
  if (token.startsWith(TOKEN_PREFIX.identity)) {
    const [row] = await ctx.db
      .select({
        tokenId: identityAccessTokens.id,
        orgId: identities.orgId,
        identityId: identities.id,
        name: identities.name,
        role: identities.role,
        lastUsedAt: identityAccessTokens.lastUsedAt,
      })
      .from(identityAccessTokens)
      .innerJoin(identities, eq(identities.id, identityAccessTokens.identityId))
      .where(
        and(
          eq(identityAccessTokens.tokenHash, hashToken(token)),
          isNull(identityAccessTokens.revokedAt),
          or(isNull(identityAccessTokens.expiresAt), gt(identityAccessTokens.expiresAt, now)),
        ),
      );
    if (!row) throw unauthorized(INVALID);
    // Shown to operators ("is this token still used?"); a minute's precision spares a write per request.
    if (!row.lastUsedAt || now.getTime() - row.lastUsedAt.getTime() > 60_000) {
      await ctx.db
        .update(identityAccessTokens)
        .set({ lastUsedAt: now })
        .where(eq(identityAccessTokens.id, row.tokenId));
    }
    return {
      type: 'identity',
      id: row.identityId,
      name: row.name,
      orgId: row.orgId,
      role: row.role,
      ability: buildAbility(await permissionsForRole(ctx.db, row.orgId, row.role)),
      tokenId: row.tokenId,
    };
  }
  throw unauthorized(INVALID);
}
