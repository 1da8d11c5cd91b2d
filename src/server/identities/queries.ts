import { and, asc, desc, eq, isNull, ne, sql } from 'drizzle-orm';
import type { Db, Tx } from '../db/client.js';
import { identities, identityAccessTokens } from '../db/schema.js';
import { notFound } from '../http/errors.js';
import { afterCursor, beforeCursor } from '../http/schemas.js';

type Q = Db | Tx;

const identityColumns = {
  id: identities.id,
  name: identities.name,
  role: identities.role,
  createdAt: identities.createdAt,
  updatedAt: identities.updatedAt,
  createdByType: identities.createdByType,
  createdById: identities.createdById,
  createdByName: identities.createdByName,
};
const tokenColumns = {
  id: identityAccessTokens.id,
  name: identityAccessTokens.name,
  createdAt: identityAccessTokens.createdAt,
  expiresAt: identityAccessTokens.expiresAt,
  revokedAt: identityAccessTokens.revokedAt,
  lastUsedAt: identityAccessTokens.lastUsedAt,
};

export interface IdentityRow {
  id: string;
  name: string;
  role: string;
  createdAt: Date;
  updatedAt: Date;
  createdByType: string | null;
  createdById: string | null;
  createdByName: string | null;
}

export interface TokenRow {
  id: string;
  name: string;
  createdAt: Date;
  expiresAt: Date | null;
  revokedAt: Date | null;
  lastUsedAt: Date | null;
}

/**
 * A machine identity of the org, or 404 (another org's id is not told apart from a made-up
 * one). Other features (Kubernetes auth) look identities up through this.
 */
export async function findIdentity(db: Q, orgId: string, id: string): Promise<IdentityRow> {
  const [row] = await db
    .select(identityColumns)
    .from(identities)
    .where(and(eq(identities.orgId, orgId), eq(identities.id, id)));
  if (!row) throw notFound('Identity');
  return row;
}

export function listIdentities(db: Q, orgId: string, cursor: string | undefined, limit: number) {
  return db
    .select(identityColumns)
    .from(identities)
    .where(
      and(eq(identities.orgId, orgId), afterCursor(identities.createdAt, identities.id, cursor)),
    )
    .orderBy(asc(identities.createdAt), asc(identities.id))
    .limit(limit);
}

/**
 * Another identity of the org whose name equals `name` ignoring case: the audit log's actor
 * filter ignores case, so "CI-BOT" and "ci-bot" would read as one actor.
 */
export async function identityNameTaken(
  db: Db | Tx,
  orgId: string,
  name: string,
  exceptId?: string,
): Promise<string | undefined> {
  const [row] = await db
    .select({ name: identities.name })
    .from(identities)
    .where(
      and(
        eq(identities.orgId, orgId),
        sql`lower(${identities.name}) = lower(${name})`,
        exceptId ? ne(identities.id, exceptId) : undefined,
      ),
    )
    .limit(1);
  return row?.name;
}

export async function insertIdentity(
  tx: Tx,
  row: {
    id: string;
    orgId: string;
    name: string;
    role: string;
    createdByType: string;
    createdById: string | null;
    createdByName: string | null;
  },
): Promise<void> {
  await tx.insert(identities).values(row);
}

export async function updateIdentity(
  tx: Tx,
  orgId: string,
  id: string,
  set: { name?: string; role?: string },
): Promise<void> {
  await tx
    .update(identities)
    .set({ ...set, updatedAt: new Date() })
    .where(and(eq(identities.orgId, orgId), eq(identities.id, id)));
}

export async function deleteIdentity(tx: Tx, orgId: string, id: string): Promise<void> {
  await tx.delete(identities).where(and(eq(identities.orgId, orgId), eq(identities.id, id)));
}

export async function insertToken(
  tx: Tx,
  row: {
    id: string;
    orgId: string;
    identityId: string;
    name: string;
    tokenHash: string;
    expiresAt: Date;
  },
): Promise<void> {
  await tx.insert(identityAccessTokens).values(row);
}

/** An identity's tokens, newest first. */
export function listTokens(
  db: Q,
  orgId: string,
  identityId: string,
  cursor: string | undefined,
  limit: number,
): Promise<TokenRow[]> {
  return db
    .select(tokenColumns)
    .from(identityAccessTokens)
    .where(
      and(
        eq(identityAccessTokens.orgId, orgId),
        eq(identityAccessTokens.identityId, identityId),
        beforeCursor(identityAccessTokens.createdAt, identityAccessTokens.id, cursor),
      ),
    )
    .orderBy(desc(identityAccessTokens.createdAt), desc(identityAccessTokens.id))
    .limit(limit);
}

/** Revokes an active token; false when there is none by that id. */
export async function revokeToken(
  tx: Tx,
  orgId: string,
  identityId: string,
  tokenId: string,
): Promise<boolean> {
  const rows = await tx
    .update(identityAccessTokens)
    .set({ revokedAt: new Date() })
    .where(
      and(
        eq(identityAccessTokens.orgId, orgId),
        eq(identityAccessTokens.identityId, identityId),
        eq(identityAccessTokens.id, tokenId),
        isNull(identityAccessTokens.revokedAt),
      ),
    )
    .returning({ id: identityAccessTokens.id });
  return rows.length > 0;
}
