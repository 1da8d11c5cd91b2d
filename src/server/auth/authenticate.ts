import { and, eq, gt, isNull, or } from 'drizzle-orm';
import type { FastifyRequest } from 'fastify';
import type { Db } from '../db/client.js';
import { isDatabaseUnavailable } from '../db/errors.js';
import { identities, identityAccessTokens, orgMemberships, sessions, users } from '../db/schema.js';
import { UnauthenticatedError } from '../errors.js';
import { unauthorized } from '../http/errors.js';
import { buildAbility } from '../rbac/ability.js';
import { permissionsForRole } from '../rbac/roles-resolver.js';
import type { Actor } from './actor.js';
import type { CachedCredential, CredentialCache } from './credential-cache.js';
import { assertCookieRequestSafe } from './csrf.js';
import { SESSION_COOKIE } from './sessions.js';
import { whySessionRefused, whyTokenRefused, type Refusal } from './session-endings.js';
import { hashToken, TOKEN_PREFIX } from './tokens.js';

export { SESSION_COOKIE } from './sessions.js';

const INVALID = 'Invalid or expired token: log in again or create a new access token.';

/** The 401 for a credential no row accepts: why, when it once worked (session-endings.ts). */
function refused(why: Refusal | undefined): UnauthenticatedError {
  return why
    ? new UnauthenticatedError(why.message, { reason: why.reason })
    : unauthorized(INVALID);
}

export function credentialOf(req: FastifyRequest): string | null {
  const header = req.headers.authorization;
  if (header) {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (!m?.[1]) throw unauthorized('Malformed Authorization header: expected "Bearer <token>".');
    return m[1];
  }
  return req.cookies?.[SESSION_COOKIE] ?? null;
}

/**
 * "Last used" is shown to operators ("is this token still used?"); a minute's precision spares
 * a write per request.
 */
const LAST_USED_PRECISION_MS = 60_000;

interface AuthenticateDeps {
  db: Db;
  config?: { publicUrl?: string };
  /** Resolved callers; without it every request reads the database. */
  credentials?: CredentialCache;
}

/** Resolves the caller's credential to an Actor, or throws 401. */
export async function authenticate(ctx: AuthenticateDeps, req: FastifyRequest): Promise<Actor> {
  const token = credentialOf(req);
  if (!token) throw unauthorized();
  const isSession = token.startsWith(TOKEN_PREFIX.session);
  if (!isSession && !token.startsWith(TOKEN_PREFIX.identity)) throw unauthorized(INVALID);
  const tokenHash = hashToken(token);
  const cached = ctx.credentials?.get(tokenHash);
  if (cached) {
    if (isSession) assertCookieSafe(ctx, req);
    else touchCached(ctx.db, req, cached);
    return cached.actor;
  }
  try {
    return await fromDatabase(ctx, req, tokenHash, isSession);
  } catch (err) {
    const known = isDatabaseUnavailable(err)
      ? ctx.credentials?.getDuringOutage(tokenHash)
      : undefined;
    if (!known) throw err;
    if (isSession) assertCookieSafe(ctx, req);
    return known.actor;
  }
}

async function fromDatabase(
  ctx: AuthenticateDeps,
  req: FastifyRequest,
  tokenHash: string,
  isSession: boolean,
): Promise<Actor> {
  // Taken before the first query: a revocation that commits meanwhile clears the cache, and
  // this lookup's (possibly older) answer is then not stored.
  const generation = ctx.credentials?.generation() ?? 0;
  const now = new Date();
  if (isSession) {
    const [row] = await ctx.db
      .select({
        sessionId: sessions.id,
        orgId: sessions.orgId,
        userId: users.id,
        name: users.name,
        email: users.email,
        role: orgMemberships.role,
        expiresAt: sessions.expiresAt,
        passwordChangeRequired: users.passwordChangeRequired,
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
          eq(sessions.tokenHash, tokenHash),
          isNull(sessions.revokedAt),
          gt(sessions.expiresAt, now),
        ),
      );
    if (!row) throw refused(await whySessionRefused(ctx.db, tokenHash));
    assertCookieSafe(ctx, req);
    const actor: Actor = {
      type: 'user',
      id: row.userId,
      name: row.email,
      orgId: row.orgId,
      role: row.role,
      // Nothing allowed yet, also for callers that check the ability without the auth hook.
      ability: buildAbility(
        row.passwordChangeRequired ? [] : await permissionsForRole(ctx.db, row.orgId, row.role),
      ),
      sessionId: row.sessionId,
      ...(row.passwordChangeRequired ? { passwordChangeRequired: true } : {}),
    };
    ctx.credentials?.set(tokenHash, generation, { actor, expiresAt: row.expiresAt });
    return actor;
  }
  const [row] = await ctx.db
    .select({
      tokenId: identityAccessTokens.id,
      orgId: identities.orgId,
      identityId: identities.id,
      name: identities.name,
      role: identities.role,
      lastUsedAt: identityAccessTokens.lastUsedAt,
      expiresAt: identityAccessTokens.expiresAt,
    })
    .from(identityAccessTokens)
    .innerJoin(identities, eq(identities.id, identityAccessTokens.identityId))
    .where(
      and(
        eq(identityAccessTokens.tokenHash, tokenHash),
        isNull(identityAccessTokens.revokedAt),
        or(isNull(identityAccessTokens.expiresAt), gt(identityAccessTokens.expiresAt, now)),
      ),
    );
  if (!row) throw refused(await whyTokenRefused(ctx.db, tokenHash));
  let lastUsedAt = row.lastUsedAt;
  if (!lastUsedAt || now.getTime() - lastUsedAt.getTime() > LAST_USED_PRECISION_MS) {
    await ctx.db
      .update(identityAccessTokens)
      .set({ lastUsedAt: now })
      .where(eq(identityAccessTokens.id, row.tokenId));
    lastUsedAt = now;
  }
  const actor: Actor = {
    type: 'identity',
    id: row.identityId,
    name: row.name,
    orgId: row.orgId,
    role: row.role,
    ability: buildAbility(await permissionsForRole(ctx.db, row.orgId, row.role)),
    tokenId: row.tokenId,
  };
  ctx.credentials?.set(tokenHash, generation, { actor, expiresAt: row.expiresAt, lastUsedAt });
  return actor;
}

/** Checked once the cookie proved valid: an unknown one is a plain 401 like any credential. */
function assertCookieSafe(ctx: AuthenticateDeps, req: FastifyRequest): void {
  if (!req.headers.authorization)
    assertCookieRequestSafe({
      method: req.method,
      host: req.host,
      publicUrl: ctx.config?.publicUrl,
      headers: req.headers,
    });
}

/**
 * "Last used" of a token served from the cache, still at most once a minute. Not awaited: a
 * cached caller must not wait for (or fail with) a write that only feeds a display.
 */
function touchCached(db: Db, req: FastifyRequest, cached: CachedCredential): void {
  const { tokenId } = cached.actor;
  const now = Date.now();
  if (!tokenId || (cached.lastUsedAt !== null && now - cached.lastUsedAt <= LAST_USED_PRECISION_MS))
    return;
  cached.lastUsedAt = now;
  db.update(identityAccessTokens)
    .set({ lastUsedAt: new Date(now) })
    .where(eq(identityAccessTokens.id, tokenId))
    .then(
      () => undefined,
      (err: unknown) =>
        req.log.warn(
          { err: (err as Error).message },
          'could not record when a token was last used',
        ),
    );
}
